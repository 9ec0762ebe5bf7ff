/*
 * warn_outbox: the daemon's side of the warning outbox (sql/013_warnings.sql) on a connection
 * of its own: wait for new events (LISTEN mailquota_warnings), claim one due delivery with
 * FOR UPDATE SKIP LOCKED and keep it locked while the caller sends it, record the outcome, and
 * prune old events. One thread uses an outbox at a time.
 *
 * Errors: -1 with *error_r (static text or this thread's copy of a database message, see
 * db.h); the connection is then dropped and the next call reconnects.
 */
#ifndef MQ_WARN_OUTBOX_H
#define MQ_WARN_OUTBOX_H

#include <stdint.h>

#include "buf.h"
#include "warning.h"

#define WARN_OUTBOX_ERROR_MAX 500  /* last_error text kept per delivery */
#define WARN_OUTBOX_HELD_MS   1000 /* a due delivery another session holds: looked at again */

enum warn_outcome {
	WARN_DELIVERED, /* done */
	WARN_RETRY,     /* try again after the delay, unless the tries are used up */
	WARN_FAILED,    /* give up now (a permanent refusal) */
};

struct warn_outbox;

/* An outbox for conninfo (not connected yet). statement_s bounds each of its statements. */
struct warn_outbox *warn_outbox_new(const char *conninfo, unsigned connect_s, unsigned statement_s);
/* Close (rolling back a claim in progress), free, NULL the pointer; NULL is ignored. */
void warn_outbox_destroy(struct warn_outbox **obp);

/*
 * Claim the longest-due pending delivery of channel: 1 with *ev, the webhook body (the event's
 * JSON) appended to body and the tries made so far in *tries_r, the claim held until
 * warn_outbox_finish(); 0 when nothing is due; -1 with *error_r.
 */
int warn_outbox_claim(struct warn_outbox *ob, enum warning_channel channel,
                      struct warning_event *ev, struct buf *body, unsigned *tries_r,
                      const char **error_r) __attribute__((warn_unused_result));

/*
 * Record how the claimed delivery went and release it: delivered; or failed; or one more try
 * used, to be retried after retry_ms, or failed when that was try number max_tries. error
 * (may be NULL) is kept, cut to WARN_OUTBOX_ERROR_MAX bytes. The state it ended in goes to
 * *state_r ("delivered", "pending", "failed"). 0, or -1 with *error_r (the claim is released
 * by the lost connection, and the delivery is made again later: receivers deduplicate by the
 * event id).
 */
int warn_outbox_finish(struct warn_outbox *ob, enum warn_outcome outcome, unsigned max_tries,
                       uint64_t retry_ms, const char *error, const char **state_r,
                       const char **error_r) __attribute__((warn_unused_result));

/*
 * End the claim of warn_outbox_claim() without a try: the delivery stays pending and due as it
 * was (a reload switched its channel off before it was sent). A failed rollback drops the
 * connection, which ends the claim as well.
 */
void warn_outbox_release(struct warn_outbox *ob);

/*
 * After claims found nothing due: milliseconds until the next pending delivery of the channels
 * whose bits (1 << channel) are set falls due; WARN_OUTBOX_HELD_MS when one is due already
 * (another session holds it); UINT64_MAX when none is pending. 0, or -1 with *error_r.
 */
int warn_outbox_next_due(struct warn_outbox *ob, unsigned channels, uint64_t *ms_r,
                         const char **error_r) __attribute__((warn_unused_result));

/* Delete events older than retention_s seconds (and their deliveries), in batches; the count
   in *n_r (what was deleted before a failure stays deleted). */
int warn_outbox_prune(struct warn_outbox *ob, unsigned retention_s, uint64_t *n_r,
                      const char **error_r) __attribute__((warn_unused_result));

/* Close the connection (a daemon that only prunes holds none between prunes). */
void warn_outbox_disconnect(struct warn_outbox *ob);

/*
 * Wait up to timeout_ms for a new event's notification or for wake_fd to become readable
 * (wake_fd -1: none); notifications are consumed. Returns at once when not connected.
 */
void warn_outbox_wait(struct warn_outbox *ob, int wake_fd, unsigned timeout_ms);

#endif
