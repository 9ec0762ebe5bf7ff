/*
 * http_internal: what the HTTP front end's two halves share: http.c (server, routing, tokens,
 * CORS, checks and usage) and http_admin.c (the admin resources). Not for other modules.
 */
#ifndef MQ_HTTP_INTERNAL_H
#define MQ_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

#include "buf.h"
#include "config.h"
#include "http.h"
#include "service.h"
#include "store.h"

struct http_server {
	struct MHD_Daemon *mhd;
	const struct config *cfg;
	const struct service *svc;
};

struct http_request {
	struct buf body;
	bool too_large;
	bool answered;
	size_t drained;                       /* bytes of an oversized body thrown away */
	char param[HTTP_PARAM_VALUE_MAX + 1]; /* the {} segment of the matched route */
	char allow[96];                       /* the Allow header of a 405 */
	int arg;                              /* the matched route's argument (a resource kind) */
	bool authenticated;                   /* tok is the caller's token */
	struct store_token tok;
};

/* What a handler produces: a status and a body, plus optional headers. */
struct http_reply {
	unsigned status;
	json_t *body;     /* owned; or */
	struct buf *text; /* owned, already JSON (written by jsonw); or */
	char *raw;        /* owned, already JSON (a document made by PostgreSQL); or none */
	const char *allow;
	unsigned retry_after; /* seconds, for 503; 0: no header */
	char etag[48];        /* without quotes; "" for none */
	char *location;       /* owned; NULL for none */
	bool www_authenticate;
	struct MHD_Response *stream; /* owned: a streamed body (exports) instead of the above */
	const char *content_type;    /* with stream */
};

typedef struct http_reply (*http_handler)(struct http_server *srv, struct MHD_Connection *conn,
                                          struct http_request *req);

/* {"error": code, "message": message} */
struct http_reply http_error(unsigned status, const char *code, const char *message);
/* The same with "field": field. */
struct http_reply http_error_field(unsigned status, const char *code, const char *field,
                                   const char *message);
/* 503 database_unavailable with Retry-After. */
struct http_reply http_db_unavailable(const char *why);
/* 503 store_unavailable (the in-memory view is not loaded) with Retry-After. */
struct http_reply http_store_unavailable(void);
/* 403 for a token whose scope does not cover the request. */
struct http_reply http_forbidden(void);

/* Decode a JSON object body (Content-Type checked, duplicate keys refused); 0 with *doc_r
   (caller decrefs), or -1 with the error reply. */
int http_parse_body(struct MHD_Connection *conn, struct http_request *req, json_t **doc_r,
                    struct http_reply *err_r) __attribute__((warn_unused_result));

/* Whether the caller may see or act on the mailbox named address: always, unless its token is
   bound to one mailbox (scope self) and address does not name exactly that mailbox. */
bool http_self_allows(struct http_server *srv, struct http_request *req, const char *address);

/* Admin handlers (http_admin.c); req->arg is the resource kind. */
struct http_reply http_admin_list(struct http_server *, struct MHD_Connection *,
                                  struct http_request *);
struct http_reply http_admin_create(struct http_server *, struct MHD_Connection *,
                                    struct http_request *);
struct http_reply http_admin_get(struct http_server *, struct MHD_Connection *,
                                 struct http_request *);
struct http_reply http_admin_update(struct http_server *, struct MHD_Connection *,
                                    struct http_request *);
struct http_reply http_admin_delete(struct http_server *, struct MHD_Connection *,
                                    struct http_request *);
struct http_reply http_admin_audit(struct http_server *, struct MHD_Connection *,
                                   struct http_request *);
struct http_reply http_admin_export(struct http_server *, struct MHD_Connection *,
                                    struct http_request *);
struct http_reply http_admin_import(struct http_server *, struct MHD_Connection *,
                                    struct http_request *);
struct http_reply http_admin_usage_put(struct http_server *, struct MHD_Connection *,
                                       struct http_request *);

#endif
