/* build_run.c - fork/exec a child, log its output, report progress. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "build.h"
#include "build_run.h"
#include "vector.h"

static int write_full(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

char *build_run_cmdline(char *const *argv)
{
	size_t cap = 0, len = 0;
	char *s = NULL;

	if (VEC_RESERVE(s, cap, 1, 256) < 0)
		return build_xstrdup("?");
	s[0] = '\0';
	for (; *argv; argv++) {
		const char *a = *argv;
		bool quote = !*a || strpbrk(a, " \t\n'\"\\$`*?;&|<>()[]{}!#~") != NULL;
		/* Worst case: every byte a quote (4 bytes), two quotes, a space. */
		size_t need = strlen(a) * 4 + 4;

		if (VEC_RESERVE(s, cap, len + need + 1, 256) < 0) {
			free(s);
			return build_xstrdup("?");
		}
		if (len)
			s[len++] = ' ';
		if (quote)
			s[len++] = '\'';
		for (; *a; a++) {
			if (*a == '\'' && quote) {
				memcpy(s + len, "'\\''", 4);
				len += 4;
			} else {
				s[len++] = *a;
			}
		}
		if (quote)
			s[len++] = '\'';
		s[len] = '\0';
	}
	return s;
}

/* In the child: never returns. Reports an exec failure's errno on errfd. */
static void child(const struct run *r, int outfd, int errfd, int infd)
{
	const char *const *e;
	int err;

	/* Own process group is not wanted: Ctrl-C must reach the child too. */
	signal(SIGPIPE, SIG_DFL);
	if (dup2(infd, 0) < 0 || dup2(outfd, 1) < 0 || dup2(outfd, 2) < 0)
		goto fail;
	if (r->cwd && chdir(r->cwd) < 0)
		goto fail;
	for (e = r->env; e && *e; e++) {
		const char *eq = strchr(*e, '=');

		if (eq) {
			char *name = strndup(*e, (size_t)(eq - *e));

			if (!name || setenv(name, eq + 1, 1) < 0)
				goto fail;
		} else if (unsetenv(*e) < 0) {
			goto fail;
		}
	}
	execvp(r->argv[0], r->argv);
fail:
	err = errno;
	(void)!write(errfd, &err, sizeof(err));
	_exit(127);
}

static int make_input(const char *input)
{
	int fd;

	if (!input)
		return open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* A memfd rather than a pipe: the input can never block the parent. */
	fd = memfd_create("rpifs-input", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (write_full(fd, input, strlen(input)) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void feed_lines(struct run *r, char *buf, size_t *have, bool flush)
{
	size_t start = 0, i;

	for (i = 0; i < *have; i++) {
		if (buf[i] != '\n' && buf[i] != '\r')
			continue;
		buf[i] = '\0';
		if (r->line && i > start)
			r->line(r->ctx, buf + start);
		start = i + 1;
	}
	if (flush && start < *have) {
		buf[*have] = '\0';
		if (r->line)
			r->line(r->ctx, buf + start);
		start = *have;
	}
	/* A line longer than the buffer is cut: progress only needs starts. */
	if (start == 0 && *have >= 4096)
		start = *have;
	memmove(buf, buf + start, *have - start);
	*have -= start;
}

int build_run_child(struct run *r)
{
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, infd = -1;
	char buf[8192], linebuf[4097];
	size_t have = 0;
	int ret = 0, wst, exec_err = 0;
	pid_t pid;

	r->status = -1;
	if (r->log_fd >= 0) {
		char *cmd = build_run_cmdline(r->argv);
		char *hdr = r->cwd ? build_xasprintf("$ (cd %s && %s)\n", r->cwd, cmd)
				   : build_xasprintf("$ %s\n", cmd);

		write_full(r->log_fd, hdr, strlen(hdr));
		free(hdr);
		free(cmd);
	}
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out;
	}
	infd = make_input(r->input);
	if (infd < 0) {
		ret = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	if (pid == 0)
		child(r, out[1], err[1], infd);
	close(out[1]);
	close(err[1]);
	out[1] = err[1] = -1;

	for (;;) {
		struct pollfd p = { .fd = out[0], .events = POLLIN };
		int n = poll(&p, 1, 1000);
		ssize_t got;

		if (n < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		if (r->tick)
			r->tick(r->ctx);
		if (n <= 0)
			continue;
		got = read(out[0], buf, sizeof(buf));
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			ret = -errno;
			break;
		}
		if (got == 0)
			break;
		if (r->log_fd >= 0)
			write_full(r->log_fd, buf, (size_t)got);
		for (ssize_t i = 0; i < got; ) {
			size_t room = sizeof(linebuf) - 1 - have;
			size_t take = (size_t)(got - i) < room ? (size_t)(got - i) : room;

			memcpy(linebuf + have, buf + i, take);
			have += take;
			i += (ssize_t)take;
			feed_lines(r, linebuf, &have, false);
		}
	}
	feed_lines(r, linebuf, &have, true);
	while (waitpid(pid, &wst, 0) < 0) {
		if (errno != EINTR) {
			ret = ret ? ret : -errno;
			goto out;
		}
	}
	if (read(err[0], &exec_err, sizeof(exec_err)) == (ssize_t)sizeof(exec_err) && exec_err) {
		ret = -exec_err;
		goto out;
	}
	if (WIFEXITED(wst))
		r->status = WEXITSTATUS(wst);
	else if (WIFSIGNALED(wst))
		r->status = 128 + WTERMSIG(wst);
	if (!ret && r->status != 0)
		ret = -EIO;
out:
	if (r->log_fd >= 0 && ret) {
		char *msg = ret == -EIO ? build_xasprintf("# exit status %d\n", r->status)
					: build_xasprintf("# could not run %s: %s\n", r->argv[0],
							  strerror(-ret));

		write_full(r->log_fd, msg, strlen(msg));
		free(msg);
	}
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	if (infd >= 0)
		close(infd);
	return ret;
}
