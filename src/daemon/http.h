/* http: the JSON-over-HTTP front end (libmicrohttpd + jansson). */
#ifndef MQ_HTTP_H
#define MQ_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "service.h"

/* Named limits on what a client may send (docs/style.md rule 10). */
#define HTTP_BODY_MAX                (512 * 1024) /* a POST /v1/check body */
#define HTTP_DRAIN_MAX               (4 * 1024 * 1024) /* oversized chunked body discarded before closing */
#define HTTP_BATCH_MAX               1000              /* recipients in one POST /v1/check */
#define HTTP_MEMORY_LIMIT            (64 * 1024) /* per-connection memory for headers and URL */
#define HTTP_RESPONSE_MAX            (16 * 1024 * 1024) /* a check response (1000 results) */
#define HTTP_RETRY_AFTER             5                  /* seconds a 503 asks the client to wait */
#define HTTP_PARAM_VALUE_MAX         1024               /* one query parameter value */
#define HTTP_HEADERS_MAX             100 /* header lines in one request (431 beyond) */
#define HTTP_QUERY_PARAMS_MAX        16  /* distinct query parameters of an admin request */
#define HTTP_STREAMS_MAX             4   /* streamed bodies (exports) produced at once; more: 503 */
#define HTTP_METRICS_CONNECTIONS_MAX 16  /* connections metrics_listen takes at once (scrapers) */

struct admin;
struct http_server;
struct usage;

/*
 * Start serving on cfg->http_listen with libmicrohttpd's own thread(s) for connections and
 * checks (svc), and cfg->http_workers threads for requests that need the database (admin and
 * usage). Everything given is borrowed and must outlive the server. Returns the server, or
 * NULL with *error_r in a thread-local buffer valid until this thread's next call (start-up
 * only).
 */
struct http_server *http_server_open(const struct config *cfg, const struct service *svc,
                                     struct admin *admin, struct usage *usage,
                                     const char **error_r);

/* Shutdown, first step: stop accepting connections (the listening socket is closed); requests
   in progress go on, answers carry "Connection: close". NULL is ignored. */
void http_server_quiesce(struct http_server *srv);

/* Whether no request is being answered or waits for a worker, and no body is streaming. */
bool http_server_idle(struct http_server *srv);

/*
 * Stop: whatever still waits on the database is abandoned (db_abort_all(): those requests are
 * answered 503), the last answers get a moment to go out, then every connection is closed.
 * Free, NULL the pointer; NULL is ignored.
 */
void http_server_stop(struct http_server **srv);

#endif
