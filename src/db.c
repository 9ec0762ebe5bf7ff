/*
 * db: thin helpers over libpq. No SQL text lives here: the queries sit in statement tables in
 * store_pg.c, store_admin.c and migrate.c.
 */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strnum.h"

PGconn *db_connect(const char *conninfo, const char *application_name, char *err, size_t errsize)
{
	/* defaults first, so a conninfo that names the same keyword overrides them */
	const char *kw[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *val[] = { "3", application_name, conninfo, NULL };
	if (conninfo[0] == '\0')
		kw[2] = NULL;
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
