/*
 * dbpool: see the header. It must never make a caller wait on a dead database for longer than
 * one connect attempt (connect_timeout), never hand out a connection whose statements are not
 * prepared, and never take back into use a connection left inside a transaction or a call.
 */
#include "dbpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"
#include "log.h"
#include "xalloc.h"

#define RECONNECT_INTERVAL_MS 1000
#define BUSY_LOG_INTERVAL_MS  10000 /* "every connection busy" is logged at most this often */

struct slot {
	PGconn *conn;
	bool busy;
	struct timespec last_attempt; /* of a connect that failed; tv_sec 0: none pending */
};

struct dbpool {
	char *conninfo;
	char *appname;
	const struct db_statement *stmts;
	size_t nstmts;
	struct db_limits limits;
	unsigned size;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool warned_down;
	struct timespec busy_logged; /* when a wait for a connection last ran out and was logged */
	struct slot slots[DBPOOL_MAX];
};

static long ms_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

struct dbpool *dbpool_new(const char *conninfo, unsigned size, const char *application_name,
                          const struct db_statement *stmts, size_t nstmts,
                          const struct db_limits *limits)
{
	struct dbpool *p = xcalloc(1, sizeof(*p));
	if (limits != NULL)
		p->limits = *limits;
	else
		p->limits.connect_s = 3;
	p->conninfo = xstrdup(conninfo);
	p->appname = xstrdup(application_name);
	p->stmts = stmts;
	p->nstmts = nstmts;
	p->size = size == 0 ? 1 : size > DBPOOL_MAX ? DBPOOL_MAX : size;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	return p;
}

static void set_down(struct dbpool *p, bool down, const char *error)
{
	pthread_mutex_lock(&p->lock);
	bool was = p->warned_down;
	p->warned_down = down;
	pthread_mutex_unlock(&p->lock);
	if (down && !was)
		log_warn("event=db_down pool=%s error=\"%s\"", p->appname, error);
	if (!down && was)
		log_info("event=db_up pool=%s", p->appname);
}

/* Make the slot's connection live and prepared; 0 or -1. */
static int ensure(struct dbpool *p, struct slot *s)
{
	const char *error;
	if (s->conn != NULL && db_idle_alive(s->conn))
		return 0;
	if (s->conn != NULL) {
		PQfinish(s->conn);
		s->conn = NULL;
	}
	if (s->last_attempt.tv_sec != 0 && ms_since(&s->last_attempt) < RECONNECT_INTERVAL_MS)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &s->last_attempt);
	PGconn *conn = db_open(p->conninfo, p->appname, &p->limits, &error);
	if (conn == NULL || db_prepare_all(conn, p->stmts, p->nstmts, &error) < 0) {
		if (conn != NULL)
			PQfinish(conn);
		set_down(p, true, error);
		return -1;
	}
	set_down(p, false, "");
	s->conn = conn;
	s->last_attempt.tv_sec = 0; /* only failed attempts hold the next one back */
	return 0;
}

unsigned dbpool_timeout_ms(const struct dbpool *p)
{
	return db_call_timeout_ms(&p->limits);
}

PGconn *dbpool_acquire(struct dbpool *p, const char **error_r)
{
	struct slot *s = NULL;
	/* pthread_cond_timedwait's clock */
	struct timespec deadline = deadline_in(CLOCK_REALTIME, dbpool_timeout_ms(p));
	pthread_mutex_lock(&p->lock);
	while (s == NULL) {
		for (unsigned i = 0; i < p->size && s == NULL; i++) {
			if (!p->slots[i].busy) {
				s = &p->slots[i];
				s->busy = true;
			}
		}
		if (s == NULL &&
		    (db_aborting() || pthread_cond_timedwait(&p->cond, &p->lock, &deadline) != 0)) {
			bool log = !db_aborting() &&
			           (p->busy_logged.tv_sec == 0 ||
			            ms_since(&p->busy_logged) >= BUSY_LOG_INTERVAL_MS);
			if (log)
				clock_gettime(CLOCK_MONOTONIC, &p->busy_logged);
			pthread_mutex_unlock(&p->lock);
			if (log)
				log_warn(
				        "event=db_pool_busy pool=%s size=%u note=\"a caller waited "
				        "its whole timeout for a connection (logged at most every "
				        "10 s)\"",
				        p->appname, p->size);
			*error_r = "every database connection is busy";
			return NULL;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (db_aborting()) {
		pthread_mutex_lock(&p->lock);
		s->busy = false;
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->lock);
		*error_r = "shutting down";
		return NULL;
	}
	if (ensure(p, s) < 0) {
		pthread_mutex_lock(&p->lock);
		s->busy = false;
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->lock);
		*error_r = "database unavailable";
		return NULL;
	}
	return s->conn;
}

void dbpool_release(struct dbpool *p, PGconn *conn)
{
	/* a call that timed out, or a transaction its user could not end: the server may still
	   be working on it, so the connection is closed (the server rolls back) and replaced */
	bool broken = PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE;
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < p->size; i++) {
		if (p->slots[i].busy && p->slots[i].conn == conn) {
			if (broken) {
				PQfinish(conn);
				p->slots[i].conn = NULL;
			}
			p->slots[i].busy = false;
			break;
		}
	}
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

PGresult *dbpool_run(struct dbpool *p, bool prepared, const char *command, int nparams,
                     const char *const *params, const char **error_r)
{
	for (int attempt = 0;; attempt++) {
		PGconn *conn = dbpool_acquire(p, error_r);
		if (conn == NULL)
			return NULL;
		PGresult *r =
		        db_run(conn, prepared, command, nparams, params, dbpool_timeout_ms(p));
		bool again = attempt == 0 && db_retryable(conn, r);
		if (r == NULL && !again) {
			*error_r = db_error_text(conn, r);
			if (!db_aborting())
				log_warn("event=db_call_failed pool=%s error=\"%s\"", p->appname,
				         *error_r);
		}
		dbpool_release(p, conn); /* a dead or busy connection is closed */
		if (!again)
			return r;
		PQclear(r);
	}
}

void dbpool_destroy(struct dbpool **pp)
{
	struct dbpool *p = *pp;
	if (p == NULL)
		return;
	for (unsigned i = 0; i < p->size; i++)
		if (p->slots[i].conn != NULL)
			PQfinish(p->slots[i].conn);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->conninfo);
	free(p->appname);
	free(p);
	*pp = NULL;
}
