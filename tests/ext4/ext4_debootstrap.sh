#!/usr/bin/env bash
# A real root filesystem: Debian bookworm arm64 minbase, first stage of
# debootstrap (thousands of files: setuid binaries, hard links, symlinks,
# devices, sparse and empty files). e2fsck finds nothing and every entry is
# equal through the kernel and through debugfs. The tree is cached under the
# build directory so reruns reuse it; the mirror is the host's apt mirror.
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
need_root
need debootstrap e2fsck debugfs sfdisk python3

cache=${BUILD_ROOT:-$T}/cache/debootstrap-foreign
if [ ! -f "$cache/.complete" ]; then
	# The mirror the host's apt uses for Debian (not -security).
	mirror=$(host_mirror)
	[ -n "$mirror" ] || skip "no Debian mirror in the host's apt configuration"
	rm -rf "$cache.tmp"
	mkdir -p "$(dirname "$cache")"
	note "debootstrap --foreign arm64 bookworm from $mirror"
	debootstrap --arch arm64 --foreign --variant=minbase bookworm \
		"$cache.tmp" "$mirror" >"$T/debootstrap.log" 2>&1 ||
		{ tail -20 "$T/debootstrap.log" >&2; skip "debootstrap failed (no network?)"; }
	rm -rf "$cache"
	mv "$cache.tmp" "$cache"
	touch "$cache/.complete"
fi
note "tree: $(find "$cache" | wc -l) entries, $(du -sh --apparent-size "$cache" | cut -f1)"

$COMPARE snap "$cache" "$T/snap.json" --skip boot || fail "snapshot failed"
mount_logged "$cache" "$T/mnt" "$T/log"
img=$T/mnt/disk.img
ext4_fsck "$img" "$(part_start "$img" 2)"
extract_part "$img" 2 "$T/part.img"
rpifs_umount "$T/mnt"

out=$($COMPARE debugfs "$T/snap.json" "$T/part.img") ||
	{ echo "$out" >&2; fail "debugfs view differs from the source"; }
note "debugfs: $out"
kmount "$T/part.img" "$T/k"
out=$($COMPARE kernel "$T/snap.json" "$T/k") ||
	{ echo "$out" >&2; fail "kernel view differs from the source"; }
note "kernel: $out"
kumount "$T/k"
