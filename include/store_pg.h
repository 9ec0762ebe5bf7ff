/* store_pg: the PostgreSQL backend of the store interface, with a small connection pool. */
#ifndef MQ_STORE_PG_H
#define MQ_STORE_PG_H

#include "store.h"

/*
 * Create a PostgreSQL store using conninfo (libpq string or URI; "" for PG* defaults) and up to
 * pool_size connections, opened lazily and re-opened after failure (at most once a second each).
 * Never fails: an unreachable database makes lookups return -1 until it comes back.
 */
struct store *store_pg_new(const char *conninfo, unsigned pool_size);

#endif
