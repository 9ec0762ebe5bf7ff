/*
 * admin: the database side of the admin API. Changes go through the functions of
 * sql/005_admin.sql (one round trip each: reference checks, ETag check, audit record, new
 * document); reads and lists are single queries whose filters and sort orders all have an
 * index behind them. Documents come back as JSON text made by PostgreSQL.
 */
#ifndef MQ_ADMIN_H
#define MQ_ADMIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "bulk.h"
#include "resource.h"
#include "token.h"

#define ADMIN_LIST_MAX     1000 /* items in one page */
#define ADMIN_LIST_DEFAULT 100

struct admin;

/* The outcome of a change or read. */
struct admin_outcome {
	char code[32];     /* "ok", "created", "not_found", "exists", "version_mismatch", ... */
	char *doc;         /* the object's JSON document (malloc'd), or NULL */
	char etag[48];     /* the document's ETag value, without quotes; "" when none */
	char message[256]; /* with ADMIN_REFUSED: the database's reason */
};

enum admin_status {
	ADMIN_DONE = 0,         /* see outcome.code */
	ADMIN_UNAVAILABLE = -1, /* the database cannot be reached now: retry */
	ADMIN_REFUSED = -2,     /* the database refused the values (outcome.message) */
};

/* Sort orders and filters of a list; strings point into the caller's storage. */
struct admin_query {
	enum resource_kind kind;
	const char *sort;   /* "address", "-address", "usage", "updated_at", ...; NULL: key */
	unsigned limit;     /* 1..ADMIN_LIST_MAX */
	const char *cursor; /* from a previous page, or NULL */
	const char *domain; /* normalised domain name, or NULL */
	const char *updated_since;     /* RFC 3339, or NULL */
	const char *min_usage_percent; /* decimal digits, or NULL */
	int over_quota;                /* -1: any, 0: not over, 1: over */
	int enabled;                   /* -1: any */
	const char *prefix;            /* the key starts with this, or NULL */
	/* audit */
	const char *object, *action, *until;
	int64_t token_id; /* 0: any */
	bool include_revoked;
};

struct db_limits;
/* A pool of pool_size connections opened with limits (NULL: none); imports and export fetches
   may take bulk_timeout_s instead of the statement timeout. */
struct admin *admin_new(const char *conninfo, unsigned pool_size, const struct db_limits *limits,
                        unsigned bulk_timeout_s);
void admin_destroy(struct admin **ap);

/* Release the document of an outcome. */
void admin_outcome_free(struct admin_outcome *o);

/*
 * Create ("create"), update ("update") or delete ("delete") a domain, mailbox or alias as token
 * (0: none) would; etag non-NULL makes the change conditional (If-Match). fields are those
 * resource_check() returned (NULL for delete).
 */
enum admin_status admin_change(struct admin *a, enum resource_kind kind, const char *op,
                               const struct resource_key *key, json_t *fields, const char *etag,
                               int64_t token, struct admin_outcome *out)
        __attribute__((warn_unused_result));

/* Read one domain, mailbox or alias: code "ok" with doc, or "not_found". */
enum admin_status admin_get(struct admin *a, enum resource_kind kind,
                            const struct resource_key *key, struct admin_outcome *out)
        __attribute__((warn_unused_result));

/*
 * One page of a list as {"items": [...], "next_cursor": "..." | null} into out. Returns
 * ADMIN_DONE, ADMIN_UNAVAILABLE, or ADMIN_REFUSED with *why_r for a cursor that does not
 * belong to this query's sort order.
 */
enum admin_status admin_list(struct admin *a, const struct admin_query *q, struct buf *out,
                             const char **why_r) __attribute__((warn_unused_result));

/* The audit log, newest first, filtered by q->object/action/token_id/updated_since/until. */
enum admin_status admin_audit(struct admin *a, const struct admin_query *q, struct buf *out,
                              const char **why_r) __attribute__((warn_unused_result));

/*
 * Make a token (fields from resource_check(RESOURCE_TOKEN)) created by token creator (0: with
 * database access). On "created", text_r[TOKEN_TEXT_MAX] holds the secret text: shown once,
 * never stored.
 */
enum admin_status admin_token_create(struct admin *a, json_t *fields, int64_t creator, char *text_r,
                                     struct admin_outcome *out) __attribute__((warn_unused_result));
enum admin_status admin_token_revoke(struct admin *a, int64_t id, int64_t actor,
                                     struct admin_outcome *out) __attribute__((warn_unused_result));
enum admin_status admin_token_get(struct admin *a, int64_t id, struct admin_outcome *out)
        __attribute__((warn_unused_result));

/*
 * Set a mailbox's absolute usage (a recalculation) as token would, auditing it: code "ok" with
 * the mailbox document, or "not_found". measured_at "" means now.
 */
enum admin_status admin_usage_set(struct admin *a, const char *address, uint64_t bytes,
                                  const uint64_t *messages, const char *source,
                                  const char *measured_at, int64_t token, struct admin_outcome *out)
        __attribute__((warn_unused_result));

/* ---- bulk ---- */

/* One row of an import, already checked by resource_check(). */
struct admin_import_row {
	size_t line;
	enum resource_kind kind;
	struct resource_key key;
	json_t *fields; /* borrowed */
};

struct admin_import_counts {
	size_t created, updated, unchanged, failed;
};

/*
 * Upsert rows[0..n) in one transaction, in order, as token. Rows the database refuses (unknown
 * domain or target, no targets) are reported in errs with their line. all_or_nothing: any
 * refusal rolls everything back; otherwise the rest is committed. dry_run: always rolled back.
 * *applied_r says whether anything was committed.
 */
enum admin_status admin_import(struct admin *a, const struct admin_import_row *rows, size_t n,
                               bool all_or_nothing, bool dry_run, int64_t token,
                               struct admin_import_counts *counts, struct bulk_errors *errs,
                               bool *applied_r) __attribute__((warn_unused_result));

/* An export in progress: one connection, one snapshot, a cursor per kind. */
struct admin_export;

/* Start exporting the kinds whose bits (1 << kind) are set, domains first. NULL when the
   database is unavailable. */
struct admin_export *admin_export_open(struct admin *a, unsigned kinds);
/* The next up to 1000 objects written in fmt to out: 1 with something written, 0 at the end,
   -1 on a database failure. */
int admin_export_next(struct admin_export *x, enum bulk_format fmt, struct buf *out)
        __attribute__((warn_unused_result));
void admin_export_close(struct admin_export **xp);

#endif
