#!/usr/bin/env bash
# hardening_adversarial.sh - N seeded adversarial trees (advtree.py: every kind of
# name, link, special file, xattr, sparse file, owner, mode and time), each
# served by rpifs and checked with tools rpifs did not write:
#   - e2fsck -fn on partition 2 in place: exit 0, nothing but its passes
#   - fsck.fat -n on partition 1 copied out: its version and summary only;
#     fat_read.py's structure checks (LFN, ".", "..", chains)
#   - FAT content (fatcheck.py): every name, type, size, sha256, attribute
#     byte and stamp equal to boot/, what FAT cannot hold left out with one
#     warning each
#   - ext4 content (tests/ext4/compare.py), through libext2fs (debugfs) and
#     through the kernel (loop mount of a copy): names, type, mode, owner,
#     size, links, mtime (atime/ctime = mtime by design), device numbers,
#     symlink targets, bytes, xattrs
#   - the tree is unchanged afterwards (compare.py snapshots before and
#     after: every field, bytes and xattrs included; atime too, except on
#     symlinks, whose atime the kernel moves on readlink)
#
#   RPIFS_ADV_SEEDS=N     number of seeds (default 20; 100 with RPIFS_LONG=1)
#   RPIFS_ADV_FIRST=S     first seed (default 1): seeds S .. S+N-1
#   RPIFS_LONG=1          100 seeds, and every 10th tree --large
# Even seeds run with SOURCE_DATE_EPOCH=1700000000 (FAT stamps clamped to
# it), odd seeds without (filesystem times from the tree).
# Reproduce one seed: tests/hardening/advtree.py SEED DIR [--large].
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
COMPARE="python3 $TESTS_DIR/hardening/compare_adv.py"
need_root
need e2fsck debugfs fsck.fat sfdisk python3

H=$TESTS_DIR/hardening
long=${RPIFS_LONG:-0}
if [ "$long" = 1 ]; then n=${RPIFS_ADV_SEEDS:-100}; else n=${RPIFS_ADV_SEEDS:-20}; fi
first=${RPIFS_ADV_FIRST:-1}

# copy_part IMG START SIZE OUT: bytes copied out, holes kept sparse.
copy_part() {
	dd if="$1" of="$4" bs=4M iflag=skip_bytes,count_bytes skip="$2" count="$3" \
		conv=sparse status=none
}

# fsck_fat P1: fsck.fat -n says its version and the summary, nothing else.
fsck_fat() {
	local out
	out=$(fsck.fat -n "$1" 2>&1) || { echo "$out" >&2; fail "fsck.fat -n exited $?"; }
	[ "$(printf '%s\n' "$out" | wc -l)" -eq 2 ] &&
	printf '%s\n' "$out" | sed -n 1p | grep -Eq '^fsck\.fat [0-9.]+ \([0-9-]+\)$' &&
	printf '%s\n' "$out" | sed -n 2p | grep -Eq ": [0-9]+ files, [0-9]+/[0-9]+ clusters$" ||
		{ echo "$out" >&2; fail "fsck.fat -n findings"; }
}

# same_snap A B: two compare.py snapshots of one tree are equal.
same_snap() {
	python3 - "$1" "$2" <<'PY'
import json, stat, sys
a, b = (json.load(open(p))["entries"] for p in sys.argv[1:3])
bad = 0
for rel in sorted(set(a) | set(b)):
    x, y = a.get(rel), b.get(rel)
    if x is None or y is None:
        print("/%s: %s after serving" % (rel[:120], "appeared" if x is None else "vanished"))
        bad += 1
        continue
    for k in sorted(set(x) | set(y)):
        if k == "atime" and stat.S_ISLNK(x["mode"]):
            continue
        if x.get(k) != y.get(k):
            print("/%s: %s changed: %r -> %r" % (rel[:120], k, x.get(k), y.get(k)))
            bad += 1
sys.exit(1 if bad else 0)
PY
}

# one_seed SEED: run in a subshell; exits non-zero on the first problem.
one_seed() {
	local seed=$1 d=$T/s$1 args=() info boot_dir boot_size img out clamp=() parts
	_MOUNTS=()
	trap 'for m in "${_MOUNTS[@]}"; do fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done' EXIT
	if [ $((seed % 2)) -eq 0 ]; then
		export SOURCE_DATE_EPOCH=1700000000
		clamp=(--clamp 1700000000)
	else
		unset SOURCE_DATE_EPOCH
	fi
	[ "$long" = 1 ] && [ $((seed % 10)) -eq 0 ] && args+=(--large)
	info=$(python3 "$H/advtree.py" "$seed" "$d/root" ${args[@]+"${args[@]}"}) ||
		fail "advtree.py $seed failed"
	printf '%s\n' "$info" > "$T/info.$seed"
	read -r boot_dir boot_size < <(printf '%s' "$info" |
		python3 -c 'import json,sys; i=json.load(sys.stdin); print(i["boot_dir"], i["boot_size"])')
	$COMPARE snap "$d/root" "$d/snap.json" --skip "$boot_dir" || fail "snapshot failed"

	mkdir -p "$d/mnt"
	"$RPIFS" --boot-dir "$boot_dir" --boot-size "$boot_size" "$d/root" "$d/mnt" \
		2>"$d/log" || { rc=$?; cat "$d/log" >&2; fail "rpifs exited $rc"; }
	_MOUNTS+=("$d/mnt")
	grep -a 'rpifs: error' "$d/log" >&2 && fail "rpifs logged an error"
	img=$d/mnt/disk.img
	# p1 start, p1 size, p2 start, p2 size (bytes)
	parts=($(sfdisk -J "$img" | python3 -c 'import json,sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]: print(p["start"] * 512, p["size"] * 512)'))
	[ ${#parts[@]} -eq 4 ] || fail "partition table: ${parts[*]}"
	ext4_fsck "$img" "${parts[2]}"

	copy_part "$img" "${parts[0]}" "${parts[1]}" "$d/p1.img"
	fsck_fat "$d/p1.img"
	python3 "$TESTS_DIR/image/fat_read.py" "$d/p1.img" 0 >/dev/null ||
		fail "fat_read.py rejected partition 1"
	out=$(python3 "$H/fatcheck.py" "$d/p1.img" "$d/root" "$boot_dir" "${clamp[@]}" \
		--warnings "$d/log") || { echo "$out" >&2; fail "FAT differs from $boot_dir"; }
	note "fat: $out"
	rm -f "$d/p1.img"

	copy_part "$img" "${parts[2]}" "${parts[3]}" "$d/p2.img"
	out=$($COMPARE debugfs "$d/snap.json" "$d/p2.img") ||
		{ echo "$out" >&2; fail "debugfs view differs from the source"; }
	note "debugfs: $out"
	kmount "$d/p2.img" "$d/k"
	out=$($COMPARE kernel "$d/snap.json" "$d/k") ||
		{ echo "$out" >&2; fail "kernel view differs from the source"; }
	note "kernel: $out"
	kumount "$d/k"
	rpifs_umount "$d/mnt"
	_MOUNTS=()

	$COMPARE snap "$d/root" "$d/after.json" --skip "$boot_dir" || fail "snapshot failed"
	same_snap "$d/snap.json" "$d/after.json" >&2 || fail "the tree changed"
}

failed=() entries=0 start=$SECONDS rc=0
for seed in $(seq "$first" $((first + n - 1))); do
	t0=$SECONDS args=
	[ "$long" = 1 ] && [ $((seed % 10)) -eq 0 ] && args=--large
	set +e
	(set -e; one_seed "$seed")
	rc=$?
	set -e
	read -r e big < <(python3 -c 'import json,sys; i=json.load(open(sys.argv[1]))
print(i["entries"], " ".join(i["big"]))' "$T/info.$seed" 2>/dev/null || echo 0)
	entries=$((entries + e))
	if [ "$rc" -eq 0 ]; then
		note "seed $seed: ok, $e entries, $((SECONDS - t0)) s $big"
	else
		failed+=("$seed")
		note "seed $seed: FAILED, $e entries $big (again: RPIFS_ADV_FIRST=$seed RPIFS_ADV_SEEDS=1${args:+ RPIFS_LONG=1} $0; the tree: tests/hardening/advtree.py $seed DIR${args:+ $args})"
	fi
	rm -rf "${T:?}/s$seed"
done
note "$n seeds ($first..$((first + n - 1))), $entries entries, ${#failed[@]} failed, $((SECONDS - start)) s"
[ ${#failed[@]} -eq 0 ] || fail "seeds failed: ${failed[*]}"
note "ok"
