/*
 * http_recalc: POST /v1/usage/recalculations, the absolute usage of many mailboxes in one
 * request (see http_recalc.c). Its row is in http_route.c's table.
 */
#ifndef MQ_HTTP_RECALC_H
#define MQ_HTTP_RECALC_H

#include "http_internal.h"

/* The handler: a worker runs it (it waits on PostgreSQL). */
struct http_reply http_recalc_post(struct http_server *srv, struct MHD_Connection *conn,
                                   struct http_request *req);

#endif
