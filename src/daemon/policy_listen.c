/*
 * policy_listen: opens the policy server's listening sockets at start-up, the Unix socket with
 * the owner, group and mode the config names and a TCP socket, or takes the one systemd passed
 * for a listener (sdlisten.h). It must never take over a socket another live daemon answers on,
 * never remove a file that is not a socket, never change a socket systemd passed, and never
 * leave a window in which a user the mode excludes could connect.
 */
#include "policy_listen.h"

#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "hostport.h"
#include "log.h"
#include "sdlisten.h"

#define LISTEN_BACKLOG   512
#define LISTEN_ERROR_MAX 512 /* longer error text is cut by vsnprintf */

/* Format *error_r into this thread's buffer (documented in policy_listen.h). */
static __attribute__((format(printf, 2, 3))) void fail_msg(const char **error_r, const char *fmt,
                                                           ...)
{
	static _Thread_local char text[LISTEN_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	*error_r = text;
}

/* Give the socket at path the configured owner, group and mode. 0 or -1. */
static int set_owner_mode(const struct config *cfg, const char *path, const char **error_r)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	if (cfg->policy_socket_owner[0] != '\0') {
		struct passwd *pw = getpwnam(cfg->policy_socket_owner);
		if (pw == NULL) {
			fail_msg(error_r, "policy_socket_owner: no user %s",
			         cfg->policy_socket_owner);
			return -1;
		}
		uid = pw->pw_uid;
	}
	if (cfg->policy_socket_group[0] != '\0') {
		struct group *gr = getgrnam(cfg->policy_socket_group);
		if (gr == NULL) {
			fail_msg(error_r, "policy_socket_group: no group %s",
			         cfg->policy_socket_group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) < 0) {
		fail_msg(error_r, "chown %s: %s", path, strerror(errno));
		return -1;
	}
	if (chmod(path, (mode_t)cfg->policy_socket_mode) < 0) {
		fail_msg(error_r, "chmod %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int policy_listen_unix(const struct config *cfg, const char *path, int *fd_r, const char **error_r)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (str_copy(sa.sun_path, path, sizeof(sa.sun_path)) < 0) {
		fail_msg(error_r, "%s: socket path too long", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		fail_msg(error_r, "socket: %s", strerror(errno));
		return -1;
	}
	/* A stale socket from a crash is replaced; a live one means another daemon owns it. */
	struct stat st;
	if (lstat(sa.sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fail_msg(error_r, "%s exists and is not a socket", sa.sun_path);
			goto fail;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			fail_msg(error_r, "%s is in use by another process", sa.sun_path);
			goto fail;
		}
		if (probe >= 0)
			close(probe);
		unlink(sa.sun_path);
	}
	mode_t old = umask(0177); /* nobody else may connect before the chmod */
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0) {
		fail_msg(error_r, "bind %s: %s", sa.sun_path, strerror(errno));
		goto fail;
	}
	if (set_owner_mode(cfg, sa.sun_path, error_r) < 0)
		goto fail;
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		fail_msg(error_r, "listen %s: %s", sa.sun_path, strerror(errno));
		goto fail;
	}
	*fd_r = fd;
	return 0;
fail:
	close(fd);
	return -1;
}

int policy_listen_tcp(const char *hostport, int *fd_r, const char **error_r)
{
	char *host, *port;
	struct addrinfo hints, *ai = NULL;
	int fd = -1;
	if (hostport_split(hostport, &host, &port) < 0) {
		fail_msg(error_r, "bad listen address %s", hostport);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int gai = getaddrinfo(host, port, &hints, &ai);
	if (gai != 0) {
		fail_msg(error_r, "%s: %s", hostport, gai_strerror(gai));
		goto out;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		fail_msg(error_r, "socket: %s", strerror(errno));
		goto out;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		fail_msg(error_r, "bind/listen %s: %s", hostport, strerror(errno));
		close(fd);
		fd = -1;
	}
out:
	if (ai != NULL)
		freeaddrinfo(ai);
	free(host);
	free(port);
	if (fd < 0)
		return -1;
	*fd_r = fd;
	return 0;
}

int policy_listen_open(const struct config *cfg, const char *key, const char *path,
                       const char *hostport, int *fd_r, bool *inherited_r, const char **error_r)
{
	int fd = sdlisten_take(key);
	*inherited_r = fd >= 0;
	if (fd >= 0) {
		log_info("event=socket_inherited listener=%s", key);
		*fd_r = fd;
		return 0;
	}
	return path != NULL ? policy_listen_unix(cfg, path, fd_r, error_r)
	                    : policy_listen_tcp(hostport, fd_r, error_r);
}
