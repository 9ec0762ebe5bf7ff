/*
 * sdlisten: listening sockets handed over by the service manager (socket activation,
 * LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES as sd_listen_fds(3) reads them), matched to the
 * daemon's configured listeners. A listener with no inherited socket is bound by its module as
 * before, so the daemon runs the same with or without systemd. Process-wide state, like the
 * environment it comes from: sdlisten_init() runs once at start-up before any thread starts.
 */
#ifndef MQ_SDLISTEN_H
#define MQ_SDLISTEN_H

#include <stddef.h>

/* At most this many inherited sockets are taken; more is a start-up error. */
#define SDLISTEN_MAX 16

enum sdlisten_kind {
	SDLISTEN_UNIX, /* the value is a Unix socket path (policy_socket, ...) */
	SDLISTEN_TCP,  /* the value is host:port (policy_tcp_listen, http_listen, ...) */
};

/* One configured listener: its parameter name, its value ("" when disabled) and its kind. */
struct sdlisten_want {
	const char *name;
	const char *value;
	enum sdlisten_kind kind;
};

/*
 * Take the sockets systemd passed (none when LISTEN_PID is not this process; the LISTEN_*
 * variables are then removed from the environment, so no child sees them) and match each to
 * exactly one of the n listeners in wants: by its FileDescriptorName= when that is a
 * listener's parameter name (its bound address must then be the configured one), otherwise by
 * its bound address (getsockname: the same Unix path, or the same address and port as the
 * configured host:port resolves to). Every inherited socket must be a listening stream socket
 * and match one enabled listener, and no listener may get two: otherwise -1 with *error_r in a
 * static buffer naming the socket, its name and address, and what was expected. On success the
 * sockets are non-blocking and close-on-exec. The names in wants must outlive the module's use
 * (string literals); the values are read during the call only.
 */
int sdlisten_init(const struct sdlisten_want *wants, size_t n, const char **error_r)
        __attribute__((warn_unused_result));

/*
 * The inherited socket matched to the listener called name (a parameter name given to
 * sdlisten_init()), which the caller now owns, or -1 when none was inherited (bind your own).
 * A second call for the same name returns -1.
 */
int sdlisten_take(const char *name);

/*
 * Close the inherited sockets no module took (a listener the configuration names but no module
 * serves). Returns how many were closed.
 */
size_t sdlisten_close_untaken(void);

#endif
