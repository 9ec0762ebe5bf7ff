/*
 * admin: SQL for the admin API. Every change is one call of a function of sql/005_admin.sql,
 * which writes the audit record in the same transaction; lists are keyset-paginated (a cursor
 * names the last row's sort key and id, so pages stay stable while rows change) and use only
 * filters and orders with an index. It must never build SQL from untrusted text: values travel
 * as parameters, and the only text spliced into a query comes from the tables below.
 */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "dbpool.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

static const struct db_statement statements[] = {
	{ "domain_change", "SELECT code, doc FROM mq_admin_domain($1, $2, $3, $4::jsonb, $5)", 5 },
	{ "mailbox_change", "SELECT code, doc FROM mq_admin_mailbox($1, $2, $3, $4, $5::jsonb, $6)",
	  6 },
	{ "alias_change", "SELECT code, doc FROM mq_admin_alias($1, $2, $3, $4, $5::jsonb, $6)",
	  6 },
	{ "domain_get", "SELECT mq_domain_doc(d) FROM domains d WHERE name = $1", 1 },
	{ "mailbox_get", "SELECT mq_mailbox_doc(m) FROM mailboxes m WHERE address = $1", 1 },
	{ "alias_get", "SELECT mq_alias_doc(a) FROM aliases a WHERE address = $1", 1 },
	{ "token_next", "SELECT mq_token_next_id()", 0 },
	{ "token_create",
	  "SELECT code, doc FROM mq_admin_token_create($1, $2, $3, $4, $5, decode($6, 'hex'),"
	  " $7::timestamptz)",
	  7 },
	{ "token_revoke", "SELECT code, doc FROM mq_admin_token_revoke($1, $2)", 2 },
	{ "token_get", "SELECT mq_token_doc(t) FROM api_tokens t WHERE id = $1", 1 },
	{ "usage_set",
	  "WITH b AS (SELECT id, mq_mailbox_doc(m) AS doc FROM mailboxes m WHERE address = $1"
	  "           FOR UPDATE),"
	  " u AS (UPDATE mailboxes m SET used_bytes = $2, used_messages = coalesce($3, "
	  "m.used_messages),"
	  "       usage_source = $4, usage_set_at = coalesce($5::timestamptz, now())"
	  "       FROM b WHERE m.id = b.id RETURNING m.*),"
	  " d AS (SELECT mq_mailbox_doc(u::mailboxes) AS doc FROM u),"
	  " a AS (INSERT INTO audit_log (token_id, action, object, before, after)"
	  "       SELECT $6, 'usage.set', $1, b.doc, d.doc FROM b, d)"
	  " SELECT doc FROM d",
	  6 },
};

struct admin {
	struct dbpool *pool;
	unsigned bulk_timeout_s; /* imports and export fetches */
};

static unsigned bulk_timeout_ms(const struct admin *a)
{
	return a->bulk_timeout_s != 0 ? (a->bulk_timeout_s + 1) * 1000 : dbpool_timeout_ms(a->pool);
}

/* "BEGIN ..." followed by the bulk statement timeout for this transaction only. */
struct bulk_sql {
	char data[160];
};
static struct bulk_sql bulk_begin(const struct admin *a, const char *begin)
{
	struct bulk_sql q;
	if (a->bulk_timeout_s != 0)
		snprintf(q.data, sizeof(q.data), "%s; SET LOCAL statement_timeout = %u", begin,
		         a->bulk_timeout_s * 1000);
	else
		snprintf(q.data, sizeof(q.data), "%s", begin);
	return q;
}

struct admin *admin_new(const char *conninfo, unsigned pool_size, const struct db_limits *limits,
                        unsigned bulk_timeout_s)
{
	struct admin *a = xcalloc(1, sizeof(*a));
	a->pool = dbpool_new(conninfo, pool_size, "mailquotad-admin", statements,
	                     sizeof(statements) / sizeof(statements[0]), limits);
	a->bulk_timeout_s = bulk_timeout_s;
	return a;
}

void admin_destroy(struct admin **ap)
{
	struct admin *a = *ap;
	if (a == NULL)
		return;
	dbpool_destroy(&a->pool);
	free(a);
	*ap = NULL;
}

void admin_outcome_free(struct admin_outcome *o)
{
	free(o->doc);
	o->doc = NULL;
}

/* Take the document's "etag" member for the header. */
static void set_doc(struct admin_outcome *out, const char *doc)
{
	free(out->doc);
	out->doc = xstrdup(doc);
	out->etag[0] = '\0';
	json_t *j = json_loads(doc, 0, NULL);
	json_t *e = json_object_get(j, "etag");
	if (json_is_string(e))
		(void)!str_copy(out->etag, json_string_value(e), sizeof(out->etag));
	json_decref(j);
}

/*
 * Run a prepared statement; ADMIN_DONE with *res_r (caller clears), ADMIN_UNAVAILABLE when the
 * connection failed, ADMIN_REFUSED with the database's message when it refused the values.
 */
static enum admin_status run(struct admin *a, const char *stmt, int n, const char *const *params,
                             PGresult **res_r, struct admin_outcome *out)
{
	const char *why;
	PGconn *conn = dbpool_acquire(a->pool, &why);
	if (conn == NULL)
		return ADMIN_UNAVAILABLE;
	PGresult *r = db_run(conn, true, stmt, n, params, dbpool_timeout_ms(a->pool));
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQstatus(conn) == CONNECTION_BAD) {
		/* a pooled connection that died while idle (a restarted server): the statement
		   never ran; once more on a fresh connection */
		PQclear(r);
		dbpool_release(a->pool, conn);
		if ((conn = dbpool_acquire(a->pool, &why)) == NULL)
			return ADMIN_UNAVAILABLE;
		r = db_run(conn, true, stmt, n, params, dbpool_timeout_ms(a->pool));
	}
	enum admin_status st = ADMIN_DONE;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		if (state != NULL &&
		    (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)) {
			/* data exceptions and integrity violations: the values, not the database */
			st = ADMIN_REFUSED;
			snprintf(out->message, sizeof(out->message), "%s",
			         m != NULL ? m : "refused");
		} else {
			m = PQresultErrorMessage(r);
			log_warn("event=admin_query_failed statement=%s error=\"%.*s\"", stmt,
			         (int)strcspn(m, "\n"), m);
			st = ADMIN_UNAVAILABLE;
		}
		PQclear(r);
		r = NULL;
	}
	dbpool_release(a->pool, conn);
	*res_r = r;
	return st;
}

/* A one-document result into out: "ok" with the document, or "not_found"; clears r. */
static void take_doc(PGresult *r, struct admin_outcome *out)
{
	(void)!str_copy(out->code, PQntuples(r) == 1 ? "ok" : "not_found", sizeof(out->code));
	if (PQntuples(r) == 1)
		set_doc(out, PQgetvalue(r, 0, 0));
	PQclear(r);
}

/* A (code, doc) result into out. */
static void take_code_doc(PGresult *r, struct admin_outcome *out)
{
	(void)!str_copy(out->code, PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "not_found",
	                sizeof(out->code));
	if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 1))
		set_doc(out, PQgetvalue(r, 0, 1));
}

enum admin_status admin_change(struct admin *a, enum resource_kind kind, const char *op,
                               const struct resource_key *key, json_t *fields, const char *etag,
                               int64_t token, struct admin_outcome *out)
{
	char tok[24];
	snprintf(tok, sizeof(tok), "%lld", (long long)token);
	char *ftext = fields != NULL ? json_dumps(fields, JSON_COMPACT) : NULL;
	const char *params[6];
	int n = 0;
	const char *stmt;
	params[n++] = token > 0 ? tok : NULL;
	params[n++] = op;
	if (kind == RESOURCE_DOMAIN) {
		stmt = "domain_change";
		params[n++] = key->domain;
	} else {
		stmt = kind == RESOURCE_MAILBOX ? "mailbox_change" : "alias_change";
		params[n++] = key->catchall ? NULL : key->local;
		params[n++] = key->domain;
	}
	params[n++] = ftext;
	params[n++] = etag;
	PGresult *r;
	enum admin_status st = run(a, stmt, n, params, &r, out);
	free(ftext);
	if (st == ADMIN_DONE) {
		take_code_doc(r, out);
		PQclear(r);
	}
	return st;
}

static const char *const get_stmt[] = {
	[RESOURCE_DOMAIN] = "domain_get",
	[RESOURCE_MAILBOX] = "mailbox_get",
	[RESOURCE_ALIAS] = "alias_get",
	[RESOURCE_TOKEN] = "token_get",
};

enum admin_status admin_get(struct admin *a, enum resource_kind kind,
                            const struct resource_key *key, struct admin_outcome *out)
{
	const char *params[1] = { kind == RESOURCE_DOMAIN ? key->domain : key->text };
	PGresult *r;
	enum admin_status st = run(a, get_stmt[kind], 1, params, &r, out);
	if (st != ADMIN_DONE)
		return st;
	take_doc(r, out);
	return ADMIN_DONE;
}

enum admin_status admin_token_get(struct admin *a, int64_t id, struct admin_outcome *out)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	const char *params[1] = { ids };
	PGresult *r;
	enum admin_status st = run(a, "token_get", 1, params, &r, out);
	if (st != ADMIN_DONE)
		return st;
	take_doc(r, out);
	return ADMIN_DONE;
}

enum admin_status admin_token_create(struct admin *a, json_t *fields, int64_t creator, char *text_r,
                                     struct admin_outcome *out)
{
	PGresult *r;
	enum admin_status st = run(a, "token_next", 0, NULL, &r, out);
	if (st != ADMIN_DONE)
		return st;
	int64_t id = db_get_i64(r, 0, 0);
	PQclear(r);
	uint8_t hash[TOKEN_HASH_LEN];
	if (token_generate(id, text_r, TOKEN_TEXT_MAX, hash) < 0) {
		log_error("event=token_random_failed");
		return ADMIN_UNAVAILABLE;
	}
	char hex[2 * TOKEN_HASH_LEN + 1], ids[24], cre[24];
	for (size_t i = 0; i < TOKEN_HASH_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", hash[i]);
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	snprintf(cre, sizeof(cre), "%lld", (long long)creator);
	json_t *mb = json_object_get(fields, "mailbox"),
	       *exp = json_object_get(fields, "expires_at");
	const char *params[7] = {
		creator > 0 ? cre : NULL,
		ids,
		json_string_value(json_object_get(fields, "name")),
		json_string_value(json_object_get(fields, "scope")),
		json_is_string(mb) ? json_string_value(mb) : NULL,
		hex,
		json_is_string(exp) ? json_string_value(exp) : NULL,
	};
	st = run(a, "token_create", 7, params, &r, out);
	if (st != ADMIN_DONE) {
		explicit_bzero(text_r, TOKEN_TEXT_MAX);
		return st;
	}
	take_code_doc(r, out);
	PQclear(r);
	if (strcmp(out->code, "created") != 0)
		explicit_bzero(text_r, TOKEN_TEXT_MAX);
	return ADMIN_DONE;
}

enum admin_status admin_token_revoke(struct admin *a, int64_t id, int64_t actor,
                                     struct admin_outcome *out)
{
	char ids[24], act[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	snprintf(act, sizeof(act), "%lld", (long long)actor);
	const char *params[2] = { actor > 0 ? act : NULL, ids };
	PGresult *r;
	enum admin_status st = run(a, "token_revoke", 2, params, &r, out);
	if (st != ADMIN_DONE)
		return st;
	take_code_doc(r, out);
	PQclear(r);
	return ADMIN_DONE;
}

enum admin_status admin_usage_set(struct admin *a, const char *address, uint64_t bytes,
                                  const uint64_t *messages, const char *source,
                                  const char *measured_at, int64_t token, struct admin_outcome *out)
{
	char b[24], m[24], tok[24];
	snprintf(b, sizeof(b), "%llu", (unsigned long long)bytes);
	if (messages != NULL)
		snprintf(m, sizeof(m), "%llu", (unsigned long long)*messages);
	snprintf(tok, sizeof(tok), "%lld", (long long)token);
	const char *params[6] = { address,
		                  b,
		                  messages != NULL ? m : NULL,
		                  source,
		                  measured_at[0] != '\0' ? measured_at : NULL,
		                  token > 0 ? tok : NULL };
	PGresult *r;
	enum admin_status st = run(a, "usage_set", 6, params, &r, out);
	if (st != ADMIN_DONE)
		return st;
	take_doc(r, out);
	return ADMIN_DONE;
}

/* ---- lists ---- */

/* One sort order: the column it orders by, the text form of its key, and the key's type. */
struct sort_order {
	const char *name;
	const char *column;
	const char *key_text;
	const char *key_type;
};

static const struct sort_order domain_sorts[] = {
	{ "name", "t.name", "t.name", "text" },
	{ "updated_at", "t.updated_at", "mq_ts(t.updated_at)", "timestamptz" },
};
static const struct sort_order mailbox_sorts[] = {
	{ "address", "t.address", "t.address", "text" },
	{ "usage", "t.usage_ratio", "t.usage_ratio::text", "float8" },
	{ "updated_at", "t.updated_at", "mq_ts(t.updated_at)", "timestamptz" },
};
static const struct sort_order alias_sorts[] = {
	{ "address", "t.address", "t.address", "text" },
	{ "updated_at", "t.updated_at", "mq_ts(t.updated_at)", "timestamptz" },
};
static const struct sort_order token_sorts[] = {
	{ "id", "t.id", "t.id::text", "bigint" },
};

struct list_kind {
	const char *from;
	const char *doc;
	const struct sort_order *sorts;
	size_t nsorts;
};

#define LK(f, d, s)                               \
	{                                         \
		f, d, s, sizeof(s) / sizeof(s[0]) \
	}
static const struct list_kind list_kinds[] = {
	[RESOURCE_DOMAIN] = LK("domains t", "mq_domain_doc(t)", domain_sorts),
	[RESOURCE_MAILBOX] = LK("mailboxes t", "mq_mailbox_doc(t)", mailbox_sorts),
	[RESOURCE_ALIAS] = LK("aliases t", "mq_alias_doc(t)", alias_sorts),
	[RESOURCE_TOKEN] = LK("api_tokens t", "mq_token_doc(t)", token_sorts),
};

/* Add parameter v and append "<before>$<its number><after>" to sql. */
static void params_add(const char **params, int *n, const char *v, struct buf *sql,
                       const char *before, const char *after)
{
	params[(*n)++] = v;
	if (buf_printf(sql, "%s$%d%s", before, *n, after) < 0)
		abort();
}

#define LIST_PARAMS_MAX 12

/* Append one page from a query whose rows are (doc, key, id). */
static void write_page(PGresult *r, unsigned limit, const char *sort, struct buf *out)
{
	int rows = PQntuples(r);
	bool more = rows > (int)limit;
	if (more)
		rows = (int)limit;
	if (buf_puts(out, "{\"items\":[") < 0)
		abort();
	for (int i = 0; i < rows; i++)
		if ((i > 0 && buf_puts(out, ",") < 0) || buf_puts(out, PQgetvalue(r, i, 0)) < 0)
			abort();
	if (buf_puts(out, "],\"next_cursor\":") < 0)
		abort();
	if (more) {
		const char *key = PQgetvalue(r, rows - 1, 1), *id = PQgetvalue(r, rows - 1, 2);
		/* keys and ids are UTF-8 text from PostgreSQL; our page stays within its bound */
		if (buf_puts(out, "\"") < 0 || cursor_encode(sort, key, id, out) < 0 ||
		    buf_puts(out, "\"") < 0)
			abort();
	} else if (buf_puts(out, "null") < 0) {
		abort();
	}
	if (buf_puts(out, "}") < 0)
		abort();
}

/* Run a built list query on a pooled connection. */
static enum admin_status run_list(struct admin *a, const char *sql, int n,
                                  const char *const *params, PGresult **res_r)
{
	const char *why;
	PGconn *conn = dbpool_acquire(a->pool, &why);
	if (conn == NULL)
		return ADMIN_UNAVAILABLE;
	PGresult *r = db_run(conn, false, sql, n, params, dbpool_timeout_ms(a->pool));
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQstatus(conn) == CONNECTION_BAD) {
		PQclear(r); /* died while idle: once more on a fresh connection (a read) */
		dbpool_release(a->pool, conn);
		if ((conn = dbpool_acquire(a->pool, &why)) == NULL)
			return ADMIN_UNAVAILABLE;
		r = db_run(conn, false, sql, n, params, dbpool_timeout_ms(a->pool));
	}
	dbpool_release(a->pool, conn);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *m = PQresultErrorMessage(r);
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		bool refused = state != NULL && strncmp(state, "22", 2) == 0;
		if (!refused)
			log_warn("event=admin_list_failed error=\"%.*s\"", (int)strcspn(m, "\n"),
			         m);
		PQclear(r);
		return refused ? ADMIN_REFUSED : ADMIN_UNAVAILABLE;
	}
	*res_r = r;
	return ADMIN_DONE;
}

enum admin_status admin_list(struct admin *a, const struct admin_query *q, struct buf *out,
                             const char **why_r)
{
	const struct list_kind *lk = &list_kinds[q->kind];
	const char *sort = q->sort != NULL ? q->sort : lk->sorts[0].name;
	bool desc = sort[0] == '-';
	const struct sort_order *so = NULL;
	for (size_t i = 0; i < lk->nsorts; i++)
		if (strcmp(lk->sorts[i].name, sort + desc) == 0)
			so = &lk->sorts[i];
	if (so == NULL) {
		*why_r = "unknown sort order for this list";
		return ADMIN_REFUSED;
	}
	const char *params[LIST_PARAMS_MAX];
	int n = 0;
	struct buf sql;
	buf_init(&sql, 64 * 1024);
	if (buf_printf(&sql, "SELECT %s::text, %s, t.id::text FROM %s WHERE true", lk->doc,
	               so->key_text, lk->from) < 0)
		abort();
	if (q->domain != NULL)
		params_add(params, &n, q->domain, &sql,
		           q->kind == RESOURCE_DOMAIN
		                   ? " AND t.name = "
		                   : " AND t.domain_id = (SELECT id FROM domains WHERE name = ",
		           q->kind == RESOURCE_DOMAIN ? "" : ")");
	if (q->updated_since != NULL)
		params_add(params, &n, q->updated_since, &sql,
		           " AND t.updated_at >= ", "::timestamptz");
	if (q->prefix != NULL) {
		/* addresses are in collation "C" (sql/007), so LIKE 'prefix%' is an index range;
		   the prefix's own \ % and _ are escaped */
		const char *col = q->kind == RESOURCE_DOMAIN ? "t.name COLLATE \"C\"" : "t.address";
		params[n++] = q->prefix;
		if (buf_printf(&sql,
		               " AND %s LIKE replace(replace(replace($%d, '\\', '\\\\'), '%%',"
		               " '\\%%'), '_', '\\_') || '%%'",
		               col, n) < 0)
			abort();
	}
	if (q->min_usage_percent != NULL) {
		/* the ratio index narrows; the exact comparison in numeric decides */
		params_add(params, &n, q->min_usage_percent, &sql,
		           " AND t.usage_ratio >= ", "::float8 / 100 * (1 - 1e-12)");
		if (buf_printf(&sql,
		               " AND ((t.effective_storage_limit_bytes = 0 AND t.used_bytes > 0) OR"
		               " t.used_bytes::numeric * 100 >="
		               " t.effective_storage_limit_bytes::numeric * $%d::numeric)",
		               n) < 0)
			abort();
	}
	if (q->over_quota == 1 &&
	    buf_puts(&sql,
	             " AND t.usage_ratio >= 1 AND t.used_bytes > t.effective_storage_limit_bytes") <
	            0)
		abort();
	if (q->over_quota == 0 &&
	    buf_puts(&sql,
	             " AND NOT coalesce(t.used_bytes > t.effective_storage_limit_bytes, false)") <
	            0)
		abort();
	if (q->enabled >= 0)
		params_add(params, &n, q->enabled ? "true" : "false", &sql,
		           " AND t.enabled = ", "::boolean");
	if (q->kind == RESOURCE_TOKEN && !q->include_revoked &&
	    buf_puts(&sql, " AND t.revoked_at IS NULL") < 0)
		abort();
	json_t *cur = NULL;
	if (q->cursor != NULL) {
		const char *key, *id;
		if (cursor_decode(q->cursor, sort, &cur, &key, &id) < 0) {
			buf_free(&sql);
			*why_r = "cursor is not one this list gave out (or the sort order changed)";
			return ADMIN_REFUSED;
		}
		params[n++] = key;
		params[n++] = id;
		if (buf_printf(&sql, " AND (%s, t.id) %s ($%d::%s, $%d::bigint)", so->column,
		               desc ? "<" : ">", n - 1, so->key_type, n) < 0)
			abort();
	}
	char lim[16];
	snprintf(lim, sizeof(lim), "%u", q->limit + 1);
	params[n++] = lim;
	if (buf_printf(&sql, " ORDER BY %s %s, t.id %s LIMIT $%d", so->column,
	               desc ? "DESC" : "ASC", desc ? "DESC" : "ASC", n) < 0)
		abort();
	PGresult *r;
	enum admin_status st = run_list(a, sql.data, n, params, &r);
	buf_free(&sql);
	if (st == ADMIN_REFUSED)
		*why_r = "a cursor or filter value is malformed";
	if (st == ADMIN_DONE) {
		write_page(r, q->limit, sort, out);
		PQclear(r);
	}
	json_decref(cur);
	return st;
}

enum admin_status admin_audit(struct admin *a, const struct admin_query *q, struct buf *out,
                              const char **why_r)
{
	const char *params[LIST_PARAMS_MAX];
	int n = 0;
	struct buf sql;
	buf_init(&sql, 64 * 1024);
	if (buf_puts(&sql,
	             "SELECT jsonb_build_object('id', l.id, 'at', mq_ts(l.at), 'token_id',"
	             " l.token_id, 'token_name', t.name, 'action', l.action, 'object',"
	             " l.object, 'before', l.before, 'after', l.after)::text, l.id::text,"
	             " l.id::text FROM audit_log l LEFT JOIN api_tokens t ON t.id = l.token_id"
	             " WHERE true") < 0)
		abort();
	char tok[24];
	if (q->object != NULL)
		params_add(params, &n, q->object, &sql, " AND l.object = ", "");
	if (q->action != NULL)
		params_add(params, &n, q->action, &sql, " AND l.action = ", "");
	if (q->token_id > 0) {
		snprintf(tok, sizeof(tok), "%lld", (long long)q->token_id);
		params_add(params, &n, tok, &sql, " AND l.token_id = ", "");
	}
	if (q->updated_since != NULL)
		params_add(params, &n, q->updated_since, &sql, " AND l.at >= ", "::timestamptz");
	if (q->until != NULL)
		params_add(params, &n, q->until, &sql, " AND l.at < ", "::timestamptz");
	json_t *cur = NULL;
	if (q->cursor != NULL) {
		const char *k, *unused;
		uint64_t id;
		if (cursor_decode(q->cursor, "-id", &cur, &k, &unused) < 0 ||
		    strnum_u64(k, strlen(k), INT64_MAX, &id) < 0) {
			json_decref(cur);
			buf_free(&sql);
			*why_r = "cursor is not one this list gave out";
			return ADMIN_REFUSED;
		}
		params_add(params, &n, k, &sql, " AND l.id < ", "::bigint");
	}
	char lim[16];
	snprintf(lim, sizeof(lim), "%u", q->limit + 1);
	params_add(params, &n, lim, &sql, " ORDER BY l.id DESC LIMIT ", "");
	PGresult *r;
	enum admin_status st = run_list(a, sql.data, n, params, &r);
	buf_free(&sql);
	if (st == ADMIN_REFUSED)
		*why_r = "a filter value is malformed";
	if (st == ADMIN_DONE) {
		write_page(r, q->limit, "-id", out);
		PQclear(r);
	}
	json_decref(cur);
	return st;
}

/* ---- bulk ---- */

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

static const char *import_message(const char *code, const char **field_r)
{
	*field_r = "";
	if (strcmp(code, "unknown_domain") == 0) {
		*field_r = "address";
		return "the domain does not exist (import it first, earlier in the file)";
	}
	if (strcmp(code, "unknown_target") == 0) {
		*field_r = "targets";
		return "a target is not a mailbox (import mailboxes before aliases)";
	}
	if (strcmp(code, "no_targets") == 0) {
		*field_r = "targets";
		return "an alias needs at least one target";
	}
	return "refused";
}

enum admin_status admin_import(struct admin *a, const struct admin_import_row *rows, size_t n,
                               bool all_or_nothing, bool dry_run, int64_t token,
                               struct admin_import_counts *counts, struct bulk_errors *errs,
                               bool *applied_r)
{
	const char *why;
	*applied_r = false;
	memset(counts, 0, sizeof(*counts));
	PGconn *conn = dbpool_acquire(a->pool, &why);
	if (conn == NULL)
		return ADMIN_UNAVAILABLE;
	enum admin_status st = ADMIN_UNAVAILABLE;
	char tok[24];
	snprintf(tok, sizeof(tok), "%lld", (long long)token);
	unsigned bulk_ms = bulk_timeout_ms(a);
	PGresult *r = db_run(conn, false, bulk_begin(a, "BEGIN").data, 0, NULL,
	                     dbpool_timeout_ms(a->pool));
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok)
		goto release;
	/* runs of one kind, in file order, at most IMPORT_BATCH rows per statement */
	for (size_t start = 0; start < n;) {
		size_t end = start;
		while (end < n && end - start < IMPORT_BATCH && rows[end].kind == rows[start].kind)
			end++;
		json_t *arr = json_array();
		for (size_t i = start; i < end; i++) {
			const struct resource_key *k = &rows[i].key;
			json_t *o = json_pack("{s:s, s:O}", "domain", k->domain, "fields",
			                      rows[i].fields);
			if (rows[i].kind != RESOURCE_DOMAIN)
				json_object_set_new(o, "local",
				                    k->catchall ? json_null()
				                                : json_string(k->local));
			json_array_append_new(arr, o);
		}
		char *text = json_dumps(arr, JSON_COMPACT);
		json_decref(arr);
		const char *params[2] = { text, token > 0 ? tok : NULL };
		r = db_run(conn, false, import_sql[rows[start].kind], 2, params, bulk_ms);
		free(text);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || (size_t)PQntuples(r) != end - start) {
			const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
			bool refused = state != NULL && (strncmp(state, "22", 2) == 0 ||
			                                 strncmp(state, "23", 2) == 0);
			if (!refused) {
				log_warn("event=import_failed error=\"%.200s\"",
				         m != NULL ? m : "no result");
				PQclear(r);
				goto rollback;
			}
			char msg[200];
			snprintf(msg, sizeof(msg),
			         "the database refused a row of lines %zu-%zu: %s",
			         rows[start].line, rows[end - 1].line, m != NULL ? m : "?");
			bulk_error_add(errs, rows[start].line, NULL, "invalid_value", msg);
			counts->failed += end - start;
			PQclear(r);
			st = ADMIN_DONE;
			goto rollback; /* the transaction is aborted: nothing can be kept */
		}
		for (int i = 0; i < PQntuples(r); i++) {
			const char *code = PQgetvalue(r, i, 1);
			const struct admin_import_row *row = &rows[start + (size_t)i];
			if (strcmp(code, "created") == 0) {
				counts->created++;
			} else if (strcmp(code, "updated") == 0) {
				counts->updated++;
			} else if (strcmp(code, "unchanged") == 0) {
				counts->unchanged++;
			} else {
				const char *field;
				const char *msg = import_message(code, &field);
				bulk_error_add(errs, row->line, field, code, msg);
				counts->failed++;
			}
		}
		PQclear(r);
		start = end;
	}
	st = ADMIN_DONE;
	if (dry_run || (all_or_nothing && counts->failed > 0))
		goto rollback;
	r = db_run(conn, false, "COMMIT", 0, NULL, bulk_ms);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		st = ADMIN_UNAVAILABLE;
		goto release;
	}
	*applied_r = true;
	goto release;
rollback:
	if (PQtransactionStatus(conn) != PQTRANS_ACTIVE) /* else the pool closes it */
		PQclear(db_run(conn, false, "ROLLBACK", 0, NULL, dbpool_timeout_ms(a->pool)));
release:
	dbpool_release(a->pool, conn);
	return st;
}

struct admin_export {
	struct admin *admin;
	PGconn *conn;
	unsigned kinds;
	int kind;  /* the kind being read; -1 before the first */
	bool open; /* a cursor is declared for kind */
	bool failed;
};

static const char *const export_query[] = {
	[RESOURCE_DOMAIN] = "DECLARE mq_export NO SCROLL CURSOR FOR"
	                    " SELECT mq_domain_doc(t)::text FROM domains t ORDER BY t.name",
	[RESOURCE_MAILBOX] = "DECLARE mq_export NO SCROLL CURSOR FOR"
	                     " SELECT mq_mailbox_doc(t)::text FROM mailboxes t ORDER BY t.address",
	[RESOURCE_ALIAS] = "DECLARE mq_export NO SCROLL CURSOR FOR"
	                   " SELECT mq_alias_doc(t)::text FROM aliases t ORDER BY t.address",
};

static bool exec_cmd(struct admin *a, PGconn *conn, const char *sql)
{
	PGresult *r = db_run(conn, false, sql, 0, NULL, bulk_timeout_ms(a));
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		log_warn("event=export_failed error=\"%.200s\"",
		         r != NULL ? PQresultErrorMessage(r) : "no answer in time");
	PQclear(r);
	return ok;
}

struct admin_export *admin_export_open(struct admin *a, unsigned kinds)
{
	const char *why;
	PGconn *conn = dbpool_acquire(a->pool, &why);
	if (conn == NULL)
		return NULL;
	/* one snapshot for every kind: the export is consistent */
	if (!exec_cmd(a, conn,
	              bulk_begin(a, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").data)) {
		dbpool_release(a->pool, conn);
		return NULL;
	}
	struct admin_export *x = xcalloc(1, sizeof(*x));
	x->admin = a;
	x->conn = conn;
	x->kinds = kinds;
	x->kind = -1;
	return x;
}

int admin_export_next(struct admin_export *x, enum bulk_format fmt, struct buf *out)
{
	while (!x->failed) {
		if (!x->open) {
			do
				x->kind++;
			while (x->kind <= RESOURCE_ALIAS && (x->kinds & (1u << x->kind)) == 0);
			if (x->kind > RESOURCE_ALIAS)
				return 0;
			if (!exec_cmd(x->admin, x->conn, export_query[x->kind]))
				break;
			x->open = true;
		}
		PGresult *r = db_run(x->conn, false, "FETCH 1000 FROM mq_export", 0, NULL,
		                     bulk_timeout_ms(x->admin));
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			PQclear(r);
			break;
		}
		int rows = PQntuples(r);
		for (int i = 0; i < rows; i++) {
			json_t *doc = json_loads(PQgetvalue(r, i, 0), 0, NULL);
			int rc = doc != NULL
			                 ? bulk_write(fmt, (enum resource_kind)x->kind, doc, out)
			                 : -1;
			json_decref(doc);
			if (rc < 0) {
				PQclear(r);
				log_warn("event=export_failed error=\"cannot write a row\"");
				x->failed = true;
				return -1;
			}
		}
		PQclear(r);
		if (rows > 0)
			return 1;
		if (!exec_cmd(x->admin, x->conn, "CLOSE mq_export"))
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
	if (PQtransactionStatus(x->conn) != PQTRANS_ACTIVE) /* else the pool closes it */
		PQclear(db_run(x->conn, false, "ROLLBACK", 0, NULL,
		               dbpool_timeout_ms(x->admin->pool)));
	dbpool_release(x->admin->pool, x->conn);
	free(x);
	*xp = NULL;
}
