#!/usr/bin/env bash
# Bad parameters stop nbdkit before it serves: a non-zero exit and a message
# naming the key (or the tree, or the mount's message for a layout that
# cannot be built); the --run command never runs.
. "$TESTS_DIR/nbd/nbd_lib.sh"
# Its nbdkit exits at once; under TSan it would never exit (nbd_lib.sh).
[ -z "$NBD_SAN" ] || skip "a sanitizer build: nbdkit hangs at exit with the runtime preloaded"

make_tree "$T/root"
touch "$T/file"

# refuse EXPECTED-TEXT ARGS...: nbdkit must exit non-zero saying EXPECTED-TEXT.
refuse() {
	local want=$1; shift
	rm -f "$T/ran"
	if "$NBDKIT" -U - "$NBDKIT_PLUGIN" "$@" --run "$nbdkit_env_clear touch $T/ran" >"$T/out" 2>&1; then
		fail "nbdkit $* exited 0"
	fi
	[ ! -e "$T/ran" ] || fail "nbdkit $*: served anyway"
	grep -qF -- "$want" "$T/out" || { cat "$T/out"; fail "nbdkit $*: no '$want' in the message"; }
}

refuse "rootfs=$T/missing: No such file or directory" "$T/missing"
refuse "not a directory" "$T/file"
refuse "rootfs=ROOTFS is required"
refuse "boot-size=12Q: not a size" "$T/root" boot-size=12Q
refuse "size=big: not a size" "$T/root" size=big
refuse "root-size=-1: not a size" "$T/root" root-size=-1
refuse "align=1000: must be a multiple of 4 KiB" "$T/root" align=1000
refuse "free=200: a percentage" "$T/root" free=200
refuse "disk-id=xyz: a non-zero 32-bit hex number" "$T/root" disk-id=xyz
refuse "disk-id=0: a non-zero" "$T/root" disk-id=0
refuse "root-owner=maybe: not a boolean" "$T/root" root-owner=maybe
refuse "readonly=perhaps: not a boolean" "$T/root" readonly=perhaps
refuse "boot-label=: empty" "$T/root" boot-label=
refuse "colour=red: unknown key" "$T/root" colour=red
refuse "boot-size must be at least 33M" "$T/root" boot-size=1M
refuse "overlay-reset=true needs overlay=FILE" "$T/root" overlay-reset=true
# The layout's own check, with the mount's message.
refuse "is too small: the image needs at least" "$T/root" size=8M
# The tree's fstab and cmdline.txt contradicting each other (identity.c).
mkdir -p "$T/bad/boot/firmware" "$T/bad/etc"
echo "arm_64bit=1" > "$T/bad/boot/firmware/config.txt"
echo "root=LABEL=ONE" > "$T/bad/boot/firmware/cmdline.txt"
echo "LABEL=TWO / ext4 rw 0 1" > "$T/bad/etc/fstab"
refuse "$T/bad/etc/fstab:1 says LABEL=TWO but $T/bad/boot/firmware/cmdline.txt:1 says root=LABEL=ONE" "$T/bad"
# An overlay written for another layout.
serve "$T/root" overlay="$T/ov" -- true || fail "overlay=FILE: first start"
refuse "$T/ov" "$T/root" overlay="$T/ov" boot-size=40M
# And a good command line does run.
serve "$T/root" boot-size=40M -- "touch $T/ran" && [ -e "$T/ran" ] || fail "good keys refused"
exit 0
