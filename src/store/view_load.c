/*
 * view_load: reads domains, mailboxes, aliases and usable API tokens from PostgreSQL with COPY
 * in text format and puts them into a vindex. It holds the view's read queries, one row of a
 * table per kind; the listener thread of view.c is its only caller.
 *
 * It must never put a row it could not parse whole (every number is parsed strictly and
 * range-checked; a bad row fails the load, and the view keeps its previous state), and never
 * leave a COPY half-read (the connection would be unusable).
 */
#include "view_load.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "copytext.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

/* The fixed text of a query, around the id list: far less than this. */
#define QUERY_TEXT_MAX 1024

struct load_ctx {
	struct vindex *vi;
	int64_t *targets; /* scratch for an alias's targets, reused from row to row */
	size_t targets_cap;
};

typedef int (*row_fn)(struct load_ctx *c, const struct copytext_row *r, const char **error_r);

/* ---- fields ---- */

/* A limit: NULL is unset. */
static int get_limit(const struct copytext_row *r, int i, struct quota_limit *out)
{
	if (r->null[i]) {
		out->has = false;
		out->value = 0;
		return 0;
	}
	out->has = true;
	return strnum_u64(r->f[i], strlen(r->f[i]), INT64_MAX, &out->value);
}

/* A number that may not be NULL (an id, a usage counter, a time). */
static int get_u64(const struct copytext_row *r, int i, uint64_t *out)
{
	if (r->null[i])
		return -1;
	return strnum_u64(r->f[i], strlen(r->f[i]), INT64_MAX, out);
}

static int get_id(const struct copytext_row *r, int i, int64_t *out)
{
	uint64_t v;
	if (get_u64(r, i, &v) < 0)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* A grace percentage: NULL is -1 (unset). */
static int get_grace(const struct copytext_row *r, int i, int *out)
{
	uint64_t v;
	if (r->null[i]) {
		*out = -1;
		return 0;
	}
	if (strnum_u64(r->f[i], strlen(r->f[i]), QUOTA_GRACE_PERCENT_MAX, &v) < 0)
		return -1;
	*out = (int)v;
	return 0;
}

/* A warning level (smallint NOT NULL, 0 for none), at most VINDEX_WARN_MAX. */
static int get_level(const struct copytext_row *r, int i, unsigned *out)
{
	uint64_t v;
	if (r->null[i] || strnum_u64(r->f[i], strlen(r->f[i]), VINDEX_WARN_MAX, &v) < 0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* An alias's policy: NULL is the installation's (DEFAULT), else "any" or "all" (the column's
   CHECK allows no other). */
static int get_policy(const struct copytext_row *r, int i, enum store_alias_policy *out)
{
	if (r->null[i])
		*out = STORE_POLICY_DEFAULT;
	else if (strcmp(r->f[i], "any") == 0)
		*out = STORE_POLICY_ANY;
	else if (strcmp(r->f[i], "all") == 0)
		*out = STORE_POLICY_ALL;
	else
		return -1;
	return 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* ---- one row of each kind ---- */

static int domain_row(struct load_ctx *c, const struct copytext_row *r, const char **error_r)
{
	struct vindex_domain d;
	if (r->n != 8 || r->null[1] || get_id(r, 0, &d.id) < 0 || get_limit(r, 2, &d.pool) < 0 ||
	    get_limit(r, 3, &d.default_storage) < 0 || get_limit(r, 4, &d.default_messages) < 0 ||
	    get_limit(r, 5, &d.default_max_size) < 0 || get_limit(r, 6, &d.max_size) < 0 ||
	    get_grace(r, 7, &d.grace_percent) < 0) {
		*error_r = "malformed domain row";
		return -1;
	}
	d.name = r->f[1];
	return vindex_put_domain(c->vi, &d, error_r);
}

static int mailbox_row(struct load_ctx *c, const struct copytext_row *r, const char **error_r)
{
	struct vindex_mailbox m;
	if (r->n != 12 || r->null[2] || get_id(r, 0, &m.id) < 0 || get_id(r, 1, &m.domain_id) < 0 ||
	    get_limit(r, 3, &m.storage) < 0 || get_limit(r, 4, &m.messages) < 0 ||
	    get_limit(r, 5, &m.max_size) < 0 || get_grace(r, 6, &m.grace_percent) < 0 ||
	    get_u64(r, 7, &m.used_bytes) < 0 || get_u64(r, 8, &m.used_messages) < 0 || r->null[9] ||
	    get_level(r, 10, &m.warn_storage) < 0 || get_level(r, 11, &m.warn_messages) < 0) {
		*error_r = "malformed mailbox row";
		return -1;
	}
	m.local = r->f[2];
	m.enabled = r->f[9][0] == 't';
	return vindex_put_mailbox(c->vi, &m, error_r);
}

static int alias_row(struct load_ctx *c, const struct copytext_row *r, const char **error_r)
{
	struct vindex_alias a;
	*error_r = "malformed alias row";
	if (r->n != 5 || r->null[3] || get_id(r, 0, &a.id) < 0 || get_id(r, 1, &a.domain_id) < 0 ||
	    get_policy(r, 4, &a.policy) < 0)
		return -1;
	a.local = r->null[2] ? NULL : r->f[2];
	/* "12,15,40", in the order the query gives (ascending) */
	const char *p = r->f[3];
	size_t n = p[0] == '\0' ? 0 : 1;
	for (const char *q = p; *q; q++)
		n += *q == ',';
	if (n > c->targets_cap) {
		/* n is at most the length of one COPY line (under 2 GiB): the product cannot wrap
		 */
		c->targets = xrealloc(c->targets, n * sizeof(*c->targets));
		c->targets_cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		uint64_t v;
		if (strnum_u64(p, len, INT64_MAX, &v) < 0)
			return -1;
		c->targets[i] = (int64_t)v;
		p += len + (comma ? 1 : 0);
	}
	a.targets = c->targets;
	a.ntargets = n;
	return vindex_put_alias(c->vi, &a, error_r);
}

static int token_row(struct load_ctx *c, const struct copytext_row *r, const char **error_r)
{
	struct store_token t;
	uint64_t exp;
	*error_r = "malformed token row";
	if (r->n != 5 || get_id(r, 0, &t.id) < 0 || r->null[1] || get_id(r, 2, &t.mailbox_id) < 0 ||
	    r->null[3] || strlen(r->f[3]) != 2 * TOKEN_HASH_LEN || get_u64(r, 4, &exp) < 0)
		return -1;
	if (token_scope_parse(r->f[1], &t.scope) < 0) {
		/* a scope a newer release added (a newer daemon on the same database made it):
		   this daemon does not know the token, and loads everything else */
		static atomic_bool said;
		if (!atomic_exchange(&said, true))
			log_warn("event=token_scope_unknown token=%lld scope=\"%.20s\" note=\"a "
			         "newer release's scope: upgrade this daemon to accept it\"",
			         (long long)t.id, r->f[1]);
		return 0;
	}
	t.expires = (int64_t)exp;
	for (size_t i = 0; i < TOKEN_HASH_LEN; i++) {
		int hi = hexval(r->f[3][2 * i]), lo = hexval(r->f[3][2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		t.hash[i] = (uint8_t)(hi << 4 | lo);
	}
	return vindex_put_token(c->vi, &t, error_r);
}

/* ---- the queries ---- */

struct kind_query {
	const char *select; /* "SELECT columns FROM table [WHERE ...]" */
	const char *by_id;  /* appended to select, then the id list and "}'::bigint[])" */
	row_fn row;
};

static const struct kind_query queries[VINDEX_KINDS] = {
	[VINDEX_DOMAIN] = { "SELECT id, name, pool_limit_bytes, default_storage_limit_bytes,"
	                    " default_message_limit, default_max_message_size, max_message_size,"
	                    " grace_percent FROM domains",
	                    " WHERE id = ANY('{", domain_row },
	[VINDEX_MAILBOX] = { "SELECT id, domain_id, local_part, storage_limit_bytes, message_limit,"
	                     " max_message_size, grace_percent, used_bytes, used_messages, enabled,"
	                     " warn_storage, warn_messages FROM mailboxes",
	                     " WHERE id = ANY('{", mailbox_row },
	[VINDEX_ALIAS] = { "SELECT a.id, a.domain_id, a.local_part,"
	                   " (SELECT coalesce(string_agg(t.mailbox_id::text, ','"
	                   " ORDER BY t.mailbox_id), '') FROM alias_targets t"
	                   " WHERE t.alias_id = a.id), a.policy FROM aliases a",
	                   " WHERE a.id = ANY('{", alias_row },
	[VINDEX_TOKEN] = { "SELECT id, scope, coalesce(mailbox_id, 0), encode(secret_hash, 'hex'),"
	                   " coalesce(extract(epoch FROM expires_at)::bigint, 0) FROM api_tokens"
	                   " WHERE revoked_at IS NULL",
	                   " AND id = ANY('{", token_row },
};

/* Run the COPY of sql and call fn per row. 0, or -1 with a logged reason. */
static int copy_rows(PGconn *conn, const char *sql, row_fn fn, struct load_ctx *c)
{
	PGresult *r = PQexec(conn, sql);
	if (PQresultStatus(r) != PGRES_COPY_OUT) {
		const char *m = PQresultErrorMessage(r);
		log_warn("event=view_query_failed error=\"%.*s\"", (int)strcspn(m, "\n"), m);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	int ret = 0;
	for (;;) {
		char *line;
		int len = PQgetCopyData(conn, &line, 0);
		if (len == -1)
			break; /* done */
		if (len < 0) {
			ret = -1;
			break;
		}
		struct copytext_row row;
		const char *why =
		        "malformed COPY text row, or more than COPYTEXT_FIELDS_MAX fields";
		if (ret == 0 &&
		    (copytext_parse_line(line, (size_t)len, &row) < 0 || fn(c, &row, &why) < 0)) {
			log_error("event=view_bad_row error=\"%s\" note=\"a row did not parse; the "
			          "view keeps its previous state\"",
			          why);
			ret = -1; /* keep reading to the end so the connection stays usable */
		}
		PQfreemem(line);
	}
	r = PQgetResult(conn);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		ret = -1;
	PQclear(r);
	while ((r = PQgetResult(conn)) != NULL)
		PQclear(r);
	return ret;
}

int view_load_rows(PGconn *conn, enum vindex_kind kind, const char *ids, struct vindex *vi)
{
	const struct kind_query *q = &queries[kind];
	struct buf sql;
	buf_init(&sql, QUERY_TEXT_MAX + (ids != NULL ? strlen(ids) : 0));
	int rc = ids == NULL ? buf_printf(&sql, "COPY (%s) TO STDOUT", q->select)
	                     : buf_printf(&sql, "COPY (%s%s%s}'::bigint[])) TO STDOUT", q->select,
	                                  q->by_id, ids);
	if (rc < 0) {
		buf_free(&sql);
		log_error("event=view_query_too_long kind=%d", (int)kind);
		return -1;
	}
	struct load_ctx c = { vi, NULL, 0 };
	rc = copy_rows(conn, sql.data, q->row, &c);
	free(c.targets);
	buf_free(&sql);
	return rc;
}
