/*
 * sdnotify: what mailquotad tells the service manager (systemd's Type=notify protocol through
 * libsystemd): READY=1, RELOADING=1, STOPPING=1, STATUS= lines and the watchdog's WATCHDOG=1.
 * Without NOTIFY_SOCKET (started by hand, by a test, by another supervisor) every call does
 * nothing. Calls are made from the main thread (the policy event loop) only.
 */
#ifndef MQ_SDNOTIFY_H
#define MQ_SDNOTIFY_H

#include <stdbool.h>

#include "store.h"

/* Seconds between STATUS= updates from the event loop (sdnotify_tick()). */
#define SDNOTIFY_STATUS_INTERVAL_SEC 10

/*
 * Read NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID once, at start-up, before any thread
 * starts. The environment is left as it is (the variables name this process, and systemd's
 * default NotifyAccess=main ignores messages from children such as warning_mail_command).
 */
void sdnotify_init(void);

/* Whether a service manager listens (NOTIFY_SOCKET was set): STATUS= work may be skipped. */
bool sdnotify_enabled(void);

/*
 * The daemon serves: READY=1 with the STATUS= text status (NULL: none). Sent once after the
 * first view load, or when view_load_timeout passed without one (the daemon then answers the
 * tempfail reply, which is the right thing to do, and status says so), and again after a
 * reload (RELOADING=1 ... READY=1).
 */
void sdnotify_ready(const char *status);

/*
 * A reload begins: RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC now, as systemd 253+
 * wants it; older managers ignore it), and the STATUS= text status (NULL: none). Follow with
 * sdnotify_ready() when the reload is over, whatever its outcome.
 */
void sdnotify_reloading(const char *status);

/* The daemon stops: STOPPING=1 with the STATUS= text status (NULL: none). */
void sdnotify_stopping(const char *status);

/*
 * Set the STATUS= line (printf format). The same text as the previous one is not sent again,
 * so a caller may call it as often as it likes.
 */
void sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Called by the policy event loop on every turn: the watchdog's ping (sdnotify_watchdog()),
 * and every SDNOTIFY_STATUS_INTERVAL_SEC the STATUS= line of a serving daemon from store
 * (mailboxes loaded, how old the view is, whether PostgreSQL is reachable) and the open
 * policy connections. store NULL (draining): the ping only. Cheap when nothing is due.
 */
void sdnotify_tick(struct store *store, unsigned policy_conns);

/*
 * How often, in milliseconds, the event loop must wake for the watchdog (a quarter of
 * WATCHDOG_USEC: pings go out every half, so one is never more than 3/4 of it late), or 0
 * when systemd runs no watchdog for this process.
 */
unsigned sdnotify_watchdog_interval_ms(void);

/*
 * Send WATCHDOG=1 when the last one is half of WATCHDOG_USEC old or more; cheap
 * otherwise (one clock read). Called from the policy event loop on every turn, so a loop that
 * stops turning stops the pings and systemd restarts the daemon (WatchdogSec=).
 */
void sdnotify_watchdog(void);

#endif
