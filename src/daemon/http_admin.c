/*
 * http_admin: the admin resources of the HTTP API (domains, mailboxes, aliases, tokens,
 * recalculated usage). Bodies are checked by resource.c, changes and reads are done by admin.c;
 * this file maps them to HTTP: one table from each admin outcome to its status, error code and
 * message, ETag / If-Match / If-None-Match, Location. It must never pass a request to the
 * database that resource.c has not accepted, and never answer anything but JSON (or an empty
 * 204/304).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "http_internal.h"
#include "report.h"
#include "resource.h"
#include "rfc3339.h"
#include "strnum.h"
#include "utf8.h"
#include "xalloc.h"

/* A Location path: a collection (15 bytes), a local part (64), '@' and a domain (255), each
   byte of the key encoded as at most 3: 979. */
#define LOCATION_MAX 1024

_Static_assert(HTTP_ETAG_MAX == ADMIN_ETAG_MAX, "an admin ETag must fit a reply's");

/* What goes between an outcome's message and its tail. */
enum insert {
	INSERT_NOTHING,
	INSERT_KIND,    /* the resource kind's name: "no such mailbox" */
	INSERT_TARGET,  /* the alias target the database named */
	INSERT_MESSAGE, /* the database's reason (res->message) */
};

/* How each admin outcome is answered: status, then for an error its code, the field blamed
   (NULL: none) and its message. A success answers the document. */
static const struct {
	unsigned status;
	const char *error;
	const char *field;
	const char *message, *tail;
	enum insert insert;
} outcomes[ADMIN_CODES] = {
	[ADMIN_OK] = { 200, NULL, NULL, NULL, NULL, INSERT_NOTHING },
	[ADMIN_CREATED] = { 201, NULL, NULL, NULL, NULL, INSERT_NOTHING },
	[ADMIN_UPDATED] = { 200, NULL, NULL, NULL, NULL, INSERT_NOTHING },
	[ADMIN_UNCHANGED] = { 200, NULL, NULL, NULL, NULL, INSERT_NOTHING },
	[ADMIN_NOT_FOUND] = { 404, "not_found", NULL, "no such ", "", INSERT_KIND },
	[ADMIN_EXISTS] = { 409, "exists", NULL, "this ", " exists already", INSERT_KIND },
	[ADMIN_VERSION_MISMATCH] = { 412, "precondition_failed", NULL,
	                             "the object changed since you read it (its ETag differs): "
	                             "read it again and retry",
	                             "", INSERT_NOTHING },
	[ADMIN_UNKNOWN_DOMAIN] = { 422, "unknown_domain", "address",
	                           "the domain does not exist: create it first", "",
	                           INSERT_NOTHING },
	[ADMIN_UNKNOWN_TARGET] = { 422, "unknown_target", "targets", "target ", " is not a mailbox",
	                           INSERT_TARGET },
	[ADMIN_NO_TARGETS] = { 422, "no_targets", "targets",
	                       "an alias needs at least one target; delete it instead", "",
	                       INSERT_NOTHING },
	[ADMIN_UNKNOWN_MAILBOX] = { 422, "unknown_mailbox", "mailbox", "no such mailbox", "",
	                            INSERT_NOTHING },
	[ADMIN_INVALID_VALUE] = { 400, "invalid_value", NULL, "", "", INSERT_MESSAGE },
};

static const char *const collection[] = {
	[RESOURCE_DOMAIN] = "/v1/domains/",
	[RESOURCE_MAILBOX] = "/v1/mailboxes/",
	[RESOURCE_ALIAS] = "/v1/aliases/",
	[RESOURCE_TOKEN] = "/v1/tokens/",
};

/* Append s percent-encoded by libcurl (the CLI's encoder too: one safe set) to b. */
static void append_escaped(struct buf *b, const char *s)
{
	char *e = curl_easy_escape(NULL, s, (int)strlen(s)); /* s is a key: at most 255 bytes */
	if (e == NULL || buf_puts(b, e) < 0)
		abort(); /* out of memory, or a key over its limit: 3 x 255 bytes fit LOCATION_MAX
		          */
	curl_free(e);
}

/*
 * A created resource's path: its collection, then its key (key NULL: the token id) with each
 * part percent-encoded; the '@' between local part and domain stays as typed (RFC 3986 allows
 * it in a path segment), so a Location reads "/v1/mailboxes/ann@example.org".
 */
static char *location_of(enum resource_kind kind, const struct resource_key *key, const char *id)
{
	struct buf b;
	buf_init(&b, LOCATION_MAX);
	if (buf_puts(&b, collection[kind]) < 0)
		abort(); /* a literal */
	if (key == NULL) {
		append_escaped(&b, id);
	} else if (kind == RESOURCE_DOMAIN) {
		append_escaped(&b, key->domain);
	} else {
		if (!key->catchall)
			append_escaped(&b, key->local);
		if (buf_puts(&b, "@") < 0)
			abort(); /* within the same bound */
		append_escaped(&b, key->domain);
	}
	char *s = xstrdup(b.data);
	buf_free(&b);
	return s;
}

struct http_reply http_admin_unavailable(const char *error)
{
	(void)error; /* logged by the store; a client learns only to come back */
	return http_db_unavailable("the database cannot be reached; retry later");
}

/* The error answer of outcome res->code. */
static struct http_reply outcome_error(enum resource_kind kind, const struct admin_result *res)
{
	char msg[300]; /* what is inserted is cut to fit */
	const char *what = "";
	json_t *d = NULL;
	switch (outcomes[res->code].insert) {
	case INSERT_NOTHING:
		break;
	case INSERT_KIND:
		what = resource_kind_name(kind);
		break;
	case INSERT_TARGET:
		d = res->doc != NULL ? json_loads(res->doc, 0, NULL) : NULL;
		what = json_string_value(json_object_get(d, "target"));
		if (what == NULL)
			what = "?";
		break;
	case INSERT_MESSAGE:
		what = res->message;
		break;
	}
	/* what may be the database's text: cut it where a character ends */
	snprintf(msg, sizeof(msg), "%s%.*s%s", outcomes[res->code].message,
	         (int)utf8_cut(what, strlen(what), 200), what, outcomes[res->code].tail);
	json_decref(d);
	if (outcomes[res->code].field != NULL)
		return http_error_field(outcomes[res->code].status, outcomes[res->code].error,
		                        outcomes[res->code].field, msg);
	struct http_reply r =
	        http_error(outcomes[res->code].status, outcomes[res->code].error, msg);
	if (res->code == ADMIN_VERSION_MISMATCH) /* the current version, to read it again */
		memcpy(r.etag, res->etag, sizeof(r.etag));
	return r;
}

struct http_reply http_admin_reply(enum resource_kind kind, const struct resource_key *key,
                                   const char *id, struct admin_result *res)
{
	if (outcomes[res->code].error != NULL)
		return outcome_error(kind, res);
	if (res->doc == NULL)
		return http_reply_empty(204);
	struct http_reply r = http_reply_raw(outcomes[res->code].status, res->doc);
	res->doc = NULL;
	memcpy(r.etag, res->etag, sizeof(r.etag));
	if (res->code == ADMIN_CREATED)
		r.location = location_of(kind, key, id);
	return r;
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

/* The {} segment as a key of the route's kind, or an error reply. */
static int path_key(struct http_server *srv, struct http_request *req, struct resource_key *key,
                    struct http_reply *err_r)
{
	const char *why;
	if (resource_key_parse((enum resource_kind)req->arg, req->param, &srv->cfg->address_rules,
	                       key, &why) < 0) {
		char msg[160]; /* cut on purpose */
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

/* The object a path names: a token's id (kind RESOURCE_TOKEN), else a key. 0, or -1 with the
   error answer in *err_r. */
static int path_object(struct http_server *srv, struct http_request *req, int64_t *id_r,
                       struct resource_key *key_r, struct http_reply *err_r)
{
	if ((enum resource_kind)req->arg == RESOURCE_TOKEN)
		return path_token_id(req, id_r, err_r);
	return path_key(srv, req, key_r, err_r);
}

static struct http_reply check_error(const struct resource_error *e)
{
	char msg[200]; /* cut on purpose */
	if (e->field[0] == '\0')
		return http_error(400, e->code, e->reason);
	snprintf(msg, sizeof(msg), "%s: %s", e->field, e->reason);
	return http_error_field(400, e->code, e->field, msg);
}

/* POST of a token: the new document with its secret, shown this once. */
static struct http_reply token_created(struct admin_result *res, char *text)
{
	json_t *d = json_loads(res->doc, 0, NULL);
	json_object_set_new(d, "token", json_string(text));
	char idtext[24]; /* an int64 fits */
	snprintf(idtext, sizeof(idtext), "%lld",
	         (long long)json_integer_value(json_object_get(d, "id")));
	struct http_reply r = http_reply_json(201, d);
	r.location = location_of(RESOURCE_TOKEN, NULL, idtext);
	return r;
}

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
	struct admin_result res = { 0 };
	const char *error;
	if (kind == RESOURCE_TOKEN) {
		if (resource_token_expiry(fields, (int64_t)time(NULL),
		                          srv->cfg->self_token_max_lifetime, &e) < 0) {
			json_decref(fields);
			return check_error(&e);
		}
		char text[TOKEN_TEXT_MAX];
		rc = admin_token_issue(srv->admin, fields, req->tok.id, text, &res, &error);
		json_decref(fields);
		r = rc < 0                      ? http_admin_unavailable(error)
		    : res.code == ADMIN_CREATED ? token_created(&res, text)
		                                : http_admin_reply(kind, NULL, NULL, &res);
		explicit_bzero(text, sizeof(text));
		admin_result_free(&res);
		return r;
	}
	rc = admin_change(srv->admin, kind, ADMIN_CREATE, &key, fields, NULL, req->tok.id, &res,
	                  &error);
	json_decref(fields);
	r = rc < 0 ? http_admin_unavailable(error) : http_admin_reply(kind, &key, NULL, &res);
	admin_result_free(&res);
	return r;
}

/* Whether If-None-Match names the version res holds (or is "*"). */
static bool not_modified(struct MHD_Connection *conn, const struct admin_result *res)
{
	const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
	if (res->code != ADMIN_OK || inm == NULL || res->etag[0] == '\0')
		return false;
	char quoted[sizeof(res->etag) + 2];
	snprintf(quoted, sizeof(quoted), "\"%s\"", res->etag); /* sized for it */
	return strcmp(inm, quoted) == 0 || strcmp(inm, "*") == 0;
}

struct http_reply http_admin_get(struct http_server *srv, struct MHD_Connection *conn,
                                 struct http_request *req)
{
	enum resource_kind kind = (enum resource_kind)req->arg;
	struct http_reply r;
	struct resource_key key;
	struct admin_result res = { 0 };
	const char *error;
	int64_t id;
	int rc;
	if (path_object(srv, req, &id, &key, &r) < 0)
		return r;
	if (kind == RESOURCE_TOKEN) {
		rc = admin_token_get(srv->admin, id, &res, &error);
	} else {
		if (kind == RESOURCE_MAILBOX && !http_self_allows(srv, req, key.text))
			return http_forbidden();
		rc = admin_get(srv->admin, kind, &key, &res, &error);
	}
	if (rc < 0)
		return http_admin_unavailable(error);
	if (not_modified(conn, &res)) {
		r = http_reply_empty(304);
		memcpy(r.etag, res.etag, sizeof(r.etag));
	} else {
		r = http_admin_reply(kind, NULL, NULL, &res);
	}
	admin_result_free(&res);
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
	const char *etag, *error;
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
	struct admin_result res = { 0 };
	rc = admin_change(srv->admin, kind, ADMIN_UPDATE, &key, fields, etag, req->tok.id, &res,
	                  &error);
	json_decref(fields);
	r = rc < 0 ? http_admin_unavailable(error) : http_admin_reply(kind, &key, NULL, &res);
	admin_result_free(&res);
	return r;
}

struct http_reply http_admin_delete(struct http_server *srv, struct MHD_Connection *conn,
                                    struct http_request *req)
{
	enum resource_kind kind = (enum resource_kind)req->arg;
	struct http_reply r;
	struct resource_key key;
	struct admin_result res = { 0 };
	const char *error;
	int64_t id;
	int rc;
	if (path_object(srv, req, &id, &key, &r) < 0)
		return r;
	if (kind == RESOURCE_TOKEN) {
		rc = admin_token_revoke(srv->admin, id, req->tok.id, &res, &error);
	} else {
		char etagbuf[64];
		const char *etag;
		if (if_match(conn, etagbuf, sizeof(etagbuf), &etag, &r) < 0)
			return r;
		rc = admin_change(srv->admin, kind, ADMIN_DELETE, &key, NULL, etag, req->tok.id,
		                  &res, &error);
	}
	if (rc < 0)
		return http_admin_unavailable(error);
	/* a deletion answers no document, whatever the database returned */
	r = res.code == ADMIN_OK ? http_reply_empty(204) : http_admin_reply(kind, NULL, NULL, &res);
	admin_result_free(&res);
	return r;
}

/* The body of PUT .../usage: 0 with its members, or -1 with the reply. */
static int usage_body(json_t *doc, json_t **b, json_t **m, json_t **src, json_t **at,
                      struct http_reply *err_r)
{
	const char *name;
	json_t *val;
	json_object_foreach(doc, name, val)
	{
		if (strcmp(name, "bytes") != 0 && strcmp(name, "messages") != 0 &&
		    strcmp(name, "source") != 0 && strcmp(name, "measured_at") != 0) {
			*err_r = http_error_field(400, "unknown_field", "",
			                          "allowed: bytes, messages, source, measured_at");
			return -1;
		}
	}
	*b = json_object_get(doc, "bytes");
	*m = json_object_get(doc, "messages");
	*src = json_object_get(doc, "source");
	*at = json_object_get(doc, "measured_at");
	const char *bad = NULL, *field = NULL;
	if (!json_is_integer(*b) || json_integer_value(*b) < 0)
		bad = "bytes (required) must be a non-negative integer", field = "bytes";
	else if (*m != NULL && (!json_is_integer(*m) || json_integer_value(*m) < 0))
		bad = "messages must be a non-negative integer", field = "messages";
	else if (!json_is_string(*src) || json_string_length(*src) == 0 ||
	         json_string_length(*src) > USAGE_SOURCE_MAX)
		bad = "source (required) must be a string of 1 to 100 characters, e.g. \"doveadm\"",
		field = "source";
	else if (*at != NULL && (!json_is_string(*at) || !rfc3339_valid(json_string_value(*at))))
		bad = "measured_at must be an RFC 3339 time such as 2026-11-22T10:00:00Z",
		field = "measured_at";
	if (bad == NULL)
		return 0;
	*err_r = http_error_field(400, "invalid_field", field, bad);
	return -1;
}

/* PUT /v1/mailboxes/{address}/usage: a recalculation, audited. */
struct http_reply http_admin_usage_put(struct http_server *srv, struct MHD_Connection *conn,
                                       struct http_request *req)
{
	struct http_reply r;
	struct resource_key key;
	json_t *doc, *b, *m, *src, *at;
	if (path_key(srv, req, &key, &r) < 0 || http_parse_body(conn, req, &doc, &r) < 0)
		return r;
	if (usage_body(doc, &b, &m, &src, &at, &r) < 0) {
		json_decref(doc);
		return r;
	}
	uint64_t msgs = m != NULL ? (uint64_t)json_integer_value(m) : 0;
	struct admin_result res = { 0 };
	const char *error;
	int rc =
	        admin_usage_set(srv->admin, key.text, (uint64_t)json_integer_value(b),
	                        m != NULL ? &msgs : NULL, json_string_value(src),
	                        at != NULL ? json_string_value(at) : "", req->tok.id, &res, &error);
	if (rc < 0 || res.code != ADMIN_OK) {
		r = rc < 0 ? http_admin_unavailable(error)
		           : http_admin_reply(RESOURCE_MAILBOX, NULL, NULL, &res);
		admin_result_free(&res);
		json_decref(doc);
		return r;
	}
	json_t *d = json_loads(res.doc, 0, NULL);
	admin_result_free(&res);
	/* the shape the previous version answered, plus the whole mailbox */
	r = http_reply_json(200,
	                    json_pack("{s:s, s:O, s:O, s:O, s:o}", "mailbox", key.text, "usage",
	                              json_object_get(d, "usage"), "source", src, "measured_at",
	                              at != NULL ? at : json_null(), "object", d));
	json_decref(doc);
	return r;
}
