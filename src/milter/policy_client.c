/*
 * policy_client: the milter's side of the Postfix policy protocol towards mailquotad. One
 * client per SMTP session (libmilter gives each session a thread), so nothing here is shared
 * or locked. Every wait is bounded by the client's deadline (poll on a nonblocking socket);
 * it must never block a session past its timeout, never raise SIGPIPE (MSG_NOSIGNAL), and
 * never read more of an answer than MILTER_ANSWER_MAX.
 */
#include "policy_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "deadline.h"
#include "hostport.h"
#include "xalloc.h"

#define UNIX_RETRY_NS (10 * 1000 * 1000) /* 10 ms between connects to a full backlog */

struct policy_client {
	char *target;
	unsigned long timeout_ms;
	int fd; /* -1 when not connected */
	char in[MILTER_ANSWER_MAX + 1];
	size_t in_len;
	char error[256];
};

struct policy_client *policy_client_new(const char *target, unsigned long timeout_ms)
{
	struct policy_client *pc = xcalloc(1, sizeof(*pc));
	pc->target = xstrdup(target);
	pc->timeout_ms = timeout_ms;
	pc->fd = -1;
	return pc;
}

static void disconnect(struct policy_client *pc)
{
	if (pc->fd >= 0)
		close(pc->fd);
	pc->fd = -1;
	pc->in_len = 0;
}

void policy_client_destroy(struct policy_client **pc)
{
	if (*pc == NULL)
		return;
	disconnect(*pc);
	free((*pc)->target);
	free(*pc);
	*pc = NULL;
}

static int fail(struct policy_client *pc, const char **error_r, const char *what, int err)
{
	if (err != 0)
		snprintf(pc->error, sizeof(pc->error), "%s %s: %s", what, pc->target,
		         strerror(err));
	else
		snprintf(pc->error, sizeof(pc->error), "%s %s", what, pc->target);
	*error_r = pc->error;
	disconnect(pc);
	return -1;
}

/* Wait until fd is ready for events or the deadline passes; 0 ready, -1 timeout or error. */
static int wait_fd(int fd, short events, const struct timespec *deadline)
{
	for (;;) {
		long left = deadline_left_ms(CLOCK_MONOTONIC, deadline);
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd p = { fd, events, 0 };
		int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* Connect one socket to addr, nonblocking, by the deadline; the descriptor or -1 (errno). */
static int connect_addr(int family, const struct sockaddr *addr, socklen_t alen,
                        const struct timespec *deadline)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	for (;;) {
		if (connect(fd, addr, alen) == 0)
			return fd;
		/* a Unix socket whose listen backlog is full: nothing is connected and no event
		   will say when there is room, so try again shortly until the deadline */
		if (family != AF_UNIX || errno != EAGAIN)
			break;
		if (deadline_left_ms(CLOCK_MONOTONIC, deadline) <= 0) {
			errno = ETIMEDOUT;
			break;
		}
		struct timespec pause = { 0, UNIX_RETRY_NS };
		nanosleep(&pause, NULL);
	}
	if (errno == EINPROGRESS) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (wait_fd(fd, POLLOUT, deadline) == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
			return fd;
		if (soerr != 0)
			errno = soerr;
	}
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

static int do_connect(struct policy_client *pc, const struct timespec *deadline,
                      const char **error_r)
{
	if (pc->target[0] == '/') {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		if (str_copy(sun.sun_path, pc->target, sizeof(sun.sun_path)) < 0)
			return fail(pc, error_r, "socket path too long:", 0);
		pc->fd = connect_addr(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun), deadline);
		return pc->fd < 0 ? fail(pc, error_r, "cannot connect to", errno) : 0;
	}
	char *host, *port;
	if (hostport_split(pc->target, &host, &port) < 0)
		return fail(pc, error_r, "not host:port:", 0);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	free(host);
	free(port);
	if (rc != 0)
		return fail(pc, error_r, "cannot resolve", 0);
	int err = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai != NULL && pc->fd < 0; ai = ai->ai_next) {
		pc->fd = connect_addr(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline);
		if (pc->fd < 0)
			err = errno;
	}
	freeaddrinfo(res);
	return pc->fd < 0 ? fail(pc, error_r, "cannot connect to", err) : 0;
}

enum exchange { EXCHANGE_OK, EXCHANGE_CLOSED, EXCHANGE_FAILED };

/* One request and its answer on the open connection. EXCHANGE_CLOSED: the daemon had closed
   the connection before answering anything (worth one retry on a kept connection). */
static enum exchange exchange(struct policy_client *pc, const char *req, size_t len,
                              const struct timespec *deadline, struct policy_action *action_r,
                              const char **error_r)
{
	size_t sent = 0;
	while (sent < len) {
		ssize_t n = send(pc->fd, req + sent, len - sent, MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(pc->fd, POLLOUT, deadline) < 0) {
				(void)fail(pc, error_r, "timed out sending to", 0);
				return EXCHANGE_FAILED;
			}
			continue;
		}
		if (errno == EPIPE || errno == ECONNRESET) {
			(void)fail(pc, error_r, "connection closed by", 0);
			return EXCHANGE_CLOSED;
		}
		(void)fail(pc, error_r, "cannot send to", errno);
		return EXCHANGE_FAILED;
	}
	pc->in_len = 0;
	for (;;) {
		const char *action, *why;
		size_t alen, used;
		int rc = milter_answer_parse(pc->in, pc->in_len, &action, &alen, &used, &why);
		if (rc == 1) {
			/* alen < used <= in_len <= MILTER_ANSWER_MAX < sizeof(text) */
			memcpy(action_r->text, action, alen);
			action_r->text[alen] = '\0';
			action_r->len = alen;
			if (used != pc->in_len) /* more than one answer to one question */
				disconnect(pc);
			pc->in_len = 0;
			return EXCHANGE_OK;
		}
		if (rc < 0) {
			snprintf(pc->error, sizeof(pc->error), "bad answer from %s: %s", pc->target,
			         why);
			*error_r = pc->error;
			disconnect(pc);
			return EXCHANGE_FAILED;
		}
		if (pc->in_len >= MILTER_ANSWER_MAX) { /* parse says -1 first; kept for safety */
			(void)fail(pc, error_r, "answer too long from", 0);
			return EXCHANGE_FAILED;
		}
		ssize_t n = recv(pc->fd, pc->in + pc->in_len, MILTER_ANSWER_MAX - pc->in_len, 0);
		if (n > 0) {
			pc->in_len += (size_t)n;
			continue;
		}
		if (n == 0 || errno == ECONNRESET) {
			bool nothing = pc->in_len == 0;
			(void)fail(pc, error_r, "connection closed by", 0);
			return nothing ? EXCHANGE_CLOSED : EXCHANGE_FAILED;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_fd(pc->fd, POLLIN, deadline) < 0) {
				(void)fail(pc, error_r, "no answer in time from", 0);
				return EXCHANGE_FAILED;
			}
			continue;
		}
		(void)fail(pc, error_r, "cannot read from", errno);
		return EXCHANGE_FAILED;
	}
}

int policy_client_ask(struct policy_client *pc, const char *req, size_t len,
                      struct policy_action *action_r, const char **error_r)
{
	struct timespec deadline = deadline_in(CLOCK_MONOTONIC, pc->timeout_ms);
	for (int attempt = 0; attempt < 2; attempt++) {
		bool kept = pc->fd >= 0;
		if (!kept && do_connect(pc, &deadline, error_r) < 0)
			return -1;
		switch (exchange(pc, req, len, &deadline, action_r, error_r)) {
		case EXCHANGE_OK:
			return 0;
		case EXCHANGE_CLOSED:
			if (!kept)
				return -1;
			break; /* a kept connection the daemon had closed: once more, fresh */
		case EXCHANGE_FAILED:
			return -1;
		}
	}
	return -1;
}
