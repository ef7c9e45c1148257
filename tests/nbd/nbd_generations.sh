#!/usr/bin/env bash
# Generations over NBD: a connection keeps the image it opened; a new
# connection after the tree changed gets the new image, also while older
# connections are open (each has its own overlay: nothing ties them), with
# the inotify watch and with inotify=false (a stat of every entry). With
# readonly=true the connections share one generation: a new one is served
# once none is open.
. "$TESTS_DIR/nbd/nbd_lib.sh"

cat > "$T/gen.py" <<'PY'
import nbd, os, sys
sock, root, mode = sys.argv[1:4]
def conn():
    h = nbd.NBD()
    h.set_export_name("boot")
    h.connect_unix(sock)
    return h
def image(h):
    size, step = h.get_size(), 4 << 20
    return b"".join(h.pread(min(step, size - o), o) for o in range(0, size, step))
def edit(old, new, name):
    with open(root + "/boot/marker.txt", "w") as f:
        f.write(new)
    with open(root + "/boot/" + name, "w") as f:
        f.write(name.upper() + "-CONTENT\n")
a = conn()
assert b"MARKER-ONE" in image(a)
edit("MARKER-ONE", "MARKER-TWO-longer\n", "new1.txt")
b = conn()
ia, ib = image(a), image(b)
# (A file edited in place is read as it is now, within its old size: the
# engine copies nothing. The layout is what an open connection keeps.)
assert b"NEW1.TXT-CONTENT" not in ia, "an open connection saw the new file"
if mode == "private":
    assert b"MARKER-TWO-longer" in ib and b"NEW1.TXT-CONTENT" in ib, \
        "a new connection did not get the new tree"
    assert b"MARKER-ONE" not in ib
else:
    assert ib == ia, "readonly: a connection opened beside another got another generation"
    a.shutdown(); b.shutdown(); del a, b
    import time
    for _ in range(50):          # the server closes the handles after the disconnect
        c = conn()
        ic = image(c)
        if b"NEW1.TXT-CONTENT" in ic:
            break
        c.shutdown(); del c
        time.sleep(0.1)
    assert b"MARKER-TWO-longer" in ic, "readonly: no new generation once all were closed"
PY

for keys in "" "inotify=false" "readonly=true"; do
	rm -rf "$T/root"
	make_tree "$T/root"
	echo "MARKER-ONE" > "$T/root/boot/marker.txt"
	mode=private
	[ "$keys" = readonly=true ] && mode=shared
	serve "$T/root" boot-size=40M $keys -- "$NBDPY" "$T/gen.py" '"$unixsocket"' "$T/root" $mode ||
		fail "generations with '$keys'"
done
exit 0
