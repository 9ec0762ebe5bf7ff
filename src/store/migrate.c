/*
 * migrate: brings a database to the schema this build expects. Safe to run any number of times
 * and from several hosts at once (advisory lock); never re-applies or half-applies a migration.
 */
#include "migrate.h"

#include <limits.h>
#include <stdio.h>

#include "db.h"

#define MIGRATE_LOCK_KEY "7213004581"
/* a migration may rebuild an index of a large table: no deadline of our own (about 49 days) */
#define MIGRATE_TIMEOUT_MS UINT_MAX

/* "migration NNN_name: <error>" in this thread's buffer. */
static const char *migration_error(const struct migration *m, const char *error)
{
	static _Thread_local char text[DB_ERROR_MAX + 64];
	snprintf(text, sizeof(text), "migration %.40s: %s", m->name, error);
	return text;
}

/* Whether version is recorded: 0 (no), 1 (yes), or -1 with *error_r. */
static int applied_already(PGconn *conn, int version, const char **error_r)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", version); /* an int fits */
	const char *params[1] = { v };
	PGresult *r = db_run(conn, false, "SELECT 1 FROM schema_migrations WHERE version = $1", 1,
	                     params, MIGRATE_TIMEOUT_MS);
	int ret = db_classify(r) != DB_OK ? -1 : PQntuples(r) > 0 ? 1 : 0;
	if (ret < 0)
		*error_r = db_error_text(conn, r);
	PQclear(r);
	return ret;
}

/* Apply m in its own transaction: 0, or -1 with *error_r (rolled back). */
static int apply_one(PGconn *conn, const struct migration *m, const char **error_r)
{
	const char *error;
	if (db_exec(conn, "BEGIN", MIGRATE_TIMEOUT_MS, &error) < 0) {
		*error_r = migration_error(m, error);
		return -1;
	}
	char ver[16];
	snprintf(ver, sizeof(ver), "%d", m->version); /* an int fits */
	const char *params[2] = { ver, m->name };
	int ret = db_exec(conn, m->sql, MIGRATE_TIMEOUT_MS, &error);
	if (ret == 0) {
		PGresult *r =
		        db_run(conn, false,
		               "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
		               params, MIGRATE_TIMEOUT_MS);
		if (db_classify(r) != DB_OK) {
			error = db_error_text(conn, r);
			ret = -1;
		}
		PQclear(r);
	}
	if (ret == 0)
		ret = db_exec(conn, "COMMIT", MIGRATE_TIMEOUT_MS, &error);
	if (ret < 0) {
		*error_r = migration_error(m, error); /* copied before ROLLBACK's own text */
		db_rollback(conn, MIGRATE_TIMEOUT_MS);
	}
	return ret;
}

int migrate_run(PGconn *conn, unsigned *applied_r, const char **error_r)
{
	*applied_r = 0;
	if (db_exec(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", MIGRATE_TIMEOUT_MS,
	            error_r) < 0)
		return -1;
	int ret = db_exec(conn,
	                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
	                  " version integer PRIMARY KEY, name text NOT NULL,"
	                  " applied_at timestamptz NOT NULL DEFAULT now())",
	                  MIGRATE_TIMEOUT_MS, error_r);
	for (unsigned i = 0; ret == 0 && i < migrations_count; i++) {
		int done = applied_already(conn, migrations[i].version, error_r);
		if (done == 0)
			ret = apply_one(conn, &migrations[i], error_r);
		else
			ret = done < 0 ? -1 : 0;
		if (ret == 0 && done == 0)
			(*applied_r)++;
	}
	/* the error text is this thread's, and a failing unlock would overwrite it: keep it */
	static _Thread_local char kept[DB_ERROR_MAX + 64];
	if (ret < 0) {
		snprintf(kept, sizeof(kept), "%s", *error_r);
		*error_r = kept;
	}
	/* best effort: the lock ends with the session anyway */
	PQclear(db_run(conn, false, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", 0, NULL,
	               MIGRATE_TIMEOUT_MS));
	return ret;
}
