/* policy_listen: the listening sockets of the policy server, opened at start-up. */
#ifndef MQ_POLICY_LISTEN_H
#define MQ_POLICY_LISTEN_H

#include <stdbool.h>

#include "config.h"

/*
 * Open the Unix listening socket at path (policy_socket or socketmap_socket): a stale socket left
 * by a crash is replaced, a live one (another daemon answers on it) or a non-socket file refuses;
 * the socket gets policy_socket_owner, policy_socket_group and policy_socket_mode before anyone
 * else can connect. Returns 0 with a non-blocking, close-on-exec *fd_r, or -1 with *error_r in a
 * thread-local buffer valid until the next policy_listen_* call on this thread.
 */
int policy_listen_unix(const struct config *cfg, const char *path, int *fd_r, const char **error_r)
        __attribute__((warn_unused_result));

/*
 * Open a TCP listening socket on hostport ("host:port", "[v6]:port"; numeric port). Returns 0
 * with a non-blocking, close-on-exec *fd_r, or -1 with *error_r as for policy_listen_unix().
 */
int policy_listen_tcp(const char *hostport, int *fd_r, const char **error_r)
        __attribute__((warn_unused_result));

/*
 * Open the listener of parameter key ("policy_socket", "socketmap_tcp_listen", ...): the socket
 * systemd passed for it if sdlisten_init() matched one (used as it is: *inherited_r true, and
 * the caller must never chmod or unlink it), else policy_listen_unix(cfg, path) when path is
 * set, or policy_listen_tcp(hostport). 0 with *fd_r, or -1 with *error_r as for those.
 */
int policy_listen_open(const struct config *cfg, const char *key, const char *path,
                       const char *hostport, int *fd_r, bool *inherited_r, const char **error_r)
        __attribute__((warn_unused_result));

#endif
