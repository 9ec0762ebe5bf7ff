/*
 * warn_outbox: claims and records warning deliveries (see warn_outbox.h). A claim is a row lock
 * on the delivery held by an open transaction: another daemon's claim skips it (SKIP LOCKED),
 * and if this daemon dies, PostgreSQL ends the transaction with the connection and the delivery
 * is due again. Every statement here is ours; values travel as parameters.
 */
#include "warn_outbox.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

#define WARN_PRUNE_BATCH 5000 /* events deleted by one statement */
#define TEXT_(x)         #x
#define TEXT(x)          TEXT_(x)

struct warn_outbox {
	char *conninfo;
	struct db_limits limits;
	PGconn *conn;
	bool claimed;     /* a claim's transaction is open */
	char event[24];   /* the claimed delivery: warning_events.id */
	const char *chan; /* and its channel */
};

struct warn_outbox *warn_outbox_new(const char *conninfo, unsigned connect_s, unsigned statement_s)
{
	struct warn_outbox *ob = xcalloc(1, sizeof(*ob));
	ob->conninfo = xstrdup(conninfo);
	ob->limits = (struct db_limits){ .connect_s = connect_s,
		                         .statement_s = statement_s,
		                         .lock_s = statement_s };
	return ob;
}

static void drop(struct warn_outbox *ob)
{
	if (ob->conn != NULL)
		PQfinish(ob->conn);
	ob->conn = NULL;
	ob->claimed = false;
}

void warn_outbox_destroy(struct warn_outbox **obp)
{
	struct warn_outbox *ob = *obp;
	if (ob == NULL)
		return;
	drop(ob);
	free(ob->conninfo);
	free(ob);
	*obp = NULL;
}

static unsigned call_ms(const struct warn_outbox *ob)
{
	return db_call_timeout_ms(&ob->limits);
}

/* Connect and listen when not connected: 0, or -1 with *error_r. */
static int ensure(struct warn_outbox *ob, const char **error_r)
{
	if (ob->conn != NULL && PQstatus(ob->conn) == CONNECTION_OK)
		return 0;
	drop(ob);
	ob->conn = db_open(ob->conninfo, "mailquotad-warnings", &ob->limits, error_r);
	if (ob->conn == NULL)
		return -1;
	if (db_exec(ob->conn, "LISTEN mailquota_warnings", call_ms(ob), error_r) < 0) {
		drop(ob);
		return -1;
	}
	return 0;
}

/* Run one statement: its result when it succeeded, else NULL with *error_r and no connection. */
static PGresult *run(struct warn_outbox *ob, const char *sql, int n, const char *const *params,
                     const char **error_r)
{
	PGresult *r = db_run(ob->conn, false, sql, n, params, call_ms(ob));
	if (db_classify(r) == DB_OK)
		return r;
	*error_r = db_error_text(ob->conn, r);
	PQclear(r);
	drop(ob);
	return NULL;
}

/* Copy column col of row 0 into dst[size], cut if it is longer (our own columns never are). */
static void take(const PGresult *r, int col, char *dst, size_t size)
{
	snprintf(dst, size, "%s", PQgetvalue(r, 0, col));
}

int warn_outbox_claim(struct warn_outbox *ob, enum warning_channel channel,
                      struct warning_event *ev, struct buf *body, unsigned *tries_r,
                      const char **error_r)
{
	if (ensure(ob, error_r) < 0)
		return -1;
	if (db_exec(ob->conn, "BEGIN", call_ms(ob), error_r) < 0) {
		drop(ob);
		return -1;
	}
	const char *params[1] = { warning_channel_name(channel) };
	PGresult *r =
	        run(ob,
	            "SELECT e.id, e.event_id, e.address, e.resource, e.threshold,"
	            " coalesce(e.percent::text, ''), e.used, e.limit_value, mq_ts(e.created_at),"
	            " d.tries, mq_warning_payload(e)::text"
	            " FROM warning_deliveries d JOIN warning_events e ON e.id = d.event_id"
	            " WHERE d.channel = $1 AND d.state = 'pending' AND d.next_at <= now()"
	            " ORDER BY d.next_at LIMIT 1 FOR UPDATE OF d SKIP LOCKED",
	            1, params, error_r);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		if (db_exec(ob->conn, "COMMIT", call_ms(ob), error_r) < 0) {
			drop(ob);
			return -1;
		}
		return 0;
	}
	take(r, 0, ob->event, sizeof(ob->event));
	ob->chan = params[0];
	take(r, 1, ev->event_id, sizeof(ev->event_id));
	take(r, 2, ev->address, sizeof(ev->address));
	ev->resource =
	        strcmp(PQgetvalue(r, 0, 3), "storage") == 0 ? WARNING_STORAGE : WARNING_MESSAGES;
	ev->threshold = (unsigned)db_get_u64(r, 0, 4);
	take(r, 5, ev->percent, sizeof(ev->percent));
	ev->used = db_get_u64(r, 0, 6);
	ev->limit = db_get_u64(r, 0, 7);
	take(r, 8, ev->created_at, sizeof(ev->created_at));
	*tries_r = (unsigned)db_get_u64(r, 0, 9);
	int rc = buf_puts(body, PQgetvalue(r, 0, 10));
	PQclear(r);
	if (rc < 0) { /* a document of ten fields: a buffer too small for it is our bug */
		*error_r = "a warning event does not fit its buffer";
		db_rollback(ob->conn, call_ms(ob));
		return -1;
	}
	ob->claimed = true;
	return 1;
}

int warn_outbox_finish(struct warn_outbox *ob, enum warn_outcome outcome, unsigned max_tries,
                       uint64_t retry_ms, const char *error, const char **state_r,
                       const char **error_r)
{
	if (!ob->claimed || ob->conn == NULL) {
		*error_r = "no delivery is claimed";
		return -1;
	}
	ob->claimed = false;
	static const char *const outcomes[] = {
		[WARN_DELIVERED] = "delivered", [WARN_RETRY] = "retry", [WARN_FAILED] = "failed"
	};
	char cut[WARN_OUTBOX_ERROR_MAX + 1], max[16], ms[24];
	str_sanitize(cut, sizeof(cut), error != NULL ? error : "",
	             error != NULL ? strlen(error) : 0, WARN_OUTBOX_ERROR_MAX);
	snprintf(max, sizeof(max), "%u", max_tries);
	snprintf(ms, sizeof(ms), "%" PRIu64, retry_ms);
	const char *params[6] = { ob->event, ob->chan, outcomes[outcome],
		                  max,       ms,       error != NULL ? cut : NULL };
	PGresult *r = run(ob,
	                  "UPDATE warning_deliveries SET tries = tries + 1,"
	                  " state = CASE WHEN $3 = 'delivered' THEN 'delivered'"
	                  "  WHEN $3 = 'failed' OR tries + 1 >= $4::integer THEN 'failed'"
	                  "  ELSE 'pending' END,"
	                  " next_at = clock_timestamp() + $5::bigint * interval '1 millisecond',"
	                  " last_error = $6,"
	                  " done_at = CASE WHEN $3 = 'retry' AND tries + 1 < $4::integer THEN NULL"
	                  "  ELSE clock_timestamp() END"
	                  " WHERE event_id = $1::bigint AND channel = $2 RETURNING state",
	                  6, params, error_r);
	if (r == NULL)
		return -1;
	static const char *const states[] = { "delivered", "pending", "failed" };
	*state_r = "failed";
	for (size_t i = 0; i < 3 && PQntuples(r) == 1; i++)
		if (strcmp(PQgetvalue(r, 0, 0), states[i]) == 0)
			*state_r = states[i];
	PQclear(r);
	if (db_exec(ob->conn, "COMMIT", call_ms(ob), error_r) < 0) {
		drop(ob);
		return -1;
	}
	return 0;
}

void warn_outbox_release(struct warn_outbox *ob)
{
	if (!ob->claimed || ob->conn == NULL)
		return;
	ob->claimed = false;
	db_rollback(ob->conn, call_ms(ob));
	if (PQtransactionStatus(ob->conn) != PQTRANS_IDLE)
		drop(ob);
}

int warn_outbox_next_due(struct warn_outbox *ob, unsigned channels, uint64_t *ms_r,
                         const char **error_r)
{
	if (ensure(ob, error_r) < 0)
		return -1;
	const char *params[2] = { (channels & (1u << WARNING_WEBHOOK)) ? "webhook" : "",
		                  (channels & (1u << WARNING_MAIL)) ? "mail" : "" };
	/* called after claims found nothing due: a delivery due already is being sent by another
	   daemon (or held by a connection of ours that died, until the server ends it), so it is
	   looked at again after WARN_OUTBOX_HELD_MS, not at once */
	PGresult *r = run(ob,
	                  "SELECT ceil(extract(epoch FROM min(next_at) - now()) * 1000)::bigint"
	                  " FROM warning_deliveries"
	                  " WHERE state = 'pending' AND channel IN ($1, $2)",
	                  2, params, error_r);
	if (r == NULL)
		return -1;
	int64_t ms = PQgetisnull(r, 0, 0) ? INT64_MAX : db_get_i64(r, 0, 0);
	PQclear(r);
	*ms_r = ms == INT64_MAX ? UINT64_MAX : ms <= 0 ? WARN_OUTBOX_HELD_MS : (uint64_t)ms;
	return 0;
}

int warn_outbox_prune(struct warn_outbox *ob, unsigned retention_s, uint64_t *n_r,
                      const char **error_r)
{
	if (ensure(ob, error_r) < 0)
		return -1;
	char s[16];
	snprintf(s, sizeof(s), "%u", retention_s);
	const char *params[1] = { s };
	*n_r = 0;
	for (;;) { /* in batches, so that a backlog never makes one statement too long */
		PGresult *r = run(ob,
		                  "WITH gone AS (DELETE FROM warning_events WHERE id IN"
		                  " (SELECT id FROM warning_events"
		                  "  WHERE created_at < now() - $1::integer * interval '1 second'"
		                  "  LIMIT " TEXT(WARN_PRUNE_BATCH) ") RETURNING 1)"
		                                                    " SELECT count(*) FROM gone",
		                  1, params, error_r);
		if (r == NULL)
			return -1;
		uint64_t n = db_get_u64(r, 0, 0);
		PQclear(r);
		*n_r += n;
		if (n < WARN_PRUNE_BATCH)
			return 0;
	}
}

void warn_outbox_disconnect(struct warn_outbox *ob)
{
	drop(ob);
}

void warn_outbox_wait(struct warn_outbox *ob, int wake_fd, unsigned timeout_ms)
{
	struct pollfd p[2] = { { .fd = ob->conn != NULL ? PQsocket(ob->conn) : -1,
		                 .events = POLLIN },
		               { .fd = wake_fd, .events = POLLIN } };
	PGnotify *n;
	while (ob->conn != NULL && (n = PQnotifies(ob->conn)) != NULL) {
		/* queued while a query ran: the caller looks at once */
		PQfreemem(n);
		timeout_ms = 0;
	}
	poll(p, 2, (int)(timeout_ms > 60000 ? 60000 : timeout_ms));
	if (ob->conn == NULL)
		return;
	if (PQconsumeInput(ob->conn) == 0) {
		log_warn("event=warning_connection_lost error=\"%s\"",
		         db_error_text(ob->conn, NULL));
		drop(ob);
		return;
	}
	while ((n = PQnotifies(ob->conn)) != NULL)
		PQfreemem(n);
}
