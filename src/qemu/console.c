/* console.c - the guest's two serial ports on the terminal (console.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "console.h"
#include "log.h"

int console_port(const char *cmdline)
{
	int port = -1;

	/* The kernel's /dev/console is the last console= it can open. */
	for (const char *p = cmdline; (p = strstr(p, "console=")); p += 8) {
		if (p != cmdline && p[-1] != ' ' && p[-1] != '\t')
			continue;
		if (!strncmp(p + 8, "ttyAMA", 6))
			port = 0;
		else if (!strncmp(p + 8, "ttyS", 4))
			port = 1;
	}
	return port;
}

int console_setup(struct qemu_console *c, int input, bool dry)
{
	char p[PATH_MAX + 8];
	int other = !input;

	memset(c, 0, sizeof(*c));
	c->input = input;
	c->out_fd = -1;
	if (dry) {
		snprintf(c->dir, sizeof(c->dir), "DIR");
	} else {
		snprintf(c->dir, sizeof(c->dir), "/tmp/rpifs-serial.XXXXXX");
		if (!mkdtemp(c->dir)) {
			int ret = -errno;

			log_error("qemu: creating a directory for serial%d: %s", other,
				  strerror(errno));
			c->dir[0] = '\0';
			return ret;
		}
	}
	snprintf(c->pipe_arg, sizeof(c->pipe_arg), "pipe:%s/serial%d", c->dir, other);
	if (dry)
		return 0;
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/serial%d.%s", c->dir, other, i ? "out" : "in");
		if (mkfifo(p, 0600) < 0) {
			int ret = -errno;

			log_error("qemu: %s: %s", p, strerror(errno));
			console_free(c);
			return ret;
		}
	}
	return 0;
}

void console_args(struct qemu_console *c, char **argv, int *n)
{
	/* signal=off: Ctrl-C goes to the guest, Ctrl-A X quits (as -nographic). */
	argv[(*n)++] = (char *)"-chardev";
	argv[(*n)++] = (char *)"stdio,id=console,mux=on,signal=off";
	for (int port = 0; port < 2; port++) {
		argv[(*n)++] = (char *)"-serial";
		argv[(*n)++] = port == c->input ? (char *)"chardev:console" : c->pipe_arg;
	}
	argv[(*n)++] = (char *)"-mon";
	argv[(*n)++] = (char *)"chardev=console,mode=readline";
}

int console_open(struct qemu_console *c)
{
	char p[PATH_MAX + 8];

	/* O_RDWR: the open does not wait for qemu, and poll() never reports a
	 * hang-up before qemu has opened its end (the pump ends when qemu
	 * exits, from a pidfd). The .in FIFO is never written: that port takes
	 * no input. */
	snprintf(p, sizeof(p), "%s/serial%d.out", c->dir, !c->input);
	c->out_fd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (c->out_fd < 0) {
		log_error("qemu: %s: %s", p, strerror(errno));
		return -errno;
	}
	return 0;
}

/* A stream whose tail is kept so that TEXT may straddle two reads. */
struct feed {
	int fd;
	char buf[4096 + 256];
	size_t keep;
};

/* Read what fd has, copy it to stdout; 1: TEXT seen, 0: more to come, -1:
 * EOF or error. */
static int feed_once(struct feed *f, const char *until)
{
	size_t ul = until ? strlen(until) : 0;
	ssize_t n = read(f->fd, f->buf + f->keep, sizeof(f->buf) - f->keep - 1);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0)
		return -1;
	if (fwrite(f->buf + f->keep, 1, (size_t)n, stdout) != (size_t)n)
		return -1;
	fflush(stdout);
	if (!until)
		return 0;
	f->keep += (size_t)n;
	f->buf[f->keep] = '\0';
	if (memmem(f->buf, f->keep, until, ul))
		return 1;
	if (f->keep >= ul) {
		memmove(f->buf, f->buf + f->keep - (ul - 1), ul - 1);
		f->keep = ul - 1;
	}
	return 0;
}

bool console_pump(struct qemu_console *c, int qemu_out, pid_t pid, const char *until,
		  volatile sig_atomic_t *stop)
{
	struct feed f[2] = { { .fd = qemu_out }, { .fd = c->out_fd } };
	struct pollfd pfd[3];
	int map[3], gone = (int)syscall(SYS_pidfd_open, pid, 0);
	bool exited = false;

	if (gone < 0) {
		log_error("qemu: pidfd_open: %s", strerror(errno));
		return false;
	}
	for (;;) {
		int np = 0;

		for (int i = 0; i < 2; i++)
			if (f[i].fd >= 0) {
				pfd[np] = (struct pollfd){ .fd = f[i].fd, .events = POLLIN };
				map[np++] = i;
			}
		if (np == 0)
			break;
		/* Once qemu has exited: what is left in the pipes, then stop. */
		if (!exited) {
			pfd[np] = (struct pollfd){ .fd = gone, .events = POLLIN };
			map[np++] = -1;
		}
		if (poll(pfd, (nfds_t)np, exited ? 0 : -1) < 0) {
			if (errno != EINTR)
				break;
			if (*stop == 1) {
				kill(pid, SIGTERM);
				*stop = 2;
			}
			continue;
		}
		bool any = false;

		for (int k = 0; k < np; k++) {
			if (!pfd[k].revents)
				continue;
			if (map[k] < 0) {
				exited = true;
				continue;
			}
			struct feed *fe = &f[map[k]];
			int r = feed_once(fe, until);

			any = true;
			if (r > 0) {
				kill(pid, SIGTERM);
				close(gone);
				return true;
			}
			if (r < 0)
				fe->fd = -1;   /* EOF: qemu's stdout closed */
		}
		if (exited && !any)
			break;
	}
	close(gone);
	return false;
}

void console_free(struct qemu_console *c)
{
	char p[PATH_MAX + 8];

	if (c->out_fd >= 0)
		close(c->out_fd);
	c->out_fd = -1;
	if (!c->dir[0] || !strcmp(c->dir, "DIR"))
		return;
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/serial%d.%s", c->dir, !c->input, i ? "out" : "in");
		unlink(p);
	}
	rmdir(c->dir);
	c->dir[0] = '\0';
}
