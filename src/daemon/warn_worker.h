/*
 * warn_worker: the daemon thread that delivers quota warnings from the outbox
 * (sql/013_warnings.sql, store/warn_outbox.h) by webhook and by mail, on the channels this
 * daemon's configuration sets up; any number of daemons may run one, and each delivery is made
 * by one of them at a time.
 */
#ifndef MQ_WARN_WORKER_H
#define MQ_WARN_WORKER_H

#include "config.h"

struct warn_worker;

/*
 * A worker for cfg (which must outlive it; its live warning_* parameters are read under
 * reload_read_lock() before each delivery and prune), with the webhook secret and the mail template
 * read and checked; one whose cfg sets up no channel only prunes old events (hourly, holding no
 * connection in between). NULL with *error_r (static text or text in a static buffer: a
 * start-up failure, as `mailquotad -n` reports it).
 */
struct warn_worker *warn_worker_new(const struct config *cfg, const char **error_r);

/*
 * What the channel parameters set up: which channels deliver (warning_webhook_url,
 * warning_mail_command), the webhook secret read from warning_webhook_secret_file, the mail
 * template read from warning_mail_template, all checked as warn_worker_new() checks them (that
 * is what `mailquotad -n` and a reload check). NULL with *error_r as there. Free with
 * warn_setup_free() (the secret is wiped; NULL is ignored).
 */
struct warn_setup;
struct warn_setup *warn_setup_load(const struct config *cfg, const char **error_r);
void warn_setup_free(struct warn_setup **sp);

/*
 * A reload, under reload.h's write lock and with cfg's live parameters already replaced by
 * those *sp was loaded from: the worker takes *sp, and *sp becomes its old setup, for the
 * caller to free once the lock is released. A delivery in progress finishes as it started.
 */
void warn_worker_swap_setup(struct warn_worker *w, struct warn_setup **sp);

/* Make the thread look at the outbox again now (after a reload switched a channel on). */
void warn_worker_wake(struct warn_worker *w);

/* Start the thread: 0, or -1 with *error_r. */
int warn_worker_start(struct warn_worker *w, const char **error_r)
        __attribute__((warn_unused_result));

/*
 * Stop: a delivery in progress is abandoned (its claim ends with the connection, and it is made
 * again later with the same event id), the thread is joined, the worker freed and the pointer
 * NULLed; NULL is ignored.
 */
void warn_worker_destroy(struct warn_worker **wp);

#endif
