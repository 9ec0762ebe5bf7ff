/*
 * policy_server: one epoll loop serving the Postfix policy delegation protocol to many
 * persistent connections (one per smtpd process). A check is memory work plus one store call, so
 * requests are answered inline. It must never let one client's malformed, oversized or slow
 * request affect another: each connection has bounded buffers, a protocol error closes only that
 * connection, and idle connections are closed after policy_idle_timeout.
 */
#include "policy_server.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "policy.h"
#include "reply.h"
#include "xalloc.h"

#define POLICY_OUTPUT_MAX  (64 * 1024) /* unsent replies before we stop reading */
#define READ_CHUNK         16384
#define EPOLL_BATCH        64
#define SWEEP_INTERVAL_SEC 1

enum tag_kind { TAG_LISTENER, TAG_CONN, TAG_SIGNAL };

struct tag {
	enum tag_kind kind;
};

struct listener {
	struct tag tag;
	int fd;
	const char *what; /* "unix" or "tcp" */
};

struct conn {
	struct tag tag;
	int fd;
	unsigned long id;
	const char *via;
	struct buf in;
	struct buf out;
	time_t last_active;
	bool writing; /* EPOLLOUT is armed */
	struct conn *prev, *next;
};

struct policy_server {
	const struct config *cfg;
	const struct service *svc;
	int epfd;
	struct listener unix_l, tcp_l;
	char *unix_path;
	struct conn *conns; /* doubly linked, for the idle sweep and shutdown */
	unsigned nconns;
	unsigned long next_id;
	struct tag signal_tag;
	struct check_result *result; /* reused: the loop runs one check at a time */
	policy_handler_fn handler;   /* NULL: answer() */
	void *handler_ctx;
};

void policy_server_set_handler(struct policy_server *srv, policy_handler_fn fn, void *ctx)
{
	srv->handler = fn;
	srv->handler_ctx = ctx;
}

static time_t now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int open_unix(const struct config *cfg, char *err, size_t errsize)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (str_copy(sa.sun_path, cfg->policy_socket, sizeof(sa.sun_path)) < 0) {
		snprintf(err, errsize, "policy_socket path too long");
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errsize, "socket: %s", strerror(errno));
		return -1;
	}
	/* A stale socket from a crash is replaced; a live one means another daemon owns it. */
	struct stat st;
	if (lstat(sa.sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errsize, "%s exists and is not a socket", sa.sun_path);
			goto fail;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(err, errsize, "%s is in use by another process", sa.sun_path);
			goto fail;
		}
		if (probe >= 0)
			close(probe);
		unlink(sa.sun_path);
	}
	mode_t old = umask(0177); /* nobody else may connect before chmod below */
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0) {
		snprintf(err, errsize, "bind %s: %s", sa.sun_path, strerror(errno));
		goto fail;
	}
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	if (cfg->policy_socket_owner[0] != '\0') {
		struct passwd *pw = getpwnam(cfg->policy_socket_owner);
		if (pw == NULL) {
			snprintf(err, errsize, "policy_socket_owner: no user %s",
			         cfg->policy_socket_owner);
			goto fail;
		}
		uid = pw->pw_uid;
	}
	if (cfg->policy_socket_group[0] != '\0') {
		struct group *gr = getgrnam(cfg->policy_socket_group);
		if (gr == NULL) {
			snprintf(err, errsize, "policy_socket_group: no group %s",
			         cfg->policy_socket_group);
			goto fail;
		}
		gid = gr->gr_gid;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(sa.sun_path, uid, gid) < 0) {
		snprintf(err, errsize, "chown %s: %s", sa.sun_path, strerror(errno));
		goto fail;
	}
	if (chmod(sa.sun_path, (mode_t)cfg->policy_socket_mode) < 0) {
		snprintf(err, errsize, "chmod %s: %s", sa.sun_path, strerror(errno));
		goto fail;
	}
	if (listen(fd, 512) < 0) {
		snprintf(err, errsize, "listen %s: %s", sa.sun_path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static int open_tcp(const char *hostport, char *err, size_t errsize)
{
	char *host, *port;
	struct addrinfo hints, *ai = NULL;
	int fd = -1;
	if (config_split_hostport(hostport, &host, &port) < 0) {
		snprintf(err, errsize, "bad listen address %s", hostport);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int gai = getaddrinfo(host, port, &hints, &ai);
	if (gai != 0) {
		snprintf(err, errsize, "%s: %s", hostport, gai_strerror(gai));
		goto out;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errsize, "socket: %s", strerror(errno));
		goto out;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 512) < 0) {
		snprintf(err, errsize, "bind/listen %s: %s", hostport, strerror(errno));
		close(fd);
		fd = -1;
	}
out:
	if (ai != NULL)
		freeaddrinfo(ai);
	free(host);
	free(port);
	return fd;
}

static void ep_add(struct policy_server *srv, int fd, uint32_t events, struct tag *tag)
{
	struct epoll_event ev = { .events = events, .data.ptr = tag };
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_error("event=epoll_add_failed error=\"%s\"", strerror(errno));
		abort();
	}
}

struct policy_server *policy_server_new(const struct config *cfg, const struct service *svc,
                                        char *err, size_t errsize)
{
	struct policy_server *srv = xcalloc(1, sizeof(*srv));
	srv->cfg = cfg;
	srv->svc = svc;
	srv->unix_l.fd = srv->tcp_l.fd = -1;
	srv->result = xmalloc(sizeof(*srv->result));
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0) {
		snprintf(err, errsize, "epoll_create1: %s", strerror(errno));
		goto fail;
	}
	if (cfg->policy_socket[0] != '\0') {
		srv->unix_l.fd = open_unix(cfg, err, errsize);
		if (srv->unix_l.fd < 0)
			goto fail;
		srv->unix_path = xstrdup(cfg->policy_socket);
		srv->unix_l.tag.kind = TAG_LISTENER;
		srv->unix_l.what = "unix";
		ep_add(srv, srv->unix_l.fd, EPOLLIN, &srv->unix_l.tag);
	}
	if (cfg->policy_tcp_listen[0] != '\0') {
		srv->tcp_l.fd = open_tcp(cfg->policy_tcp_listen, err, errsize);
		if (srv->tcp_l.fd < 0)
			goto fail;
		srv->tcp_l.tag.kind = TAG_LISTENER;
		srv->tcp_l.what = "tcp";
		ep_add(srv, srv->tcp_l.fd, EPOLLIN, &srv->tcp_l.tag);
	}
	return srv;
fail:
	policy_server_destroy(&srv);
	return NULL;
}

static void conn_close(struct policy_server *srv, struct conn *c, const char *reason)
{
	log_debug("conn=%lu event=close reason=%s", c->id, reason);
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->nconns--;
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

static void do_accept(struct policy_server *srv, struct listener *l)
{
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("event=accept_failed via=%s error=\"%s\"", l->what,
				         strerror(errno));
			return;
		}
		if (srv->nconns >= srv->cfg->policy_max_connections) {
			log_warn("event=connection_refused via=%s reason=policy_max_connections "
			         "limit=%llu",
			         l->what, (unsigned long long)srv->cfg->policy_max_connections);
			close(fd);
			continue;
		}
		struct conn *c = xcalloc(1, sizeof(*c));
		c->tag.kind = TAG_CONN;
		c->fd = fd;
		c->id = ++srv->next_id;
		c->via = l->what;
		buf_init(&c->in, POLICY_REQUEST_MAX);
		buf_init(&c->out, POLICY_OUTPUT_MAX);
		c->last_active = now_sec();
		c->next = srv->conns;
		if (srv->conns != NULL)
			srv->conns->prev = c;
		srv->conns = c;
		srv->nconns++;
		ep_add(srv, fd, EPOLLIN | EPOLLRDHUP, &c->tag);
		log_debug("conn=%lu event=connect via=%s", c->id, c->via);
	}
}

/* Decide the action for one request; also logs the decision. */
static const char *answer(struct policy_server *srv, struct conn *c,
                          const struct policy_request *req)
{
	uint64_t size = req->size;
	char rcpt[128];
	if (req->state == POLICY_STATE_OTHER)
		return "DUNNO";
	/* At END-OF-MESSAGE Postfix names the recipient only when there is exactly one; a
	   decision then applies to the whole message, so it is safe only in that case. */
	if (req->state == POLICY_STATE_END_OF_MESSAGE && req->recipient_count != 1)
		return "DUNNO";
	if (req->recipient.len == 0)
		return "DUNNO";
	str_sanitize(rcpt, sizeof(rcpt), req->recipient.ptr, req->recipient.len, 100);
	struct check_result *res = srv->result;
	const char *why;
	if (service_check(srv->svc, req->recipient.ptr, req->recipient.len, size, res, &why) < 0) {
		log_info("conn=%lu rcpt=<%s> size=%llu verdict=invalid_address error=\"%s\" "
		         "action=DUNNO",
		         c->id, rcpt, (unsigned long long)size, why);
		return "DUNNO";
	}
	enum log_level lvl = res->verdict == QUOTA_ACCEPT ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
	if (res->verdict == QUOTA_TEMPFAIL)
		lvl = LOG_LEVEL_WARN;
	if (log_enabled(lvl)) {
		char qid[32];
		str_sanitize(qid, sizeof(qid), req->queue_id.ptr, req->queue_id.len, 20);
		log_write(lvl,
		          "conn=%lu queue_id=%s state=%s rcpt=<%s> size=%llu match=%s verdict=%s "
		          "reason=%s action=\"%s\"",
		          c->id, qid[0] ? qid : "-",
		          req->state == POLICY_STATE_RCPT ? "RCPT" : "END-OF-MESSAGE", rcpt,
		          (unsigned long long)size, service_match_name(res->match),
		          quota_verdict_name(res->verdict), quota_reason_name(res->reason),
		          res->action);
	}
	return res->action;
}

static int flush_out(struct policy_server *srv, struct conn *c)
{
	while (c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!c->writing) {
					struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT |
						                            EPOLLRDHUP,
						                  .data.ptr = &c->tag };
					epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev);
					c->writing = true;
				}
				return 0;
			}
			return -1;
		}
		buf_consume(&c->out, (size_t)n);
	}
	if (c->writing) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = &c->tag };
		epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev);
		c->writing = false;
	}
	return 0;
}

/* Answer every complete request in the input buffer; -1 means close the connection. */
static int process_input(struct policy_server *srv, struct conn *c)
{
	for (;;) {
		struct policy_request req;
		size_t used;
		const char *why;
		int rc = policy_parse(c->in.data, c->in.len, &req, &used, &why);
		if (rc == 0)
			return 0;
		if (rc < 0) {
			log_info("conn=%lu event=protocol_error via=%s error=\"%s\"", c->id, c->via,
			         why);
			return -1;
		}
		const char *action = srv->handler != NULL ? srv->handler(srv->handler_ctx, &req)
		                                          : answer(srv, c, &req);
		if (buf_append(&c->out, "action=", 7) < 0 ||
		    buf_append(&c->out, action, strlen(action)) < 0 ||
		    buf_append(&c->out, "\n\n", 2) < 0) {
			log_info("conn=%lu event=close reason=output_backlog", c->id);
			return -1;
		}
		buf_consume(&c->in, used);
	}
}

static void on_readable(struct policy_server *srv, struct conn *c)
{
	char chunk[READ_CHUNK];
	for (;;) {
		ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(srv, c, "read_error");
			return;
		}
		if (n == 0) {
			conn_close(srv, c, "eof");
			return;
		}
		c->last_active = now_sec();
		if (buf_append(&c->in, chunk, (size_t)n) < 0) {
			log_info("conn=%lu event=protocol_error via=%s error=\"request exceeds "
			         "POLICY_REQUEST_MAX\"",
			         c->id, c->via);
			conn_close(srv, c, "request_too_large");
			return;
		}
		if (process_input(srv, c) < 0) {
			conn_close(srv, c, "protocol_error");
			return;
		}
		if ((size_t)n < sizeof(chunk))
			break;
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
		if ((uint64_t)(now - c->last_active) >= srv->cfg->policy_idle_timeout) {
			log_info("conn=%lu event=idle_timeout seconds=%llu", c->id,
			         (unsigned long long)srv->cfg->policy_idle_timeout);
			conn_close(srv, c, "idle_timeout");
		}
		c = next;
	}
}

int policy_server_run(struct policy_server *srv, int signal_fd)
{
	struct epoll_event evs[EPOLL_BATCH];
	srv->signal_tag.kind = TAG_SIGNAL;
	ep_add(srv, signal_fd, EPOLLIN, &srv->signal_tag);
	time_t last_sweep = now_sec();
	for (;;) {
		int n = epoll_wait(srv->epfd, evs, EPOLL_BATCH, SWEEP_INTERVAL_SEC * 1000);
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
					log_info("event=sighup note=\"configuration reload needs a "
					         "restart; ignored\"");
					continue;
				}
				epoll_ctl(srv->epfd, EPOLL_CTL_DEL, signal_fd, NULL);
				return (int)si.ssi_signo;
			}
			if (t->kind == TAG_LISTENER) {
				do_accept(srv, (struct listener *)t);
				continue;
			}
			struct conn *c = (struct conn *)t;
			if (evs[i].events & EPOLLOUT) {
				if (flush_out(srv, c) < 0) {
					conn_close(srv, c, "write_error");
					continue;
				}
			}
			if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				on_readable(srv, c);
		}
		if (now_sec() - last_sweep >= SWEEP_INTERVAL_SEC) {
			last_sweep = now_sec();
			sweep_idle(srv);
		}
	}
}

void policy_server_destroy(struct policy_server **srvp)
{
	struct policy_server *srv = *srvp;
	if (srv == NULL)
		return;
	while (srv->conns != NULL)
		conn_close(srv, srv->conns, "shutdown");
	if (srv->unix_l.fd >= 0) {
		close(srv->unix_l.fd);
		unlink(srv->unix_path);
	}
	if (srv->tcp_l.fd >= 0)
		close(srv->tcp_l.fd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	free(srv->unix_path);
	free(srv->result);
	free(srv);
	*srvp = NULL;
}
