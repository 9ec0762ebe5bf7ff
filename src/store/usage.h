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

/* What became of each usage report given to usage_apply(), for metrics. */
enum usage_outcome {
	USAGE_OUTCOME_APPLIED,
	USAGE_OUTCOME_DUPLICATE, /* its key was seen before: answered the original outcome */
	USAGE_OUTCOME_SUPERSEDED,
	USAGE_OUTCOME_CONFLICT,
	USAGE_OUTCOME_UNKNOWN_MAILBOX,
	USAGE_OUTCOME_FAILED, /* its batch was not committed (usage_apply() returned -1) */
};
#define USAGE_OUTCOMES (USAGE_OUTCOME_FAILED + 1)

/* "applied", "duplicate", "superseded", "conflict", "unknown_mailbox", "failed". */
const char *usage_outcome_name(enum usage_outcome o);

/* Reports given to usage_apply() since usage_new(), by outcome, into counts_r. Thread-safe;
   never waits on the database. */
void usage_counts(struct usage *u, uint64_t counts_r[USAGE_OUTCOMES]);

/* One recalculation of a batch: checked (recalc.h), its address normalised; strings borrowed. */
struct usage_recalc {
	const char *address; /* as resource_key_parse() normalises a mailbox's */
	bool has_bytes, has_messages;
	uint64_t bytes,
	        messages;        /* each at most INT64_MAX; an omitted one keeps the stored value */
	const char *measured_at; /* RFC 3339, or NULL: the transaction's now() */
};

enum usage_recalc_status {
	USAGE_RECALC_APPLIED,
	USAGE_RECALC_UNKNOWN_MAILBOX, /* no mailbox has this address */
};

struct usage_recalc_result {
	enum usage_recalc_status status;
	bool changed; /* the mailbox's figures moved (its audit record was written) */
	uint64_t used_bytes, used_messages; /* the mailbox's usage after the whole batch */
};

/*
 * Set the absolute usage of items[0..n) (n <= RECALC_ITEMS_MAX) with source as token (0: none)
 * would, in one transaction: each as PUT /v1/mailboxes/{address}/usage would (usage_set_at from
 * measured_at, so earlier delta reports are superseded), items of one mailbox in order, one
 * audit record per mailbox whose figures changed (sql/012_usage_load.sql). dry_run: everything
 * is done, answered and rolled back. Fills results[n] in items' order. Returns 0 after COMMIT
 * (or the dry run's rollback); -1 when the database could not take it (nothing applied;
 * *error_r static; the caller answers 503 and the client retries: setting a figure again is
 * harmless). Thread-safe.
 */
int usage_recalc(struct usage *u, const struct usage_recalc *items, size_t n, const char *source,
                 int64_t token, bool dry_run, struct usage_recalc_result *results,
                 const char **error_r) __attribute__((warn_unused_result));

#endif
