/*
 * view: a store that answers from memory. One listener thread owns a dedicated PostgreSQL
 * connection: it LISTENs on channel "mailquota", loads a consistent snapshot (COPY in one
 * REPEATABLE READ transaction), then applies each notified change by re-reading the named rows.
 * Readers take a read lock for the microseconds of a lookup; a full reload is built off to the
 * side and swapped in under the write lock, so readers never wait behind a reload. What is held
 * and how an address resolves is vindex's (core); reading rows is view_load's; this file owns
 * the thread, the lock, the connection and the freshness.
 *
 * It must never answer from a half-applied change (a batch is applied under one write lock),
 * never block a lookup on the database, and never serve data older than the last successful
 * load without saying so in its status.
 */
#include "view.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "db.h"
#include "hmap.h"
#include "log.h"
#include "strnum.h"
#include "view_load.h"
#include "vindex.h"
#include "xalloc.h"

#define VIEW_BATCH_MAX 10000 /* more distinct changed rows at once: reload in full */
/* An id list of one kind in a batch: at most VIEW_BATCH_MAX ids of up to 19 digits and a comma */
#define VIEW_IDS_MAX         (VIEW_BATCH_MAX * 20)
#define BACKOFF_MIN_MS       100
#define BACKOFF_MAX_MS       5000
#define CHANNEL              "mailquota"
#define VIEW_CALL_TIMEOUT_MS 30000 /* BEGIN, COMMIT, LISTEN and the probe: past it, reconnect */

struct view {
	struct store store; /* first: a struct store * is a struct view * */
	struct view_options opt;
	char *conninfo;
	pthread_rwlock_t lock; /* guards idx and the items in it */
	struct vindex *idx;    /* NULL until the first load */
	pthread_t thread;
	int wake[2];             /* a pipe that wakes the listener to stop */
	pthread_mutex_t st_lock; /* guards the fields below */
	pthread_cond_t st_cond;
	bool stop;
	bool db_up;
	atomic_llong last_sync_ms; /* CLOCK_MONOTONIC ms: the view was known current then (read by
	                              checks without a lock) */
	uint64_t full_loads, notifications;
	uint64_t connects; /* successful connect_and_load() calls */
	double last_load_seconds;
	PGconn *conn; /* the listener's own; only its thread touches it */
};

/* ---- time ---- */

static struct timespec mono_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t;
}

static double seconds_between(struct timespec a, struct timespec b)
{
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

static long long ms_of(struct timespec t)
{
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- loading and applying changes (listener thread) ---- */

/* Execute a command whose rows do not matter (BEGIN, COMMIT, LISTEN, the probe); a failure is
   logged. Bounded, so a frozen server costs the listener a reconnect there; the count query,
   ROLLBACK and the COPY reads of a load still wait as long as the server takes (the checks
   never wait on any of it). */
static bool listener_exec(PGconn *conn, const char *sql)
{
	const char *why;
	if (db_exec(conn, sql, VIEW_CALL_TIMEOUT_MS, &why) < 0) {
		if (!db_aborting()) /* shutting down: not the database's fault */
			log_warn("event=view_query_failed error=\"%s\"", why);
		return false;
	}
	return true;
}

/* A consistent snapshot of everything, or NULL. */
static struct vindex *load_all(PGconn *conn)
{
	struct vindex *vi = vindex_new();
	if (!listener_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
		goto fail;
	PGresult *r =
	        PQexec(conn, "SELECT (SELECT count(*) FROM domains),"
	                     " (SELECT count(*) FROM mailboxes), (SELECT count(*) FROM aliases)");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		vindex_reserve(vi, db_get_u64(r, 0, 0), db_get_u64(r, 0, 1), db_get_u64(r, 0, 2));
	PQclear(r);
	/* in kind order: domains first, so mailboxes count their usage into them */
	for (int k = 0; k < VINDEX_KINDS; k++) {
		if (view_load_rows(conn, (enum vindex_kind)k, NULL, vi) < 0) {
			PQclear(PQexec(conn, "ROLLBACK"));
			goto fail;
		}
	}
	if (!listener_exec(conn, "COMMIT"))
		goto fail;
	return vi;
fail:
	vindex_free(&vi);
	return NULL;
}

/* Changed ids of one kind, deduplicated. */
struct idset {
	struct hmap map;
	struct buf list; /* "1,2,3", at most VIEW_IDS_MAX bytes */
};

/* The changes notified since the last batch, by kind. */
struct change_batch {
	struct idset ids[VINDEX_KINDS];
	size_t distinct; /* ids in all the sets */
	bool overflow;   /* more than VIEW_BATCH_MAX: the sets are incomplete, reload in full */
};

static bool id_eq(const void *item, const void *key)
{
	return *(const int64_t *)item == *(const int64_t *)key;
}

static void batch_init(struct change_batch *b)
{
	for (int k = 0; k < VINDEX_KINDS; k++) {
		hmap_init(&b->ids[k].map);
		buf_init(&b->ids[k].list, VIEW_IDS_MAX);
	}
	b->distinct = 0;
	b->overflow = false;
}

static void batch_free(struct change_batch *b)
{
	for (int k = 0; k < VINDEX_KINDS; k++) {
		struct idset *s = &b->ids[k];
		for (size_t i = 0; i < s->map.cap; i++)
			free(s->map.slots[i].item);
		hmap_free(&s->map);
		buf_free(&s->list);
	}
}

static void batch_add(struct change_batch *b, enum vindex_kind kind, int64_t id)
{
	struct idset *s = &b->ids[kind];
	uint64_t h = hmap_hash_u64((uint64_t)id, 0);
	if (b->overflow || hmap_get(&s->map, h, &id, id_eq) != NULL)
		return;
	/* the list cannot fill before the batch does; should it, a full reload is as right */
	if (b->distinct == VIEW_BATCH_MAX ||
	    buf_printf(&s->list, "%s%lld", s->list.len ? "," : "", (long long)id) < 0) {
		b->overflow = true;
		return;
	}
	int64_t *p = xmalloc(sizeof(*p));
	*p = id;
	hmap_insert(&s->map, h, p);
	b->distinct++;
}

/*
 * Re-read the rows named in the batch into scratch indexes (outside the lock), then move them
 * into the live one under the write lock, kind by kind in vindex order: an id the database no
 * longer has is a deletion. 0, or -1 when the database failed (the view is unchanged).
 */
static int apply_batch(struct view *v, struct change_batch *b)
{
	struct vindex *scratch[VINDEX_KINDS] = { NULL, NULL, NULL, NULL };
	int ret = -1;
	for (int k = 0; k < VINDEX_KINDS; k++) {
		if (b->ids[k].map.count == 0)
			continue;
		scratch[k] = vindex_new();
		if (view_load_rows(v->conn, (enum vindex_kind)k, b->ids[k].list.data, scratch[k]) <
		    0)
			goto out;
	}
	pthread_rwlock_wrlock(&v->lock);
	for (int k = 0; k < VINDEX_KINDS; k++) {
		struct idset *ids = &b->ids[k];
		for (size_t i = 0; i < ids->map.cap; i++) {
			const int64_t *idp = ids->map.slots[i].item;
			if (idp != NULL &&
			    vindex_move(v->idx, scratch[k], (enum vindex_kind)k, *idp) == 1)
				vindex_del(v->idx, (enum vindex_kind)k, *idp);
		}
	}
	pthread_rwlock_unlock(&v->lock);
	ret = 0;
out:
	/* what remains in a scratch index was not moved: rows not asked for, or a failed batch */
	for (int k = 0; k < VINDEX_KINDS; k++)
		vindex_free(&scratch[k]);
	return ret;
}

/* ---- the listener thread ---- */

static void set_state(struct view *v, bool db_up, bool synced)
{
	pthread_mutex_lock(&v->st_lock);
	v->db_up = db_up;
	if (synced) {
		atomic_store(&v->last_sync_ms, ms_of(mono_now()));
	}
	pthread_cond_broadcast(&v->st_cond);
	pthread_mutex_unlock(&v->st_lock);
}

/* Asked to stop, or the process is shutting down (db_abort_all(): no query can succeed any
   more, and the view serves what it has until it is destroyed). */
static bool stopping(struct view *v)
{
	pthread_mutex_lock(&v->st_lock);
	bool s = v->stop;
	pthread_mutex_unlock(&v->st_lock);
	return s || db_aborting();
}

/* Sleep up to ms, waking early when asked to stop. */
static void nap(struct view *v, int ms)
{
	struct pollfd p = { .fd = v->wake[0], .events = POLLIN };
	poll(&p, 1, ms);
}

/* Load everything and swap it in. 0 or -1 (the old view stays). */
static int full_load(struct view *v, const char *why)
{
	struct timespec t0 = mono_now();
	struct vindex *vi = load_all(v->conn);
	if (vi == NULL)
		return -1;
	double secs = seconds_between(t0, mono_now());
	size_t nd = vindex_count(vi, VINDEX_DOMAIN), nm = vindex_count(vi, VINDEX_MAILBOX),
	       na = vindex_count(vi, VINDEX_ALIAS);
	pthread_rwlock_wrlock(&v->lock);
	struct vindex *old = v->idx;
	v->idx = vi;
	pthread_rwlock_unlock(&v->lock);
	vindex_free(&old); /* no reader can hold it: they all take the lock */
	pthread_mutex_lock(&v->st_lock);
	v->full_loads++;
	v->last_load_seconds = secs;
	pthread_mutex_unlock(&v->st_lock);
	log_info("event=view_loaded reason=%s domains=%zu mailboxes=%zu aliases=%zu seconds=%.3f",
	         why, nd, nm, na, secs);
	return 0;
}

/* Connect, LISTEN, load. 0 or -1. */
static int connect_and_load(struct view *v, const char *why)
{
	const char *err;
	v->conn = db_open(v->conninfo, "mailquotad-view", NULL, &err);
	if (v->conn == NULL) {
		log_debug("event=view_connect_failed error=\"%s\"", err);
		return -1;
	}
	if (!listener_exec(v->conn, "LISTEN " CHANNEL) || full_load(v, why) < 0) {
		PQfinish(v->conn);
		v->conn = NULL;
		return -1;
	}
	return 0;
}

/* Drain pending notifications into a batch; -1 if the connection failed. */
static int drain(struct view *v, struct change_batch *b, size_t *n_r)
{
	if (!PQconsumeInput(v->conn))
		return -1;
	PGnotify *n;
	while ((n = PQnotifies(v->conn)) != NULL) {
		int k = n->extra[0] == 'd'   ? VINDEX_DOMAIN
		        : n->extra[0] == 'm' ? VINDEX_MAILBOX
		        : n->extra[0] == 'a' ? VINDEX_ALIAS
		        : n->extra[0] == 't' ? VINDEX_TOKEN
		                             : -1;
		uint64_t id;
		if (k >= 0 && n->extra[1] == ' ' &&
		    strnum_u64(n->extra + 2, strlen(n->extra + 2), INT64_MAX, &id) == 0) {
			batch_add(b, (enum vindex_kind)k, (int64_t)id);
			(*n_r)++;
		} else {
			log_warn("event=view_bad_notification payload=\"%.40s\"", n->extra);
		}
		PQfreemem(n);
	}
	return 0;
}

static void *listener(void *arg)
{
	struct view *v = arg;
	int backoff = BACKOFF_MIN_MS;
	const char *why = "start";
	struct timespec next_sweep = mono_now(), last_ping = mono_now();
	bool warned = false;
	bool queried = false; /* a query ran since the last poll: libpq may hold notifications */

	while (!stopping(v)) {
		if (v->conn == NULL) {
			if (connect_and_load(v, why) < 0) {
				if (stopping(v))
					break;
				set_state(v, false, false);
				if (!warned)
					log_warn("event=view_db_unavailable note=\"answering from "
					         "the last loaded view; retrying with back-off\"");
				warned = true;
				nap(v, backoff);
				backoff =
				        backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				why = "resync";
				continue;
			}
			if (warned)
				log_info("event=view_db_available");
			warned = false;
			pthread_mutex_lock(&v->st_lock);
			v->connects++;
			pthread_mutex_unlock(&v->st_lock);
			backoff = BACKOFF_MIN_MS;
			set_state(v, true, true);
			next_sweep = mono_now();
			next_sweep.tv_sec += v->opt.sweep_interval;
			last_ping = mono_now();
		}

		/* notifications that arrive while a query of ours runs are read by libpq into its
		   queue, not left on the socket: after a query, look at the queue at once */
		struct pollfd p[2] = { { .fd = PQsocket(v->conn), .events = POLLIN },
			               { .fd = v->wake[0], .events = POLLIN } };
		poll(p, 2, queried ? 0 : 1000);
		queried = false;

		struct change_batch b;
		size_t n = 0;
		batch_init(&b);
		int rc = drain(v, &b, &n);
		if (rc == 0 && n > 0) {
			if (b.overflow)
				rc = full_load(v, "large_batch");
			else
				rc = apply_batch(v, &b);
			queried = true;
			if (rc == 0) {
				pthread_mutex_lock(&v->st_lock);
				v->notifications += n;
				pthread_mutex_unlock(&v->st_lock);
				log_debug("event=view_changes notifications=%zu distinct=%zu%s", n,
				          b.distinct, b.overflow ? "+" : "");
			}
		}
		batch_free(&b);

		struct timespec now = mono_now();
		if (rc == 0 && v->opt.ping_interval > 0 &&
		    seconds_between(last_ping, now) >= v->opt.ping_interval) {
			/* a silent network failure never wakes poll(): probe it */
			rc = listener_exec(v->conn, "SELECT 1") ? 0 : -1;
			last_ping = now;
			queried = true;
		}
		if (rc == 0 && v->opt.sweep_interval > 0 && seconds_between(next_sweep, now) >= 0) {
			rc = full_load(v, "sweep");
			queried = true;
			next_sweep = mono_now();
			next_sweep.tv_sec += v->opt.sweep_interval;
		}
		if (rc < 0 || PQstatus(v->conn) != CONNECTION_OK) {
			if (stopping(v))
				break;
			log_warn("event=view_connection_lost note=\"serving the last loaded view; "
			         "will resync\"");
			PQfinish(v->conn);
			v->conn = NULL;
			set_state(v, false, false);
			why = "resync";
			warned = true;
			continue;
		}
		set_state(v, true, true);
	}
	if (v->conn != NULL) {
		PQfinish(v->conn);
		v->conn = NULL;
	}
	return NULL;
}

/* ---- the store operations ---- */

static int view_resolve(struct store *store, const struct address *addr,
                        struct store_resolution *res_r, const char **error_r)
{
	struct view *v = (struct view *)store;
	pthread_rwlock_rdlock(&v->lock);
	if (v->idx == NULL) {
		pthread_rwlock_unlock(&v->lock);
		*error_r = "quota data not loaded yet";
		return -1;
	}
	vindex_resolve(v->idx, addr, res_r);
	pthread_rwlock_unlock(&v->lock);
	long long age = ms_of(mono_now()) - atomic_load(&v->last_sync_ms);
	res_r->age_ms = age > 0 ? (uint64_t)age : 0;
	return 0;
}

static void view_status(struct store *store, struct store_status *st)
{
	struct view *v = (struct view *)store;
	memset(st, 0, sizeof(*st));
	pthread_rwlock_rdlock(&v->lock);
	if (v->idx != NULL) {
		st->loaded = true;
		st->domains = vindex_count(v->idx, VINDEX_DOMAIN);
		st->mailboxes = vindex_count(v->idx, VINDEX_MAILBOX);
		st->aliases = vindex_count(v->idx, VINDEX_ALIAS);
	}
	pthread_rwlock_unlock(&v->lock);
	pthread_mutex_lock(&v->st_lock);
	st->db_up = v->db_up;
	st->age_seconds =
	        st->loaded ? (double)(ms_of(mono_now()) - atomic_load(&v->last_sync_ms)) / 1000 : 0;
	st->full_loads = v->full_loads;
	st->notifications = v->notifications;
	st->reconnects = v->connects > 0 ? v->connects - 1 : 0;
	st->last_load_seconds = v->last_load_seconds;
	pthread_mutex_unlock(&v->st_lock);
}

static void view_destroy(struct store *store)
{
	struct view *v = (struct view *)store;
	pthread_mutex_lock(&v->st_lock);
	v->stop = true;
	pthread_mutex_unlock(&v->st_lock);
	ssize_t w = write(v->wake[1], "x", 1);
	(void)w;
	pthread_join(v->thread, NULL);
	close(v->wake[0]);
	close(v->wake[1]);
	vindex_free(&v->idx);
	pthread_rwlock_destroy(&v->lock);
	pthread_mutex_destroy(&v->st_lock);
	pthread_cond_destroy(&v->st_cond);
	free(v->conninfo);
	free(v);
}

static int view_token(struct store *store, int64_t id, struct store_token *tok_r)
{
	struct view *v = (struct view *)store;
	pthread_rwlock_rdlock(&v->lock);
	if (v->idx == NULL) {
		pthread_rwlock_unlock(&v->lock);
		return -1;
	}
	int rc = vindex_token(v->idx, id, tok_r);
	pthread_rwlock_unlock(&v->lock);
	return rc;
}

static int view_mailbox(struct store *store, int64_t id, struct store_mailbox *mb_r)
{
	struct view *v = (struct view *)store;
	pthread_rwlock_rdlock(&v->lock);
	int rc = v->idx != NULL ? vindex_mailbox(v->idx, id, mb_r) : -1;
	pthread_rwlock_unlock(&v->lock);
	return rc;
}

static const struct store_ops view_ops = { view_resolve, view_status, view_destroy, view_token,
	                                   view_mailbox };

struct store *view_new(const struct view_options *opt)
{
	struct view *v = xcalloc(1, sizeof(*v));
	v->store.ops = &view_ops;
	v->opt = *opt;
	v->conninfo = xstrdup(opt->conninfo);
	v->opt.conninfo = v->conninfo;
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	/* a stream of readers must not starve the listener's short updates */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&v->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&v->st_lock, NULL);
	pthread_cond_init(&v->st_cond, NULL);
	atomic_store(&v->last_sync_ms, ms_of(mono_now()));
	if (pipe2(v->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("event=pipe_failed error=\"%s\"", strerror(errno));
		abort();
	}
	if (pthread_create(&v->thread, NULL, listener, v) != 0) {
		log_error("event=thread_failed");
		abort();
	}
	return &v->store;
}

int view_wait_loaded(struct store *store, unsigned timeout_ms)
{
	struct view *v = (struct view *)store;
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&v->st_lock);
	int rc = 0;
	while (v->full_loads == 0 && rc == 0)
		rc = pthread_cond_timedwait(&v->st_cond, &v->st_lock, &deadline);
	bool loaded = v->full_loads > 0;
	pthread_mutex_unlock(&v->st_lock);
	return loaded ? 0 : -1;
}
