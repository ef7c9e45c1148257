/* log.c - messages to stderr, or syslog once the daemon has detached. */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>
#include "log.h"

static enum log_level level = LOG_LVL_INFO;
/* Atomic: a server's engine thread (a deferred ext4 build) logs while the
 * main thread detaches and switches to syslog. */
static bool use_syslog;
static log_sink_fn sink;

void log_set_level(enum log_level l) { level = l; }
enum log_level log_get_level(void) { return level; }

static struct timespec t0;

__attribute__((constructor)) static void log_clock_start(void)
{
	clock_gettime(CLOCK_MONOTONIC, &t0);
}

double log_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)(ts.tv_sec - t0.tv_sec) * 1e3 + (double)(ts.tv_nsec - t0.tv_nsec) / 1e6;
}

void log_set_sink(log_sink_fn fn)
{
	sink = fn;
}

void log_use_syslog(bool on)
{
	if (on && !__atomic_load_n(&use_syslog, __ATOMIC_ACQUIRE))
		openlog("rpifs", LOG_PID, LOG_DAEMON);
	__atomic_store_n(&use_syslog, on, __ATOMIC_RELEASE);
}

void log_msg(enum log_level l, const char *fmt, ...)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char buf[2048];
	va_list ap;

	if (l > level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (sink)
		sink(l, buf);
	else if (__atomic_load_n(&use_syslog, __ATOMIC_ACQUIRE))
		syslog(prio[l], "%s%s", prefix[l], buf);
	else
		fprintf(stderr, "rpifs: %s%s\n", prefix[l], buf);
}
