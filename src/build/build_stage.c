/* build_stage.c - progress line, per-stage log and stamp files. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "build.h"
#include "build_fs.h"
#include "build_stage.h"
#include "log.h"

/* Without a terminal a progress line is printed this often (seconds). */
#define PLAIN_INTERVAL 30
/* Lines of the log shown when a stage fails. */
#define TAIL_LINES 25

char *build_stage_state_dir(const char *rootfs)
{
	return build_xasprintf("%s.rpifs", rootfs);
}

double build_stage_elapsed(const struct stage *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - s->t0.tv_sec) + (now.tv_nsec - s->t0.tv_nsec) / 1e9;
}

void build_stage_fmt_elapsed(double secs, char *buf, size_t len)
{
	long t = (long)(secs + 0.5);

	if (t >= 3600)
		snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

static void clear_line(struct stage *s)
{
	if (s->tty && s->drawn) {
		fputs("\r\033[K", stderr);
		s->drawn = false;
	}
}

static void draw(struct stage *s)
{
	char el[32];

	build_stage_fmt_elapsed(build_stage_elapsed(s), el, sizeof(el));
	if (s->tty)
		fputs("\r\033[K", stderr);
	fprintf(stderr, "[%d/%d] %s: %s%s%s (%s)", s->index, s->count, s->name, s->step,
		s->detail[0] ? ", " : "", s->detail, el);
	if (s->tty) {
		s->drawn = true;
	} else {
		fputc('\n', stderr);
		s->last_line = time(NULL);
	}
	fflush(stderr);
}

void build_stage_tick(struct stage *s)
{
	if (s->tty || time(NULL) - s->last_line >= PLAIN_INTERVAL)
		draw(s);
}

void build_stage_step(struct stage *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->step, sizeof(s->step), fmt, ap);
	va_end(ap);
	s->detail[0] = '\0';
	build_stage_log(s, "## %s", s->step);
	draw(s);
}

void build_stage_detail(struct stage *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
	va_end(ap);
}

void build_stage_log(struct stage *s, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	if (s->log_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	(void)!write(s->log_fd, buf, (size_t)n);
}

void build_stage_say(struct stage *s, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	clear_line(s);
	fprintf(stderr, "rpifs: %s: %s\n", s->name, buf);
	build_stage_log(s, "# %s", buf);
}

int build_stage_begin(struct stage *s, const char *state_dir, const char *name, int index,
		      int count)
{
	char *dir = build_xasprintf("%s/logs", state_dir), when[32];
	struct tm tm;
	time_t now;
	int ret;

	memset(s, 0, sizeof(*s));
	s->name = name;
	s->index = index;
	s->count = count;
	s->state_dir = state_dir;
	s->log_fd = -1;
	s->tty = isatty(2);
	clock_gettime(CLOCK_MONOTONIC, &s->t0);
	ret = build_fs_mkdir_p(dir, 0755);
	if (ret) {
		log_error("%s: cannot create the log directory: %s", dir, strerror(-ret));
		goto out;
	}
	s->log_path = build_xasprintf("%s/%s.log", dir, name);
	/* Appended, not truncated: a run that finds the stage up to date must
	 * not wipe the log of the run that did the work. */
	s->log_fd = open(s->log_path, O_WRONLY | O_CREAT | O_CLOEXEC | O_APPEND, 0644);
	if (s->log_fd < 0) {
		ret = -errno;
		log_error("%s: cannot create the log: %s", s->log_path, strerror(-ret));
		goto out;
	}
	s->log_start = lseek(s->log_fd, 0, SEEK_END);
	now = time(NULL);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
	build_stage_log(s, "\n#### rpifs build %s, %s ####", name, when);
	snprintf(s->step, sizeof(s->step), "starting");
out:
	free(dir);
	return ret;
}

/* Print the last lines of this run's part of the log: enough to see why,
 * without scrolling. */
static void print_tail(const char *path, off_t start)
{
	char *buf = NULL, *p, *first;
	size_t len = 0;
	int lines = 0;

	if (build_fs_read(path, &buf, &len) < 0 || !len)
		goto out;
	first = start > 0 && (size_t)start < len ? buf + start : buf;
	p = buf + len;
	if (p > first && p[-1] == '\n')
		p--;
	while (p > first && lines <= TAIL_LINES) {
		p--;
		if (*p == '\n')
			lines++;
	}
	if (*p == '\n')
		p++;
	fprintf(stderr, "---- last lines of %s ----\n%s%s---- end of log ----\n", path, p,
		buf[len - 1] == '\n' ? "" : "\n");
out:
	free(buf);
}

int build_stage_end(struct stage *s, int ret)
{
	char el[32];

	build_stage_fmt_elapsed(build_stage_elapsed(s), el, sizeof(el));
	clear_line(s);
	if (ret) {
		build_stage_log(s, "# FAILED after %s", el);
		fprintf(stderr, "[%d/%d] %s: FAILED after %s\n", s->index, s->count, s->name, el);
		if (s->log_path && s->log_fd >= 0) {
			print_tail(s->log_path, s->log_start);
			fprintf(stderr, "rpifs: %s: full log: %s\n", s->name, s->log_path);
		}
	} else {
		build_stage_log(s, "# done in %s", el);
		fprintf(stderr, "[%d/%d] %s: done in %s%s%s\n", s->index, s->count, s->name, el,
			s->detail[0] ? " - " : "", s->detail);
	}
	if (s->log_fd >= 0)
		close(s->log_fd);
	s->log_fd = -1;
	free(s->log_path);
	s->log_path = NULL;
	return ret;
}

void build_stage_skip(struct stage *s, const char *why)
{
	clear_line(s);
	build_stage_log(s, "# up to date: %s", why);
	fprintf(stderr, "[%d/%d] %s: up to date (%s; --force redoes it)\n", s->index, s->count,
		s->name, why);
	if (s->log_fd >= 0)
		close(s->log_fd);
	s->log_fd = -1;
	free(s->log_path);
	s->log_path = NULL;
}

struct line_fwd {
	struct stage *s;
	void (*line)(void *ctx, const char *line);
	void *ctx;
};

static void fwd_line(void *ctx, const char *line)
{
	struct line_fwd *f = ctx;

	if (f->line)
		f->line(f->ctx, line);
}

static void fwd_tick(void *ctx)
{
	struct line_fwd *f = ctx;

	build_stage_tick(f->s);
}

int build_stage_run(struct stage *s, char *const *argv, const char *cwd, const char *const *env,
		    const char *input, void (*line)(void *ctx, const char *line), void *ctx)
{
	struct line_fwd f = { s, line, ctx };
	struct run r = {
		.argv = argv, .cwd = cwd, .env = env, .input = input, .log_fd = s->log_fd,
		.line = fwd_line, .tick = fwd_tick, .ctx = &f,
	};
	int ret = build_run_child(&r);

	if (ret == -EIO)
		build_stage_say(s, "%s failed (exit status %d)", argv[0], r.status);
	else if (ret == -ENOENT)
		build_stage_say(s, "%s: command not found", argv[0]);
	else if (ret)
		build_stage_say(s, "cannot run %s: %s", argv[0], strerror(-ret));
	return ret;
}

static char *stamp_path(const char *state_dir, const char *name)
{
	return build_xasprintf("%s/stamps/%s", state_dir, name);
}

bool build_stage_stamp_matches(const char *state_dir, const char *name, const char *key)
{
	char *p = stamp_path(state_dir, name), *buf = NULL;
	bool ok = build_fs_read(p, &buf, NULL) == 0 && !strcmp(buf, key);

	free(buf);
	free(p);
	return ok;
}

int build_stage_stamp_write(const char *state_dir, const char *name, const char *key)
{
	char *dir = build_xasprintf("%s/stamps", state_dir), *p = stamp_path(state_dir, name);
	int ret = build_fs_mkdir_p(dir, 0755);

	if (!ret)
		ret = build_fs_write_atomic(p, key, strlen(key), 0644);
	if (ret)
		log_error("%s: cannot write the stamp: %s", p, strerror(-ret));
	free(dir);
	free(p);
	return ret;
}

void build_stage_stamp_clear(const char *state_dir, const char *name)
{
	char *p = stamp_path(state_dir, name);

	unlink(p);
	free(p);
}

int build_stage_tmpdir(const char *state_dir, const char *name, char **out)
{
	char *dir = build_xasprintf("%s/tmp", state_dir), *t = NULL;
	int ret = build_fs_mkdir_p(dir, 0755);

	if (ret)
		goto out;
	t = build_xasprintf("%s/%s.XXXXXX", dir, name);
	if (!mkdtemp(t)) {
		ret = -errno;
		free(t);
		goto out;
	}
	*out = t;
out:
	if (ret)
		log_error("%s: cannot create a scratch directory: %s", dir, strerror(-ret));
	free(dir);
	return ret;
}

int build_stage_need_rootfs(const char *rootfs)
{
	if (build_fs_is_dir(rootfs))
		return 0;
	log_error("%s: no such directory (run `rpifs build rootfs` first)", rootfs);
	return -ENOENT;
}
