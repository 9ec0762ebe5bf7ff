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

/*
 * Open a connection with mailquota's defaults (connect_timeout 3 s, application_name) that the
 * conninfo may override. Returns the connection, or NULL with a message in err[errsize].
 */
PGconn *db_connect(const char *conninfo, const char *application_name, char *err, size_t errsize);

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
