/*
 * migrate: brings a database to the schema this build expects. Safe to run any number of times
 * and from several hosts at once (advisory lock); never re-applies or half-applies a migration.
 */
#include "migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_LOCK_KEY "7213004581"

static int exec_ok(PGconn *conn, const char *sql, char *err, size_t errsize)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		snprintf(err, errsize, "%s", PQresultErrorMessage(r));
		err[strcspn(err, "\n")] = '\0';
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

static int applied_already(PGconn *conn, int version, int *yes_r, char *err, size_t errsize)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", version);
	const char *params[1] = { v };
	PGresult *r = PQexecParams(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1,
	                           NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errsize, "%s", PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	*yes_r = PQntuples(r) > 0;
	PQclear(r);
	return 0;
}

int migrate_apply(PGconn *conn, unsigned *applied_r, char *err, size_t errsize)
{
	*applied_r = 0;
	if (exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", err, errsize) < 0)
		return -1;
	int ret = -1;
	if (exec_ok(conn,
	            "CREATE TABLE IF NOT EXISTS schema_migrations ("
	            " version integer PRIMARY KEY, name text NOT NULL,"
	            " applied_at timestamptz NOT NULL DEFAULT now())",
	            err, errsize) < 0)
		goto out;
	for (unsigned i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];
		int done;
		if (applied_already(conn, m->version, &done, err, errsize) < 0)
			goto out;
		if (done)
			continue;
		if (exec_ok(conn, "BEGIN", err, errsize) < 0)
			goto out;
		char ver[16];
		snprintf(ver, sizeof(ver), "%d", m->version);
		const char *params[2] = { ver, m->name };
		if (exec_ok(conn, m->sql, err, errsize) < 0) {
			char inner[512];
			snprintf(inner, sizeof(inner), "%s", err);
			snprintf(err, errsize, "migration %s: %s", m->name, inner);
			PQclear(PQexec(conn, "ROLLBACK"));
			goto out;
		}
		PGresult *r = PQexecParams(
		        conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
		        NULL, params, NULL, NULL, 0);
		bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok || exec_ok(conn, "COMMIT", err, errsize) < 0) {
			if (!ok)
				snprintf(err, errsize, "cannot record migration %s", m->name);
			PQclear(PQexec(conn, "ROLLBACK"));
			goto out;
		}
		(*applied_r)++;
	}
	ret = 0;
out:
	PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	return ret;
}
