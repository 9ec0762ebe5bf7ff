/*
 * http: libmicrohttpd's request callbacks: what the request head alone condemns (NUL bytes,
 * too many headers, then http_route.c's route, token, scope and announced size), the body
 * read up to its route's limit, the handler run here or on a worker, and the reply sent by
 * http_reply.c; and strict JSON body decoding. It must never buffer more than its route's limit
 * of a body, never crash or hang on malformed input, and never queue a response on
 * libmicrohttpd's first callback for a request without a body (that would cost keep-alive).
 */
#include "http.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http_internal.h"
#include "log.h"

struct http_reply http_run_route(struct http_request *req)
{
	return req->route->handler(req->srv, req->conn, req);
}

/* Decode a JSON object body (Content-Type checked, duplicate keys refused); 0 with *doc_r
   (caller decrefs), or -1 with the error reply. */
int http_parse_body(struct MHD_Connection *conn, struct http_request *req, json_t **doc_r,
                    struct http_reply *err_r)
{
	const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
	if (ctype != NULL && strncasecmp(ctype, "application/json", 16) != 0) {
		*err_r = http_error(415, "unsupported_media_type",
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
		*err_r = http_error(400, "invalid_json", msg);
		return -1;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		*err_r = http_error(400, "invalid_body", "the body must be a JSON object");
		return -1;
	}
	*doc_r = doc;
	return 0;
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
		*err_r = http_error(431, "too_many_headers",
		                    "more than 100 header lines (HTTP_HEADERS_MAX)");
		return -1;
	}
	if (bad != NULL) {
		*err_r = http_error(400, "invalid_request", bad);
		return -1;
	}
	if (strcmp(method, "OPTIONS") == 0)
		return 0; /* a CORS preflight: no token, answered at the end */
	if (http_route_find(method, url, req, err_r) < 0)
		return -1;
	return http_route_admit(srv, conn, req, err_r);
}

/* Whether the client announced a body (which an early answer leaves unread: it closes). */
static bool has_body(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding") != NULL ||
	       (cl != NULL && strcmp(cl, "0") != 0);
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
	return http_reply_send(srv, conn, &req->early, false);
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
		return http_reply_send(srv, conn, &req->reply, false);
	}
	if (req->queued)
		return MHD_YES;
	http_request_begin(req);
	bool is_preflight = strcmp(method, "OPTIONS") == 0;
	struct http_reply r;
	if (req->has_early)
		r = req->early;
	else if (req->too_large)
		r = http_route_too_large(req);
	else if (is_preflight)
		r = http_route_preflight(url, req);
	else if (req->route->where == HTTP_ON_WORKER) {
		http_defer(req);
		return MHD_YES; /* answered when the worker resumes the connection */
	} else
		r = http_run_route(req);
	req->answered = true;
	log_request(method, url, req, r.status);
	return http_reply_send(srv, conn, &r, is_preflight);
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
