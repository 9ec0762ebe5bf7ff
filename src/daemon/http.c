/*
 * http: routes HTTP requests to handlers through one table, decodes JSON strictly and answers
 * JSON. Every error is {"error": code, "message": text} with a 4xx/5xx status. It must never
 * buffer more than HTTP_BODY_MAX of a body, never crash or hang on malformed input, and never
 * queue a response on libmicrohttpd's first callback (that would cost keep-alive).
 */
#include "http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "buf.h"
#include "bulk.h"
#include "http_internal.h"
#include "jsonw.h"
#include "log.h"
#include "resource.h"
#include "strnum.h"
#include "usage.h"
#include "xalloc.h"

/* Scopes as bits: which tokens a route accepts. */
#define S_ADMIN (1u << TOKEN_ADMIN)
#define S_READ  (1u << TOKEN_READ)
#define S_USAGE (1u << TOKEN_USAGE)
#define S_SELF  (1u << TOKEN_SELF) /* the handler checks the mailbox is the token's own */
#define S_NONE  0u                 /* no token needed */
#define S_ANY   (S_ADMIN | S_READ | S_USAGE | S_SELF)

/* Where a route's handler runs: on the connection's thread (memory only), or on a worker
   because it waits on PostgreSQL (the connection is suspended meanwhile). */
enum route_where { ON_CONN, ON_WORKER };

#define NOBODY 0u            /* the route takes no body: any body is a 413 */
#define JSON   HTTP_BODY_MAX /* a JSON document */
#define BULK   BULK_BODY_MAX /* an import file */

struct route {
	const char *method;
	const char *path;
	http_handler handler;
	unsigned scopes;
	int arg;
	size_t body_max;
	enum route_where where;
};

#define D RESOURCE_DOMAIN
#define M RESOURCE_MAILBOX
#define A RESOURCE_ALIAS
#define T RESOURCE_TOKEN
#define W ON_WORKER
#define C ON_CONN
static const struct route routes[] = {
	{ "GET", "/v1/health", http_health, S_NONE, 0, NOBODY, C },
	{ "GET", "/v1/check", http_check_get, S_ANY, 0, NOBODY, C },
	{ "POST", "/v1/check", http_check_post, S_ANY, 0, JSON, C },
	{ "POST", "/v1/usage", http_usage_post, S_ADMIN | S_USAGE, 0, JSON, W },
	{ "GET", "/v1/mailboxes/{}/usage", http_usage_get, S_ANY, 0, NOBODY, C },
	{ "PUT", "/v1/mailboxes/{}/usage", http_admin_usage_put, S_ADMIN | S_USAGE, 0, JSON, W },
	{ "GET", "/v1/domains", http_admin_list, S_ADMIN | S_READ, D, NOBODY, W },
	{ "POST", "/v1/domains", http_admin_create, S_ADMIN, D, JSON, W },
	{ "GET", "/v1/domains/{}", http_admin_get, S_ADMIN | S_READ, D, NOBODY, W },
	{ "PATCH", "/v1/domains/{}", http_admin_update, S_ADMIN, D, JSON, W },
	{ "DELETE", "/v1/domains/{}", http_admin_delete, S_ADMIN, D, NOBODY, W },
	{ "GET", "/v1/mailboxes", http_admin_list, S_ADMIN | S_READ, M, NOBODY, W },
	{ "POST", "/v1/mailboxes", http_admin_create, S_ADMIN, M, JSON, W },
	{ "GET", "/v1/mailboxes/{}", http_admin_get, S_ADMIN | S_READ | S_SELF, M, NOBODY, W },
	{ "PATCH", "/v1/mailboxes/{}", http_admin_update, S_ADMIN, M, JSON, W },
	{ "DELETE", "/v1/mailboxes/{}", http_admin_delete, S_ADMIN, M, NOBODY, W },
	{ "GET", "/v1/aliases", http_admin_list, S_ADMIN | S_READ, A, NOBODY, W },
	{ "POST", "/v1/aliases", http_admin_create, S_ADMIN, A, JSON, W },
	{ "GET", "/v1/aliases/{}", http_admin_get, S_ADMIN | S_READ, A, NOBODY, W },
	{ "PATCH", "/v1/aliases/{}", http_admin_update, S_ADMIN, A, JSON, W },
	{ "DELETE", "/v1/aliases/{}", http_admin_delete, S_ADMIN, A, NOBODY, W },
	{ "GET", "/v1/tokens", http_admin_list, S_ADMIN, T, NOBODY, W },
	{ "POST", "/v1/tokens", http_admin_create, S_ADMIN, T, JSON, W },
	{ "GET", "/v1/tokens/{}", http_admin_get, S_ADMIN, T, NOBODY, W },
	{ "DELETE", "/v1/tokens/{}", http_admin_delete, S_ADMIN, T, NOBODY, W },
	{ "GET", "/v1/audit", http_admin_audit, S_ADMIN | S_READ, 0, NOBODY, W },
	{ "GET", "/v1/export", http_admin_export, S_ADMIN | S_READ, 0, NOBODY, W },
	{ "POST", "/v1/import", http_admin_import, S_ADMIN, 0, BULK, W },
};
#undef D
#undef M
#undef A
#undef T
#undef W
#undef C

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

struct http_reply http_error(unsigned status, const char *code, const char *message)
{
	struct http_reply r = {
		.status = status, .body = json_pack("{s:s, s:s}", "error", code, "message", message)
	};
	return r;
}

struct http_reply http_error_field(unsigned status, const char *code, const char *field,
                                   const char *message)
{
	struct http_reply r = { .status = status,
		                .body = json_pack("{s:s, s:s, s:s}", "error", code, "field", field,
		                                  "message", message) };
	return r;
}

struct http_reply http_forbidden(void)
{
	return http_error(403, "forbidden", "this token's scope does not allow this request");
}

#define error_reply http_error

void http_reply_free(struct http_reply *r)
{
	json_decref(r->body);
	r->body = NULL;
	if (r->text != NULL) {
		buf_free(r->text);
		free(r->text);
		r->text = NULL;
	}
	free(r->raw);
	r->raw = NULL;
	free(r->location);
	r->location = NULL;
	if (r->stream != NULL) {
		MHD_destroy_response(r->stream);
		r->stream = NULL;
	}
}

struct http_reply http_store_unavailable(void)
{
	struct http_reply r = error_reply(503, "store_unavailable",
	                                  "quota data is temporarily unavailable; retry later");
	r.retry_after = HTTP_RETRY_AFTER;
	return r;
}

struct http_reply http_run_route(struct http_request *req)
{
	return req->route->handler(req->srv, req->conn, req);
}

struct http_reply http_busy(const char *message)
{
	struct http_reply r = error_reply(503, "busy", message);
	r.retry_after = HTTP_RETRY_AFTER;
	return r;
}

struct http_reply http_db_unavailable(const char *why)
{
	struct http_reply r = error_reply(503, "database_unavailable", why);
	r.retry_after = HTTP_RETRY_AFTER;
	return r;
}

/* Decode a JSON object body (Content-Type checked, duplicate keys refused); 0 with *doc_r
   (caller decrefs), or -1 with the error reply. */
int http_parse_body(struct MHD_Connection *conn, struct http_request *req, json_t **doc_r,
                    struct http_reply *err_r)
{
	const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
	if (ctype != NULL && strncasecmp(ctype, "application/json", 16) != 0) {
		*err_r = error_reply(415, "unsupported_media_type",
		                     "the body must be application/json");
		return -1;
	}
	json_error_t jerr;
	json_t *doc = json_loadb(req->body.data != NULL ? req->body.data : "", req->body.len,
	                         JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		char msg[256];
		snprintf(msg, sizeof(msg), "invalid JSON at line %d column %d: %s", jerr.line,
		         jerr.column, jerr.text);
		*err_r = error_reply(400, "invalid_json", msg);
		return -1;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		*err_r = error_reply(400, "invalid_body", "the body must be a JSON object");
		return -1;
	}
	*doc_r = doc;
	return 0;
}

/*
 * Does url match pattern, where "{}" stands for one non-empty part (copied to param)? The part
 * runs to the pattern's literal tail, so it may hold '/' (a local part may). *score_r is the
 * pattern's literal length: among several matching patterns the most specific one wins.
 */
static bool route_match(const char *pattern, const char *url, char *param, size_t size,
                        size_t *score_r)
{
	const char *hole = strstr(pattern, "{}");
	*score_r = strlen(pattern);
	if (hole == NULL)
		return strcmp(pattern, url) == 0;
	size_t pre = (size_t)(hole - pattern), ulen = strlen(url);
	const char *post = hole + 2;
	size_t postlen = strlen(post);
	*score_r -= 2;
	if (ulen < pre + postlen + 1 || strncmp(url, pattern, pre) != 0 ||
	    strcmp(url + ulen - postlen, post) != 0)
		return false;
	size_t seglen = ulen - pre - postlen;
	if (seglen >= size) {
		param[0] = '\0'; /* matched, but too long to use: the caller answers 400 */
		return true;
	}
	memcpy(param, url + pre, seglen);
	param[seglen] = '\0';
	return true;
}

/* The most specific pattern matching url; NULL if none. */
static const char *best_pattern(const char *url, char *param, size_t size)
{
	const char *best = NULL;
	size_t best_score = 0, score;
	for (size_t i = 0; i < NROUTES; i++)
		if (route_match(routes[i].path, url, param, size, &score) &&
		    (best == NULL || score > best_score)) {
			best = routes[i].path;
			best_score = score;
		}
	if (best != NULL)
		(void)route_match(best, url, param, size, &score);
	return best;
}

static struct http_reply unauthorized(void)
{
	struct http_reply r = error_reply(401, "unauthorized", "a valid bearer token is required");
	r.www_authenticate = true;
	return r;
}

/*
 * Authenticate the request's bearer token against the view. Every failure looks the same to
 * the caller (401, one message, about the same time: a hash is compared even for an unknown
 * id); the reason goes to the debug log only.
 */
static int authenticate(struct http_server *srv, struct MHD_Connection *conn,
                        struct http_request *req, struct http_reply *err_r)
{
	static const uint8_t dummy[TOKEN_HASH_LEN];
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	const char *why = NULL;
	int64_t id = 0;
	struct store_token tok;
	uint8_t hash[TOKEN_HASH_LEN];
	if (h == NULL) {
		why = "missing";
		goto fail;
	}
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		why = "not_bearer";
		goto fail;
	}
	h += 7;
	h += strspn(h, " ");
	size_t len = strnlen(h, TOKEN_TEXT_MAX + 1);
	if (len > TOKEN_TEXT_MAX || token_parse(h, len, &id) < 0) {
		why = "malformed";
		goto fail;
	}
	token_hash(h, len, hash);
	int rc = store_token(srv->svc->store, id, &tok);
	if (rc < 0) {
		*err_r = http_store_unavailable();
		return -1;
	}
	bool match = token_hash_equal(hash, rc == 0 ? tok.hash : dummy);
	if (rc != 0 || !match) {
		why = rc != 0 ? "unknown_or_revoked" : "wrong_secret";
		goto fail;
	}
	if (tok.expires != 0 && (int64_t)time(NULL) >= tok.expires) {
		why = "expired";
		goto fail;
	}
	req->authenticated = true;
	req->tok = tok;
	return 0;
fail:
	log_debug("http event=auth_failed reason=%s token_id=%lld", why, (long long)id);
	*err_r = unauthorized();
	return -1;
}

bool http_self_allows(struct http_server *srv, struct http_request *req, const char *address)
{
	if (!req->authenticated || req->tok.scope != TOKEN_SELF)
		return true;
	struct store_mailbox mb;
	enum service_resolve_error e;
	const char *why;
	return service_resolve_mailbox(srv->svc, address, strlen(address), true, &mb, &e, &why) ==
	               0 &&
	       mb.id == req->tok.mailbox_id;
}

/*
 * The route for method and url: 0 with req->route, req->param and req->arg set, or -1 with the
 * reply (404, 405 with Allow, 400 for an overlong path segment).
 */
static int find_route(const char *method, const char *url, struct http_request *req,
                      struct http_reply *err_r)
{
	const char *pattern = best_pattern(url, req->param, sizeof(req->param));
	if (pattern == NULL) {
		*err_r = error_reply(404, "not_found", "no such endpoint");
		return -1;
	}
	if (strstr(pattern, "{}") != NULL && req->param[0] == '\0') {
		*err_r = error_reply(
		        400, "invalid_parameter",
		        "a path segment is longer than 1024 bytes (HTTP_PARAM_VALUE_MAX)");
		return -1;
	}
	for (size_t i = 0; i < NROUTES; i++) {
		if (strcmp(routes[i].path, pattern) != 0)
			continue;
		if (strcmp(routes[i].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
			req->route = &routes[i];
			req->arg = routes[i].arg;
			return 0;
		}
		size_t ml = strlen(req->allow);
		snprintf(req->allow + ml, sizeof(req->allow) - ml, "%s%s", ml ? ", " : "",
		         routes[i].method);
	}
	*err_r = error_reply(405, "method_not_allowed", "method not allowed for this endpoint");
	err_r->allow = req->allow;
	return -1;
}

/* Sets *bad when a query parameter (name or value) holds a NUL byte: libmicrohttpd hands values
   out as C strings, so "1%00" would silently be read as "1". */
static enum MHD_Result find_nul(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
	(void)kind;
	const char **bad = cls;
	if (memchr(key, '\0', key_size) != NULL ||
	    (value != NULL && memchr(value, '\0', value_size) != NULL)) {
		*bad = "a query parameter holds a NUL byte";
		return MHD_NO;
	}
	return MHD_YES;
}

/* The header lines as libmicrohttpd split them, in order. */
struct header_list {
	size_t n;
	bool overflow;
	const char *key[HTTP_HEADERS_MAX];
	const char *value[HTTP_HEADERS_MAX];
	size_t value_size[HTTP_HEADERS_MAX];
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
	(void)kind;
	(void)key_size;
	struct header_list *l = cls;
	if (l->n == HTTP_HEADERS_MAX) {
		l->overflow = true;
		return MHD_NO;
	}
	l->key[l->n] = key;
	l->value[l->n] = value != NULL ? value : "";
	l->value_size[l->n] = value != NULL ? value_size : 0;
	l->n++;
	return MHD_YES;
}

/*
 * Whether a raw NUL byte sits inside a header line. libmicrohttpd 0.9.75 (Debian 12) parses the
 * request head in place and ends a header's value at its first NUL, so "Bearer <token>\0junk"
 * would reach us as a clean "Bearer <token>". The head stays contiguous from the method (its
 * read buffer only ever grows in place), each line ending in one or two NULs (its CR LF): after
 * a clean value comes exactly its line end and then the next header's name, or after the last
 * one the empty line and the end of the head. Anything else is a NUL inside a line.
 * 0 clean, -1 with *why_r for a NUL, 1 for more than HTTP_HEADERS_MAX lines.
 */
static int header_nul(struct MHD_Connection *conn, const char *method, const char **why_r)
        __attribute__((warn_unused_result));
static int header_nul(struct MHD_Connection *conn, const char *method, const char **why_r)
{
	static _Thread_local struct header_list l;
	l.n = 0;
	l.overflow = false;
	MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_header, &l);
	if (l.overflow)
		return 1;
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	if (ci == NULL || l.n == 0)
		return 0;
	const char *end = method + ci->header_size;
	for (size_t i = 0; i < l.n; i++) {
		const char *p = l.value[i] + l.value_size[i];
		if (p < method || p >= end)
			return 0; /* not laid out as described (a folded line was joined): no
			             verdict */
		p++;
		if (p < end && *p == '\0')
			p++;
		bool clean = true;
		if (i + 1 < l.n)
			clean = p == l.key[i + 1];
		else
			while (clean && p < end)
				clean = *p++ == '\0';
		if (!clean) {
			*why_r = "a header holds a NUL byte";
			return -1;
		}
	}
	return 0;
}

/*
 * What can be decided from the request line and headers alone, before any byte of a body is
 * read: malformed values, the route, the token and its scope, the body's announced size. 0 to
 * go on, or -1 with the answer in *err_r.
 */
static int check_headers(struct http_server *srv, struct MHD_Connection *conn, const char *method,
                         const char *url, const char *version, struct http_request *req,
                         struct http_reply *err_r)
{
	const char *bad = NULL;
	/* the raw request target ended at its first NUL when libmicrohttpd logged it: it must
	   end right before the space that precedes the version */
	if (req->bad_uri || (req->raw_uri != NULL && version[0] != '\0' &&
	                     req->raw_uri + req->raw_uri_len + 1 != version))
		bad = "the request target holds a NUL byte";
	if (bad == NULL) /* decoded query parameters keep a NUL in their length; headers do not */
		MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, find_nul, &bad);
	if (bad == NULL && header_nul(conn, method, &bad) > 0) {
		*err_r = error_reply(431, "too_many_headers",
		                     "more than 100 header lines (HTTP_HEADERS_MAX)");
		return -1;
	}
	if (bad != NULL) {
		*err_r = error_reply(400, "invalid_request", bad);
		return -1;
	}
	if (strcmp(method, "OPTIONS") == 0)
		return 0; /* a CORS preflight: no token, answered at the end */
	if (find_route(method, url, req, err_r) < 0)
		return -1;
	const struct route *rt = req->route;
	if (rt->scopes != S_NONE) {
		if (authenticate(srv, conn, req, err_r) < 0)
			return -1;
		if ((rt->scopes & (1u << req->tok.scope)) == 0) {
			*err_r = http_forbidden();
			return -1;
		}
	}
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
	uint64_t clen;
	if (cl != NULL && strnum_u64(cl, strlen(cl), UINT64_MAX, &clen) == 0 &&
	    clen > rt->body_max) {
		*err_r = error_reply(413, "body_too_large",
		                     rt->body_max == NOBODY ? "this endpoint takes no body"
		                     : rt->body_max == BULK ? "an import exceeds 32 MiB: split it"
		                                            : "request body exceeds 512 KiB");
		return -1;
	}
	buf_init(&req->body, rt->body_max);
	return 0;
}

/* Whether the client announced a body (which an early answer leaves unread: it closes). */
static bool has_body(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding") != NULL ||
	       (cl != NULL && strcmp(cl, "0") != 0);
}

/* The request's Origin if http_cors_origins allows it, else NULL. */
static const char *cors_origin(struct http_server *srv, struct MHD_Connection *conn)
{
	const char *o = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	const char *list = srv->cfg->http_cors_origins;
	if (o == NULL || list[0] == '\0')
		return NULL;
	size_t olen = strlen(o);
	for (const char *p = list; *p != '\0';) {
		size_t n = strcspn(p, " ,\t");
		if ((n == 1 && p[0] == '*') || (n == olen && strncasecmp(p, o, n) == 0))
			return o;
		p += n;
		p += strspn(p, " ,\t");
	}
	return NULL;
}

/* A CORS preflight: the methods the path allows, with the headers a dashboard sends. */
static struct http_reply preflight(struct http_server *srv, struct MHD_Connection *conn,
                                   const char *url, struct http_request *req)
{
	(void)srv;
	(void)conn;
	const char *pattern = best_pattern(url, req->param, sizeof(req->param));
	if (pattern == NULL)
		return error_reply(404, "not_found", "no such endpoint");
	for (size_t i = 0; i < NROUTES; i++) {
		if (strcmp(routes[i].path, pattern) != 0)
			continue;
		size_t ml = strlen(req->allow);
		snprintf(req->allow + ml, sizeof(req->allow) - ml, "%s%s", ml ? ", " : "",
		         routes[i].method);
	}
	struct http_reply r = { .status = 204, .allow = req->allow };
	return r;
}

static enum MHD_Result send_reply(struct http_server *srv, struct MHD_Connection *conn,
                                  struct http_reply *r, bool is_preflight)
{
	char *text = NULL;
	size_t len = 0;
	struct MHD_Response *resp = r->stream;
	if (resp != NULL) {
		MHD_add_response_header(resp, "Content-Type", r->content_type);
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	} else if (r->status == 204 || r->status == 304) {
		json_decref(r->body);
		free(r->raw);
		text = NULL;
		len = 0;
	} else if (r->text != NULL) {
		/* hand the buffer's storage to MHD: a trailing newline for readable curl output */
		(void)!buf_append(r->text, "\n", 1); /* at the limit the JSON goes without it */
		len = r->text->len;
		text = r->text->data;
		free(r->text);
		r->text = NULL;
	} else {
		text = r->raw != NULL    ? r->raw
		       : r->body != NULL ? json_dumps(r->body, JSON_COMPACT)
		                         : NULL;
		json_decref(r->body);
		if (text == NULL) {
			text = xstrdup(
			        "{\"error\":\"internal\",\"message\":\"cannot encode response\"}");
			r->status = 500;
		}
		len = strlen(text);
		/* a trailing newline makes curl output readable; JSON parsers ignore it */
		text = xrealloc(text, len + 2);
		text[len++] = '\n';
		text[len] = '\0';
	}
	if (resp == NULL)
		resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		free(r->location);
		return MHD_NO;
	}
	if (len > 0) {
		MHD_add_response_header(resp, "Content-Type", "application/json");
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	}
	if (r->allow != NULL && !is_preflight)
		MHD_add_response_header(resp, "Allow", r->allow);
	if (r->retry_after != 0) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%u", r->retry_after);
		MHD_add_response_header(resp, "Retry-After", ra);
	}
	if (r->etag[0] != '\0') {
		char et[sizeof(r->etag) + 2];
		snprintf(et, sizeof(et), "\"%s\"", r->etag);
		MHD_add_response_header(resp, "ETag", et);
	}
	if (r->location != NULL) {
		MHD_add_response_header(resp, "Location", r->location);
		free(r->location);
		r->location = NULL;
	}
	if (r->www_authenticate)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"mailquota\"");
	if (atomic_load(&srv->draining)) /* shutting down: no further request on this connection */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	const char *origin = cors_origin(srv, conn);
	if (origin != NULL) {
		MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
		MHD_add_response_header(resp, "Vary", "Origin");
		if (is_preflight) {
			MHD_add_response_header(resp, "Access-Control-Allow-Methods",
			                        r->allow != NULL ? r->allow : "");
			MHD_add_response_header(resp, "Access-Control-Allow-Headers",
			                        "Authorization, Content-Type, If-Match, "
			                        "If-None-Match");
			MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
		} else {
			MHD_add_response_header(resp, "Access-Control-Expose-Headers",
			                        "ETag, Location, Retry-After");
		}
	}
	enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void log_request(const char *method, const char *url, struct http_request *req,
                        unsigned status)
{
	if (!log_enabled(LOG_LEVEL_DEBUG))
		return;
	char u[128];
	log_debug("http method=%s url=\"%s\" status=%u token=%lld", method,
	          str_sanitize(u, sizeof(u), url, strlen(url), 100), status,
	          req->authenticated ? (long long)req->tok.id : 0LL);
}

/* The first callback: the headers are in. Refuse what the headers already condemn; an answer
   to a request with a body goes out at once (the body is never read, so the connection closes),
   one without a body waits for the last callback so the connection stays alive. */
static enum MHD_Result on_headers(struct http_server *srv, struct MHD_Connection *conn,
                                  const char *url, const char *method, const char *version,
                                  struct http_request *req)
{
	req->started = true;
	if (check_headers(srv, conn, method, url, version, req, &req->early) == 0)
		return MHD_YES;
	req->has_early = true;
	if (!has_body(conn))
		return MHD_YES;
	req->answered = true;
	log_request(method, url, req, req->early.status);
	return send_reply(srv, conn, &req->early, false);
}

/* Take a piece of the body: buffered up to the route's limit, then discarded to answer 413 at
   its end, or the connection is closed past HTTP_DRAIN_MAX. */
static enum MHD_Result on_body(struct http_request *req, const char *data, size_t *size)
{
	if (!req->too_large && buf_append(&req->body, data, *size) < 0) {
		req->too_large = true;
		buf_free(&req->body);
	}
	if (req->too_large) {
		req->drained += *size;
		if (req->drained > HTTP_DRAIN_MAX)
			return MHD_NO;
	}
	*size = 0;
	return MHD_YES;
}

enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **req_cls)
{
	struct http_server *srv = cls;
	struct http_request *req = *req_cls;
	if (req == NULL) /* no URI callback came first (it always does): start fresh */
		*req_cls = req = http_uri_log(srv, url, conn);
	if (!req->started)
		return on_headers(srv, conn, url, method, version, req);
	if (*upload_data_size != 0)
		return on_body(req, upload_data, upload_data_size);
	if (req->answered)
		return MHD_YES;
	if (req->reply_ready) { /* a worker answered and resumed the connection */
		req->answered = true;
		log_request(method, url, req, req->reply.status);
		return send_reply(srv, conn, &req->reply, false);
	}
	if (req->queued)
		return MHD_YES;
	http_request_begin(req);
	bool is_preflight = strcmp(method, "OPTIONS") == 0;
	struct http_reply r;
	if (req->has_early)
		r = req->early;
	else if (req->too_large)
		r = error_reply(413, "body_too_large", "request body exceeds the endpoint's limit");
	else if (is_preflight)
		r = preflight(srv, conn, url, req);
	else if (req->route->where == ON_WORKER) {
		http_defer(req);
		return MHD_YES; /* answered when the worker resumes the connection */
	} else
		r = http_run_route(req);
	req->answered = true;
	log_request(method, url, req, r.status);
	return send_reply(srv, conn, &r, is_preflight);
}

void http_on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                       enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct http_request *req = *req_cls;
	if (req == NULL)
		return;
	http_request_end(req);
	if (!req->answered && req->has_early)
		http_reply_free(&req->early);
	if (!req->answered && req->reply_ready)
		http_reply_free(&req->reply);
	buf_free(&req->body);
	free(req);
	*req_cls = NULL;
}
