/*
 * view: a store that answers from memory. One listener thread owns a dedicated PostgreSQL
 * connection: it LISTENs on channel "mailquota", loads a consistent snapshot (COPY in one
 * REPEATABLE READ transaction), then applies each notified change by re-reading the named rows.
 * Readers take a read lock for the microseconds of a lookup; a full reload is built off to the
 * side and swapped in under the write lock, so readers never wait behind a reload.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "copytext.h"
#include "db.h"
#include "hmap.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

#define UNSET          UINT64_MAX /* an unset limit; database values are <= INT64_MAX */
#define VIEW_BATCH_MAX 10000      /* more distinct changed rows at once: reload in full */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CHANNEL        "mailquota"

struct vdomain {
	int64_t id;
	uint64_t pool, def_storage, def_messages, def_max_size, max_size;
	int32_t grace;     /* -1: unset */
	uint64_t used_sum; /* sum of its mailboxes' used_bytes, kept by put/del_mailbox */
	char name[];
};

struct vmailbox {
	int64_t id;
	int64_t domain_id;
	uint64_t storage, messages, max_size, used_bytes, used_messages;
	int32_t grace;
	bool enabled;
	char local[];
};

struct valias {
	int64_t id;
	int64_t domain_id;
	bool catchall;
	uint32_t ntargets;
	int64_t *targets; /* mailbox ids, ascending */
	char local[];
};

/* An API token that may be used: revoked ones are not loaded. */
struct vtoken {
	int64_t id;
	int64_t mailbox_id; /* scope self: the one mailbox; else 0 */
	enum token_scope scope;
	int64_t expires; /* Unix time; 0: never */
	uint8_t hash[TOKEN_HASH_LEN];
};

struct snap {
	uint64_t seed;
	struct hmap dom_by_name, dom_by_id, mb_by_key, mb_by_id, al_by_key, al_by_id, tok_by_id;
};

/* Lookup keys. */
struct name_key {
	const char *s;
	size_t len;
};

struct local_key {
	int64_t domain_id;
	const char *local; /* NULL: the catch-all */
	size_t len;
};

struct view {
	struct store store; /* first: a struct store * is a struct view * */
	struct view_options opt;
	char *conninfo;
	pthread_rwlock_t lock; /* guards snap and the items in it */
	struct snap *snap;     /* NULL until the first load */
	pthread_t thread;
	int wake[2];             /* a pipe that wakes the listener to stop */
	pthread_mutex_t st_lock; /* guards the fields below */
	pthread_cond_t st_cond;
	bool stop;
	bool db_up;
	atomic_llong last_sync_ms; /* CLOCK_MONOTONIC ms: the view was known current then (read by
	                              checks without a lock) */
	uint64_t full_loads, notifications;
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

/* ---- the snapshot: indexes and item updates (callers hold the write lock, or own the snap) */

static bool dom_name_eq(const void *item, const void *key)
{
	const struct vdomain *d = item;
	const struct name_key *k = key;
	return strlen(d->name) == k->len && memcmp(d->name, k->s, k->len) == 0;
}

static bool dom_id_eq(const void *item, const void *key)
{
	return ((const struct vdomain *)item)->id == *(const int64_t *)key;
}

static bool mb_key_eq(const void *item, const void *key)
{
	const struct vmailbox *m = item;
	const struct local_key *k = key;
	return m->domain_id == k->domain_id && strlen(m->local) == k->len &&
	       memcmp(m->local, k->local, k->len) == 0;
}

static bool mb_id_eq(const void *item, const void *key)
{
	return ((const struct vmailbox *)item)->id == *(const int64_t *)key;
}

static bool al_key_eq(const void *item, const void *key)
{
	const struct valias *a = item;
	const struct local_key *k = key;
	if (a->domain_id != k->domain_id)
		return false;
	if (k->local == NULL)
		return a->catchall;
	return !a->catchall && strlen(a->local) == k->len &&
	       memcmp(a->local, k->local, k->len) == 0;
}

static bool al_id_eq(const void *item, const void *key)
{
	return ((const struct valias *)item)->id == *(const int64_t *)key;
}

static bool tok_id_eq(const void *item, const void *key)
{
	return ((const struct vtoken *)item)->id == *(const int64_t *)key;
}

static uint64_t h_name(const struct snap *s, const char *p, size_t len)
{
	return hmap_hash_bytes(p, len, s->seed);
}

static uint64_t h_id(const struct snap *s, int64_t id)
{
	return hmap_hash_u64((uint64_t)id, s->seed);
}

static uint64_t h_local(const struct snap *s, int64_t domain_id, const char *local, size_t len)
{
	uint64_t h = hmap_hash_u64((uint64_t)domain_id, s->seed);
	return local == NULL ? h : h ^ hmap_hash_bytes(local, len, s->seed);
}

static struct snap *snap_new(void)
{
	struct snap *s = xcalloc(1, sizeof(*s));
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	s->seed = hmap_hash_u64(seed, (uint64_t)(uintptr_t)s);
	hmap_init(&s->dom_by_name);
	hmap_init(&s->dom_by_id);
	hmap_init(&s->mb_by_key);
	hmap_init(&s->mb_by_id);
	hmap_init(&s->al_by_key);
	hmap_init(&s->al_by_id);
	hmap_init(&s->tok_by_id);
	return s;
}

static void snap_free(struct snap **sp)
{
	struct snap *s = *sp;
	if (s == NULL)
		return;
	/* the id indexes hold every item exactly once */
	for (size_t i = 0; i < s->dom_by_id.cap; i++)
		free(s->dom_by_id.slots[i].item);
	for (size_t i = 0; i < s->mb_by_id.cap; i++)
		free(s->mb_by_id.slots[i].item);
	for (size_t i = 0; i < s->al_by_id.cap; i++) {
		struct valias *a = s->al_by_id.slots[i].item;
		if (a != NULL)
			free(a->targets);
		free(a);
	}
	hmap_free(&s->dom_by_name);
	hmap_free(&s->dom_by_id);
	hmap_free(&s->mb_by_key);
	hmap_free(&s->mb_by_id);
	hmap_free(&s->al_by_key);
	hmap_free(&s->al_by_id);
	for (size_t i = 0; i < s->tok_by_id.cap; i++)
		free(s->tok_by_id.slots[i].item);
	hmap_free(&s->tok_by_id);
	free(s);
	*sp = NULL;
}

static struct vdomain *dom_by_id(struct snap *s, int64_t id)
{
	return hmap_get(&s->dom_by_id, h_id(s, id), &id, dom_id_eq);
}

static void del_domain(struct snap *s, int64_t id)
{
	struct vdomain *d = hmap_remove(&s->dom_by_id, h_id(s, id), &id, dom_id_eq);
	if (d == NULL)
		return;
	struct name_key k = { d->name, strlen(d->name) };
	hmap_remove(&s->dom_by_name, h_name(s, k.s, k.len), &k, dom_name_eq);
	free(d);
}

/* Insert or replace; a replacement keeps the usage sum its mailboxes built up. */
static void put_domain(struct snap *s, struct vdomain *d)
{
	struct vdomain *old = dom_by_id(s, d->id);
	if (old != NULL) {
		d->used_sum = old->used_sum;
		del_domain(s, d->id);
	}
	hmap_insert(&s->dom_by_id, h_id(s, d->id), d);
	hmap_insert(&s->dom_by_name, h_name(s, d->name, strlen(d->name)), d);
}

static void add_usage(struct snap *s, int64_t domain_id, uint64_t bytes, bool add)
{
	struct vdomain *d = dom_by_id(s, domain_id);
	if (d == NULL)
		return; /* an orphan until its domain arrives; the next sweep recounts */
	if (add)
		d->used_sum = bytes > UINT64_MAX - d->used_sum ? UINT64_MAX : d->used_sum + bytes;
	else
		d->used_sum = bytes > d->used_sum ? 0 : d->used_sum - bytes;
}

static void del_mailbox(struct snap *s, int64_t id)
{
	struct vmailbox *m = hmap_remove(&s->mb_by_id, h_id(s, id), &id, mb_id_eq);
	if (m == NULL)
		return;
	struct local_key k = { m->domain_id, m->local, strlen(m->local) };
	hmap_remove(&s->mb_by_key, h_local(s, k.domain_id, k.local, k.len), &k, mb_key_eq);
	add_usage(s, m->domain_id, m->used_bytes, false);
	free(m);
}

static void put_mailbox(struct snap *s, struct vmailbox *m)
{
	del_mailbox(s, m->id);
	hmap_insert(&s->mb_by_id, h_id(s, m->id), m);
	hmap_insert(&s->mb_by_key, h_local(s, m->domain_id, m->local, strlen(m->local)), m);
	add_usage(s, m->domain_id, m->used_bytes, true);
}

static void del_alias(struct snap *s, int64_t id)
{
	struct valias *a = hmap_remove(&s->al_by_id, h_id(s, id), &id, al_id_eq);
	if (a == NULL)
		return;
	struct local_key k = { a->domain_id, a->catchall ? NULL : a->local, strlen(a->local) };
	hmap_remove(&s->al_by_key, h_local(s, k.domain_id, k.local, k.len), &k, al_key_eq);
	free(a->targets);
	free(a);
}

static void put_alias(struct snap *s, struct valias *a)
{
	del_alias(s, a->id);
	hmap_insert(&s->al_by_id, h_id(s, a->id), a);
	hmap_insert(&s->al_by_key,
	            h_local(s, a->domain_id, a->catchall ? NULL : a->local, strlen(a->local)), a);
}

static void del_token(struct snap *s, int64_t id)
{
	free(hmap_remove(&s->tok_by_id, h_id(s, id), &id, tok_id_eq));
}

static void put_token(struct snap *s, struct vtoken *t)
{
	del_token(s, t->id);
	hmap_insert(&s->tok_by_id, h_id(s, t->id), t);
}

/* ---- lookups (callers hold the read lock) ---- */

static struct quota_limit limit_of(uint64_t v)
{
	struct quota_limit l = { v != UNSET, v == UNSET ? 0 : v };
	return l;
}

static void fill_target(const struct snap *s, const struct vmailbox *m, const struct vdomain *d,
                        struct store_mailbox *out)
{
	(void)s;
	out->id = m->id;
	/* local@domain; the schema bounds both parts, and a longer pair is cut, never overrun */
	size_t ll = strlen(m->local), dl = strlen(d->name), cap = sizeof(out->address) - 1;
	if (ll > cap)
		ll = cap;
	memcpy(out->address, m->local, ll);
	size_t n = ll;
	if (n < cap)
		out->address[n++] = '@';
	if (dl > cap - n)
		dl = cap - n;
	memcpy(out->address + n, d->name, dl);
	out->address[n + dl] = '\0';
	out->storage = quota_limit_inherit(limit_of(m->storage), limit_of(d->def_storage));
	out->messages = quota_limit_inherit(limit_of(m->messages), limit_of(d->def_messages));
	out->max_size = quota_limit_inherit(limit_of(m->max_size), limit_of(d->def_max_size));
	out->domain_pool = limit_of(d->pool);
	out->domain_max_size = limit_of(d->max_size);
	int32_t g = m->grace >= 0 ? m->grace : d->grace;
	out->has_grace = g >= 0;
	out->grace_percent = g >= 0 ? (unsigned)g : 0;
	out->used_bytes = m->used_bytes;
	out->used_messages = m->used_messages;
	out->domain_used_bytes = d->used_sum;
	out->enabled = m->enabled;
}

/* Add mailbox id to the resolution if it and its domain are known. */
static void add_target(struct snap *s, int64_t id, struct store_resolution *res)
{
	struct vmailbox *m = hmap_get(&s->mb_by_id, h_id(s, id), &id, mb_id_eq);
	if (m == NULL)
		return;
	struct vdomain *d = dom_by_id(s, m->domain_id);
	if (d == NULL)
		return;
	if (res->ntargets == STORE_TARGETS_MAX) {
		res->truncated = true;
		return;
	}
	fill_target(s, m, d, &res->targets[res->ntargets++]);
}

static bool match_local(struct snap *s, const struct vdomain *d, const char *local,
                        struct store_resolution *res)
{
	struct local_key k = { d->id, local, local == NULL ? 0 : strlen(local) };
	uint64_t h = h_local(s, d->id, local, k.len);
	struct valias *a = hmap_get(&s->al_by_key, h, &k, al_key_eq);
	if (a != NULL && a->ntargets > 0) {
		res->match = local == NULL ? STORE_MATCH_CATCHALL : STORE_MATCH_ALIAS;
		for (uint32_t i = 0; i < a->ntargets; i++)
			add_target(s, a->targets[i], res);
		return true;
	}
	if (local == NULL)
		return false;
	struct vmailbox *m = hmap_get(&s->mb_by_key, h, &k, mb_key_eq);
	if (m != NULL) {
		res->match = STORE_MATCH_MAILBOX;
		add_target(s, m->id, res);
		return true;
	}
	return false;
}

/* Same order as the SQL backend: alias, mailbox, the same without extension, catch-all. An
   alias without targets matches nothing, as in SQL. */
static void snap_resolve(struct snap *s, const struct address *addr, struct store_resolution *res)
{
	res->match = STORE_MATCH_NONE;
	res->ntargets = 0;
	res->truncated = false;
	struct name_key dk = { addr->domain, strlen(addr->domain) };
	struct vdomain *d = hmap_get(&s->dom_by_name, h_name(s, dk.s, dk.len), &dk, dom_name_eq);
	if (d == NULL)
		return;
	if (match_local(s, d, addr->local, res))
		return;
	if (strcmp(addr->base, addr->local) != 0 && match_local(s, d, addr->base, res))
		return;
	match_local(s, d, NULL, res);
}

/* ---- reading rows: COPY ... TO STDOUT in text format ---- */

typedef int (*row_fn)(void *ctx, struct copytext_row *r);

/* Run "COPY (query) TO STDOUT" and call fn per row. 0, or -1 with a logged reason. */
static int copy_rows(PGconn *conn, const char *query, row_fn fn, void *ctx)
{
	struct buf sql;
	buf_init(&sql, 1 << 24);
	if (buf_printf(&sql, "COPY (%s) TO STDOUT", query) < 0)
		abort(); /* our queries are far below 16 MiB */
	PGresult *r = PQexec(conn, sql.data);
	buf_free(&sql);
	if (PQresultStatus(r) != PGRES_COPY_OUT) {
		const char *m = PQresultErrorMessage(r);
		log_warn("event=view_query_failed error=\"%.*s\"", (int)strcspn(m, "\n"), m);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	int ret = 0;
	for (;;) {
		char *line;
		int len = PQgetCopyData(conn, &line, 0);
		if (len == -1)
			break; /* done */
		if (len < 0) {
			ret = -1;
			break;
		}
		struct copytext_row row;
		if (ret == 0 &&
		    (copytext_parse_line(line, (size_t)len, &row) < 0 || fn(ctx, &row) < 0)) {
			log_error(
			        "event=view_bad_row note=\"a row did not parse; the view keeps its "
			        "previous state\"");
			ret = -1; /* keep reading to the end so the connection stays usable */
		}
		PQfreemem(line);
	}
	r = PQgetResult(conn);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		ret = -1;
	PQclear(r);
	while ((r = PQgetResult(conn)) != NULL)
		PQclear(r);
	return ret;
}

static int get_u64(const struct copytext_row *r, int i, uint64_t *out)
{
	if (r->null[i]) {
		*out = UNSET;
		return 0;
	}
	return strnum_u64(r->f[i], strlen(r->f[i]), INT64_MAX, out);
}

static int get_id(const struct copytext_row *r, int i, int64_t *out)
{
	uint64_t v;
	if (r->null[i] || strnum_u64(r->f[i], strlen(r->f[i]), INT64_MAX, &v) < 0)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static int get_grace(const struct copytext_row *r, int i, int32_t *out)
{
	uint64_t v;
	if (r->null[i]) {
		*out = -1;
		return 0;
	}
	if (strnum_u64(r->f[i], strlen(r->f[i]), QUOTA_GRACE_PERCENT_MAX, &v) < 0)
		return -1;
	*out = (int32_t)v;
	return 0;
}

#define DOMAIN_COLUMNS                                                                    \
	"id, name, pool_limit_bytes, default_storage_limit_bytes, default_message_limit," \
	" default_max_message_size, max_message_size, grace_percent FROM domains"
#define MAILBOX_COLUMNS                                                                    \
	"id, domain_id, local_part, storage_limit_bytes, message_limit, max_message_size," \
	" grace_percent, used_bytes, used_messages, enabled FROM mailboxes"
#define ALIAS_COLUMNS                                                                          \
	"a.id, a.domain_id, a.local_part, (SELECT coalesce(string_agg(t.mailbox_id::text, ','" \
	" ORDER BY t.mailbox_id), '') FROM alias_targets t WHERE t.alias_id = a.id)"           \
	" FROM aliases a"
#define TOKEN_COLUMNS                                                          \
	"id, scope, coalesce(mailbox_id, 0), encode(secret_hash, 'hex'),"      \
	" coalesce(extract(epoch FROM expires_at)::bigint, 0) FROM api_tokens" \
	" WHERE revoked_at IS NULL"

/* What a row callback does with what it parsed. */
struct apply_ctx {
	struct snap *snap;
	struct hmap *seen; /* ids present in the result, for fetch-by-id deletions; may be NULL */
};

static void seen_add(struct apply_ctx *c, int64_t id)
{
	if (c->seen == NULL)
		return;
	int64_t *p = xmalloc(sizeof(*p));
	*p = id;
	hmap_insert(c->seen, hmap_hash_u64((uint64_t)id, 0), p);
}

static int domain_row(void *ctx, struct copytext_row *r)
{
	struct apply_ctx *c = ctx;
	if (r->n != 8)
		return -1;
	size_t nlen = strlen(r->f[1]);
	struct vdomain *d = xmalloc(sizeof(*d) + nlen + 1);
	memcpy(d->name, r->f[1], nlen + 1);
	d->used_sum = 0;
	if (get_id(r, 0, &d->id) < 0 || get_u64(r, 2, &d->pool) < 0 ||
	    get_u64(r, 3, &d->def_storage) < 0 || get_u64(r, 4, &d->def_messages) < 0 ||
	    get_u64(r, 5, &d->def_max_size) < 0 || get_u64(r, 6, &d->max_size) < 0 ||
	    get_grace(r, 7, &d->grace) < 0) {
		free(d);
		return -1;
	}
	seen_add(c, d->id);
	put_domain(c->snap, d);
	return 0;
}

static int mailbox_row(void *ctx, struct copytext_row *r)
{
	struct apply_ctx *c = ctx;
	if (r->n != 10)
		return -1;
	size_t llen = strlen(r->f[2]);
	struct vmailbox *m = xmalloc(sizeof(*m) + llen + 1);
	memcpy(m->local, r->f[2], llen + 1);
	if (get_id(r, 0, &m->id) < 0 || get_id(r, 1, &m->domain_id) < 0 ||
	    get_u64(r, 3, &m->storage) < 0 || get_u64(r, 4, &m->messages) < 0 ||
	    get_u64(r, 5, &m->max_size) < 0 || get_grace(r, 6, &m->grace) < 0 ||
	    get_u64(r, 7, &m->used_bytes) < 0 || get_u64(r, 8, &m->used_messages) < 0 ||
	    m->used_bytes == UNSET || m->used_messages == UNSET || r->null[9]) {
		free(m);
		return -1;
	}
	m->enabled = r->f[9][0] == 't';
	seen_add(c, m->id);
	put_mailbox(c->snap, m);
	return 0;
}

static int alias_row(void *ctx, struct copytext_row *r)
{
	struct apply_ctx *c = ctx;
	if (r->n != 4)
		return -1;
	const char *local = r->null[2] ? "" : r->f[2];
	size_t llen = strlen(local);
	struct valias *a = xcalloc(1, sizeof(*a) + llen + 1);
	memcpy(a->local, local, llen + 1);
	a->catchall = r->null[2];
	if (get_id(r, 0, &a->id) < 0 || get_id(r, 1, &a->domain_id) < 0) {
		free(a);
		return -1;
	}
	/* "12,15,40": already in ascending order */
	const char *p = r->f[3];
	size_t n = p[0] == '\0' ? 0 : 1;
	for (const char *q = p; *q; q++)
		n += *q == ',';
	a->targets = xcalloc(n == 0 ? 1 : n, sizeof(*a->targets));
	for (size_t i = 0; i < n; i++) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		uint64_t v;
		if (strnum_u64(p, len, INT64_MAX, &v) < 0) {
			free(a->targets);
			free(a);
			return -1;
		}
		a->targets[i] = (int64_t)v;
		p += len + (comma ? 1 : 0);
	}
	a->ntargets = (uint32_t)n;
	seen_add(c, a->id);
	put_alias(c->snap, a);
	return 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int token_row(void *ctx, struct copytext_row *r)
{
	struct apply_ctx *c = ctx;
	if (r->n != 5)
		return -1;
	struct vtoken *t = xcalloc(1, sizeof(*t));
	uint64_t exp;
	if (get_id(r, 0, &t->id) < 0 || r->null[1] || token_scope_parse(r->f[1], &t->scope) < 0 ||
	    r->null[2] || r->null[3] || strlen(r->f[3]) != 2 * TOKEN_HASH_LEN ||
	    get_u64(r, 4, &exp) < 0 || exp > INT64_MAX) {
		free(t);
		return -1;
	}
	uint64_t mb;
	if (strnum_u64(r->f[2], strlen(r->f[2]), INT64_MAX, &mb) < 0) {
		free(t);
		return -1;
	}
	t->mailbox_id = (int64_t)mb;
	t->expires = (int64_t)exp;
	for (size_t i = 0; i < TOKEN_HASH_LEN; i++) {
		int hi = hexval(r->f[3][2 * i]), lo = hexval(r->f[3][2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(t);
			return -1;
		}
		t->hash[i] = (uint8_t)(hi << 4 | lo);
	}
	seen_add(c, t->id);
	put_token(c->snap, t);
	return 0;
}

/* ---- loading and applying changes (listener thread) ---- */

static bool exec_ok(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *m = PQresultErrorMessage(r);
		log_warn("event=view_query_failed error=\"%.*s\"", (int)strcspn(m, "\n"), m);
		PQclear(r);
		return false;
	}
	PQclear(r);
	return true;
}

/* A consistent snapshot of everything, or NULL. */
static struct snap *load_all(PGconn *conn)
{
	struct snap *s = snap_new();
	struct apply_ctx c = { s, NULL };
	if (!exec_ok(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
		goto fail;
	PGresult *r =
	        PQexec(conn, "SELECT (SELECT count(*) FROM domains),"
	                     " (SELECT count(*) FROM mailboxes), (SELECT count(*) FROM aliases)");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		hmap_reserve(&s->dom_by_id, db_get_u64(r, 0, 0));
		hmap_reserve(&s->dom_by_name, db_get_u64(r, 0, 0));
		hmap_reserve(&s->mb_by_id, db_get_u64(r, 0, 1));
		hmap_reserve(&s->mb_by_key, db_get_u64(r, 0, 1));
		hmap_reserve(&s->al_by_id, db_get_u64(r, 0, 2));
		hmap_reserve(&s->al_by_key, db_get_u64(r, 0, 2));
	}
	PQclear(r);
	if (copy_rows(conn, "SELECT " DOMAIN_COLUMNS, domain_row, &c) < 0 ||
	    copy_rows(conn, "SELECT " MAILBOX_COLUMNS, mailbox_row, &c) < 0 ||
	    copy_rows(conn, "SELECT " ALIAS_COLUMNS, alias_row, &c) < 0 ||
	    copy_rows(conn, "SELECT " TOKEN_COLUMNS, token_row, &c) < 0) {
		PQclear(PQexec(conn, "ROLLBACK"));
		goto fail;
	}
	if (!exec_ok(conn, "COMMIT"))
		goto fail;
	return s;
fail:
	snap_free(&s);
	return NULL;
}

/* Changed ids of one kind, deduplicated. */
struct idset {
	struct hmap map;
	struct buf list; /* "1,2,3" */
};

static bool id_eq(const void *item, const void *key)
{
	return *(const int64_t *)item == *(const int64_t *)key;
}

static void idset_init(struct idset *s)
{
	hmap_init(&s->map);
	buf_init(&s->list, SIZE_MAX / 2);
}

static void idset_free(struct idset *s)
{
	for (size_t i = 0; i < s->map.cap; i++)
		free(s->map.slots[i].item);
	hmap_free(&s->map);
	buf_free(&s->list);
}

static void idset_add(struct idset *s, int64_t id)
{
	uint64_t h = hmap_hash_u64((uint64_t)id, 0);
	if (hmap_get(&s->map, h, &id, id_eq) != NULL)
		return;
	int64_t *p = xmalloc(sizeof(*p));
	*p = id;
	hmap_insert(&s->map, h, p);
	if (buf_printf(&s->list, "%s%lld", s->list.len ? "," : "", (long long)id) < 0)
		abort();
}

typedef void (*del_fn)(struct snap *s, int64_t id);

/*
 * Re-read the rows named in ids into the live snapshot: rows found replace the view's, ids not
 * found are deleted. The reads happen before the write lock; the apply happens under it.
 */
#define KINDS 4

struct change_batch {
	struct idset ids[KINDS]; /* domains, mailboxes, aliases, tokens */
};

/* followed by the id list and "}'::bigint[])"; the ids are numbers we formatted ourselves */
static const char *const batch_query[KINDS] = {
	"SELECT " DOMAIN_COLUMNS " WHERE id = ANY('{",
	"SELECT " MAILBOX_COLUMNS " WHERE id = ANY('{",
	"SELECT " ALIAS_COLUMNS " WHERE a.id = ANY('{",
	"SELECT " TOKEN_COLUMNS " AND id = ANY('{",
};
static const row_fn batch_row[KINDS] = { domain_row, mailbox_row, alias_row, token_row };
static const del_fn batch_del[KINDS] = { del_domain, del_mailbox, del_alias, del_token };

/*
 * Fetch into a scratch snapshot, then move items into the live one under the write lock:
 * domains first (mailboxes count their usage into them), then mailboxes, then aliases;
 * missing ids are deletions. 0, or -1 when the database failed (the view is unchanged).
 */
static int apply_batch(struct view *v, struct change_batch *b)
{
	struct snap *scratch[KINDS] = { NULL, NULL, NULL, NULL };
	struct hmap seen[KINDS];
	int ret = -1;
	for (int k = 0; k < KINDS; k++)
		hmap_init(&seen[k]);
	for (int k = 0; k < KINDS; k++) {
		if (b->ids[k].map.count == 0)
			continue;
		struct buf q;
		buf_init(&q, SIZE_MAX / 2);
		if (buf_printf(&q, "%s%s}'::bigint[])", batch_query[k], b->ids[k].list.data) < 0)
			abort();
		scratch[k] = snap_new();
		struct apply_ctx c = { scratch[k], &seen[k] };
		int rc = copy_rows(v->conn, q.data, batch_row[k], &c);
		buf_free(&q);
		if (rc < 0)
			goto out;
	}
	pthread_rwlock_wrlock(&v->lock);
	struct snap *live = v->snap;
	for (int k = 0; k < KINDS; k++) {
		struct idset *ids = &b->ids[k];
		for (size_t i = 0; i < ids->map.cap; i++) {
			int64_t *idp = ids->map.slots[i].item;
			if (idp == NULL)
				continue;
			int64_t id = *idp;
			if (hmap_get(&seen[k], hmap_hash_u64((uint64_t)id, 0), &id, id_eq) ==
			    NULL) {
				batch_del[k](live, id);
				continue;
			}
			/* move the fetched item from the scratch snapshot to the live one */
			if (k == 0) {
				struct vdomain *d =
				        hmap_remove(&scratch[0]->dom_by_id, h_id(scratch[0], id),
				                    &id, dom_id_eq);
				put_domain(live, d);
			} else if (k == 1) {
				struct vmailbox *m = hmap_remove(
				        &scratch[1]->mb_by_id, h_id(scratch[1], id), &id, mb_id_eq);
				put_mailbox(live, m);
			} else if (k == 2) {
				struct valias *a = hmap_remove(&scratch[2]->al_by_id,
				                               h_id(scratch[2], id), &id, al_id_eq);
				put_alias(live, a);
			} else {
				struct vtoken *t =
				        hmap_remove(&scratch[3]->tok_by_id, h_id(scratch[3], id),
				                    &id, tok_id_eq);
				put_token(live, t);
			}
		}
	}
	pthread_rwlock_unlock(&v->lock);
	ret = 0;
out:
	for (int k = 0; k < KINDS; k++) {
		/* what remains in a scratch snapshot was not moved (only on failure) */
		if (scratch[k] != NULL) {
			/* the key indexes still point at moved items: clear them before freeing */
			hmap_free(&scratch[k]->dom_by_name);
			hmap_free(&scratch[k]->mb_by_key);
			hmap_free(&scratch[k]->al_by_key);
			snap_free(&scratch[k]);
		}
		for (size_t i = 0; i < seen[k].cap; i++)
			free(seen[k].slots[i].item);
		hmap_free(&seen[k]);
	}
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

static bool stopping(struct view *v)
{
	pthread_mutex_lock(&v->st_lock);
	bool s = v->stop;
	pthread_mutex_unlock(&v->st_lock);
	return s;
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
	struct snap *s = load_all(v->conn);
	if (s == NULL)
		return -1;
	double secs = seconds_between(t0, mono_now());
	size_t nd = s->dom_by_id.count, nm = s->mb_by_id.count, na = s->al_by_id.count;
	pthread_rwlock_wrlock(&v->lock);
	struct snap *old = v->snap;
	v->snap = s;
	pthread_rwlock_unlock(&v->lock);
	snap_free(&old); /* no reader can hold it: they all take the lock */
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
	char err[512];
	v->conn = db_connect(v->conninfo, "mailquotad-view", err, sizeof(err));
	if (v->conn == NULL) {
		log_debug("event=view_connect_failed error=\"%s\"", err);
		return -1;
	}
	if (!exec_ok(v->conn, "LISTEN " CHANNEL) || full_load(v, why) < 0) {
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
		int k = n->extra[0] == 'd'   ? 0
		        : n->extra[0] == 'm' ? 1
		        : n->extra[0] == 'a' ? 2
		        : n->extra[0] == 't' ? 3
		                             : -1;
		uint64_t id;
		if (k >= 0 && n->extra[1] == ' ' &&
		    strnum_u64(n->extra + 2, strlen(n->extra + 2), INT64_MAX, &id) == 0) {
			idset_add(&b->ids[k], (int64_t)id);
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
				set_state(v, false, false);
				if (!warned)
					log_warn("event=view_db_unavailable note=\"answering from "
					         "the "
					         "last loaded view; retrying with back-off\"");
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
		for (int k = 0; k < KINDS; k++)
			idset_init(&b.ids[k]);
		int rc = drain(v, &b, &n);
		if (rc == 0 && n > 0) {
			size_t distinct = 0;
			for (int k = 0; k < KINDS; k++)
				distinct += b.ids[k].map.count;
			if (distinct > VIEW_BATCH_MAX)
				rc = full_load(v, "large_batch");
			else
				rc = apply_batch(v, &b);
			queried = true;
			if (rc == 0) {
				pthread_mutex_lock(&v->st_lock);
				v->notifications += n;
				pthread_mutex_unlock(&v->st_lock);
				log_debug("event=view_changes notifications=%zu distinct=%zu", n,
				          distinct);
			}
		}
		for (int k = 0; k < KINDS; k++)
			idset_free(&b.ids[k]);

		struct timespec now = mono_now();
		if (rc == 0 && v->opt.ping_interval > 0 &&
		    seconds_between(last_ping, now) >= v->opt.ping_interval) {
			/* a silent network failure never wakes poll(): probe it */
			rc = exec_ok(v->conn, "SELECT 1") ? 0 : -1;
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
	if (v->snap == NULL) {
		pthread_rwlock_unlock(&v->lock);
		*error_r = "quota data not loaded yet";
		return -1;
	}
	snap_resolve(v->snap, addr, res_r);
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
	if (v->snap != NULL) {
		st->loaded = true;
		st->domains = v->snap->dom_by_id.count;
		st->mailboxes = v->snap->mb_by_id.count;
		st->aliases = v->snap->al_by_id.count;
	}
	pthread_rwlock_unlock(&v->lock);
	pthread_mutex_lock(&v->st_lock);
	st->db_up = v->db_up;
	st->age_seconds =
	        st->loaded ? (double)(ms_of(mono_now()) - atomic_load(&v->last_sync_ms)) / 1000 : 0;
	st->full_loads = v->full_loads;
	st->notifications = v->notifications;
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
	snap_free(&v->snap);
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
	if (v->snap == NULL) {
		pthread_rwlock_unlock(&v->lock);
		return -1;
	}
	const struct vtoken *t = hmap_get(&v->snap->tok_by_id, h_id(v->snap, id), &id, tok_id_eq);
	if (t != NULL) {
		tok_r->id = t->id;
		tok_r->scope = t->scope;
		tok_r->mailbox_id = t->mailbox_id;
		tok_r->expires = t->expires;
		memcpy(tok_r->hash, t->hash, sizeof(tok_r->hash));
	}
	pthread_rwlock_unlock(&v->lock);
	return t != NULL ? 0 : 1;
}

static const struct store_ops view_ops = { view_resolve, view_status, view_destroy, view_token };

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
