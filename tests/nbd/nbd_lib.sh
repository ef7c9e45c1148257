# tests/nbd/nbd_lib.sh - shared by the nbd tests: tests/lib.sh plus the
# plugin. Source it: . "$TESTS_DIR/nbd/nbd_lib.sh"
. "$TESTS_DIR/lib.sh"
need nbdkit nbdcopy nbdinfo python3
[ -n "${NBDKIT_PLUGIN:-}" ] && [ -f "$NBDKIT_PLUGIN" ] ||
	skip "the nbdkit plugin is not built (nbdkit-plugin-dev missing at configure)"
# The Debian python with python3-libnbd's module (python3 in PATH may be
# another one).
NBDPY=/usr/bin/python3
"$NBDPY" -c 'import nbd' 2>/dev/null || skip "python3-libnbd (import nbd) not installed"
export SOURCE_DATE_EPOCH=1700000000

# A sanitizer build's plugin needs the ASan runtime preloaded into nbdkit,
# where it hangs at exit (seen with nbdkit 1.32): not run there yet.
NBD_ASAN=$(ldd "$NBDKIT_PLUGIN" | awk '/libasan/ { print $3 }')
[ -z "$NBD_ASAN" ] || skip "the plugin is an ASan build: nbdkit would need the runtime preloaded"
# nbdkit, or under scripts/valgrind-suite (RPIFS_VALGRIND=1) its wrapper:
# nbdkit with the plugin under valgrind memcheck, logs checked by the suite.
NBDKIT=nbdkit
[ "${RPIFS_VALGRIND:-0}" = 1 ] && [ -x "${RPIFS_VG_NBDKIT:-}" ] && NBDKIT=$RPIFS_VG_NBDKIT
rpifs_qemu() { "$RPIFS" qemu "$@"; }
nbdkit_env_clear='unset LD_PRELOAD;'

# serve ROOTFS [key=value ...] -- CMD: nbdkit on a private Unix socket
# (captive: it stops when CMD ends) running CMD with $unixsocket and $uri.
serve() {
	local args=()
	while [ "$1" != "--" ]; do args+=("$1"); shift; done
	shift
	"$NBDKIT" -U - "$NBDKIT_PLUGIN" "${args[@]}" --run "$nbdkit_env_clear $*"
}

# A small tree with files in both partitions.
make_tree() {
	mkdir -p "$1/boot/overlays" "$1/etc" "$1/usr/bin"
	echo "console=serial0,115200 root=PARTUUID=1234abcd-02 rootwait" > "$1/boot/cmdline.txt"
	printf 'arm_64bit=1\nkernel=Image\n' > "$1/boot/config.txt"
	head -c 1500000 /dev/urandom > "$1/boot/Image"
	head -c 4000 /dev/urandom > "$1/boot/overlays/x.dtbo"
	echo "pi" > "$1/etc/hostname"
	head -c 2500000 /dev/urandom > "$1/usr/bin/prog"
	ln -s prog "$1/usr/bin/link"
	touch -d @1690000000 "$1"/boot/* "$1"/etc/* "$1"/usr/bin/prog
}
