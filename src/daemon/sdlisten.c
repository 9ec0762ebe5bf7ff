/*
 * sdlisten: the listening sockets systemd's socket units pass to mailquotad (socket
 * activation), so the sockets outlive a restart and connection attempts wait in their backlog
 * while the new daemon loads its view. It must never accept a socket it cannot place: an
 * inherited socket that matches no configured listener, or matches it by name but not by
 * address, stops start-up with a message saying which and why, rather than serving a protocol
 * on a socket the MTA expects another one on.
 */
#include "sdlisten.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "hostport.h"

#define ERROR_MAX 600 /* error text; longer is cut */

struct inherited {
	int fd;
	char name[64];        /* FileDescriptorName=, cut to fit (systemd allows 255) */
	char where[128];      /* the bound address, for messages */
	const char *listener; /* the wants[] name it was matched to */
	bool taken;
};

static struct inherited socks[SDLISTEN_MAX];
static size_t nsocks;
static char error_text[ERROR_MAX];

static const char *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_text, sizeof(error_text), fmt, ap);
	va_end(ap);
	return error_text;
}

/* Describe the bound address of a socket for messages ("unix:/run/x.sock", "127.0.0.1:8080"). */
static void describe(const struct sockaddr_storage *sa, socklen_t len, char *out, size_t size)
{
	if (sa->ss_family == AF_UNIX) {
		const struct sockaddr_un *su = (const void *)sa;
		if (len <= offsetof(struct sockaddr_un, sun_path) || su->sun_path[0] == '\0')
			snprintf(out, size, "unix:(unnamed or abstract)");
		else
			snprintf(out, size, "unix:%.100s", su->sun_path);
		return;
	}
	char host[NI_MAXHOST], port[NI_MAXSERV];
	if (getnameinfo((const struct sockaddr *)sa, len, host, sizeof(host), port, sizeof(port),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, size, "(address family %d)", (int)sa->ss_family);
		return;
	}
	snprintf(out, size, sa->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* Whether two IP socket addresses are the same address and port. */
static bool same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

/* Whether the socket's bound address is the configured value of want. */
static bool bound_to(const struct sockaddr_storage *sa, socklen_t len,
                     const struct sdlisten_want *want)
{
	if (want->value[0] == '\0')
		return false;
	if (want->kind == SDLISTEN_UNIX) {
		if (sa->ss_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path))
			return false;
		const struct sockaddr_un *su = (const void *)sa;
		size_t max = len - offsetof(struct sockaddr_un, sun_path);
		return strnlen(su->sun_path, max) == strlen(want->value) &&
		       strncmp(su->sun_path, want->value, max) == 0;
	}
	if (sa->ss_family != AF_INET && sa->ss_family != AF_INET6)
		return false;
	char *host, *port;
	if (hostport_split(want->value, &host, &port) < 0)
		return false;
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV; /* as the listener itself would bind */
	bool same = false;
	if (getaddrinfo(host, port, &hints, &ai) == 0) {
		for (struct addrinfo *p = ai; p != NULL && !same; p = p->ai_next)
			same = same_ip(p->ai_addr, (const struct sockaddr *)sa);
		freeaddrinfo(ai);
	}
	free(host);
	free(port);
	return same;
}

/* The names of the listeners, for messages: "policy_socket, ..., http_listen". */
static const char *names_of(const struct sdlisten_want *wants, size_t n)
{
	static char text[300];
	size_t off = 0;
	text[0] = '\0';
	for (size_t i = 0; i < n && off < sizeof(text); i++) {
		int k = snprintf(text + off, sizeof(text) - off, "%s%s", i > 0 ? ", " : "",
		                 wants[i].name);
		if (k < 0)
			break;
		off += (size_t)k;
	}
	return text;
}

/* Match one inherited socket to one listener; 0 or -1 with *error_r. */
static int match(struct inherited *s, const struct sockaddr_storage *sa, socklen_t len,
                 const struct sdlisten_want *wants, size_t n, const char **error_r)
{
	const struct sdlisten_want *w = NULL;
	for (size_t i = 0; i < n && w == NULL; i++)
		if (strcmp(s->name, wants[i].name) == 0)
			w = &wants[i];
	if (w != NULL) {
		if (w->value[0] == '\0') {
			*error_r = fail("inherited socket %d (FileDescriptorName=%s, %s): %s is "
			                "empty (disabled) in the configuration; set it to the "
			                "socket's address or remove the socket from the unit",
			                s->fd, s->name, s->where, w->name);
			return -1;
		}
		if (!bound_to(sa, len, w)) {
			*error_r =
			        fail("inherited socket %d (FileDescriptorName=%s) is bound to %s "
			             "but %s = %.200s: make the socket unit and the configuration "
			             "name the same address",
			             s->fd, s->name, s->where, w->name, w->value);
			return -1;
		}
	} else {
		for (size_t i = 0; i < n && w == NULL; i++)
			if (bound_to(sa, len, &wants[i]))
				w = &wants[i];
		if (w == NULL) {
			*error_r =
			        fail("inherited socket %d (FileDescriptorName=%s, %s) matches no "
			             "configured listener: bind it where one of %s is configured, "
			             "or name it after one with FileDescriptorName=",
			             s->fd, s->name, s->where, names_of(wants, n));
			return -1;
		}
	}
	for (size_t i = 0; i < nsocks; i++)
		if (socks[i].listener == w->name) {
			*error_r = fail("inherited sockets %d (%s) and %d (%s) are both for %s",
			                socks[i].fd, socks[i].where, s->fd, s->where, w->name);
			return -1;
		}
	s->listener = w->name;
	return 0;
}

int sdlisten_init(const struct sdlisten_want *wants, size_t n, const char **error_r)
{
	char **names = NULL;
	/* 1: unset LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES; the sockets get FD_CLOEXEC */
	int count = sd_listen_fds_with_names(1, &names);
	int rc = 0;
	if (count < 0) {
		*error_r = fail("LISTEN_FDS: %s", strerror(-count));
		return -1;
	}
	if ((size_t)count > SDLISTEN_MAX) {
		*error_r =
		        fail("%d inherited sockets (LISTEN_FDS): at most %d", count, SDLISTEN_MAX);
		rc = -1;
		goto out;
	}
	for (int i = 0; i < count; i++) {
		struct inherited *s = &socks[nsocks];
		s->fd = SD_LISTEN_FDS_START + i;
		snprintf(s->name, sizeof(s->name), "%s",
		         names != NULL && names[i] != NULL ? names[i] : "unknown");
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		memset(&sa, 0, sizeof(sa));
		if (getsockname(s->fd, (struct sockaddr *)&sa, &len) < 0) {
			*error_r = fail("inherited socket %d (FileDescriptorName=%s): %s", s->fd,
			                s->name, strerror(errno));
			rc = -1;
			goto out;
		}
		describe(&sa, len, s->where, sizeof(s->where));
		nsocks++; /* closed by the caller's exit on failure; tracked for messages */
		if (sd_is_socket(s->fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			*error_r =
			        fail("inherited socket %d (FileDescriptorName=%s, %s) is not a "
			             "listening stream socket (ListenStream= in the socket unit)",
			             s->fd, s->name, s->where);
			rc = -1;
			goto out;
		}
		if (match(s, &sa, len, wants, n, error_r) < 0) {
			rc = -1;
			goto out;
		}
		int fl = fcntl(s->fd, F_GETFL);
		if (fl < 0 || fcntl(s->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			*error_r =
			        fail("inherited socket %d: O_NONBLOCK: %s", s->fd, strerror(errno));
			rc = -1;
			goto out;
		}
	}
out:
	if (names != NULL) {
		for (int i = 0; i < count; i++)
			free(names[i]);
		free(names);
	}
	return rc;
}

int sdlisten_take(const char *name)
{
	for (size_t i = 0; i < nsocks; i++)
		if (!socks[i].taken && socks[i].listener != NULL &&
		    strcmp(socks[i].listener, name) == 0) {
			socks[i].taken = true;
			return socks[i].fd;
		}
	return -1;
}

size_t sdlisten_close_untaken(void)
{
	size_t closed = 0;
	for (size_t i = 0; i < nsocks; i++)
		if (!socks[i].taken) {
			close(socks[i].fd);
			socks[i].taken = true;
			closed++;
		}
	return closed;
}
