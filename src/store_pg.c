/*
 * store_pg: answers store lookups with one prepared query each, over a dbpool of libpq
 * connections. The daemon answers from its in-memory view; this backend serves `mailquota check`
 * and `usage` commands, which must show the database's truth. It must never block a caller for
 * long on a dead database: a broken connection is re-opened at most once a second, and in
 * between lookups fail at once so the service can tempfail.
 */
#include "store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db.h"
#include "dbpool.h"
#include "log.h"
#include "xalloc.h"

#define STORE_PG_POOL_MAX     64
#define RECONNECT_INTERVAL_MS 1000

/*
 * The resolution order of store_resolve(): alias for the whole local part (1), mailbox (2), the
 * same for the local part without extension (3, 4), catch-all (5). Only the best priority wins.
 */
static const struct db_statement statements[] = {
	{ "resolve",
	  "WITH d AS (SELECT id FROM domains WHERE name = $1),"
	  " cand AS ("
	  "  SELECT 1 AS prio, 'alias' AS kind, t.mailbox_id FROM aliases a JOIN d ON a.domain_id "
	  "= d.id"
	  "   JOIN alias_targets t ON t.alias_id = a.id WHERE a.local_part = $2"
	  "  UNION ALL SELECT 2, 'mailbox', m.id FROM mailboxes m JOIN d ON m.domain_id = d.id"
	  "   WHERE m.local_part = $2"
	  "  UNION ALL SELECT 3, 'alias', t.mailbox_id FROM aliases a JOIN d ON a.domain_id = d.id"
	  "   JOIN alias_targets t ON t.alias_id = a.id WHERE a.local_part = $3 AND $3 <> $2"
	  "  UNION ALL SELECT 4, 'mailbox', m.id FROM mailboxes m JOIN d ON m.domain_id = d.id"
	  "   WHERE m.local_part = $3 AND $3 <> $2"
	  "  UNION ALL SELECT 5, 'catchall', t.mailbox_id FROM aliases a JOIN d ON a.domain_id = "
	  "d.id"
	  "   JOIN alias_targets t ON t.alias_id = a.id WHERE a.local_part IS NULL),"
	  " best AS (SELECT * FROM cand WHERE prio = (SELECT min(prio) FROM cand))"
	  " SELECT b.kind, m.id, m.local_part || '@' || md.name,"
	  "  coalesce(m.storage_limit_bytes, md.default_storage_limit_bytes),"
	  "  coalesce(m.message_limit, md.default_message_limit),"
	  "  coalesce(m.max_message_size, md.default_max_message_size),"
	  "  md.pool_limit_bytes, md.max_message_size,"
	  "  coalesce(m.grace_percent, md.grace_percent),"
	  "  m.used_bytes, m.used_messages, m.enabled,"
	  "  (SELECT sum(x.used_bytes) FROM mailboxes x WHERE x.domain_id = m.domain_id)::text"
	  " FROM best b JOIN mailboxes m ON m.id = b.mailbox_id JOIN domains md ON md.id = "
	  "m.domain_id"
	  " ORDER BY m.id LIMIT 101",
	  3 },
	{ "ping", "SELECT 1", 0 },
};

struct store_pg {
	struct store store; /* first: a struct store * is a struct store_pg * */
	struct dbpool *pool;
};

static void fill_mailbox(const PGresult *r, int row, struct store_mailbox *m)
{
	m->id = db_get_i64(r, row, 1);
	if (str_copy(m->address, PQgetvalue(r, row, 2), sizeof(m->address)) < 0)
		m->address[sizeof(m->address) - 1] = '\0'; /* schema bounds it; keep what fits */
	m->storage = db_get_limit(r, row, 3);
	m->messages = db_get_limit(r, row, 4);
	m->max_size = db_get_limit(r, row, 5);
	m->domain_pool = db_get_limit(r, row, 6);
	m->domain_max_size = db_get_limit(r, row, 7);
	m->has_grace = !PQgetisnull(r, row, 8);
	m->grace_percent = m->has_grace ? (unsigned)db_get_u64(r, row, 8) : 0;
	m->used_bytes = db_get_u64(r, row, 9);
	m->used_messages = db_get_u64(r, row, 10);
	m->enabled = db_get_bool(r, row, 11);
	m->domain_used_bytes = db_get_u64(r, row, 12);
}

static int pg_resolve(struct store *store, const struct address *addr,
                      struct store_resolution *res_r, const char **error_r)
{
	struct store_pg *s = (struct store_pg *)store;
	int ret = -1;
	PGconn *conn = dbpool_acquire(s->pool, error_r);
	if (conn == NULL)
		return -1;
	const char *params[3] = { addr->domain, addr->local, addr->base };
	PGresult *r = PQexecPrepared(conn, "resolve", 3, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *m = PQresultErrorMessage(r);
		int mlen = (int)strcspn(m, "\n");
		log_warn("event=db_error query=resolve error=\"%.*s\"", mlen > 200 ? 200 : mlen, m);
		*error_r = "database query failed";
		PQclear(r);
		goto out;
	}
	int n = PQntuples(r);
	res_r->truncated = n > STORE_TARGETS_MAX;
	res_r->ntargets = (unsigned)(n > STORE_TARGETS_MAX ? STORE_TARGETS_MAX : n);
	res_r->match = STORE_MATCH_NONE;
	if (n > 0) {
		const char *kind = PQgetvalue(r, 0, 0);
		res_r->match = strcmp(kind, "mailbox") == 0 ? STORE_MATCH_MAILBOX
		               : strcmp(kind, "alias") == 0 ? STORE_MATCH_ALIAS
		                                            : STORE_MATCH_CATCHALL;
	}
	for (unsigned i = 0; i < res_r->ntargets; i++)
		fill_mailbox(r, (int)i, &res_r->targets[i]);
	PQclear(r);
	ret = 0;
out:
	dbpool_release(s->pool, conn);
	return ret;
}

static void pg_status(struct store *store, struct store_status *st)
{
	struct store_pg *s = (struct store_pg *)store;
	const char *why;
	memset(st, 0, sizeof(*st));
	PGconn *conn = dbpool_acquire(s->pool, &why);
	if (conn != NULL) {
		PGresult *r = PQexecPrepared(conn, "ping", 0, NULL, NULL, NULL, 0);
		st->db_up = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
		dbpool_release(s->pool, conn);
	}
	st->loaded = st->db_up; /* it reads the database directly: data is as fresh as it gets */
}

static void pg_destroy(struct store *store)
{
	struct store_pg *s = (struct store_pg *)store;
	dbpool_destroy(&s->pool);
	free(s);
}

static const struct store_ops pg_ops = { pg_resolve, pg_status, pg_destroy, NULL };

struct store *store_pg_new(const char *conninfo, unsigned pool_size)
{
	struct store_pg *s = xcalloc(1, sizeof(*s));
	s->store.ops = &pg_ops;
	s->pool = dbpool_new(conninfo, pool_size, "mailquota", statements,
	                     sizeof(statements) / sizeof(statements[0]));
	return &s->store;
}

void store_destroy(struct store **store)
{
	if (*store == NULL)
		return;
	(*store)->ops->destroy(*store);
	*store = NULL;
}
