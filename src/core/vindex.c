/*
 * vindex: the view's in-memory index. Every item is held once, in its id index, and also in a
 * key index (domain name; domain id + local part, or the catch-all), both open-addressing hash
 * indexes of pointers (hmap, 16 bytes a slot), so a million mailboxes stay near 150 bytes each
 * (a mailbox record is 64 bytes before its local part: the small fields share the last word).
 *
 * It must never let an item sit in one index and not the other, never let a domain's usage sum
 * wrap, and never allocate or copy more than the answer on a lookup: resolution is on every
 * check's path, under the view's read lock.
 */
#include "vindex.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hmap.h"
#include "xalloc.h"

#define UNSET UINT64_MAX /* an unset limit, in 8 bytes instead of a struct quota_limit's 16 */

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
	int16_t grace; /* -1: the domain's */
	uint16_t warn_storage, warn_messages;
	bool enabled;
	char local[];
};

_Static_assert(QUOTA_GRACE_PERCENT_MAX <= INT16_MAX, "a grace percentage fits an int16_t");
_Static_assert(VINDEX_WARN_MAX <= UINT16_MAX, "a warning level fits a uint16_t");
/* a million of them: the warning levels and grace fit the padding the limits leave */
_Static_assert(sizeof(struct vmailbox) <= 64, "a mailbox record stays within 64 bytes");

struct valias {
	int64_t id;
	int64_t domain_id;
	bool catchall;
	uint8_t policy; /* enum store_alias_policy */
	uint32_t ntargets;
	int64_t *targets; /* mailbox ids, in the order put */
	char local[];     /* "" for the catch-all */
};

_Static_assert(STORE_POLICY_MAX <= UINT8_MAX, "an alias policy fits a uint8_t");
/* the policy sits in the padding after catchall: an alias record does not grow for it */
_Static_assert(sizeof(struct valias) <=
                       2 * sizeof(int64_t) + 2 * sizeof(uint32_t) + sizeof(int64_t *),
               "an alias record stays 32 bytes before its local part");

struct vindex {
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

/* ---- keys and hashes ---- */

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
	return ((const struct store_token *)item)->id == *(const int64_t *)key;
}

static uint64_t h_name(const struct vindex *vi, const char *p, size_t len)
{
	return hmap_hash_bytes(p, len, vi->seed);
}

static uint64_t h_id(const struct vindex *vi, int64_t id)
{
	return hmap_hash_u64((uint64_t)id, vi->seed);
}

static uint64_t h_local(const struct vindex *vi, int64_t domain_id, const char *local, size_t len)
{
	uint64_t h = hmap_hash_u64((uint64_t)domain_id, vi->seed);
	return local == NULL ? h : h ^ hmap_hash_bytes(local, len, vi->seed);
}

/* ---- life cycle ---- */

struct vindex *vindex_new(void)
{
	struct vindex *vi = xcalloc(1, sizeof(*vi));
	/* a seed per index, so colliding keys cannot be chosen in advance */
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	vi->seed = hmap_hash_u64(seed, (uint64_t)(uintptr_t)vi);
	hmap_init(&vi->dom_by_name);
	hmap_init(&vi->dom_by_id);
	hmap_init(&vi->mb_by_key);
	hmap_init(&vi->mb_by_id);
	hmap_init(&vi->al_by_key);
	hmap_init(&vi->al_by_id);
	hmap_init(&vi->tok_by_id);
	return vi;
}

void vindex_free(struct vindex **vip)
{
	struct vindex *vi = *vip;
	if (vi == NULL)
		return;
	/* the id indexes hold every item exactly once */
	for (size_t i = 0; i < vi->dom_by_id.cap; i++)
		free(vi->dom_by_id.slots[i].item);
	for (size_t i = 0; i < vi->mb_by_id.cap; i++)
		free(vi->mb_by_id.slots[i].item);
	for (size_t i = 0; i < vi->al_by_id.cap; i++) {
		struct valias *a = vi->al_by_id.slots[i].item;
		if (a != NULL)
			free(a->targets);
		free(a);
	}
	for (size_t i = 0; i < vi->tok_by_id.cap; i++)
		free(vi->tok_by_id.slots[i].item);
	hmap_free(&vi->dom_by_name);
	hmap_free(&vi->dom_by_id);
	hmap_free(&vi->mb_by_key);
	hmap_free(&vi->mb_by_id);
	hmap_free(&vi->al_by_key);
	hmap_free(&vi->al_by_id);
	hmap_free(&vi->tok_by_id);
	free(vi);
	*vip = NULL;
}

void vindex_reserve(struct vindex *vi, size_t domains, size_t mailboxes, size_t aliases)
{
	hmap_reserve(&vi->dom_by_id, domains);
	hmap_reserve(&vi->dom_by_name, domains);
	hmap_reserve(&vi->mb_by_id, mailboxes);
	hmap_reserve(&vi->mb_by_key, mailboxes);
	hmap_reserve(&vi->al_by_id, aliases);
	hmap_reserve(&vi->al_by_key, aliases);
}

size_t vindex_count(const struct vindex *vi, enum vindex_kind kind)
{
	switch (kind) {
	case VINDEX_DOMAIN:
		return vi->dom_by_id.count;
	case VINDEX_MAILBOX:
		return vi->mb_by_id.count;
	case VINDEX_ALIAS:
		return vi->al_by_id.count;
	case VINDEX_TOKEN:
		return vi->tok_by_id.count;
	}
	abort(); /* not a kind: our bug */
}

/* ---- taking items in and out of both indexes (the item is neither freed nor copied) ---- */

static struct vdomain *dom_by_id(const struct vindex *vi, int64_t id)
{
	return hmap_get(&vi->dom_by_id, h_id(vi, id), &id, dom_id_eq);
}

static struct vdomain *take_domain(struct vindex *vi, int64_t id)
{
	struct vdomain *d = hmap_remove(&vi->dom_by_id, h_id(vi, id), &id, dom_id_eq);
	if (d == NULL)
		return NULL;
	struct name_key k = { d->name, strlen(d->name) };
	hmap_remove(&vi->dom_by_name, h_name(vi, k.s, k.len), &k, dom_name_eq);
	return d;
}

/* Insert or replace; a replacement keeps the usage sum its mailboxes built up. */
static void place_domain(struct vindex *vi, struct vdomain *d)
{
	struct vdomain *old = take_domain(vi, d->id);
	if (old != NULL) {
		d->used_sum = old->used_sum;
		free(old);
	}
	hmap_insert(&vi->dom_by_id, h_id(vi, d->id), d);
	hmap_insert(&vi->dom_by_name, h_name(vi, d->name, strlen(d->name)), d);
}

static void add_usage(struct vindex *vi, int64_t domain_id, uint64_t bytes, bool add)
{
	struct vdomain *d = dom_by_id(vi, domain_id);
	if (d == NULL)
		return; /* an orphan until its domain arrives; the view's next sweep recounts */
	if (add)
		d->used_sum = bytes > UINT64_MAX - d->used_sum ? UINT64_MAX : d->used_sum + bytes;
	else
		d->used_sum = bytes > d->used_sum ? 0 : d->used_sum - bytes;
}

static struct vmailbox *take_mailbox(struct vindex *vi, int64_t id)
{
	struct vmailbox *m = hmap_remove(&vi->mb_by_id, h_id(vi, id), &id, mb_id_eq);
	if (m == NULL)
		return NULL;
	struct local_key k = { m->domain_id, m->local, strlen(m->local) };
	hmap_remove(&vi->mb_by_key, h_local(vi, k.domain_id, k.local, k.len), &k, mb_key_eq);
	add_usage(vi, m->domain_id, m->used_bytes, false);
	return m;
}

static void place_mailbox(struct vindex *vi, struct vmailbox *m)
{
	free(take_mailbox(vi, m->id));
	hmap_insert(&vi->mb_by_id, h_id(vi, m->id), m);
	hmap_insert(&vi->mb_by_key, h_local(vi, m->domain_id, m->local, strlen(m->local)), m);
	add_usage(vi, m->domain_id, m->used_bytes, true);
}

static void free_alias(struct valias *a)
{
	if (a != NULL)
		free(a->targets);
	free(a);
}

static struct valias *take_alias(struct vindex *vi, int64_t id)
{
	struct valias *a = hmap_remove(&vi->al_by_id, h_id(vi, id), &id, al_id_eq);
	if (a == NULL)
		return NULL;
	struct local_key k = { a->domain_id, a->catchall ? NULL : a->local, strlen(a->local) };
	hmap_remove(&vi->al_by_key, h_local(vi, k.domain_id, k.local, k.len), &k, al_key_eq);
	return a;
}

static void place_alias(struct vindex *vi, struct valias *a)
{
	free_alias(take_alias(vi, a->id));
	hmap_insert(&vi->al_by_id, h_id(vi, a->id), a);
	hmap_insert(&vi->al_by_key,
	            h_local(vi, a->domain_id, a->catchall ? NULL : a->local, strlen(a->local)), a);
}

static struct store_token *take_token(struct vindex *vi, int64_t id)
{
	return hmap_remove(&vi->tok_by_id, h_id(vi, id), &id, tok_id_eq);
}

static void place_token(struct vindex *vi, struct store_token *t)
{
	free(take_token(vi, t->id));
	hmap_insert(&vi->tok_by_id, h_id(vi, t->id), t);
}

/* ---- put, delete, move ---- */

static bool limit_ok(struct quota_limit l)
{
	return !l.has || l.value <= VINDEX_VALUE_MAX;
}

static uint64_t limit_pack(struct quota_limit l)
{
	return l.has ? l.value : UNSET;
}

static bool grace_ok(int g)
{
	return g >= -1 && g <= QUOTA_GRACE_PERCENT_MAX;
}

int vindex_put_domain(struct vindex *vi, const struct vindex_domain *in, const char **error_r)
{
	if (in->id < 0) {
		*error_r = "negative domain id";
		return -1;
	}
	if (!limit_ok(in->pool) || !limit_ok(in->default_storage) ||
	    !limit_ok(in->default_messages) || !limit_ok(in->default_max_size) ||
	    !limit_ok(in->max_size)) {
		*error_r = "domain limit out of range";
		return -1;
	}
	if (!grace_ok(in->grace_percent)) {
		*error_r = "domain grace percentage out of range";
		return -1;
	}
	size_t nlen = strlen(in->name);
	struct vdomain *d = xmalloc(sizeof(*d) + nlen + 1);
	memcpy(d->name, in->name, nlen + 1);
	d->id = in->id;
	d->pool = limit_pack(in->pool);
	d->def_storage = limit_pack(in->default_storage);
	d->def_messages = limit_pack(in->default_messages);
	d->def_max_size = limit_pack(in->default_max_size);
	d->max_size = limit_pack(in->max_size);
	d->grace = (int32_t)in->grace_percent;
	d->used_sum = 0;
	place_domain(vi, d);
	return 0;
}

int vindex_put_mailbox(struct vindex *vi, const struct vindex_mailbox *in, const char **error_r)
{
	if (in->id < 0 || in->domain_id < 0) {
		*error_r = "negative mailbox or domain id";
		return -1;
	}
	if (!limit_ok(in->storage) || !limit_ok(in->messages) || !limit_ok(in->max_size)) {
		*error_r = "mailbox limit out of range";
		return -1;
	}
	if (!grace_ok(in->grace_percent)) {
		*error_r = "mailbox grace percentage out of range";
		return -1;
	}
	if (in->warn_storage > VINDEX_WARN_MAX || in->warn_messages > VINDEX_WARN_MAX) {
		*error_r = "mailbox warning level out of range";
		return -1;
	}
	size_t llen = strlen(in->local);
	struct vmailbox *m = xmalloc(sizeof(*m) + llen + 1);
	memcpy(m->local, in->local, llen + 1);
	m->id = in->id;
	m->domain_id = in->domain_id;
	m->storage = limit_pack(in->storage);
	m->messages = limit_pack(in->messages);
	m->max_size = limit_pack(in->max_size);
	m->grace = (int16_t)in->grace_percent;
	m->warn_storage = (uint16_t)in->warn_storage;
	m->warn_messages = (uint16_t)in->warn_messages;
	m->used_bytes = in->used_bytes;
	m->used_messages = in->used_messages;
	m->enabled = in->enabled;
	place_mailbox(vi, m);
	return 0;
}

int vindex_put_alias(struct vindex *vi, const struct vindex_alias *in, const char **error_r)
{
	if (in->id < 0 || in->domain_id < 0) {
		*error_r = "negative alias or domain id";
		return -1;
	}
	if (in->ntargets > UINT32_MAX) {
		*error_r = "too many alias targets";
		return -1;
	}
	if ((unsigned)in->policy > STORE_POLICY_MAX) {
		*error_r = "unknown alias policy";
		return -1;
	}
	const char *local = in->local == NULL ? "" : in->local;
	size_t llen = strlen(local);
	struct valias *a = xmalloc(sizeof(*a) + llen + 1);
	memcpy(a->local, local, llen + 1);
	a->id = in->id;
	a->domain_id = in->domain_id;
	a->catchall = in->local == NULL;
	a->policy = (uint8_t)in->policy;
	a->ntargets = (uint32_t)in->ntargets;
	/* at least one element, so an alias without targets still owns a distinct pointer;
	   ntargets <= UINT32_MAX, so the product cannot wrap a 64-bit size_t */
	a->targets = xcalloc(in->ntargets == 0 ? 1 : in->ntargets, sizeof(*a->targets));
	if (in->ntargets > 0)
		memcpy(a->targets, in->targets, in->ntargets * sizeof(*a->targets));
	place_alias(vi, a);
	return 0;
}

int vindex_put_token(struct vindex *vi, const struct store_token *in, const char **error_r)
{
	if (in->id < 0 || in->mailbox_id < 0 || in->expires < 0) {
		*error_r = "negative token id, mailbox id or expiry";
		return -1;
	}
	struct store_token *t = xmalloc(sizeof(*t));
	*t = *in;
	place_token(vi, t);
	return 0;
}

int vindex_del(struct vindex *vi, enum vindex_kind kind, int64_t id)
{
	switch (kind) {
	case VINDEX_DOMAIN: {
		struct vdomain *d = take_domain(vi, id);
		if (d == NULL)
			return 1;
		free(d);
		return 0;
	}
	case VINDEX_MAILBOX: {
		struct vmailbox *m = take_mailbox(vi, id);
		if (m == NULL)
			return 1;
		free(m);
		return 0;
	}
	case VINDEX_ALIAS: {
		struct valias *a = take_alias(vi, id);
		if (a == NULL)
			return 1;
		free_alias(a);
		return 0;
	}
	case VINDEX_TOKEN: {
		struct store_token *t = take_token(vi, id);
		if (t == NULL)
			return 1;
		free(t);
		return 0;
	}
	}
	abort(); /* not a kind: our bug */
}

int vindex_move(struct vindex *dst, struct vindex *src, enum vindex_kind kind, int64_t id)
{
	switch (kind) {
	case VINDEX_DOMAIN: {
		struct vdomain *d = take_domain(src, id);
		if (d == NULL)
			return 1;
		d->used_sum = 0; /* its mailboxes in dst count it up; place_domain keeps theirs */
		place_domain(dst, d);
		return 0;
	}
	case VINDEX_MAILBOX: {
		struct vmailbox *m = take_mailbox(src, id);
		if (m == NULL)
			return 1;
		place_mailbox(dst, m);
		return 0;
	}
	case VINDEX_ALIAS: {
		struct valias *a = take_alias(src, id);
		if (a == NULL)
			return 1;
		place_alias(dst, a);
		return 0;
	}
	case VINDEX_TOKEN: {
		struct store_token *t = take_token(src, id);
		if (t == NULL)
			return 1;
		place_token(dst, t);
		return 0;
	}
	}
	abort(); /* not a kind: our bug */
}

/* ---- lookups ---- */

static struct quota_limit limit_of(uint64_t v)
{
	struct quota_limit l = { v != UNSET, v == UNSET ? 0 : v };
	return l;
}

static void fill_target(const struct vmailbox *m, const struct vdomain *d,
                        struct store_mailbox *out)
{
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
	out->warn_storage = m->warn_storage;
	out->warn_messages = m->warn_messages;
}

/* Add mailbox id to the resolution if it and its domain are known. */
static void add_target(const struct vindex *vi, int64_t id, struct store_resolution *res)
{
	const struct vmailbox *m = hmap_get(&vi->mb_by_id, h_id(vi, id), &id, mb_id_eq);
	if (m == NULL)
		return;
	const struct vdomain *d = dom_by_id(vi, m->domain_id);
	if (d == NULL)
		return;
	if (res->ntargets == STORE_TARGETS_MAX) {
		res->truncated = true;
		return;
	}
	fill_target(m, d, &res->targets[res->ntargets++]);
}

int vindex_mailbox(const struct vindex *vi, int64_t id, struct store_mailbox *mb_r)
{
	const struct vmailbox *m = hmap_get(&vi->mb_by_id, h_id(vi, id), &id, mb_id_eq);
	const struct vdomain *d = m != NULL ? dom_by_id(vi, m->domain_id) : NULL;
	if (d == NULL)
		return 1;
	fill_target(m, d, mb_r);
	return 0;
}

static bool match_local(const struct vindex *vi, const struct vdomain *d, const char *local,
                        struct store_resolution *res)
{
	struct local_key k = { d->id, local, local == NULL ? 0 : strlen(local) };
	uint64_t h = h_local(vi, d->id, local, k.len);
	const struct valias *a = hmap_get(&vi->al_by_key, h, &k, al_key_eq);
	if (a != NULL && a->ntargets > 0) {
		res->match = local == NULL ? STORE_MATCH_CATCHALL : STORE_MATCH_ALIAS;
		res->policy = (enum store_alias_policy)a->policy;
		for (uint32_t i = 0; i < a->ntargets; i++)
			add_target(vi, a->targets[i], res);
		return true;
	}
	if (local == NULL)
		return false;
	const struct vmailbox *m = hmap_get(&vi->mb_by_key, h, &k, mb_key_eq);
	if (m != NULL) {
		res->match = STORE_MATCH_MAILBOX;
		add_target(vi, m->id, res);
		return true;
	}
	return false;
}

void vindex_resolve(const struct vindex *vi, const struct address *addr,
                    struct store_resolution *res_r)
{
	res_r->match = STORE_MATCH_NONE;
	res_r->ntargets = 0;
	res_r->truncated = false;
	res_r->policy = STORE_POLICY_DEFAULT;
	struct name_key dk = { addr->domain, strlen(addr->domain) };
	const struct vdomain *d =
	        hmap_get(&vi->dom_by_name, h_name(vi, dk.s, dk.len), &dk, dom_name_eq);
	if (d == NULL)
		return;
	if (match_local(vi, d, addr->local, res_r))
		return;
	if (strcmp(addr->base, addr->local) != 0 && match_local(vi, d, addr->base, res_r))
		return;
	match_local(vi, d, NULL, res_r);
}

int vindex_token(const struct vindex *vi, int64_t id, struct store_token *tok_r)
{
	const struct store_token *t = hmap_get(&vi->tok_by_id, h_id(vi, id), &id, tok_id_eq);
	if (t == NULL)
		return 1;
	*tok_r = *t;
	return 0;
}
