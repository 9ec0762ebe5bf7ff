/* usage: usage reports and recalculations, written to PostgreSQL (the only place usage lives). */
#ifndef MQ_USAGE_H
#define MQ_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "address.h"

#define USAGE_KEY_MAX     200  /* idempotency key: 1..200 printable ASCII characters */
#define USAGE_BATCH_MAX   1000 /* reports in one call */
#define USAGE_SOURCE_MAX  100  /* a recalculation's source label */
#define USAGE_TIME_MAX    40   /* an RFC 3339 timestamp */
#define USAGE_DELTA_LIMIT 4611686018427387904LL /* |delta| <= 2^62 */

struct usage_report {
	int64_t mailbox_id;
	int64_t bytes;
	int64_t messages;
	char key[USAGE_KEY_MAX + 1];
	char occurred_at[USAGE_TIME_MAX + 1]; /* "" when not given */
};

enum usage_status {
	USAGE_APPLIED,
	USAGE_SUPERSEDED,      /* happened before the last recalculation: counted already */
	USAGE_CONFLICT,        /* the key was used before with different content */
	USAGE_UNKNOWN_MAILBOX, /* the mailbox is gone */
};

struct usage_result {
	enum usage_status status;
	bool clamped;   /* usage would have left 0 .. 2^63-1 */
	bool duplicate; /* the key was seen before: this is the original outcome */
	uint64_t used_bytes;
	uint64_t used_messages;
};

struct usage;

struct db_limits;
/* A writer over its own small connection pool, opened with limits (NULL: none). Never fails. */
struct usage *usage_new(const char *conninfo, unsigned pool_size, unsigned retention_seconds,
                        const struct db_limits *limits);
void usage_destroy(struct usage **u);

/*
 * Apply reports[n] in one transaction (in mailbox order, so concurrent batches cannot deadlock)
 * and fill results[n] in the caller's order. Returns 0 after COMMIT; -1 when the database could
 * not take it (nothing applied; *error_r static text; the caller answers 503 and the client
 * retries with the same keys). Thread-safe.
 */
int usage_apply(struct usage *u, const struct usage_report *reports, size_t n,
                struct usage_result *results, const char **error_r)
        __attribute__((warn_unused_result));

/* Check a report's key and an RFC 3339 timestamp ("" allowed) before they reach SQL. Pure. */
bool usage_key_valid(const char *key);
bool usage_time_valid(const char *t);

#endif
