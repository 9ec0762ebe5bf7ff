/* migrate: apply the numbered migrations of sql/ (embedded at build time) idempotently. */
#ifndef MQ_MIGRATE_H
#define MQ_MIGRATE_H

#include <libpq-fe.h>

struct migration {
	int version;      /* NNN of sql/NNN_name.sql */
	const char *name; /* NNN_name */
	const char *sql;
};

extern const struct migration migrations[];
extern const unsigned migrations_count;

/*
 * Apply every migration not yet recorded in schema_migrations, each in its own transaction,
 * serialised against concurrent runs by an advisory lock; no statement deadline (a migration
 * may rebuild an index of a large table). *applied_r counts those applied now. Returns 0, or
 * -1 with *error_r in a thread-local buffer valid until this thread's next call of this module
 * or of db (nothing of the failed migration remains).
 */
int migrate_run(PGconn *conn, unsigned *applied_r, const char **error_r)
        __attribute__((warn_unused_result));

#endif
