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
 * A worker for cfg (which must outlive it), with the webhook secret and the mail template read
 * and checked; one whose cfg sets up no channel only prunes old events (hourly, holding no
 * connection in between). NULL with *error_r (static text or text in a static buffer: a
 * start-up failure, as `mailquotad -n` reports it).
 */
struct warn_worker *warn_worker_new(const struct config *cfg, const char **error_r);

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
