/*
 * admin_stats: the installation's figures for GET /v1/stats, and the periodic fold of the
 * domains' usage deltas (sql/011_domain_usage.sql). Usage reports append what they change to
 * domain_usage_delta rather than update a row per domain (which would make every report of a
 * domain wait for the others); mq_fold_domain_usage() moves those rows into domain_usage, and
 * this module calls it every few seconds from a thread of its own, on a connection of the admin
 * pool, taken for the length of one call. Every read is exact whether or not the fold has run;
 * folding keeps the reads cheap. It must never hold a pooled connection between folds, and never
 * log a lasting failure more than once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "admin_internal.h"
#include "dbpool.h"
#include "deadline.h"
#include "log.h"
#include "xalloc.h"

/* Deltas one call of mq_fold_domain_usage() folds: a short transaction even when a backlog
   built up (a database that was away, a large import). */
#define FOLD_BATCH   "50000"
#define FOLD_BATCH_N 50000
#define FOLD_BATCHES 20 /* calls in one round of the folder thread, then it sleeps */

/*
 * One snapshot (one statement): the domains' figures now (domain_usage_now: folded plus
 * pending), the disabled mailboxes (a partial index, sql/007), the aliases, the deltas not
 * folded yet, and the top domains by bytes. $1: how many top domains.
 */
static const char stats_sql[] =
        "WITH n AS MATERIALIZED (SELECT n.*, d.name FROM domain_usage_now n"
        "  JOIN domains d ON d.id = n.domain_id),"
        " t AS (SELECT count(*) AS domains, count(*) FILTER (WHERE n.over_quota > 0) AS"
        "  domains_over, count(*) FILTER (WHERE n.bytes >= n.pool_limit_bytes) AS pools_full,"
        "  coalesce(sum(n.mailboxes), 0) AS mailboxes, coalesce(sum(n.over_quota), 0) AS over,"
        "  coalesce(sum(n.bytes), 0) AS bytes, coalesce(sum(n.messages), 0) AS messages"
        "  FROM n),"
        " x AS (SELECT count(*) AS disabled FROM mailboxes WHERE NOT enabled),"
        " a AS (SELECT count(*) AS aliases, count(*) FILTER (WHERE local_part IS NULL) AS"
        "  catch_all FROM aliases)"
        " SELECT jsonb_build_object("
        "  'as_of', mq_ts(statement_timestamp()),"
        "  'domains', jsonb_build_object('total', t.domains, 'over_quota', t.domains_over,"
        "   'pool_full', t.pools_full),"
        "  'mailboxes', jsonb_build_object('total', t.mailboxes,"
        "   'enabled', greatest(t.mailboxes - x.disabled, 0), 'disabled', x.disabled,"
        "   'over_quota', t.over),"
        "  'aliases', jsonb_build_object('total', a.aliases, 'catch_all', a.catch_all),"
        "  'usage', jsonb_build_object('bytes', mq_sat(t.bytes), 'messages',"
        "   mq_sat(t.messages)),"
        "  'pending_deltas', (SELECT count(*) FROM domain_usage_delta),"
        "  'top_domains', coalesce((SELECT jsonb_agg(jsonb_build_object('name', p.name,"
        "   'usage', mq_domain_usage_json(p.pool_limit_bytes, p.bytes, p.messages,"
        "   p.mailboxes, p.over_quota)) ORDER BY p.bytes DESC, p.name)"
        "   FROM (SELECT * FROM n ORDER BY n.bytes DESC, n.name LIMIT $1::integer) p),"
        "   '[]'::jsonb))::text"
        " FROM t, x, a";

int admin_stats(struct admin *a, unsigned top, struct buf *out, const char **error_r)
{
	char n[16];
	if (top > ADMIN_STATS_TOP_MAX)
		top = ADMIN_STATS_TOP_MAX;
	snprintf(n, sizeof(n), "%u", top);
	const char *params[1] = { n };
	PGresult *r;
	int rc = admin_run(a, "stats", stats_sql, 1, params, &r, NULL, error_r);
	if (rc != 0) {
		if (rc > 0)
			*error_r = "the database refused the statistics query";
		return -1;
	}
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		*error_r = "the database answered no statistics";
		return -1;
	}
	/* counts and at most ADMIN_STATS_TOP_MAX short items: far below any response limit */
	rc = buf_puts(out, PQgetvalue(r, 0, 0));
	PQclear(r);
	if (rc < 0) {
		*error_r = "the statistics are larger than a response may be";
		return -1;
	}
	return 0;
}

int admin_fold(struct admin *a, unsigned limit, uint64_t *folded_r, const char **error_r)
{
	*folded_r = 0;
	for (unsigned i = 0; i < limit; i++) {
		PGresult *r =
		        dbpool_run(a->pool, false, "SELECT mq_fold_domain_usage(" FOLD_BATCH ")", 0,
		                   NULL, error_r);
		if (r == NULL)
			return -1;
		if (db_classify(r) != DB_OK || PQntuples(r) != 1) {
			*error_r = db_error_text(NULL, r);
			PQclear(r);
			return -1;
		}
		int64_t n = db_get_i64(r, 0, 0);
		PQclear(r);
		if (n <= 0) /* nothing left, or another session folds (-1) */
			break;
		*folded_r += (uint64_t)n;
		if (n < FOLD_BATCH_N)
			break;
	}
	return 0;
}

struct admin_folder {
	struct admin *admin;
	unsigned interval;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
};

static void fold_round(struct admin_folder *f, bool *failing)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t n;
	const char *error;
	if (admin_fold(f->admin, FOLD_BATCHES, &n, &error) < 0) {
		/* the environment: once per outage (the pool already says when it cannot
		   connect), nothing while shutting down */
		if (!*failing && !db_aborting())
			log_warn("event=domain_usage_fold_failed error=\"%s\" note=\"reads stay "
			         "exact; they slow down as deltas pile up\"",
			         error);
		*failing = true;
		return;
	}
	if (*failing)
		log_info("event=domain_usage_fold_resumed");
	*failing = false;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (n > 0)
		log_debug("event=domain_usage_folded deltas=%llu ms=%ld", (unsigned long long)n,
		          (long)(t1.tv_sec - t0.tv_sec) * 1000 +
		                  (t1.tv_nsec - t0.tv_nsec) / 1000000);
}

static void *folder_main(void *arg)
{
	struct admin_folder *f = arg;
	bool failing = false;
	pthread_mutex_lock(&f->lock);
	while (!f->stopping) {
		struct timespec until = deadline_in(CLOCK_REALTIME, f->interval * 1000UL);
		pthread_cond_timedwait(&f->cond, &f->lock, &until);
		if (f->stopping)
			break;
		pthread_mutex_unlock(&f->lock);
		fold_round(f, &failing);
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

struct admin_folder *admin_folder_start(struct admin *a, unsigned interval)
{
	if (interval == 0)
		return NULL;
	struct admin_folder *f = xcalloc(1, sizeof(*f));
	f->admin = a;
	f->interval = interval;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	if (pthread_create(&f->thread, NULL, folder_main, f) != 0) {
		/* reads stay exact without it: a warning, not a reason to stop */
		log_warn("event=domain_usage_fold_failed error=\"cannot start its thread\"");
		pthread_cond_destroy(&f->cond);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return NULL;
	}
	return f;
}

void admin_folder_stop(struct admin_folder **fp)
{
	struct admin_folder *f = *fp;
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = true;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
	*fp = NULL;
}
