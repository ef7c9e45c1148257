#!/usr/bin/env bash
# Concurrent connections to one nbdkit-rpifs server (thread model
# parallel): 8 readers, one writer and an nbdcopy at once, a fixed number
# of requests (nbd_concurrency.py), zero mismatches against a reference
# copy taken first with nbdcopy. Default (private overlays): the readers
# never see the writer's data, the writer reads its own back, a later
# connection sees none of it. overlay=FILE (shared, multi-conn): a reader
# sees each written range either as before or as written, a later
# connection sees all of it. In the concurrency suite: also run under
# ThreadSanitizer (and under valgrind by scripts/valgrind-suite).
# About 10 s.
. "$TESTS_DIR/nbd/nbd_lib.sh"
need cmp

make_tree "$T/root"
tree_sums "$T/root" > "$T/sums.before"
serve "$T/root" -- nbdcopy '"$uri"' "$T/ref.img" || fail "nbdcopy of the reference"
[ "$(stat -c %s "$T/ref.img")" -gt $((300 << 20)) ] || fail "the image is smaller than the test's windows"

# Requests per reader: fewer when nbdkit runs under valgrind (~30x slower).
reads=200
[ "${RPIFS_VALGRIND:-0}" = 1 ] && reads=50
# A whole-disk nbdcopy (many requests in flight on its connection) beside
# the others: equals the reference.
serve "$T/root" -- 'nbdcopy "$uri" '"$T/copy.img"' & ' \
	"$NBDPY" "$TESTS_DIR/nbd/nbd_concurrency.py" '"$unixsocket"' "$T/ref.img" private "$reads" '&& wait $!' ||
	fail "private overlays under concurrency"
cmp "$T/ref.img" "$T/copy.img" || fail "nbdcopy beside the writer differs from the reference"

serve "$T/root" overlay="$T/ov" -- \
	"$NBDPY" "$TESTS_DIR/nbd/nbd_concurrency.py" '"$unixsocket"' "$T/ref.img" shared "$reads" ||
	fail "overlay=FILE under concurrency"

tree_sums "$T/root" > "$T/sums.after"
cmp -s "$T/sums.before" "$T/sums.after" || fail "the tree changed"
exit 0
