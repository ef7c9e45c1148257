#!/usr/bin/env bash
# rpifs qemu without booting: the qemu command it builds from config.txt as
# the firmware reads it (kernel=, initramfs FILE followkernel, device_tree=,
# os_prefix=, cmdline=, [pi3]/[pi4]/[all]/[none] sections), cmdline.txt
# without doubled blanks, "--" before qemu's own arguments, both serial ports
# on the terminal; and the exit status of --until and --timeout, with a
# stand-in qemu: 0 exactly when the text was printed.
. "$TESTS_DIR/lib.sh"

R=$T/rootfs
mkdir -p "$R/boot/broadcom" "$R/boot/v2"
printf 'k' > "$R/boot/kernel8.img"
printf 'k' > "$R/boot/vmlinuz-6.1"
printf 'k' > "$R/boot/pi4.img"
printf 'i' > "$R/boot/initrd.img-6.1"
printf 'd' > "$R/boot/broadcom/bcm2837-rpi-3-b.dtb"
printf 'root=LABEL=RASPIROOT rw  \n' > "$R/boot/cmdline.txt"

# The stand-in: records its arguments one a line, then does what $FAKE says.
cat > "$T/qemu" <<'FAKE'
#!/bin/sh
printf '%s\n' "$@" > "$ARGS"
case "$FAKE" in
print) echo "booting"; echo "Debian GNU/Linux 12 rpi login: "; exec sleep 30 ;;
silent0) exit 0 ;;
exit3) exit 3 ;;
hang) exec sleep 30 ;;
kill) kill -9 $$ ;;
aux)   # prints on the serial port that is not on the terminal (its FIFO)
	p=$(printf '%s\n' "$@" | sed -n 's/^pipe://p')
	echo "Debian GNU/Linux 12 rpi3 ttyS1" > "$p.out"
	echo "rpi3 login: " > "$p.out"
	exec sleep 30 ;;
inspect)   # the card as qemu would see it: its table, partition 2's label
	img=$(printf '%s\n' "$@" | sed -n 's/^file=\([^,]*\),if=sd.*/\1/p')
	sfdisk -d "$img" > "$ARGS.sfdisk"
	start=$(awk -F'[=,]' '/^[^ ]*2 :/ { gsub(/ /, "", $2); print $2 }' "$ARGS.sfdisk")
	blkid -p -o export -O $((start * 512)) "$img" > "$ARGS.blkid" ;;
esac
FAKE
chmod +x "$T/qemu"
export ARGS=$T/args

q() {   # q [rpifs qemu options...]: run with the stand-in, status in $rc
	rc=0
	"$RPIFS" qemu --qemu "$T/qemu" --image "$T/none.img" "$@" >"$T/out" 2>&1 </dev/null || rc=$?
}
arg_after() {   # arg_after OPT: the argument that follows OPT (first one)
	awk -v o="$1" 'p { print; exit } $0 == o { p = 1 }' "$ARGS"
}

# --- config.txt as the firmware reads it ---
cat > "$R/boot/config.txt" <<'CFG'
# Debian's raspi-firmware writes this shape
[pi4]
kernel=pi4.img
initramfs nothing-here.img followkernel
[none]
kernel=never.img
[all]
arm_64bit=1
kernel=vmlinuz-6.1
initramfs initrd.img-6.1 followkernel
dtoverlay=vc4-kms-v3d
CFG
FAKE=silent0 q "$R"
[ "$(arg_after -kernel)" = "$R/boot/vmlinuz-6.1" ] || fail "kernel=: $(arg_after -kernel)"
[ "$(arg_after -initrd)" = "$R/boot/initrd.img-6.1" ] || fail "initramfs FILE followkernel: '$(arg_after -initrd)'"
[ "$(arg_after -dtb)" = "$R/boot/broadcom/bcm2837-rpi-3-b.dtb" ] || fail "dtb: $(arg_after -dtb)"
[ "$(arg_after -append)" = "root=LABEL=RASPIROOT rw console=ttyAMA0,115200" ] ||
	fail "cmdline: '$(arg_after -append)' (trailing blanks must not double the space)"
# The terminal's input on the kernel's console port (here the appended
# ttyAMA0: serial0), the other port's output through a FIFO pair.
[ "$(awk '$0 == "-serial" { getline; print }' "$ARGS" | tr '\n' ' ')" = "chardev:console pipe:$(sed -n 's/^pipe:\(.*\)$/\1/p' "$ARGS") " ] ||
	fail "serial0 is not on the terminal, serial1 not on a pipe: $(tr '\n' ' ' < "$ARGS")"
grepq -x 'stdio,id=console,mux=on,signal=off' < "$ARGS" || fail "no stdio mux"
grepq 'config.txt:11: dtoverlay=vc4-kms-v3d is not applied under qemu' < "$T/out" ||
	{ cat "$T/out"; fail "a dtoverlay= it cannot honour is not named"; }
grepq -x 'chardev=console,mode=readline' < "$ARGS" || fail "no monitor on the mux"

# os_prefix= and cmdline= and device_tree= with it; ramfsfile=
printf 'k' > "$R/boot/v2/kernel8.img"
printf 'd' > "$R/boot/v2/my.dtb"
printf 'root=/dev/mmcblk0p2 v2\n' > "$R/boot/v2/cmd.txt"
printf 'i' > "$R/boot/v2/ramfs"
printf 'os_prefix=v2/\ndevice_tree=my.dtb\ncmdline=cmd.txt\nramfsfile=ramfs\n' > "$R/boot/config.txt"
FAKE=silent0 q "$R"
[ "$(arg_after -kernel)" = "$R/boot/v2/kernel8.img" ] || fail "os_prefix kernel: $(arg_after -kernel)"
[ "$(arg_after -dtb)" = "$R/boot/v2/my.dtb" ] || fail "os_prefix device_tree: $(arg_after -dtb)"
[ "$(arg_after -initrd)" = "$R/boot/v2/ramfs" ] || fail "ramfsfile: $(arg_after -initrd)"
[ "$(arg_after -append)" = "root=/dev/mmcblk0p2 v2 console=ttyAMA0,115200" ] || fail "cmdline=: $(arg_after -append)"

# An initramfs line naming a missing file: refused, naming config.txt.
printf 'initramfs gone.img followkernel\n' > "$R/boot/config.txt"
FAKE=silent0 q "$R"
[ "$rc" != 0 ] && grepq "config.txt: 'initramfs gone.img'" < "$T/out" ||
	{ cat "$T/out"; fail "a missing initramfs was not refused with config.txt named"; }
rm "$R/boot/config.txt"

# A tree whose console is ttyS1 (Debian's raspi cmdline.txt): no ttyAMA0
# added, serial1 on the terminal, serial0 on the pipe; what the pipe's port
# prints reaches stdout and --until.
printf 'console=tty0 console=ttyS1,115200 root=LABEL=RASPIROOT rw\n' > "$R/boot/cmdline.txt"
FAKE=aux q --until "login:" --timeout 20 "$R"
[ "$rc" = 0 ] || { cat "$T/out"; fail "--until did not see the text printed on the piped port ($rc)"; }
[ "$(arg_after -append)" = "console=tty0 console=ttyS1,115200 root=LABEL=RASPIROOT rw" ] ||
	fail "console= added to a cmdline that has one: $(arg_after -append)"
[ "$(awk '$0 == "-serial" { getline; print }' "$ARGS" | head -1)" = "pipe:$(sed -n 's/^pipe://p' "$ARGS")" ] &&
	[ "$(awk '$0 == "-serial" { getline; print }' "$ARGS" | tail -1)" = chardev:console ] ||
	fail "console=ttyS1: serial1 is not on the terminal: $(tr '\n' ' ' < "$ARGS")"
grepq "Debian GNU/Linux 12 rpi3 ttyS1" < "$T/out" || fail "the piped port's output is not on stdout"
d=$(sed -n 's|^pipe:\(.*\)/serial[01]$|\1|p' "$ARGS")
[ -n "$d" ] && [ ! -e "$d" ] || fail "FIFO directory '$d' left behind"
printf 'root=LABEL=RASPIROOT rw  \n' > "$R/boot/cmdline.txt"

# --- --board: the machine, its memory, its default device tree ---
printf 'd' > "$R/boot/broadcom/bcm2837-rpi-zero-2-w.dtb"
FAKE=silent0 q --board rpi02w "$R"
[ "$(arg_after -M) $(arg_after -m)" = "raspi3ap 512M" ] || fail "--board rpi02w: -M $(arg_after -M) -m $(arg_after -m)"
[ "$(arg_after -dtb)" = "$R/boot/broadcom/bcm2837-rpi-zero-2-w.dtb" ] || fail "--board rpi02w: dtb $(arg_after -dtb)"
q --board rpi5 "$R"
[ "$rc" = 2 ] && grepq "qemu has no Raspberry Pi 5" < "$T/out" || { cat "$T/out"; fail "--board rpi5 not refused clearly ($rc)"; }
q --board rpi4 "$R"
[ "$rc" = 1 ] && grepq "no device tree for board rpi4" < "$T/out" || { cat "$T/out"; fail "--board rpi4 without its dtb ($rc)"; }
# A GPT card on a board whose boot ROM reads an MBR only: refused up front;
# the Pi 4 takes it (here it stops at its missing device tree instead).
q --board rpi3 --label gpt "$R"
[ "$rc" = 2 ] && grepq "board rpi3 --label gpt: the Raspberry Pi 3's boot ROM reads an MBR only.*--board rpi4, or --label dos" < "$T/out" ||
	{ cat "$T/out"; fail "--board rpi3 --label gpt not refused clearly ($rc)"; }
q --board rpi02w --label gpt "$R"
[ "$rc" = 2 ] && grepq "board rpi02w --label gpt: the Raspberry Pi Zero 2 W's boot ROM reads an MBR only" < "$T/out" ||
	{ cat "$T/out"; fail "--board rpi02w --label gpt not refused clearly ($rc)"; }
q --board rpi4 --label gpt "$R"
[ "$rc" = 1 ] && grepq "no device tree for board rpi4" < "$T/out" || { cat "$T/out"; fail "--board rpi4 --label gpt ($rc)"; }
# A qemu whose machine list lacks raspi4b (bookworm's 7.2): refused before
# the mount, saying where a newer one comes from; one that has it boots.
printf 'd' > "$R/boot/broadcom/bcm2711-rpi-4-b.dtb"
cat > "$T/qemu72" <<'FAKE'
#!/bin/sh
[ "$1 $2" = "-machine help" ] || { echo "booted $*"; exit 0; }
printf 'Supported machines are:\n%s\n' "raspi3b              Raspberry Pi 3B (revision 1.2)"
[ -z "$HAS4" ] || echo "raspi4b              Raspberry Pi 4B (revision 1.5)"
FAKE
chmod 755 "$T/qemu72"
rc=0; "$RPIFS" qemu --qemu "$T/qemu72" --board rpi4 --image /dev/null "$R" >"$T/out" 2>&1 </dev/null || rc=$?
[ "$rc" = 1 ] && grepq "has no -M raspi4b (board rpi4 needs qemu 9.0 or later.*scripts/trixie-qemu.*--qemu PATH" < "$T/out" ||
	{ cat "$T/out"; fail "--board rpi4 with a qemu lacking raspi4b not refused clearly ($rc)"; }
grepq "^booted" < "$T/out" && fail "the qemu lacking raspi4b was run to boot"
# That one boots; a device tree that is not one is refused before qemu runs.
rc=0; HAS4=1 "$RPIFS" qemu --qemu "$T/qemu72" --board rpi4 --image /dev/null "$R" >"$T/out" 2>&1 </dev/null || rc=$?
[ "$rc" = 1 ] && grepq "bcm2711-rpi-4-b.dtb: 1 bytes: not a device tree blob" < "$T/out" ||
	{ cat "$T/out"; fail "--board rpi4 with a 1-byte device tree ($rc)"; }
rc=0; HAS4=1 "$RPIFS" qemu --dtb-as-is --qemu "$T/qemu72" --board rpi4 --image /dev/null "$R" >"$T/out" 2>&1 </dev/null || rc=$?
[ "$rc" = 0 ] && grepq "^booted -M raspi4b -m 2G .*-dtb $R/boot/broadcom/bcm2711-rpi-4-b.dtb " < "$T/out" ||
	{ cat "$T/out"; fail "--board rpi4 --dtb-as-is with a qemu that has raspi4b ($rc)"; }
# qemu's copy of a Pi 4 device tree lacks the SD controller's mmc-pwrseq,
# and only that (the real thing is booted by boot_rpi4). The blob, made
# here as dtc lays one out: /soc/mmc@7e300000 { mmc-pwrseq; status },
# /soc/mmc@7e340000 { mmc-pwrseq }; the copy is read by the stand-in.
python3 - "$R/boot/broadcom/bcm2711-rpi-4-b.dtb" <<'PY'
import struct, sys
strings = b"mmc-pwrseq\0status\0"
def node(name, props, kids=b""):
    b = struct.pack(">I", 1) + name + b"\0"
    b += b"\0" * (-len(b) % 4)
    for off, val in props:
        b += struct.pack(">III", 3, len(val), off) + val + b"\0" * (-len(val) % 4)
    return b + kids + struct.pack(">I", 2)
soc = node(b"soc", [], node(b"mmc@7e300000", [(0, struct.pack(">I", 16)), (11, b"okay\0")]) +
      node(b"mmc@7e340000", [(0, struct.pack(">I", 17))]))
st = node(b"", [], soc) + struct.pack(">I", 9)
rsv = b"\0" * 16
hdr = 40
off_rsv, off_st = hdr, hdr + len(rsv)
off_str = off_st + len(st)
total = off_str + len(strings)
h = struct.pack(">10I", 0xd00dfeed, total, off_st, off_str, off_rsv, 17, 16, 0, len(strings), len(st))
open(sys.argv[1], "wb").write(h + rsv + st + strings)
PY
cp "$R/boot/broadcom/bcm2711-rpi-4-b.dtb" "$T/dtb.orig"
cat > "$T/qemu10" <<'FAKE'
#!/bin/sh
[ "$1 $2" = "-machine help" ] && { printf 'Supported machines are:\nraspi4b              Raspberry Pi 4B\n'; exit 0; }
d=$(printf '%s\n' "$@" | awk '$0 == "-dtb" { getline; print }')
cp "$d" "$ARGS.dtb"
echo "booted $*"
FAKE
chmod 755 "$T/qemu10"
rc=0; ARGS=$T/args10 "$RPIFS" qemu --qemu "$T/qemu10" --board rpi4 --image /dev/null "$R" >"$T/out" 2>&1 </dev/null || rc=$?
[ "$rc" = 0 ] && grepq "without mmc-pwrseq in /soc/mmc@7e300000" < "$T/out" || { cat "$T/out"; fail "--board rpi4: no device tree copy ($rc)"; }
cmp -s "$R/boot/broadcom/bcm2711-rpi-4-b.dtb" "$T/dtb.orig" || fail "the tree's device tree was written"
# No --qemu, and the host's qemu (bookworm: 7.2) lacks raspi4b: the wrapper
# scripts/trixie-qemu leaves in its place ($RPIFS_TRIXIE_QEMU_DIR here) is
# used, and said; without one, the refusal says how to get it.
if command -v qemu-system-aarch64 >/dev/null && ! qemu-system-aarch64 -machine help | grepq '^raspi4b '; then
	mkdir -p "$T/trixie"
	rc=0; RPIFS_TRIXIE_QEMU_DIR=$T/trixie "$RPIFS" qemu --board rpi4 --image /dev/null "$R" >"$T/out" 2>&1 </dev/null || rc=$?
	[ "$rc" = 1 ] && grepq "has no -M raspi4b.*scripts/trixie-qemu" < "$T/out" ||
		{ cat "$T/out"; fail "--board rpi4, no --qemu and no trixie qemu: not refused clearly ($rc)"; }
	cp "$T/qemu10" "$T/trixie/qemu-system-aarch64"
	rc=0; ARGS=$T/args10 RPIFS_TRIXIE_QEMU_DIR=$T/trixie "$RPIFS" qemu --board rpi4 --image /dev/null "$R" >"$T/out" 2>&1 </dev/null || rc=$?
	[ "$rc" = 0 ] && grepq "using $T/trixie/qemu-system-aarch64 (made by scripts/trixie-qemu" < "$T/out" &&
		grepq "^booted -M raspi4b" < "$T/out" ||
		{ cat "$T/out"; fail "--board rpi4 without --qemu did not use the trixie qemu ($rc)"; }
else
	note "the host's qemu has raspi4b (or there is none): the trixie qemu fallback is not exercised"
fi
copy=$(sed -n 's/^booted .*-dtb \([^ ]*\) .*/\1/p' "$T/out")
[ -n "$copy" ] && [ ! -e "$copy" ] || fail "qemu's device tree copy '$copy' left behind"
python3 - "$T/dtb.orig" "$T/args10.dtb" <<'PY' || fail "qemu's copy is not the tree's minus one property"
import struct, sys
def props(path):
    b = open(path, "rb").read()
    magic, total, ost, ostr, _, _, _, _, sstr, sst = struct.unpack(">10I", b[:40])
    assert magic == 0xd00dfeed and total == len(b)
    o, path, out = ost, [], []
    while True:
        t, = struct.unpack(">I", b[o:o + 4]); o += 4
        if t == 1:
            e = b.index(b"\0", o); path.append(b[o:e].decode()); o = (e + 4) & ~3
        elif t == 2: path.pop()
        elif t == 3:
            l, n = struct.unpack(">II", b[o:o + 8]); o += 8
            name = b[ostr + n:b.index(b"\0", ostr + n)].decode()
            out.append(("/".join(path), name, b[o:o + l])); o = (o + l + 3) & ~3
        elif t == 4: pass
        elif t == 9: return len(b), out
        else: raise SystemExit("bad token %d" % t)
(n1, a), (n2, b) = props(sys.argv[1]), props(sys.argv[2])
assert n1 == n2, "size changed"
want = [p for p in a if not (p[0] == "/soc/mmc@7e300000" and p[1] == "mmc-pwrseq")]
assert len(want) == len(a) - 1 and b == want, (a, b)
PY
rm "$R/boot/broadcom/bcm2711-rpi-4-b.dtb"

# --- "--" before qemu's arguments: consumed, the rest passed on ---
FAKE=silent0 q "$R" -- -smp 2
grepq -x -- '--' < "$ARGS" && fail "'--' passed on to qemu"
[ "$(arg_after -smp)" = 2 ] || fail "arguments after -- not passed: $(tr '\n' ' ' < "$ARGS")"
[ "$(tail -1 "$ARGS")" = 2 ] || fail "qemu arguments are not last"

# --- the mount options reach rpifs qemu's own mount, and nbdkit's keys ---
q0() { rc=0; "$RPIFS" qemu --qemu "$T/qemu" "$@" >"$T/out" 2>&1 </dev/null || rc=$?; }
FAKE=inspect q0 --disk-id 0x0badf00d --root-label MYROOT --boot-dir boot "$R"
[ "$rc" = 0 ] || { cat "$T/out"; fail "rpifs qemu with mount options: status $rc"; }
grepq '^label-id: 0x0badf00d$' < "$ARGS.sfdisk" || { cat "$ARGS.sfdisk"; fail "--disk-id not passed to the mount"; }
grepq '^LABEL=MYROOT$' < "$ARGS.blkid" || { cat "$ARGS.blkid"; fail "--root-label not passed to the mount"; }
q0 --dry-run --nbd --root-label MYROOT --no-ext4 --idmap 0:0:1 --idmap 5:5:1 "$R"
grepq " root-label=MYROOT ext4=false idmap=0:0:1 idmap=5:5:1" < "$T/out" ||
	{ cat "$T/out"; fail "mount options not passed to nbdkit as keys"; }
q0 --dry-run --nbd --label dos "$R"
grepq " label=dos" < "$T/out" || { cat "$T/out"; fail "--label not passed to nbdkit as label="; }
# A tree that names a GPT PARTUUID makes a GPT card by itself: refused on
# the Pi 3 as --label gpt is, once the mount has chosen (no qemu started).
G=$T/gpt-rootfs
cp -a "$R" "$G"
printf 'root=PARTUUID=6c3f8a2e-1b4d-4c1e-9f3a-2b7c8d9e0f11 rw\n' > "$G/boot/cmdline.txt"
rm -f "$ARGS"
# Its own mount only: another rpifs qemu on the machine (a boot test run
# beside this one) has a /tmp/rpifs-qemu.* mount of its own.
qmounts() { { grep -E "$T/tmp|rpifs-qemu" /proc/mounts || true; } | sort; }
before=$(qmounts)
FAKE=silent0 q0 --boot-dir boot "$G"
[ "$rc" = 2 ] && grepq "is a GPT disk (the tree names GPT PARTUUIDs).*reads an MBR only" < "$T/out" ||
	{ cat "$T/out"; fail "a tree that makes itself GPT was not refused on rpi3 ($rc)"; }
[ -e "$ARGS" ] && fail "qemu ran for a GPT card on rpi3"
left=$(comm -13 <(echo "$before") <(qmounts))
[ -z "$left" ] || fail "the mount was left behind: $left"
q0 --disk-id nothex "$R"
[ "$rc" = 2 ] && grepq "disk-id" < "$T/out" || { cat "$T/out"; fail "a bad mount option was not refused ($rc)"; }

# --- --until and --timeout: the exit status says what happened ---
FAKE=print q --until "login:" --timeout 20 "$R"
[ "$rc" = 0 ] && grepq 'saw "login:"' < "$T/out" || { cat "$T/out"; fail "--until: text printed, status $rc"; }
FAKE=silent0 q --until "login:" "$R"
[ "$rc" = 1 ] || { cat "$T/out"; fail "--until: qemu exited 0 without the text, status $rc (must be 1)"; }
grepq 'saw "login:"' < "$T/out" && fail "--until claims it saw the text"
grepq 'before its console printed "login:"' < "$T/out" || { cat "$T/out"; fail "--until: no message"; }
FAKE=exit3 q --until "login:" "$R"
[ "$rc" = 3 ] || fail "--until: qemu's status 3 became $rc"
FAKE=kill q --until "login:" "$R"
[ "$rc" = 137 ] || fail "--until: qemu killed by SIGKILL, status $rc (must be 137)"
FAKE=hang q --until "login:" --timeout 1 "$R"
[ "$rc" = 124 ] || fail "--timeout: status $rc (must be 124)"
FAKE=exit3 q "$R"
[ "$rc" = 3 ] || fail "without --until: qemu's status 3 became $rc"
exit 0
