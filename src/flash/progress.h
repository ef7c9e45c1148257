/* progress.h - progress of a long copy on stderr: on a terminal a bar
 * redrawn in place (bytes done / total, rate, ETA); otherwise a plain line
 * every few seconds, for logs. Quiet: nothing. */
#ifndef RPIFS_FLASH_PROGRESS_H
#define RPIFS_FLASH_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress {
	const char *what;       /* "writing", "verifying", ... */
	uint64_t total, done;
	double start, last;     /* seconds, monotonic */
	bool tty, quiet, drawn;
};

void progress_start(struct progress *p, const char *what, uint64_t total, bool quiet);
void progress_add(struct progress *p, uint64_t n);
/* The final state, then a newline on a terminal. */
void progress_end(struct progress *p);
/* Seconds since progress_start(). */
double progress_elapsed(const struct progress *p);

#endif
