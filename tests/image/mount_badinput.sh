#!/usr/bin/env bash
# Each bad input: a non-zero exit, a message naming the problem, nothing
# mounted, and the source tree unchanged (checksum listing before/after).
. "$TESTS_DIR/lib.sh"

mkdir -p "$T/root/boot" "$T/root/etc" "$T/empty" "$T/full"
echo "arm_64bit=1" > "$T/root/boot/config.txt"
echo h > "$T/root/etc/hostname"
touch "$T/full/x" "$T/afile"
before=$(tree_sums "$T/root")

# expect_fail PATTERN ARGS...: rpifs ARGS must fail and print PATTERN.
expect_fail() {
	local pat=$1; shift
	if "$RPIFS" "$@" >"$T/out" 2>&1; then
		cat "$T/out"; fail "rpifs $* succeeded"
	fi
	grep -qE -- "$pat" "$T/out" || { cat "$T/out"; fail "rpifs $*: no message matching '$pat'"; }
	if [ "${ALLOW_MOUNTED:-0}" != 1 ] && grep -qF "$T" /proc/self/mountinfo; then
		fail "something is mounted after rpifs $*"
	fi
}

expect_fail "ROOTFS $T/nope: No such file or directory" "$T/nope" "$T/empty"
expect_fail "ROOTFS $T/afile: not a directory" "$T/afile" "$T/empty"
expect_fail "MNT $T/nomnt: No such file or directory" "$T/root" "$T/nomnt"
expect_fail "MNT $T/afile: not a directory" "$T/root" "$T/afile"
expect_fail "MNT $T/full: not empty" "$T/root" "$T/full"
expect_fail "MNT $T/root/etc is inside ROOTFS" "$T/root" "$T/root/etc"
expect_fail "ROOTFS and MNT are required" "$T/root"
expect_fail "too many arguments" "$T/root" "$T/empty" "$T/x"
expect_fail "unrecognized option" --frobnicate "$T/root" "$T/empty"
expect_fail "--size 12X: not a size" --size 12X "$T/root" "$T/empty"
expect_fail "--disk-id 0x0: a non-zero 32-bit hex number" --disk-id 0x0 "$T/root" "$T/empty"
expect_fail "etc/hostname: not a directory \\(use --boot-dir" --boot-dir etc/hostname "$T/root" "$T/empty"
expect_fail "boot-size must be at least 33M" --boot-size 8M "$T/root" "$T/empty"
export SOURCE_DATE_EPOCH=yesterday
expect_fail "SOURCE_DATE_EPOCH=yesterday: not a number" "$T/root" "$T/empty"
unset SOURCE_DATE_EPOCH

# Boot content larger than the boot partition: refused with the size needed.
head -c $((40 << 20)) /dev/zero > "$T/root/boot/big.bin"
before=$(tree_sums "$T/root")
expect_fail "use --boot-size" --boot-size 34M "$T/root" "$T/empty"

# Already mounted.
rpifs_mount "$T/root" "$T/m"
ALLOW_MOUNTED=1 expect_fail "already a mount point" "$T/root" "$T/m"
rpifs_umount "$T/m"

after=$(tree_sums "$T/root")
[ "$before" = "$after" ] || fail "the source tree changed"
"$RPIFS" --help | grepq "Usage: rpifs" || fail "--help"
"$RPIFS" --version | grepq -E "^rpifs [0-9]" || fail "--version"
note "ok"
