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
# configuration in the namespace; a third finds the tree up to date.
. "$TESTS_DIR/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (creates a user with a subordinate range)"
need useradd usermod userdel runuser mmdebstrap newuidmap newgidmap
[ -d /proc/sys/fs/binfmt_misc ] && [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
	[ "$(uname -m)" = aarch64 ] || skip "qemu-aarch64 is not registered with binfmt_misc"

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
[ -z "$(ls -A "$R.rpifs/tmp")" ] || fail "leftovers in $R.rpifs/tmp: $(ls -A "$R.rpifs/tmp")"

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

if [ "${RPIFS_LONG:-0}" != 1 ]; then
	note "the bootstrap itself runs with RPIFS_LONG=1"
	echo ok
	exit 0
fi

# 4. The real build.
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
getfattr -e hex -n security.capability "$R/usr/bin/ping" 2>/dev/null |
	grep -q "=0x0100000300200000000000000000000000000000$hexsub" ||
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
	getcap "$T/p2/usr/bin/ping" | grep -q "cap_net_raw=ep" || fail "getcap: $(getcap "$T/p2/usr/bin/ping")"
fi
bad=$(find "$T/p2" -xdev \( -uid +99999 -o -gid +99999 -o -uid "$uid" -o -gid "$gid" \) -printf '%U:%G %p\n' | head -5)
[ -z "$bad" ] || fail "host ids in the image: $bad"
bad=$(getfacl -R -n -p -s "$T/p2" 2>/dev/null | grep -E ':(1[0-9]{5,}|'"$uid"'):' | head -5 || true)
[ -z "$bad" ] || fail "host ids in the image's ACLs: $bad"
note "image: $(find "$T/p2" -xdev | wc -l) entries, owners $(find "$T/p2" -xdev -printf '%U\n' | sort -un | tr '\n' ' ')"
umount "$T/p2"

# 5. Only the hostname changes: re-applied in the namespace, no bootstrap.
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
echo ok
