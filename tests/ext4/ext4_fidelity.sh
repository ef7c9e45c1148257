#!/usr/bin/env bash
# The ext4 partition holds the tree, every entry equal: names, types, modes
# (setuid/setgid/sticky), owners (ids above 65535), sizes, link counts,
# atime/mtime/ctime to the nanosecond, device numbers, symlink targets
# (fast and slow), file bytes (sparse files too), xattrs and POSIX ACLs.
# Read twice, through two independent implementations: the kernel's ext4
# driver (loop mount of a copy) and libext2fs (debugfs ls/stat/rdump).
# e2fsck -fn finds nothing; the superblock has mke2fs's ext4 features and
# the label; the kernel can also use the filesystem read-write.
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
need_root
need e2fsck debugfs dumpe2fs sfdisk python3

python3 "$E4/mktree.py" "$T/root" || fail "fixture generator failed"
# Snapshot first: serving the image reads (and re-times) the sources.
$COMPARE snap "$T/root" "$T/snap.json" --skip boot || fail "snapshot failed"

rpifs_mount "$T/root" "$T/mnt" --root-label testroot
img=$T/mnt/disk.img
off=$(part_start "$img" 2)
ext4_fsck "$img" "$off"

# Superblock: the feature set, the label, times from SOURCE_DATE_EPOCH.
sb=$(dumpe2fs -h "$img?offset=$off" 2>/dev/null)
feat=$(printf '%s\n' "$sb" | sed -n 's/^Filesystem features: *//p')
for f in has_journal ext_attr resize_inode dir_index filetype extent 64bit \
	 flex_bg sparse_super large_file huge_file dir_nlink extra_isize \
	 metadata_csum; do
	case " $feat " in *" $f "*) ;; *) fail "feature $f missing: $feat" ;; esac
done
for f in inline_data orphan_file; do
	case " $feat " in *" $f "*) fail "unexpected feature $f: $feat" ;; esac
done
printf '%s\n' "$sb" | grepq '^Filesystem volume name: *testroot$' ||
	fail "label is not testroot"
created=$(date -u -d @"$SOURCE_DATE_EPOCH" '+%a %b %e %H:%M:%S %Y')
for k in 'Filesystem created' 'Last write time' 'Last checked'; do
	v=$(TZ=UTC dumpe2fs -h "$img?offset=$off" 2>/dev/null | sed -n "s/^$k: *//p")
	[ "$v" = "$created" ] || fail "$k is '$v', want '$created' (SOURCE_DATE_EPOCH)"
done

# libext2fs's view: ls -p, stat <ino>, rdump.
extract_part "$img" 2 "$T/part.img"
out=$($COMPARE debugfs "$T/snap.json" "$T/part.img") ||
	{ echo "$out" >&2; fail "debugfs view differs from the source"; }
note "debugfs: $out"

# The kernel's view.
kmount "$T/part.img" "$T/k"
out=$($COMPARE kernel "$T/snap.json" "$T/k") ||
	{ echo "$out" >&2; fail "kernel view differs from the source"; }
note "kernel: $out"
if command -v getfacl >/dev/null; then
	want=$(cd "$T/root" && getfacl -n xattr/acl-file xattr/acl-dir 2>/dev/null)
	got=$(cd "$T/k" && getfacl -n xattr/acl-file xattr/acl-dir 2>/dev/null)
	[ "$want" = "$got" ] || { diff <(echo "$want") <(echo "$got") >&2; fail "ACLs differ"; }
	printf '%s\n' "$got" | grepq '^default:group:2000:rwx$' || fail "default ACL lost"
fi
[ -z "$(ls -A "$T/k/boot")" ] || fail "/boot is not empty in ext4"
[ "$(stat -c %a "$T/k/lost+found")" = 700 ] || fail "lost+found is not 0700"
kumount "$T/k"

# The kernel can write to it: add and remove files in an htree directory and
# a plain one, then e2fsck is still clean.
cp "$T/part.img" "$T/rw.img"
kmount "$T/rw.img" "$T/w" rw
for i in $(seq 1 500); do echo "$i" > "$T/w/dirs/many/new-$i"; done
rm -f "$T/w/dirs/many/entry-00"* "$T/w/files/text"
mkdir "$T/w/files/newdir" && echo hi > "$T/w/files/newdir/f"
cat "$T/w/files/random-1M" > /dev/null
kumount "$T/w"
ext4_fsck "$T/rw.img" 0
