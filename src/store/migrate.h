/* migrate: apply the numbered migrations of sql/ (embedded at build time) idempotently. */
#ifndef MQ_MIGRATE_H
#define MQ_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

struct migration {
	int version;      /* NNN of sql/NNN_name.sql */
	const char *name; /* NNN_name */
	const char *sql;
};

extern const struct migration migrations[];
extern const unsigned migrations_count;

/*
 * Apply every migration not yet recorded in schema_migrations, each in its own transaction,
 * serialised against concurrent runs by an advisory lock. *applied_r counts those applied now.
 * Returns 0, or -1 with a message in err[errsize] (nothing of the failed migration remains).
 */
int migrate_apply(PGconn *conn, unsigned *applied_r, char *err, size_t errsize)
        __attribute__((warn_unused_result));

#endif
