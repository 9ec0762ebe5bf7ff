/*
 * http_internal: what the HTTP front end's files share: http_server.c (the libmicrohttpd
 * daemon, connection deadlines, workers, streams, drain), http.c (the request callbacks: head
 * checks, body reading, dispatch), http_route.c (the route table, tokens and scopes),
 * http_reply.c (the reply value and its one conversion to a libmicrohttpd response),
 * http_check.c (checks, health, usage), http_admin.c (the admin resources), http_admin_list.c
 * (lists, the audit log, query parameters), http_bulk.c (import and export), http_self.c
 * (GET /v1/self), http_precheck.c (the sender pre-check and its rate limiter), http_page.c
 * (the self-check page's files), http_stats.c (GET /v1/stats), http_recalc.c (batch
 * recalculations), http_warnings.c (the warning settings) and http_metrics.c (GET /metrics
 * and metrics_listen).
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
#include "resource.h"
#include "service.h"
#include "store.h"

struct admin;
struct http_route;
struct usage;
struct worker_pool;

/* One client connection, tracked from accept to close for the request deadline and drain. */
struct http_conn {
	int fd;
	struct timespec since; /* connected, or its previous response finished */
	bool busy;             /* a complete request is being answered: no deadline */
	bool metrics;          /* it came through metrics_listen */
	bool kicked;           /* past the deadline: shut down, waiting for MHD to close it */
	struct http_conn *prev, *next;
};

struct http_server {
	struct MHD_Daemon *mhd;
	struct MHD_Daemon *metrics_mhd; /* metrics_listen's (http_metrics.c); NULL: none */
	atomic_int metrics_fd;          /* its listening socket; -1: none (set before it starts) */
	const struct config *cfg;
	const struct service *svc;
	struct admin *admin;               /* borrowed: the admin handlers' database side */
	struct usage *usage;               /* borrowed: usage reports */
	struct worker_pool *workers;       /* database-bound requests */
	struct precheck_limiter *precheck; /* each token's precheck rate */
	pthread_t reaper;                  /* enforces http_request_timeout */
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

#define HTTP_ETAG_MAX 48 /* an ETag value without its quotes (admin.h's ADMIN_ETAG_MAX) */

/* What a reply's body is: exactly one of these. */
enum http_body {
	HTTP_BODY_NONE,   /* status and headers only (204, 304, a preflight) */
	HTTP_BODY_JSON,   /* body.json: a jansson document, encoded when sent */
	HTTP_BODY_TEXT,   /* body.text: JSON written already (jsonw, a list page) */
	HTTP_BODY_RAW,    /* body.raw: a JSON document made by PostgreSQL */
	HTTP_BODY_STREAM, /* body.stream: produced on its own thread (exports) */
	HTTP_BODY_STATIC, /* body.fixed: bytes compiled into the binary (the self-check page) */
};

/* A response header: name and value, both static. */
struct http_header {
	const char *name;
	const char *value;
};

/* A body that lives as long as the program, with how it is sent. */
struct http_static {
	const unsigned char *data;
	size_t len;
	const char *content_type;          /* "text/html; charset=utf-8", ... */
	const char *cache_control;         /* "no-store", "no-cache", ... */
	const struct http_header *headers; /* further headers, ending with { NULL, NULL } */
};

/* What every handler returns: one value, which http_reply_send() alone turns into a
   libmicrohttpd response. It owns what its body and location point to. */
struct http_reply {
	unsigned status;
	enum http_body kind;
	union {
		json_t *json;
		struct buf *text; /* malloc'd, with its storage */
		char *raw;        /* malloc'd */
		struct {
			struct MHD_Response *response;
			const char *content_type; /* static */
		} stream;
		const struct http_static *fixed; /* static: nothing owned */
	} body;
	/* headers */
	const char *allow;        /* static or the request's; NULL: none */
	unsigned retry_after;     /* seconds, for 503; 0: no header */
	char etag[HTTP_ETAG_MAX]; /* without quotes; "" for none */
	char *location;           /* owned; NULL for none */
	bool www_authenticate;
};

struct http_request;
typedef struct http_reply (*http_handler)(struct http_server *srv, struct MHD_Connection *conn,
                                          struct http_request *req);

struct http_request {
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct http_conn *hc;           /* the connection's tracking record */
	const struct http_route *route; /* NULL: none matched (the early reply says why) */
	bool started;                   /* the headers were seen (first callback done) */
	bool metrics_only;              /* from metrics_listen: GET /metrics only, no token */
	bool bad_uri;                   /* the raw URI held %00 */
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

/* ---- http_reply.c ---- */

/* Replies of each kind; each takes ownership of what it is given. A NULL json (jansson could
   not build it) is answered 500 when sent. */
struct http_reply http_reply_empty(unsigned status);
struct http_reply http_reply_json(unsigned status, json_t *json);
struct http_reply http_reply_text(unsigned status, struct buf *text);
struct http_reply http_reply_raw(unsigned status, char *raw);
struct http_reply http_reply_stream(struct MHD_Response *response, const char *content_type);
/* 200 with body (static: never freed, never copied). */
struct http_reply http_reply_static(const struct http_static *body);

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
/* 503 "busy" with Retry-After: no worker, or no stream, is free. */
struct http_reply http_busy(const char *message);
/* Free what a reply owns (one that will not be sent); it becomes an empty reply. */
void http_reply_free(struct http_reply *r);

/*
 * Queue r on conn (http_on_request's last callback, or its first for an early answer): the one
 * place a reply becomes a libmicrohttpd response, with its headers, CORS (preflight: the
 * methods in r->allow) and "Connection: close" while draining. Consumes r. Returns
 * libmicrohttpd's verdict.
 */
enum MHD_Result http_reply_send(struct http_server *srv, struct MHD_Connection *conn,
                                struct http_reply *r, bool preflight);

/* ---- http_route.c ---- */

/* Where a route's handler runs: on the connection's thread (memory only), or on a worker
   because it waits on PostgreSQL (the connection is suspended meanwhile). */
enum http_where { HTTP_ON_CONN, HTTP_ON_WORKER };

/* The body a route takes, with its limit and the 413 that answers a larger one. */
enum http_body_limit { HTTP_NO_BODY, HTTP_JSON_BODY, HTTP_BULK_BODY };

/* One row of the route table: method, path ("{}" stands for one segment), handler, the token
   scopes it admits (bits 1 << enum token_scope; 0: no token), the handler's argument, the body
   it takes and where it runs. */
struct http_route {
	const char *method;
	const char *path;
	http_handler handler;
	unsigned scopes;
	int arg;
	enum http_body_limit body;
	enum http_where where;
};

/* The route for method and url: 0 with req->route, req->param and req->arg set, or -1 with
   the reply (404, 405 with Allow, 400 for an overlong path segment). */
int http_route_find(const char *method, const char *url, struct http_request *req,
                    struct http_reply *err_r) __attribute__((warn_unused_result));

/*
 * Admit req to its route from the headers alone: its token (401) and scope (403), then an
 * announced body over the route's limit (413); then req->body is ready for that limit.
 * 0, or -1 with the reply.
 */
int http_route_admit(struct http_server *srv, struct MHD_Connection *conn, struct http_request *req,
                     struct http_reply *err_r) __attribute__((warn_unused_result));

/* The 413 for a body that outgrew req's route's limit (none: a preflight's) while read. */
struct http_reply http_route_too_large(const struct http_request *req);

/* A CORS preflight for url: 204 with the methods its path allows in Allow, or 404. */
struct http_reply http_route_preflight(const char *url, struct http_request *req);

/* Whether the caller may see or act on the mailbox named address: always, unless its token is
   bound to one mailbox (scope self) and address does not name exactly that mailbox. */
bool http_self_allows(struct http_server *srv, struct http_request *req, const char *address);

/* ---- http_check.c ---- */

/* A JSON body written with jsonw, at most HTTP_RESPONSE_MAX: begin it, then end it into a 200
   reply (or a 500, the body freed, if it outgrew the limit). */
struct jsonw;
struct buf *http_text_begin(struct jsonw *w);
/* A request's ?recipient= (required, at most HTTP_PARAM_VALUE_MAX) and &size= (default 0):
   0, or -1 with the 400 answer in *err_r. */
int http_recipient_params(struct MHD_Connection *conn, const char **rcpt_r, uint64_t *size_r,
                          struct http_reply *err_r) __attribute__((warn_unused_result));
struct http_reply http_text_end(struct jsonw *w, struct buf *text);

/* ---- http_self.c ---- */

/* GET /v1/self: a self token's own mailbox, limits, usage and what it may receive, from the
   view (never the database). */
struct http_reply http_self_get(struct http_server *srv, struct MHD_Connection *conn,
                                struct http_request *req);

/* ---- http_precheck.c ---- */

/* Rate buckets of the tokens that precheck, with their lock. Never fails. */
struct precheck_limiter *precheck_limiter_new(void);
void precheck_limiter_free(struct precheck_limiter **l);

/* GET/POST /v1/precheck: whether each recipient could take a message of size now, and
   nothing more (see http_precheck.c). */
struct http_reply http_precheck_get(struct http_server *srv, struct MHD_Connection *conn,
                                    struct http_request *req);
struct http_reply http_precheck_post(struct http_server *srv, struct MHD_Connection *conn,
                                     struct http_request *req);

/* ---- http_page.c ---- */

/* The self-check page's files, compiled into the binary (route argument). */
enum http_page_file { HTTP_PAGE_HTML, HTTP_PAGE_JS, HTTP_PAGE_CSS };

/* GET /self, /self.js, /self.css: the self-check page (no token: the page reads it from its
   URL fragment, which browsers never send). */
struct http_reply http_page(struct http_server *srv, struct MHD_Connection *conn,
                            struct http_request *req);

/* ---- http_metrics.c ---- */

/* GET /metrics: the Prometheus exposition (metrics.h), text format 0.0.4. */
struct http_reply http_metrics(struct http_server *srv, struct MHD_Connection *conn,
                               struct http_request *req);
/* Whether conn came through metrics_listen (when it cannot be told: true, the narrower). */
bool http_metrics_conn(struct http_server *srv, struct MHD_Connection *conn);
/* Count the connection refusals libmicrohttpd reports only in its log messages, by the
   logger's context of the daemon that wrote msg. */
void http_metrics_library_message(void *logger_cls, const char *msg);
/*
 * Open metrics_listen (cfg->metrics_listen, set): its socket in srv->metrics_fd and a daemon
 * in srv->metrics_mhd with flags, the API's callbacks and the API's connection limits. 0, or
 * -1 with *error_r (static, or policy_listen.h's thread-local text).
 */
int http_metrics_open(struct http_server *srv, unsigned flags, MHD_AccessHandlerCallback on_request,
                      MHD_NotifyConnectionCallback on_connection, MHD_LogCallback logger,
                      const char **error_r) __attribute__((warn_unused_result));

/* ---- http.c ---- */

/* Decode a JSON object body (Content-Type checked, duplicate keys refused); 0 with *doc_r
   (caller decrefs), or -1 with the error reply. */
int http_parse_body(struct MHD_Connection *conn, struct http_request *req, json_t **doc_r,
                    struct http_reply *err_r) __attribute__((warn_unused_result));

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

/* Run the handler of req's route (http.c); a worker calls it for HTTP_ON_WORKER routes. */
struct http_reply http_run_route(struct http_request *req);

/* Request accounting, called by http.c: a complete request is being answered / was sent. */
void http_request_begin(struct http_request *req);
void http_request_end(struct http_request *req);

/* http_server.c: the request target, seen before libmicrohttpd cuts it at a NUL. */
void *http_uri_log(void *cls, const char *uri, struct MHD_Connection *conn);
/* http.c: the libmicrohttpd callbacks. */
enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **req_cls);
void http_on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                       enum MHD_RequestTerminationCode toe);

/* ---- the admin handlers; req->arg is the resource kind ---- */

struct admin_result;

/* The answer to a change or read of kind that came to res (http_admin.c's one table of
   outcomes); takes res's document. A created object's Location comes from key, or from id when
   key is NULL (a token). */
struct http_reply http_admin_reply(enum resource_kind kind, const struct resource_key *key,
                                   const char *id, struct admin_result *res);
/* 503 for an admin call that returned -1 (the database cannot be reached). */
struct http_reply http_admin_unavailable(const char *error);

/* The query parameters of a request, as libmicrohttpd decoded them. */
struct http_query {
	struct {
		const char *name;
		const char *value;
	} p[HTTP_QUERY_PARAMS_MAX];
	size_t n;
	bool too_many, too_long;
};
/* Collect conn's query parameters into q (http_admin_list.c). */
void http_query_collect(struct MHD_Connection *conn, struct http_query *q);
/* "true" / "false" into *out (1 / 0); false for anything else. */
bool http_query_bool(const char *v, int *out);
/* A 400 invalid_parameter naming parameter name (sanitised) and what is wrong with it. */
struct http_reply http_query_error(const char *name, const char *why);

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
/* http_admin_list.c: GET /v1/warnings. */
struct http_reply http_admin_warnings(struct http_server *, struct MHD_Connection *,
                                      struct http_request *);
/* http_warnings.c: GET and PATCH /v1/warnings/settings. */
struct http_reply http_warning_settings_get(struct http_server *, struct MHD_Connection *,
                                            struct http_request *);
struct http_reply http_warning_settings_patch(struct http_server *, struct MHD_Connection *,
                                              struct http_request *);
struct http_reply http_admin_audit(struct http_server *, struct MHD_Connection *,
                                   struct http_request *);
/* GET /v1/stats: the installation's totals (http_stats.c). */
struct http_reply http_stats(struct http_server *, struct MHD_Connection *, struct http_request *);
struct http_reply http_admin_export(struct http_server *, struct MHD_Connection *,
                                    struct http_request *);
struct http_reply http_admin_import(struct http_server *, struct MHD_Connection *,
                                    struct http_request *);
struct http_reply http_admin_usage_put(struct http_server *, struct MHD_Connection *,
                                       struct http_request *);

#endif
