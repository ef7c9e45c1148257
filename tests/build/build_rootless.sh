#!/usr/bin/env bash
# `rpifs build rootfs` as a real unprivileged user, created here with a
# subordinate id range (useradd, usermod --add-subuids/--add-subgids).
#
# Always (seconds): the user's checks pass (the build gets as far as the
# mirror, an unreachable one, and stops there, leaving no tree and no map);
# leftovers owned by the namespace's root in ROOTFS.rpifs/tmp are removed
# (only possible inside the namespace); a directory others cannot enter is
# refused naming it, so is a tree of root's (--force) and --mode root.
#
# With RPIFS_LONG=1 (a bookworm bootstrap under qemu-user: 5-40 min here):
# the real build, default variant + iputils-ping and libcap2-bin (ping's
# capability), with a root password. On the host the tree holds subordinate
# ids (passwd owned by the range's first id, ping's capability v3 with that
# root id); ROOTFS.rpifs/idmap records the map; a plain `rpifs ROOTFS MNT`
# (as root: /dev/fuse is 0600 here) then shows, checked with debugfs and a
# loop mount of a copy of partition 2: /usr/bin/passwd root:root 4755,
# /etc/shadow root:shadow 0640 with root's password, ping's
# security.capability v2 cap_net_raw+ep, fstab/hostname/getty written, no
# host id (>= 100000 or the user's uid) in owners or ACLs anywhere, e2fsck
# -fn clean. A second run with another hostname re-applies the
# configuration in the namespace; a third finds the tree up to date. Then
# `build all` as the user (the kernel from build_all's cache) and a boot
# of that tree under qemu raspi3b to `login:`.
. "$TESTS_DIR/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (creates a user with a subordinate range)"
need useradd usermod userdel runuser mmdebstrap newuidmap newgidmap
# qemu-aarch64 in binfmt_misc is root's one-time step (the user's checks
# name it): do it here as the admin would, rather than depend on a root
# `rpifs build` having run before (a fresh machine has no entry until then).
if [ "$(uname -m)" != aarch64 ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	need update-binfmts
	[ -e /proc/sys/fs/binfmt_misc/status ] ||
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
		skip "binfmt_misc cannot be mounted here (a container without it)"
	update-binfmts --enable qemu-aarch64 || fail "update-binfmts --enable qemu-aarch64"
	[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || fail "qemu-aarch64 still not registered"
	note "registered qemu-aarch64 with binfmt_misc (root's one-time step)"
fi

user=rpifs-rl$$
# Remove the user (userdel drops its /etc/subuid and /etc/subgid lines too)
# before lib.sh's cleanup removes $T.
trap 'userdel "$user" 2>/dev/null || true; cleanup' EXIT
useradd -M -d /nonexistent -s /usr/sbin/nologin "$user" || fail "useradd $user"
uid=$(id -u "$user")
gid=$(id -g "$user")
# useradd gives a range when /etc/subuid exists (SUB_UID_COUNT); else one
# above every range handed out so far.
if ! grep -q "^$user:" /etc/subuid 2>/dev/null || ! grep -q "^$user:" /etc/subgid 2>/dev/null; then
	top=$(cat /etc/subuid /etc/subgid 2>/dev/null |
		awk -F: 'BEGIN { m = 100000 } $2 + $3 > m { m = $2 + $3 } END { print m }')
	usermod --add-subuids "$top-$((top + 65535))" --add-subgids "$top-$((top + 65535))" "$user" ||
		fail "usermod --add-subuids"
fi
IFS=: read -r _ sub count < <(grep -m1 "^$user:" /etc/subuid)
IFS=: read -r _ gsub gcount < <(grep -m1 "^$user:" /etc/subgid)
[ "$sub:$count" = "$gsub:$gcount" ] || skip "useradd gave different subuid/subgid ranges"
note "user $user ($uid:$gid), subordinate ids $sub:$count"
as_user() { runuser -u "$user" -- "$@"; }
as_user test -x "$RPIFS" || skip "$RPIFS is not reachable by $user"

chmod 755 "$T"
W=$T/w
mkdir "$W"
chown "$user:" "$W"
R=$W/pi

# 1. The checks pass: the build stops at the unreachable mirror, after them.
# A leftover of an interrupted run, owned by the namespace's root, is
# removed first (the user alone could not).
mkdir -p "$R.rpifs/tmp/rootfs.old/etc"
echo x > "$R.rpifs/tmp/rootfs.old/etc/f"
chown "$user:" "$R.rpifs" "$R.rpifs/tmp"
chown -R "$sub:$sub" "$R.rpifs/tmp/rootfs.old"
start=$(date +%s%N)
as_user "$RPIFS" build rootfs "$R" --mirror http://127.0.0.1:9/debian >"$T/out" 2>&1 &&
	{ cat "$T/out"; fail "the build with an unreachable mirror succeeded"; }
note "checks + namespace entries + failing mirror: $(( ($(date +%s%N) - start) / 1000000 )) ms"
grep -q "mirror http://127.0.0.1:9/debian unreachable" "$T/out" || { cat "$T/out"; fail "did not get to the mirror"; }
grep -q "mmdebstrap --mode=unshare as a user" "$R.rpifs/logs/rootfs.log" || fail "log: not the user's mode"
grep -q "user namespace: $user's ids $sub\.\.$((sub + count - 1)) are 0\.\.$((count - 1)) inside" \
	"$R.rpifs/logs/rootfs.log" || { cat "$R.rpifs/logs/rootfs.log"; fail "log: no namespace map"; }
[ ! -e "$R" ] || fail "a failed build left $R"
[ ! -e "$R.rpifs/idmap" ] || fail "a failed build left an idmap"
[ ! -e "$R.rpifs/tmp/rootfs.old" ] || fail "the namespace root's leftover was not removed"
[ -z "$(ls -A "$R.rpifs/tmp" 2>/dev/null)" ] || fail "leftovers in $R.rpifs/tmp: $(ls -A "$R.rpifs/tmp")"

# 2. A directory the namespace's root cannot enter: refused, naming it.
mkdir -m 700 "$W/private"
chown "$user:" "$W/private"
as_user "$RPIFS" build rootfs "$W/private/pi" --mirror http://127.0.0.1:9/debian >"$T/out" 2>&1 &&
	fail "a build below a 0700 directory succeeded"
grep -q "$W/private (mode 0700) does not let others in" "$T/out" || { cat "$T/out"; fail "no reason"; }
grep -q "chmod o+x $W/private" "$T/out" || { cat "$T/out"; fail "no command"; }
[ -z "$(ls -A "$W/private")" ] || fail "the refused build created $(ls -A "$W/private")"

# A tree of root's: the user's namespace could not move it aside, so the
# build refuses at once, not after the bootstrap.
mkdir -p "$W/roots/etc"
echo x > "$W/roots/etc/f"
as_user "$RPIFS" build rootfs "$W/roots" --force --mirror http://127.0.0.1:9/debian >"$T/out" 2>&1 &&
	fail "replacing root's tree as a user succeeded"
grep -q "$W/roots belongs to uid 0, not to $user's user namespace" "$T/out" || { cat "$T/out"; fail "no reason"; }
[ -f "$W/roots/etc/f" ] && [ ! -e "$W/roots.rpifs" ] || fail "the refused build touched $W/roots"

# 3. debootstrap is root's.
as_user "$RPIFS" build rootfs "$R" --mode root >"$T/out" 2>&1 && fail "--mode root as a user succeeded"
grep -q -- "--mode root needs root" "$T/out" || { cat "$T/out"; fail "--mode root: no reason"; }

# 4. The later stages as the user on a tree made in its namespace: a small
# fake one (the namespace root's, with the map the rootfs stage writes).
# What they install must be the namespace root's on the host, root's in the
# image, and replaceable by a later run.
F=$W/fake
mkdir -p "$F/boot" "$F/etc" "$F/usr/lib/modules" "$F.rpifs"
ln -s usr/lib "$F/lib"
printf '# Written by `rpifs build rootfs`.\nPARTUUID=00000001-02  /  ext4  defaults  0  1\n' > "$F/etc/fstab"
printf 'kernel' > "$F/boot/vmlinuz-6.1.0-fake"
chown -R "$sub:$sub" "$F"
chown "$user:" "$F.rpifs"
printf '%s:0:%s\n%s:0:1\n0:0:1\n' "$sub" "$count" "$uid" > "$F.rpifs/idmap"
mkdir -p "$T/fw/firmware/overlays"
printf 'bootcode' > "$T/fw/firmware/bootcode.bin"
head -c 50000 /dev/urandom > "$T/fw/firmware/start.elf"
printf 'fixup' > "$T/fw/firmware/fixup.dat"
printf 'dtbo' > "$T/fw/firmware/overlays/disable-bt.dtbo"
tar -czf "$T/fw.tar.gz" -C "$T/fw" .
chmod 644 "$T/fw.tar.gz"
start=$(date +%s%N)
for i in 1 2; do   # the second run replaces what the first wrote (--force)
	as_user "$RPIFS" build firmware "$F" --from "$T/fw.tar.gz" --force >"$T/out" 2>&1 ||
		{ cat "$T/out"; fail "build firmware as $user (run $i)"; }
	as_user "$RPIFS" build config "$F" --disk-id 0x1234abcd --force >"$T/out" 2>&1 ||
		{ cat "$T/out"; fail "build config as $user (run $i)"; }
done
note "firmware + config as $user, twice: $(( ($(date +%s%N) - start) / 1000000 )) ms"
cmp -s "$T/fw/firmware/start.elf" "$F/boot/start.elf" || fail "start.elf differs from the source"
grep -q "root=PARTUUID=1234abcd-02" "$F/boot/cmdline.txt" || fail "cmdline.txt: $(cat "$F/boot/cmdline.txt")"
grep -q "^PARTUUID=1234abcd-02" "$F/etc/fstab" || fail "fstab not updated: $(cat "$F/etc/fstab")"
grep -q "^kernel=vmlinuz-6.1.0-fake" "$F/boot/config.txt" || fail "config.txt: $(cat "$F/boot/config.txt")"
for f in boot boot/start.elf boot/bootcode.bin boot/fixup.dat boot/overlays boot/overlays/disable-bt.dtbo \
	 boot/config.txt boot/cmdline.txt etc/fstab; do
	[ "$(stat -c %u:%g "$F/$f")" = "$sub:$sub" ] ||
		fail "host: $f is $(stat -c %u:%g "$F/$f"), want the namespace's root $sub:$sub"
done
[ -z "$(ls -A "$F.rpifs/tmp" 2>/dev/null)" ] || fail "leftovers in $F.rpifs/tmp: $(ls -A "$F.rpifs/tmp")"

# The kernel stage: with a built kernel tree in the cache build_all leaves
# (its kbuild output, copied: make and depmod install into a staging tree
# as the user, the namespace moves it in). A compile as the user: RPIFS_LONG.
KSRC=$BUILD_ROOT/cache/linux-source-6.1
KB=$BUILD_ROOT/cache/kernel
# kcache: is there one; kcopy: the user's copy, and the --config it was
# built with (same stamps: no compile).
kcache() {
	[ -f "$KB/.rpifs-build" ] && [ -f "$KB/arch/arm64/boot/Image" ] && [ -d "$KSRC" ] &&
		as_user test -r "$KSRC/Makefile" && command -v aarch64-linux-gnu-gcc >/dev/null
}
kcopy() {
	rm -rf "$W/kbuild"
	cp -a "$KB" "$W/kbuild"
	chown -R "$user:" "$W/kbuild"
	kcfg=$(sed -n 's/^config=//p' "$KB/.rpifs-config")
	[ "$kcfg" != - ] || kcfg=defconfig
}
if kcache; then
	start=$(date +%s%N)
	kcopy
	as_user nice -n 10 "$RPIFS" build kernel "$F" --src "$KSRC" --build-dir "$W/kbuild" \
		--config "$kcfg" >"$T/out" 2>&1 || { cat "$T/out"; fail "build kernel as $user"; }
	note "kernel install as $user (copy of the cache included): $(( ($(date +%s%N) - start) / 1000000 )) ms"
	grep -q "not recompiled" "$T/out" || note "the cached kernel was rebuilt: $(grep -c . "$T/out") lines"
	rel=$(cat "$F.rpifs/kernel-release")
	for f in "boot/vmlinuz-$rel" "boot/System.map-$rel" "boot/config-$rel" boot/broadcom \
		 boot/broadcom/bcm2837-rpi-3-b.dtb; do
		[ "$(stat -c %u:%g "$F/$f")" = "$sub:$sub" ] ||
			fail "host: $f is $(stat -c %u:%g "$F/$f" 2>&1), want $sub:$sub"
	done
	cmp -s "$KB/arch/arm64/boot/Image" "$F/boot/vmlinuz-$rel" || fail "vmlinuz differs from the Image"
	if grep -qx CONFIG_MODULES=y "$KB/.config"; then
		[ -s "$F/lib/modules/$rel/modules.dep" ] || fail "no modules.dep"
		[ "$(stat -c %u:%g "$F/usr/lib/modules/$rel")" = "$sub:$sub" ] || fail "lib/modules/$rel not $sub's"
	fi
	as_user "$RPIFS" build config "$F" >"$T/out" 2>&1 || { cat "$T/out"; fail "config after kernel"; }
	grep -q "^kernel=vmlinuz-$rel" "$F/boot/config.txt" || fail "config.txt does not boot $rel"
	rm -rf "$W/kbuild"
else
	note "no built kernel in $KB: the kernel stage as a user is not tried here"
fi

# Only the map's ids in the tree, then in the image (mounted as root).
bad=$(find "$F" \( ! -uid "$sub" -o ! -gid "$sub" \) -printf '%U:%G %p\n' | head -5)
[ -z "$bad" ] || fail "host: entries not the namespace root's: $bad"
need e2fsck debugfs
rpifs_mount "$F" "$T/mnt"
root_part "$T/mnt/disk.img" "$T/fake-p2.img"
rpifs_umount "$T/mnt"
[ "$(inode_owner "$T/fake-p2.img" /etc/fstab)" = 0:0 ] ||
	fail "image: etc/fstab is $(inode_owner "$T/fake-p2.img" /etc/fstab)"
loop_mount "$T/fake-p2.img" "$T/fake-p2"
grep -q "^PARTUUID=1234abcd-02" "$T/fake-p2/etc/fstab" || fail "image: fstab not the new one"
bad=$(find "$T/fake-p2" -xdev \( ! -uid 0 -o ! -gid 0 \) -printf '%U:%G %p\n' | head -5)
[ -z "$bad" ] || fail "image: entries not root's: $bad"
umount "$T/fake-p2"

# A directory root left (a run with sudo): refused up front, naming it and
# the chown that gives it back; nothing written.
chown 0:0 "$F/boot/overlays"
before=$(stat -c %Y.%i "$F/boot/start.elf")
as_user "$RPIFS" build firmware "$F" --from "$T/fw.tar.gz" --force >"$T/out" 2>&1 &&
	fail "firmware into a directory of root's succeeded"
grep -qF "$F/boot/overlays belongs to 0:0, an id $user's user namespace does not map" "$T/out" &&
	grep -qF "sudo chown -R $sub:$sub $F/boot/overlays" "$T/out" || { cat "$T/out"; fail "no reason"; }
[ "$(stat -c %Y.%i "$F/boot/start.elf")" = "$before" ] || fail "the refused run replaced start.elf"
chown "$sub:$sub" "$F/boot/overlays"
# Another range in the map: another user's tree.
sed -i "s/^$sub:0:$count\$/$((sub + count)):0:$count/" "$F.rpifs/idmap"
as_user "$RPIFS" build config "$F" --force >"$T/out" 2>&1 && fail "config on another range's tree succeeded"
grep -qF "was made in the user namespace of ids $((sub + count)):$count" "$T/out" || { cat "$T/out"; fail "no reason"; }

if [ "${RPIFS_LONG:-0}" != 1 ]; then
	note "the bootstrap itself runs with RPIFS_LONG=1"
	echo ok
	exit 0
fi

# 5. The real build.
need debugfs e2fsck getfattr getfacl losetup
start=$(date +%s)
echo secret | as_user nice -n 10 "$RPIFS" build rootfs "$R" --include iputils-ping,libcap2-bin \
	--hostname rootless --root-password - 2>&1 | tee "$T/out"
[ "${PIPESTATUS[1]}" = 0 ] || fail "rpifs build rootfs as $user failed"
note "build rootfs as $user took $(( $(date +%s) - start )) s"
grep -qE "^\[1/1\] rootfs: done in" "$T/out" || fail "no result line"

# On the host: subordinate ids, as the namespace left them.
[ "$(stat -c '%u:%g %a' "$R/usr/bin/passwd")" = "$sub:$sub 4755" ] ||
	fail "host: passwd is $(stat -c '%u:%g %a' "$R/usr/bin/passwd"), want $sub:$sub 4755"
[ "$(stat -c '%u:%g %a' "$R/etc/shadow")" = "$sub:$((sub + 42)) 640" ] ||
	fail "host: shadow is $(stat -c '%u:%g %a' "$R/etc/shadow")"
[ "$(stat -c '%u' "$R/etc/fstab" "$R/etc/hostname" "$R")" = "$(printf '%s\n' $sub $sub $sub)" ] ||
	fail "host: fstab, hostname or / not owned by the namespace's root"
hexsub=$(printf '%08x' "$sub" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')
getfattr -e hex -n security.capability "$R/usr/bin/ping" 2>/dev/null | grepq "=0x0100000300200000000000000000000000000000$hexsub" ||
	fail "host: ping's capability is not v3 cap_net_raw for root id $sub:" \
		"$(getfattr -e hex -n security.capability "$R/usr/bin/ping" 2>&1)"

# The map the mount reads.
grep -qx "$sub:0:$count" "$R.rpifs/idmap" || fail "idmap lacks $sub:0:$count: $(cat "$R.rpifs/idmap")"
grep -qx "$uid:0:1" "$R.rpifs/idmap" || fail "idmap lacks $uid:0:1"
grep -qx "0:0:1" "$R.rpifs/idmap" || fail "idmap lacks 0:0:1"

# The configuration ran.
grep -q "^PARTUUID=.*-02  /  " "$R/etc/fstab" || fail "no fstab"
[ "$(cat "$R/etc/hostname")" = rootless ] || fail "hostname: $(cat "$R/etc/hostname")"
[ -L "$R/etc/systemd/system/getty.target.wants/serial-getty@ttyAMA0.service" ] || fail "no serial getty"
grep -q '^root:\$' "$R/etc/shadow" || fail "root has no password hash"

# The image, as root (no options: the map comes from ROOTFS.rpifs/idmap).
rpifs_mount "$R" "$T/mnt"
root_part "$T/mnt/disk.img" "$T/p2.img"
rpifs_umount "$T/mnt"
owner() { inode_owner "$T/p2.img" "$1"; }
[ "$(owner /usr/bin/passwd)" = 0:0 ] || fail "debugfs: passwd owner $(owner /usr/bin/passwd)"
[ "$(owner /etc/shadow)" = 0:42 ] || fail "debugfs: shadow owner $(owner /etc/shadow)"

loop_mount "$T/p2.img" "$T/p2"
st() { stat -c '%u:%g %a' "$T/p2/$1"; }
[ "$(st usr/bin/passwd)" = "0:0 4755" ] || fail "passwd: $(st usr/bin/passwd), want 0:0 4755"
[ "$(st etc/shadow)" = "0:42 640" ] || fail "shadow: $(st etc/shadow), want 0:42 640"
[ "$(st etc/hostname)" = "0:0 644" ] || fail "hostname: $(st etc/hostname)"
cap=$(getfattr -e hex -n security.capability "$T/p2/usr/bin/ping" 2>/dev/null |
	sed -n 's/^security.capability=//p')
[ "$cap" = 0x0100000200200000000000000000000000000000 ] ||
	fail "ping's capability in the image: '$cap', want v2 cap_net_raw+ep"
if command -v getcap >/dev/null; then
	getcap "$T/p2/usr/bin/ping" | grepq "cap_net_raw=ep" || fail "getcap: $(getcap "$T/p2/usr/bin/ping")"
fi
bad=$(find "$T/p2" -xdev \( -uid +99999 -o -gid +99999 -o -uid "$uid" -o -gid "$gid" \) -printf '%U:%G %p\n' | head -5)
[ -z "$bad" ] || fail "host ids in the image: $bad"
bad=$(getfacl -R -n -p -s "$T/p2" 2>/dev/null | grep -E ':(1[0-9]{5,}|'"$uid"'):' | head -5 || true)
[ -z "$bad" ] || fail "host ids in the image's ACLs: $bad"
note "image: $(find "$T/p2" -xdev | wc -l) entries, owners $(find "$T/p2" -xdev -printf '%U\n' | sort -un | tr '\n' ' ')"
umount "$T/p2"

# 6. Only the hostname changes: re-applied in the namespace, no bootstrap.
start=$(date +%s)
as_user "$RPIFS" build rootfs "$R" --include iputils-ping,libcap2-bin --hostname again \
	>"$T/out" 2>&1 || { cat "$T/out"; fail "the re-run failed"; }
note "re-apply: $(( $(date +%s) - start )) s"
grep -q "tree up to date; fstab, hostname, getty reapplied" "$T/out" || { cat "$T/out"; fail "not re-applied"; }
[ "$(cat "$R/etc/hostname")" = again ] || fail "hostname not changed"
[ "$(stat -c %u "$R/etc/hostname")" = "$sub" ] || fail "re-applied hostname owned by $(stat -c %u "$R/etc/hostname")"
as_user "$RPIFS" build rootfs "$R" --include iputils-ping,libcap2-bin --hostname again \
	>"$T/out" 2>&1 || { cat "$T/out"; fail "the third run failed"; }
grep -q "up to date" "$T/out" || { cat "$T/out"; fail "third run: not up to date"; }

# 7. `build all` as the user on that tree: rootfs up to date, the kernel
# installed from build_all's cache, raspi-firmware from the host's mirror,
# config; in the image fstab and /lib/modules are root's and no host id
# is left. 8. That tree boots under qemu raspi3b to login:.
if ! kcache; then
	note "no built kernel in $KB: build all as $user not tried"
	echo ok
	exit 0
fi
kcopy
start=$(date +%s)
as_user nice -n 10 "$RPIFS" build all "$R" --include iputils-ping,libcap2-bin --hostname again \
	--src "$KSRC" --build-dir "$W/kbuild" --config "$kcfg" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "build all as $user failed"; }
note "build all as $user (rootfs up to date): $(( $(date +%s) - start )) s"
for st in rootfs kernel firmware config; do
	grep -qE "^\[[1-4]/4\] $st: (done in|up to date)" "$T/out" || { cat "$T/out"; fail "no result line for $st"; }
done
rel=$(cat "$R.rpifs/kernel-release")
for f in "boot/vmlinuz-$rel" boot/start.elf boot/config.txt boot/cmdline.txt etc/fstab; do
	[ "$(stat -c %u:%g "$R/$f")" = "$sub:$sub" ] || fail "host: $f is $(stat -c %u:%g "$R/$f")"
done
rpifs_mount "$R" "$T/mnt"
root_part "$T/mnt/disk.img" "$T/p2b.img"
rpifs_umount "$T/mnt"
loop_mount "$T/p2b.img" "$T/p2b"
[ "$(stat -c '%u:%g' "$T/p2b/etc/fstab")" = 0:0 ] || fail "image: fstab not root's"
# /lib/modules: only where the kernel has modules (rpi3-minimal has none).
if [ -d "$T/p2b/usr/lib/modules/$rel" ]; then
	[ "$(stat -c '%u:%g' "$T/p2b/usr/lib/modules")" = 0:0 ] || fail "image: /lib/modules not root's"
	bad=$(find "$T/p2b/usr/lib/modules/$rel" \( ! -uid 0 -o ! -gid 0 \) | head -3)
	[ -z "$bad" ] || fail "image: lib/modules/$rel not root's: $bad"
fi
bad=$(find "$T/p2b" -xdev \( -uid +99999 -o -gid +99999 -o -uid "$uid" -o -gid "$gid" \) -printf '%U:%G %p\n' | head -5)
[ -z "$bad" ] || fail "host ids in the image after build all: $bad"
umount "$T/p2b"

# 8. The user's tree boots: qemu raspi3b from disk.img served by a plain
# mount (the map from ROOTFS.rpifs/idmap) to systemd's login prompt; the
# console log itself must hold it (not only rpifs qemu's word).
need qemu-system-aarch64
start=$(date +%s)
timeout 600 "$RPIFS" qemu --timeout 540 --until "login:" "$R" >"$T/boot.log" 2>&1 </dev/null ||
	{ tail -40 "$T/boot.log"; fail "the tree built by $user did not boot to login:"; }
grep -q "again login:" "$T/boot.log" || { tail -40 "$T/boot.log"; fail "no 'again login:' on the console"; }
note "boot of $user's tree to login: $(( $(date +%s) - start )) s"
echo ok
