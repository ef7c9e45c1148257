# tests/ext4/lib_ext4.sh - helpers for the ext4 tests. Source after lib.sh:
#   . "$TESTS_DIR/lib.sh"; . "$TESTS_DIR/ext4/lib_ext4.sh"
# (TESTS_DIR is tests/ext4 for these tests: lib.sh is one level up.)

E4=${E4_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
COMPARE="python3 $E4/compare.py"

# Pin the filesystem's times (the fixture's newest mtimes lie after 2038);
# future.sh covers the default, SOURCE_DATE_EPOCH unset.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

# ext4_fsck IMG OFFSET: e2fsck -fn must exit 0 and report nothing but its
# five passes and the summary line.
ext4_fsck() {
	local out rc=0 extra
	out=$(e2fsck -fn "$1?offset=$2" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "$out" >&2
		fail "e2fsck -fn exited $rc"
	fi
	extra=$(printf '%s\n' "$out" | grep -v -E \
		-e '^e2fsck [0-9.]+ \(.*\)$' -e '^Pass [1-5]: ' \
		-e '^[^ ]+: [0-9]+/[0-9]+ files \(.*\), [0-9]+/[0-9]+ blocks$' || true)
	if [ -n "$extra" ]; then
		echo "$out" >&2
		fail "e2fsck findings: $extra"
	fi
	note "e2fsck: $(printf '%s\n' "$out" | tail -1)"
}

# kmount PART.img DIR [opts]: loop-mount a COPY of a partition (never the
# FUSE file itself: that can deadlock); unmounted by lib.sh's cleanup.
kmount() {
	mkdir -p "$2"
	mount -o "loop,${3:-ro}" "$1" "$2" || fail "mount -o loop,${3:-ro} $1 failed"
	_MOUNTS+=("$2")
}

kumount() {
	umount "$1" || fail "umount $1 failed"
	local m keep=()
	for m in "${_MOUNTS[@]}"; do [ "$m" = "$1" ] || keep+=("$m"); done
	_MOUNTS=("${keep[@]}")
}

# daemon_hwm MNT: peak RSS (kB) of the rpifs serving MNT.
daemon_hwm() {
	local pid
	pid=$(pgrep -f -- "$RPIFS.* $1\$" | head -1)
	[ -n "$pid" ] || fail "no rpifs process for $1"
	awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status"
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root (device nodes, owners, loop mounts)"
	[ -w /dev/fuse ] || skip "no /dev/fuse"
}

# mount_logged ROOT MNT LOG [rpifs options...]: rpifs_mount, keeping the
# daemon's messages in LOG (they are also copied to stderr).
mount_logged() {
	local root=$1 mnt=$2 log=$3 rc=0; shift 3
	mkdir -p "$mnt"
	"$RPIFS" "$@" "$root" "$mnt" 2>"$log" || rc=$?
	cat "$log" >&2
	[ "$rc" -eq 0 ] || fail "rpifs $* $root $mnt exited $rc"
	_MOUNTS+=("$mnt")
	[ -f "$mnt/disk.img" ] || fail "$mnt/disk.img missing after mount"
}
