/*
 * db: libpq helpers shared by the store: connecting with bounded waits, running one command
 * with a deadline, executing a command that must succeed, classifying a failure by its
 * SQLSTATE, reading columns.
 */
#ifndef MQ_DB_H
#define MQ_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "quota.h"

#define DB_ERROR_MAX 320 /* an error text handed out (the server's first line, cut) */
#define DB_IDLE_IN_TX_S                                                      \
	60 /* a session idle inside a transaction longer (plus the statement \
	      timeout) is ended by the server */

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
 * Error texts: every *error_r below is static text or this thread's copy of a database
 * message, valid until the thread's next call of a function of this module.
 */

/*
 * Open a connection with mailquota's defaults, which the conninfo may override: connect_timeout
 * (limits->connect_s, else 3 s), application_name, TCP keepalives after 10 s idle (probes every
 * 5 s, 3 lost: dead) and tcp_user_timeout 20 s, so a silent network failure ends a call instead
 * of hanging it; target_session_attrs=read-write, so a multi-host conninfo (host=a,b) lands on
 * the writable server wherever it is listed. With limits, the session also gets
 * statement_timeout, lock_timeout and an idle_in_transaction_session_timeout. Returns the
 * connection (PQfinish it), or NULL with *error_r.
 */
PGconn *db_open(const char *conninfo, const char *application_name, const struct db_limits *limits,
                const char **error_r);

/* Milliseconds a call on a connection opened with limits may take before it is abandoned
   (statement_timeout plus 1 s, so the server's own timeout normally answers first; NULL or
   no statement timeout: an hour). */
unsigned db_call_timeout_ms(const struct db_limits *limits);

/*
 * Run one command and wait at most timeout_ms for its result, however the server behaves
 * (frozen, unreachable, or slow): a prepared statement (prepared: command is its name) or SQL
 * text (with nparams 0, several statements may be given; the first error, else the last result
 * is returned). Returns the result (PQclear it; see db_classify()), or NULL when the
 * connection failed, the time ran out or db_abort_all() was called: then the command may still
 * be running and the connection is unusable (PQtransactionStatus is not IDLE; a pool discards
 * it). PQresultStatus(NULL) is PGRES_FATAL_ERROR, so callers may treat NULL like any error.
 * The connection is left nonblocking (libpq's other calls still work on it).
 */
PGresult *db_run(PGconn *conn, bool prepared, const char *command, int nparams,
                 const char *const *params, unsigned timeout_ms);

/*
 * Execute sql (no parameters; several statements may be given) as db_run() does, for a command
 * whose rows do not matter (BEGIN, COMMIT, SET, LISTEN, a probe): 0 when it succeeded, or -1
 * with *error_r from db_error_text(). Returns -1 at once after db_abort_all().
 */
int db_exec(PGconn *conn, const char *sql, unsigned timeout_ms, const char **error_r)
        __attribute__((warn_unused_result));

/*
 * End conn's open transaction with ROLLBACK, best effort: nothing is done when no transaction
 * is open or a call is still running on it (a pool closes such a connection, and the server
 * rolls back).
 */
void db_rollback(PGconn *conn, unsigned timeout_ms);

/* How a call went, from its result's status and SQLSTATE: what callers decide on. */
enum db_outcome {
	DB_OK,        /* a command or query succeeded (or a COPY started) */
	DB_NO_ANSWER, /* no result: the connection failed, the time ran out, or db_abort_all() */
	DB_REFUSED,   /* classes 22 (data exception) and 23 (integrity constraint): the values */
	DB_LOCKED,    /* 55P03: a lock held elsewhere outlasted lock_timeout */
	DB_CANCELED,  /* 57014: statement_timeout (or a cancel request) */
	DB_CONFLICT,  /* 40001, 40P01: serialization failure or deadlock; the transaction may be
	                 run again */
	DB_FAILED,    /* anything else */
};

/* The outcome of r (NULL: DB_NO_ANSWER). */
enum db_outcome db_classify(const PGresult *r);

/*
 * Why a call failed, for a log line or *error_r: the first line of r's error message, or with
 * no result (NULL), why there was none (shutting down, the connection's own error when conn is
 * given and broken, else no answer in time). Thread-local (see above). Never NULL.
 */
const char *db_error_text(PGconn *conn, const PGresult *r);

/*
 * Whether this thread's last db_run() on conn, which gave r, failed on a dead connection before
 * the whole command had been sent: the server cannot have run it, so it can be sent once more
 * on a fresh connection. A command sent whole is never retried, whatever happened next (it may
 * have committed before the link broke): the caller answers "unavailable" and its client
 * retries with whatever makes that safe (idempotency keys, If-Match). The one place that retry
 * is decided; dbpool_run() does it.
 */
bool db_retryable(PGconn *conn, const PGresult *r);

/*
 * Whether an idle connection is still alive, found without sending anything: a server that
 * restarted or crashed has already told the connection so (and closed it), so any input
 * waiting on an idle connection condemns it.
 * A pool calls it before handing a connection out, so a restart costs a reconnect, not a
 * failed or repeated command.
 */
bool db_idle_alive(PGconn *conn);

/* Make every db_run() in progress or to come return NULL at once (shutdown: the time for
   answers is over). Irreversible; async-signal-unsafe but thread-safe. */
void db_abort_all(void);
bool db_aborting(void);

/* Prepare every statement of a table: 0, or -1 with *error_r. */
int db_prepare_all(PGconn *conn, const struct db_statement *stmts, size_t n, const char **error_r)
        __attribute__((warn_unused_result));

/* Column value helpers: a NULL column gives 0; garbage aborts (our bug). */
uint64_t db_get_u64(const PGresult *res, int row, int col);
int64_t db_get_i64(const PGresult *res, int row, int col);
bool db_get_bool(const PGresult *res, int row, int col);

#endif
