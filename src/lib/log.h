/* log: one key=value line per event on stderr (docs/style.md rule 13). */
#ifndef MQ_LOG_H
#define MQ_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Set the program name and the lowest level written. Call once at start-up. */
void log_setup(const char *progname, enum log_level level);
/* Parse "debug", "info", "warn" or "error"; 0 or -1. */
int log_level_parse(const char *s, enum log_level *level_r) __attribute__((warn_unused_result));
bool log_enabled(enum log_level level);

/*
 * Write "ts=... prog=... level=... " followed by the formatted text and a newline, as one write,
 * so lines from several threads never interleave. The caller sanitises untrusted text.
 */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)

/* Log at error level and exit(1). Only for start-up failures (docs/style.md rule 6). */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
