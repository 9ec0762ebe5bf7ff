/*
 * http_reply: the value every HTTP handler returns, and the one place it becomes a
 * libmicrohttpd response: the body by its kind, the headers (Allow, Retry-After, ETag,
 * Location, WWW-Authenticate, CORS) and "Connection: close" while draining. Every error is
 * {"error": code, "message": text} with a 4xx/5xx status. It must never send a body with 204 or
 * 304, never leak what a reply owns, and never answer anything but JSON outside a stream or a
 * static body (which brings its own type and headers).
 */
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http.h"
#include "http_internal.h"
#include "xalloc.h"

struct http_reply http_reply_empty(unsigned status)
{
	return (struct http_reply){ .status = status, .kind = HTTP_BODY_NONE };
}

struct http_reply http_reply_json(unsigned status, json_t *json)
{
	return (struct http_reply){ .status = status, .kind = HTTP_BODY_JSON, .body.json = json };
}

struct http_reply http_reply_text(unsigned status, struct buf *text)
{
	return (struct http_reply){ .status = status, .kind = HTTP_BODY_TEXT, .body.text = text };
}

struct http_reply http_reply_raw(unsigned status, char *raw)
{
	return (struct http_reply){ .status = status, .kind = HTTP_BODY_RAW, .body.raw = raw };
}

struct http_reply http_reply_stream(struct MHD_Response *response, const char *content_type)
{
	return (struct http_reply){ .status = 200,
		                    .kind = HTTP_BODY_STREAM,
		                    .body.stream = { response, content_type } };
}

struct http_reply http_reply_static(const struct http_static *body)
{
	return (struct http_reply){ .status = 200, .kind = HTTP_BODY_STATIC, .body.fixed = body };
}

struct http_reply http_error(unsigned status, const char *code, const char *message)
{
	return http_reply_json(status, json_pack("{s:s, s:s}", "error", code, "message", message));
}

struct http_reply http_error_field(unsigned status, const char *code, const char *field,
                                   const char *message)
{
	return http_reply_json(status, json_pack("{s:s, s:s, s:s}", "error", code, "field", field,
	                                         "message", message));
}

struct http_reply http_forbidden(void)
{
	return http_error(403, "forbidden", "this token's scope does not allow this request");
}

/* A 503 that asks the client to come back. */
static struct http_reply retry_later(const char *code, const char *message)
{
	struct http_reply r = http_error(503, code, message);
	r.retry_after = HTTP_RETRY_AFTER;
	return r;
}

struct http_reply http_store_unavailable(void)
{
	return retry_later("store_unavailable",
	                   "quota data is temporarily unavailable; retry later");
}

struct http_reply http_busy(const char *message)
{
	return retry_later("busy", message);
}

struct http_reply http_db_unavailable(const char *why)
{
	return retry_later("database_unavailable", why);
}

/* Free the body only. */
static void body_free(struct http_reply *r)
{
	switch (r->kind) {
	case HTTP_BODY_NONE:
	case HTTP_BODY_STATIC:
		break;
	case HTTP_BODY_JSON:
		json_decref(r->body.json);
		break;
	case HTTP_BODY_TEXT:
		buf_free(r->body.text);
		free(r->body.text);
		break;
	case HTTP_BODY_RAW:
		free(r->body.raw);
		break;
	case HTTP_BODY_STREAM:
		MHD_destroy_response(r->body.stream.response);
		break;
	}
	r->kind = HTTP_BODY_NONE;
}

void http_reply_free(struct http_reply *r)
{
	body_free(r);
	free(r->location);
	r->location = NULL;
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

/* The JSON text of a reply's body, with a trailing newline for readable curl output (JSON
   parsers ignore it): malloc'd in *text_r, its length in *len_r; NULL when there is none. */
static void body_text(struct http_reply *r, char **text_r, size_t *len_r)
{
	char *text = NULL;
	size_t len = 0;
	switch (r->kind) {
	case HTTP_BODY_NONE:
	case HTTP_BODY_STREAM:
	case HTTP_BODY_STATIC:
		break;
	case HTTP_BODY_TEXT: {
		/* hand the buffer's storage over; at its limit the JSON goes without the newline */
		struct buf *b = r->body.text;
		if (b->len < b->max && buf_append(b, "\n", 1) < 0)
			abort(); /* there was room */
		text = b->data != NULL ? b->data : xstrdup("");
		len = b->len;
		free(b);
		r->kind = HTTP_BODY_NONE;
		break;
	}
	case HTTP_BODY_RAW:
	case HTTP_BODY_JSON:
		if (r->kind == HTTP_BODY_RAW) {
			text = r->body.raw;
		} else {
			text = r->body.json != NULL ? json_dumps(r->body.json, JSON_COMPACT) : NULL;
			json_decref(r->body.json);
		}
		r->kind = HTTP_BODY_NONE;
		if (text == NULL) {
			text = xstrdup(
			        "{\"error\":\"internal\",\"message\":\"cannot encode response\"}");
			r->status = 500;
		}
		len = strlen(text);
		text = xrealloc(text, len + 2);
		text[len++] = '\n';
		text[len] = '\0';
		break;
	}
	*text_r = text;
	*len_r = len;
}

/* Every header but the body's own. */
static void add_headers(struct http_server *srv, struct MHD_Connection *conn,
                        const struct http_reply *r, struct MHD_Response *resp, bool preflight)
{
	if (r->allow != NULL && !preflight)
		MHD_add_response_header(resp, "Allow", r->allow);
	if (r->retry_after != 0) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%u", r->retry_after); /* an unsigned fits */
		MHD_add_response_header(resp, "Retry-After", ra);
	}
	if (r->etag[0] != '\0') {
		char et[sizeof(r->etag) + 2];
		snprintf(et, sizeof(et), "\"%s\"", r->etag); /* sized for it */
		MHD_add_response_header(resp, "ETag", et);
	}
	if (r->location != NULL)
		MHD_add_response_header(resp, "Location", r->location);
	if (r->www_authenticate)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"mailquota\"");
	if (atomic_load(&srv->draining)) /* shutting down: no further request on this connection */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	const char *origin = cors_origin(srv, conn);
	if (origin == NULL)
		return;
	MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
	MHD_add_response_header(resp, "Vary", "Origin");
	if (preflight) {
		MHD_add_response_header(resp, "Access-Control-Allow-Methods",
		                        r->allow != NULL ? r->allow : "");
		MHD_add_response_header(resp, "Access-Control-Allow-Headers",
		                        "Authorization, Content-Type, If-Match, If-None-Match");
		MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
	} else {
		MHD_add_response_header(resp, "Access-Control-Expose-Headers",
		                        "ETag, Location, Retry-After");
	}
}

enum MHD_Result http_reply_send(struct http_server *srv, struct MHD_Connection *conn,
                                struct http_reply *r, bool preflight)
{
	struct MHD_Response *resp;
	if (r->kind == HTTP_BODY_STREAM) {
		resp = r->body.stream.response;
		r->kind = HTTP_BODY_NONE;
		MHD_add_response_header(resp, "Content-Type", r->body.stream.content_type);
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	} else if (r->kind == HTTP_BODY_STATIC) {
		const struct http_static *s = r->body.fixed;
		r->kind = HTTP_BODY_NONE;
		/* PERSISTENT: libmicrohttpd neither copies, frees nor writes it */
		resp = MHD_create_response_from_buffer(s->len, (void *)s->data,
		                                       MHD_RESPMEM_PERSISTENT);
		if (resp == NULL) {
			http_reply_free(r);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type", s->content_type);
		MHD_add_response_header(resp, "Cache-Control", s->cache_control);
		for (const struct http_header *h = s->headers; h != NULL && h->name != NULL; h++)
			MHD_add_response_header(resp, h->name, h->value);
	} else {
		char *text = NULL;
		size_t len = 0;
		if (r->status == 204 || r->status == 304)
			body_free(r); /* these never carry a body */
		else
			body_text(r, &text, &len);
		resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
		if (resp == NULL) {
			free(text);
			http_reply_free(r);
			return MHD_NO;
		}
		if (len > 0) {
			MHD_add_response_header(resp, "Content-Type", "application/json");
			MHD_add_response_header(resp, "Cache-Control", "no-store");
		}
	}
	add_headers(srv, conn, r, resp, preflight);
	http_reply_free(r);
	enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}
