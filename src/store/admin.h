/*
 * admin: the database side of the admin API. Changes go through the functions of
 * sql/005_admin.sql (one round trip each: reference checks, ETag check, audit record, new
 * document); reads and lists are single queries whose filters and sort orders all have an
 * index behind them. Documents come back as JSON text made by PostgreSQL. The functions live in
 * admin.c (resources and recalculations), admin_token.c (tokens), admin_list.c (lists and the
 * audit log), admin_stats.c (the installation's figures, and folding the domains' usage) and
 * admin_bulk.c (import and export).
 *
 * Errors: a function that returns -1 could not reach the database, or it did not answer in
 * time (the caller answers 503 and the client retries); *error_r is static text or this
 * thread's copy of a database message (see db.h), valid until the thread's next call.
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
#define ADMIN_ETAG_MAX     48  /* "<id>.<version>": two 64-bit numbers and a dot, with room */
#define ADMIN_MESSAGE_MAX  256 /* the database's reason for refusing values, cut */

struct admin;

/* What a change or read came to: the codes of sql/005_admin.sql and sql/006_bulk.sql. */
enum admin_code {
	ADMIN_OK,               /* done: doc is the object, or NULL after a delete */
	ADMIN_CREATED,          /* doc is the new object */
	ADMIN_UPDATED,          /* (imports) an existing object was changed */
	ADMIN_UNCHANGED,        /* (imports) an existing object already had these values */
	ADMIN_NOT_FOUND,        /* no such object */
	ADMIN_EXISTS,           /* a create found the key taken */
	ADMIN_VERSION_MISMATCH, /* If-Match named another version: etag is the current one */
	ADMIN_UNKNOWN_DOMAIN,   /* the address's domain does not exist */
	ADMIN_UNKNOWN_TARGET,   /* an alias target is not a mailbox: doc is {"target": ...} */
	ADMIN_NO_TARGETS,       /* an alias would be left without targets */
	ADMIN_UNKNOWN_MAILBOX,  /* a token's bound mailbox does not exist */
	ADMIN_INVALID_VALUE,    /* the database refused the values: message says why */
};
#define ADMIN_CODES (ADMIN_INVALID_VALUE + 1)

/* The code's name as the database and the API spell it ("version_mismatch"). */
const char *admin_code_name(enum admin_code code);

/* What a change or read answered. Start from { 0 }; release with admin_result_free(). */
struct admin_result {
	enum admin_code code;
	char *doc;                       /* the object's JSON document (malloc'd), or NULL */
	char etag[ADMIN_ETAG_MAX];       /* the document's ETag value, no quotes; "" for none */
	char message[ADMIN_MESSAGE_MAX]; /* with ADMIN_INVALID_VALUE */
};

/* Release the document of a result (the result may be filled again). */
void admin_result_free(struct admin_result *res);

enum admin_op { ADMIN_CREATE, ADMIN_UPDATE, ADMIN_DELETE };

/* Sort orders and filters of a list; strings point into the caller's storage. */
struct admin_query {
	enum resource_kind kind;
	const char *sort;   /* "address", "-address", "usage", "updated_at", ...; NULL: key */
	unsigned limit;     /* 1..ADMIN_LIST_MAX */
	const char *cursor; /* from a previous page, or NULL */
	const char *domain; /* normalised domain name, or NULL */
	const char *updated_since;     /* RFC 3339, or NULL */
	const char *min_usage_percent; /* decimal digits, or NULL */
	const char *min_pool_percent;  /* (domains) decimal digits, or NULL */
	int over_quota;                /* -1: any, 0: not over, 1: over (domains: none, some) */
	int enabled;                   /* -1: any */
	const char *prefix;            /* the key starts with this, or NULL */
	/* audit (object: warnings' mailbox address) */
	const char *object, *action, *until;
	const char *state; /* warnings: "pending", "delivered", "failed", or NULL */
	int64_t token_id;  /* 0: any */
	bool include_revoked;
};

struct db_limits;
/* A pool of pool_size connections opened with limits (NULL: none); imports and export fetches
   may take bulk_timeout_s instead of the statement timeout. Never fails. */
struct admin *admin_new(const char *conninfo, unsigned pool_size, const struct db_limits *limits,
                        unsigned bulk_timeout_s);
void admin_destroy(struct admin **ap);

/* admin_change() calls since admin_new() by kind (RESOURCE_DOMAIN, _MAILBOX, _ALIAS) and
   outcome: counts_r[kind][code], counts_r[kind][ADMIN_CODES] for calls that returned -1.
   Thread-safe; never waits on the database. */
void admin_change_counts(struct admin *a, uint64_t counts_r[RESOURCE_ALIAS + 1][ADMIN_CODES + 1]);

/*
 * Create, update or delete a domain, mailbox or alias as token (0: none) would; etag non-NULL
 * makes the change conditional (If-Match). fields are those resource_check() returned (NULL
 * for delete). 0 with *res filled, or -1 with *error_r.
 */
int admin_change(struct admin *a, enum resource_kind kind, enum admin_op op,
                 const struct resource_key *key, json_t *fields, const char *etag, int64_t token,
                 struct admin_result *res, const char **error_r)
        __attribute__((warn_unused_result));

/* Read one domain, mailbox or alias: ADMIN_OK with doc, or ADMIN_NOT_FOUND. 0, or -1. */
int admin_get(struct admin *a, enum resource_kind kind, const struct resource_key *key,
              struct admin_result *res, const char **error_r) __attribute__((warn_unused_result));

/*
 * Set a mailbox's absolute usage (a recalculation) as token would, auditing it: ADMIN_OK with
 * the mailbox document, or ADMIN_NOT_FOUND. measured_at "" means now. 0, or -1.
 */
int admin_usage_set(struct admin *a, const char *address, uint64_t bytes, const uint64_t *messages,
                    const char *source, const char *measured_at, int64_t token,
                    struct admin_result *res, const char **error_r)
        __attribute__((warn_unused_result));

/*
 * The warning settings (admin_warnings.c): read them (fields NULL), or change them with fields
 * from warning_settings_check() as token would, auditing it. ADMIN_OK with the settings
 * document, ADMIN_UNKNOWN_DOMAIN with {"domain": name} (nothing changed), or ADMIN_INVALID_VALUE.
 * 0, or -1 with *error_r.
 */
int admin_warning_settings(struct admin *a, json_t *fields, int64_t token, struct admin_result *res,
                           const char **error_r) __attribute__((warn_unused_result));

/* ---- tokens (admin_token.c) ---- */

/*
 * Make a token (fields from resource_check(RESOURCE_TOKEN)) created by token creator (0: with
 * database access). With ADMIN_CREATED, text_r[TOKEN_TEXT_MAX] holds the secret text: shown
 * once, never stored (else it is wiped). 0, or -1 with *error_r.
 */
int admin_token_issue(struct admin *a, json_t *fields, int64_t creator, char *text_r,
                      struct admin_result *res, const char **error_r)
        __attribute__((warn_unused_result));
/* Revoke token id as actor: ADMIN_OK with the document, or ADMIN_NOT_FOUND. 0, or -1. */
int admin_token_revoke(struct admin *a, int64_t id, int64_t actor, struct admin_result *res,
                       const char **error_r) __attribute__((warn_unused_result));
/* Read token id: ADMIN_OK with the document, or ADMIN_NOT_FOUND. 0, or -1. */
int admin_token_get(struct admin *a, int64_t id, struct admin_result *res, const char **error_r)
        __attribute__((warn_unused_result));

/* ---- lists (admin_list.c) ---- */

/*
 * One page of a list as {"items": [...], "next_cursor": "..." | null} appended to out.
 * Returns 0; 1 when the query cannot be answered as asked (a cursor of another list or sort
 * order, an unknown sort order, a malformed filter value, a page larger than out may hold):
 * *error_r says why, out is unchanged; or -1 with *error_r.
 */
int admin_list(struct admin *a, const struct admin_query *q, struct buf *out, const char **error_r)
        __attribute__((warn_unused_result));

/* The audit log, newest first, filtered by q->object/action/token_id/updated_since/until;
   returns as admin_list(). */
int admin_audit(struct admin *a, const struct admin_query *q, struct buf *out, const char **error_r)
        __attribute__((warn_unused_result));

/* ---- the installation's figures (admin_stats.c) ---- */

#define ADMIN_STATS_TOP_MAX 100 /* domains in the top list of admin_stats() */

/*
 * The installation's totals, read in one snapshot, appended to out as the JSON object of
 * GET /v1/stats, with the top domains by bytes (top: 0..ADMIN_STATS_TOP_MAX). 0, or -1 with
 * *error_r (out unchanged).
 */
int admin_stats(struct admin *a, unsigned top, struct buf *out, const char **error_r)
        __attribute__((warn_unused_result));

/*
 * Fold the domains' pending usage deltas into their totals (sql/011's
 * mq_fold_domain_usage()), a batch at a time until none is left or limit batches ran, on one
 * of a's connections. *folded_r: how many deltas; 0 also when another session was folding.
 * 0, or -1 with *error_r (not logged). Thread-safe.
 */
int admin_fold(struct admin *a, unsigned limit, uint64_t *folded_r, const char **error_r)
        __attribute__((warn_unused_result));

/* A thread that runs admin_fold() every interval seconds. */
struct admin_folder;

/* Start it over a (which must outlive it); interval 0 starts nothing and returns NULL. A
   failure to fold is logged once until the next success. Never fails. */
struct admin_folder *admin_folder_start(struct admin *a, unsigned interval);
/* Stop and join it (a fold under way ends first, within its call timeout), free, NULL the
   pointer; NULL is ignored. */
void admin_folder_stop(struct admin_folder **fp);

/* Warning events, newest first, filtered by q->object (the address), q->state (of a delivery)
   and q->updated_since; returns as admin_list(). */
int admin_warnings(struct admin *a, const struct admin_query *q, struct buf *out,
                   const char **error_r) __attribute__((warn_unused_result));

/* ---- bulk (admin_bulk.c) ---- */

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
 * *applied_r says whether anything was committed. 0, or -1 with *error_r (nothing committed).
 */
int admin_import(struct admin *a, const struct admin_import_row *rows, size_t n,
                 bool all_or_nothing, bool dry_run, int64_t token,
                 struct admin_import_counts *counts, struct bulk_errors *errs, bool *applied_r,
                 const char **error_r) __attribute__((warn_unused_result));

/* An export in progress: one connection, one snapshot, a cursor per kind. */
struct admin_export;

/* Start exporting the kinds whose bits (1 << kind) are set, domains first; NULL with *error_r
   when the database is unavailable. */
struct admin_export *admin_export_open(struct admin *a, unsigned kinds, const char **error_r);
/* The next up to 1000 objects written in fmt to out: 1 with something written, 0 at the end,
   -1 with *error_r on a database failure or a row out cannot hold (the export is over). */
int admin_export_next(struct admin_export *x, enum bulk_format fmt, struct buf *out,
                      const char **error_r) __attribute__((warn_unused_result));
/* Roll back, give the connection back, free, NULL the pointer; NULL is ignored. */
void admin_export_close(struct admin_export **xp);

#endif
