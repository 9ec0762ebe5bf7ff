/*
 * log: key=value lines on stderr (systemd's journal or a terminal). It must never block the
 * check path for long and never interleave two lines: each line is formatted into a local buffer
 * and written with one write(2). Under the journal a line starts with "<N>", its syslog
 * priority, which systemd's stream reader takes off and records (sd-daemon(3), SD_INFO...).
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static const char *log_prog = "mailquota";
/* the lowest level written: changed by a reload while other threads log */
static _Atomic int log_min = LOG_LEVEL_INFO;
static const char *const level_names[] = { "debug", "info", "notice", "warn", "error" };
/* syslog priorities of the levels: LOG_DEBUG 7, LOG_INFO 6, LOG_NOTICE 5, LOG_WARNING 4,
   LOG_ERR 3 */
static const char level_priority[] = { '7', '6', '5', '4', '3' };
static bool log_journal;

/* JOURNAL_STREAM is "<device>:<inode>" of the stream systemd connected; a program that only
   inherited the variable (its stderr redirected since) must not take it for the journal. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	char end;
	struct stat st;
	if (js == NULL || sscanf(js, "%llu:%llu%c", &dev, &ino, &end) != 2)
		return false;
	return fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void log_setup(const char *progname, enum log_level level)
{
	log_prog = progname;
	atomic_store(&log_min, (int)level);
	log_journal = stderr_is_journal();
}

void log_set_level(enum log_level level)
{
	atomic_store(&log_min, (int)level);
}

bool log_to_journal(void)
{
	return log_journal;
}

int log_level_parse(const char *s, enum log_level *level_r)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

bool log_enabled(enum log_level level)
{
	return (int)level >= atomic_load_explicit(&log_min, memory_order_relaxed);
}

static void log_vwrite(enum log_level level, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));
static void log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	int n;
	if (log_journal) {
		n = snprintf(line, sizeof(line), "<%c>prog=%s level=%s ", level_priority[level],
		             log_prog, level_names[level]);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, sizeof(line),
		             "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ prog=%s level=%s ",
		             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		             tm.tm_sec, ts.tv_nsec / 1000000, log_prog, level_names[level]);
	}
	if (n < 0)
		return;
	size_t off = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	int m = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	if (m < 0)
		return;
	off += (size_t)m;
	if (off > sizeof(line) - 2) /* truncated: keep the newline */
		off = sizeof(line) - 2;
	line[off++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, off);
	(void)w;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

bool log_rate_allow(struct log_rate *r, unsigned every_sec, unsigned long *suppressed_r)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long next = atomic_load(&r->next);
	if ((long long)now.tv_sec < next ||
	    !atomic_compare_exchange_strong(&r->next, &next, (long long)now.tv_sec + every_sec)) {
		atomic_fetch_add(&r->suppressed, 1);
		return false;
	}
	*suppressed_r = atomic_exchange(&r->suppressed, 0);
	return true;
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
