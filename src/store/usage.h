/* usage: usage reports and recalculations, written to PostgreSQL (the only place usage lives). */
#ifndef MQ_USAGE_H
#define MQ_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"

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

#endif
