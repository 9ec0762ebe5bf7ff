/*
 * http_admin_list: the admin API's lists (domains, mailboxes, aliases, tokens), its audit log
 * and the warning events over HTTP, and the query parameters every admin request reads. Each list
 * names the parameters it takes; any other, a repeated one, an empty or malformed value is refused
 * with 400 before the database is asked. It must never hand admin.c a value it has not checked, and
 * never keep more than HTTP_QUERY_PARAMS_MAX parameters or a value longer than
 * HTTP_PARAM_VALUE_MAX.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "http_internal.h"
#include "resource.h"
#include "rfc3339.h"
#include "strnum.h"
#include "xalloc.h"

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
	(void)kind;
	struct http_query *q = cls;
	if (q->n == HTTP_QUERY_PARAMS_MAX) {
		q->too_many = true;
		return MHD_NO;
	}
	if (value != NULL && strlen(value) > HTTP_PARAM_VALUE_MAX)
		q->too_long = true;
	q->p[q->n].name = key;
	q->p[q->n].value = value != NULL ? value : "";
	q->n++;
	return MHD_YES;
}

void http_query_collect(struct MHD_Connection *conn, struct http_query *q)
{
	q->n = 0;
	q->too_many = q->too_long = false;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect, q);
}

bool http_query_bool(const char *v, int *out)
{
	if (strcmp(v, "true") == 0)
		*out = 1;
	else if (strcmp(v, "false") == 0)
		*out = 0;
	else
		return false;
	return true;
}

struct http_reply http_query_error(const char *name, const char *why)
{
	char n[48], msg[200]; /* the name is cut to 40 characters */
	str_sanitize(n, sizeof(n), name, strlen(name), 40);
	snprintf(msg, sizeof(msg), "%s %s", n, why);
	return http_error_field(400, "invalid_parameter", n, msg);
}

/* Which parameters each list takes. */
static const char *const list_params[][12] = {
	[RESOURCE_DOMAIN] = { "limit", "cursor", "sort", "prefix", "updated_since", "over_quota",
	                      "min_pool_percent", NULL },
	[RESOURCE_MAILBOX] = { "limit", "cursor", "sort", "prefix", "updated_since", "domain",
	                       "min_usage_percent", "over_quota", "enabled", NULL },
	[RESOURCE_ALIAS] = { "limit", "cursor", "sort", "prefix", "updated_since", "domain", NULL },
	[RESOURCE_TOKEN] = { "limit", "cursor", "include_revoked", NULL },
};
static const char *const audit_params[] = { "limit", "cursor", "object", "action",
	                                    "token", "since",  "until",  NULL };
static const char *const warnings_params[] = {
	"limit", "cursor", "state", "mailbox", "since", NULL
};

#define RFC3339_EXAMPLE "must be an RFC 3339 time such as 2026-11-22T10:00:00Z"

/* Take parameter name=v (known, given once, not empty) into q: NULL, or what is wrong. */
static const char *take_param(struct http_server *srv, const char *name, const char *v,
                              struct admin_query *q, struct resource_key *dom)
{
	uint64_t u;
	const char *w;
	if (strcmp(name, "limit") == 0) {
		if (strnum_u64(v, strlen(v), ADMIN_LIST_MAX, &u) < 0 || u == 0)
			return "must be an integer from 1 to 1000";
		q->limit = (unsigned)u;
	} else if (strcmp(name, "cursor") == 0) {
		q->cursor = v;
	} else if (strcmp(name, "sort") == 0) {
		q->sort = v;
	} else if (strcmp(name, "prefix") == 0) {
		q->prefix = v;
		if (strlen(v) > ADDRESS_MAX)
			return "is too long";
	} else if (strcmp(name, "updated_since") == 0 || strcmp(name, "since") == 0) {
		q->updated_since = v;
		if (!rfc3339_valid(v))
			return RFC3339_EXAMPLE;
	} else if (strcmp(name, "until") == 0) {
		q->until = v;
		if (!rfc3339_valid(v))
			return RFC3339_EXAMPLE;
	} else if (strcmp(name, "domain") == 0) {
		if (resource_key_parse(RESOURCE_DOMAIN, v, &srv->cfg->address_rules, dom, &w) < 0)
			return "must be a domain name";
		q->domain = dom->domain;
	} else if (strcmp(name, "min_usage_percent") == 0) {
		q->min_usage_percent = v;
		if (strnum_u64(v, strlen(v), 1000000, &u) < 0)
			return "must be an integer percentage from 0 to 1000000";
	} else if (strcmp(name, "min_pool_percent") == 0) {
		q->min_pool_percent = v;
		if (strnum_u64(v, strlen(v), 1000000, &u) < 0)
			return "must be an integer percentage from 0 to 1000000";
	} else if (strcmp(name, "over_quota") == 0) {
		if (!http_query_bool(v, &q->over_quota))
			return "must be true or false";
	} else if (strcmp(name, "enabled") == 0) {
		if (!http_query_bool(v, &q->enabled))
			return "must be true or false";
	} else if (strcmp(name, "include_revoked") == 0) {
		int b = 0;
		if (!http_query_bool(v, &b))
			return "must be true or false";
		q->include_revoked = b == 1;
	} else if (strcmp(name, "state") == 0) {
		static const char *const states[] = { "pending", "delivered", "failed" };
		for (size_t i = 0; i < 3 && q->state == NULL; i++)
			if (strcmp(v, states[i]) == 0)
				q->state = states[i];
		if (q->state == NULL)
			return "must be pending, delivered or failed";
	} else if (strcmp(name, "mailbox") == 0) {
		if (resource_key_parse(RESOURCE_MAILBOX, v, &srv->cfg->address_rules, dom, &w) < 0)
			return "must be a mailbox address";
		q->object = dom->text;
	} else if (strcmp(name, "object") == 0) {
		q->object = v;
	} else if (strcmp(name, "action") == 0) {
		q->action = v;
	} else if (strcmp(name, "token") == 0) {
		if (strnum_u64(v, strlen(v), INT64_MAX, &u) < 0 || u == 0)
			return "must be a token id";
		q->token_id = (int64_t)u;
	}
	return NULL;
}

/*
 * Fill *q from the query string, refusing unknown, repeated, empty or malformed parameters.
 * 0, or -1 with the reply. Strings in *q point into MHD's storage or into dom (the normalised
 * domain), valid for the request.
 */
static int parse_query(struct http_server *srv, struct MHD_Connection *conn,
                       const char *const *allowed, struct admin_query *q, struct resource_key *dom,
                       struct http_reply *err_r)
{
	struct http_query c;
	http_query_collect(conn, &c);
	if (c.too_many || c.too_long) {
		*err_r = http_error(400, "invalid_parameter",
		                    c.too_many ? "too many query parameters"
		                               : "a query parameter value is too long");
		return -1;
	}
	q->limit = ADMIN_LIST_DEFAULT;
	q->over_quota = -1;
	q->enabled = -1;
	for (size_t i = 0; i < c.n; i++) {
		const char *name = c.p[i].name, *v = c.p[i].value, *why = NULL;
		bool known = false;
		for (size_t k = 0; allowed[k] != NULL; k++)
			known |= strcmp(allowed[k], name) == 0;
		for (size_t k = 0; k < i; k++)
			if (strcmp(c.p[k].name, name) == 0)
				why = "is given twice";
		if (!known)
			why = "is not a parameter of this list";
		else if (why == NULL && v[0] == '\0')
			why = "is empty";
		else if (why == NULL)
			why = take_param(srv, name, v, q, dom);
		if (why != NULL) {
			*err_r = http_query_error(name, why);
			return -1;
		}
	}
	return 0;
}

/* The answer of admin_list() or admin_audit(), which returned rc into out. */
static struct http_reply page_reply(int rc, struct buf *out, const char *error)
{
	if (rc == 0)
		return http_reply_text(200, out);
	buf_free(out);
	free(out);
	return rc < 0 ? http_admin_unavailable(error) : http_error(400, "invalid_parameter", error);
}

/* A buffer for a page: at most a response's worth. */
static struct buf *page_buffer(void)
{
	struct buf *out = xmalloc(sizeof(*out));
	buf_init(out, HTTP_RESPONSE_MAX);
	return out;
}

struct http_reply http_admin_list(struct http_server *srv, struct MHD_Connection *conn,
                                  struct http_request *req)
{
	struct admin_query q = { .kind = (enum resource_kind)req->arg };
	struct resource_key dom;
	struct http_reply r;
	if (parse_query(srv, conn, list_params[req->arg], &q, &dom, &r) < 0)
		return r;
	struct buf *out = page_buffer();
	const char *error;
	int rc = admin_list(srv->admin, &q, out, &error);
	return page_reply(rc, out, error);
}

struct http_reply http_admin_audit(struct http_server *srv, struct MHD_Connection *conn,
                                   struct http_request *req)
{
	(void)req;
	struct admin_query q = { .kind = RESOURCE_TOKEN };
	struct resource_key dom;
	struct http_reply r;
	if (parse_query(srv, conn, audit_params, &q, &dom, &r) < 0)
		return r;
	struct buf *out = page_buffer();
	const char *error;
	int rc = admin_audit(srv->admin, &q, out, &error);
	return page_reply(rc, out, error);
}

struct http_reply http_admin_warnings(struct http_server *srv, struct MHD_Connection *conn,
                                      struct http_request *req)
{
	(void)req;
	struct admin_query q = { .kind = RESOURCE_MAILBOX };
	struct resource_key addr;
	struct http_reply r;
	if (parse_query(srv, conn, warnings_params, &q, &addr, &r) < 0)
		return r;
	struct buf *out = page_buffer();
	const char *error;
	int rc = admin_warnings(srv->admin, &q, out, &error);
	return page_reply(rc, out, error);
}
