#!/usr/bin/env bash
# NBD write-zeroes and cache (nbd_zero.py): a hole is zero already (a fast
# zero there writes nothing), a fast zero of data is refused with ENOTSUP,
# a plain one reads back zeros on its own connection only; cache works.
# With readonly=true the server offers no zero.
. "$TESTS_DIR/nbd/nbd_lib.sh"

make_tree "$T/root"
serve "$T/root" -- "$NBDPY" "$TESTS_DIR/nbd/nbd_zero.py" '"$unixsocket"' >"$T/out" ||
	{ cat "$T/out"; fail "nbd_zero.py"; }
note "$(cat "$T/out")"
serve "$T/root" readonly=true -- "$NBDPY" -c '"import nbd, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1])
sys.exit(\"readonly=true offers zero\" if h.can_zero() else 0)"' '"$unixsocket"' ||
	fail "readonly=true: zero offered"
echo ok
