/*
 * admin_bulk: imports and exports of the admin API. An import upserts runs of rows of one kind
 * in one statement each (through the same functions of sql/006_bulk.sql as single changes, so
 * each row is audited), in file order, in one transaction; an export reads every kind from one
 * REPEATABLE READ snapshot through a server-side cursor, 1000 rows a fetch. Both may take the
 * bulk timeout. It must never commit part of an all-or-nothing import, and never leave a
 * connection inside a transaction when it gives it back (the pool closes such a one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "admin_internal.h"
#include "db.h"
#include "dbpool.h"
#include "log.h"
#include "xalloc.h"

#define IMPORT_BATCH 5000 /* rows of one kind per statement */

static const char *const import_sql[] = {
	[RESOURCE_DOMAIN] =
	        "SELECT u.ord, r.code FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY"
	        " AS u(row, ord) CROSS JOIN LATERAL mq_admin_domain($2, 'upsert',"
	        " u.row->>'domain', u.row->'fields', NULL) r ORDER BY u.ord",
	[RESOURCE_MAILBOX] =
	        "SELECT u.ord, r.code FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY"
	        " AS u(row, ord) CROSS JOIN LATERAL mq_admin_mailbox($2, 'upsert',"
	        " u.row->>'local', u.row->>'domain', u.row->'fields', NULL) r ORDER BY u.ord",
	[RESOURCE_ALIAS] =
	        "SELECT u.ord, r.code FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY"
	        " AS u(row, ord) CROSS JOIN LATERAL mq_admin_alias($2, 'upsert',"
	        " u.row->>'local', u.row->>'domain', u.row->'fields', NULL) r ORDER BY u.ord",
};

/* How a refused row is reported: the field to blame and the advice. */
static const struct {
	const char *field;
	const char *message;
} import_refusals[ADMIN_CODES] = {
	[ADMIN_UNKNOWN_DOMAIN] = { "address",
	                           "the domain does not exist (import it first, earlier in the "
	                           "file)" },
	[ADMIN_UNKNOWN_TARGET] = { "targets",
	                           "a target is not a mailbox (import mailboxes before aliases)" },
	[ADMIN_NO_TARGETS] = { "targets", "an alias needs at least one target" },
};

/* Count one row's code, or report it as refused (a code this build does not know, from a
   schema migrated ahead of the daemon, included). */
static void import_count(const struct admin_import_row *row, const char *text,
                         struct admin_import_counts *counts, struct bulk_errors *errs)
{
	enum admin_code code;
	if (admin_code_parse(text, &code) < 0) {
		bulk_error_add(errs, row->line, "", "refused",
		               "the database answered a code this daemon does not know");
		counts->failed++;
		return;
	}
	switch (code) {
	case ADMIN_CREATED:
		counts->created++;
		break;
	case ADMIN_UPDATED:
		counts->updated++;
		break;
	case ADMIN_UNCHANGED:
		counts->unchanged++;
		break;
	default:
		bulk_error_add(errs, row->line,
		               import_refusals[code].field != NULL ? import_refusals[code].field
		                                                   : "",
		               admin_code_name(code),
		               import_refusals[code].message != NULL ? import_refusals[code].message
		                                                     : "refused");
		counts->failed++;
		break;
	}
}

/* rows[start..end) (one kind) as the JSON array the import statements take. */
static char *import_batch(const struct admin_import_row *rows, size_t start, size_t end)
{
	json_t *arr = json_array();
	for (size_t i = start; i < end; i++) {
		const struct resource_key *k = &rows[i].key;
		json_t *o = json_pack("{s:s, s:O}", "domain", k->domain, "fields", rows[i].fields);
		if (rows[i].kind != RESOURCE_DOMAIN)
			json_object_set_new(o, "local",
			                    k->catchall ? json_null() : json_string(k->local));
		json_array_append_new(arr, o);
	}
	char *text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return text;
}

/*
 * Run every row on conn inside its open transaction: 0 (counts and errs filled; a batch the
 * database refused as a whole leaves the transaction aborted, reported in errs), or -1 with
 * *error_r (logged).
 */
static int import_rows(struct admin *a, PGconn *conn, const struct admin_import_row *rows, size_t n,
                       const char *tok, struct admin_import_counts *counts,
                       struct bulk_errors *errs, const char **error_r)
{
	/* runs of one kind, in file order, at most IMPORT_BATCH rows per statement */
	for (size_t start = 0; start < n;) {
		size_t end = start;
		while (end < n && end - start < IMPORT_BATCH && rows[end].kind == rows[start].kind)
			end++;
		char *text = import_batch(rows, start, end);
		const char *params[2] = { text, tok };
		PGresult *r = db_run(conn, false, import_sql[rows[start].kind], 2, params,
		                     admin_bulk_timeout_ms(a));
		free(text);
		enum db_outcome dbo = db_classify(r);
		if (dbo == DB_REFUSED) {
			const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
			char msg[200]; /* cut on purpose */
			snprintf(msg, sizeof(msg),
			         "the database refused a row of lines %zu-%zu: %s",
			         rows[start].line, rows[end - 1].line, m != NULL ? m : "?");
			bulk_error_add(errs, rows[start].line, NULL, "invalid_value", msg);
			counts->failed += end - start;
			PQclear(r);
			return 0; /* the transaction is aborted: nothing can be kept */
		}
		if (dbo != DB_OK || (size_t)PQntuples(r) != end - start) {
			*error_r = db_error_text(conn, r);
			log_warn("event=import_failed error=\"%s\"", *error_r);
			PQclear(r);
			return -1;
		}
		for (int i = 0; i < PQntuples(r); i++)
			import_count(&rows[start + (size_t)i], PQgetvalue(r, i, 1), counts, errs);
		PQclear(r);
		start = end;
	}
	return 0;
}

int admin_import(struct admin *a, const struct admin_import_row *rows, size_t n,
                 bool all_or_nothing, bool dry_run, int64_t token,
                 struct admin_import_counts *counts, struct bulk_errors *errs, bool *applied_r,
                 const char **error_r)
{
	*applied_r = false;
	memset(counts, 0, sizeof(*counts));
	PGconn *conn = dbpool_acquire(a->pool, error_r);
	if (conn == NULL)
		return -1;
	char tok[24]; /* an int64 fits */
	snprintf(tok, sizeof(tok), "%lld", (long long)token);
	int ret = -1;
	if (db_exec(conn, admin_bulk_begin(a, "BEGIN").sql, dbpool_timeout_ms(a->pool), error_r) <
	    0)
		goto release;
	if (import_rows(a, conn, rows, n, token > 0 ? tok : NULL, counts, errs, error_r) < 0)
		goto rollback;
	ret = 0;
	if (dry_run || (all_or_nothing && counts->failed > 0) ||
	    PQtransactionStatus(conn) == PQTRANS_INERROR)
		goto rollback;
	if (db_exec(conn, "COMMIT", admin_bulk_timeout_ms(a), error_r) < 0) {
		ret = -1;
		goto release;
	}
	*applied_r = true;
	goto release;
rollback:
	db_rollback(conn, dbpool_timeout_ms(a->pool));
release:
	dbpool_release(a->pool, conn);
	return ret;
}

struct admin_export {
	struct admin *admin;
	PGconn *conn;
	unsigned kinds;
	int kind;  /* the kind being read; -1 before the first */
	bool open; /* a cursor is declared for kind */
	bool failed;
};

/* Exports carry settable fields only: a domain's document is made without its usage figures,
   which would cost a sum over its pending deltas per domain (sql/011) for nothing. */
static const char *const export_query[] = {
	[RESOURCE_DOMAIN] = "DECLARE mq_export NO SCROLL CURSOR FOR"
	                    " SELECT mq_domain_doc_with(t, 0, 0, 0, 0)::text FROM domains t"
	                    " ORDER BY t.name",
	[RESOURCE_MAILBOX] = "DECLARE mq_export NO SCROLL CURSOR FOR"
	                     " SELECT mq_mailbox_doc(t)::text FROM mailboxes t ORDER BY t.address",
	[RESOURCE_ALIAS] = "DECLARE mq_export NO SCROLL CURSOR FOR"
	                   " SELECT mq_alias_doc(t)::text FROM aliases t ORDER BY t.address",
};

/* db_exec() with the bulk timeout, logging a failure. */
static int export_exec(struct admin_export *x, const char *sql, const char **error_r)
{
	if (db_exec(x->conn, sql, admin_bulk_timeout_ms(x->admin), error_r) == 0)
		return 0;
	log_warn("event=export_failed error=\"%s\"", *error_r);
	return -1;
}

struct admin_export *admin_export_open(struct admin *a, unsigned kinds, const char **error_r)
{
	PGconn *conn = dbpool_acquire(a->pool, error_r);
	if (conn == NULL)
		return NULL;
	struct admin_export *x = xcalloc(1, sizeof(*x));
	x->admin = a;
	x->conn = conn;
	x->kinds = kinds;
	x->kind = -1;
	/* one snapshot for every kind: the export is consistent */
	if (export_exec(x,
	                admin_bulk_begin(a, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").sql,
	                error_r) < 0)
		admin_export_close(&x);
	return x;
}

/* Write the rows of r in fmt to out: 0, or -1 when one cannot be written. */
static int export_rows(const struct admin_export *x, const PGresult *r, enum bulk_format fmt,
                       struct buf *out)
{
	for (int i = 0; i < PQntuples(r); i++) {
		json_t *doc = json_loads(PQgetvalue(r, i, 0), 0, NULL);
		int rc = doc != NULL ? bulk_write(fmt, (enum resource_kind)x->kind, doc, out) : -1;
		json_decref(doc);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int admin_export_next(struct admin_export *x, enum bulk_format fmt, struct buf *out,
                      const char **error_r)
{
	*error_r = "the export failed before";
	while (!x->failed) {
		if (!x->open) {
			do
				x->kind++;
			while (x->kind <= RESOURCE_ALIAS && (x->kinds & (1u << x->kind)) == 0);
			if (x->kind > RESOURCE_ALIAS)
				return 0;
			if (export_exec(x, export_query[x->kind], error_r) < 0)
				break;
			x->open = true;
		}
		PGresult *r = db_run(x->conn, false, "FETCH 1000 FROM mq_export", 0, NULL,
		                     admin_bulk_timeout_ms(x->admin));
		if (db_classify(r) != DB_OK) {
			*error_r = db_error_text(x->conn, r);
			log_warn("event=export_failed error=\"%s\"", *error_r);
			PQclear(r);
			break;
		}
		int rows = PQntuples(r);
		int rc = export_rows(x, r, fmt, out);
		PQclear(r);
		if (rc < 0) {
			*error_r = "cannot write a row";
			log_warn("event=export_failed error=\"%s\"", *error_r);
			break;
		}
		if (rows > 0)
			return 1;
		if (export_exec(x, "CLOSE mq_export", error_r) < 0)
			break;
		x->open = false;
	}
	x->failed = true;
	return -1;
}

void admin_export_close(struct admin_export **xp)
{
	struct admin_export *x = *xp;
	if (x == NULL)
		return;
	db_rollback(x->conn,
	            dbpool_timeout_ms(x->admin->pool)); /* a busy one: the pool closes it */
	dbpool_release(x->admin->pool, x->conn);
	free(x);
	*xp = NULL;
}
