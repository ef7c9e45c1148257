/* build_stage.h - one stage of `rpifs build`: progress, log, stamp.
 *
 * Nothing a stage keeps for itself lives inside ROOTFS (every file there
 * ends up in the image): logs, stamps and temporary trees go to the state
 * directory "ROOTFS.rpifs" next to it.
 *
 *   ROOTFS.rpifs/logs/STAGE.log     the stage's output, one section per run
 *   ROOTFS.rpifs/stamps/STAGE       written last: "this stage completed with
 *                                   these inputs" (its key, plain text)
 *   ROOTFS.rpifs/tmp/               scratch trees, renamed into place
 *
 * A stage removes its stamp before it changes anything, so a stage that
 * failed or was interrupted never looks complete.
 */
#ifndef RPIFS_BUILD_STAGE_H
#define RPIFS_BUILD_STAGE_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>
#include "build_run.h"

struct stage {
	const char *name;           /* "kernel" */
	int index, count;           /* shown as [index/count] */
	const char *state_dir;
	char *log_path;
	int log_fd;
	off_t log_start;            /* where this run's section begins */
	struct timespec t0;
	char step[160];             /* what it is doing now */
	char detail[160];           /* counters */
	bool tty;
	bool drawn;                 /* a \r progress line is on the screen */
	time_t last_line;           /* non-tty: when progress was last printed */
};

/* "ROOTFS.rpifs" for ROOTFS (absolute, no trailing slash). Free it. */
char *build_stage_state_dir(const char *rootfs);
/* The stages after rootfs need its tree: 0, or -ENOENT (logged, saying to
 * run `rpifs build rootfs` first). */
int build_stage_need_rootfs(const char *rootfs);

/* Opens the log (appending a new section) and prints "[i/n] name: ...". 0 or -errno. */
int build_stage_begin(struct stage *s, const char *state_dir, const char *name, int index,
		      int count);
/* Prints "done in M:SS" or, on failure, the log's last lines and its
 * path. Returns ret. */
int build_stage_end(struct stage *s, int ret);
/* The stage was up to date: says so, with why, and closes. */
void build_stage_skip(struct stage *s, const char *why);

/* What the stage is doing now ("debootstrap: second stage"). */
void build_stage_step(struct stage *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A counter shown after the step ("1234 objects compiled"). */
void build_stage_detail(struct stage *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Redraw the progress line if due. */
void build_stage_tick(struct stage *s);
/* Append a line to the log (not the terminal). */
void build_stage_log(struct stage *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print a message above the progress line (and into the log). */
void build_stage_say(struct stage *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Run a child with the stage's log and progress; reports a failure (one
 * line: the full output is in the log). cwd, env, input, line may be NULL. */
int build_stage_run(struct stage *s, char *const *argv, const char *cwd, const char *const *env,
		    const char *input, void (*line)(void *ctx, const char *line), void *ctx);

/* The stamp holds key; true when it matches exactly. */
bool build_stage_stamp_matches(const char *state_dir, const char *name, const char *key);
int build_stage_stamp_write(const char *state_dir, const char *name, const char *key);
void build_stage_stamp_clear(const char *state_dir, const char *name);

/* A fresh scratch directory STATE/tmp/NAME.XXXXXX. Free the path. */
int build_stage_tmpdir(const char *state_dir, const char *name, char **out);

/* "M:SS" or "H:MM:SS" */
void build_stage_fmt_elapsed(double secs, char *buf, size_t len);
double build_stage_elapsed(const struct stage *s);

#endif
