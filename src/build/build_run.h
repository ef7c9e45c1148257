/* build_run.h - run one child program with its output in a log file.
 *
 * The child's stdout and stderr go through a pipe: every byte is appended to
 * the log, every complete line is offered to a callback (progress counting),
 * and a tick callback runs about once a second so the caller can redraw a
 * progress line while the child is quiet. No shell is involved: argv is
 * passed to execvp() as is.
 */
#ifndef RPIFS_BUILD_RUN_H
#define RPIFS_BUILD_RUN_H

#include <stddef.h>

struct run {
	char *const *argv;          /* argv[0] is looked up in PATH */
	const char *cwd;            /* NULL: inherit */
	const char *const *env;     /* "NAME=VALUE" to set, "NAME" to unset; NULL-terminated */
	const char *input;          /* fed to stdin; NULL: stdin is /dev/null */
	int log_fd;                 /* output appended here; -1: discarded */
	void (*line)(void *ctx, const char *line);
	void (*tick)(void *ctx);
	void *ctx;
	/* Filled in: exit status, or 128 + signal number. */
	int status;
};

/* 0 when the child exited 0; -ENOENT etc. when it could not be started
 * (the exec error is reported back through a close-on-exec pipe); -EIO when
 * it ran and failed (r->status says how). Writes "$ argv..." to the log
 * first so the log shows what ran. */
int build_run_child(struct run *r);

/* "make -j2 O=..." for messages, shell-quoted where needed. Free it. */
char *build_run_cmdline(char *const *argv);

#endif
