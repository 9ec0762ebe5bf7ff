/* log: one key=value line per event on stderr (docs/style.md rule 13); under systemd's journal
   with a syslog priority prefix and no timestamp of its own. */
#ifndef MQ_LOG_H
#define MQ_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_NOTICE, /* worth an admin's look, not trouble: e.g. failed authentications */
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR
};

/*
 * Set the program name and the lowest level written, and look whether stderr is systemd's
 * journal (JOURNAL_STREAM names stderr's device and inode, systemd.exec(5)): then every line
 * starts with its syslog priority ("<7>" debug ... "<3>" error) so `journalctl -p` can filter,
 * and carries no "ts=" (the journal stamps each line). Call once at start-up.
 */
void log_setup(const char *progname, enum log_level level);
/* Change the lowest level written (a reload's log_level), safe while other threads log: each
   line is written or not by the level in force when it is logged. */
void log_set_level(enum log_level level);
/* Whether log_setup() found stderr to be the journal. */
bool log_to_journal(void);
/* Parse "debug", "info", "notice", "warn" or "error"; 0 or -1. */
int log_level_parse(const char *s, enum log_level *level_r) __attribute__((warn_unused_result));
bool log_enabled(enum log_level level);

/*
 * Write "ts=... prog=... level=... " followed by the formatted text and a newline, as one write,
 * so lines from several threads never interleave. The caller sanitises untrusted text.
 */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)  log_write(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)   log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_notice(...) log_write(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_warn(...)   log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...)  log_write(LOG_LEVEL_ERROR, __VA_ARGS__)

/* A log line that may repeat at a peer's will (a failed authentication, say): at most one per
   interval, the others counted. Zero-initialise; safe from any thread. */
struct log_rate {
	_Atomic long long next;           /* CLOCK_MONOTONIC second from which a line may go */
	_Atomic unsigned long suppressed; /* lines held back since the last one written */
};

/* Whether a line may be written now; then *suppressed_r is how many were held back since the
   last, and none may follow for every_sec seconds. */
bool log_rate_allow(struct log_rate *r, unsigned every_sec, unsigned long *suppressed_r);

/* Log at error level and exit(1). Only for start-up failures (docs/style.md rule 6). */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
