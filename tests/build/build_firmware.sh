#!/usr/bin/env bash
# `build firmware --from` a directory, a tar, a .deb: the board's files land
# in ROOTFS/boot (with overlays/), each verified; missing or empty files are
# refused by name; a second run is up to date; --board picks the file set.
. "$TESTS_DIR/lib.sh"
need python3
MKTAR=$TESTS_DIR/build/mktar.py

R=$T/root
mkdir -p "$R/boot" "$T/fw/boot/overlays" "$T/fw/other"
printf 'bootcode' > "$T/fw/boot/bootcode.bin"
head -c 100000 /dev/urandom > "$T/fw/boot/start.elf"
printf 'fixup' > "$T/fw/boot/fixup.dat"
printf 'dtbo' > "$T/fw/boot/overlays/disable-bt.dtbo"
printf 'decoy' > "$T/fw/other/start.elf"

run() { "$RPIFS" build "$@" >"$T/out" 2>&1 || { cat "$T/out"; fail "rpifs build $* failed"; }; }

# From a directory: the one holding all three files is found (not other/).
run firmware "$R" --from "$T/fw"
for f in bootcode.bin start.elf fixup.dat overlays/disable-bt.dtbo; do
	cmp -s "$T/fw/boot/$f" "$R/boot/$f" || fail "boot/$f differs from the source"
done
grep -q "done in" "$T/out" || fail "no done line: $(cat "$T/out")"
grep -q "firmware.log" <(ls "$R.rpifs/logs") || fail "no firmware log"
[ -f "$R.rpifs/stamps/firmware" ] || fail "no stamp"
[ ! -e "$R/boot/start4.elf" ] || fail "rpi3 got Pi 4 files"
# Nothing of rpifs's own inside ROOTFS.
[ -z "$(find "$R" -name '*.rpifs-tmp' -o -name '*.rpifs-old')" ] || fail "temporary files in ROOTFS"

# Up to date, then --force.
run firmware "$R" --from "$T/fw"
grep -q "firmware: up to date" "$T/out" || fail "second run not up to date: $(cat "$T/out")"
run firmware "$R" --from "$T/fw" --force
grep -q "firmware: done in" "$T/out" || fail "--force did not redo"

# A lost file makes the stage run again.
rm "$R/boot/fixup.dat"
run firmware "$R" --from "$T/fw"
[ -s "$R/boot/fixup.dat" ] || fail "fixup.dat not restored"

# From a tar.gz and from a .deb (dpkg-deb when present, else ar).
(cd "$T/fw/boot" && tar -czf "$T/fw.tar.gz" .)
rm -rf "$R/boot" && mkdir "$R/boot"
run firmware "$R" --from "$T/fw.tar.gz"
cmp -s "$T/fw/boot/start.elf" "$R/boot/start.elf" || fail "tar.gz: start.elf differs"
mkdir -p "$T/pkg/DEBIAN" "$T/pkg/usr/lib/raspi-firmware"
cp "$T/fw/boot/"*.* "$T/pkg/usr/lib/raspi-firmware/"
printf 'Package: fake-firmware\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n' \
	> "$T/pkg/DEBIAN/control"
if command -v dpkg-deb >/dev/null; then
	dpkg-deb --root-owner-group -Zxz -b "$T/pkg" "$T/fw.deb" >/dev/null
	rm -rf "$R/boot" && mkdir "$R/boot"
	run firmware "$R" --from "$T/fw.deb"
	cmp -s "$T/fw/boot/start.elf" "$R/boot/start.elf" || fail ".deb: start.elf differs"
	grep -q "installing from $T/fw.deb/usr/lib/raspi-firmware" "$T/out" || fail ".deb: wrong dir: $(cat "$T/out")"
fi

# Missing and empty files are refused by name; boot keeps what it had.
rm -rf "$R/boot" && mkdir "$R/boot"
mkdir -p "$T/bad"
printf 'b' > "$T/bad/bootcode.bin"; : > "$T/bad/start.elf"
"$RPIFS" build firmware "$R" --from "$T/bad" >"$T/out" 2>&1 && fail "incomplete firmware accepted"
grep -q "no directory holds all of rpi3's firmware (best: ./: start.elf empty or not a file, fixup.dat missing)" "$T/out" ||
	{ cat "$T/out"; fail "no message naming the missing files"; }
[ -z "$(ls -A "$R/boot")" ] || fail "boot/ not empty after a failure"
[ ! -e "$R.rpifs/stamps/firmware" ] || fail "stamp left after a failure"

# Board profiles: rpi4 needs start4.elf and fixup4.dat, not bootcode.bin.
"$RPIFS" build firmware "$R" --from "$T/fw" --board rpi4 >"$T/out" 2>&1 && fail "rpi4 accepted Pi 3 files"
grep -q "start4.elf missing, fixup4.dat missing" "$T/out" || { cat "$T/out"; fail "rpi4: no message"; }
printf 's4' > "$T/fw/boot/start4.elf"; printf 'f4' > "$T/fw/boot/fixup4.dat"
run firmware "$R" --from "$T/fw" --board rpi4
[ "$(cat "$R/boot/start4.elf")" = s4 ] || fail "rpi4: start4.elf"
run firmware "$R" --from "$T/fw" --board rpi02w
[ -s "$R/boot/bootcode.bin" ] || fail "rpi02w: bootcode.bin"
echo ok
