/*
 * http_metrics: GET /metrics (the Prometheus exposition of metrics.c, for a token of scope
 * metrics or admin on http_listen) and the metrics_listen address, a second libmicrohttpd
 * daemon with the API's callbacks and connection limits whose connections reach /metrics
 * only, without a token (docs/metrics.md). It must never let a connection of metrics_listen
 * reach another route, and never wait on the database.
 */
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_internal.h"
#include "log.h"
#include "metrics.h"
#include "policy_listen.h"
#include "xalloc.h"

/* Prometheus's text format, version 0.0.4. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The logger's context for metrics_listen's daemon (the API's has NULL). */
static const char metrics_daemon_marker = 'm';

struct http_reply http_metrics(struct http_server *srv, struct MHD_Connection *conn,
                               struct http_request *req)
{
	(void)conn;
	(void)req;
	struct buf out;
	const char *why;
	buf_init(&out, METRICS_OUTPUT_MAX);
	struct metrics_sources src = { srv->svc->store, srv->usage, srv->admin };
	if (metrics_write(&src, &out, &why) < 0) {
		log_error("event=metrics_failed error=\"%s\"", why);
		buf_free(&out);
		return http_error(500, "internal", "the metrics could not be written");
	}
	/* a body with a content type of its own: a response made here, sent as a stream's is */
	size_t len = out.len;
	char *data = out.data != NULL ? out.data : xstrdup("");
	struct MHD_Response *resp =
	        MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(data);
		return http_error(500, "internal", "out of memory");
	}
	return http_reply_stream(resp, METRICS_CONTENT_TYPE);
}

/* By the listening socket of the connection's daemon: set before metrics_listen's daemon
   starts and never quiesced (it serves through the drain), so it is there for each of its
   connections, and the API's daemon has another. */
bool http_metrics_conn(struct http_server *srv, struct MHD_Connection *conn)
{
	int fd = atomic_load(&srv->metrics_fd);
	if (fd < 0)
		return false;
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
	if (ci == NULL)
		return true; /* cannot tell: the narrower of the two */
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(ci->daemon, MHD_DAEMON_INFO_LISTEN_FD);
	return di == NULL || di->listen_fd == fd;
}

void http_metrics_library_message(void *logger_cls, const char *msg)
{
	/* libmicrohttpd's refusals are visible only in what it logs (0.9.75's texts) */
	static const struct {
		const char *prefix;
		enum metrics_refusal why;
	} refusals[] = {
		{ "Server reached connection limit", METRICS_REFUSED_MAX_CONNECTIONS },
		{ "Hit process or system resource limit", METRICS_REFUSED_DESCRIPTORS },
	};
	enum metrics_listener l =
	        logger_cls == &metrics_daemon_marker ? METRICS_LISTEN_METRICS : METRICS_LISTEN_HTTP;
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
		if (strncmp(msg, refusals[i].prefix, strlen(refusals[i].prefix)) == 0)
			metrics_refused(l, refusals[i].why);
}

int http_metrics_open(struct http_server *srv, unsigned flags, MHD_AccessHandlerCallback on_request,
                      MHD_NotifyConnectionCallback on_connection, MHD_LogCallback logger,
                      const char **error_r)
{
	const struct config *cfg = srv->cfg;
	int fd;
	bool inherited; /* systemd's socket (sdlisten.h) is used as it is, else bound here */
	if (policy_listen_open(cfg, "metrics_listen", NULL, cfg->metrics_listen, &fd, &inherited,
	                       error_r) < 0)
		return -1;
	atomic_store(&srv->metrics_fd, fd); /* before any connection: http_metrics_conn() */
	srv->metrics_mhd = MHD_start_daemon(
	        flags & ~(unsigned)MHD_USE_IPv6, 0, NULL, NULL, on_request, srv,
	        MHD_OPTION_EXTERNAL_LOGGER, logger, (void *)&metrics_daemon_marker,
	        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
	        (unsigned)HTTP_METRICS_CONNECTIONS_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	        (unsigned)(cfg->http_max_connections_per_address < HTTP_METRICS_CONNECTIONS_MAX
	                           ? cfg->http_max_connections_per_address
	                           : HTTP_METRICS_CONNECTIONS_MAX),
	        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http_timeout,
	        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_LIMIT,
	        MHD_OPTION_NOTIFY_COMPLETED, http_on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
	        on_connection, srv, MHD_OPTION_URI_LOG_CALLBACK, http_uri_log, srv, MHD_OPTION_END);
	if (srv->metrics_mhd == NULL) {
		close(fd);
		atomic_store(&srv->metrics_fd, -1);
		*error_r = "cannot start the HTTP server on metrics_listen";
		return -1;
	}
	log_info("event=metrics_listen address=%s", cfg->metrics_listen);
	return 0;
}
