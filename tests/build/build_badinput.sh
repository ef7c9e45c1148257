#!/usr/bin/env bash
# Bad inputs to `rpifs build`: each fails with a non-zero exit and a message
# naming the problem, and leaves nothing behind (no ROOTFS, no state dir).
. "$TESTS_DIR/lib.sh"

# expect_fail PATTERN ARGS...: rpifs build ARGS must fail and print PATTERN.
expect_fail() {
	local pat=$1; shift
	if "$RPIFS" build "$@" >"$T/out" 2>&1; then
		cat "$T/out"; fail "rpifs build $* succeeded"
	fi
	grep -qE -- "$pat" "$T/out" || { cat "$T/out"; fail "rpifs build $*: no message matching '$pat'"; }
}

# A directory that passes for a kernel tree (the checks look no deeper).
fake_tree() {
	mkdir -p "$1/arch/arm64"
	touch "$1/Makefile" "$1/Kconfig" "$1/arch/arm64/Kconfig"
}

R=$T/root
mkdir -p "$T/notkernel"
fake_tree "$T/linux"
fake_tree "$T/configured"
touch "$T/configured/.config"

# Usage errors: exit status 2.
"$RPIFS" build >/dev/null 2>&1 && fail "rpifs build without a stage succeeded"
set +e; "$RPIFS" build frobnicate "$R" 2>"$T/out"; rc=$?; set -e
[ $rc -eq 2 ] || fail "unknown stage: exit $rc, not 2"
grep -q "unknown stage 'frobnicate'" "$T/out" || fail "unknown stage: $(cat "$T/out")"
expect_fail "ROOTFS missing" kernel --src "$T/linux"
expect_fail "--src is not an option of this stage" rootfs "$R" --src "$T/linux"
expect_fail "unknown option, or missing value: --frob" config "$R" --frob
expect_fail "--suite buster: supported suites are bookworm and trixie" rootfs "$R" --suite buster
expect_fail "--variant huge: use minbase or default" rootfs "$R" --variant huge
expect_fail "--disk-id 0: 8 hex digits, not 0" config "$R" --disk-id 0
expect_fail "--disk-id 0x123456789: 8 hex digits" config "$R" --disk-id 0x123456789
expect_fail "-j 0: a number of jobs" kernel "$R" --src "$T/linux" -j 0
expect_fail "--board pi9: unknown board \\(known: rpi02w rpi3 rpi4 rpi5\\)" config "$R" --board pi9
expect_fail "refusing to build into /" config /
expect_fail "all: --src LINUX_TREE is required" all "$R"

# Kernel inputs.
expect_fail "--src LINUX_TREE is required" kernel "$R"
expect_fail "--src $T/nope: No such file or directory" kernel "$R" --src "$T/nope"
expect_fail "--src $T/notkernel: not a Linux kernel tree with arm64 support \\(no Makefile\\)" \
	kernel "$R" --src "$T/notkernel"
expect_fail "in-tree build \\(.config exists\\).*make mrproper" kernel "$R" --src "$T/configured"
expect_fail "cross compiler nonexistent-gcc not found: install the Debian package gcc-aarch64-linux-gnu" \
	kernel "$R" --src "$T/linux" --cross-compile nonexistent-
expect_fail "build-dir $T/linux/out is inside the source tree" \
	kernel "$R" --src "$T/linux" --build-dir "$T/linux/out"
expect_fail "--config $T/nope.config: not rpi3-minimal, rpi4-minimal, defconfig, or a readable config file" \
	kernel "$R" --src "$T/linux" --config "$T/nope.config"
# NAME-minimal is looked up in data/; a board's profile picks the default.
expect_fail "--config pi7-minimal: pi7-minimal.config not found \\(looked in .*\\): the shipped ones are rpi3-minimal and rpi4-minimal" \
	kernel "$R" --src "$T/linux" --config pi7-minimal
expect_fail "--board pi9: unknown board" kernel "$R" --src "$T/linux" --board pi9
# Inputs of every stage are checked before the first runs: a bad --src
# fails `build all` before any debootstrap.
expect_fail "--src $T/nope: No such file" all "$R" --src "$T/nope" --mirror http://127.0.0.1:9/debian

# Stages that need a tree refuse a missing one.
expect_fail "no such directory \\(run .rpifs build rootfs. first\\)" config "$R"
# A --config FILE passes the kernel's checks (it once returned 1 there
# without a word), so the stage gets as far as the missing tree.
printf 'CONFIG_BLK_DEV_INITRD=y\n' > "$T/frag.config"
expect_fail "$R: no such directory \\(run .rpifs build rootfs. first\\)" \
	kernel "$R" --src "$T/linux" --config "$T/frag.config"
expect_fail "--from $T/nope.tar: no such file or directory" firmware "$R" --from "$T/nope.tar"

# Nothing was created for any of them.
[ ! -e "$R" ] || fail "$R was created"
if [ -e "$R.rpifs" ]; then
	# config/firmware may have opened a log; never a stamp or a tree.
	[ ! -e "$R.rpifs/stamps" ] || fail "stamps written: $(ls -R "$R.rpifs")"
	[ -z "$(ls -A "$R.rpifs/tmp" 2>/dev/null)" ] || fail "scratch left: $(ls -R "$R.rpifs/tmp")"
fi

# An unreachable mirror (root only: the rootfs stage refuses to start
# otherwise, tested in build_noroot).
if [ "$(id -u)" = 0 ] && command -v debootstrap >/dev/null && command -v qemu-aarch64-static >/dev/null; then
	expect_fail "mirror http://127.0.0.1:9/debian unreachable: cannot fetch http://127.0.0.1:9/debian/dists/bookworm/Release \\(network failure" \
		rootfs "$R" --mirror http://127.0.0.1:9/debian
	grep -q "FAILED" "$T/out" || fail "no FAILED line: $(cat "$T/out")"
	grep -q "full log: $R.rpifs/logs/rootfs.log" "$T/out" || fail "log path not shown"
	[ ! -e "$R" ] || fail "$R exists after a failed rootfs build"
	[ ! -e "$R.rpifs/stamps/rootfs" ] || fail "rootfs stamp after a failure"
	[ -z "$(ls -A "$R.rpifs/tmp" 2>/dev/null)" ] || fail "scratch tree left: $(ls "$R.rpifs/tmp")"

	# A non-empty ROOTFS that rpifs did not build is not replaced without --force.
	mkdir -p "$T/mine" && echo precious > "$T/mine/file"
	expect_fail "$T/mine is not empty and was not built by .rpifs build rootfs.*--force replaces it" \
		rootfs "$T/mine" --mirror http://127.0.0.1:9/debian
	[ "$(cat "$T/mine/file")" = precious ] || fail "$T/mine/file changed"
	expect_fail "a URL" rootfs "$R" --mirror not-a-url
else
	note "not root or debootstrap/qemu-user-static missing: mirror checks skipped"
fi

# Firmware from an unreachable mirror: the firmware stage runs unprivileged.
mkdir -p "$R/boot"
expect_fail "cannot read the package lists of http://127.0.0.1:9/debian bookworm: is the mirror reachable" \
	firmware "$R" --mirror http://127.0.0.1:9/debian
[ -z "$(ls -A "$R/boot")" ] || fail "firmware left files after failing: $(ls "$R/boot")"
[ -z "$(ls -A "$R.rpifs/tmp" 2>/dev/null)" ] || fail "scratch left: $(ls "$R.rpifs/tmp")"
echo ok
