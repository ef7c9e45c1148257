#!/usr/bin/env bash
# Build the libFuzzer targets with clang (ASan+UBSan) and run each for
# RPIFS_FUZZ_SECS seconds (default 20; the long mode sets more). A crash or a
# broken invariant (abort) fails the test; the reproducer stays in $T.
. "$TESTS_DIR/lib.sh"
need clang
secs=${RPIFS_FUZZ_SECS:-20}
src=$SRC_ROOT
flags=(-g -O1 -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I"$src/include" -I"$src/src/engine" -I"$src/src/fat")
for t in fat_names regions; do
	case $t in
	fat_names) srcs=("$src/src/fat/fat_names.c") ;;
	regions) srcs=("$src/src/engine/regions.c" "$src/src/engine/pagepack.c" "$src/src/engine/vector.c" "$src/src/engine/log.c") ;;
	esac
	clang "${flags[@]}" -o "$T/fuzz_$t" "$TESTS_DIR/fuzz/fuzz_$t.c" "${srcs[@]}" 2>"$T/cc.log" ||
		{ cat "$T/cc.log"; fail "building fuzz_$t"; }
	mkdir -p "$T/corpus_$t"
	(cd "$T" && "./fuzz_$t" -max_total_time="$secs" -print_final_stats=1 "corpus_$t" \
		>"$T/$t.log" 2>&1) || { tail -40 "$T/$t.log"; fail "fuzz_$t found a failure"; }
	note "fuzz_$t: $(grep -E 'stat::number_of_executed_units' "$T/$t.log" | awk '{print $2}') runs in ${secs}s"
done
note "ok"
