/* dbpool: a small pool of libpq connections shared by threads, opened lazily and re-opened
   after failure at most once a second per connection, each with its statements prepared. */
#ifndef MQ_DBPOOL_H
#define MQ_DBPOOL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "db.h"

#define DBPOOL_MAX 64

struct dbpool;

/* Create a pool of up to size connections (1..DBPOOL_MAX), each opened with limits (copied;
   NULL: no statement or lock timeout); stmts stays owned by the caller and must outlive the
   pool. Never fails; connections open on first use. */
struct dbpool *dbpool_new(const char *conninfo, unsigned size, const char *application_name,
                          const struct db_statement *stmts, size_t nstmts,
                          const struct db_limits *limits);

/*
 * Take a live, prepared connection, waiting at most dbpool_timeout_ms() while all are in use.
 * Returns NULL with a static *error_r when it cannot connect now, every connection stayed busy,
 * or db_abort_all() was called; the first connect failure after success is logged once. Give it
 * back with dbpool_release().
 */
PGconn *dbpool_acquire(struct dbpool *pool, const char **error_r);
/* Give a connection back; one not idle (a call timed out, a transaction left open) or broken is
   closed and replaced on a later acquire. */
void dbpool_release(struct dbpool *pool, PGconn *conn);

/*
 * Run one command as db_run() does on a pooled connection, given back before returning. A
 * connection that died while idle is found before use (db_idle_alive()) and replaced; when one
 * dies in the instant between that check and the send, so that the command never left
 * (db_retryable()), it is sent once more on a fresh connection: the one retry. Returns the result
 * (PQclear it; see db_classify(), it may be an error result), or NULL with *error_r (see db.h) when
 * no connection could be had or no answer came in time (logged, unless shutting down).
 */
PGresult *dbpool_run(struct dbpool *pool, bool prepared, const char *command, int nparams,
                     const char *const *params, const char **error_r)
        __attribute__((warn_unused_result));

/* How long one call on this pool's connections may take (pass it to db_run()). */
unsigned dbpool_timeout_ms(const struct dbpool *pool);

/* Close every connection, free, NULL the pointer. No connection may be in use. */
void dbpool_destroy(struct dbpool **pool);

#endif
