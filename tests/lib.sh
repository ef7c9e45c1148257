# tests/lib.sh - shared helpers for the shell tests. Source it:
#   . "$TESTS_DIR/lib.sh"
# Each test runs in its own scratch directory ($T), removed on exit, and
# unmounts whatever it mounted. A test fails with `fail MSG` (exit 1);
# `skip MSG` exits 77 (meson's skip code).
set -euo pipefail

: "${RPIFS:?RPIFS must point at the rpifs binary}"
: "${TESTS_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
export LC_ALL=C.UTF-8

export T=$(mktemp -d "${TMPDIR:-/tmp}/rpifs-test.XXXXXX")
_MOUNTS=()

cleanup() {
	local m
	for m in "${_MOUNTS[@]}"; do
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$T" 2>/dev/null || true
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
note() { echo "# $*" >&2; }

# The Debian mirror the host's apt uses (not -security): deb822 sources
# first, else sources.list; empty when there is none.
host_mirror() {
	local m
	m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
		tr ' ' '\n' | grep -v -- '-security' | head -1 || true)
	[ -n "$m" ] || m=$(sed -n 's/^deb  *\(\[[^]]*\] *\)\?\([^ ]*\) .*/\2/p' \
		/etc/apt/sources.list 2>/dev/null | grep -v -- '-security' | head -1 || true)
	printf '%s' "$m"
}

# `cmd | grepq ARGS` is `cmd | grep -q ARGS` reading all of its input: under
# pipefail, grep -q exits at the first match and cmd, killed by SIGPIPE on its
# next write, fails the pipeline at random (seen in CI: `! ldd … | grep -q
# libasan` took the wrong branch). GNU grep stops early on >/dev/null too.
grepq() { local in; in=$(cat); grep -q "$@" <<< "$in"; }

need() {
	local c
	for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c not installed"; done
}

# rpifs_mount ROOTFS MNT [rpifs options...]: mount, and register for cleanup.
# rpifs returns once the mount is live (it daemonises after mounting).
rpifs_mount() {
	local root=$1 mnt=$2; shift 2
	mkdir -p "$mnt"
	"$RPIFS" "$@" "$root" "$mnt" || fail "rpifs $* $root $mnt exited $?"
	_MOUNTS+=("$mnt")
	[ -f "$mnt/disk.img" ] || fail "$mnt/disk.img missing after mount"
}

rpifs_umount() {
	fusermount3 -u "$1" || fail "fusermount3 -u $1 failed"
}

# Partition start and size in bytes from the image's table (sfdisk -J).
part_start() { sfdisk -J "$1" | python3 -c "import json,sys; p=json.load(sys.stdin)['partitiontable']; print(p['partitions'][$2-1]['start']*512)"; }
part_size()  { sfdisk -J "$1" | python3 -c "import json,sys; p=json.load(sys.stdin)['partitiontable']; print(p['partitions'][$2-1]['size']*512)"; }

# extract_part IMG N OUT: copy partition N out through the mount.
extract_part() {
	local s z
	s=$(part_start "$1" "$2"); z=$(part_size "$1" "$2")
	dd if="$1" of="$3" bs=1M iflag=skip_bytes,count_bytes skip="$s" count="$z" status=none
}

# root_part IMG OUT: e2fsck -fn of partition 2 of IMG (a mount's disk.img),
# then a copy of it in OUT, for debugfs and a loop mount.
root_part() {
	local p2
	p2=$(part_start "$1" 2)
	e2fsck -fn "$1?offset=$p2" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "e2fsck -fn of partition 2"; }
	extract_part "$1" 2 "$2"
}

# loop_mount EXT4IMG DIR: mount read-only through a loop device (as root),
# unmounted at exit; inode_owner EXT4IMG PATH: uid:gid in PATH's inode.
loop_mount() {
	mkdir -p "$2"
	mount -o loop,ro "$1" "$2" || fail "loop mount of $1"
	_MOUNTS+=("$2")
}
inode_owner() {
	debugfs -R "stat $2" "$1" 2>/dev/null |
		sed -n 's/.*User: *\([0-9]*\) *Group: *\([0-9]*\).*/\1:\2/p'
}

# tree_sums DIR: a listing of every entry with type, mode, owner, size, and
# content checksum: compare before/after to prove a tree was not touched.
tree_sums() {
	(cd "$1" && find . -printf '%y %m %U:%G %s %T@ %p -> %l\n' | sort &&
	 find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}
