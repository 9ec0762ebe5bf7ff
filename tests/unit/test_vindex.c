/*
 * Tests for the view's index: resolution order, inheritance, put/replace/delete of each kind and
 * its effect on resolution and on the domain usage sum, tokens, moves, a mailbox by id with its
 * warning levels and grace as packed into the record, and values refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vindex.h"

#define MAX UINT64_MAX
#define L(v)              \
	{                 \
		true, (v) \
	}
#define U                \
	{                \
		false, 0 \
	}
#define NONE  STORE_MATCH_NONE
#define MBOX  STORE_MATCH_MAILBOX
#define ALIAS STORE_MATCH_ALIAS
#define CATCH STORE_MATCH_CATCHALL

/* ---- helpers ---- */

static struct store_resolution res; /* tens of KiB: not on the stack */

/* Resolve local (base: without extension; NULL: the same) @ domain. */
static const struct store_resolution *resolve(const struct vindex *vi, const char *local,
                                              const char *base, const char *domain)
{
	struct address a;
	memset(&a, 0, sizeof(a));
	assert_true(strlen(local) < sizeof(a.local) && strlen(domain) < sizeof(a.domain));
	strcpy(a.local, local);
	strcpy(a.base, base != NULL ? base : local);
	strcpy(a.domain, domain);
	a.has_extension = strcmp(a.local, a.base) != 0;
	memset(&res, 0xa5, sizeof(res)); /* every field the index owns must be written */
	vindex_resolve(vi, &a, &res);
	return &res;
}

static void put_domain(struct vindex *vi, int64_t id, const char *name)
{
	const char *err = NULL;
	struct vindex_domain d = { .id = id, .name = name, .grace_percent = -1 };
	assert_int_equal(vindex_put_domain(vi, &d, &err), 0);
}

static void put_mailbox(struct vindex *vi, int64_t id, int64_t domain_id, const char *local,
                        uint64_t used)
{
	const char *err = NULL;
	struct vindex_mailbox m = { .id = id,
		                    .domain_id = domain_id,
		                    .local = local,
		                    .grace_percent = -1,
		                    .used_bytes = used,
		                    .enabled = true };
	assert_int_equal(vindex_put_mailbox(vi, &m, &err), 0);
}

static void put_alias(struct vindex *vi, int64_t id, int64_t domain_id, const char *local,
                      const int64_t *targets, size_t n)
{
	const char *err = NULL;
	struct vindex_alias a = {
		.id = id, .domain_id = domain_id, .local = local, .targets = targets, .ntargets = n
	};
	assert_int_equal(vindex_put_alias(vi, &a, &err), 0);
}

/* The usage sum of a domain, read through its mailbox probe@name. */
static uint64_t domain_sum(const struct vindex *vi, const char *name)
{
	const struct store_resolution *r = resolve(vi, "probe", NULL, name);
	assert_int_equal(r->match, MBOX);
	assert_int_equal(r->ntargets, 1);
	return r->targets[0].domain_used_bytes;
}

/* ---- resolution over a fixed world ---- */

static const int64_t t_team[] = { 11, 10 };
static const int64_t t_ghost[] = { 999, 10 }; /* 999 is no mailbox */
static const int64_t t_one[] = { 10 };
static const int64_t t_catch[] = { 20 };

static struct vindex *world(void)
{
	struct vindex *vi = vindex_new();
	put_domain(vi, 1, "example.org");
	put_domain(vi, 2, "catchall.example");
	put_domain(vi, 3, "other.example");
	put_mailbox(vi, 10, 1, "alice", 0);
	put_mailbox(vi, 11, 1, "bob", 0);
	put_mailbox(vi, 12, 1, "both", 0);
	put_mailbox(vi, 13, 1, "carol+list", 0);
	put_mailbox(vi, 14, 3, "alice", 0);
	put_mailbox(vi, 15, 99, "orphan", 0); /* its domain is unknown */
	put_mailbox(vi, 20, 2, "postmaster", 0);
	put_mailbox(vi, 21, 2, "real", 0);
	put_alias(vi, 100, 1, "team", t_team, 2);
	put_alias(vi, 101, 1, "both", t_one, 1); /* the alias hides the mailbox */
	put_alias(vi, 102, 1, "empty", NULL, 0); /* matches nothing */
	put_alias(vi, 103, 1, "ghost", t_ghost, 2);
	put_alias(vi, 104, 1, "lost", t_ghost, 1); /* only the unknown target */
	put_alias(vi, 105, 2, NULL, t_catch, 1);
	put_alias(vi, 106, 1, "alice+x", t_team, 2); /* an alias with the delimiter in it */
	return vi;
}

struct rcase {
	const char *local, *base, *domain;
	enum store_match match;
	unsigned ntargets;
	int64_t first_id; /* of targets[0], when ntargets > 0 */
	const char *first_address;
};

static const struct rcase rcases[] = {
	{ "alice", NULL, "example.org", MBOX, 1, 10, "alice@example.org" },
	{ "alice", NULL, "other.example", MBOX, 1, 14, "alice@other.example" },
	{ "nobody", NULL, "example.org", NONE, 0, 0, NULL },
	{ "alice", NULL, "nowhere.example", NONE, 0, 0, NULL },
	{ "alice", NULL, "EXAMPLE.ORG", NONE, 0, 0, NULL }, /* keys are taken as normalised */
	{ "alic", NULL, "example.org", NONE, 0, 0, NULL },
	{ "alicee", NULL, "example.org", NONE, 0, 0, NULL },
	/* an alias first, its targets in its own order */
	{ "team", NULL, "example.org", ALIAS, 2, 11, "bob@example.org" },
	{ "both", NULL, "example.org", ALIAS, 1, 10, "alice@example.org" },
	{ "empty", NULL, "example.org", NONE, 0, 0, NULL },
	/* unknown targets are skipped; an alias of only those still matches */
	{ "ghost", NULL, "example.org", ALIAS, 1, 10, "alice@example.org" },
	{ "lost", NULL, "example.org", ALIAS, 0, 0, NULL },
	/* the extension: the whole local part first, then the base, alias before mailbox */
	{ "alice+y", "alice", "example.org", MBOX, 1, 10, "alice@example.org" },
	{ "alice+x", "alice", "example.org", ALIAS, 2, 11, "bob@example.org" },
	{ "team+a", "team", "example.org", ALIAS, 2, 11, "bob@example.org" },
	{ "carol+list", "carol", "example.org", MBOX, 1, 13, "carol+list@example.org" },
	{ "carol+other", "carol", "example.org", NONE, 0, 0, NULL },
	{ "nobody+x", "nobody", "example.org", NONE, 0, 0, NULL },
	/* a mailbox whose domain is unknown is not found under any domain */
	{ "orphan", NULL, "example.org", NONE, 0, 0, NULL },
	/* the catch-all last */
	{ "real", NULL, "catchall.example", MBOX, 1, 21, "real@catchall.example" },
	{ "anyone", NULL, "catchall.example", CATCH, 1, 20, "postmaster@catchall.example" },
	{ "real+x", "real", "catchall.example", MBOX, 1, 21, "real@catchall.example" },
	{ "any+x", "any", "catchall.example", CATCH, 1, 20, "postmaster@catchall.example" },
	{ "", NULL, "catchall.example", CATCH, 1, 20, "postmaster@catchall.example" },
};

static void test_resolution(void **state)
{
	(void)state;
	struct vindex *vi = world();
	for (size_t i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
		const struct rcase *c = &rcases[i];
		const struct store_resolution *r = resolve(vi, c->local, c->base, c->domain);
		if (r->match != c->match || r->ntargets != c->ntargets || r->truncated)
			fail_msg("%s@%s: match %d ntargets %u truncated %d", c->local, c->domain,
			         (int)r->match, r->ntargets, (int)r->truncated);
		if (c->ntargets > 0) {
			assert_true(r->targets[0].id == c->first_id);
			assert_string_equal(r->targets[0].address, c->first_address);
		}
	}
	assert_int_equal(vindex_count(vi, VINDEX_DOMAIN), 3);
	assert_int_equal(vindex_count(vi, VINDEX_MAILBOX), 8);
	assert_int_equal(vindex_count(vi, VINDEX_ALIAS), 7);
	assert_int_equal(vindex_count(vi, VINDEX_TOKEN), 0);
	vindex_free(&vi);
	assert_null(vi);
	vindex_free(&vi); /* NULL is a no-op */
}

/* ---- what a target carries ---- */

static void test_inheritance(void **state)
{
	(void)state;
	struct vindex *vi = vindex_new();
	const char *err = NULL;
	struct vindex_domain d = { .id = 1,
		                   .name = "example.org",
		                   .pool = L(5000),
		                   .default_storage = L(1000),
		                   .default_messages = L(10),
		                   .default_max_size = L(300),
		                   .max_size = L(400),
		                   .grace_percent = 7 };
	assert_int_equal(vindex_put_domain(vi, &d, &err), 0);
	struct vindex_domain bare = { .id = 2, .name = "bare.example", .grace_percent = -1 };
	assert_int_equal(vindex_put_domain(vi, &bare, &err), 0);
	/* inherits everything */
	struct vindex_mailbox m = { .id = 10,
		                    .domain_id = 1,
		                    .local = "a",
		                    .grace_percent = -1,
		                    .used_bytes = 11,
		                    .used_messages = 2,
		                    .enabled = true };
	assert_int_equal(vindex_put_mailbox(vi, &m, &err), 0);
	/* its own values, a zero limit and a zero grace included */
	struct vindex_mailbox own = { .id = 11,
		                      .domain_id = 1,
		                      .local = "b",
		                      .storage = L(0),
		                      .messages = L(INT64_MAX),
		                      .max_size = L(50),
		                      .grace_percent = 0,
		                      .used_bytes = 1,
		                      .enabled = false };
	assert_int_equal(vindex_put_mailbox(vi, &own, &err), 0);
	struct vindex_mailbox nothing = {
		.id = 12, .domain_id = 2, .local = "c", .grace_percent = -1, .enabled = true
	};
	assert_int_equal(vindex_put_mailbox(vi, &nothing, &err), 0);

	const struct store_mailbox *t = &resolve(vi, "a", NULL, "example.org")->targets[0];
	assert_true(t->id == 10);
	assert_true(t->storage.has && t->storage.value == 1000);
	assert_true(t->messages.has && t->messages.value == 10);
	assert_true(t->max_size.has && t->max_size.value == 300);
	assert_true(t->domain_pool.has && t->domain_pool.value == 5000);
	assert_true(t->domain_max_size.has && t->domain_max_size.value == 400);
	assert_true(t->has_grace && t->grace_percent == 7);
	assert_true(t->used_bytes == 11 && t->used_messages == 2);
	assert_true(t->domain_used_bytes == 12); /* both mailboxes of the domain */
	assert_true(t->enabled);

	t = &resolve(vi, "b", NULL, "example.org")->targets[0];
	assert_true(t->storage.has && t->storage.value == 0);
	assert_true(t->messages.has && t->messages.value == INT64_MAX);
	assert_true(t->max_size.has && t->max_size.value == 50);
	assert_true(t->has_grace && t->grace_percent == 0);
	assert_false(t->enabled);

	t = &resolve(vi, "c", NULL, "bare.example")->targets[0];
	assert_false(t->storage.has || t->messages.has || t->max_size.has);
	assert_false(t->domain_pool.has || t->domain_max_size.has);
	assert_false(t->has_grace);
	assert_string_equal(t->address, "c@bare.example");
	vindex_free(&vi);
}

/* ---- changes and the domain usage sum ---- */

enum op { PUT_MB, DEL_MB, PUT_DOM, DEL_DOM };

struct step {
	enum op op;
	int64_t id;
	int64_t domain_id; /* PUT_MB */
	const char *name;  /* PUT_MB: local part; PUT_DOM: domain name */
	uint64_t used;     /* PUT_MB */
	uint64_t sum1;     /* afterwards: the sum of one.example */
	uint64_t sum2;     /* and of two.example */
};

static const struct step steps[] = {
	{ PUT_MB, 10, 1, "a", 100, 100, 0 },
	{ PUT_MB, 11, 1, "b", 200, 300, 0 },
	{ PUT_MB, 10, 1, "a", 50, 250, 0 },         /* replaced: the old usage leaves the sum */
	{ PUT_MB, 11, 2, "b", 200, 50, 200 },       /* moved to another domain */
	{ PUT_MB, 11, 2, "renamed", 201, 50, 201 }, /* renamed */
	{ DEL_MB, 10, 0, NULL, 0, 0, 201 },
	{ DEL_MB, 10, 0, NULL, 0, 0, 201 }, /* deleting twice changes nothing */
	{ PUT_DOM, 1, 0, "one.example", 0, 0, 201 },
	{ PUT_DOM, 2, 0, "two.example", 0, 0, 201 }, /* a replaced domain keeps its sum */
	/* saturation: the sum never wraps, and never goes below 0 */
	{ PUT_MB, 12, 1, "c", MAX, MAX, 201 },
	{ PUT_MB, 13, 1, "d", 5, MAX, 201 },
	{ DEL_MB, 13, 0, NULL, 0, MAX - 5, 201 },
	{ DEL_MB, 12, 0, NULL, 0, 0, 201 },
	/* a domain deleted and put again counts only the mailboxes put after it */
	{ DEL_DOM, 2, 0, NULL, 0, 0, 0 },
	{ PUT_DOM, 2, 0, "two.example", 0, 0, 0 },
	{ PUT_MB, 14, 2, "e", 7, 0, 7 },
};

static void test_usage_sum(void **state)
{
	(void)state;
	struct vindex *vi = vindex_new();
	put_domain(vi, 1, "one.example");
	put_domain(vi, 2, "two.example");
	put_mailbox(vi, 1, 1, "probe", 0);
	put_mailbox(vi, 2, 2, "probe", 0);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const struct step *s = &steps[i];
		switch (s->op) {
		case PUT_MB:
			put_mailbox(vi, s->id, s->domain_id, s->name, s->used);
			break;
		case DEL_MB:
			vindex_del(vi, VINDEX_MAILBOX, s->id);
			break;
		case PUT_DOM:
			put_domain(vi, s->id, s->name);
			break;
		case DEL_DOM:
			assert_int_equal(vindex_del(vi, VINDEX_DOMAIN, s->id), 0);
			assert_int_equal(resolve(vi, "probe", NULL, "two.example")->match, NONE);
			continue;
		}
		uint64_t s1 = domain_sum(vi, "one.example"), s2 = domain_sum(vi, "two.example");
		if (s1 != s->sum1 || s2 != s->sum2)
			fail_msg("step %zu: sums %llu %llu", i, (unsigned long long)s1,
			         (unsigned long long)s2);
	}
	/* the renamed mailbox is found under its new name only, in its new domain */
	assert_int_equal(resolve(vi, "b", NULL, "one.example")->match, NONE);
	assert_int_equal(resolve(vi, "b", NULL, "two.example")->match, NONE);
	assert_true(resolve(vi, "renamed", NULL, "two.example")->targets[0].id == 11);
	vindex_free(&vi);
}

static void test_domain_changes(void **state)
{
	(void)state;
	struct vindex *vi = vindex_new();
	put_domain(vi, 1, "old.example");
	put_mailbox(vi, 10, 1, "a", 0);
	put_alias(vi, 20, 1, NULL, t_one, 1);
	assert_int_equal(resolve(vi, "a", NULL, "old.example")->match, MBOX);
	/* renamed: the mailboxes and aliases follow the id, not the name */
	put_domain(vi, 1, "new.example");
	assert_int_equal(vindex_count(vi, VINDEX_DOMAIN), 1);
	assert_int_equal(resolve(vi, "a", NULL, "old.example")->match, NONE);
	assert_string_equal(resolve(vi, "a", NULL, "new.example")->targets[0].address,
	                    "a@new.example");
	assert_int_equal(resolve(vi, "x", NULL, "new.example")->match, CATCH);
	/* deleted: nothing under it resolves; its items stay and come back with it */
	assert_int_equal(vindex_del(vi, VINDEX_DOMAIN, 1), 0);
	assert_int_equal(vindex_del(vi, VINDEX_DOMAIN, 1), 1);
	assert_int_equal(resolve(vi, "a", NULL, "new.example")->match, NONE);
	assert_int_equal(vindex_count(vi, VINDEX_MAILBOX), 1);
	put_domain(vi, 1, "new.example");
	assert_int_equal(resolve(vi, "a", NULL, "new.example")->match, MBOX);
	/* a target whose domain is gone is skipped */
	put_domain(vi, 2, "alias.example");
	put_alias(vi, 21, 2, "fwd", t_one, 1);
	assert_int_equal(resolve(vi, "fwd", NULL, "alias.example")->ntargets, 1);
	assert_int_equal(vindex_del(vi, VINDEX_DOMAIN, 1), 0);
	assert_int_equal(resolve(vi, "fwd", NULL, "alias.example")->match, ALIAS);
	assert_int_equal(resolve(vi, "fwd", NULL, "alias.example")->ntargets, 0);
	vindex_free(&vi);
}

static void test_alias_changes(void **state)
{
	(void)state;
	static const int64_t t_two[] = { 11, 10 };
	struct vindex *vi = vindex_new();
	put_domain(vi, 1, "example.org");
	put_mailbox(vi, 10, 1, "a", 0);
	put_mailbox(vi, 11, 1, "b", 0);
	/* an alias over a mailbox of the same name wins; its targets can change */
	put_alias(vi, 10, 1, "a", t_two, 2); /* the same id as a mailbox: another kind */
	const struct store_resolution *r = resolve(vi, "a", NULL, "example.org");
	assert_int_equal(r->match, ALIAS);
	assert_int_equal(r->ntargets, 2);
	put_alias(vi, 10, 1, "a", t_one, 1);
	r = resolve(vi, "a", NULL, "example.org");
	assert_int_equal(r->ntargets, 1);
	assert_int_equal(vindex_count(vi, VINDEX_ALIAS), 1);
	/* emptied: it matches nothing, and the mailbox shows through */
	put_alias(vi, 10, 1, "a", NULL, 0);
	assert_int_equal(resolve(vi, "a", NULL, "example.org")->match, MBOX);
	/* renamed: found under the new name only */
	put_alias(vi, 10, 1, "c", t_two, 2);
	assert_int_equal(resolve(vi, "a", NULL, "example.org")->match, MBOX);
	assert_int_equal(resolve(vi, "c", NULL, "example.org")->match, ALIAS);
	/* an alias turned into the catch-all and back */
	put_alias(vi, 10, 1, NULL, t_two, 2);
	assert_int_equal(resolve(vi, "c", NULL, "example.org")->match, CATCH);
	assert_int_equal(resolve(vi, "zzz", NULL, "example.org")->match, CATCH);
	put_alias(vi, 11, 1, "", t_one, 1); /* an alias named "" is not the catch-all */
	assert_int_equal(resolve(vi, "zzz", NULL, "example.org")->ntargets, 2);
	assert_int_equal(resolve(vi, "", NULL, "example.org")->match, ALIAS);
	assert_int_equal(vindex_del(vi, VINDEX_ALIAS, 11), 0);
	put_alias(vi, 10, 1, "c", t_two, 2);
	assert_int_equal(resolve(vi, "zzz", NULL, "example.org")->match, NONE);
	/* deleting a mailbox by id leaves the alias with the same id alone */
	assert_int_equal(vindex_del(vi, VINDEX_MAILBOX, 10), 0);
	r = resolve(vi, "c", NULL, "example.org");
	assert_int_equal(r->match, ALIAS);
	assert_int_equal(r->ntargets, 1); /* mailbox 10 is gone */
	assert_true(r->targets[0].id == 11);
	assert_int_equal(vindex_del(vi, VINDEX_ALIAS, 10), 0);
	assert_int_equal(vindex_del(vi, VINDEX_ALIAS, 10), 1);
	assert_int_equal(resolve(vi, "c", NULL, "example.org")->match, NONE);
	assert_int_equal(vindex_count(vi, VINDEX_ALIAS), 0);
	vindex_free(&vi);
}

/* An alias's own policy comes with its resolution (a catch-all's too), follows the alias's
   replacement, and is DEFAULT for a mailbox, for no match and for an alias without one. */
static void test_alias_policy(void **state)
{
	(void)state;
	static const int64_t t_two[] = { 10, 11 };
	const char *err = NULL;
	struct vindex *vi = vindex_new();
	put_domain(vi, 1, "example.org");
	put_mailbox(vi, 10, 1, "a", 0);
	put_mailbox(vi, 11, 1, "b", 0);
	static const struct {
		int64_t id;
		const char *local;
		enum store_alias_policy policy;
	} aliases[] = {
		{ 1, "plain", STORE_POLICY_DEFAULT },
		{ 2, "any", STORE_POLICY_ANY },
		{ 3, "all", STORE_POLICY_ALL },
		{ 4, NULL, STORE_POLICY_ALL },
	};
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
		struct vindex_alias a = { .id = aliases[i].id,
			                  .domain_id = 1,
			                  .local = aliases[i].local,
			                  .targets = t_two,
			                  .ntargets = 2,
			                  .policy = aliases[i].policy };
		assert_int_equal(vindex_put_alias(vi, &a, &err), 0);
	}
	static const struct {
		const char *local, *base;
		enum store_match match;
		enum store_alias_policy policy;
	} cases[] = {
		{ "plain", NULL, ALIAS, STORE_POLICY_DEFAULT },
		{ "any", NULL, ALIAS, STORE_POLICY_ANY },
		{ "all", NULL, ALIAS, STORE_POLICY_ALL },
		{ "all+tag", "all", ALIAS, STORE_POLICY_ALL },
		{ "nobody", NULL, CATCH, STORE_POLICY_ALL },
		{ "a", NULL, MBOX, STORE_POLICY_DEFAULT },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct store_resolution *r =
		        resolve(vi, cases[i].local, cases[i].base, "example.org");
		assert_int_equal(r->match, cases[i].match);
		assert_int_equal(r->policy, cases[i].policy);
	}
	assert_int_equal(resolve(vi, "x", NULL, "unknown.example")->policy, STORE_POLICY_DEFAULT);
	/* replaced: the new policy, and back to none */
	struct vindex_alias a = {
		.id = 3, .domain_id = 1, .local = "all", .targets = t_two, .ntargets = 2
	};
	assert_int_equal(vindex_put_alias(vi, &a, &err), 0);
	assert_int_equal(resolve(vi, "all", NULL, "example.org")->policy, STORE_POLICY_DEFAULT);
	a.policy = STORE_POLICY_ANY;
	assert_int_equal(vindex_put_alias(vi, &a, &err), 0);
	assert_int_equal(resolve(vi, "all", NULL, "example.org")->policy, STORE_POLICY_ANY);
	/* moved into another index with its policy */
	struct vindex *dst = vindex_new();
	put_domain(dst, 1, "example.org");
	assert_int_equal(vindex_move(dst, vi, VINDEX_ALIAS, 4), 0);
	assert_int_equal(resolve(dst, "nobody", NULL, "example.org")->policy, STORE_POLICY_ALL);
	vindex_free(&dst);
	vindex_free(&vi);
}

static void test_truncation(void **state)
{
	(void)state;
	static int64_t targets[STORE_TARGETS_MAX + 2];
	char local[16];
	struct vindex *vi = vindex_new();
	put_domain(vi, 1, "example.org");
	for (int i = 0; i < STORE_TARGETS_MAX + 1; i++) {
		snprintf(local, sizeof(local), "m%d", i);
		put_mailbox(vi, 1000 + i, 1, local, 1);
		targets[i] = 1000 + i;
	}
	targets[STORE_TARGETS_MAX + 1] = 5; /* unknown: does not count */
	/* exactly the maximum, an unknown target besides */
	targets[STORE_TARGETS_MAX] = 5;
	put_alias(vi, 1, 1, "max", targets, STORE_TARGETS_MAX + 1);
	const struct store_resolution *r = resolve(vi, "max", NULL, "example.org");
	assert_int_equal(r->ntargets, STORE_TARGETS_MAX);
	assert_false(r->truncated);
	/* one more known target */
	targets[STORE_TARGETS_MAX] = 1000 + STORE_TARGETS_MAX;
	put_alias(vi, 2, 1, "over", targets, STORE_TARGETS_MAX + 2);
	r = resolve(vi, "over", NULL, "example.org");
	assert_int_equal(r->ntargets, STORE_TARGETS_MAX);
	assert_true(r->truncated);
	assert_true(r->targets[STORE_TARGETS_MAX - 1].id == 1000 + STORE_TARGETS_MAX - 1);
	assert_true(r->targets[0].domain_used_bytes == STORE_TARGETS_MAX + 1);
	/* the next resolution starts clean */
	r = resolve(vi, "m0", NULL, "example.org");
	assert_false(r->truncated);
	assert_int_equal(r->ntargets, 1);
	vindex_free(&vi);
}

/* ---- tokens ---- */

static void test_tokens(void **state)
{
	(void)state;
	struct vindex *vi = vindex_new();
	const char *err = NULL;
	struct store_token t = { .id = 7, .scope = TOKEN_SELF, .mailbox_id = 10, .expires = 99 };
	memset(t.hash, 0x11, sizeof(t.hash));
	struct store_token got;
	assert_int_equal(vindex_token(vi, 7, &got), 1);
	assert_int_equal(vindex_put_token(vi, &t, &err), 0);
	assert_int_equal(vindex_token(vi, 7, &got), 0);
	assert_memory_equal(&got, &t, sizeof(t));
	assert_int_equal(vindex_token(vi, 8, &got), 1);
	/* replaced */
	t.scope = TOKEN_ADMIN;
	t.mailbox_id = 0;
	t.expires = 0;
	t.hash[0] = 0x22;
	assert_int_equal(vindex_put_token(vi, &t, &err), 0);
	assert_int_equal(vindex_count(vi, VINDEX_TOKEN), 1);
	assert_int_equal(vindex_token(vi, 7, &got), 0);
	assert_int_equal(got.scope, TOKEN_ADMIN);
	assert_true(got.hash[0] == 0x22 && got.hash[1] == 0x11);
	/* tokens and mailboxes are separate kinds */
	put_domain(vi, 1, "example.org");
	put_mailbox(vi, 7, 1, "a", 0);
	assert_int_equal(vindex_del(vi, VINDEX_MAILBOX, 7), 0);
	assert_int_equal(vindex_token(vi, 7, &got), 0);
	assert_int_equal(vindex_del(vi, VINDEX_TOKEN, 7), 0);
	assert_int_equal(vindex_del(vi, VINDEX_TOKEN, 7), 1);
	assert_int_equal(vindex_token(vi, 7, &got), 1);
	assert_int_equal(vindex_count(vi, VINDEX_TOKEN), 0);
	vindex_free(&vi);
}

/* ---- moves from a scratch index, as a batch of changes is applied ---- */

static void test_move(void **state)
{
	(void)state;
	struct vindex *live = vindex_new(), *scratch = vindex_new();
	const char *err = NULL;
	put_domain(live, 1, "example.org");
	put_mailbox(live, 1, 1, "probe", 0);
	put_mailbox(live, 10, 1, "a", 100);
	/* the scratch holds the re-read rows: a changed domain and mailbox, a new alias, a token */
	put_domain(scratch, 1, "example.org");
	put_mailbox(scratch, 10, 1, "a", 30);
	put_alias(scratch, 5, 1, "fwd", t_one, 1);
	struct store_token t = { .id = 3, .scope = TOKEN_READ };
	assert_int_equal(vindex_put_token(scratch, &t, &err), 0);

	assert_int_equal(vindex_move(live, scratch, VINDEX_DOMAIN, 1), 0);
	assert_true(domain_sum(live, "example.org") == 100); /* the live sum is kept */
	assert_int_equal(vindex_move(live, scratch, VINDEX_MAILBOX, 10), 0);
	assert_true(domain_sum(live, "example.org") == 30);
	assert_int_equal(vindex_move(live, scratch, VINDEX_ALIAS, 5), 0);
	assert_int_equal(vindex_move(live, scratch, VINDEX_TOKEN, 3), 0);
	for (int k = 0; k < VINDEX_KINDS; k++)
		assert_int_equal(vindex_count(scratch, (enum vindex_kind)k), 0);
	assert_int_equal(vindex_count(live, VINDEX_MAILBOX), 2);
	assert_true(resolve(live, "fwd", NULL, "example.org")->targets[0].used_bytes == 30);
	struct store_token got;
	assert_int_equal(vindex_token(live, 3, &got), 0);
	/* what the scratch does not hold is a deletion for the caller: 1, nothing changed */
	assert_int_equal(vindex_move(live, scratch, VINDEX_MAILBOX, 10), 1);
	assert_int_equal(vindex_move(live, scratch, VINDEX_ALIAS, 6), 1);
	assert_int_equal(vindex_count(live, VINDEX_MAILBOX), 2);
	vindex_free(&scratch);
	vindex_free(&live);
}

/* ---- a mailbox by id: warning levels and grace, as the packed record gives them back ---- */

struct wcase {
	int grace;                  /* as put */
	unsigned storage, messages; /* warning levels as put */
	int rc;                     /* of the put */
};

static const struct wcase wcases[] = {
	{ -1, 0, 0, 0 },
	{ -1, 80, 0, 0 },
	{ 0, 0, 100, 0 },
	{ 7, 90, 80, 0 },
	{ QUOTA_GRACE_PERCENT_MAX, 100, 100, 0 },
	{ -1, VINDEX_WARN_MAX, VINDEX_WARN_MAX, 0 }, /* the highest threshold SQL allows */
	{ -1, VINDEX_WARN_MAX + 1, 0, -1 },
	{ -1, 0, VINDEX_WARN_MAX + 1, -1 },
	{ -1, 65536 + 80, 0, -1 }, /* would wrap a 16-bit field to 80 */
	{ -1, UINT32_MAX, UINT32_MAX, -1 },
};

static void test_by_id_and_warnings(void **state)
{
	(void)state;
	struct vindex *vi = vindex_new();
	put_domain(vi, 1, "example.org");
	put_mailbox(vi, 99, 42, "orphan", 0); /* its domain is unknown */
	struct store_mailbox mb;
	assert_int_equal(vindex_mailbox(vi, 10, &mb), 1);
	assert_int_equal(vindex_mailbox(vi, 99, &mb), 1);
	/* each case replaces mailbox 10; a refused one leaves the previous in place */
	const struct wcase *last = NULL;
	for (size_t i = 0; i < sizeof(wcases) / sizeof(wcases[0]); i++) {
		const struct wcase *c = &wcases[i];
		const char *err = NULL;
		struct vindex_mailbox m = { .id = 10,
			                    .domain_id = 1,
			                    .local = "a",
			                    .storage = L(1000),
			                    .grace_percent = c->grace,
			                    .used_bytes = 950,
			                    .enabled = true,
			                    .warn_storage = c->storage,
			                    .warn_messages = c->messages };
		int rc = vindex_put_mailbox(vi, &m, &err);
		if (rc != c->rc)
			fail_msg("case %zu: put gave %d", i, rc);
		if (rc < 0)
			assert_non_null(err);
		else
			last = c;
		assert_non_null(last);
		memset(&mb, 0xa5, sizeof(mb));
		assert_int_equal(vindex_mailbox(vi, 10, &mb), 0);
		assert_string_equal(mb.address, "a@example.org");
		if (mb.warn_storage != last->storage || mb.warn_messages != last->messages)
			fail_msg("case %zu: levels %u/%u", i, mb.warn_storage, mb.warn_messages);
		assert_int_equal(mb.has_grace, last->grace >= 0);
		if (last->grace >= 0)
			assert_int_equal(mb.grace_percent, (unsigned)last->grace);
		assert_true(mb.storage.has && mb.storage.value == 1000 && mb.used_bytes == 950);
		/* a check's resolution carries the same */
		const struct store_mailbox *t = &resolve(vi, "a", NULL, "example.org")->targets[0];
		assert_int_equal(t->warn_storage, last->storage);
		assert_int_equal(t->warn_messages, last->messages);
	}
	/* moved from a scratch index, as a notified change is applied */
	struct vindex *scratch = vindex_new();
	const char *err = NULL;
	struct vindex_mailbox m = {
		.id = 10, .domain_id = 1, .local = "a", .grace_percent = -1, .warn_storage = 90
	};
	assert_int_equal(vindex_put_mailbox(scratch, &m, &err), 0);
	assert_int_equal(vindex_move(vi, scratch, VINDEX_MAILBOX, 10), 0);
	assert_int_equal(vindex_mailbox(vi, 10, &mb), 0);
	assert_int_equal(mb.warn_storage, 90);
	assert_int_equal(mb.warn_messages, 0);
	assert_false(mb.enabled);
	assert_int_equal(vindex_del(vi, VINDEX_MAILBOX, 10), 0);
	assert_int_equal(vindex_mailbox(vi, 10, &mb), 1);
	vindex_free(&scratch);
	vindex_free(&vi);
}

/* ---- values refused ---- */

static void test_refused(void **state)
{
	(void)state;
	struct vindex *vi = vindex_new();
	const char *err = NULL;
	put_domain(vi, 1, "example.org");
	put_mailbox(vi, 10, 1, "a", 0);
	struct vindex_domain d = { .id = 1, .name = "other.example", .grace_percent = -1 };
	struct vindex_mailbox m = {
		.id = 10, .domain_id = 1, .local = "b", .grace_percent = -1, .enabled = true
	};
	struct vindex_alias a = { .id = 1, .domain_id = 1, .local = "x" };
	struct store_token t = { .id = 1 };

	d.pool = (struct quota_limit)L((uint64_t)INT64_MAX + 1);
	assert_int_equal(vindex_put_domain(vi, &d, &err), -1);
	assert_non_null(err);
	d.pool = (struct quota_limit)U;
	d.max_size = (struct quota_limit)L(MAX);
	assert_int_equal(vindex_put_domain(vi, &d, &err), -1);
	d.max_size = (struct quota_limit)U;
	d.grace_percent = QUOTA_GRACE_PERCENT_MAX + 1;
	assert_int_equal(vindex_put_domain(vi, &d, &err), -1);
	d.grace_percent = -2;
	assert_int_equal(vindex_put_domain(vi, &d, &err), -1);
	d.grace_percent = -1;
	d.id = -1;
	assert_int_equal(vindex_put_domain(vi, &d, &err), -1);
	d.id = 1;

	m.storage = (struct quota_limit)L(MAX);
	assert_int_equal(vindex_put_mailbox(vi, &m, &err), -1);
	m.storage = (struct quota_limit)U;
	m.grace_percent = QUOTA_GRACE_PERCENT_MAX + 1;
	assert_int_equal(vindex_put_mailbox(vi, &m, &err), -1);
	m.grace_percent = -1;
	m.domain_id = -1;
	assert_int_equal(vindex_put_mailbox(vi, &m, &err), -1);

	a.id = -5;
	assert_int_equal(vindex_put_alias(vi, &a, &err), -1);
	a.id = 1;
	a.policy = (enum store_alias_policy)(STORE_POLICY_MAX + 1);
	assert_int_equal(vindex_put_alias(vi, &a, &err), -1);
	t.expires = -1;
	assert_int_equal(vindex_put_token(vi, &t, &err), -1);

	/* nothing changed */
	assert_int_equal(resolve(vi, "a", NULL, "example.org")->match, MBOX);
	assert_int_equal(resolve(vi, "b", NULL, "example.org")->match, NONE);
	assert_int_equal(vindex_count(vi, VINDEX_ALIAS), 0);
	assert_int_equal(vindex_count(vi, VINDEX_TOKEN), 0);
	/* the edges that are accepted */
	d.grace_percent = QUOTA_GRACE_PERCENT_MAX;
	d.pool = (struct quota_limit)L(INT64_MAX);
	assert_int_equal(vindex_put_domain(vi, &d, &err), 0);
	assert_true(resolve(vi, "a", NULL, "other.example")->targets[0].domain_pool.value ==
	            INT64_MAX);
	vindex_free(&vi);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolution),
		cmocka_unit_test(test_inheritance),
		cmocka_unit_test(test_usage_sum),
		cmocka_unit_test(test_domain_changes),
		cmocka_unit_test(test_alias_changes),
		cmocka_unit_test(test_alias_policy), /* aliases.policy */
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_move),
		cmocka_unit_test(test_by_id_and_warnings),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
