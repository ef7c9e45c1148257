#!/usr/bin/env bash
# `build rootfs` as an ordinary user builds in a user namespace (mmdebstrap
# --mode=unshare): when something it needs is missing, it stops before
# creating anything, saying what to run. Simulated for uid 65534 (no
# subordinate range) with setpriv when the test runs as root:
#  - no subordinate range: the usermod command;
#  - binfmt_misc without qemu-aarch64 (an empty binfmt_misc in a private
#    mount namespace): the mount + update-binfmts command for root;
#  - user namespaces off (max_user_namespaces = 0 in an enclosing user
#    namespace, which limits the ones below it): the sysctl command;
#  - mmdebstrap, newuidmap missing (a PATH without them): the apt-get command;
#  - --mode root as a user: refused; `build all` as a user: the same checks.
# The real build as a user with a subordinate range: build_rootless.
. "$TESTS_DIR/lib.sh"

chmod 755 "$T"
mkdir -m 777 "$T/w"
R=$T/w/root
if [ "$(id -u)" = 0 ]; then
	need setpriv
	as_user=("$(command -v setpriv)" --reuid=65534 --regid=65534 --clear-groups --)
	"${as_user[@]}" test -x "$RPIFS" || skip "$RPIFS is not reachable by uid 65534"
	user=$(getent passwd 65534 | cut -d: -f1)
	! grep -q "^$user:" /etc/subuid 2>/dev/null || skip "$user has a subordinate range here"
else
	as_user=()
	user=$(id -un)
	grep -q "^$user:" /etc/subuid 2>/dev/null && skip "$user has a subordinate range (build_rootless covers it)"
fi

# run NAME [PREFIX...] -- ARGS...: the build as the user, which must fail and
# create nothing; its output in $T/NAME.
run() {
	local name=$1 pre=() rc; shift
	while [ "$1" != -- ]; do pre+=("$1"); shift; done
	shift
	set +e
	"${pre[@]}" "${as_user[@]}" "$RPIFS" build "$@" >"$T/$name" 2>&1
	rc=$?
	set -e
	[ $rc -ne 0 ] || { cat "$T/$name"; fail "$name: build $* as a user succeeded"; }
	[ ! -e "$R" ] && [ ! -e "$R.rpifs" ] || fail "$name: build $* as a user created files"
}
want() {   # want NAME TEXT...: each TEXT is in NAME's output
	local name=$1 t; shift
	for t in "$@"; do
		grep -qF -- "$t" "$T/$name" || { cat "$T/$name"; fail "$name: no '$t' in the message"; }
	done
}

# No subordinate range: the command that gives one.
run norange -- rootfs "$R" --mirror http://127.0.0.1:9/debian
want norange "$user has no subordinate uid range in /etc/subuid" "As root, run \`usermod --add-subuids " \
	"--add-subgids " " $user\`"
note "$(grep -m1 usermod "$T/norange")"

# debootstrap as a user: refused, with the way that works.
run moderoot -- rootfs "$R" --mode root --mirror http://127.0.0.1:9/debian
want moderoot "--mode root needs root" "sudo rpifs build rootfs" "leave --mode out"

# `all` as a user runs every stage in the user's namespace: its rootfs
# stage's checks come first (before --src), with the same message.
run all -- all "$R" --mirror http://127.0.0.1:9/debian --src /nonexistent-is-not-checked-first
want all "$user has no subordinate uid range in /etc/subuid" "As root, run \`usermod --add-subuids "
! grep -q -- "--src /nonexistent" "$T/all" || { cat "$T/all"; fail "all: --src checked before the user"; }

# mmdebstrap and newuidmap missing: a PATH with neither.
mkdir "$T/bin"
run nopath env PATH="$T/bin" -- rootfs "$R" --mirror http://127.0.0.1:9/debian
want nopath "mmdebstrap not found" "apt-get install mmdebstrap arch-test uidmap" \
	"newuidmap/newgidmap not found" "apt-get install uidmap"

if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	# binfmt_misc without a qemu-aarch64 entry: an empty one (only in a
	# private mount namespace: the host's stays as it is).
	if [ "$(uname -m)" != aarch64 ]; then
		run nobinfmt unshare -m sh -c 'mount -t tmpfs none /proc/sys/fs/binfmt_misc && exec "$@"' sh -- \
			rootfs "$R" --mirror http://127.0.0.1:9/debian
		want nobinfmt "binfmt_misc is not mounted" "only root can mount it" \
			"mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && update-binfmts --enable qemu-aarch64"
	fi
	# User namespaces off: the enclosing namespace allows none below it.
	cat > "$T/nouserns.py" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
r1, w1 = os.pipe(); r2, w2 = os.pipe()
pid = os.fork()
if pid == 0:
    if libc.unshare(0x10000000) != 0:           # CLONE_NEWUSER
        os._exit(100)
    os.write(w2, b"u"); os.read(r1, 1)
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")
    os.execvp(sys.argv[1], sys.argv[1:])
if os.read(r2, 1) != b"u":
    sys.exit(100)
for m in ("uid_map", "gid_map"):                # every id as itself
    with open(f"/proc/{pid}/{m}", "w") as f:
        f.write("0 0 4294967295\n")
os.write(w1, b"g")
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
EOF
	python3 "$T/nouserns.py" true || skip "cannot nest a user namespace here"
	run nouserns python3 "$T/nouserns.py" -- rootfs "$R" --mirror http://127.0.0.1:9/debian
	want nouserns "user namespaces are off (user.max_user_namespaces = 0)" \
		"As root, run \`sysctl -w user.max_user_namespaces="
fi

# --help says how to get a root password.
"$RPIFS" build rootfs --help | grepq -- "--root-password PASS" || fail "--help lacks --root-password"
"$RPIFS" build rootfs --help | grepq "chroot ROOTFS passwd" || fail "--help lacks how to set one later"
"$RPIFS" build rootfs --help | grepq -- "--mode MODE" || fail "--help lacks --mode"
echo ok
