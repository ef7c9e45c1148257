/* check.h - the one harness of the C unit tests (tests/unit/test_NAME.c).
 *
 *   CHECK(cond)                count a failure, print where and what, go on
 *   CHECK(cond, fmt, ...)      the same with a message
 *   must(ok, what)             stop the test (exit 2): its setup broke
 *   put(path, text), put_bytes(path, data, len)    write a small file
 *   check_done()               the end of main(): report, exit status
 *   finish(scratch)            check_done() after removing a scratch directory
 *
 * A test is one executable: exit 0 = pass, 1 = a check failed, 2 = setup.
 */
#ifndef RPIFS_TEST_CHECK_H
#define RPIFS_TEST_CHECK_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

__attribute__((format(printf, 4, 5)))
static inline void check_failed(const char *file, int line, const char *cond,
				const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL %s:%d: CHECK(%s):", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failures++;
}

/* " " __VA_ARGS__: the message (if any) is a string literal, joined to " ". */
#define CHECK(cond, ...) do { if (!(cond)) \
	check_failed(__FILE__, __LINE__, #cond, " " __VA_ARGS__); } while (0)

static inline void must(int ok, const char *what)
{
	if (!ok) {
		perror(what);
		exit(2);
	}
}

static inline void put_bytes(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	must(fd >= 0, path);
	must(write(fd, data, len) == (ssize_t)len, path);
	close(fd);
}

static inline void put(const char *path, const char *text)
{
	put_bytes(path, text, strlen(text));
}

/* The end of a test: report, exit status. */
static inline int check_done(void)
{
	if (failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", program_invocation_short_name,
			failures);
		return 1;
	}
	printf("%s: all checks passed\n", program_invocation_short_name);
	return 0;
}

/* The end of a test with a scratch directory: remove it, report. */
static inline int finish(const char *scratch)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", scratch);
	return check_done();
}

#endif
