/*
 * db: thin helpers over libpq: connecting with bounded waits, running one command with a
 * deadline, executing a command that must succeed, classifying failures by SQLSTATE, reading
 * columns. No SQL of the schema lives here. It must never let a call wait on the server for
 * longer than its caller's timeout, whatever the server does, and never hand out an error text
 * that a later call on another thread could overwrite.
 */
#include "db.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"
#include "strnum.h"

#define ABORT_CHECK_MS 100 /* how often a waiting call looks at db_abort_all() */

static atomic_bool aborting;

void db_abort_all(void)
{
	atomic_store(&aborting, true);
}

bool db_aborting(void)
{
	return atomic_load(&aborting);
}

/* This thread's error text: the first line of msg after two prefixes, cut to DB_ERROR_MAX.
   msg must not point into the text itself. */
static const char *error_text(const char *prefix, const char *prefix2, const char *msg)
{
	static _Thread_local char text[DB_ERROR_MAX];
	snprintf(text, sizeof(text), "%s%s%.*s", prefix, prefix2, (int)strcspn(msg, "\n"), msg);
	return text;
}

/* Why a call that gave r (NULL: none) failed, after prefix. */
static const char *failure_text(const char *prefix, PGconn *conn, const PGresult *r)
{
	if (r != NULL) {
		const char *m = PQresultErrorMessage(r);
		return error_text(prefix, "", m[0] != '\0' ? m : "unexpected result");
	}
	if (db_aborting())
		return error_text(prefix, "", "shutting down");
	if (conn != NULL && PQstatus(conn) != CONNECTION_OK)
		return error_text(prefix, "connection lost: ", PQerrorMessage(conn));
	return error_text(prefix, "", "no answer in time");
}

static PGconn *connect_with(const char *conninfo, const char *application_name,
                            const char *connect_timeout, const char **error_r)
{
	/* defaults first, so a conninfo that names the same keyword overrides them.
	   target_session_attrs: every caller writes or LISTENs (neither works on a hot standby),
	   so with a multi-host conninfo (host=a,b) a connection must never settle on a standby
	   listed before the primary: it would answer every write with an error and keep the
	   listener from ever finding the primary after a failover (tests/integration/
	   test_failover.py). With one host it only turns "read-only" errors into a refused
	   connection. */
	const char *kw[] = { "connect_timeout",
		             "application_name",
		             "keepalives",
		             "keepalives_idle",
		             "keepalives_interval",
		             "keepalives_count",
		             "tcp_user_timeout",
		             "target_session_attrs",
		             "dbname",
		             NULL };
	const char *val[] = { connect_timeout, application_name, "1",      "10", "5", "3",
		              "20000",         "read-write",     conninfo, NULL };
	if (conninfo[0] == '\0')
		kw[8] = NULL; /* dbname: the conninfo is expanded there */
	PGconn *conn = PQconnectdbParams(kw, val, 1);
	if (conn == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		*error_r = error_text("", "", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

unsigned db_call_timeout_ms(const struct db_limits *limits)
{
	unsigned s = limits != NULL && limits->statement_s != 0 ? limits->statement_s : 3600;
	return (s + 1) * 1000;
}

PGconn *db_open(const char *conninfo, const char *application_name, const struct db_limits *limits,
                const char **error_r)
{
	char ct[16], sql[200];
	unsigned connect_s = limits != NULL && limits->connect_s != 0 ? limits->connect_s : 3;
	snprintf(ct, sizeof(ct), "%u", connect_s); /* an unsigned fits */
	PGconn *conn = connect_with(conninfo, application_name, ct, error_r);
	if (conn == NULL || limits == NULL)
		return conn;
	/* three unsigned numbers in a 200-byte buffer: cannot be cut */
	snprintf(sql, sizeof(sql),
	         "SET statement_timeout = %u; SET lock_timeout = %u;"
	         " SET idle_in_transaction_session_timeout = %u",
	         limits->statement_s * 1000, limits->lock_s * 1000,
	         (DB_IDLE_IN_TX_S + limits->statement_s) * 1000);
	PGresult *r = db_run(conn, false, sql, 0, NULL, (connect_s + 1) * 1000);
	if (db_classify(r) != DB_OK) {
		*error_r = failure_text("setting timeouts: ", conn, r);
		PQclear(r);
		PQfinish(conn);
		return NULL;
	}
	PQclear(r);
	return conn;
}

/* Wait for the socket (events) until the deadline or an abort; 0 ready, -1 give up. */
static int wait_socket(PGconn *conn, short events, const struct timespec *deadline)
{
	for (;;) {
		long left = deadline_left_ms(CLOCK_MONOTONIC, deadline);
		if (left <= 0 || db_aborting())
			return -1;
		struct pollfd pfd = { .fd = PQsocket(conn), .events = events };
		if (pfd.fd < 0)
			return -1;
		int n = poll(&pfd, 1, (int)(left < ABORT_CHECK_MS ? left : ABORT_CHECK_MS));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* Whether this thread's last db_run() failed before the whole command was handed to the
   kernel: the server cannot have run it (it runs only complete messages, and a connection
   given back in that state is closed). */
static _Thread_local bool last_unsent;

PGresult *db_run(PGconn *conn, bool prepared, const char *command, int nparams,
                 const char *const *params, unsigned timeout_ms)
{
	last_unsent = true;
	if (db_aborting())
		return NULL;
	struct timespec deadline = deadline_in(CLOCK_MONOTONIC, timeout_ms);
	/* nonblocking: a large parameter (an import) is never written into a full socket
	   buffer of a frozen server outside the deadline; PQflush below sends the rest */
	if (PQsetnonblocking(conn, 1) != 0)
		return NULL;
	int sent = prepared ? PQsendQueryPrepared(conn, command, nparams, params, NULL, NULL, 0)
	           : nparams > 0
	                   ? PQsendQueryParams(conn, command, nparams, NULL, params, NULL, NULL, 0)
	                   : PQsendQuery(conn, command);
	if (!sent)
		return NULL;
	int f;
	while ((f = PQflush(conn)) == 1)
		if (wait_socket(conn, POLLOUT | POLLIN, &deadline) < 0 || !PQconsumeInput(conn))
			return NULL;
	if (f < 0)
		return NULL;
	last_unsent = false;
	PGresult *keep = NULL;
	for (;;) {
		while (PQisBusy(conn))
			if (wait_socket(conn, POLLIN, &deadline) < 0 || !PQconsumeInput(conn)) {
				PQclear(keep);
				return NULL;
			}
		PGresult *r = PQgetResult(conn);
		if (r == NULL)
			break;
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
			PQclear(keep); /* the caller runs the copy; nothing follows it yet */
			return r;
		}
		if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
			PQclear(r); /* keep the first error */
		} else {
			PQclear(keep);
			keep = r;
		}
	}
	return keep;
}

int db_exec(PGconn *conn, const char *sql, unsigned timeout_ms, const char **error_r)
{
	PGresult *r = db_run(conn, false, sql, 0, NULL, timeout_ms);
	int ret = db_classify(r) == DB_OK ? 0 : -1;
	if (ret < 0)
		*error_r = db_error_text(conn, r);
	PQclear(r);
	return ret;
}

void db_rollback(PGconn *conn, unsigned timeout_ms)
{
	PGTransactionStatusType t = PQtransactionStatus(conn);
	if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR)
		PQclear(db_run(conn, false, "ROLLBACK", 0, NULL, timeout_ms));
}

/* SQLSTATEs (or their class, with len 2) callers act on; the first match wins. */
static const struct {
	const char *state;
	size_t len;
	enum db_outcome outcome;
} sqlstates[] = {
	{ "22", 2, DB_REFUSED },     { "23", 2, DB_REFUSED },     { "55P03", 5, DB_LOCKED },
	{ "57014", 5, DB_CANCELED }, { "40001", 5, DB_CONFLICT }, { "40P01", 5, DB_CONFLICT },
};

enum db_outcome db_classify(const PGresult *r)
{
	if (r == NULL)
		return DB_NO_ANSWER;
	switch (PQresultStatus(r)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_COPY_IN:
	case PGRES_COPY_OUT:
	case PGRES_COPY_BOTH:
		return DB_OK;
	default:
		break;
	}
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	for (size_t i = 0; state != NULL && i < sizeof(sqlstates) / sizeof(sqlstates[0]); i++)
		if (strncmp(state, sqlstates[i].state, sqlstates[i].len) == 0)
			return sqlstates[i].outcome;
	return DB_FAILED;
}

const char *db_error_text(PGconn *conn, const PGresult *r)
{
	return failure_text("", conn, r);
}

bool db_retryable(PGconn *conn, const PGresult *r)
{
	return db_classify(r) != DB_OK && last_unsent && PQstatus(conn) == CONNECTION_BAD &&
	       !db_aborting();
}

bool db_idle_alive(PGconn *conn)
{
	if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE)
		return false;
	/* an idle pooled connection (nothing LISTENs on it) has nothing to read unless the server
	   said goodbye (57P01 on a restart, 57P02 on a crash) or the link closed; anything else
	   (a rare ParameterStatus after a reload) costs only a reconnect, so any input condemns
	   it, before anything is sent */
	struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
	return pfd.fd >= 0 && poll(&pfd, 1, 0) == 0;
}

int db_prepare_all(PGconn *conn, const struct db_statement *stmts, size_t n, const char **error_r)
{
	for (size_t i = 0; i < n; i++) {
		PGresult *r = PQprepare(conn, stmts[i].name, stmts[i].text, stmts[i].nparams, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			char prefix[80];
			snprintf(prefix, sizeof(prefix), "prepare %.60s: ", stmts[i].name);
			*error_r = failure_text(prefix, conn, r);
			PQclear(r);
			return -1;
		}
		PQclear(r);
	}
	return 0;
}

uint64_t db_get_u64(const PGresult *res, int row, int col)
{
	uint64_t v;
	if (PQgetisnull(res, row, col))
		return 0;
	const char *s = PQgetvalue(res, row, col);
	if (strnum_u64(s, strlen(s), UINT64_MAX, &v) < 0) {
		/* a numeric sum past 2^64 saturates; anything else is a schema bug */
		if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s))
			return UINT64_MAX;
		fprintf(stderr, "db: column %d is not an unsigned number: %s\n", col, s);
		abort();
	}
	return v;
}

int64_t db_get_i64(const PGresult *res, int row, int col)
{
	const char *s = PQgetvalue(res, row, col);
	char *end;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end != '\0') {
		fprintf(stderr, "db: column %d is not a number: %s\n", col, s);
		abort();
	}
	return (int64_t)v;
}

bool db_get_bool(const PGresult *res, int row, int col)
{
	return PQgetvalue(res, row, col)[0] == 't';
}
