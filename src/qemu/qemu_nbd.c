/* qemu_nbd.c - `rpifs qemu --nbd`: nbdkit serves the SD card to qemu.
 *
 * Where FUSE cannot mount (no /dev/fuse: a container, a CI runner) the
 * image still reaches qemu: nbdkit runs the rpifs plugin on a Unix socket
 * in a private directory, in the foreground as our child (--exit-with-parent:
 * it goes when rpifs does, however rpifs ends), and qemu opens
 * nbd+unix:///disk?socket=SOCK. The plugin is the one built next to this
 * program (BUILD/src/nbdkit/), else the installed one (`nbdkit rpifs`,
 * nbdkit's plugin directory). nbdkit writes its pidfile once it accepts
 * connections: that is when qemu may start.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "qemu_nbd.h"

/* How long the image may take to build before qemu gives up on it. */
#define START_TIMEOUT_MS 120000

bool qemu_fuse_usable(const char **why)
{
	if (access("/dev/fuse", R_OK | W_OK) == 0)
		return true;
	*why = errno == ENOENT ? "/dev/fuse does not exist" : "/dev/fuse is not usable";
	return false;
}

/* The plugin next to this program in a build tree, else nbdkit's name. */
static void plugin_path(char *out, size_t len)
{
	char self[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	struct stat st;

	snprintf(out, len, "rpifs");
	if (n < 0)
		return;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = '\0';
	if ((size_t)snprintf(out, len, "%s/nbdkit/nbdkit-rpifs-plugin.so", self) >= len ||
	    stat(out, &st) < 0)
		snprintf(out, len, "rpifs");
}

static void print_cmd(char **argv)
{
	fputs("rpifs: qemu: nbd:", stderr);
	for (char **a = argv; *a; a++)
		fprintf(stderr, strpbrk(*a, " \t\"'$;&|") ? " '%s'" : " %s", *a);
	fputc('\n', stderr);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int qemu_nbd_start(struct qemu_nbd *n, const char *rootfs, char *const *keys,
		   const char *overlay, bool dry)
{
	char plugin[PATH_MAX], pidfile[PATH_MAX], root_kv[PATH_MAX + 8];
	char ov_kv[PATH_MAX + 16];
	char *argv[16 + QEMU_NBD_MAX_KEYS];
	struct stat st;
	long t0;
	int a = 0, st_code;

	memset(n, 0, sizeof(*n));
	snprintf(n->dir, sizeof(n->dir), "/tmp/rpifs-nbd.XXXXXX");
	if (dry)
		snprintf(n->dir, sizeof(n->dir), "DIR");
	else if (!mkdtemp(n->dir)) {
		log_error("qemu: nbd: creating a socket directory: %s", strerror(errno));
		return -errno;
	}
	snprintf(n->sock, sizeof(n->sock), "%s/sock", n->dir);
	snprintf(pidfile, sizeof(pidfile), "%s/pid", n->dir);
	snprintf(n->uri, sizeof(n->uri), "nbd+unix:///disk?socket=%s", n->sock);
	plugin_path(plugin, sizeof(plugin));
	snprintf(root_kv, sizeof(root_kv), "rootfs=%s", rootfs);

	argv[a++] = (char *)"nbdkit";
	argv[a++] = (char *)"--foreground";
	argv[a++] = (char *)"--exit-with-parent";
	argv[a++] = (char *)"--unix";
	argv[a++] = n->sock;
	argv[a++] = (char *)"--pidfile";
	argv[a++] = pidfile;
	argv[a++] = plugin;
	argv[a++] = root_kv;
	for (int i = 0; keys && keys[i]; i++) {
		if (i == QEMU_NBD_MAX_KEYS) {
			log_error("qemu: nbd: more than %d plugin keys", QEMU_NBD_MAX_KEYS);
			qemu_nbd_stop(n);
			return -E2BIG;
		}
		argv[a++] = keys[i];
	}
	if (overlay) {
		snprintf(ov_kv, sizeof(ov_kv), "overlay=%s", overlay);
		argv[a++] = ov_kv;
	}
	argv[a] = NULL;
	print_cmd(argv);
	if (dry)
		return 0;

	n->pid = fork();
	if (n->pid < 0) {
		n->pid = 0;
		log_error("qemu: nbd: fork: %s", strerror(errno));
		qemu_nbd_stop(n);
		return -EAGAIN;
	}
	if (n->pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "rpifs: qemu: cannot run nbdkit: %s%s\n", strerror(errno),
			errno == ENOENT ? " (install packages nbdkit and rpifs's plugin)" : "");
		_exit(127);
	}
	/* Ready once the pidfile exists; gone if nbdkit exited (its message,
	 * e.g. a bad tree, is on stderr already). */
	for (t0 = now_ms(); stat(pidfile, &st) < 0 || st.st_size == 0;) {
		if (waitpid(n->pid, &st_code, WNOHANG) == n->pid) {
			n->pid = 0;
			log_error("qemu: nbd: nbdkit exited before serving (above)");
			qemu_nbd_stop(n);
			return -EIO;
		}
		if (now_ms() - t0 > START_TIMEOUT_MS) {
			log_error("qemu: nbd: nbdkit did not serve within %d s",
				  START_TIMEOUT_MS / 1000);
			qemu_nbd_stop(n);
			return -ETIMEDOUT;
		}
		usleep(20000);
	}
	return 0;
}

void qemu_nbd_stop(struct qemu_nbd *n)
{
	char p[PATH_MAX];

	if (n->pid > 0) {
		kill(n->pid, SIGTERM);
		while (waitpid(n->pid, NULL, 0) < 0 && errno == EINTR)
			;
		n->pid = 0;
	}
	if (!n->dir[0] || !strcmp(n->dir, "DIR"))
		return;
	snprintf(p, sizeof(p), "%s/pid", n->dir);
	unlink(p);
	unlink(n->sock);
	rmdir(n->dir);
	n->dir[0] = '\0';
}
