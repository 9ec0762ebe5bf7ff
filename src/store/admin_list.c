/*
 * admin_list: the admin API's lists, its audit log and the warning events. Lists are
 * keyset-paginated (a cursor names the last row's sort key and id, so pages stay stable while rows
 * change) and use only filters and orders with an index behind them. Domains carry their usage
 * figures (sql/011_domain_usage.sql): a domain page reads them exactly, as folded plus not yet
 * folded, and may be sorted and filtered by them. It must never build SQL from untrusted text:
 * values travel as parameters, and the only text spliced into a query comes from the tables below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "admin_internal.h"
#include "cursor.h"
#include "strnum.h"

#define LIST_SQL_MAX    (8 * 1024) /* a built list query: our text and parameter numbers only */
#define LIST_PARAMS_MAX 12

/* One sort order: the column it orders by, the text form of its key, and the key's type. */
struct sort_order {
	const char *name;
	const char *column;
	const char *key_text;
	const char *key_type;
};

/* Domains: columns of the derived table s of domain_page() (id: the domain's, uid: the same
   value from domain_usage, whose indexes end in it). */
static const struct sort_order domain_sorts[] = {
	{ "name", "s.name", "s.name", "text" },
	{ "updated_at", "s.updated_at", "mq_ts(s.updated_at)", "timestamptz" },
	{ "bytes", "s.bytes", "s.bytes::text", "numeric" },
	{ "messages", "s.messages", "s.messages::text", "numeric" },
	{ "mailboxes", "s.mailboxes", "s.mailboxes::text", "bigint" },
	{ "over_quota", "s.over_quota", "s.over_quota::text", "bigint" },
	{ "pool_usage", "s.pool_ratio", "s.pool_ratio::text", "float8" },
};
#define DOMAIN_SORTS_BY_USAGE 2 /* domain_sorts[2..]: by a figure of domain_usage */
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
	[RESOURCE_DOMAIN] = LK("domains t", "mq_domain_doc(t)", domain_sorts), /* domain_page() */
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

/* Append one page from a query whose rows are (doc, key, id): 0, or -1 when out cannot hold it
   (out then holds part of it). */
static int write_page(const PGresult *r, unsigned limit, const char *sort, struct buf *out)
{
	int rows = PQntuples(r);
	bool more = rows > (int)limit;
	if (more)
		rows = (int)limit;
	if (buf_puts(out, "{\"items\":[") < 0)
		return -1;
	for (int i = 0; i < rows; i++)
		if ((i > 0 && buf_puts(out, ",") < 0) || buf_puts(out, PQgetvalue(r, i, 0)) < 0)
			return -1;
	if (buf_puts(out, "],\"next_cursor\":") < 0)
		return -1;
	if (more) {
		const char *key = PQgetvalue(r, rows - 1, 1), *id = PQgetvalue(r, rows - 1, 2);
		/* keys and ids are UTF-8 text from PostgreSQL */
		if (buf_puts(out, "\"") < 0 || cursor_encode(sort, key, id, out) < 0 ||
		    buf_puts(out, "\"") < 0)
			return -1;
	} else if (buf_puts(out, "null") < 0) {
		return -1;
	}
	return buf_puts(out, "}");
}

/* Run a built list query and write its page: as admin_list() returns, with refused_why for a
   value the database refused. */
static int run_page(struct admin *a, const struct buf *sql, int n, const char *const *params,
                    unsigned limit, const char *sort, const char *refused_why, struct buf *out,
                    const char **error_r)
{
	PGresult *r;
	int rc = admin_run(a, "list", sql->data, n, params, &r, NULL, error_r);
	if (rc != 0) {
		if (rc > 0)
			*error_r = refused_why;
		return rc;
	}
	rc = write_page(r, limit, sort, out);
	PQclear(r);
	if (rc < 0) {
		*error_r = "the page is larger than a response may be: ask for fewer items (limit)";
		return 1;
	}
	return 0;
}

/*
 * A page of domains, each with its figures now (sql/011): the union of the domains without
 * pending deltas, whose figures are domain_usage's (ordered and cut to the page inside, so that
 * a usage order walks its index on domain_usage and a name order the domains' index), and the
 * few with pending deltas, summed (domain_usage_pending); then ordered and cut again. Both
 * halves are the derived table s, so one text of conditions serves both and the outer query.
 */
#define DOMAIN_HALF(from)                                                                   \
	"SELECT * FROM (SELECT t AS d, t.id, n.domain_id AS uid, t.name, t.updated_at,"     \
	" t.pool_limit_bytes, n.bytes, n.messages, n.mailboxes, n.over_quota, n.pool_ratio" \
	" FROM domains t JOIN " from " n ON n.domain_id = t.id) s WHERE true"
#define DOMAIN_FOLDED                                         \
	DOMAIN_HALF("domain_usage")                           \
	" AND NOT EXISTS (SELECT 1 FROM domain_usage_delta x" \
	" WHERE x.domain_id = s.uid)"
#define DOMAIN_PENDING DOMAIN_HALF("domain_usage_pending")

/* The conditions of q on domains (s), with its parameters: into cond. */
static void domain_conditions(const struct admin_query *q, const char **params, int *n,
                              struct buf *cond)
{
	if (q->domain != NULL)
		params_add(params, n, q->domain, cond, " AND s.name = ", "");
	if (q->updated_since != NULL)
		params_add(params, n, q->updated_since, cond,
		           " AND s.updated_at >= ", "::timestamptz");
	if (q->prefix != NULL) {
		/* LIKE 'prefix%' in collation "C" is a range of domains_name_c_idx (sql/008);
		   the prefix's own \ % and _ are escaped */
		params[(*n)++] = q->prefix;
		if (buf_printf(cond,
		               " AND s.name COLLATE \"C\" LIKE replace(replace(replace($%d, '\\',"
		               " '\\\\'), '%%', '\\%%'), '_', '\\_') || '%%'",
		               *n) < 0)
			abort();
	}
	if (q->over_quota >= 0 &&
	    buf_puts(cond, q->over_quota ? " AND s.over_quota > 0" : " AND s.over_quota = 0") < 0)
		abort();
	if (q->min_pool_percent != NULL) {
		/* the ratio index narrows (a domain without a pool limit has -1); the exact
		   comparison in numeric decides */
		params_add(params, n, q->min_pool_percent, cond,
		           " AND s.pool_ratio >= ", "::float8 / 100 * (1 - 1e-12)");
		if (buf_printf(cond,
		               " AND ((s.pool_limit_bytes = 0 AND s.bytes > 0) OR s.bytes * 100 >="
		               " s.pool_limit_bytes::numeric * $%d::numeric)",
		               *n) < 0)
			abort();
	}
}

static int domain_page(struct admin *a, const struct admin_query *q, const char *sort,
                       const struct sort_order *so, struct buf *out, const char **error_r)
{
	bool desc = sort[0] == '-';
	/* the tie-breaker: the id of the table whose index the order walks */
	const char *id = so - domain_sorts >= DOMAIN_SORTS_BY_USAGE ? "s.uid" : "s.id";
	const char *dir = desc ? "DESC" : "ASC";
	const char *params[LIST_PARAMS_MAX];
	int n = 0;
	struct buf cond, sql;
	buf_init(&cond, LIST_SQL_MAX); /* our text only: overflowing it is our bug */
	buf_init(&sql, LIST_SQL_MAX);
	domain_conditions(q, params, &n, &cond);
	json_t *cur = NULL;
	if (q->cursor != NULL) {
		const char *key, *kid;
		if (cursor_decode(q->cursor, sort, &cur, &key, &kid) < 0) {
			buf_free(&cond);
			buf_free(&sql);
			*error_r =
			        "cursor is not one this list gave out (or the sort order changed)";
			return 1;
		}
		params[n++] = key;
		params[n++] = kid;
		if (buf_printf(&cond, " AND (%s, %s) %s ($%d::%s, $%d::bigint)", so->column, id,
		               desc ? "<" : ">", n - 1, so->key_type, n) < 0)
			abort();
	}
	char lim[16];
	snprintf(lim, sizeof(lim), "%u", q->limit + 1);
	params[n++] = lim;
	const char *c = cond.data != NULL ? cond.data : "";
	if (buf_printf(&sql,
	               "SELECT mq_domain_doc_with(s.d, s.bytes, s.messages, s.mailboxes,"
	               " s.over_quota)::text, %s, s.id::text FROM ((" DOMAIN_FOLDED
	               "%s ORDER BY %s %s, %s %s LIMIT $%d) UNION ALL (" DOMAIN_PENDING
	               "%s)) s ORDER BY %s %s, %s %s LIMIT $%d",
	               so->key_text, c, so->column, dir, id, dir, n, c, so->column, dir, id, dir,
	               n) < 0)
		abort();
	int rc = run_page(a, &sql, n, params, q->limit, sort,
	                  "a cursor or filter value is malformed", out, error_r);
	buf_free(&cond);
	buf_free(&sql);
	json_decref(cur);
	return rc;
}

int admin_list(struct admin *a, const struct admin_query *q, struct buf *out, const char **error_r)
{
	const struct list_kind *lk = &list_kinds[q->kind];
	const char *sort = q->sort != NULL ? q->sort : lk->sorts[0].name;
	bool desc = sort[0] == '-';
	const struct sort_order *so = NULL;
	for (size_t i = 0; i < lk->nsorts; i++)
		if (strcmp(lk->sorts[i].name, sort + desc) == 0)
			so = &lk->sorts[i];
	if (so == NULL) {
		*error_r = "unknown sort order for this list";
		return 1;
	}
	if (q->kind == RESOURCE_DOMAIN)
		return domain_page(a, q, sort, so, out, error_r);
	const char *params[LIST_PARAMS_MAX];
	int n = 0;
	struct buf sql;
	buf_init(&sql, LIST_SQL_MAX); /* our text only: overflowing it is our bug */
	if (buf_printf(&sql, "SELECT %s::text, %s, t.id::text FROM %s WHERE true", lk->doc,
	               so->key_text, lk->from) < 0)
		abort();
	if (q->domain != NULL)
		params_add(params, &n, q->domain, &sql,
		           " AND t.domain_id = (SELECT id FROM domains WHERE name = ", ")");
	if (q->updated_since != NULL)
		params_add(params, &n, q->updated_since, &sql,
		           " AND t.updated_at >= ", "::timestamptz");
	if (q->prefix != NULL) {
		/* addresses are in collation "C" (sql/007), so LIKE 'prefix%' is an index range;
		   the prefix's own \ % and _ are escaped */
		params[n++] = q->prefix;
		if (buf_printf(&sql,
		               " AND t.address LIKE replace(replace(replace($%d, '\\', '\\\\'),"
		               " '%%', '\\%%'), '_', '\\_') || '%%'",
		               n) < 0)
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
			*error_r =
			        "cursor is not one this list gave out (or the sort order changed)";
			return 1;
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
	int rc = run_page(a, &sql, n, params, q->limit, sort,
	                  "a cursor or filter value is malformed", out, error_r);
	buf_free(&sql);
	json_decref(cur);
	return rc;
}

/*
 * Finish a newest-first log's query (the audit log, warnings) built in sql with params[0..n):
 * the page after q->cursor (a "-id" cursor) by column id, the order and the limit; run it and
 * write the page, as admin_list() returns (1 also for a cursor not handed out here). Frees sql.
 */
static int run_log_page(struct admin *a, const struct admin_query *q, const char *id,
                        const char **params, int n, struct buf *sql, struct buf *out,
                        const char **error_r)
{
	json_t *cur = NULL; /* the decoded cursor: the key points into it */
	if (q->cursor != NULL) {
		const char *k, *unused;
		uint64_t v;
		if (cursor_decode(q->cursor, "-id", &cur, &k, &unused) < 0 ||
		    strnum_u64(k, strlen(k), INT64_MAX, &v) < 0) {
			json_decref(cur);
			buf_free(sql);
			*error_r = "cursor is not one this list gave out";
			return 1;
		}
		params[n++] = k;
		if (buf_printf(sql, " AND %s < $%d::bigint", id, n) < 0)
			abort();
	}
	char lim[16];
	snprintf(lim, sizeof(lim), "%u", q->limit + 1);
	params[n++] = lim;
	if (buf_printf(sql, " ORDER BY %s DESC LIMIT $%d", id, n) < 0)
		abort();
	int rc = run_page(a, sql, n, params, q->limit, "-id", "a filter value is malformed", out,
	                  error_r);
	buf_free(sql);
	json_decref(cur);
	return rc;
}

int admin_audit(struct admin *a, const struct admin_query *q, struct buf *out, const char **error_r)
{
	const char *params[LIST_PARAMS_MAX];
	int n = 0;
	struct buf sql;
	buf_init(&sql, LIST_SQL_MAX); /* our text only: overflowing it is our bug */
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
	return run_log_page(a, q, "l.id", params, n, &sql, out, error_r);
}

int admin_warnings(struct admin *a, const struct admin_query *q, struct buf *out,
                   const char **error_r)
{
	const char *params[LIST_PARAMS_MAX];
	int n = 0;
	struct buf sql;
	buf_init(&sql, LIST_SQL_MAX); /* our text only: overflowing it is our bug */
	if (buf_puts(&sql, "SELECT mq_warning_doc(e)::text, e.id::text, e.id::text"
	                   " FROM warning_events e WHERE true") < 0)
		abort();
	if (q->object != NULL)
		params_add(params, &n, q->object, &sql, " AND e.address = ", "");
	if (q->state != NULL)
		params_add(params, &n, q->state, &sql,
		           " AND e.id IN (SELECT event_id FROM warning_deliveries WHERE state = ",
		           ")");
	if (q->updated_since != NULL)
		params_add(params, &n, q->updated_since, &sql,
		           " AND e.created_at >= ", "::timestamptz");
	return run_log_page(a, q, "e.id", params, n, &sql, out, error_r);
}
