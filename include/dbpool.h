/* dbpool: a small pool of libpq connections shared by threads, opened lazily and re-opened
   after failure at most once a second per connection, each with its statements prepared. */
#ifndef MQ_DBPOOL_H
#define MQ_DBPOOL_H

#include <libpq-fe.h>
#include <stddef.h>

#include "db.h"

#define DBPOOL_MAX 64

struct dbpool;

/* Create a pool of up to size connections (1..DBPOOL_MAX); stmts stays owned by the caller and
   must outlive the pool. Never fails; connections open on first use. */
struct dbpool *dbpool_new(const char *conninfo, unsigned size, const char *application_name,
                          const struct db_statement *stmts, size_t nstmts);

/*
 * Take a live, prepared connection, waiting while all are in use. Returns NULL with *error_r
 * ("database unavailable") when it cannot connect now; the first failure after success is
 * logged once. Give it back with dbpool_release().
 */
PGconn *dbpool_acquire(struct dbpool *pool, const char **error_r);
void dbpool_release(struct dbpool *pool, PGconn *conn);

/* Close every connection, free, NULL the pointer. No connection may be in use. */
void dbpool_destroy(struct dbpool **pool);

#endif
