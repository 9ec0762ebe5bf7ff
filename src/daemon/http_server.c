/*
 * http_server: the libmicrohttpd daemon and what surrounds it: connection tracking with the
 * whole-request deadline (http_request_timeout), the worker pool that runs database-bound
 * requests on suspended connections, streamed bodies produced on their own threads, and the
 * drain on shutdown. The threads libmicrohttpd runs serve connections and checks only: they must
 * never wait on PostgreSQL, and a connection must never stay suspended without a resume to come
 * (libmicrohttpd cannot stop with one).
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "db.h"
#include "deadline.h"
#include "hostport.h"
#include "http.h"
#include "http_internal.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "sdlisten.h"
#include "worker.h"
#include "xalloc.h"

#define REAPER_INTERVAL_MS 500
#define STREAM_HIGH_WATER  (256 * 1024) /* a producer waits while this much is unsent */
#define STREAM_PIECE_MAX   (64 * 1024 * 1024)
#define STOP_GRACE_MS      1000 /* after the drain: time for the last answers to go out */

/*
 * libmicrohttpd's event loop: poll(2), not epoll. libmicrohttpd 0.9.75 registers connections
 * edge-triggered and takes a short read to mean the socket is drained, so a client's FIN that
 * arrives with its last bytes raises no further event: 2,000 connect/half-request/close cycles
 * left every such connection in CLOSE-WAIT until its timeout and the API unreachable for that
 * long; with poll they are reclaimed at once. See docs/design.md for the figures. (A build may
 * define HTTP_POLL_FLAG to compare.)
 */
#ifndef HTTP_POLL_FLAG
#define HTTP_POLL_FLAG MHD_USE_POLL
#endif

static void now_mono(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

static long ms_between(const struct timespec *a, const struct timespec *b)
{
	return (long)(b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

/* ---- connections and the request deadline ---- */

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	struct http_server *srv = cls;
	struct http_conn *hc = *socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd =
		        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		hc = xcalloc(1, sizeof(*hc));
		hc->fd = fd != NULL ? fd->connect_fd : -1;
		hc->metrics = http_metrics_conn(srv, conn);
		metrics_connection_opened(hc->metrics ? METRICS_LISTEN_METRICS
		                                      : METRICS_LISTEN_HTTP);
		now_mono(&hc->since);
		pthread_mutex_lock(&srv->lock);
		hc->next = srv->conns;
		if (srv->conns != NULL)
			srv->conns->prev = hc;
		srv->conns = hc;
		pthread_mutex_unlock(&srv->lock);
		*socket_context = hc;
		return;
	}
	if (hc == NULL)
		return;
	metrics_connection_closed(hc->metrics ? METRICS_LISTEN_METRICS : METRICS_LISTEN_HTTP);
	/* libmicrohttpd closes the socket after this returns: the reaper, which shuts sockets
	   down under the same lock, can never touch a descriptor that was reused */
	pthread_mutex_lock(&srv->lock);
	if (hc->prev != NULL)
		hc->prev->next = hc->next;
	else
		srv->conns = hc->next;
	if (hc->next != NULL)
		hc->next->prev = hc->prev;
	pthread_mutex_unlock(&srv->lock);
	free(hc);
	*socket_context = NULL;
}

/*
 * Every REAPER_INTERVAL_MS, shut down the connections that have not delivered a complete
 * request within http_request_timeout of connecting or of their previous answer: a client
 * dribbling bytes keeps libmicrohttpd's inactivity timer alive, but not this one.
 * libmicrohttpd sees the end of the stream and closes the connection itself.
 */
static void *reaper_main(void *arg)
{
	struct http_server *srv = arg;
	time_t last_log = 0;
	unsigned long unlogged = 0;
	pthread_mutex_lock(&srv->lock);
	while (!srv->stopping) {
		struct timespec until = deadline_in(CLOCK_REALTIME, REAPER_INTERVAL_MS), now;
		pthread_cond_timedwait(&srv->cond, &srv->lock, &until);
		reload_read_lock(); /* http_request_timeout is live (reload.h) */
		unsigned long long limit_s = srv->cfg->http_request_timeout;
		reload_read_unlock();
		long limit_ms = (long)limit_s * 1000;
		now_mono(&now);
		for (struct http_conn *hc = srv->conns; hc != NULL; hc = hc->next) {
			if (hc->busy || hc->kicked || hc->fd < 0 ||
			    ms_between(&hc->since, &now) < limit_ms)
				continue;
			shutdown(hc->fd, SHUT_RDWR);
			hc->kicked = true;
			unlogged++;
		}
		if (unlogged > 0 && now.tv_sec != last_log) { /* one line a second at most */
			log_info("event=http_request_timeout connections=%lu seconds=%llu",
			         unlogged, limit_s);
			unlogged = 0;
			last_log = now.tv_sec;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

/* libmicrohttpd's request callback, under the reload read lock: the routes it runs read live
   parameters (replies, CORS origins, precheck limits) and do memory work only; worker jobs,
   which may wait on the database, read restart-only ones and take no lock (reload.c). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
	reload_read_lock();
	enum MHD_Result r = http_on_request(cls, conn, url, method, version, upload_data,
	                                    upload_data_size, req_cls);
	reload_read_unlock();
	return r;
}

/* libmicrohttpd's URI callback: the request line is in. Its result becomes the request. */
void *http_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http_request *req = xcalloc(1, sizeof(*req));
	req->srv = cls;
	req->conn = conn;
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	req->hc = ci != NULL ? ci->socket_context : NULL;
	req->raw_uri = uri;
	req->metrics_only = http_metrics_conn(req->srv, conn);
	req->raw_uri_len = uri != NULL ? strlen(uri) : 0;
	/* the path reaches handlers decoded as a C string: "%00" would cut it short */
	for (const char *p = uri; p != NULL && (p = strchr(p, '%')) != NULL; p++)
		if (p[1] == '0' && p[2] == '0') {
			req->bad_uri = true;
			break;
		}
	return req;
}

void http_request_begin(struct http_request *req)
{
	struct http_server *srv = req->srv;
	pthread_mutex_lock(&srv->lock);
	srv->inflight++;
	req->counted = true;
	if (req->hc != NULL)
		req->hc->busy = true;
	pthread_mutex_unlock(&srv->lock);
}

void http_request_end(struct http_request *req)
{
	struct http_server *srv = req->srv;
	if (!req->counted)
		return;
	pthread_mutex_lock(&srv->lock);
	srv->inflight--;
	if (req->hc != NULL) {
		req->hc->busy = false;
		now_mono(&req->hc->since);
	}
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
}

/* ---- workers ---- */

/* The resume that a suspension owes; after it, req may be freed by libmicrohttpd's thread. */
static void resume(struct http_server *srv, struct MHD_Connection *conn)
{
	MHD_resume_connection(conn);
	pthread_mutex_lock(&srv->lock);
	srv->suspended--;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
}

static void suspend(struct http_server *srv, struct MHD_Connection *conn)
{
	pthread_mutex_lock(&srv->lock);
	srv->suspended++;
	pthread_mutex_unlock(&srv->lock);
	MHD_suspend_connection(conn);
}

static void deferred_job(void *arg)
{
	struct http_request *req = arg;
	struct http_server *srv = req->srv;
	struct MHD_Connection *conn = req->conn;
	req->reply = http_run_route(req);
	req->reply_ready = true;
	resume(srv, conn);
}

void http_defer(struct http_request *req)
{
	struct http_server *srv = req->srv;
	req->queued = true;
	suspend(srv, req->conn);
	if (worker_pool_submit(srv->workers, deferred_job, req) == 0)
		return;
	log_warn("event=http_busy queue_max=%llu note=\"every worker is busy and the queue is "
	         "full: answered 503\"",
	         (unsigned long long)srv->cfg->http_queue_max);
	metrics_refused(METRICS_LISTEN_HTTP, METRICS_REFUSED_QUEUE);
	req->reply = http_busy("too many requests wait for the database; retry later");
	req->reply_ready = true;
	resume(srv, req->conn);
}

/* ---- streamed bodies ---- */

struct stream {
	struct http_server *srv;
	struct MHD_Connection *conn;
	http_produce_fn produce;
	void (*done_fn)(void *ctx);
	void *ctx;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct buf data; /* produced, not yet handed out from off */
	size_t off;
	bool done, failed;
	bool consumer_gone;    /* libmicrohttpd destroyed the response */
	bool consumer_waiting; /* the connection is suspended until data or the end comes */
	int refs;
};

static void stream_unref(struct stream *s)
{
	pthread_mutex_lock(&s->lock);
	bool last = --s->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (!last)
		return;
	buf_free(&s->data);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

/* Wake a consumer that waits; with s->lock held. */
static void stream_wake(struct stream *s)
{
	if (!s->consumer_waiting)
		return;
	s->consumer_waiting = false;
	resume(s->srv, s->conn);
}

static void *stream_main(void *arg)
{
	struct stream *s = arg;
	struct buf piece;
	buf_init(&piece, STREAM_PIECE_MAX);
	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (s->data.len - s->off > STREAM_HIGH_WATER && !s->consumer_gone &&
		       !db_aborting()) {
			struct timespec until = deadline_in(CLOCK_REALTIME, REAPER_INTERVAL_MS);
			pthread_cond_timedwait(&s->cond, &s->lock, &until);
		}
		bool stop = s->consumer_gone;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		buf_reset(&piece);
		int rc = db_aborting() ? -1 : s->produce(s->ctx, &piece);
		pthread_mutex_lock(&s->lock);
		if (s->off == s->data.len) {
			buf_reset(&s->data);
			s->off = 0;
		}
		if (piece.len > 0 && buf_append(&s->data, piece.data, piece.len) < 0)
			rc = -1;
		if (rc <= 0) {
			s->done = true;
			s->failed = rc < 0;
		}
		stream_wake(s);
		pthread_mutex_unlock(&s->lock);
		if (rc <= 0)
			break;
	}
	buf_free(&piece);
	s->done_fn(s->ctx);
	struct http_server *srv = s->srv;
	stream_unref(s);
	pthread_mutex_lock(&srv->lock);
	srv->streams--;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

/* libmicrohttpd pulls the body. With nothing to hand out yet, the connection is suspended
   (returning 0 then is what libmicrohttpd expects) until the producer wakes it. */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
	(void)pos;
	struct stream *s = cls;
	pthread_mutex_lock(&s->lock);
	size_t n = s->data.len - s->off;
	if (n > 0) {
		if (n > max)
			n = max;
		memcpy(out, s->data.data + s->off, n);
		s->off += n;
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->lock);
		return (ssize_t)n;
	}
	if (s->done) {
		bool failed = s->failed;
		pthread_mutex_unlock(&s->lock);
		/* a failure cuts the body short: the client sees an incomplete transfer */
		return failed ? MHD_CONTENT_READER_END_WITH_ERROR
		              : MHD_CONTENT_READER_END_OF_STREAM;
	}
	s->consumer_waiting = true;
	suspend(s->srv, s->conn);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void stream_free(void *cls)
{
	struct stream *s = cls;
	pthread_mutex_lock(&s->lock);
	s->consumer_gone = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	stream_unref(s);
}

struct MHD_Response *http_stream_new(struct http_server *srv, struct MHD_Connection *conn,
                                     http_produce_fn produce, void (*done)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&srv->lock);
	bool full = srv->streams >= HTTP_STREAMS_MAX;
	if (!full)
		srv->streams++;
	pthread_mutex_unlock(&srv->lock);
	if (full)
		return NULL;
	struct stream *s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->conn = conn;
	s->produce = produce;
	s->done_fn = done;
	s->ctx = ctx;
	s->refs = 2; /* the producer thread and libmicrohttpd's response */
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	buf_init(&s->data, STREAM_PIECE_MAX + STREAM_HIGH_WATER);
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
	                                                              stream_read, s, stream_free);
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = resp != NULL ? pthread_create(&t, &attr, stream_main, s) : -1;
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		if (resp != NULL) {
			s->done_fn = NULL;
			s->refs = 1; /* only the response's; destroying it frees the stream */
			MHD_destroy_response(resp);
		} else {
			buf_free(&s->data);
			free(s);
		}
		pthread_mutex_lock(&srv->lock);
		srv->streams--;
		pthread_mutex_unlock(&srv->lock);
		return NULL;
	}
	return resp;
}

/* ---- the daemon ---- */

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	http_metrics_library_message(cls, msg);
	log_info("event=http_library_message message=\"%s\"", msg);
}

/* This thread's start-up error text (cut to fit). */
static const char *start_error(const char *what, const char *listen, const char *detail)
{
	static _Thread_local char text[512];
	snprintf(text, sizeof(text), "%s %.300s%s%s", what, listen, detail[0] ? ": " : "", detail);
	return text;
}

struct http_server *http_server_open(const struct config *cfg, const struct service *svc,
                                     struct admin *admin, struct usage *usage, const char **error_r)
{
	char *host, *port;
	struct addrinfo hints, *ai = NULL;
	if (hostport_split(cfg->http_listen, &host, &port) < 0) {
		*error_r = start_error("http_listen: bad address", cfg->http_listen, "");
		return NULL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int gai = getaddrinfo(host, port, &hints, &ai);
	free(host);
	free(port);
	if (gai != 0) {
		*error_r = start_error("http_listen", cfg->http_listen, gai_strerror(gai));
		return NULL;
	}
	struct http_server *srv = xcalloc(1, sizeof(*srv));
	srv->cfg = cfg;
	srv->svc = svc;
	srv->admin = admin;
	srv->usage = usage;
	srv->precheck = precheck_limiter_new();
	atomic_init(&srv->metrics_fd, -1);
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->cond, NULL);
	srv->workers = worker_pool_new((unsigned)cfg->http_workers, (unsigned)cfg->http_queue_max,
	                               "http-worker");
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | HTTP_POLL_FLAG | MHD_USE_ERROR_LOG |
	                 MHD_ALLOW_SUSPEND_RESUME;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* the pool option is given only for more than one thread: MHD warns about 0 and 1 */
	struct MHD_OptionItem pool[] = {
		{ MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)cfg->http_threads, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	if (cfg->http_threads <= 1)
		pool[0].option = MHD_OPTION_END;
	/* systemd's socket for http_listen when it passed one (sdlisten.h), else bind our own */
	int inherited = sdlisten_take("http_listen");
	struct MHD_OptionItem where[] = {
		{ MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr },
		{ MHD_OPTION_END, 0, NULL },
	};
	if (inherited >= 0) {
		where[0] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, inherited, NULL };
		log_info("event=socket_inherited listener=http_listen");
	}
	/* the logger goes first so that even option warnings reach our log */
	srv->mhd = MHD_start_daemon(
	        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	        MHD_OPTION_ARRAY, where, MHD_OPTION_CONNECTION_LIMIT,
	        (unsigned)cfg->http_max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	        (unsigned)cfg->http_max_connections_per_address, MHD_OPTION_CONNECTION_TIMEOUT,
	        (unsigned)cfg->http_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	        (size_t)HTTP_MEMORY_LIMIT, MHD_OPTION_NOTIFY_COMPLETED, http_on_completed, srv,
	        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_URI_LOG_CALLBACK,
	        http_uri_log, srv, MHD_OPTION_ARRAY, pool, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (srv->mhd == NULL) {
		*error_r = start_error("cannot start the HTTP server on", cfg->http_listen,
		                       "address in use?");
		worker_pool_destroy(&srv->workers);
		precheck_limiter_free(&srv->precheck);
		free(srv);
		return NULL;
	}
	if (cfg->metrics_listen[0] != '\0' &&
	    http_metrics_open(srv, flags, on_request, on_connection, mhd_log, error_r) < 0) {
		MHD_stop_daemon(srv->mhd);
		worker_pool_destroy(&srv->workers);
		precheck_limiter_free(&srv->precheck);
		free(srv);
		return NULL;
	}
	if (pthread_create(&srv->reaper, NULL, reaper_main, srv) != 0)
		log_fatal("event=start_failed error=\"cannot start the HTTP reaper thread\"");
	srv->reaper_started = true;
	return srv;
}

void http_server_quiesce(struct http_server *srv)
{
	if (srv == NULL)
		return;
	atomic_store(&srv->draining, true);
	MHD_socket fd = MHD_quiesce_daemon(srv->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	/* metrics_listen answers scrapes through the drain, until http_server_stop() */
}

bool http_server_idle(struct http_server *srv)
{
	if (srv == NULL)
		return true;
	pthread_mutex_lock(&srv->lock);
	bool idle = srv->inflight == 0 && srv->streams == 0;
	pthread_mutex_unlock(&srv->lock);
	return idle && worker_pool_busy(srv->workers) == 0;
}

/* Wait until *count is 0 or ms pass; with srv->lock held. */
static void wait_zero(struct http_server *srv, const unsigned *count, long ms)
{
	struct timespec until = deadline_in(CLOCK_REALTIME, ms);
	while (*count != 0)
		if (pthread_cond_timedwait(&srv->cond, &srv->lock, &until) == ETIMEDOUT)
			break;
}

void http_server_stop(struct http_server **srvp)
{
	struct http_server *srv = *srvp;
	if (srv == NULL)
		return;
	if (!http_server_idle(srv)) {
		pthread_mutex_lock(&srv->lock);
		log_warn("event=http_drain_cut requests=%u streams=%u note=\"shutdown_timeout "
		         "passed: database calls abandoned, answered 503\"",
		         srv->inflight, srv->streams);
		pthread_mutex_unlock(&srv->lock);
	}
	/* whatever still waits on the database gives up now; every job left runs to its answer */
	db_abort_all();
	worker_pool_destroy(&srv->workers);
	pthread_mutex_lock(&srv->lock);
	/* producers see the abort within REAPER_INTERVAL_MS; a suspended connection cannot be
	   stopped by libmicrohttpd, so every owed resume must have happened */
	for (;;) {
		wait_zero(srv, &srv->streams, 60000);
		wait_zero(srv, &srv->suspended, 60000);
		if (srv->streams == 0 && srv->suspended == 0)
			break;
		log_warn("event=http_stop_waiting streams=%u suspended=%u", srv->streams,
		         srv->suspended);
	}
	wait_zero(srv, &srv->inflight, STOP_GRACE_MS); /* let the last answers go out */
	srv->stopping = true;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	if (srv->reaper_started)
		pthread_join(srv->reaper, NULL);
	MHD_stop_daemon(srv->mhd);
	if (srv->metrics_mhd != NULL)
		MHD_stop_daemon(srv->metrics_mhd);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->cond);
	precheck_limiter_free(&srv->precheck);
	free(srv);
	*srvp = NULL;
}
