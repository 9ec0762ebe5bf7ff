/*
 * db: thin helpers over libpq: connecting with bounded waits, running one command with a
 * deadline, reading columns. No SQL of the schema lives here. It must never let a call wait on
 * the server for longer than its caller's timeout, whatever the server does.
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
#define IDLE_IN_TX_S   60  /* a session left idle inside a transaction is ended by the server */

static atomic_bool aborting;

void db_abort_all(void)
{
	atomic_store(&aborting, true);
}

bool db_aborting(void)
{
	return atomic_load(&aborting);
}

static PGconn *connect_with(const char *conninfo, const char *application_name,
                            const char *connect_timeout, char *err, size_t errsize)
{
	/* defaults first, so a conninfo that names the same keyword overrides them */
	const char *kw[] = { "connect_timeout",
		             "application_name",
		             "keepalives",
		             "keepalives_idle",
		             "keepalives_interval",
		             "keepalives_count",
		             "tcp_user_timeout",
		             "dbname",
		             NULL };
	const char *val[] = { connect_timeout, application_name, "1", "10", "5", "3",
		              "20000",         conninfo,         NULL };
	if (conninfo[0] == '\0')
		kw[7] = NULL;
	PGconn *conn = PQconnectdbParams(kw, val, 1);
	if (conn == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		const char *m = PQerrorMessage(conn);
		size_t len = strcspn(m, "\n");
		snprintf(err, errsize, "%.*s", (int)(len > 300 ? 300 : len), m);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

PGconn *db_connect(const char *conninfo, const char *application_name, char *err, size_t errsize)
{
	return connect_with(conninfo, application_name, "3", err, errsize);
}

unsigned db_call_timeout_ms(const struct db_limits *limits)
{
	unsigned s = limits != NULL && limits->statement_s != 0 ? limits->statement_s : 3600;
	return (s + 1) * 1000;
}

PGconn *db_connect_limited(const char *conninfo, const char *application_name,
                           const struct db_limits *limits, char *err, size_t errsize)
{
	if (limits == NULL)
		return db_connect(conninfo, application_name, err, errsize);
	char ct[16], sql[200];
	snprintf(ct, sizeof(ct), "%u", limits->connect_s != 0 ? limits->connect_s : 3);
	PGconn *conn = connect_with(conninfo, application_name, ct, err, errsize);
	if (conn == NULL)
		return NULL;
	snprintf(sql, sizeof(sql),
	         "SET statement_timeout = %u; SET lock_timeout = %u;"
	         " SET idle_in_transaction_session_timeout = %u",
	         limits->statement_s * 1000, limits->lock_s * 1000,
	         (IDLE_IN_TX_S + limits->statement_s) * 1000);
	PGresult *r = db_run(conn, false, sql, 0, NULL, (limits->connect_s + 1) * 1000);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		const char *m = r != NULL ? PQresultErrorMessage(r) : "timed out";
		snprintf(err, errsize, "setting timeouts: %.*s", (int)strcspn(m, "\n"), m);
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

PGresult *db_run(PGconn *conn, bool prepared, const char *command, int nparams,
                 const char *const *params, unsigned timeout_ms)
{
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

int db_prepare_all(PGconn *conn, const struct db_statement *stmts, size_t n, char *err,
                   size_t errsize)
{
	for (size_t i = 0; i < n; i++) {
		PGresult *r = PQprepare(conn, stmts[i].name, stmts[i].text, stmts[i].nparams, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			snprintf(err, errsize, "prepare %s: %s", stmts[i].name,
			         PQresultErrorMessage(r));
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

struct quota_limit db_get_limit(const PGresult *res, int row, int col)
{
	struct quota_limit l = { false, 0 };
	if (!PQgetisnull(res, row, col)) {
		l.has = true;
		l.value = db_get_u64(res, row, col);
	}
	return l;
}

bool db_get_bool(const PGresult *res, int row, int col)
{
	return PQgetvalue(res, row, col)[0] == 't';
}

bool db_connection_lost(PGconn *conn)
{
	return PQstatus(conn) != CONNECTION_OK;
}
