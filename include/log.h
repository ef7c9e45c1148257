/* log.h - messages to stderr (or syslog once daemonised).
 *
 * Every message starts with "rpifs: ". Errors name the file and the problem;
 * callers still return -errno so the caller decides whether to stop.
 *
 * The process's one message channel, shared by the engine (rpifs.h logs
 * through it) and the front-ends (their own messages, the level of -q/-v,
 * syslog once daemonised, the -v phase times): hence beside rpifs.h in
 * include/, not part of it. The implementation is src/engine/log.c.
 */
#ifndef RPIFS_LOG_H
#define RPIFS_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Messages above this level are dropped. Default: LOG_LVL_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* After daemonising stderr is /dev/null: send messages to syslog instead. */
void log_use_syslog(bool on);

/* A front-end with a message channel of its own (nbdkit's: stderr, or
 * syslog once it forked) takes every message that passes the level, without
 * the "rpifs: " prefix, instead of stderr/syslog. NULL: back to those. */
typedef void (*log_sink_fn)(enum log_level level, const char *msg);
void log_set_sink(log_sink_fn fn);

/* Milliseconds since the program's constructors ran (after the dynamic
 * loader), for the -v timings of each phase. */
double log_ms(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
