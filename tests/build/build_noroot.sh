#!/usr/bin/env bash
# `build rootfs` without root fails at once, saying why and what to run,
# and creates nothing. Simulated with setpriv when the test runs as root.
. "$TESTS_DIR/lib.sh"

chmod 755 "$T"
mkdir -m 777 "$T/w"
R=$T/w/root
if [ "$(id -u)" = 0 ]; then
	need setpriv
	as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
	"${as_user[@]}" test -x "$RPIFS" || skip "$RPIFS is not reachable by uid 65534"
else
	as_user=()
fi
for cmd in rootfs all; do
	extra=()
	[ $cmd = all ] && extra=(--src /nonexistent-is-not-checked-first)
	set +e
	"${as_user[@]}" "$RPIFS" build $cmd "$R" --mirror http://127.0.0.1:9/debian "${extra[@]}" >"$T/out" 2>&1
	rc=$?
	set -e
	[ $rc -ne 0 ] || fail "build $cmd as a user succeeded"
	if [ $cmd = rootfs ]; then
		grep -q "build rootfs needs root: debootstrap chroots" "$T/out" || { cat "$T/out"; fail "no reason given"; }
		grep -q "mmdebstrap --mode=unshare" "$T/out" || { cat "$T/out"; fail "no alternative given"; }
		grep -q "sudo rpifs build rootfs" "$T/out" || { cat "$T/out"; fail "no command given"; }
	fi
	[ ! -e "$R" ] && [ ! -e "$R.rpifs" ] || fail "build $cmd as a user created files"
done
# --help says how to get a root password.
"$RPIFS" build rootfs --help | grep -q -- "--root-password PASS" || fail "--help lacks --root-password"
"$RPIFS" build rootfs --help | grep -q "chroot ROOTFS passwd" || fail "--help lacks how to set one later"
echo ok
