# tests/image/fat_fixture.sh - the boot tree the fat_*.sh tests serve.
# Source it after lib.sh. Not a test on its own (not in image_tests).
#
# make_fat_fixture ROOTFS [BIG_MB]: builds ROOTFS/boot (and a little outside
# it) with every kind of name and entry the FAT32 generator must handle.
# BIG_MB (default 100) is the size of boot/big.bin, 0 for none.
#
# make_fat_expected ROOTFS OUT: the tree mcopy must give back: boot as it
# is, minus what FAT cannot hold (skipped with a warning), with symlinks to
# files inside boot replaced by copies of their targets.
#
# FAT_SKIPPED: the names (relative to ROOTFS) rpifs must warn about.

FAT_SKIPPED=(
	boot/outside-link
	boot/dangling-link
	boot/dir-link
	boot/fifo
	$'boot/bad\xffname.txt'
	boot/colon:name
	boot/back\\slash
)

# fixture_bytes N KEY: N pseudo-random bytes, the same for the same KEY
# (the fixture's images are pinned by tests/golden).
fixture_bytes() {
	python3 -c 'import random, sys
sys.stdout.buffer.write(random.Random(sys.argv[2]).randbytes(int(sys.argv[1])))' "$1" "$2"
}

make_fat_fixture() {
	local r=$1 big=${2:-100} b i d
	b=$r/boot
	mkdir -p "$b" "$r/etc"
	echo "outside the boot directory" > "$r/etc/hostname"

	# Firmware-like names: valid 8.3, one case per part: no long name.
	printf 'arm_64bit=1\nenable_uart=1\n' > "$b/config.txt"
	echo "console=ttyAMA0 root=/dev/mmcblk0p2 rootwait" > "$b/cmdline.txt"
	printf 'UPPER\n' > "$b/UPPER.TXT"
	printf 'kernel\n' > "$b/kernel8.img"
	printf 'readme\n' > "$b/README.md"

	# Long, mixed case, several dots, leading dots.
	echo long > "$b/This is a rather long file name, with spaces and more.txt"
	echo mixed > "$b/MixedCase.Txt"
	echo mixed2 > "$b/Mixed.TXT"
	echo abc > "$b/a.b.c"
	echo tgz > "$b/archive.tar.gz"
	echo dtbo > "$b/v1.2.3.dtbo"
	echo hidden > "$b/.hidden"
	echo dots > "$b/..."
	echo cfg > "$b/.config.txt"
	echo dd > "$b/..dots"
	echo plus > "$b/a+b[1];c=d,e.txt"
	echo ext > "$b/name.longext"
	echo sp > "$b/ leading space"

	# Non-ASCII: é, 日本語, an emoji (a surrogate pair in UTF-16).
	echo cafe > "$b/café.txt"
	echo nihongo > "$b/日本語.txt"
	echo smile > "$b/😀 smile.txt"
	mkdir -p "$b/naïve dir"
	echo e > "$b/naïve dir/é"

	# Exactly 13 and 26 UTF-16 units, and the 255-byte maximum.
	echo 13 > "$b/abcdefghijklm"
	echo 26 > "$b/abcdefghijklmnopqrstuvwxyz"
	echo 255 > "$b/$(printf 'n%.0s' $(seq 1 251)).txt"
	echo 127 > "$b/$(printf 'é%.0s' $(seq 1 127))"

	# Names colliding in 8.3: 20 share "collid" and ".dat"; two literal
	# short names take ~1 and ~2 first; case twins (README/readme/ReadMe).
	mkdir -p "$b/collide" "$b/case"
	for i in $(seq -w 1 20); do echo "$i" > "$b/collide/collide_$i.dat"; done
	echo lit1 > "$b/collide/COLLID~1.DAT"
	echo lit2 > "$b/collide/collid~2.dat"
	echo 1 > "$b/case/README"
	echo 2 > "$b/case/readme"
	echo 3 > "$b/case/ReadMe"
	echo 4 > "$b/case/CONFIG.TXT"
	echo 5 > "$b/case/config.txt"

	# 1 000 files in one directory.
	mkdir -p "$b/many"
	for i in $(seq -w 0 999); do echo "file $i" > "$b/many/file_$i.bin"; done

	# 8 levels deep.
	d=$b/d1/d2/d3/d4/d5/d6/d7/d8
	mkdir -p "$d"
	echo deep > "$d/leaf.txt"

	# Empty file, empty directory, sizes around the 512-byte cluster.
	: > "$b/empty.bin"
	mkdir -p "$b/emptydir" "$b/d1/empty sub"
	for i in 511 512 513 1024 4096 4097; do fixture_bytes "$i" "size_$i" > "$b/size_$i"; done
	chmod 444 "$b/size_511"

	# Timestamps: one with an odd second, one before 1980, one after 2107.
	echo t > "$b/stamp.txt"; touch -d '2020-02-29 13:37:43 UTC' "$b/stamp.txt"
	echo old > "$b/old.txt"; touch -d '1975-06-01 00:00:00 UTC' "$b/old.txt"
	echo fut > "$b/future.txt"; touch -d '2200-01-01 00:00:00 UTC' "$b/future.txt" || true

	if [ "$big" -gt 0 ]; then
		fixture_bytes $((big << 20)) big > "$b/big.bin"
	fi

	# Symlinks: to a file inside boot (relative, absolute, from a subdir),
	# outside, dangling, to a directory; a fifo; names FAT cannot hold.
	ln -s config.txt "$b/link-to-config"
	ln -s /boot/cmdline.txt "$b/abs-link"
	ln -s ../../config.txt "$b/d1/d2/up-link.txt"
	ln -s ../etc/hostname "$b/outside-link"
	ln -s does-not-exist "$b/dangling-link"
	ln -s d1 "$b/dir-link"
	mkfifo "$b/fifo"
	echo bad > "$r/"$'boot/bad\xffname.txt'
	echo colon > "$b/colon:name"
	echo trailing > "$b/trailing."
	echo bs > "$b/back\\slash"
	echo tsp > "$b/trailing space "
}

make_fat_expected() {
	local r=$1 out=$2 s
	cp -a "$r/boot" "$out"
	for s in "${FAT_SKIPPED[@]}"; do rm -rf "${out:?}/${s#boot/}"; done
	# The links that lead to files inside boot are served as copies.
	cp --remove-destination "$r/boot/config.txt" "$out/link-to-config"
	cp --remove-destination "$r/boot/cmdline.txt" "$out/abs-link"
	cp --remove-destination "$r/boot/config.txt" "$out/d1/d2/up-link.txt"
	[ -z "$(find "$out" -type l -o -type p)" ] || fail "expected tree still has links"
}

# fat_mount LOG ROOTFS MNT [rpifs options]: rpifs_mount with rpifs's
# messages captured in LOG, then shown on stderr. If the mount fails, LOG
# is shown on the way out (rpifs_mount's `fail` exits with stderr = LOG).
# (A pipe through tee does not work: the daemon inherits it.)
fat_mount() {
	_fat_log=$1; shift
	exec 4>&2
	trap 'cat "$_fat_log" >&4; cleanup' EXIT
	rpifs_mount "$@" 2>"$_fat_log" 4>&-
	trap cleanup EXIT
	exec 4>&-
	cat "$_fat_log" >&2
}
