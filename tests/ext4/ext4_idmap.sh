#!/usr/bin/env bash
# Owners of a tree made in a user namespace (--idmap, ROOTFS.rpifs/idmap).
#
# A tree as mmdebstrap --mode=unshare leaves it on the host: root inside is
# host id 100000, so every owner is 100000 + the namespace's id; POSIX ACLs
# hold host ids; a capability set by the namespace's root is v3 with root
# id 100000. Mounted with --idmap 100000:0:65536 the image must show what
# the namespace saw, checked by the kernel's ext4 (a loop mount of a copy
# of partition 2: stat, getfacl, getcap, getfattr) and by debugfs:
#  - passwd root:root 4755, shadow root:shadow 0640, a user's home 1000;
#  - ACLs of /var/log/journal with image ids (access and default);
#  - ping's security.capability is v2 cap_net_raw+ep (20 bytes);
#  - no id >= 65536 anywhere; e2fsck -fn clean; the tree unchanged;
# and: the map left next to the tree (ROOTFS.rpifs/idmap) gives the same
# bytes without options; the nbdkit plugin's idmap= too (when built); an id
# outside the map is refused naming the file; overlapping or malformed
# ranges are refused.
. "$TESTS_DIR/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (chown to subordinate ids, FUSE, loop mount)"
need debugfs e2fsck setfacl getfacl setfattr getfattr getcap losetup
export SOURCE_DATE_EPOCH=1700000000

R=$T/rootfs
mkdir -p "$R"/{boot,etc,usr/bin,var/log/journal,home/pi,lib/modules/6.1.0}
echo "console=serial0,115200 root=PARTUUID=1d3a0001-02 rootwait" > "$R/boot/cmdline.txt"
echo "arm_64bit=1" > "$R/boot/config.txt"
echo "root:*:19000:0:99999:7:::" > "$R/etc/shadow"
head -c 20000 /dev/urandom > "$R/usr/bin/passwd"
head -c 30000 /dev/urandom > "$R/usr/bin/ping"
echo module > "$R/lib/modules/6.1.0/modules.dep"
echo hi > "$R/home/pi/.profile"
chown -R 100000:100000 "$R"
chown 100000:100042 "$R/etc/shadow"         # root:shadow inside
chmod 0640 "$R/etc/shadow"
chmod 4755 "$R/usr/bin/passwd"
chown -R 101000:101000 "$R/home/pi"         # pi (1000) inside
chown 100000:100004 "$R/var/log/journal"    # root:adm inside
setfacl -m u:101000:rwx,g:100004:r-x "$R/var/log/journal"
setfacl -d -m u:101000:rwx,g:100004:r-x "$R/var/log/journal"
# cap_net_raw (bit 13) permitted + effective, v3 for root id 100000: what
# setcap by the namespace's root leaves (the kernel keeps v3 on disk).
setfattr -n security.capability \
	-v 0x0100000300200000000000000000000000000000a0860100 "$R/usr/bin/ping" ||
	skip "this filesystem refuses a v3 security.capability"
getfattr -e hex -n security.capability "$R/usr/bin/ping" 2>/dev/null | grepq '=0x0100000300200000000000000000000000000000a0860100' ||
	fail "setup: the host does not show ping's capability as v3 root id 100000"
before=$(tree_sums "$R")

rpifs_mount "$R" "$T/mnt" --idmap 100000:0:65536
sha_flag=$(sha256sum < "$T/mnt/disk.img")
root_part "$T/mnt/disk.img" "$T/p2.img"
rpifs_umount "$T/mnt"

# debugfs: owners as numbers in the inode.
owner() { inode_owner "$T/p2.img" "$1"; }
[ "$(owner /usr/bin/passwd)" = 0:0 ] || fail "debugfs: passwd owner $(owner /usr/bin/passwd)"
[ "$(owner /etc/shadow)" = 0:42 ] || fail "debugfs: shadow owner $(owner /etc/shadow)"

# The kernel's view.
loop_mount "$T/p2.img" "$T/p2"
st() { stat -c '%u:%g %a' "$T/p2/$1"; }
[ "$(st usr/bin/passwd)" = "0:0 4755" ] || fail "passwd: $(st usr/bin/passwd), want 0:0 4755"
[ "$(st etc/shadow)" = "0:42 640" ] || fail "shadow: $(st etc/shadow), want 0:42 640"
[ "$(st home/pi)" = "1000:1000 755" ] || fail "home/pi: $(st home/pi)"
[ "$(st lib/modules/6.1.0/modules.dep)" = "0:0 644" ] || fail "modules.dep: $(st lib/modules/6.1.0/modules.dep)"
acl=$(getfacl -n -p "$T/p2/var/log/journal" 2>/dev/null)
for want in "user:1000:rwx" "group:4:r-x" "default:user:1000:rwx" "default:group:4:r-x"; do
	grep -qx "$want" <<<"$acl" || { echo "$acl"; fail "journal ACL: no '$want'"; }
done
grep -q '10[0-9][0-9][0-9][0-9]' <<<"$acl" && { echo "$acl"; fail "journal ACL holds a host id"; }
cap=$(getfattr -e hex -n security.capability "$T/p2/usr/bin/ping" 2>/dev/null |
	sed -n 's/^security.capability=//p')
[ "$cap" = 0x0100000200200000000000000000000000000000 ] ||
	fail "ping's capability: $cap, want v2 cap_net_raw+ep"
getcap "$T/p2/usr/bin/ping" | grepq 'cap_net_raw=ep' || fail "getcap: $(getcap "$T/p2/usr/bin/ping")"
high=$(find "$T/p2" \( -uid +65535 -o -gid +65535 \) -print | head -5)
[ -z "$high" ] || fail "host ids left in the image: $high"
umount "$T/p2"

# The map the build leaves next to the tree: the same bytes, no options.
mkdir "$R.rpifs"
printf '# rpifs build: mmdebstrap --mode=unshare\n100000:0:65536\n' > "$R.rpifs/idmap"
rpifs_mount "$R" "$T/mnt"
[ "$(sha256sum < "$T/mnt/disk.img")" = "$sha_flag" ] ||
	fail "ROOTFS.rpifs/idmap does not give the image --idmap gives"
rpifs_umount "$T/mnt"

# The nbdkit plugin's idmap= key: the same bytes (when it is built).
plugin=$BUILD_ROOT/src/nbdkit/nbdkit-rpifs-plugin.so
if [ -f "$plugin" ] && command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null &&
   ! ldd "$plugin" | grepq libasan; then
	rm -rf "$R.rpifs"
	nbdkit -U - "$plugin" "$R" idmap=100000:0:65536 --run "nbdcopy \"\$uri\" $T/nbd.img" ||
		fail "nbdkit idmap="
	[ "$(sha256sum < "$T/nbd.img")" = "$sha_flag" ] || fail "nbdkit idmap= gives other bytes"
	rm -f "$T/nbd.img"
fi
rm -rf "$R.rpifs"
[ "$before" = "$(tree_sums "$R")" ] || fail "the tree changed"

# Refusals: each a message, a non-zero exit, no mount.
refused() {   # refused WHAT PATTERN rpifs-options...
	local what=$1 pat=$2; shift 2
	mkdir -p "$T/m2"
	if "$RPIFS" "$@" "$R" "$T/m2" >"$T/err" 2>&1; then
		fusermount3 -u "$T/m2" 2>/dev/null || true
		fail "$what: mounted"
	fi
	grep -q -- "$pat" "$T/err" || { cat "$T/err"; fail "$what: no message matching '$pat'"; }
}
refused "overlapping ranges" "overlap" --idmap 100000:0:65536 --idmap 100100:70000:5
refused "a malformed range" "--idmap 100000:0:: not HOST:IMAGE:COUNT" --idmap 100000:0:
refused "a zero count" "not HOST:IMAGE:COUNT" --idmap 100000:0:0
# An id outside the map: the file is named.
echo x > "$T/stray" && cp -p "$T/stray" "$R/etc/stray" && chown 5:100000 "$R/etc/stray"
refused "an unmapped owner" "etc/stray: id 5 (owner) is outside the id map" --idmap 100000:0:65536
grep -q "1 entry with ids outside the id map" "$T/err" || { cat "$T/err"; fail "no summary line"; }
rm "$R/etc/stray"
setfacl -m u:7:r "$R/home/pi/.profile"
refused "an unmapped ACL id" "home/pi/.profile: id 7 (system.posix_acl_access)" --idmap 100000:0:65536
setfacl -b "$R/home/pi/.profile"

note "ok"
