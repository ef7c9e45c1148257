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

# A sanitizer build's plugin needs the sanitizer's runtime preloaded into
# the (uninstrumented) nbdkit: $NBD_SAN. Two problems with that (nbdkit
# 1.32, glibc 2.36, GCC 12's libasan/libtsan; nbdkit's own file plugin
# shows both, so not the plugin's):
#  - nbdkit never exits: after main returns, libp11-kit's destructor (via
#    gnutls) blocks in freelocale on glibc's setlocale lock, whose reader
#    count is below zero by then. So serve() runs nbdkit -f in the
#    background and, once it is down to that (its own threads gone, the
#    plugin unloaded), kills it: the sanitizer's reports are written as
#    they happen (log_path), only its exit summary is lost. LSan's check
#    at exit is lost too: an ASan build's plugin runs it in its .unload
#    (src/nbdkit/plugin.c), which nbdkit calls before its exit handlers.
#  - the preloaded runtime crashes /bin/sh (SIGSEGV), which --run starts
#    with nbdkit's environment: the command runs beside nbdkit instead.
NBD_SAN=$(ldd "$NBDKIT_PLUGIN" | awk '/libasan|libtsan/ { print $3; exit }')
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
	if [ -n "$NBD_SAN" ]; then
		serve_san "${args[@]}" -- "$@"
		return
	fi
	"$NBDKIT" -U - "$NBDKIT_PLUGIN" "${args[@]}" --run "$nbdkit_env_clear $*"
}

# serve for a ThreadSanitizer build (above): nbdkit -f with the runtime
# preloaded, CMD beside it, then SIGTERM; killed once stuck in its exit
# handlers. Status: CMD's, or nbdkit's when it exits first.
serve_san() {
	local args=() sock pidf pid rc i idle
	while [ "$1" != "--" ]; do args+=("$1"); shift; done
	shift
	sock=$(mktemp -u "$T/nbd.XXXXXX.sock") pidf=$(mktemp -u "$T/nbd.XXXXXX.pid")
	LD_PRELOAD=$NBD_SAN nbdkit -f -U "$sock" -P "$pidf" "$NBDKIT_PLUGIN" "${args[@]}" &
	pid=$!
	# -P: the pidfile appears once nbdkit accepts connections.
	for i in $(seq 600); do
		[ -s "$pidf" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -s "$pidf" ]; then
		nbd_san_stop "$pid"
		return 1
	fi
	idle=$(ls "/proc/$pid/task" | wc -l)
	unixsocket=$sock uri="nbd+unix:///?socket=$sock" bash -c "$*"
	rc=$?
	# Let nbdkit finish the connections CMD closed (their threads gone)
	# before it is told to quit: a connection still open at quit is left
	# unclosed by nbdkit (no .close), and the leak check would see it.
	for i in $(seq 200); do
		[ "$(ls "/proc/$pid/task" 2>/dev/null | wc -l)" -le "$idle" ] && break
		sleep 0.05
	done
	nbd_san_stop "$pid" || rc=1
	return "$rc"
}

# nbd_san_stop PID: SIGTERM, then wait for the exit or the known hang: only
# the main thread and the sanitizer's background thread left, the main one
# in a futex wait (exit handlers). 0 when it exited or stuck there.
nbd_san_stop() {
	local pid=$1 i tasks main
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 600); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid"; return 0; }
		tasks=$(ls "/proc/$pid/task" 2>/dev/null | wc -l)
		main=$(cat "/proc/$pid/wchan" 2>/dev/null)
		if [ "$tasks" -le 2 ] && [[ "$main" == futex* ]]; then
			sleep 1
			if [ "$(cat "/proc/$pid/wchan" 2>/dev/null)" = "$main" ]; then
				kill -KILL "$pid" 2>/dev/null
				wait "$pid" 2>/dev/null
				return 0
			fi
		fi
		sleep 0.1
	done
	note "nbdkit $pid did not stop in 60 s"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 1
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
