#!/usr/bin/env bash
# Writes over NBD: by default each connection has its own copy-on-write
# overlay (two clients at once never see each other's writes, a new client
# sees none, multi-conn is not advertised); readonly=true refuses writes
# (multi-conn advertised); overlay=FILE is one overlay shared by all
# connections (a write on one is read on another, multi-conn advertised)
# that survives a server restart. The tree is never written.
. "$TESTS_DIR/nbd/nbd_lib.sh"

make_tree "$T/root"
tree_sums "$T/root" > "$T/sums.before"

cat > "$T/private.py" <<'PY'
import nbd, sys
sock = sys.argv[1]
def conn(name="disk"):
    h = nbd.NBD()
    h.set_export_name(name)
    h.connect_unix(sock)
    return h
a, b = conn(), conn()
assert not a.can_multi_conn(), "multi-conn advertised with private overlays"
assert not a.is_read_only()
off = 8 << 20                      # inside partition 1 (4 MiB alignment)
orig = a.pread(4096, off)
a.pwrite(b"A" * 4096, off)
b.pwrite(b"B" * 100, off + 10)
a.flush(); b.flush()
assert a.pread(4096, off) == b"A" * 4096, "a lost its write"
got = b.pread(4096, off)
assert got == orig[:10] + b"B" * 100 + orig[110:], "b sees a's write"
# A third client, meanwhile and after a closed: none of it.
c = conn()
assert c.pread(4096, off) == orig, "a new connection sees another's writes"
a.shutdown(); del a
d = conn()
assert d.pread(4096, off) == orig, "a's writes outlived its connection"
# A partition export writes to its own overlay too.
r = conn("root")
r.pwrite(b"R" * 512, 0)
assert r.pread(512, 0) == b"R" * 512
assert d.pread(4096, off) == orig
PY
serve "$T/root" -- "$NBDPY" "$T/private.py" '"$unixsocket"' || fail "private overlays"

cat > "$T/readonly.py" <<'PY'
import nbd, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1])
assert h.is_read_only(), "readonly=true: not read-only"
assert h.can_multi_conn(), "readonly=true: multi-conn not advertised"
try:
    h.pwrite(b"x" * 512, 0)
except nbd.Error:
    pass
else:
    raise SystemExit("readonly=true: a write was accepted")
PY
serve "$T/root" readonly=true -- "$NBDPY" "$T/readonly.py" '"$unixsocket"' || fail "readonly=true"

cat > "$T/shared.py" <<'PY'
import nbd, sys
sock, step = sys.argv[1], sys.argv[2]
def conn(name="disk"):
    h = nbd.NBD()
    h.set_export_name(name)
    h.connect_unix(sock)
    return h
off = 8 << 20
a, b = conn(), conn()
assert a.can_multi_conn(), "overlay=FILE: multi-conn not advertised"
if step == "write":
    a.pwrite(b"SHARED" * 100, off)
    a.flush()
    assert b.pread(600, off) == b"SHARED" * 100, "overlay=FILE: b does not see a's write"
else:
    assert a.pread(600, off) == b"SHARED" * 100, "overlay=FILE: the write did not survive a restart"
PY
serve "$T/root" overlay="$T/ov" -- "$NBDPY" "$T/shared.py" '"$unixsocket"' write ||
	fail "overlay=FILE write"
[ -s "$T/ov" ] || fail "overlay=FILE: no file"
serve "$T/root" overlay="$T/ov" -- "$NBDPY" "$T/shared.py" '"$unixsocket"' restart ||
	fail "overlay=FILE after a restart"

tree_sums "$T/root" > "$T/sums.after"
cmp -s "$T/sums.before" "$T/sums.after" || fail "the tree changed"
exit 0
