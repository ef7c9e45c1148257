#!/bin/bash
# fat_errors.sh - what FAT32 cannot hold is refused with a message that
# says what to do: a file of 4 GiB or more (-EFBIG), content larger than
# the partition (-ENOSPC, with the --boot-size that fits: it must fit, and
# 1 MiB less must not), a partition too small for FAT32. A file of exactly
# 4 GiB - 1 is fine.
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/image/fat_fixture.sh"
need sfdisk mdir fsck.fat

# must_fail LOG ROOTFS [options]: rpifs refuses to mount.
must_fail() {
	local log=$1 root=$2; shift 2
	mkdir -p "$T/mnt"
	if "$RPIFS" "$@" "$root" "$T/mnt" 2>"$log"; then
		rpifs_umount "$T/mnt"
		fail "rpifs $* mounted, want an error"
	fi
	cat "$log" >&2
}

r=$T/root
mkdir -p "$r/boot" "$r/etc"
echo x > "$r/etc/hostname"
echo "arm_64bit=1" > "$r/boot/config.txt"

# 1. 4 GiB: refused, naming the file.
truncate -s 4G "$r/boot/huge.bin"
must_fail "$T/log1" "$r" --boot-size 6G
grep -q '^rpifs: error: boot/huge.bin: .*FAT32 cannot hold files of 4 GiB or more' "$T/log1" ||
	fail "no 4 GiB error naming boot/huge.bin"

# 4 GiB - 1 is the largest FAT32 file: served (sparse, so cheap).
truncate -s $(( (4 << 30) - 1 )) "$r/boot/huge.bin"
fat_mount "$T/log2" "$r" "$T/mnt2" --boot-size 5G
off=$(part_start "$T/mnt2/disk.img" 1)
mdir -i "$T/mnt2/disk.img@@$off" ::/huge.bin 2>&1 | grepq ' 4294967295 ' ||
	fail "huge.bin is not 4294967295 bytes: $(mdir -i "$T/mnt2/disk.img@@$off" ::/huge.bin 2>&1)"
rpifs_umount "$T/mnt2"
rm -f "$r/boot/huge.bin"

# 2. Content larger than the partition: the error says how much is needed.
head -c 100M /dev/zero > "$r/boot/big.bin"
must_fail "$T/log3" "$r" --boot-size 64M
grep -q 'use --boot-size [0-9]*M' "$T/log3" || fail "no --boot-size advice"
need_mib=$(sed -n 's/.*use --boot-size \([0-9]*\)M.*/\1/p' "$T/log3")
note "advised --boot-size ${need_mib}M"
[ "$need_mib" -ge 101 ] && [ "$need_mib" -le 104 ] || fail "odd advice: ${need_mib}M"
must_fail "$T/log4" "$r" --boot-size "$((need_mib - 1))M"
grep -q 'use --boot-size' "$T/log4" || fail "1 MiB less than advised: no advice"
fat_mount "$T/log5" "$r" "$T/mnt5" --boot-size "${need_mib}M"
extract_part "$T/mnt5/disk.img" 1 "$T/p5.img"
fsck.fat -n "$T/p5.img" >&2 || fail "fsck.fat on the advised size"
rpifs_umount "$T/mnt5"

# 3. Too small for FAT32 at all.
rm -f "$r/boot/big.bin"
must_fail "$T/log6" "$r" --boot-size 16M
grep -qi 'boot-size' "$T/log6" || fail "16M: no message about --boot-size"
echo "ok"
