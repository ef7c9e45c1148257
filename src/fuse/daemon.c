/* daemon.c - detach early, report late (see daemon.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "daemon.h"

/* The write end of the pipe to the waiting parent, in the child; -1 after
 * daemon_ready() or in the foreground. */
static int report_fd = -1;

static void parent_wait(int fd, pid_t child)
{
	unsigned char status;
	ssize_t n;
	int ws;

	do
		n = read(fd, &status, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		_exit(status);
	/* EOF: the child ended before reporting; its own status says how. */
	while (waitpid(child, &ws, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(ws))
		_exit(WEXITSTATUS(ws) ? WEXITSTATUS(ws) : 1);
	_exit(WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 1);
}

int daemon_start(void)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid > 0) {
		close(p[1]);
		parent_wait(p[0], pid);
	}
	close(p[0]);
	report_fd = p[1];
	return 0;
}

void daemon_ready(void)
{
	unsigned char ok = 0;
	int null;

	if (setsid() < 0) {
		/* Already a session leader: nothing to detach from. */
	}
	if (chdir("/") < 0) {
		/* "/" always exists; nothing relies on the cwd from here. */
	}
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	if (report_fd >= 0) {
		while (write(report_fd, &ok, 1) < 0 && errno == EINTR)
			;
		close(report_fd);
		report_fd = -1;
	}
}
