/* policy_server: the Postfix front ends, the policy protocol and the socketmap table, each on a
   Unix socket and optionally TCP: the event loop and connections; answering per protocol in
   answer.h, listening sockets in policy_listen.h. */
#ifndef MQ_POLICY_SERVER_H
#define MQ_POLICY_SERVER_H

#include <stdbool.h>

#include "answer.h"
#include "config.h"
#include "service.h"

struct policy_server;

/*
 * Open the listeners the config names: each one's socket inherited from systemd when
 * sdlisten_init() matched one to it (used as it is: no chown, chmod or unlink), else bound here
 * (policy_socket and socketmap_socket with the policy_socket_owner, group and mode;
 * policy_tcp_listen and socketmap_tcp_listen; see policy_listen.h). cfg and svc are borrowed
 * and must outlive the server; requests are answered as answer.h says for each listener's
 * protocol. Returns the server, or NULL with *error_r in a thread-local buffer valid until the
 * next call on this thread (start-up only).
 */
struct policy_server *policy_server_new(const struct config *cfg, const struct service *svc,
                                        const char **error_r);

/*
 * Replace how policy requests are answered (see policy_handler_fn in answer.h; svc may then be
 * NULL if no socketmap listener is configured).
 */
void policy_server_set_handler(struct policy_server *srv, policy_handler_fn fn, void *ctx);

/*
 * What SIGHUP does: fn(ctx, true) on the loop's thread; when it returns 1, fn(ctx, false) is
 * called again every few milliseconds from the loop until it returns 0 (reload_step() in
 * reload.h). Without it (fn NULL) SIGHUP is logged and ignored; setting it forgets a reload
 * still waiting.
 */
void policy_server_set_reload(struct policy_server *srv, int (*fn)(void *ctx, bool request),
                              void *ctx);

/*
 * Serve until a signal arrives on signal_fd (a signalfd for SIGTERM, SIGINT and SIGHUP). SIGHUP
 * reloads (policy_server_set_reload()); the return value is the terminating signal number.
 */
int policy_server_run(struct policy_server *srv, int signal_fd);

/*
 * Shutdown: close the listeners (a Unix socket the daemon bound is unlinked; one inherited from
 * systemd, sdlisten.h, is left for the next daemon) and go on answering the
 * connections already open; once done(ctx) is true (NULL: at once) close each when it is
 * between requests and has been quiet for 100 ms, or is between requests at all 1 s later (a
 * client meets a clean end between two requests, not a reset with its question unread),
 * until none is left, at most timeout_ms. Returns 0, or the number
 * of a signal that arrived meanwhile (the caller may stop at once).
 */
int policy_server_drain(struct policy_server *srv, int signal_fd, unsigned timeout_ms,
                        bool (*done)(void *ctx), void *ctx);

/* Close every connection and listener, unlink the socket (not an inherited one), free, NULL the
   pointer. */
void policy_server_destroy(struct policy_server **srv);

#endif
