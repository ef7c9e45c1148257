/* progress.c - the progress bar of `rpifs flash` and `rpifs export`. The
 * clock only times the copy: it never reaches the bytes written. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "progress.h"

#define BAR 30
#define TTY_EVERY 0.2           /* seconds between redraws on a terminal */
#define LOG_EVERY 5.0           /* seconds between plain lines */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double progress_elapsed(const struct progress *p)
{
	return now() - p->start;
}

static void draw(struct progress *p, bool final)
{
	double el = now() - p->start, rate = el > 0 ? p->done / el : 0;
	double frac = p->total ? (double)p->done / p->total : 1;
	char eta[32] = "--:--";

	if (rate > 0 && p->done < p->total) {
		unsigned s = (unsigned)((p->total - p->done) / rate);

		snprintf(eta, sizeof(eta), "%u:%02u", s / 60, s % 60);
	} else if (p->done >= p->total) {
		snprintf(eta, sizeof(eta), "%u:%02u", (unsigned)el / 60, (unsigned)el % 60);
	}
	if (p->tty) {
		char bar[BAR + 1];
		int fill = (int)(frac * BAR);

		for (int i = 0; i < BAR; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[BAR] = '\0';
		fprintf(stderr, "\r%-9s [%s] %3.0f%%  %.1f/%.1f MiB  %.1f MB/s  %s %s\033[K",
			p->what, bar, frac * 100, p->done / 1048576.0, p->total / 1048576.0,
			rate / 1e6, p->done >= p->total ? "in" : "ETA", eta);
		if (final)
			fputc('\n', stderr);
	} else {
		fprintf(stderr, "rpifs: %s: %.1f of %.1f MiB (%.0f%%), %.1f MB/s, %s %s\n",
			p->what, p->done / 1048576.0, p->total / 1048576.0, frac * 100,
			rate / 1e6, p->done >= p->total ? "in" : "ETA", eta);
	}
	fflush(stderr);
	p->drawn = true;
}

void progress_start(struct progress *p, const char *what, uint64_t total, bool quiet)
{
	p->what = what;
	p->total = total;
	p->done = 0;
	p->start = p->last = now();
	p->quiet = quiet;
	p->tty = isatty(STDERR_FILENO);
	p->drawn = false;
	if (!quiet && p->tty)
		draw(p, false);
}

void progress_add(struct progress *p, uint64_t n)
{
	double t;

	p->done += n;
	if (p->quiet)
		return;
	t = now();
	if (t - p->last >= (p->tty ? TTY_EVERY : LOG_EVERY)) {
		p->last = t;
		draw(p, false);
	}
}

void progress_end(struct progress *p)
{
	if (!p->quiet)
		draw(p, true);
}
