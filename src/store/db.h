/* db: libpq helpers shared by the store backend, the migrations and the admin commands. */
#ifndef MQ_DB_H
#define MQ_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "quota.h"

/* A prepared statement: adding a query means adding a row to a table of these. */
struct db_statement {
	const char *name;
	const char *text;
	int nparams;
};

/* How long a connection and its statements may take; 0 in a member: the default noted. */
struct db_limits {
	unsigned connect_s;   /* libpq connect_timeout (0: 3 s) */
	unsigned statement_s; /* the server's statement_timeout (0: none); calls get 1 s more */
	unsigned lock_s;      /* the server's lock_timeout (0: none) */
};

/*
 * Open a connection with mailquota's defaults, which the conninfo may override: connect_timeout
 * 3 s, application_name, TCP keepalives after 10 s idle (probes every 5 s, 3 lost: dead) and
 * tcp_user_timeout 20 s, so a silent network failure ends a call instead of hanging it. Returns
 * the connection, or NULL with a message in err[errsize].
 */
PGconn *db_connect(const char *conninfo, const char *application_name, char *err, size_t errsize);

/* The same with limits: connect_timeout from limits, then statement_timeout, lock_timeout and
   an idle_in_transaction_session_timeout set on the session. NULL limits: db_connect(). */
PGconn *db_connect_limited(const char *conninfo, const char *application_name,
                           const struct db_limits *limits, char *err, size_t errsize);

/* Milliseconds a call on a connection opened with limits may take before it is abandoned
   (statement_timeout plus 1 s, so the server's own timeout normally answers first). */
unsigned db_call_timeout_ms(const struct db_limits *limits);

/*
 * Run one command and wait at most timeout_ms for its result, however the server behaves
 * (frozen, unreachable, or slow): a prepared statement (prepared: command is its name) or SQL
 * text (with nparams 0, several statements may be given; the first error, else the last result
 * is returned). Returns the result (PQclear it; check PQresultStatus), or NULL when the
 * connection failed, the time ran out or db_abort_all() was called: then the command may still
 * be running and the connection is unusable (PQtransactionStatus is not IDLE; a pool discards
 * it). PQresultStatus(NULL) is PGRES_FATAL_ERROR, so callers may treat NULL like any error.
 */
PGresult *db_run(PGconn *conn, bool prepared, const char *command, int nparams,
                 const char *const *params, unsigned timeout_ms);

/* Make every db_run() in progress or to come return NULL at once (shutdown: the time for
   answers is over). Irreversible; async-signal-unsafe but thread-safe. */
void db_abort_all(void);
bool db_aborting(void);

/* Prepare every statement of a table; 0, or -1 with a message in err. */
int db_prepare_all(PGconn *conn, const struct db_statement *stmts, size_t n, char *err,
                   size_t errsize) __attribute__((warn_unused_result));

/* Column value helpers: a NULL column gives an unset limit / 0; garbage aborts (our bug). */
struct quota_limit db_get_limit(const PGresult *res, int row, int col);
uint64_t db_get_u64(const PGresult *res, int row, int col);
int64_t db_get_i64(const PGresult *res, int row, int col);
bool db_get_bool(const PGresult *res, int row, int col);

/* Whether a failed result means the connection is gone (so it should be reset). */
bool db_connection_lost(PGconn *conn);

#endif
