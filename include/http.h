/* http: the JSON-over-HTTP front end (libmicrohttpd + jansson). */
#ifndef MQ_HTTP_H
#define MQ_HTTP_H

#include <stddef.h>

#include "config.h"
#include "service.h"

/* Named limits on what a client may send (STYLE.md rule 10). */
#define HTTP_BODY_MAX        (512 * 1024)      /* a POST /v1/check body */
#define HTTP_DRAIN_MAX       (4 * 1024 * 1024) /* oversized chunked body discarded before closing */
#define HTTP_BATCH_MAX       1000              /* recipients in one POST /v1/check */
#define HTTP_MEMORY_LIMIT    (64 * 1024)       /* per-connection memory for headers and URL */
#define HTTP_RESPONSE_MAX    (16 * 1024 * 1024) /* a check response (1000 results) */
#define HTTP_RETRY_AFTER     5                  /* seconds a 503 asks the client to wait */
#define HTTP_PARAM_VALUE_MAX 1024               /* one query parameter value */

struct http_server;

/*
 * Start serving on cfg->http_listen with libmicrohttpd's own thread(s). Returns the server, or
 * NULL with a message in err[errsize] (start-up only).
 */
struct http_server *http_server_start(const struct config *cfg, const struct service *svc,
                                      char *err, size_t errsize);

/* Stop serving, close every connection, free, NULL the pointer. */
void http_server_stop(struct http_server **srv);

#endif
