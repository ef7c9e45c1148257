#!/usr/bin/env bash
# golden.sh - the sha256 of disk.img for every fixture tree of the suite,
# pinned in tests/golden/digests.txt (as e2fsprogs' tests/m_* expect files
# pin mke2fs's output). Any change of the image's bytes fails here: a
# refactoring must leave them equal, and a change that means to alter the
# image regenerates the file on purpose, in its own commit, saying why:
#
#   RPIFS_GOLDEN_UPDATE=1 meson test -C BUILD golden
#
# SOURCE_DATE_EPOCH is set, and the trees' contents, owners, modes and times
# are fixed by their generators (seeded bytes, explicit times), so the
# digests depend on rpifs alone.
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/image/fat_fixture.sh"
need sha256sum python3
[ "$(id -u)" -eq 0 ] || skip "needs root (fixture owners, devices, trusted.* xattrs)"

golden=$TESTS_DIR/golden/digests.txt
export SOURCE_DATE_EPOCH=1700000000
out=$T/digests.txt
: > "$out"

# pin_times DIR: the entries a generator left with the time of its run
# (those newer than this script's start: device nodes, copies) get one
# fixed instant instead; times the generators set on purpose stay.
start=$(date +%s)
sleep 1
pin_times() {
	find "$1" -newermt "@$start" -exec touch -h -d @1690000000 {} +
}

# digest NAME ROOT [rpifs options]: mount, hash disk.img, unmount.
digest() {
	local name=$1 root=$2 sum; shift 2
	rpifs_mount "$root" "$T/mnt" "$@"
	sum=$(sha256sum < "$T/mnt/disk.img" | cut -d' ' -f1)
	rpifs_umount "$T/mnt"
	_MOUNTS=()
	printf '%s %s\n' "$sum" "$name" >> "$out"
	note "$name: $sum"
}

# 1. The example tree the README mounts.
# A checkout's files carry the time of the checkout: every entry gets one
# fixed instant (SOURCE_DATE_EPOCH clamps later times, not earlier ones).
cp -a "$SRC_ROOT/examples/minimal-rootfs" "$T/minimal"
chown -R 0:0 "$T/minimal"
find "$T/minimal" -exec touch -h -d @1690000000 {} +
digest minimal "$T/minimal"
digest minimal-options "$T/minimal" --size 2G --boot-size 64M --disk-id 0x12345678 \
	--align 1M --boot-label FIRM --root-label ROOT

# 2. The ext4 fixture: every kind of entry, owner, time and xattr.
python3 "$TESTS_DIR/ext4/mktree.py" "$T/ext4tree" >/dev/null
pin_times "$T/ext4tree"
digest ext4-fixture "$T/ext4tree"

# 3. The FAT fixture: every kind of name and entry (seeded bytes).
make_fat_fixture "$T/fattree" 3
pin_times "$T/fattree"
digest fat-fixture "$T/fattree" 2>/dev/null

# 4. Seeded adversarial trees (a boot/firmware layout among them: seed 3).
for seed in 1 2 3; do
	info=$(python3 "$TESTS_DIR/hardening/advtree.py" "$seed" "$T/adv$seed")
	read -r boot_dir boot_size < <(printf '%s' "$info" |
		python3 -c 'import json,sys; i=json.load(sys.stdin); print(i["boot_dir"], i["boot_size"])')
	pin_times "$T/adv$seed"
	digest "adversarial-$seed" "$T/adv$seed" --boot-dir "$boot_dir" --boot-size "$boot_size" 2>/dev/null
	rm -rf "$T/adv$seed"
done

if [ "${RPIFS_GOLDEN_UPDATE:-0}" = 1 ]; then
	cp "$out" "$golden"
	note "updated $golden"
	exit 0
fi
[ -f "$golden" ] || fail "no $golden (RPIFS_GOLDEN_UPDATE=1 makes it)"
if ! diff -u "$golden" "$out" >&2; then
	fail "disk.img differs from the pinned digests (above: - pinned, + now)"
fi
note "$(wc -l < "$out") images equal to their pinned digests"
