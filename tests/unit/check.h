/* check.h - what the tree tests share: CHECK (count a failure, go on),
 * must (stop the test: the setup broke), put (write a small file). */
#ifndef RPIFS_TEST_CHECK_H
#define RPIFS_TEST_CHECK_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL: " __VA_ARGS__); \
	fputc('\n', stderr); failures++; } } while (0)

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

/* The end of a test: remove its scratch directory, report, exit status. */
static inline int finish(const char *scratch)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", scratch);
	if (failures)
		fprintf(stderr, "%d failure(s)\n", failures);
	return failures ? 1 : 0;
}

#endif
