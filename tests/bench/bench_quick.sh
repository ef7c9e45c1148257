#!/usr/bin/env bash
# The benchmark in its quick mode, once per run, so that it keeps working.
# No timing is asserted: only that it ran and printed every figure and the
# target verdicts.
. "$TESTS_DIR/lib.sh"
"$SRC_ROOT/bench/run" --quick --cache "$BUILD_ROOT/cache/bench" >"$T/bench.log" 2>&1 ||
	{ tail -40 "$T/bench.log"; fail "bench/run --quick failed"; }
for n in 1 2 3 4 5 6; do
	grep -qE "^  $n\. (met|missed) " "$T/bench.log" || { tail -40 "$T/bench.log"; fail "no verdict for target $n"; }
done
# item 7 (NBD) skips, saying why, where the plugin or nbdkit is missing
grep -qE "^  7\. (met|missed|skipped) " "$T/bench.log" || { tail -40 "$T/bench.log"; fail "no verdict for target 7"; }
# 1b: the bare walk (bench/walk.c); 7b: nbdkit's linuxdisk and floppy behind
# nbdfuse (skipped without them); 8, the qemu boot, is full mode only
grep -qE "^  1b\. (met|missed) " "$T/bench.log" || { tail -40 "$T/bench.log"; fail "no verdict for target 1b"; }
grep -qE "^  7b\. (met|missed|skipped) " "$T/bench.log" || { tail -40 "$T/bench.log"; fail "no verdict for target 7b"; }
grep -qE "^  8\. skipped full mode only" "$T/bench.log" || { tail -40 "$T/bench.log"; fail "item 8 did not say it is full mode only"; }
sed -n '/^Targets:/,$p' "$T/bench.log" >&2
