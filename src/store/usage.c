/*
 * usage: turns a batch of usage reports into one transaction: one call of mq_apply_usage_batch()
 * (sql/009_usage_keys.sql, which locks the batch's keys, then its mailboxes, each in one global
 * order). Every call waits at most the pool's timeout. A report is acknowledged only after
 * COMMIT; nothing here keeps usage in memory (the views learn of changes through NOTIFY like any
 * other change). A single recalculation is an admin change with its audit record (admin.c); a
 * batch of them (usage_recalc) is one call of mq_usage_recalc_batch() (sql/012_usage_load.sql,
 * which locks its mailboxes in id order and writes the audit rows). It must never apply part of
 * a batch, nor count a retried key twice (the database guarantees the latter; this module never
 * retries a write by itself).
 */
#include "usage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "dbpool.h"
#include "log.h"
#include "recalc.h"
#include "resource.h"
#include "strnum.h"
#include "xalloc.h"

#define PRUNE_INTERVAL_SEC 3600
#define PRUNE_BATCH        "10000"
/* One array parameter of a batch at its largest: USAGE_BATCH_MAX keys, each quoted with every
   character escaped, and a comma (numbers and times are shorter), within braces. */
#define USAGE_ARRAY_MAX (USAGE_BATCH_MAX * (2 * USAGE_KEY_MAX + 3) + 2)
#define USAGE_ARRAYS    5 /* key, mailbox, bytes, messages, occurred_at */
/* One array parameter of a recalculation batch at its largest: RECALC_ITEMS_MAX addresses, each
   quoted with every character escaped, and a comma (numbers and times are shorter). */
#define RECALC_ARRAY_MAX (RECALC_ITEMS_MAX * (2 * RESOURCE_KEY_MAX + 3) + 2)
#define RECALC_ARRAYS    4 /* address, bytes, messages, measured_at */

static const struct db_statement statements[] = {
	{ "apply",
	  /* ord: the position in the arrays; keys are locked before mailboxes (sql/009) */
	  "SELECT b.ord, b.status, b.clamped, b.duplicate, b.used_bytes, b.used_messages"
	  " FROM mq_apply_usage_batch($1::text[], $2::bigint[], $3::bigint[], $4::bigint[],"
	  " $5::timestamptz[]) b",
	  5 },
	{ "recalc",
	  /* ord: the position in the arrays; mailboxes are locked in id order (sql/012) */
	  "SELECT r.ord, r.status, r.changed, r.used_bytes, r.used_messages"
	  " FROM mq_usage_recalc_batch($1::text[], $2::bigint[], $3::bigint[],"
	  " $4::timestamptz[], $5, $6) r",
	  6 },
	{ "prune",
	  "DELETE FROM usage_ledger WHERE ctid = ANY(ARRAY(SELECT ctid FROM usage_ledger"
	  " WHERE created_at < now() - make_interval(secs => $1) LIMIT " PRUNE_BATCH "))",
	  1 },
};

struct usage {
	struct dbpool *pool;
	unsigned retention;
	pthread_mutex_t lock;
	time_t last_prune;
	_Atomic uint64_t outcomes[USAGE_OUTCOMES]; /* reports by outcome (relaxed: counts only) */
};

static const char *const outcome_names[] = {
	[USAGE_OUTCOME_APPLIED] = "applied",
	[USAGE_OUTCOME_DUPLICATE] = "duplicate",
	[USAGE_OUTCOME_SUPERSEDED] = "superseded",
	[USAGE_OUTCOME_CONFLICT] = "conflict",
	[USAGE_OUTCOME_UNKNOWN_MAILBOX] = "unknown_mailbox",
	[USAGE_OUTCOME_FAILED] = "failed",
};

const char *usage_outcome_name(enum usage_outcome o)
{
	return outcome_names[o];
}

void usage_counts(struct usage *u, uint64_t counts_r[USAGE_OUTCOMES])
{
	for (int i = 0; i < USAGE_OUTCOMES; i++)
		counts_r[i] = atomic_load_explicit(&u->outcomes[i], memory_order_relaxed);
}

/* Count the outcomes of a batch: each report's, or all failed. */
static void count_outcomes(struct usage *u, const struct usage_result *results, size_t n,
                           bool failed)
{
	static const enum usage_outcome by_status[] = {
		[USAGE_APPLIED] = USAGE_OUTCOME_APPLIED,
		[USAGE_SUPERSEDED] = USAGE_OUTCOME_SUPERSEDED,
		[USAGE_CONFLICT] = USAGE_OUTCOME_CONFLICT,
		[USAGE_UNKNOWN_MAILBOX] = USAGE_OUTCOME_UNKNOWN_MAILBOX,
	};
	if (failed) {
		atomic_fetch_add_explicit(&u->outcomes[USAGE_OUTCOME_FAILED], n,
		                          memory_order_relaxed);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		enum usage_outcome o = results[i].duplicate ? USAGE_OUTCOME_DUPLICATE
		                                            : by_status[results[i].status];
		atomic_fetch_add_explicit(&u->outcomes[o], 1, memory_order_relaxed);
	}
}

struct usage *usage_new(const char *conninfo, unsigned pool_size, unsigned retention_seconds,
                        const struct db_limits *limits)
{
	struct usage *u = xcalloc(1, sizeof(*u));
	u->pool = dbpool_new(conninfo, pool_size, "mailquotad-usage", statements,
	                     sizeof(statements) / sizeof(statements[0]), limits);
	u->retention = retention_seconds;
	pthread_mutex_init(&u->lock, NULL);
	u->last_prune = 0; /* the first batch after start prunes */
	return u;
}

void usage_destroy(struct usage **up)
{
	struct usage *u = *up;
	if (u == NULL)
		return;
	dbpool_destroy(&u->pool);
	pthread_mutex_destroy(&u->lock);
	free(u);
	*up = NULL;
}

/* Append one array element; keys are printable ASCII, so only " and \ need escaping.
   0, or -1 past USAGE_ARRAY_MAX. */
static int array_text(struct buf *b, const char *s)
{
	if (buf_puts(b, b->len > 1 ? ",\"" : "\"") < 0)
		return -1;
	for (const char *p = s; *p; p++)
		if (((*p == '"' || *p == '\\') && buf_puts(b, "\\") < 0) || buf_append(b, p, 1) < 0)
			return -1;
	return buf_puts(b, "\"");
}

static int array_num(struct buf *b, long long v)
{
	return buf_printf(b, "%s%lld", b->len > 1 ? "," : "", v);
}

/* The batch as PostgreSQL array literals, in sorted order: 0, or -1 past USAGE_ARRAY_MAX
   (which a batch of USAGE_BATCH_MAX valid reports never reaches). */
static int build_arrays(const struct usage_report *const *sorted, size_t n,
                        struct buf arr[USAGE_ARRAYS])
{
	for (int k = 0; k < USAGE_ARRAYS; k++)
		if (buf_puts(&arr[k], "{") < 0)
			return -1;
	for (size_t i = 0; i < n; i++) {
		const struct usage_report *r = sorted[i];
		if (array_text(&arr[0], r->key) < 0 ||
		    array_num(&arr[1], (long long)r->mailbox_id) < 0 ||
		    array_num(&arr[2], (long long)r->bytes) < 0 ||
		    array_num(&arr[3], (long long)r->messages) < 0 ||
		    (r->occurred_at[0] != '\0'
		             ? array_text(&arr[4], r->occurred_at)
		             : buf_puts(&arr[4], arr[4].len > 1 ? ",NULL" : "NULL")) < 0)
			return -1;
	}
	for (int k = 0; k < USAGE_ARRAYS; k++)
		if (buf_puts(&arr[k], "}") < 0)
			return -1;
	return 0;
}

static int cmp_by_mailbox(const void *a, const void *b)
{
	const struct usage_report *x = *(const struct usage_report *const *)a;
	const struct usage_report *y = *(const struct usage_report *const *)b;
	if (x->mailbox_id != y->mailbox_id)
		return x->mailbox_id < y->mailbox_id ? -1 : 1;
	return x < y ? -1 : x > y; /* request order within a mailbox: qsort is not stable */
}

static void maybe_prune(struct usage *u, PGconn *conn)
{
	time_t now = time(NULL);
	pthread_mutex_lock(&u->lock);
	bool due = now - u->last_prune >= PRUNE_INTERVAL_SEC;
	if (due)
		u->last_prune = now;
	pthread_mutex_unlock(&u->lock);
	if (!due)
		return;
	char secs[24];
	snprintf(secs, sizeof(secs), "%u", u->retention);
	const char *params[1] = { secs };
	PGresult *r = db_run(conn, true, "prune", 1, params, dbpool_timeout_ms(u->pool));
	if (PQresultStatus(r) == PGRES_COMMAND_OK)
		log_info("event=usage_ledger_pruned rows=%s retention_seconds=%u", PQcmdTuples(r),
		         u->retention);
	PQclear(r);
}

/* mq_apply_usage_batch()'s status texts (sql/003, sql/009). */
static const char *const status_names[] = {
	[USAGE_APPLIED] = "applied",
	[USAGE_SUPERSEDED] = "superseded",
	[USAGE_CONFLICT] = "conflict",
	[USAGE_UNKNOWN_MAILBOX] = "unknown_mailbox",
};

/* 0 with *status_r, or -1 for a text this build does not know (a schema migrated ahead of the
   daemon). */
static int status_of(const char *text, enum usage_status *status_r)
{
	for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
		if (strcmp(status_names[i], text) == 0) {
			*status_r = (enum usage_status)i;
			return 0;
		}
	}
	return -1;
}

/* What a client is told when the batch failed: by how the database failed. */
static const char *const failure_texts[] = {
	[DB_OK] = "database could not apply the batch", /* a result of the wrong shape */
	[DB_NO_ANSWER] = "the database did not answer in time",
	[DB_REFUSED] = "database could not apply the batch",
	[DB_LOCKED] = "a mailbox is locked by another transaction",
	[DB_CANCELED] = "the statement timed out",
	[DB_CONFLICT] = "database could not apply the batch",
	[DB_FAILED] = "database could not apply the batch",
};

int usage_apply(struct usage *u, const struct usage_report *reports, size_t n,
                struct usage_result *results, const char **error_r)
{
	if (n == 0)
		return 0;
	if (n > USAGE_BATCH_MAX) {
		*error_r = "more reports than USAGE_BATCH_MAX in one batch";
		return -1;
	}
	/* the batch in mailbox order: concurrent batches then lock rows in the same order */
	const struct usage_report **sorted = xmalloc(n * sizeof(*sorted));
	for (size_t i = 0; i < n; i++)
		sorted[i] = &reports[i];
	qsort(sorted, n, sizeof(*sorted), cmp_by_mailbox);
	struct buf arr[USAGE_ARRAYS];
	for (int k = 0; k < USAGE_ARRAYS; k++)
		buf_init(&arr[k], USAGE_ARRAY_MAX);
	int ret = -1;
	PGconn *conn = NULL;
	if (build_arrays(sorted, n, arr) < 0) {
		*error_r = "the batch is too large"; /* reports longer than report.h allows */
		goto out;
	}
	conn = dbpool_acquire(u->pool, error_r);
	if (conn == NULL)
		goto out;
	const char *params[USAGE_ARRAYS] = { arr[0].data, arr[1].data, arr[2].data, arr[3].data,
		                             arr[4].data };
	unsigned ms = dbpool_timeout_ms(u->pool);
	const char *error;
	/* read committed: a batch waiting on another's key lock must then see its committed
	   ledger row (sql/009); a server or role default of repeatable read would not */
	if (db_exec(conn, "BEGIN ISOLATION LEVEL READ COMMITTED", ms, &error) < 0) {
		*error_r = "database unavailable";
		goto release;
	}
	PGresult *r = db_run(conn, true, "apply", USAGE_ARRAYS, params, ms);
	enum db_outcome dbo = db_classify(r);
	if (dbo != DB_OK || PQresultStatus(r) != PGRES_TUPLES_OK || (size_t)PQntuples(r) != n) {
		/* a timeout (NULL) leaves the connection busy: the pool closes it, the server
		   rolls back; an error result leaves it in a failed transaction: roll back */
		const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		log_warn("event=usage_batch_failed reports=%zu sqlstate=%s error=\"%s\"", n,
		         state != NULL ? state : "-", db_error_text(conn, r));
		*error_r = failure_texts[dbo];
		PQclear(r); /* state pointed into it */
		db_rollback(conn, ms);
		goto release;
	}
	for (int row = 0; row < (int)n; row++) {
		size_t ord = (size_t)db_get_u64(r, row, 0) - 1; /* position in sorted order */
		size_t idx = (size_t)(sorted[ord] - reports);
		struct usage_result *res = &results[idx];
		if (status_of(PQgetvalue(r, row, 1), &res->status) < 0) {
			/* nothing is acknowledged that this build cannot describe: roll back */
			char st[48];
			str_sanitize(st, sizeof(st), PQgetvalue(r, row, 1),
			             strlen(PQgetvalue(r, row, 1)), 40);
			log_error("event=usage_unknown_status status=\"%s\" note=\"is the schema "
			          "newer than this daemon?\"",
			          st);
			*error_r = "the database answered a status this daemon does not know";
			PQclear(r);
			db_rollback(conn, ms);
			goto release;
		}
		res->clamped = !PQgetisnull(r, row, 2) && db_get_bool(r, row, 2);
		res->duplicate = !PQgetisnull(r, row, 3) && db_get_bool(r, row, 3);
		res->used_bytes = db_get_u64(r, row, 4);
		res->used_messages = db_get_u64(r, row, 5);
	}
	PQclear(r);
	if (db_exec(conn, "COMMIT", ms, &error) < 0) {
		/* not acknowledged: the client retries, and its keys make the retry safe */
		*error_r = "commit failed";
		goto release;
	}
	ret = 0;
	maybe_prune(u, conn);
release:
	dbpool_release(u->pool, conn);
out:
	count_outcomes(u, results, n, ret < 0);
	for (int k = 0; k < USAGE_ARRAYS; k++)
		buf_free(&arr[k]);
	free(sorted);
	return ret;
}

/* ---- recalculations ---- */

static int array_null(struct buf *b)
{
	return buf_puts(b, b->len > 1 ? ",NULL" : "NULL");
}

/* A recalculation batch as PostgreSQL array literals, in the caller's order: 0, or -1 past
   RECALC_ARRAY_MAX (which RECALC_ITEMS_MAX normalised addresses never reach). */
static int recalc_arrays(const struct usage_recalc *items, size_t n, struct buf arr[RECALC_ARRAYS])
{
	for (int k = 0; k < RECALC_ARRAYS; k++)
		if (buf_puts(&arr[k], "{") < 0)
			return -1;
	for (size_t i = 0; i < n; i++) {
		const struct usage_recalc *it = &items[i];
		if (array_text(&arr[0], it->address) < 0 ||
		    (it->has_bytes ? array_num(&arr[1], (long long)it->bytes)
		                   : array_null(&arr[1])) < 0 ||
		    (it->has_messages ? array_num(&arr[2], (long long)it->messages)
		                      : array_null(&arr[2])) < 0 ||
		    (it->measured_at != NULL ? array_text(&arr[3], it->measured_at)
		                             : array_null(&arr[3])) < 0)
			return -1;
	}
	for (int k = 0; k < RECALC_ARRAYS; k++)
		if (buf_puts(&arr[k], "}") < 0)
			return -1;
	return 0;
}

/* Read the function's rows into results (by their ord). 0, or -1 with *error_r for a row this
   build cannot describe (nothing is acknowledged then). */
static int recalc_results(PGresult *r, size_t n, struct usage_recalc_result *results,
                          const char **error_r)
{
	for (int row = 0; row < (int)n; row++) {
		uint64_t ord = db_get_u64(r, row, 0);
		const char *status = PQgetvalue(r, row, 1);
		if (ord < 1 || ord > n) {
			*error_r = "the database answered an item this batch does not have";
			return -1;
		}
		struct usage_recalc_result *res = &results[ord - 1];
		if (strcmp(status, "applied") == 0) {
			res->status = USAGE_RECALC_APPLIED;
			res->changed = db_get_bool(r, row, 2);
			res->used_bytes = db_get_u64(r, row, 3);
			res->used_messages = db_get_u64(r, row, 4);
		} else if (strcmp(status, "unknown_mailbox") == 0) {
			res->status = USAGE_RECALC_UNKNOWN_MAILBOX;
		} else {
			char st[48];
			str_sanitize(st, sizeof(st), status, strlen(status), 40);
			log_error("event=usage_unknown_status status=\"%s\" note=\"is the schema "
			          "newer than this daemon?\"",
			          st);
			*error_r = "the database answered a status this daemon does not know";
			return -1;
		}
	}
	return 0;
}

int usage_recalc(struct usage *u, const struct usage_recalc *items, size_t n, const char *source,
                 int64_t token, bool dry_run, struct usage_recalc_result *results,
                 const char **error_r)
{
	if (n == 0)
		return 0;
	if (n > RECALC_ITEMS_MAX) {
		*error_r = "more items than RECALC_ITEMS_MAX in one batch";
		return -1;
	}
	struct buf arr[RECALC_ARRAYS];
	for (int k = 0; k < RECALC_ARRAYS; k++)
		buf_init(&arr[k], RECALC_ARRAY_MAX);
	int ret = -1;
	PGconn *conn = NULL;
	if (recalc_arrays(items, n, arr) < 0) {
		*error_r = "the batch is too large"; /* addresses longer than resource.h allows */
		goto out;
	}
	conn = dbpool_acquire(u->pool, error_r);
	if (conn == NULL)
		goto out;
	char tok[24]; /* an int64 fits */
	snprintf(tok, sizeof(tok), "%lld", (long long)token);
	const char *params[6] = { arr[0].data, arr[1].data, arr[2].data,
		                  arr[3].data, source,      token > 0 ? tok : NULL };
	unsigned ms = dbpool_timeout_ms(u->pool);
	const char *error;
	if (db_exec(conn, "BEGIN ISOLATION LEVEL READ COMMITTED", ms, &error) < 0) {
		*error_r = "database unavailable";
		goto release;
	}
	for (size_t i = 0; i < n; i++)
		results[i].status = USAGE_RECALC_UNKNOWN_MAILBOX; /* every row below sets its own */
	PGresult *r = db_run(conn, true, "recalc", 6, params, ms);
	enum db_outcome dbo = db_classify(r);
	if (dbo != DB_OK || PQresultStatus(r) != PGRES_TUPLES_OK || (size_t)PQntuples(r) != n) {
		const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		log_warn("event=usage_recalc_failed items=%zu sqlstate=%s error=\"%s\"", n,
		         state != NULL ? state : "-", db_error_text(conn, r));
		*error_r = failure_texts[dbo];
		PQclear(r);
		db_rollback(conn, ms);
		goto release;
	}
	if (recalc_results(r, n, results, error_r) < 0) {
		PQclear(r);
		db_rollback(conn, ms);
		goto release;
	}
	PQclear(r);
	if (dry_run) {
		db_rollback(conn, ms);
	} else if (db_exec(conn, "COMMIT", ms, &error) < 0) {
		/* not acknowledged: the client retries, and setting a figure twice is harmless */
		*error_r = "commit failed";
		goto release;
	}
	ret = 0;
release:
	dbpool_release(u->pool, conn);
out:
	for (int k = 0; k < RECALC_ARRAYS; k++)
		buf_free(&arr[k]);
	return ret;
}
