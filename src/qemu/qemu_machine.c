/* qemu_machine.c - does a qemu binary have a board's -M machine?
 *
 * A qemu without the machine fails with "unsupported machine type", which
 * does not say where a newer one comes from. Asking first costs a qemu
 * start (~50 ms), so only boards whose machine is newer than qemu 7.2
 * (Debian bookworm's) are asked about: the others are in every qemu a
 * supported host has.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "qemu_machine.h"

enum { PROBE_MS = 10000 };   /* a qemu lists its machines well within this */

/* QEMU -machine help's output, at most LEN - 1 bytes; 0 or -errno. */
static int machine_list(const char *qemu, char *out, size_t len)
{
	char *argv[] = { (char *)qemu, (char *)"-machine", (char *)"help", NULL };
	struct timespec t0, t;
	int pfd[2], st, ret = 0;
	size_t n = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return ret;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);

		dup2(pfd[1], 1);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		long ms;
		ssize_t r;

		clock_gettime(CLOCK_MONOTONIC, &t);
		ms = PROBE_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (ms <= 0 || poll(&p, 1, (int)ms) == 0) {
			ret = -ETIMEDOUT;       /* not a qemu listing machines */
			break;
		}
		r = read(pfd[0], out + n, len - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == len - 1)
			break;
	}
	out[n] = '\0';
	close(pfd[0]);
	kill(pid, SIGKILL);             /* gone already, unless it hung or talks on */
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return ret;
}

/* A line of the list starting with NAME and a blank: "raspi4b   Raspberry..." */
static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = list; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (!strncmp(l, name, n) && (l[n] == ' ' || l[n] == '\t' || l[n] == '\n'))
			return true;
	return false;
}

/* Where scripts/trixie-qemu puts its wrapper by default, into path (len
 * bytes): $RPIFS_TRIXIE_QEMU_DIR, else /var/cache/rpifs/trixie-qemu for
 * root, else $XDG_CACHE_HOME (or ~/.cache)/rpifs/trixie-qemu. false: none. */
static bool trixie_wrapper(char *path, size_t len)
{
	const char *dir = getenv("RPIFS_TRIXIE_QEMU_DIR"), *xdg = getenv("XDG_CACHE_HOME"),
		   *home = getenv("HOME");
	int n;

	if (dir && *dir)
		n = snprintf(path, len, "%s/qemu-system-aarch64", dir);
	else if (geteuid() == 0)
		n = snprintf(path, len, "/var/cache/rpifs/trixie-qemu/qemu-system-aarch64");
	else if (xdg && *xdg)
		n = snprintf(path, len, "%s/rpifs/trixie-qemu/qemu-system-aarch64", xdg);
	else if (home && *home)
		n = snprintf(path, len, "%s/.cache/rpifs/trixie-qemu/qemu-system-aarch64", home);
	else
		return false;
	return n > 0 && (size_t)n < len && access(path, X_OK) == 0;
}

int qemu_machine_check(const char **qemu, bool given, const struct qemu_board *qb)
{
	static char list[64 * 1024], wrapper[4096];

	if (atoi(qb->min_qemu) <= 7)
		return 0;
	if (machine_list(*qemu, list, sizeof(list)) < 0 || !strstr(list, "Supported machines are:"))
		return 0;
	if (listed(list, qb->machine))
		return 0;
	/* No --qemu: the one scripts/trixie-qemu made, if it is there. */
	if (!given && trixie_wrapper(wrapper, sizeof(wrapper)) &&
	    machine_list(wrapper, list, sizeof(list)) == 0 && listed(list, qb->machine)) {
		log_info("qemu: %s has no -M %s: using %s (made by scripts/trixie-qemu; --qemu "
			 "picks another)", *qemu, qb->machine, wrapper);
		*qemu = wrapper;
		return 0;
	}
	log_error("qemu: %s has no -M %s (board %s needs qemu %s or later; Debian bookworm's"
		  " is 7.2). scripts/trixie-qemu in rpifs's source tree makes one from Debian"
		  " trixie's packages without installing anything (it prints its path; rpifs"
		  " qemu then finds it in its default place by itself); or"
		  " rpifs qemu --board %s --qemu PATH", *qemu, qb->machine, qb->name,
		  qb->min_qemu, qb->name);
	return -ENOTSUP;
}
