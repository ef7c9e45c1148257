#!/usr/bin/env bash
# Trees from elsewhere mount with no flags: the boot directory is detected
# (boot/firmware when it holds config.txt, else boot) and the image carries
# the names the tree's /etc/fstab and cmdline.txt look for (LABEL=, UUID=,
# PARTUUID=), checked with blkid, dumpe2fs, fsck.fat, mtools, sfdisk and
# debugfs. Options override; contradictions and over-long FAT labels are
# refused naming file:line, nothing mounted; the trees are never written.
. "$TESTS_DIR/lib.sh"
need blkid dumpe2fs debugfs fsck.fat mlabel mdir mcopy sfdisk python3

# Debian's raspi tree (image-specs, raspi-firmware): boot files in
# /boot/firmware, the kernel packages' copies in /boot.
deb=$T/debian
mkdir -p "$deb/boot/firmware" "$deb/etc"
printf 'arm_64bit=1\nkernel=vmlinuz-6.1.0-x-arm64\ninitramfs initrd.img-6.1.0-x-arm64 followkernel\n' \
	> "$deb/boot/firmware/config.txt"
echo "console=tty0 console=ttyS1,115200 root=LABEL=RASPIROOT rw fsck.repair=yes rootwait" \
	> "$deb/boot/firmware/cmdline.txt"
echo "firmware kernel" > "$deb/boot/firmware/vmlinuz-6.1.0-x-arm64"
echo "packaged kernel" > "$deb/boot/vmlinuz-6.1.0-x-arm64"
echo "packaged config" > "$deb/boot/config-6.1.0-x-arm64"
cat > "$deb/etc/fstab" <<'EOF'
# The root file system has fs_passno=1 as per fstab(5) for automatic fsck.
LABEL=RASPIROOT /               ext4    rw 0 1
# All other file systems have fs_passno=2 as per fstab(5) for automatic fsck.
LABEL=RASPIFIRM /boot/firmware  vfat    rw 0 2
EOF
echo deb > "$deb/etc/hostname"

# parts IMG: partition 1 in $T/p1.img, partition 2 in $T/p2.img (e2fsck
# -fn clean), fsck.fat -n clean.
parts() {
	root_part "$1" "$T/p2.img"
	extract_part "$1" 1 "$T/p1.img"
	fsck.fat -n "$T/p1.img" >"$T/fsck" 2>&1 || { cat "$T/fsck" >&2; fail "fsck.fat -n of partition 1"; }
}
blk() { blkid -p -o value -s "$2" "$1"; }
ext4_label() { dumpe2fs -h "$1" 2>/dev/null | sed -n 's/^Filesystem volume name: *//p'; }
disk_id() { sfdisk -J "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["id"])'; }

# expect_fail WHY ROOT [options]: refused, every PATTERN in $pats in the
# message, nothing mounted.
expect_fail() {
	local why=$1 root=$2 p; shift 2
	mkdir -p "$T/mnt"
	if "$RPIFS" "$@" "$root" "$T/mnt" >"$T/out" 2>&1; then
		_MOUNTS+=("$T/mnt")
		cat "$T/out" >&2; fail "$why: mounted"
	fi
	for p in "${pats[@]}"; do
		grep -qF -- "$p" "$T/out" || { cat "$T/out" >&2; fail "$why: no '$p' in the message"; }
	done
	! grep -qF "$T/mnt" /proc/self/mountinfo || fail "$why: something is mounted"
}

sums_deb=$(tree_sums "$deb")

# 1. Debian's tree with no flags.
mkdir -p "$T/mnt"
"$RPIFS" "$deb" "$T/mnt" 2>"$T/log" || { cat "$T/log" >&2; fail "mount of the Debian tree"; }
_MOUNTS+=("$T/mnt")
grep -qx "rpifs: boot partition from boot/firmware (holds config.txt)" "$T/log" ||
	{ cat "$T/log" >&2; fail "the mount does not say it serves boot/firmware"; }
! grep -q "warning" "$T/log" || { cat "$T/log" >&2; fail "warnings for the Debian tree"; }
parts "$T/mnt/disk.img"
[ "$(blk "$T/p1.img" LABEL)" = RASPIFIRM ] || fail "FAT label (blkid): $(blk "$T/p1.img" LABEL)"
mlabel -i "$T/p1.img" -s :: | grepq "Volume label is RASPIFIRM *$" ||
	fail "FAT label (mlabel -s): $(mlabel -i "$T/p1.img" -s ::)"
[ "$(blk "$T/p2.img" LABEL)" = RASPIROOT ] || fail "ext4 label (blkid): $(blk "$T/p2.img" LABEL)"
[ "$(ext4_label "$T/p2.img")" = RASPIROOT ] || fail "ext4 label (dumpe2fs): $(ext4_label "$T/p2.img")"
# boot/firmware's files on the FAT, at its root; /boot's own not there.
mdir -i "$T/p1.img" -b ::/ | sort > "$T/fatls"
printf '%s\n' ::/CMDLINE.TXT ::/CONFIG.TXT ::/vmlinuz-6.1.0-x-arm64 | sort > "$T/want"
# mdir -b prints long names where there are ones; compare case-blind.
diff <(tr a-z A-Z < "$T/want") <(tr a-z A-Z < "$T/fatls") >&2 || fail "FAT root is not boot/firmware"
for f in config.txt cmdline.txt vmlinuz-6.1.0-x-arm64; do
	mcopy -n -i "$T/p1.img" "::/$f" "$T/f" && cmp -s "$T/f" "$deb/boot/firmware/$f" ||
		fail "$f on the FAT differs from boot/firmware/$f"
	rm -f "$T/f"
done
# ext4: /boot keeps the packages' files, /boot/firmware is an empty directory.
[ "$(debugfs -R "cat /boot/vmlinuz-6.1.0-x-arm64" "$T/p2.img" 2>/dev/null)" = "packaged kernel" ] ||
	fail "/boot/vmlinuz-6.1.0-x-arm64 is not the tree's in ext4"
[ "$(debugfs -R "cat /boot/config-6.1.0-x-arm64" "$T/p2.img" 2>/dev/null)" = "packaged config" ] ||
	fail "/boot/config-6.1.0-x-arm64 is not in ext4"
debugfs -R "stat /boot/firmware" "$T/p2.img" 2>/dev/null | grepq "Type: directory" ||
	fail "/boot/firmware is not a directory in ext4"
[ "$(debugfs -R "ls /boot/firmware" "$T/p2.img" 2>/dev/null | tr -s ' \n' '\n' |
     grep -v '^$' | grep -vE '^\(?[0-9]+\)?$' | sort | tr '\n' ' ')" = ". .. " ] ||
	fail "/boot/firmware is not empty in ext4: $(debugfs -R "ls /boot/firmware" "$T/p2.img" 2>/dev/null)"
debugfs -R "cat /etc/fstab" "$T/p2.img" 2>/dev/null | cmp -s - "$deb/etc/fstab" ||
	fail "/etc/fstab differs in ext4"
rpifs_umount "$T/mnt"; _MOUNTS=()

# 2. Options override the tree: labels, and --boot-dir boot serves /boot.
rpifs_mount "$deb" "$T/mnt" --boot-label OTHERFAT --root-label otherroot 2>"$T/log"
parts "$T/mnt/disk.img"
[ "$(blk "$T/p1.img" LABEL)" = OTHERFAT ] || fail "--boot-label: $(blk "$T/p1.img" LABEL)"
[ "$(ext4_label "$T/p2.img")" = otherroot ] || fail "--root-label: $(ext4_label "$T/p2.img")"
rpifs_umount "$T/mnt"; _MOUNTS=()
rpifs_mount "$deb" "$T/mnt" --boot-dir boot 2>"$T/log"
! grep -q "boot partition from" "$T/log" || fail "--boot-dir given, yet detected"
parts "$T/mnt/disk.img"
mcopy -n -i "$T/p1.img" ::/vmlinuz-6.1.0-x-arm64 "$T/f" && [ "$(cat "$T/f")" = "packaged kernel" ] ||
	fail "--boot-dir boot: /boot's kernel not on the FAT"
rm -f "$T/f"
# No fstab entry on /boot: the FAT keeps its default label; ext4 still RASPIROOT.
[ "$(blk "$T/p1.img" LABEL)" = BOOT ] || fail "--boot-dir boot: FAT label $(blk "$T/p1.img" LABEL)"
[ "$(ext4_label "$T/p2.img")" = RASPIROOT ] || fail "--boot-dir boot: ext4 label"
rpifs_umount "$T/mnt"; _MOUNTS=()

# 3. Raspberry Pi OS style: PARTUUID everywhere, the disk id follows.
pios=$T/pios
mkdir -p "$pios/boot/firmware" "$pios/etc"
echo "arm_64bit=1" > "$pios/boot/firmware/config.txt"
echo "console=serial0,115200 console=tty1 root=PARTUUID=1a2b3c4d-02 rootfstype=ext4 fsck.repair=yes rootwait" \
	> "$pios/boot/firmware/cmdline.txt"
cat > "$pios/etc/fstab" <<'EOF'
proc            /proc           proc    defaults          0       0
PARTUUID=1a2b3c4d-01  /boot/firmware  vfat    defaults          0       2
PARTUUID=1a2b3c4d-02  /               ext4    defaults,noatime  0       1
EOF
sums_pios=$(tree_sums "$pios")
rpifs_mount "$pios" "$T/mnt" 2>"$T/log"
[ "$(disk_id "$T/mnt/disk.img")" = 0x1a2b3c4d ] || fail "disk id $(disk_id "$T/mnt/disk.img")"
parts "$T/mnt/disk.img"
[ "$(blk "$T/p1.img" LABEL)" = BOOT ] && [ "$(ext4_label "$T/p2.img")" = rootfs ] ||
	fail "labels changed though the tree names none"
rpifs_umount "$T/mnt"; _MOUNTS=()
rpifs_mount "$pios" "$T/mnt" --disk-id 0x0badcafe 2>"$T/log"
[ "$(disk_id "$T/mnt/disk.img")" = 0x0badcafe ] || fail "--disk-id: $(disk_id "$T/mnt/disk.img")"
rpifs_umount "$T/mnt"; _MOUNTS=()

# 4. UUIDs and a label with \040, in a tree that keeps boot files in /boot.
uu=$T/uuid
mkdir -p "$uu/boot/firmware" "$uu/etc"
echo "arm_64bit=1" > "$uu/boot/config.txt"
echo "root=UUID=0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0 rootwait" > "$uu/boot/cmdline.txt"
printf 'LABEL=my\\040root / ext4 defaults 0 1\nUUID=ABCD-1234 /boot vfat defaults 0 2\n' \
	> "$uu/etc/fstab"
rpifs_mount "$uu" "$T/mnt" 2>"$T/log"
grep -qx "rpifs: boot partition from boot (no boot/firmware/config.txt; --boot-dir picks another)" \
	"$T/log" || { cat "$T/log" >&2; fail "the mount does not say it serves boot"; }
parts "$T/mnt/disk.img"
[ "$(blk "$T/p2.img" UUID)" = 0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0 ] || fail "ext4 UUID $(blk "$T/p2.img" UUID)"
[ "$(ext4_label "$T/p2.img")" = "my root" ] || fail "ext4 label '$(ext4_label "$T/p2.img")'"
[ "$(blk "$T/p1.img" UUID)" = ABCD-1234 ] || fail "FAT serial $(blk "$T/p1.img" UUID)"
rpifs_umount "$T/mnt"; _MOUNTS=()

# 5. Contradictions and labels the FAT cannot carry: refused, nothing mounted.
bad=$T/bad
cp -a "$deb" "$bad"
echo "root=LABEL=OTHERROOT rootwait" > "$bad/boot/firmware/cmdline.txt"
pats=("$bad/etc/fstab:2" "LABEL=RASPIROOT" "$bad/boot/firmware/cmdline.txt:1" "root=LABEL=OTHERROOT"
      "--root-label")
expect_fail "fstab against cmdline.txt (LABEL)" "$bad"
# --root-label settles it.
rpifs_mount "$bad" "$T/mnt" --root-label RASPIROOT 2>"$T/log"
! grep -q "error:" "$T/log" || { cat "$T/log" >&2; fail "--root-label settles it, yet an error"; }
parts "$T/mnt/disk.img"
[ "$(ext4_label "$T/p2.img")" = RASPIROOT ] || fail "--root-label over a contradiction"
rpifs_umount "$T/mnt"; _MOUNTS=()
cp -a "$pios" "$T/pios2"
sed -i 's/1a2b3c4d-01/99999999-01/' "$T/pios2/etc/fstab"
pats=("$T/pios2/etc/fstab:2" "PARTUUID=99999999-01" "$T/pios2/etc/fstab:3" "PARTUUID=1a2b3c4d-02"
      "--disk-id")
expect_fail "fstab's boot and root disk ids" "$T/pios2"
sed -i 's/root=LABEL=OTHERROOT/root=LABEL=RASPIROOT/; s/RASPIFIRM/RASPIFIRMWARE/' \
	"$bad/boot/firmware/cmdline.txt" "$bad/etc/fstab"
pats=("$bad/etc/fstab:4: LABEL=RASPIFIRMWARE" "FAT labels are at most 11 characters" "--boot-label")
expect_fail "a FAT label of 13 characters" "$bad"
sed -i 's/RASPIFIRMWARE/raspifirm/' "$bad/etc/fstab"
rpifs_mount "$bad" "$T/mnt" 2>"$T/log"
grep -q "warning: .*fstab:4: LABEL=raspifirm: FAT labels are upper case: the FAT is labelled RASPIFIRM" "$T/log" ||
	{ cat "$T/log" >&2; fail "no warning for a lower-case FAT label"; }
parts "$T/mnt/disk.img"
[ "$(blk "$T/p1.img" LABEL)" = RASPIFIRM ] || fail "lower-case label: $(blk "$T/p1.img" LABEL)"
rpifs_umount "$T/mnt"; _MOUNTS=()

# The trees were only read.
[ "$(tree_sums "$deb")" = "$sums_deb" ] || fail "the Debian tree changed"
[ "$(tree_sums "$pios")" = "$sums_pios" ] || fail "the Raspberry Pi OS tree changed"
note "boot/firmware detected, labels, UUIDs and disk id from fstab/cmdline.txt; refusals named"
