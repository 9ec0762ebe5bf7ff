/*
 * http_admin: the admin resources of the HTTP API (domains, mailboxes, aliases, tokens, the
 * audit log, recalculated usage). Bodies are checked by resource.c, changes and reads are done
 * by admin.c; this file maps them to HTTP: status codes, ETag / If-Match / If-None-Match,
 * Location, query parameters. It must never pass a request to the database that resource.c
 * has not accepted, and never answer anything but JSON (or an empty 204/304).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "bulk.h"
#include "http_internal.h"
#include "resource.h"
#include "strnum.h"
#include "usage.h"
#include "xalloc.h"

#define QUERY_PARAMS_MAX 16 /* distinct query parameters in one request */

static const char *const collection[] = {
	[RESOURCE_DOMAIN] = "/v1/domains/",
	[RESOURCE_MAILBOX] = "/v1/mailboxes/",
	[RESOURCE_ALIAS] = "/v1/aliases/",
	[RESOURCE_TOKEN] = "/v1/tokens/",
};

/* ---- replies ---- */

static struct http_reply doc_reply(unsigned status, struct admin_outcome *o)
{
	struct http_reply r = { .status = status, .raw = o->doc };
	o->doc = NULL;
	(void)!str_copy(r.etag, o->etag, sizeof(r.etag));
	return r;
}

static struct http_reply status_reply(enum admin_status st, struct admin_outcome *o)
{
	if (st == ADMIN_UNAVAILABLE)
		return http_db_unavailable("the database cannot be reached; retry later");
	return http_error(400, "invalid_value", o->message);
}

/* A resource's URL path, its key percent-encoded. */
static char *location_of(enum resource_kind kind, const char *key)
{
	struct buf b;
	buf_init(&b, 4096);
	if (buf_puts(&b, collection[kind]) < 0)
		abort();
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		             (*p >= '0' && *p <= '9') || strchr("-._~@+", *p) != NULL;
		if ((plain ? buf_append(&b, (const char *)p, 1) : buf_printf(&b, "%%%02X", *p)) < 0)
			abort(); /* a key is at most 255 bytes */
	}
	char *s = xstrdup(b.data);
	buf_free(&b);
	return s;
}

/*
 * The If-Match precondition: 0 with *etag_r NULL (none, or "*") or pointing into buf, or -1
 * with a reply for a malformed or weak one (weak tags never match If-Match, RFC 9110 13.1.1).
 */
static int if_match(struct MHD_Connection *conn, char *buf, size_t size, const char **etag_r,
                    struct http_reply *err_r)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-Match");
	*etag_r = NULL;
	if (h == NULL || strcmp(h, "*") == 0)
		return 0;
	size_t n = strlen(h);
	if (n < 2 || n - 2 >= size || h[0] != '"' || h[n - 1] != '"' ||
	    memchr(h + 1, '"', n - 2) != NULL) {
		*err_r = http_error(400, "invalid_header",
		                    "If-Match must be one strong ETag such as \"12.3\", or *");
		return -1;
	}
	memcpy(buf, h + 1, n - 2);
	buf[n - 2] = '\0';
	*etag_r = buf;
	return 0;
}

static struct http_reply precondition_failed(struct admin_outcome *o)
{
	struct http_reply r = http_error(412, "precondition_failed",
	                                 "the object changed since you read it (its ETag differs): "
	                                 "read it again and retry");
	(void)!str_copy(r.etag, o->etag, sizeof(r.etag));
	return r;
}

/* The {} segment as a key of the route's kind, or an error reply. */
static int path_key(struct http_server *srv, struct http_request *req, struct resource_key *key,
                    struct http_reply *err_r)
{
	const char *why;
	if (resource_key_parse((enum resource_kind)req->arg, req->param, &srv->cfg->address_rules,
	                       key, &why) < 0) {
		char msg[160];
		snprintf(msg, sizeof(msg), "not a valid %s key: %s",
		         resource_kind_name((enum resource_kind)req->arg), why);
		*err_r = http_error(
		        400, req->arg == RESOURCE_DOMAIN ? "invalid_domain" : "invalid_address",
		        msg);
		return -1;
	}
	return 0;
}

static int path_token_id(struct http_request *req, int64_t *id_r, struct http_reply *err_r)
{
	uint64_t v;
	if (strnum_u64(req->param, strlen(req->param), INT64_MAX, &v) < 0 || v == 0) {
		*err_r = http_error(400, "invalid_parameter", "a token id is a positive integer");
		return -1;
	}
	*id_r = (int64_t)v;
	return 0;
}

/* Map a change's outcome code to a reply. */
static struct http_reply change_reply(enum resource_kind kind, const struct resource_key *key,
                                      struct admin_outcome *o)
{
	const char *what = resource_kind_name(kind);
	char msg[200];
	if (strcmp(o->code, "created") == 0) {
		struct http_reply r = doc_reply(201, o);
		r.location = location_of(kind, key->text);
		return r;
	}
	if (strcmp(o->code, "ok") == 0)
		return o->doc != NULL ? doc_reply(200, o) : (struct http_reply){ .status = 204 };
	if (strcmp(o->code, "not_found") == 0) {
		snprintf(msg, sizeof(msg), "no such %s", what);
		return http_error(404, "not_found", msg);
	}
	if (strcmp(o->code, "exists") == 0) {
		snprintf(msg, sizeof(msg), "this %s exists already", what);
		return http_error(409, "exists", msg);
	}
	if (strcmp(o->code, "version_mismatch") == 0)
		return precondition_failed(o);
	if (strcmp(o->code, "unknown_domain") == 0)
		return http_error_field(422, "unknown_domain", "address",
		                        "the domain does not exist: create it first");
	if (strcmp(o->code, "unknown_target") == 0) {
		json_t *d = o->doc != NULL ? json_loads(o->doc, 0, NULL) : NULL;
		snprintf(msg, sizeof(msg), "target %.120s is not a mailbox",
		         json_string_value(json_object_get(d, "target")) != NULL
		                 ? json_string_value(json_object_get(d, "target"))
		                 : "?");
		json_decref(d);
		return http_error_field(422, "unknown_target", "targets", msg);
	}
	if (strcmp(o->code, "no_targets") == 0)
		return http_error_field(422, "no_targets", "targets",
		                        "an alias needs at least one target; delete it instead");
	if (strcmp(o->code, "unknown_mailbox") == 0)
		return http_error_field(422, "unknown_mailbox", "mailbox", "no such mailbox");
	return http_error(500, "internal", "unexpected outcome");
}

static struct http_reply check_error(const struct resource_error *e)
{
	char msg[200];
	if (e->field[0] != '\0')
		snprintf(msg, sizeof(msg), "%s: %s", e->field, e->reason);
	else
		snprintf(msg, sizeof(msg), "%s", e->reason);
	if (e->field[0] == '\0')
		return http_error(400, e->code, msg);
	return http_error_field(400, e->code, e->field, msg);
}

/* ---- handlers ---- */

struct http_reply http_admin_create(struct http_server *srv, struct MHD_Connection *conn,
                                    struct http_request *req)
{
	enum resource_kind kind = (enum resource_kind)req->arg;
	json_t *doc, *fields;
	struct http_reply r;
	struct resource_key key;
	struct resource_error e;
	if (http_parse_body(conn, req, &doc, &r) < 0)
		return r;
	int rc = resource_check(kind, RESOURCE_CREATE, doc, &srv->cfg->address_rules, &key, &fields,
	                        &e);
	json_decref(doc);
	if (rc < 0)
		return check_error(&e);
	struct admin_outcome o = { 0 };
	enum admin_status st;
	if (kind == RESOURCE_TOKEN) {
		char text[TOKEN_TEXT_MAX];
		st = admin_token_create(srv->svc->admin, fields, req->tok.id, text, &o);
		json_decref(fields);
		if (st != ADMIN_DONE)
			return status_reply(st, &o);
		if (strcmp(o.code, "created") != 0) {
			r = change_reply(kind, &key, &o);
			admin_outcome_free(&o);
			return r;
		}
		json_t *d = json_loads(o.doc, 0, NULL);
		json_object_set_new(d, "token", json_string(text));
		explicit_bzero(text, sizeof(text));
		char idtext[24];
		snprintf(idtext, sizeof(idtext), "%lld",
		         (long long)json_integer_value(json_object_get(d, "id")));
		r = (struct http_reply){ .status = 201, .body = d };
		r.location = location_of(kind, idtext);
		admin_outcome_free(&o);
		return r;
	}
	st = admin_change(srv->svc->admin, kind, "create", &key, fields, NULL, req->tok.id, &o);
	json_decref(fields);
	r = st == ADMIN_DONE ? change_reply(kind, &key, &o) : status_reply(st, &o);
	admin_outcome_free(&o);
	return r;
}

struct http_reply http_admin_get(struct http_server *srv, struct MHD_Connection *conn,
                                 struct http_request *req)
{
	enum resource_kind kind = (enum resource_kind)req->arg;
	struct http_reply r;
	struct resource_key key;
	struct admin_outcome o = { 0 };
	enum admin_status st;
	if (kind == RESOURCE_TOKEN) {
		int64_t id;
		if (path_token_id(req, &id, &r) < 0)
			return r;
		st = admin_token_get(srv->svc->admin, id, &o);
		memset(&key, 0, sizeof(key));
	} else {
		if (path_key(srv, req, &key, &r) < 0)
			return r;
		if (kind == RESOURCE_MAILBOX && !http_self_allows(srv, req, key.text))
			return http_forbidden();
		st = admin_get(srv->svc->admin, kind, &key, &o);
	}
	if (st != ADMIN_DONE)
		return status_reply(st, &o);
	const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
	if (strcmp(o.code, "ok") == 0 && inm != NULL && o.etag[0] != '\0') {
		char quoted[sizeof(o.etag) + 2];
		snprintf(quoted, sizeof(quoted), "\"%s\"", o.etag);
		if (strcmp(inm, quoted) == 0 || strcmp(inm, "*") == 0) {
			r = (struct http_reply){ .status = 304 };
			(void)!str_copy(r.etag, o.etag, sizeof(r.etag));
			admin_outcome_free(&o);
			return r;
		}
	}
	r = change_reply(kind, &key, &o);
	admin_outcome_free(&o);
	return r;
}

struct http_reply http_admin_update(struct http_server *srv, struct MHD_Connection *conn,
                                    struct http_request *req)
{
	enum resource_kind kind = (enum resource_kind)req->arg;
	struct http_reply r;
	struct resource_key key, unused;
	struct resource_error e;
	json_t *doc, *fields;
	char etagbuf[64];
	const char *etag;
	if (path_key(srv, req, &key, &r) < 0 ||
	    if_match(conn, etagbuf, sizeof(etagbuf), &etag, &r) < 0)
		return r;
	if (http_parse_body(conn, req, &doc, &r) < 0)
		return r;
	int rc = resource_check(kind, RESOURCE_UPDATE, doc, &srv->cfg->address_rules, &unused,
	                        &fields, &e);
	json_decref(doc);
	if (rc < 0)
		return check_error(&e);
	struct admin_outcome o = { 0 };
	enum admin_status st =
	        admin_change(srv->svc->admin, kind, "update", &key, fields, etag, req->tok.id, &o);
	json_decref(fields);
	r = st == ADMIN_DONE ? change_reply(kind, &key, &o) : status_reply(st, &o);
	admin_outcome_free(&o);
	return r;
}

struct http_reply http_admin_delete(struct http_server *srv, struct MHD_Connection *conn,
                                    struct http_request *req)
{
	enum resource_kind kind = (enum resource_kind)req->arg;
	struct http_reply r;
	struct resource_key key;
	struct admin_outcome o = { 0 };
	enum admin_status st;
	if (kind == RESOURCE_TOKEN) {
		int64_t id;
		if (path_token_id(req, &id, &r) < 0)
			return r;
		memset(&key, 0, sizeof(key));
		st = admin_token_revoke(srv->svc->admin, id, req->tok.id, &o);
	} else {
		char etagbuf[64];
		const char *etag;
		if (path_key(srv, req, &key, &r) < 0 ||
		    if_match(conn, etagbuf, sizeof(etagbuf), &etag, &r) < 0)
			return r;
		st = admin_change(srv->svc->admin, kind, "delete", &key, NULL, etag, req->tok.id,
		                  &o);
	}
	if (st != ADMIN_DONE)
		return status_reply(st, &o);
	if (strcmp(o.code, "ok") == 0) {
		admin_outcome_free(&o);
		return (struct http_reply){ .status = 204 };
	}
	r = change_reply(kind, &key, &o);
	admin_outcome_free(&o);
	return r;
}

/* ---- query parameters ---- */

struct query_param {
	const char *name;
	const char *value;
};

struct query_ctx {
	struct query_param p[QUERY_PARAMS_MAX];
	size_t n;
	bool too_many, too_long;
};

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
	(void)kind;
	struct query_ctx *q = cls;
	if (q->n == QUERY_PARAMS_MAX) {
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

static bool is_bool(const char *v, int *out)
{
	if (strcmp(v, "true") == 0)
		*out = 1;
	else if (strcmp(v, "false") == 0)
		*out = 0;
	else
		return false;
	return true;
}

/* Which parameters each list takes. */
static const char *const list_params[][12] = {
	[RESOURCE_DOMAIN] = { "limit", "cursor", "sort", "prefix", "updated_since", NULL },
	[RESOURCE_MAILBOX] = { "limit", "cursor", "sort", "prefix", "updated_since", "domain",
	                       "min_usage_percent", "over_quota", "enabled", NULL },
	[RESOURCE_ALIAS] = { "limit", "cursor", "sort", "prefix", "updated_since", "domain", NULL },
	[RESOURCE_TOKEN] = { "limit", "cursor", "include_revoked", NULL },
};
static const char *const audit_params[] = { "limit", "cursor", "object", "action",
	                                    "token", "since",  "until",  NULL };

/*
 * Fill *q from the query string, refusing unknown, repeated, empty or malformed parameters.
 * 0, or -1 with the reply. Strings in *q point into MHD's storage or into dom (the normalised
 * domain), valid for the request.
 */
static int parse_query(struct http_server *srv, struct MHD_Connection *conn,
                       const char *const *allowed, struct admin_query *q, struct resource_key *dom,
                       struct http_reply *err_r)
{
	struct query_ctx c = { .n = 0 };
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect, &c);
	if (c.too_many || c.too_long) {
		*err_r = http_error(400, "invalid_parameter",
		                    c.too_many ? "too many query parameters"
		                               : "a query parameter value is too long");
		return -1;
	}
	q->limit = ADMIN_LIST_DEFAULT;
	q->over_quota = -1;
	q->enabled = -1;
	char msg[200];
	for (size_t i = 0; i < c.n; i++) {
		const char *name = c.p[i].name, *v = c.p[i].value, *why = NULL;
		bool known = false;
		for (size_t k = 0; allowed[k] != NULL; k++)
			known |= strcmp(allowed[k], name) == 0;
		for (size_t k = 0; k < i; k++)
			if (strcmp(c.p[k].name, name) == 0)
				why = "is given twice";
		uint64_t u;
		if (!known)
			why = "is not a parameter of this list";
		else if (why != NULL)
			;
		else if (v[0] == '\0')
			why = "is empty";
		else if (strcmp(name, "limit") == 0) {
			if (strnum_u64(v, strlen(v), ADMIN_LIST_MAX, &u) < 0 || u == 0)
				why = "must be an integer from 1 to 1000";
			else
				q->limit = (unsigned)u;
		} else if (strcmp(name, "cursor") == 0) {
			q->cursor = v;
		} else if (strcmp(name, "sort") == 0) {
			q->sort = v;
		} else if (strcmp(name, "prefix") == 0) {
			if (strlen(v) > ADDRESS_MAX)
				why = "is too long";
			q->prefix = v;
		} else if (strcmp(name, "updated_since") == 0 || strcmp(name, "since") == 0) {
			if (!rfc3339_valid(v))
				why = "must be an RFC 3339 time such as 2026-11-22T10:00:00Z";
			q->updated_since = v;
		} else if (strcmp(name, "until") == 0) {
			if (!rfc3339_valid(v))
				why = "must be an RFC 3339 time such as 2026-11-22T10:00:00Z";
			q->until = v;
		} else if (strcmp(name, "domain") == 0) {
			const char *w;
			if (resource_key_parse(RESOURCE_DOMAIN, v, &srv->cfg->address_rules, dom,
			                       &w) < 0)
				why = "must be a domain name";
			q->domain = dom->domain;
		} else if (strcmp(name, "min_usage_percent") == 0) {
			if (strnum_u64(v, strlen(v), 1000000, &u) < 0)
				why = "must be an integer percentage from 0 to 1000000";
			q->min_usage_percent = v;
		} else if (strcmp(name, "over_quota") == 0) {
			if (!is_bool(v, &q->over_quota))
				why = "must be true or false";
		} else if (strcmp(name, "enabled") == 0) {
			if (!is_bool(v, &q->enabled))
				why = "must be true or false";
		} else if (strcmp(name, "include_revoked") == 0) {
			int b = 0;
			if (!is_bool(v, &b))
				why = "must be true or false";
			q->include_revoked = b == 1;
		} else if (strcmp(name, "object") == 0) {
			q->object = v;
		} else if (strcmp(name, "action") == 0) {
			q->action = v;
		} else if (strcmp(name, "token") == 0) {
			if (strnum_u64(v, strlen(v), INT64_MAX, &u) < 0 || u == 0)
				why = "must be a token id";
			else
				q->token_id = (int64_t)u;
		}
		if (why != NULL) {
			char n[48];
			snprintf(msg, sizeof(msg), "%s %s",
			         str_sanitize(n, sizeof(n), name, strlen(name), 40), why);
			*err_r = http_error_field(400, "invalid_parameter", n, msg);
			return -1;
		}
	}
	return 0;
}

static struct http_reply page_reply(enum admin_status st, struct buf *out, const char *why)
{
	if (st == ADMIN_UNAVAILABLE) {
		buf_free(out);
		free(out);
		return http_db_unavailable("the database cannot be reached; retry later");
	}
	if (st == ADMIN_REFUSED) {
		buf_free(out);
		free(out);
		return http_error(400, "invalid_parameter", why);
	}
	return (struct http_reply){ .status = 200, .text = out };
}

struct http_reply http_admin_list(struct http_server *srv, struct MHD_Connection *conn,
                                  struct http_request *req)
{
	struct admin_query q = { .kind = (enum resource_kind)req->arg };
	struct resource_key dom;
	struct http_reply r;
	if (parse_query(srv, conn, list_params[req->arg], &q, &dom, &r) < 0)
		return r;
	struct buf *out = xmalloc(sizeof(*out));
	buf_init(out, HTTP_RESPONSE_MAX);
	const char *why = NULL;
	enum admin_status st = admin_list(srv->svc->admin, &q, out, &why);
	return page_reply(st, out, why);
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
	struct buf *out = xmalloc(sizeof(*out));
	buf_init(out, HTTP_RESPONSE_MAX);
	const char *why = NULL;
	enum admin_status st = admin_audit(srv->svc->admin, &q, out, &why);
	return page_reply(st, out, why);
}

/* PUT /v1/mailboxes/{address}/usage: a recalculation, audited. */
struct http_reply http_admin_usage_put(struct http_server *srv, struct MHD_Connection *conn,
                                       struct http_request *req)
{
	struct http_reply r;
	struct resource_key key;
	json_t *doc;
	req->arg = RESOURCE_MAILBOX;
	if (path_key(srv, req, &key, &r) < 0)
		return r;
	if (http_parse_body(conn, req, &doc, &r) < 0)
		return r;
	const char *name;
	json_t *val;
	json_object_foreach(doc, name, val)
	{
		if (strcmp(name, "bytes") != 0 && strcmp(name, "messages") != 0 &&
		    strcmp(name, "source") != 0 && strcmp(name, "measured_at") != 0) {
			json_decref(doc);
			return http_error_field(400, "unknown_field", "",
			                        "allowed: bytes, messages, source, measured_at");
		}
	}
	json_t *b = json_object_get(doc, "bytes"), *m = json_object_get(doc, "messages");
	json_t *src = json_object_get(doc, "source"), *at = json_object_get(doc, "measured_at");
	const char *bad = NULL, *field = NULL;
	if (!json_is_integer(b) || json_integer_value(b) < 0)
		bad = "bytes (required) must be a non-negative integer", field = "bytes";
	else if (m != NULL && (!json_is_integer(m) || json_integer_value(m) < 0))
		bad = "messages must be a non-negative integer", field = "messages";
	else if (!json_is_string(src) || json_string_length(src) == 0 ||
	         json_string_length(src) > USAGE_SOURCE_MAX)
		bad = "source (required) must be a string of 1 to 100 characters, e.g. \"doveadm\"",
		field = "source";
	else if (at != NULL && (!json_is_string(at) || !rfc3339_valid(json_string_value(at))))
		bad = "measured_at must be an RFC 3339 time such as 2026-11-22T10:00:00Z",
		field = "measured_at";
	if (bad != NULL) {
		json_decref(doc);
		return http_error_field(400, "invalid_field", field, bad);
	}
	uint64_t msgs = m != NULL ? (uint64_t)json_integer_value(m) : 0;
	struct admin_outcome o = { 0 };
	enum admin_status st =
	        admin_usage_set(srv->svc->admin, key.text, (uint64_t)json_integer_value(b),
	                        m != NULL ? &msgs : NULL, json_string_value(src),
	                        at != NULL ? json_string_value(at) : "", req->tok.id, &o);
	if (st != ADMIN_DONE || strcmp(o.code, "ok") != 0) {
		json_decref(doc);
		r = st != ADMIN_DONE ? status_reply(st, &o)
		                     : http_error(404, "not_found", "no such mailbox");
		admin_outcome_free(&o);
		return r;
	}
	json_t *d = json_loads(o.doc, 0, NULL);
	admin_outcome_free(&o);
	/* the shape the previous version answered, plus the whole mailbox */
	r = (struct http_reply){ .status = 200,
		                 .body = json_pack("{s:s, s:O, s:O, s:O, s:o}", "mailbox", key.text,
		                                   "usage", json_object_get(d, "usage"), "source",
		                                   src != NULL ? src : json_null(), "measured_at",
		                                   at != NULL ? at : json_null(), "object", d) };
	json_decref(doc);
	return r;
}

/* ---- bulk: export (streamed) and import ---- */

struct export_stream {
	struct admin_export *x;
	enum bulk_format fmt;
	struct buf header; /* the CSV header line, handed out first */
};

/* Produce the next 1000 objects (on the stream's own thread: it waits on the database). */
static int export_produce(void *cls, struct buf *out)
{
	struct export_stream *s = cls;
	if (s->header.len > 0) {
		if (buf_append(out, s->header.data, s->header.len) < 0)
			return -1;
		buf_reset(&s->header);
		return 1;
	}
	return admin_export_next(s->x, s->fmt, out);
}

static void export_done(void *cls)
{
	struct export_stream *s = cls;
	admin_export_close(&s->x);
	buf_free(&s->header);
	free(s);
}

static const char *const export_params[] = { "format", "type", NULL };
static const char *const import_params[] = { "format", "type", "mode", "dry_run", NULL };

/* format and type parameters; type is required for CSV. 0 or -1 with the reply. */
static int bulk_params(struct MHD_Connection *conn, const char *const *allowed,
                       enum bulk_format *fmt, unsigned *kinds, const char **mode, bool *dry_run,
                       struct http_reply *err_r)
{
	struct query_ctx c = { .n = 0 };
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect, &c);
	*fmt = BULK_NDJSON;
	*kinds = 7;
	*mode = "all_or_nothing";
	*dry_run = false;
	bool typed = false;
	for (size_t i = 0; i < c.n; i++) {
		const char *n = c.p[i].name, *v = c.p[i].value, *why = NULL;
		bool known = false;
		for (size_t k = 0; allowed[k] != NULL; k++)
			known |= strcmp(allowed[k], n) == 0;
		enum resource_kind kind;
		int b = 0;
		if (!known || c.too_many || c.too_long)
			why = "is not a parameter here";
		else if (strcmp(n, "format") == 0 && bulk_format_parse(v, fmt) < 0)
			why = "must be ndjson or csv";
		else if (strcmp(n, "type") == 0) {
			if (bulk_kind_parse(v, &kind) < 0)
				why = "must be domains, mailboxes or aliases";
			else {
				*kinds = 1u << kind;
				typed = true;
			}
		} else if (strcmp(n, "mode") == 0) {
			if (strcmp(v, "all_or_nothing") != 0 && strcmp(v, "best_effort") != 0)
				why = "must be all_or_nothing or best_effort";
			*mode = v;
		} else if (strcmp(n, "dry_run") == 0) {
			if (!is_bool(v, &b))
				why = "must be true or false";
			*dry_run = b == 1;
		}
		if (why != NULL) {
			char msg[160], nm[48];
			snprintf(msg, sizeof(msg), "%s %s",
			         str_sanitize(nm, sizeof(nm), n, strlen(n), 40), why);
			*err_r = http_error_field(400, "invalid_parameter", nm, msg);
			return -1;
		}
	}
	if (*fmt == BULK_CSV && !typed) {
		*err_r = http_error_field(400, "missing_parameter", "type",
		                          "a CSV file holds one type: give type=domains, mailboxes "
		                          "or aliases");
		return -1;
	}
	return 0;
}

struct http_reply http_admin_export(struct http_server *srv, struct MHD_Connection *conn,
                                    struct http_request *req)
{
	(void)req;
	enum bulk_format fmt;
	unsigned kinds;
	const char *mode;
	bool dry;
	struct http_reply r;
	if (bulk_params(conn, export_params, &fmt, &kinds, &mode, &dry, &r) < 0)
		return r;
	struct export_stream *s = xcalloc(1, sizeof(*s));
	s->fmt = fmt;
	buf_init(&s->header, 64 * 1024);
	s->x = admin_export_open(srv->svc->admin, kinds);
	if (s->x == NULL) {
		buf_free(&s->header);
		free(s);
		return http_db_unavailable("the database cannot be reached; retry later");
	}
	if (fmt == BULK_CSV) {
		for (int k = 0; k < 3; k++)
			if (kinds == 1u << k)
				bulk_csv_header((enum resource_kind)k, &s->header);
	}
	r = (struct http_reply){ .status = 200,
		                 .content_type = fmt == BULK_CSV ? "text/csv; charset=utf-8"
		                                                 : "application/x-ndjson" };
	r.stream = http_stream_new(srv, conn, export_produce, export_done, s);
	if (r.stream == NULL) {
		export_done(s);
		r = http_busy("too many exports run at once; retry later");
	}
	return r;
}

struct http_reply http_admin_import(struct http_server *srv, struct MHD_Connection *conn,
                                    struct http_request *req)
{
	enum bulk_format fmt;
	unsigned kinds;
	const char *mode;
	bool dry_run;
	struct http_reply r;
	if (bulk_params(conn, import_params, &fmt, &kinds, &mode, &dry_run, &r) < 0)
		return r;
	const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
	if (ctype != NULL && strncasecmp(ctype, "application/x-ndjson", 20) != 0 &&
	    strncasecmp(ctype, "application/ndjson", 18) != 0 &&
	    strncasecmp(ctype, "text/csv", 8) != 0 && strncasecmp(ctype, "text/plain", 10) != 0)
		return http_error(415, "unsupported_media_type",
		                  "an import is application/x-ndjson or text/csv");
	enum resource_kind csv_kind = RESOURCE_DOMAIN;
	for (int k = 0; k < 3; k++)
		if (kinds == 1u << k)
			csv_kind = (enum resource_kind)k;
	struct bulk_errors *errs = xcalloc(1, sizeof(*errs));
	struct bulk_row *rows = NULL;
	size_t n = 0;
	int prc = bulk_parse(fmt, csv_kind, req->body.data != NULL ? req->body.data : "",
	                     req->body.len, &rows, &n, errs);
	size_t unreadable = errs->total; /* rows that did not even parse */
	/* every row through the same checks as a single create */
	struct admin_import_row *todo = xcalloc(n ? n : 1, sizeof(*todo));
	json_t **owned = xcalloc(n ? n : 1, sizeof(*owned));
	size_t ntodo = 0;
	for (size_t i = 0; prc == 0 && i < n; i++) {
		struct resource_error e;
		struct admin_import_row *t = &todo[ntodo];
		if (resource_check(rows[i].kind, RESOURCE_CREATE, rows[i].obj,
		                   &srv->cfg->address_rules, &t->key, &owned[ntodo], &e) < 0) {
			char msg[200];
			snprintf(msg, sizeof(msg), "%s%s%s", e.field, e.field[0] ? ": " : "",
			         e.reason);
			bulk_error_add(errs, rows[i].line, e.field, e.code, msg);
			continue;
		}
		t->line = rows[i].line;
		t->kind = rows[i].kind;
		t->fields = owned[ntodo];
		ntodo++;
	}
	bool all = strcmp(mode, "all_or_nothing") == 0;
	size_t invalid = errs->total;
	struct admin_import_counts counts = { 0 };
	bool applied = false;
	enum admin_status st = ADMIN_DONE;
	/* with invalid rows, an all-or-nothing import still runs the valid ones, rolled back, so
	   the report names every problem the database would find too */
	if (prc == 0 && ntodo > 0)
		st = admin_import(srv->svc->admin, todo, ntodo, all,
		                  dry_run || (all && invalid > 0), req->tok.id, &counts, errs,
		                  &applied);
	counts.failed += invalid;
	if (st != ADMIN_DONE) {
		r = http_db_unavailable("the database cannot be reached; nothing was imported");
	} else {
		json_t *list = json_array();
		for (size_t i = 0; i < errs->n; i++) {
			const struct bulk_error *e = &errs->list[i];
			json_t *o = json_pack("{s:I, s:s, s:s}", "line", (json_int_t)e->line,
			                      "error", e->code, "message", e->message);
			if (e->field[0] != '\0')
				json_object_set_new(o, "field", json_string(e->field));
			json_array_append_new(list, o);
		}
		bool failed = prc < 0 || (all && errs->total > 0);
		r = (struct http_reply){
			.status = failed ? 422 : 200,
			.body = json_pack("{s:b, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:I}",
			                  "applied", applied, "dry_run", dry_run, "mode", mode,
			                  "rows", (json_int_t)(prc < 0 ? 0 : n + unreadable),
			                  "created", (json_int_t)counts.created, "updated",
			                  (json_int_t)counts.updated, "unchanged",
			                  (json_int_t)counts.unchanged, "failed",
			                  (json_int_t)counts.failed, "errors", list, "errors_total",
			                  (json_int_t)errs->total)
		};
		if (failed)
			json_object_set_new(r.body, "error", json_string("import_failed")),
			        json_object_set_new(r.body, "message",
			                            json_string(prc < 0 ? "the file cannot be read"
			                                                : "some rows are invalid: "
			                                                  "nothing was imported"));
	}
	for (size_t i = 0; i < ntodo; i++)
		json_decref(owned[i]);
	free(owned);
	free(todo);
	bulk_rows_free(rows, n);
	free(errs);
	return r;
}
