/*
 * store_pg: answers store lookups with one prepared query each, over a small pool of libpq
 * connections shared by the policy loop and the HTTP threads. It must never block a caller for
 * long on a dead database: a broken connection is re-opened at most once a second, and in
 * between lookups fail at once so the service can tempfail.
 */
#include "store_pg.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "db.h"
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

struct pg_slot {
	PGconn *conn;
	bool busy;
	struct timespec last_attempt;
};

struct store_pg {
	struct store store; /* first: a struct store * is a struct store_pg * */
	char *conninfo;
	unsigned size;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pg_slot slots[STORE_PG_POOL_MAX];
	bool warned_down;
};

static long ms_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Take a slot; waits while all are busy. */
static struct pg_slot *acquire(struct store_pg *s)
{
	pthread_mutex_lock(&s->lock);
	for (;;) {
		for (unsigned i = 0; i < s->size; i++) {
			if (!s->slots[i].busy) {
				s->slots[i].busy = true;
				pthread_mutex_unlock(&s->lock);
				return &s->slots[i];
			}
		}
		pthread_cond_wait(&s->cond, &s->lock);
	}
}

static void release(struct store_pg *s, struct pg_slot *slot)
{
	pthread_mutex_lock(&s->lock);
	slot->busy = false;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Make sure the slot has a live, prepared connection; 0 or -1 with *error_r. */
static int ensure_conn(struct store_pg *s, struct pg_slot *slot, const char **error_r)
{
	char err[512];
	if (slot->conn != NULL && !db_connection_lost(slot->conn))
		return 0;
	if (slot->conn != NULL) {
		PQfinish(slot->conn);
		slot->conn = NULL;
	}
	if (slot->last_attempt.tv_sec != 0 &&
	    ms_since(&slot->last_attempt) < RECONNECT_INTERVAL_MS) {
		*error_r = "database unavailable";
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &slot->last_attempt);
	PGconn *conn = db_connect(s->conninfo, "mailquotad", err, sizeof(err));
	if (conn == NULL ||
	    db_prepare_all(conn, statements, sizeof(statements) / sizeof(statements[0]), err,
	                   sizeof(err)) < 0) {
		if (conn != NULL)
			PQfinish(conn);
		pthread_mutex_lock(&s->lock);
		bool first = !s->warned_down;
		s->warned_down = true;
		pthread_mutex_unlock(&s->lock);
		if (first)
			log_warn("event=db_down error=\"%s\"", err);
		*error_r = "database unavailable";
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	bool was_down = s->warned_down;
	s->warned_down = false;
	pthread_mutex_unlock(&s->lock);
	if (was_down)
		log_info("event=db_up");
	slot->conn = conn;
	return 0;
}

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
	struct pg_slot *slot = acquire(s);
	int ret = -1;
	if (ensure_conn(s, slot, error_r) < 0)
		goto out;
	const char *params[3] = { addr->domain, addr->local, addr->base };
	PGresult *r = PQexecPrepared(slot->conn, "resolve", 3, params, NULL, NULL, 0);
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
	release(s, slot);
	return ret;
}

static void pg_status(struct store *store, struct store_status *st)
{
	struct store_pg *s = (struct store_pg *)store;
	struct pg_slot *slot = acquire(s);
	const char *why;
	memset(st, 0, sizeof(*st));
	if (ensure_conn(s, slot, &why) == 0) {
		PGresult *r = PQexecPrepared(slot->conn, "ping", 0, NULL, NULL, NULL, 0);
		st->db_up = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
	}
	st->loaded = st->db_up; /* it reads the database directly: data is as fresh as it gets */
	release(s, slot);
}

static void pg_destroy(struct store *store)
{
	struct store_pg *s = (struct store_pg *)store;
	for (unsigned i = 0; i < s->size; i++)
		if (s->slots[i].conn != NULL)
			PQfinish(s->slots[i].conn);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s->conninfo);
	free(s);
}

static const struct store_ops pg_ops = { pg_resolve, pg_status, pg_destroy };

struct store *store_pg_new(const char *conninfo, unsigned pool_size)
{
	struct store_pg *s = xcalloc(1, sizeof(*s));
	s->store.ops = &pg_ops;
	s->conninfo = xstrdup(conninfo);
	s->size = pool_size == 0                  ? 1
	          : pool_size > STORE_PG_POOL_MAX ? STORE_PG_POOL_MAX
	                                          : pool_size;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	return &s->store;
}

void store_destroy(struct store **store)
{
	if (*store == NULL)
		return;
	(*store)->ops->destroy(*store);
	*store = NULL;
}
