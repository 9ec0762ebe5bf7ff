/*
 * admin_list: the admin API's lists and its audit log. Lists are keyset-paginated (a cursor
 * names the last row's sort key and id, so pages stay stable while rows change) and use only
 * filters and orders with an index behind them. It must never build SQL from untrusted text:
 * values travel as parameters, and the only text spliced into a query comes from the tables
 * below.
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
	const char *params[LIST_PARAMS_MAX];
	int n = 0;
	struct buf sql;
	buf_init(&sql, LIST_SQL_MAX); /* our text only: overflowing it is our bug */
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
	json_t *cur = NULL;
	if (q->cursor != NULL) {
		const char *k, *unused;
		uint64_t id;
		if (cursor_decode(q->cursor, "-id", &cur, &k, &unused) < 0 ||
		    strnum_u64(k, strlen(k), INT64_MAX, &id) < 0) {
			json_decref(cur);
			buf_free(&sql);
			*error_r = "cursor is not one this list gave out";
			return 1;
		}
		params_add(params, &n, k, &sql, " AND l.id < ", "::bigint");
	}
	char lim[16];
	snprintf(lim, sizeof(lim), "%u", q->limit + 1);
	params_add(params, &n, lim, &sql, " ORDER BY l.id DESC LIMIT ", "");
	int rc = run_page(a, &sql, n, params, q->limit, "-id", "a filter value is malformed", out,
	                  error_r);
	buf_free(&sql);
	json_decref(cur);
	return rc;
}
