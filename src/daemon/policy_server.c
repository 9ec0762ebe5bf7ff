/*
 * policy_server: one epoll loop serving the Postfix policy delegation protocol, the socketmap
 * table protocol and Exim's readsocket requests, to many connections (persistent ones, one per
 * smtpd process; one per RCPT from Exim). A check is
 * memory work plus one store call, so requests are answered inline. It must never let one client's
 * malformed, oversized or slow request affect another: each connection has bounded buffers, a
 * protocol error closes only that connection (after the answers already owed to it are sent), no
 * client holds more than policy_max_connections_per_client connections, TCP peers outside
 * policy_tcp_allow are closed at once, idle connections are closed after policy_idle_timeout, and
 * running out of descriptors pauses accepting instead of spinning. Each listener speaks one
 * protocol, and its connections answer their requests through answer.c (the pure rules of policy.c
 * and socketmap.c, the check, the reply mapping); the listening sockets are opened by
 * policy_listen.c.
 */
#include "policy_server.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "answer.h"
#include "buf.h"
#include "cidr.h"
#include "deadline.h"
#include "hmap.h"
#include "log.h"
#include "metrics.h"
#include "policy_listen.h"
#include "sdnotify.h"
#include "xalloc.h"

#define POLICY_OUTPUT_MAX  (64 * 1024) /* unsent replies before we stop reading */
#define READ_CHUNK         16384
#define EPOLL_BATCH        64
#define SWEEP_INTERVAL_SEC 1
#define CLOSE_LINGER_SEC   5    /* a closing connection has this long to take its answers */
#define ACCEPT_PAUSE_MS    250  /* accepting pauses this long when descriptors run out */
#define DRAIN_POLL_MS      50   /* how often a drain looks whether the work is done */
#define DRAIN_QUIET_MS     100  /* a draining connection quiet this long is closed ... */
#define DRAIN_CUT_MS       1000 /* ... and after this long one between requests is, at once */
#define LOG_EVERY_SEC      10   /* a repeated refusal is logged at most this often */
#define RELOAD_RETRY_MS    10   /* a reload waiting for HTTP readers is tried again this often */

enum tag_kind { TAG_LISTENER, TAG_CONN, TAG_SIGNAL };

struct tag {
	enum tag_kind kind;
};

struct listener {
	struct tag tag;
	int fd;
	const char *what; /* "unix", "tcp", "socketmap-unix", "socketmap-tcp", "exim-unix", ... */
	enum answer_protocol proto;
	char *path;     /* a Unix socket's path (unlinked at close), NULL for TCP */
	bool inherited; /* systemd's socket (sdlisten.h): its file, owner and mode are the unit's */
};

#define LISTENERS_MAX 6 /* policy, socketmap and Exim, each on Unix and TCP */

/* Who is at the other end, for the per-client connection cap: a TCP address, or the Unix
   socket peer's user id. */
struct client {
	uint8_t key[17]; /* family byte + address, or 'u' + uid */
	unsigned conns;
};

struct conn {
	struct tag tag;
	int fd;
	unsigned long id;
	const char *via;
	enum answer_protocol proto;
	enum metrics_listener listener;
	struct client *client;
	struct buf in;
	struct buf out;
	struct timespec last_active; /* CLOCK_MONOTONIC: input, or the start of closing */
	bool writing;                /* EPOLLOUT is armed */
	bool closing;                /* reads are over: close once out is sent */
	struct conn *prev, *next;
};

struct policy_server {
	const struct config *cfg;
	int epfd;
	struct listener listeners[LISTENERS_MAX];
	unsigned nlisteners;
	struct conn *conns; /* doubly linked, for the idle sweep and shutdown */
	unsigned nconns;
	struct hmap clients; /* struct client by key */
	uint64_t client_seed;
	struct timespec accept_paused_until; /* tv_sec 0: accepting */
	/* lines that may repeat at a peer's will: one per LOG_EVERY_SEC (log_rate_allow()) */
	struct log_rate log_fds, log_full, log_client, log_denied;
	unsigned long next_id;
	struct tag signal_tag;
	struct answer_ctx answer; /* its result is reused: the loop runs one check at a time */
	int (*reload)(void *ctx, bool request); /* SIGHUP (policy_server_set_reload()) */
	void *reload_ctx;
	bool reload_pending; /* reload() asked to be called again */
};

void policy_server_set_reload(struct policy_server *srv, int (*fn)(void *ctx, bool request),
                              void *ctx)
{
	srv->reload = fn;
	srv->reload_ctx = ctx;
	srv->reload_pending = false; /* a reload still waiting is the old handler's to drop */
}

void policy_server_set_handler(struct policy_server *srv, policy_handler_fn fn, void *ctx)
{
	srv->answer.handler = fn;
	srv->answer.handler_ctx = ctx;
}

static time_t now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void ep_add(struct policy_server *srv, int fd, uint32_t events, struct tag *tag)
{
	struct epoll_event ev = { .events = events, .data.ptr = tag };
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_error("event=epoll_add_failed error=\"%s\"", strerror(errno));
		abort();
	}
}

/* A listener the config may name: its parameter (the name systemd's socket may carry), its log
   name, its protocol, and its value (a Unix socket's path, or TCP's host:port). */
struct listener_spec {
	const char *key, *what;
	enum answer_protocol proto;
	const char *path, *hostport;
};

/* Open one listener into the table (policy_listen_open(): systemd's socket, or bound here). */
static int listener_open(struct policy_server *srv, const struct listener_spec *spec,
                         const char **error_r)
{
	if (srv->nlisteners == LISTENERS_MAX)
		abort(); /* policy_server_new() opens at most LISTENERS_MAX */
	struct listener *l = &srv->listeners[srv->nlisteners];
	if (policy_listen_open(srv->cfg, spec->key, spec->path, spec->hostport, &l->fd,
	                       &l->inherited, error_r) < 0)
		return -1;
	srv->nlisteners++;
	l->tag.kind = TAG_LISTENER;
	l->what = spec->what;
	l->proto = spec->proto;
	l->path = spec->path != NULL ? xstrdup(spec->path) : NULL;
	ep_add(srv, l->fd, EPOLLIN, &l->tag);
	return 0;
}

struct policy_server *policy_server_new(const struct config *cfg, const struct service *svc,
                                        const char **error_r)
{
	struct policy_server *srv = xcalloc(1, sizeof(*srv));
	srv->cfg = cfg;
	srv->answer.cfg = cfg;
	srv->answer.svc = svc;
	srv->answer.result = xmalloc(sizeof(*srv->answer.result));
	hmap_init(&srv->clients);
	srv->client_seed = (uint64_t)(uintptr_t)srv ^ (uint64_t)now_sec();
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0) {
		static _Thread_local char text[128]; /* see policy_server.h */
		snprintf(text, sizeof(text), "epoll_create1: %s", strerror(errno));
		*error_r = text;
		goto fail;
	}
	const struct listener_spec ls[LISTENERS_MAX] = {
		{ "policy_socket", "unix", ANSWER_POLICY, cfg->policy_socket, NULL },
		{ "policy_tcp_listen", "tcp", ANSWER_POLICY, NULL, cfg->policy_tcp_listen },
		{ "socketmap_socket", "socketmap-unix", ANSWER_SOCKETMAP, cfg->socketmap_socket,
		  NULL },
		{ "socketmap_tcp_listen", "socketmap-tcp", ANSWER_SOCKETMAP, NULL,
		  cfg->socketmap_tcp_listen },
		{ "exim_socket", "exim-unix", ANSWER_EXIM, cfg->exim_socket, NULL },
		{ "exim_tcp_listen", "exim-tcp", ANSWER_EXIM, NULL, cfg->exim_tcp_listen },
	};
	for (unsigned i = 0; i < LISTENERS_MAX; i++)
		if ((ls[i].path != NULL ? ls[i].path : ls[i].hostport)[0] != '\0' &&
		    listener_open(srv, &ls[i], error_r) < 0)
			goto fail;
	return srv;
fail:
	policy_server_destroy(&srv);
	return NULL;
}

static bool client_eq(const void *item, const void *key)
{
	return memcmp(((const struct client *)item)->key, key, sizeof(((struct client *)0)->key)) ==
	       0;
}

static void conn_close(struct policy_server *srv, struct conn *c, const char *reason)
{
	log_debug("conn=%lu event=close reason=%s", c->id, reason);
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	metrics_connection_closed(c->listener);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->nconns--;
	if (c->client != NULL && --c->client->conns == 0) {
		struct client *cl = c->client;
		hmap_remove(&srv->clients,
		            hmap_hash_bytes(cl->key, sizeof(cl->key), srv->client_seed), cl->key,
		            client_eq);
		free(cl);
	}
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

/* The client key of an accepted connection: its address for TCP, its user id for Unix. */
static void client_key(int fd, const struct sockaddr_storage *sa, uint8_t key[17])
{
	memset(key, 0, 17);
	if (sa->ss_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->ss_family == AF_INET6) {
		key[0] = 6;
		memcpy(key + 1, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
	} else {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		key[0] = 'u';
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
			memcpy(key + 1, &cred.uid, sizeof(cred.uid));
	}
}

static void pause_accepting(struct policy_server *srv, struct listener *l, int err)
{
	unsigned long suppressed;
	for (unsigned i = 0; i < srv->nlisteners; i++)
		if (srv->listeners[i].fd >= 0)
			epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->listeners[i].fd, NULL);
	srv->accept_paused_until = deadline_in(CLOCK_MONOTONIC, ACCEPT_PAUSE_MS);
	metrics_refused(metrics_policy_listener(l->proto, l->path != NULL),
	                METRICS_REFUSED_DESCRIPTORS);
	if (log_rate_allow(&srv->log_fds, LOG_EVERY_SEC, &suppressed))
		log_warn("event=accept_paused via=%s error=\"%s\" connections=%u pause_ms=%d "
		         "suppressed=%lu note=\"out of descriptors: raise LimitNOFILE or lower "
		         "policy_max_connections\"",
		         l->what, strerror(err), srv->nconns, ACCEPT_PAUSE_MS, suppressed);
}

static void resume_accepting(struct policy_server *srv)
{
	srv->accept_paused_until.tv_sec = 0;
	for (unsigned i = 0; i < srv->nlisteners; i++)
		if (srv->listeners[i].fd >= 0)
			ep_add(srv, srv->listeners[i].fd, EPOLLIN, &srv->listeners[i].tag);
}

/* Whether a new connection may stay; if not it is closed with a (rate-limited) log line. */
static struct client *admit(struct policy_server *srv, struct listener *l, int fd,
                            const struct sockaddr_storage *sa)
{
	unsigned long suppressed;
	enum metrics_listener ml = metrics_policy_listener(l->proto, sa->ss_family == AF_UNIX);
	if (sa->ss_family != AF_UNIX &&
	    !cidr_list_match(&srv->cfg->policy_tcp_allow_list, (const struct sockaddr *)sa)) {
		metrics_refused(ml, METRICS_REFUSED_TCP_ALLOW);
		if (log_rate_allow(&srv->log_denied, LOG_EVERY_SEC, &suppressed)) {
			char host[INET6_ADDRSTRLEN] = "?";
			getnameinfo((const struct sockaddr *)sa, sizeof(*sa), host, sizeof(host),
			            NULL, 0, NI_NUMERICHOST);
			log_warn(
			        "event=connection_refused via=%s client=%s reason=policy_tcp_allow "
			        "suppressed=%lu",
			        l->what, host, suppressed);
		}
		return NULL;
	}
	if (srv->nconns >= srv->cfg->policy_max_connections) {
		metrics_refused(ml, METRICS_REFUSED_MAX_CONNECTIONS);
		if (log_rate_allow(&srv->log_full, LOG_EVERY_SEC, &suppressed))
			log_warn("event=connection_refused via=%s reason=policy_max_connections "
			         "limit=%llu suppressed=%lu",
			         l->what, (unsigned long long)srv->cfg->policy_max_connections,
			         suppressed);
		return NULL;
	}
	uint8_t key[17];
	client_key(fd, sa, key);
	uint64_t h = hmap_hash_bytes(key, sizeof(key), srv->client_seed);
	struct client *cl = hmap_get(&srv->clients, h, key, client_eq);
	if (cl != NULL && cl->conns >= srv->cfg->policy_max_connections_per_client) {
		metrics_refused(ml, METRICS_REFUSED_PER_CLIENT);
		if (log_rate_allow(&srv->log_client, LOG_EVERY_SEC, &suppressed))
			log_warn(
			        "event=connection_refused via=%s reason=policy_max_connections_per_"
			        "client limit=%llu suppressed=%lu",
			        l->what,
			        (unsigned long long)srv->cfg->policy_max_connections_per_client,
			        suppressed);
		return NULL;
	}
	if (cl == NULL) {
		cl = xcalloc(1, sizeof(*cl));
		memcpy(cl->key, key, sizeof(key));
		hmap_insert(&srv->clients, h, cl);
	}
	cl->conns++;
	return cl;
}

static void do_accept(struct policy_server *srv, struct listener *l)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		int fd = accept4(l->fd, (struct sockaddr *)&sa, &salen,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				pause_accepting(srv, l, errno);
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("event=accept_failed via=%s error=\"%s\"", l->what,
				         strerror(errno));
			return;
		}
		if (salen == 0 || l->path != NULL)
			sa.ss_family = AF_UNIX;
		struct client *cl = admit(srv, l, fd, &sa);
		if (cl == NULL) {
			close(fd);
			continue;
		}
		struct conn *c = xcalloc(1, sizeof(*c));
		c->tag.kind = TAG_CONN;
		c->fd = fd;
		c->id = ++srv->next_id;
		c->via = l->what;
		c->proto = l->proto;
		c->listener = metrics_policy_listener(l->proto, sa.ss_family == AF_UNIX);
		metrics_connection_opened(c->listener);
		c->client = cl;
		buf_init(&c->in, answer_request_max(l->proto));
		buf_init(&c->out, POLICY_OUTPUT_MAX);
		clock_gettime(CLOCK_MONOTONIC, &c->last_active);
		c->next = srv->conns;
		if (srv->conns != NULL)
			srv->conns->prev = c;
		srv->conns = c;
		srv->nconns++;
		ep_add(srv, fd, EPOLLIN | EPOLLRDHUP, &c->tag);
		log_debug("conn=%lu event=connect via=%s", c->id, c->via);
	}
}

/* Arm the events a connection waits for: input unless closing, output while some is unsent. */
static void conn_events(struct policy_server *srv, struct conn *c, bool want_out)
{
	if (want_out == c->writing && !c->closing)
		return;
	struct epoll_event ev = { .events = (c->closing ? 0u : EPOLLIN | EPOLLRDHUP) |
		                            (want_out ? EPOLLOUT : 0u),
		                  .data.ptr = &c->tag };
	epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->writing = want_out;
}

/* Send what is pending. 0 when all is sent or the rest waits for EPOLLOUT, -1 on error. */
static int flush_out(struct policy_server *srv, struct conn *c)
{
	while (c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_events(srv, c, true);
				return 0;
			}
			return -1;
		}
		buf_consume(&c->out, (size_t)n);
	}
	conn_events(srv, c, false);
	return 0;
}

/*
 * Reading is over for c (end of input, a protocol error, an oversized request): what was
 * already answered is still owed, so the connection closes once its output is sent, or after
 * CLOSE_LINGER_SEC of a peer that will not take it.
 */
static void conn_finish(struct policy_server *srv, struct conn *c, const char *reason)
{
	if (c->out.len == 0 || flush_out(srv, c) < 0 || c->out.len == 0) {
		conn_close(srv, c, reason);
		return;
	}
	log_debug("conn=%lu event=closing reason=%s unsent=%zu", c->id, reason, c->out.len);
	c->closing = true;
	clock_gettime(CLOCK_MONOTONIC, &c->last_active);
	shutdown(c->fd, SHUT_RD);
	conn_events(srv, c, true);
}

/*
 * Take n bytes of input: append what fits, answer the complete requests, repeat, so a long
 * pipeline is answered however the reads cut it. -1 (with *why_r) when reading is over: a
 * protocol error, a request larger than the protocol allows (answer_request_max()), or a
 * protocol that has answered all a connection may ask; the answers owed are in the output
 * buffer.
 */
static int take_input(struct policy_server *srv, struct conn *c, const char *data, size_t n,
                      const char **why_r)
{
	while (n > 0) {
		size_t room = c->in.max - c->in.len, k = n < room ? n : room;
		if (k == 0) {
			log_info("conn=%lu event=protocol_error via=%s error=\"request exceeds "
			         "%zu bytes\"",
			         c->id, c->via, c->in.max);
			*why_r = "request_too_large";
			return -1;
		}
		if (buf_append(&c->in, data, k) < 0)
			abort(); /* k fits by construction */
		data += k;
		n -= k;
		if (answer_input(&srv->answer, c->proto, c->id, c->via, &c->in, &c->out, false,
		                 why_r) != 0)
			return -1;
	}
	return 0;
}

static void on_readable(struct policy_server *srv, struct conn *c)
{
	char chunk[READ_CHUNK];
	const char *end = NULL;
	for (;;) {
		ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(srv, c, "read_error"); /* the peer is gone: nothing to deliver */
			return;
		}
		if (n == 0) {
			end = "eof"; /* a half-close: answers to complete requests still go out */
			/* a protocol whose request may end with the input answers it now */
			if (c->in.len > 0 && answer_input(&srv->answer, c->proto, c->id, c->via,
			                                  &c->in, &c->out, true, &end) == 0)
				end = "eof";
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &c->last_active);
		if (take_input(srv, c, chunk, (size_t)n, &end) < 0)
			break;
		if ((size_t)n < sizeof(chunk))
			break;
	}
	if (end != NULL) {
		conn_finish(srv, c, end);
		return;
	}
	if (flush_out(srv, c) < 0)
		conn_close(srv, c, "write_error");
}

static void sweep_idle(struct policy_server *srv)
{
	time_t now = now_sec();
	struct conn *c = srv->conns;
	while (c != NULL) {
		struct conn *next = c->next;
		if (c->closing) {
			if (now - c->last_active.tv_sec >= CLOSE_LINGER_SEC)
				conn_close(srv, c, "unsent_output");
		} else if ((uint64_t)(now - c->last_active.tv_sec) >=
		           srv->cfg->policy_idle_timeout) {
			log_info("conn=%lu event=idle_timeout seconds=%llu", c->id,
			         (unsigned long long)srv->cfg->policy_idle_timeout);
			conn_close(srv, c, "idle_timeout");
		}
		c = next;
	}
}

static void on_conn_event(struct policy_server *srv, struct conn *c, uint32_t events)
{
	if (events & EPOLLOUT) {
		if (flush_out(srv, c) < 0) {
			conn_close(srv, c, "write_error");
			return;
		}
		if (c->closing) {
			if (c->out.len == 0)
				conn_close(srv, c, "answered");
			return;
		}
	}
	if (c->closing) {
		if (events & (EPOLLHUP | EPOLLERR))
			conn_close(srv, c, "peer_gone");
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		on_readable(srv, c);
}

/* Milliseconds until the accept pause ends (0: ended now), or -1 when not paused. */
static long pause_left_ms(struct policy_server *srv)
{
	if (srv->accept_paused_until.tv_sec == 0)
		return -1;
	long ms = deadline_left_ms(CLOCK_MONOTONIC, &srv->accept_paused_until);
	return ms < 0 ? 0 : ms;
}

/*
 * The loop. Returns the number of a terminating signal, or 0 when done() says the drain is
 * over (done is NULL while serving normally) or drain_ms have passed.
 */
static int serve(struct policy_server *srv, int signal_fd, bool (*done)(void *ctx), void *ctx,
                 long drain_ms)
{
	struct epoll_event evs[EPOLL_BATCH];
	time_t last_sweep = now_sec();
	unsigned watchdog_ms = sdnotify_watchdog_interval_ms();
	struct timespec end = deadline_in(CLOCK_MONOTONIC, (unsigned long)drain_ms);
	for (;;) {
		int timeout = SWEEP_INTERVAL_SEC * 1000;
		long pause = pause_left_ms(srv);
		if (pause >= 0 && pause < timeout)
			timeout = (int)pause;
		if (done != NULL)
			timeout = DRAIN_POLL_MS;
		if (srv->reload_pending && timeout > RELOAD_RETRY_MS)
			timeout = RELOAD_RETRY_MS;
		if (watchdog_ms != 0 && watchdog_ms < (unsigned)timeout)
			timeout = (int)watchdog_ms;
		int n = epoll_wait(srv->epfd, evs, EPOLL_BATCH, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("event=epoll_wait_failed error=\"%s\"", strerror(errno));
			abort();
		}
		for (int i = 0; i < n; i++) {
			struct tag *t = evs[i].data.ptr;
			if (t->kind == TAG_SIGNAL) {
				struct signalfd_siginfo si;
				if (read(signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					if (srv->reload == NULL)
						log_info("event=sighup note=\"ignored\"");
					else
						srv->reload_pending =
						        srv->reload(srv->reload_ctx, true) == 1;
					continue;
				}
				return (int)si.ssi_signo;
			}
			if (t->kind == TAG_LISTENER) {
				do_accept(srv, (struct listener *)t);
				continue;
			}
			on_conn_event(srv, (struct conn *)t, evs[i].events);
		}
		if (srv->reload_pending)
			srv->reload_pending = srv->reload(srv->reload_ctx, false) == 1;
		if (pause_left_ms(srv) == 0)
			resume_accepting(srv);
		if (now_sec() - last_sweep >= SWEEP_INTERVAL_SEC) {
			last_sweep = now_sec();
			sweep_idle(srv);
		}
		/* from the loop itself: a loop that stops turning stops the pings (sdnotify.h) */
		sdnotify_tick(done == NULL && srv->answer.svc != NULL ? srv->answer.svc->store
		                                                      : NULL,
		              srv->nconns);
		if (done != NULL) {
			if (deadline_left_ms(CLOCK_MONOTONIC, &end) <= 0 || done(ctx))
				return 0;
		}
	}
}

int policy_server_run(struct policy_server *srv, int signal_fd)
{
	srv->signal_tag.kind = TAG_SIGNAL;
	ep_add(srv, signal_fd, EPOLLIN, &srv->signal_tag);
	return serve(srv, signal_fd, NULL, NULL, 0);
}

static void close_listeners(struct policy_server *srv)
{
	for (unsigned i = 0; i < srv->nlisteners; i++) {
		struct listener *l = &srv->listeners[i];
		if (l->fd < 0)
			continue;
		/* removed first: an inherited socket's description lives on in systemd's copy, so
		   closing ours would leave it in the epoll set, ready at each connection attempt */
		epoll_ctl(srv->epfd, EPOLL_CTL_DEL, l->fd, NULL); /* ENOENT while paused: fine */
		close(l->fd);
		if (l->path != NULL && !l->inherited) /* systemd's socket file stays for the next */
			unlink(l->path);
		l->fd = -1;
	}
	srv->accept_paused_until.tv_sec = 0;
}

struct drain_ctx {
	struct policy_server *srv;
	bool (*done)(void *ctx);
	void *ctx;
	struct timespec cut; /* from then on, a connection between requests closes at once */
};

/*
 * A drain's step. While done(ctx) is false (HTTP requests still owed) every open connection is
 * served as before. Then each connection between requests (all answered and sent, nothing
 * unread, not even in the kernel) is closed once quiet DRAIN_QUIET_MS, or at once from
 * DRAIN_CUT_MS on, so a persistent client (a Postfix smtpd) sees its connection end between two
 * requests, never a reset with its question unread, and a restart under steady load waits at
 * most DRAIN_CUT_MS for it; done when no connection is left (shutdown_timeout bounds it all).
 */
static bool drain_done(void *arg)
{
	struct drain_ctx *d = arg;
	if (d->done != NULL && !d->done(d->ctx))
		return false;
	if (d->cut.tv_sec == 0)
		d->cut = deadline_in(CLOCK_MONOTONIC, DRAIN_CUT_MS);
	bool cut = deadline_left_ms(CLOCK_MONOTONIC, &d->cut) <= 0;
	for (struct conn *c = d->srv->conns, *next; c != NULL; c = next) {
		next = c->next;
		/* a moment past is a deadline with minus the time since it left */
		bool quiet = -deadline_left_ms(CLOCK_MONOTONIC, &c->last_active) >= DRAIN_QUIET_MS;
		int unread = 0;
		if (!c->closing && c->out.len == 0 && c->in.len == 0 && (cut || quiet) &&
		    ioctl(c->fd, FIONREAD, &unread) == 0 && unread == 0)
			conn_close(d->srv, c, "shutdown");
	}
	return d->srv->conns == NULL;
}

int policy_server_drain(struct policy_server *srv, int signal_fd, unsigned timeout_ms,
                        bool (*done)(void *ctx), void *ctx)
{
	close_listeners(srv);
	struct drain_ctx d = { srv, done, ctx, { 0, 0 } }; /* cut: set once done(ctx) holds */
	if (drain_done(&d))
		return 0;
	return serve(srv, signal_fd, drain_done, &d, (long)timeout_ms);
}

void policy_server_destroy(struct policy_server **srvp)
{
	struct policy_server *srv = *srvp;
	if (srv == NULL)
		return;
	while (srv->conns != NULL)
		conn_close(srv, srv->conns, "shutdown");
	close_listeners(srv);
	if (srv->epfd >= 0)
		close(srv->epfd);
	hmap_free(&srv->clients);
	for (unsigned i = 0; i < srv->nlisteners; i++)
		free(srv->listeners[i].path);
	free(srv->answer.result);
	free(srv);
	*srvp = NULL;
}
