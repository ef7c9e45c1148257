#!/usr/bin/env bash
# Archives are unpacked without any path leaving the target: "..", absolute
# paths, escaping symlinks and hard links are refused (naming the entry);
# absolute symlinks resolve inside the target; usrmerge-style directory
# symlinks keep working. Exercised through `build firmware --from`, whose
# unpacking goes to a scratch directory: a refused archive leaves
# ROOTFS/boot untouched.
. "$TESTS_DIR/lib.sh"
need python3 ar
MKTAR=$TESTS_DIR/build/mktar.py

R=$T/root
mkdir -p "$R/boot" "$T/a"
cd "$T/a"
FW=(file:fw/bootcode.bin=B file:fw/start.elf=S file:fw/fixup.dat=F)

# refused ARCHIVE PATTERN: --from ARCHIVE fails with PATTERN, boot stays empty.
refused() {
	if "$RPIFS" build firmware "$R" --from "$T/a/$1" >"$T/out" 2>&1; then
		cat "$T/out"; fail "$1 was accepted"
	fi
	grep -qE -- "$2" "$T/out" || { cat "$T/out"; fail "$1: no message matching '$2'"; }
	[ -z "$(ls -A "$R/boot")" ] || fail "$1: boot/ not empty: $(ls "$R/boot")"
	[ -z "$(ls -A "$R.rpifs/tmp" 2>/dev/null)" ] || fail "$1: scratch left behind"
}

python3 "$MKTAR" dotdot.tar "${FW[@]}" file:../evil=x
refused dotdot.tar "entry \\.\\./evil: \"\\.\\.\" in the path refused"
python3 "$MKTAR" middle.tar.gz "${FW[@]}" file:fw/../../evil=x
refused middle.tar.gz "entry fw/\\.\\./\\.\\./evil: \"\\.\\.\" in the path refused"
python3 "$MKTAR" abs.tar.xz "${FW[@]}" "file:$T/abs-evil=x"
refused abs.tar.xz "entry $T/abs-evil: absolute path refused"
python3 "$MKTAR" esc.tar sym:link=../../../../../../.. file:link/evil=x "${FW[@]}"
refused esc.tar "entry link: symlink to (\\.\\./)+\\.\\. leads out of the target, refused"
python3 "$MKTAR" esc2.tar dir:d sym:d/up=../.. "${FW[@]}"
refused esc2.tar "entry d/up: symlink to \\.\\./\\.\\. leads out of the target"
python3 "$MKTAR" hard.tar "${FW[@]}" hard:h=../../etc/passwd
refused hard.tar "hard link h -> \\.\\./\\.\\./etc/passwd: \"\\.\\.\" in the path refused"
printf 'not an archive' > junk.tar
refused junk.tar "junk.tar: .*(Unrecognized archive format|format)"

# The same inside a .deb (an ar archive holding data.tar.xz).
mkdir deb && (cd deb &&
	python3 "$MKTAR" data.tar.xz file:./usr/lib/raspi-firmware/bootcode.bin=B \
		file:./usr/lib/raspi-firmware/start.elf=S file:./usr/lib/raspi-firmware/fixup.dat=F \
		file:./../evil=x &&
	python3 "$MKTAR" control.tar.xz file:./control=x &&
	echo 2.0 > debian-binary && ar rc ../evil.deb debian-binary control.tar.xz data.tar.xz)
refused evil.deb "evil.deb: entry \\./\\.\\./evil: \"\\.\\.\" in the path refused"

# Nothing landed outside.
[ ! -e "$T/evil" ] && [ ! -e "$T/a/evil" ] && [ ! -e "$T/abs-evil" ] || fail "an entry escaped"

# An absolute symlink is resolved inside the target: the file written
# through it lands in the scratch tree, not on the host.
python3 "$MKTAR" abslink.tar "sym:abs=$T/outside" file:abs/pwned=x "${FW[@]}"
"$RPIFS" build firmware "$R" --from "$T/a/abslink.tar" >"$T/out" 2>&1 || { cat "$T/out"; fail "abslink.tar refused"; }
[ ! -e "$T/outside" ] || fail "a write through an absolute symlink left the target"

# usrmerge: "lib -> usr/lib" then "lib/..." entries go to usr/lib; a hard
# link inside the archive works; the firmware is found under usr/lib/fw.
python3 "$MKTAR" merged.tar dir:usr dir:usr/lib sym:lib=usr/lib dir:lib/fw \
	file:lib/fw/bootcode.bin=b2 file:lib/fw/start.elf=s2 hard:lib/fw/fixup.dat=lib/fw/start.elf
"$RPIFS" build firmware "$R" --from "$T/a/merged.tar" --force >"$T/out" 2>&1 || { cat "$T/out"; fail "merged.tar refused"; }
grep -q "installing from $T/a/merged.tar/usr/lib/fw" "$T/out" || { cat "$T/out"; fail "not found under usr/lib/fw"; }
[ "$(cat "$R/boot/bootcode.bin")" = b2 ] && [ "$(cat "$R/boot/fixup.dat")" = s2 ] || fail "wrong content"
echo ok
