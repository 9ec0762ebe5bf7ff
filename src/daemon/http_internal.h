/*
 * http_internal: what the HTTP front end's files share: http_server.c (the libmicrohttpd
 * daemon, connection deadlines, workers, streams, drain), http.c (routing, tokens, CORS,
 * replies), http_check.c (checks, health, usage) and http_admin.c (the admin resources).
 * Not for other modules.
 */
#ifndef MQ_HTTP_INTERNAL_H
#define MQ_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "http.h"
#include "service.h"
#include "store.h"

struct route;
struct worker_pool;

/* One client connection, tracked from accept to close for the request deadline and drain. */
struct http_conn {
	int fd;
	struct timespec since; /* connected, or its previous response finished */
	bool busy;             /* a complete request is being answered: no deadline */
	bool kicked;           /* past the deadline: shut down, waiting for MHD to close it */
	struct http_conn *prev, *next;
};

struct http_server {
	struct MHD_Daemon *mhd;
	const struct config *cfg;
	const struct service *svc;
	struct worker_pool *workers; /* database-bound requests */
	pthread_t reaper;            /* enforces http_request_timeout */
	bool reaper_started;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;  /* signalled when a count below drops or the reaper must stop */
	struct http_conn *conns;
	unsigned inflight;    /* complete requests not yet answered and sent */
	unsigned suspended;   /* suspended connections whose resume is still to come */
	unsigned streams;     /* streamed bodies whose producer thread is running */
	atomic_bool draining; /* SIGTERM: no new connections, "Connection: close" (no lock) */
	bool stopping;        /* the reaper ends */
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

struct http_request;
typedef struct http_reply (*http_handler)(struct http_server *srv, struct MHD_Connection *conn,
                                          struct http_request *req);

struct http_request {
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct http_conn *hc;      /* the connection's tracking record */
	const struct route *route; /* NULL: none matched (the early reply says why) */
	bool started;              /* the headers were seen (first callback done) */
	bool bad_uri;              /* the raw URI held %00 */
	const char *raw_uri; /* the raw request target as logged (in libmicrohttpd's buffer) */
	size_t raw_uri_len;  /* its length up to its first NUL */
	bool counted;        /* counted in srv->inflight */
	bool queued;         /* handed to a worker; suspended until it answers */
	bool reply_ready;    /* reply holds the worker's answer */
	bool has_early;      /* early holds an answer decided from the headers alone */
	struct buf body;
	bool too_large;
	bool answered;
	size_t drained;                       /* bytes of an oversized body thrown away */
	char param[HTTP_PARAM_VALUE_MAX + 1]; /* the {} segment of the matched route */
	char allow[96];                       /* the Allow header of a 405 */
	int arg;                              /* the matched route's argument (a resource kind) */
	bool authenticated;                   /* tok is the caller's token */
	struct store_token tok;
	struct http_reply early; /* with has_early */
	struct http_reply reply; /* with reply_ready */
};

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
/* Free what a reply owns (one that will not be sent). */
void http_reply_free(struct http_reply *r);

/* Decode a JSON object body (Content-Type checked, duplicate keys refused); 0 with *doc_r
   (caller decrefs), or -1 with the error reply. */
int http_parse_body(struct MHD_Connection *conn, struct http_request *req, json_t **doc_r,
                    struct http_reply *err_r) __attribute__((warn_unused_result));

/* Whether the caller may see or act on the mailbox named address: always, unless its token is
   bound to one mailbox (scope self) and address does not name exactly that mailbox. */
bool http_self_allows(struct http_server *srv, struct http_request *req, const char *address);

/* Handlers that answer from the view (http_check.c), and the usage report writer. */
struct http_reply http_check_get(struct http_server *, struct MHD_Connection *,
                                 struct http_request *);
struct http_reply http_check_post(struct http_server *, struct MHD_Connection *,
                                  struct http_request *);
struct http_reply http_health(struct http_server *, struct MHD_Connection *, struct http_request *);
struct http_reply http_usage_post(struct http_server *, struct MHD_Connection *,
                                  struct http_request *);
struct http_reply http_usage_get(struct http_server *, struct MHD_Connection *,
                                 struct http_request *);

/* ---- http_server.c: the daemon, connections, workers, drain ---- */

/*
 * Suspend req's connection and hand req to a worker, which runs req->route's handler into
 * req->reply, sets req->reply_ready and resumes the connection; libmicrohttpd then calls
 * http_on_request again, which sends it. When every worker is busy and the queue is full, the
 * worker's part is played at once with a 503 "busy" reply. Never fails.
 */
void http_defer(struct http_request *req);

/*
 * A response body produced on its own thread: produce(ctx, out) appends the next piece to out
 * and returns 1 (more to come), 0 (that was the end) or -1 (failed: the client sees a cut body);
 * done(ctx) runs on that thread after the last call. At most HTTP_STREAMS_MAX at once. Returns
 * the response (the caller queues it), or NULL when too many run or a thread cannot start:
 * then done(ctx) has not run and ctx is still the caller's.
 */
typedef int (*http_produce_fn)(void *ctx, struct buf *out);
struct MHD_Response *http_stream_new(struct http_server *srv, struct MHD_Connection *conn,
                                     http_produce_fn produce, void (*done)(void *ctx), void *ctx);

/* Run the handler of req's route (http.c); a worker calls it for ON_WORKER routes. */
struct http_reply http_run_route(struct http_request *req);

/* 503 "busy" with Retry-After: no worker, or no stream, is free. */
struct http_reply http_busy(const char *message);

/* Request accounting, called by http.c: a complete request is being answered / was sent. */
void http_request_begin(struct http_request *req);
void http_request_end(struct http_request *req);

/* http.c: the libmicrohttpd callbacks. */
void *http_uri_log(void *cls, const char *uri, struct MHD_Connection *conn);
enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **req_cls);
void http_on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                       enum MHD_RequestTerminationCode toe);

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
