/*
 * Table tests of the check service end to end, without PostgreSQL: service_check() and
 * service_resolve_mailbox() over an in-memory store (tests/support/memstore) that resolves with
 * the view's own index. Address rules and limits come from the configuration's defaults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "memstore.h"
#include "service.h"

#define L(v)              \
	{                 \
		true, (v) \
	}
#define NONE  STORE_MATCH_NONE
#define MBOX  STORE_MATCH_MAILBOX
#define ALIAS STORE_MATCH_ALIAS
#define CATCH STORE_MATCH_CATCHALL
#define STALE (3600 * 1000ULL) /* view_max_age's default, in ms */
#define WIDE  (STORE_TARGETS_MAX + 1)

/* ---- the world ---- */

static const struct vindex_domain domains[] = {
	{ .id = 1, .name = "example.org", .grace_percent = -1 },
	{ .id = 2, .name = "pool.example", .pool = L(1000), .grace_percent = -1 },
	{ .id = 3, .name = "catchall.example", .grace_percent = -1 },
	{ .id = 4, .name = "wide.example", .grace_percent = -1 },
	{ .id = 5,
	  .name = "limits.example",
	  .default_storage = L(1000),
	  .max_size = L(5000),
	  .grace_percent = -1 },
};

#define MB(i, d, l, ...)                                                                         \
	{                                                                                        \
		.id = (i), .domain_id = (d), .local = (l), .grace_percent = -1, .enabled = true, \
		__VA_ARGS__                                                                      \
	}

static const struct vindex_mailbox mailboxes[] = {
	MB(10, 1, "alice", .storage = L(1000), .used_bytes = 100),
	MB(11, 1, "full", .storage = L(1000), .used_bytes = 1000),
	MB(12, 1, "big", .max_size = L(100)),
	{ .id = 13,
	  .domain_id = 1,
	  .local = "off",
	  .storage = L(10),
	  .grace_percent = -1,
	  .used_bytes = 10,
	  .enabled = false },
	MB(14, 1, "both", .storage = L(10), .used_bytes = 10),
	MB(15, 1, "msgs", .messages = L(5), .used_messages = 5),
	MB(16, 1, "dave+list", .storage = L(1), .used_bytes = 1),
	MB(17, 1, "dave"),
	MB(20, 3, "postmaster", .storage = L(100), .used_bytes = 100),
	MB(21, 3, "real"),
	MB(30, 2, "p1", .used_bytes = 600),
	MB(31, 2, "p2", .used_bytes = 300),
	MB(50, 5, "inherit", .used_bytes = 990),
};

static const int64_t t_team[] = { 11, 10 };
static const int64_t t_allfull[] = { 12, 11 };
static const int64_t t_withoff[] = { 13, 11 };
static const int64_t t_off[] = { 13 };
static const int64_t t_alice[] = { 10 };
static const int64_t t_big[] = { 12 };
static const int64_t t_postmaster[] = { 20 };
static const int64_t t_ghost[] = { 999 };
static const int64_t t_pair[] = { 10, 17 };      /* both have room */
static const int64_t t_bigpair[] = { 12, 10 };   /* too big for the first, room in the second */
static const int64_t t_twofull[] = { 11, 14 };   /* both full */
static const int64_t t_offok[] = { 13, 10 };     /* a full but disabled mailbox, one with room */
static const int64_t t_mixed[] = { 10, 11, 12 }; /* room, full, too big */
static int64_t t_wide[WIDE];                     /* the mailboxes of wide.example, all full */
static int64_t t_wide_ok[WIDE];  /* alice, over and over: room in every target seen */
static int64_t t_wide_off[WIDE]; /* a disabled mailbox, over and over: no enabled target seen */

#define AL(i, d, l, t)                                                     \
	{                                                                  \
		.id = (i), .domain_id = (d), .local = (l), .targets = (t), \
		.ntargets = sizeof(t) / sizeof((t)[0])                     \
	}

/* An alias with a policy of its own (aliases.policy). */
#define ALP(i, d, l, t, p)                                                 \
	{                                                                  \
		.id = (i), .domain_id = (d), .local = (l), .targets = (t), \
		.ntargets = sizeof(t) / sizeof((t)[0]), .policy = (p)      \
	}

static const struct vindex_alias aliases[] = {
	AL(100, 1, "team", t_team),
	AL(101, 1, "allfull", t_allfull),
	AL(102, 1, "withoff", t_withoff),
	AL(103, 1, "onlyoff", t_off),
	AL(104, 1, "both", t_alice),
	{ .id = 105, .domain_id = 1, .local = "empty" },
	AL(106, 1, "toobig", t_big),
	AL(107, 1, "ghost", t_ghost),
	AL(108, 1, "pair", t_pair),
	AL(109, 1, "bigpair", t_bigpair),
	AL(110, 1, "twofull", t_twofull),
	AL(111, 1, "offok", t_offok),
	AL(112, 1, "mixed", t_mixed),
	ALP(113, 1, "teamall", t_team, STORE_POLICY_ALL),
	ALP(114, 1, "teamany", t_team, STORE_POLICY_ANY),
	ALP(115, 1, "bigall", t_bigpair, STORE_POLICY_ALL),
	ALP(116, 1, "bigany", t_bigpair, STORE_POLICY_ANY),
	AL(300, 3, NULL, t_postmaster),
};

static struct memstore *ms;

static int setup(void **state)
{
	(void)state;
	const char *err = NULL;
	ms = memstore_new();
	struct memstore_data data = {
		.domains = domains,
		.ndomains = sizeof(domains) / sizeof(domains[0]),
		.mailboxes = mailboxes,
		.nmailboxes = sizeof(mailboxes) / sizeof(mailboxes[0]),
		.aliases = aliases,
		.naliases = sizeof(aliases) / sizeof(aliases[0]),
	};
	if (memstore_fill(ms, &data, &err) < 0)
		fail_msg("fill: %s", err);
	struct vindex *vi = memstore_index(ms);
	for (int i = 0; i < WIDE; i++) {
		char local[16];
		snprintf(local, sizeof(local), "m%d", i);
		struct vindex_mailbox m =
		        MB(4000 + i, 4, local, .storage = L(10), .used_bytes = 10);
		if (vindex_put_mailbox(vi, &m, &err) < 0)
			fail_msg("wide: %s", err);
		t_wide[i] = 4000 + i;
		t_wide_ok[i] = 10;
		t_wide_off[i] = 13;
	}
	struct vindex_alias all = {
		.id = 400, .domain_id = 4, .local = "all", .targets = t_wide, .ntargets = WIDE
	};
	struct vindex_alias hundred = { .id = 401,
		                        .domain_id = 4,
		                        .local = "hundred",
		                        .targets = t_wide,
		                        .ntargets = STORE_TARGETS_MAX };
	struct vindex_alias roomy = {
		.id = 402, .domain_id = 4, .local = "roomy", .targets = t_wide_ok, .ntargets = WIDE
	};
	struct vindex_alias dark = {
		.id = 403, .domain_id = 4, .local = "dark", .targets = t_wide_off, .ntargets = WIDE
	};
	if (vindex_put_alias(vi, &all, &err) < 0 || vindex_put_alias(vi, &hundred, &err) < 0 ||
	    vindex_put_alias(vi, &roomy, &err) < 0 || vindex_put_alias(vi, &dark, &err) < 0)
		fail_msg("wide: %s", err);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	memstore_free(&ms);
	return 0;
}

/* The default configuration with text over it ("" for none). */
static void configure(struct config *cfg, const char *text)
{
	const char *err;
	config_init(cfg);
	if (config_parse_string(cfg, text, &err) < 0)
		fail_msg("%s: %s", text, err);
}

/* ---- service_check() ---- */

struct check_case {
	const char *rcpt;
	uint64_t size;
	const char *config; /* over the defaults; NULL: none */
	uint64_t age_ms;    /* how old the store says its data is */
	bool down;          /* the store cannot answer */
	int rc;
	enum quota_verdict verdict;
	enum quota_reason reason;
	enum store_match match;
	int decider;
	unsigned ntargets;
	bool truncated;
};

#define OK     0, QUOTA_ACCEPT, QUOTA_REASON_NONE
#define UNK    0, QUOTA_UNKNOWN, QUOTA_REASON_NONE
#define TEMP   0, QUOTA_TEMPFAIL, QUOTA_REASON_NONE
#define OVER   0, QUOTA_OVER_QUOTA, QUOTA_REASON_STORAGE
#define BAD    -1, QUOTA_ACCEPT, QUOTA_REASON_NONE, NONE, -1, 0
#define DELIMS "recipient_delimiter = "
#define ANY    "alias_policy = any"
#define ALL    "alias_policy = all"
#define BIGM   0, QUOTA_TOO_BIG_MAILBOX, QUOTA_REASON_MAILBOX_MAX_SIZE
#define BIGS   0, QUOTA_TOO_BIG_SYSTEM, QUOTA_REASON_SYSTEM_MAX_SIZE
#define SYS    "message_size_limit = 1000\n"

static const struct check_case checks[] = {
	/* a mailbox */
	{ "alice@example.org", 100, NULL, 0, false, OK, MBOX, 0, 1, false },
	{ "Alice@Example.ORG", 100, NULL, 0, false, OK, MBOX, 0, 1, false },
	{ "<alice@example.org>", 100, NULL, 0, false, OK, MBOX, 0, 1, false },
	{ "alice@example.org", 900, NULL, 0, false, OK, MBOX, 0, 1, false },
	{ "alice@example.org", 901, NULL, 0, false, OVER, MBOX, 0, 1, false },
	{ "full@example.org", 1, NULL, 0, false, OVER, MBOX, 0, 1, false },
	{ "full@example.org", 0, NULL, 0, false, OVER, MBOX, 0, 1, false }, /* 0 is one byte */
	{ "msgs@example.org", 1, NULL, 0, false, 0, QUOTA_OVER_QUOTA, QUOTA_REASON_MESSAGES, MBOX,
	  0, 1, false },
	{ "big@example.org", 500, NULL, 0, false, 0, QUOTA_TOO_BIG_MAILBOX,
	  QUOTA_REASON_MAILBOX_MAX_SIZE, MBOX, 0, 1, false },
	{ "big@example.org", 100, NULL, 0, false, OK, MBOX, 0, 1, false },
	/* a disabled mailbox is not decided for */
	{ "off@example.org", 1, NULL, 0, false, UNK, MBOX, -1, 0, false },
	/* unknown */
	{ "nobody@example.org", 1, NULL, 0, false, UNK, NONE, -1, 0, false },
	{ "alice@nowhere.example", 1, NULL, 0, false, UNK, NONE, -1, 0, false },
	/* an alias before the mailbox of the same name */
	{ "both@example.org", 500, NULL, 0, false, OK, ALIAS, 0, 1, false },
	/* a multi-target alias: refused only if every enabled target refuses */
	{ "team@example.org", 10, NULL, 0, false, OK, ALIAS, 1, 2, false },
	{ "allfull@example.org", 50, NULL, 0, false, OK, ALIAS, 0, 2, false },
	/* ... and then with the least final verdict: over quota before too big */
	{ "allfull@example.org", 500, NULL, 0, false, OVER, ALIAS, 1, 2, false },
	{ "toobig@example.org", 500, NULL, 0, false, 0, QUOTA_TOO_BIG_MAILBOX,
	  QUOTA_REASON_MAILBOX_MAX_SIZE, ALIAS, 0, 1, false },
	/* disabled targets are skipped; an alias of only those is unknown */
	{ "withoff@example.org", 1, NULL, 0, false, OVER, ALIAS, 0, 1, false },
	{ "onlyoff@example.org", 1, NULL, 0, false, UNK, ALIAS, -1, 0, false },
	{ "ghost@example.org", 1, NULL, 0, false, UNK, ALIAS, -1, 0, false },
	/* an alias without targets matches nothing */
	{ "empty@example.org", 1, NULL, 0, false, UNK, NONE, -1, 0, false },
	/* extensions: the whole local part first, then without the extension */
	{ "alice+tag@example.org", 100, NULL, 0, false, OK, MBOX, 0, 1, false },
	{ "team+tag@example.org", 10, NULL, 0, false, OK, ALIAS, 1, 2, false },
	{ "dave+list@example.org", 1, NULL, 0, false, OVER, MBOX, 0, 1, false },
	{ "dave+other@example.org", 1, NULL, 0, false, OK, MBOX, 0, 1, false },
	{ "nobody+tag@example.org", 1, NULL, 0, false, UNK, NONE, -1, 0, false },
	{ "+alice@example.org", 1, NULL, 0, false, UNK, NONE, -1, 0, false }, /* not an extension */
	{ "alice-tag@example.org", 1, NULL, 0, false, UNK, NONE, -1, 0, false },
	/* the delimiter is configurable, several characters included, or none */
	{ "alice-tag@example.org", 1, DELIMS "-", 0, false, OK, MBOX, 0, 1, false },
	{ "alice+tag@example.org", 1, DELIMS "-", 0, false, UNK, NONE, -1, 0, false },
	{ "alice-tag@example.org", 1, DELIMS "+-", 0, false, OK, MBOX, 0, 1, false },
	{ "alice+tag@example.org", 1, DELIMS "+-", 0, false, OK, MBOX, 0, 1, false },
	{ "alice+tag@example.org", 1, DELIMS "", 0, false, UNK, NONE, -1, 0, false },
	{ "Alice@example.org", 1, "fold_local_part = no", 0, false, UNK, NONE, -1, 0, false },
	/* the catch-all last */
	{ "anyone@catchall.example", 1, NULL, 0, false, OVER, CATCH, 0, 1, false },
	{ "real@catchall.example", 1, NULL, 0, false, OK, MBOX, 0, 1, false },
	{ "real+x@catchall.example", 1, NULL, 0, false, OK, MBOX, 0, 1, false },
	/* the domain pool: 900 of 1000 used by two mailboxes */
	{ "p1@pool.example", 100, NULL, 0, false, OK, MBOX, 0, 1, false },
	{ "p1@pool.example", 101, NULL, 0, false, 0, QUOTA_OVER_QUOTA, QUOTA_REASON_DOMAIN_POOL,
	  MBOX, 0, 1, false },
	{ "p2@pool.example", 101, NULL, 0, false, 0, QUOTA_OVER_QUOTA, QUOTA_REASON_DOMAIN_POOL,
	  MBOX, 0, 1, false },
	/* limits inherited from the domain */
	{ "inherit@limits.example", 10, NULL, 0, false, OK, MBOX, 0, 1, false },
	{ "inherit@limits.example", 11, NULL, 0, false, OVER, MBOX, 0, 1, false },
	{ "inherit@limits.example", 5001, NULL, 0, false, 0, QUOTA_TOO_BIG_SYSTEM,
	  QUOTA_REASON_DOMAIN_MAX_SIZE, MBOX, 0, 1, false },
	{ "alice@example.org", 2000, "message_size_limit = 1000", 0, false, 0, QUOTA_TOO_BIG_SYSTEM,
	  QUOTA_REASON_SYSTEM_MAX_SIZE, MBOX, 0, 1, false },
	/* more targets than can be seen: accept, whatever they say */
	{ "all@wide.example", 1, NULL, 0, false, OK, ALIAS, -1, STORE_TARGETS_MAX, true },
	{ "hundred@wide.example", 1, NULL, 0, false, OVER, ALIAS, 0, STORE_TARGETS_MAX, false },
	/* stale data: a refusal becomes a tempfail, but not the global size limit's */
	{ "full@example.org", 1, NULL, STALE - 1, false, OVER, MBOX, 0, 1, false },
	{ "full@example.org", 1, NULL, STALE, false, TEMP, MBOX, 0, 1, false },
	{ "allfull@example.org", 500, NULL, STALE, false, TEMP, ALIAS, 1, 2, false },
	{ "full@example.org", 1, "view_max_age = 10", 10000, false, TEMP, MBOX, 0, 1, false },
	{ "full@example.org", 1, "view_max_age = 10", 9999, false, OVER, MBOX, 0, 1, false },
	{ "alice@example.org", 1, NULL, STALE, false, OK, MBOX, 0, 1, false },
	{ "nobody@example.org", 1, NULL, STALE, false, UNK, NONE, -1, 0, false },
	{ "alice@example.org", 2000, "message_size_limit = 1000", STALE, false, 0,
	  QUOTA_TOO_BIG_SYSTEM, QUOTA_REASON_SYSTEM_MAX_SIZE, MBOX, 0, 1, false },
	/* alias_policy, both ways, over the same aliases (targets in the order put) */
	/* ... every target has room: accepted, the first target decides */
	{ "pair@example.org", 10, ANY, 0, false, OK, ALIAS, 0, 2, false },
	{ "pair@example.org", 10, ALL, 0, false, OK, ALIAS, 0, 2, false },
	/* ... one target full */
	{ "team@example.org", 10, ANY, 0, false, OK, ALIAS, 1, 2, false },
	{ "team@example.org", 10, ALL, 0, false, OVER, ALIAS, 0, 2, false },
	{ "team+tag@example.org", 10, ALL, 0, false, OVER, ALIAS, 0, 2, false },
	/* ... one target finds it too big */
	{ "bigpair@example.org", 500, ANY, 0, false, OK, ALIAS, 1, 2, false },
	{ "bigpair@example.org", 500, ALL, 0, false, BIGM, ALIAS, 0, 2, false },
	{ "bigpair@example.org", 100, ALL, 0, false, OK, ALIAS, 0, 2, false },
	/* ... every target refuses: "any" answers the least final refusal, "all" the most final
	   (over quota < too big for the mailbox < too big for the system) */
	{ "allfull@example.org", 500, ANY, 0, false, OVER, ALIAS, 1, 2, false },
	{ "allfull@example.org", 500, ALL, 0, false, BIGM, ALIAS, 0, 2, false },
	{ "allfull@example.org", 50, ALL, 0, false, OVER, ALIAS, 1, 2, false },
	{ "mixed@example.org", 500, ANY, 0, false, OK, ALIAS, 0, 3, false },
	{ "mixed@example.org", 500, ALL, 0, false, BIGM, ALIAS, 2, 3, false },
	{ "mixed@example.org", 2000, SYS ALL, 0, false, BIGS, ALIAS, 0, 3, false },
	{ "mixed@example.org", 2000, SYS ANY, 0, false, BIGS, ALIAS, 0, 3, false },
	/* ... among equal refusals the first target in order */
	{ "twofull@example.org", 1, ANY, 0, false, OVER, ALIAS, 0, 2, false },
	{ "twofull@example.org", 1, ALL, 0, false, OVER, ALIAS, 0, 2, false },
	/* ... a disabled target neither accepts nor refuses */
	{ "offok@example.org", 1, ALL, 0, false, OK, ALIAS, 0, 1, false },
	{ "withoff@example.org", 1, ALL, 0, false, OVER, ALIAS, 0, 1, false },
	{ "withoff@example.org", 1, ANY, 0, false, OVER, ALIAS, 0, 1, false },
	{ "onlyoff@example.org", 1, ALL, 0, false, UNK, ALIAS, -1, 0, false },
	/* ... one target: the same either way */
	{ "toobig@example.org", 500, ALL, 0, false, BIGM, ALIAS, 0, 1, false },
	{ "both@example.org", 500, ALL, 0, false, OK, ALIAS, 0, 1, false },
	/* ... a catch-all follows the policy too */
	{ "anyone@catchall.example", 1, ALL, 0, false, OVER, CATCH, 0, 1, false },
	/* ... truncated: "all" refuses on a refusal it saw, and never on what it did not see */
	{ "all@wide.example", 1, ANY, 0, false, OK, ALIAS, -1, STORE_TARGETS_MAX, true },
	{ "all@wide.example", 1, ALL, 0, false, OVER, ALIAS, 0, STORE_TARGETS_MAX, true },
	{ "roomy@wide.example", 1, ANY, 0, false, OK, ALIAS, -1, STORE_TARGETS_MAX, true },
	{ "roomy@wide.example", 1, ALL, 0, false, OK, ALIAS, -1, STORE_TARGETS_MAX, true },
	{ "hundred@wide.example", 1, ALL, 0, false, OVER, ALIAS, 0, STORE_TARGETS_MAX, false },
	/* ... every target seen disabled: the unseen ones may take it, so no unknown recipient */
	{ "dark@wide.example", 1, ANY, 0, false, OK, ALIAS, -1, 0, true },
	{ "dark@wide.example", 1, ALL, 0, false, OK, ALIAS, -1, 0, true },
	/* ... stale data or a store that cannot answer: tempfail, whichever target refused */
	{ "team@example.org", 10, ALL, STALE, false, TEMP, ALIAS, 0, 2, false },
	{ "team@example.org", 10, ANY, STALE, false, OK, ALIAS, 1, 2, false },
	{ "all@wide.example", 1, ALL, STALE, false, TEMP, ALIAS, 0, STORE_TARGETS_MAX, true },
	{ "mixed@example.org", 2000, SYS ALL, STALE, false, BIGS, ALIAS, 0, 3, false },
	{ "team@example.org", 10, ALL, 0, true, TEMP, NONE, -1, 0, false },
	/* an alias's own policy overrides alias_policy both ways; without one it follows it */
	{ "teamall@example.org", 10, NULL, 0, false, OVER, ALIAS, 0, 2, false },
	{ "teamall@example.org", 10, ANY, 0, false, OVER, ALIAS, 0, 2, false },
	{ "teamall@example.org", 10, ALL, 0, false, OVER, ALIAS, 0, 2, false },
	{ "teamall+tag@example.org", 10, ANY, 0, false, OVER, ALIAS, 0, 2, false },
	{ "teamany@example.org", 10, ALL, 0, false, OK, ALIAS, 1, 2, false },
	{ "teamany@example.org", 10, ANY, 0, false, OK, ALIAS, 1, 2, false },
	{ "team@example.org", 10, NULL, 0, false, OK, ALIAS, 1, 2, false },
	{ "bigall@example.org", 500, ANY, 0, false, BIGM, ALIAS, 0, 2, false },
	{ "bigall@example.org", 100, ANY, 0, false, OK, ALIAS, 0, 2, false },
	{ "bigany@example.org", 500, ALL, 0, false, OK, ALIAS, 1, 2, false },
	{ "teamall@example.org", 10, ANY, STALE, false, TEMP, ALIAS, 0, 2, false },
	{ "teamany@example.org", 10, ALL, STALE, false, OK, ALIAS, 1, 2, false },
	/* a store that cannot answer: tempfail */
	{ "alice@example.org", 1, NULL, 0, true, TEMP, NONE, -1, 0, false },
	/* invalid addresses */
	{ "alice", 1, NULL, 0, false, BAD, false },
	{ "", 1, NULL, 0, false, BAD, false },
	{ "alice@", 1, NULL, 0, false, BAD, false },
	{ "@example.org", 1, NULL, 0, false, BAD, false },
	{ "alice@example.org.", 1, NULL, 0, false, BAD, false },
	{ "a\001b@example.org", 1, NULL, 0, false, BAD, false },
	{ "x123456789x123456789x123456789x123456789x123456789x123456789xxxxx@example.org", 1, NULL,
	  0, false, BAD, false }, /* a 65-octet local part */
};

static struct check_result result; /* tens of KiB: not on the stack */

static void test_check(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		const struct check_case *c = &checks[i];
		struct config cfg;
		configure(&cfg, c->config != NULL ? c->config : "");
		struct service svc = { .cfg = &cfg, .store = memstore_store(ms) };
		memstore_set_age(ms, c->age_ms);
		memstore_set_error(ms, c->down ? "the test's store is down" : NULL);
		const char *err = NULL;
		memset(&result, 0xa5, sizeof(result));
		int rc = service_check(&svc, c->rcpt, strlen(c->rcpt), c->size, &result, &err);
		memstore_set_error(ms, NULL);
		config_free(&cfg);
		if (rc != c->rc)
			fail_msg("case %zu %s: rc %d", i, c->rcpt, rc);
		if (rc < 0) {
			assert_non_null(err);
			continue;
		}
		if (result.verdict != c->verdict || result.reason != c->reason ||
		    result.match != c->match || result.decider != c->decider ||
		    result.ntargets != c->ntargets || result.truncated != c->truncated)
			fail_msg("case %zu %s size %llu: verdict %s reason %s match %s decider %d "
			         "ntargets %u truncated %d",
			         i, c->rcpt, (unsigned long long)c->size,
			         quota_verdict_name(result.verdict),
			         quota_reason_name(result.reason), service_match_name(result.match),
			         result.decider, result.ntargets, (int)result.truncated);
		/* why a tempfail: the store's error, or the age */
		if (result.verdict == QUOTA_TEMPFAIL)
			assert_non_null(result.store_error);
		else
			assert_null(result.store_error);
		/* the decider's own verdict is the answer, unless staleness overrode it */
		if (result.decider >= 0 && result.verdict != QUOTA_TEMPFAIL)
			assert_int_equal(result.targets[result.decider].result.verdict,
			                 result.verdict);
	}
}

/* The targets carry the mailbox as resolved: ids, addresses, inherited limits. */
static void test_check_targets(void **state)
{
	(void)state;
	struct config cfg;
	configure(&cfg, "");
	struct service svc = { .cfg = &cfg, .store = memstore_store(ms) };
	memstore_set_age(ms, 0);
	const char *err = NULL;
	assert_int_equal(service_check(&svc, "team+x@Example.org", 18, 10, &result, &err), 0);
	assert_string_equal(result.address.local, "team+x");
	assert_string_equal(result.address.base, "team");
	assert_string_equal(result.address.domain, "example.org");
	assert_true(result.targets[0].mailbox.id == 11);
	assert_string_equal(result.targets[0].mailbox.address, "full@example.org");
	assert_int_equal(result.targets[0].result.verdict, QUOTA_OVER_QUOTA);
	assert_true(result.targets[1].mailbox.id == 10);
	assert_int_equal(result.targets[1].result.verdict, QUOTA_ACCEPT);

	assert_int_equal(service_check(&svc, "inherit@limits.example", 22, 1, &result, &err), 0);
	const struct store_mailbox *m = &result.targets[0].mailbox;
	assert_true(m->storage.has && m->storage.value == 1000);
	assert_true(m->domain_max_size.has && m->domain_max_size.value == 5000);
	assert_true(m->domain_used_bytes == 990);
	config_free(&cfg);
}

/* alias_policy: parsed strictly, recorded in the result, and the size that would fit follows it:
   the largest of the targets' size limits under "any", the smallest under "all". */
static void test_policy(void **state)
{
	(void)state;
	struct config cfg;
	const char *err = NULL;
	config_init(&cfg);
	assert_int_equal(cfg.alias_rule, ALIAS_POLICY_ANY);
	assert_int_equal(config_parse_string(&cfg, "alias_policy = every", &err), -1);
	assert_non_null(strstr(err, "alias_policy"));
	assert_int_equal(config_parse_string(&cfg, "alias_policy = ALL", &err), -1);
	config_free(&cfg);

	static const struct {
		const char *config, *rcpt;
		enum alias_policy policy;
		bool has;
		uint64_t value;
	} cases[] = {
		/* big: 100; alice: none */
		{ ANY, "bigpair@example.org", ALIAS_POLICY_ANY, false, 0 },
		{ ALL, "bigpair@example.org", ALIAS_POLICY_ALL, true, 100 },
		{ ALL, "pair@example.org", ALIAS_POLICY_ALL, false, 0 },
		{ ANY, "toobig@example.org", ALIAS_POLICY_ANY, true, 100 },
		{ ALL, "toobig@example.org", ALIAS_POLICY_ALL, true, 100 },
		/* the global limit bounds every target */
		{ SYS ANY, "bigpair@example.org", ALIAS_POLICY_ANY, true, 1000 },
		{ SYS ALL, "bigpair@example.org", ALIAS_POLICY_ALL, true, 100 },
		/* an alias's own policy is the one recorded, and the size limit follows it */
		{ ANY, "bigall@example.org", ALIAS_POLICY_ALL, true, 100 },
		{ ALL, "bigany@example.org", ALIAS_POLICY_ANY, false, 0 },
		{ ALL, "bigall@example.org", ALIAS_POLICY_ALL, true, 100 },
		/* a mailbox: the configured policy, which a single target makes moot */
		{ ALL, "alice@example.org", ALIAS_POLICY_ALL, false, 0 },
	};
	memstore_set_age(ms, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		configure(&cfg, cases[i].config);
		struct service svc = { .cfg = &cfg, .store = memstore_store(ms) };
		const char *rcpt = cases[i].rcpt;
		assert_int_equal(service_check(&svc, rcpt, strlen(rcpt), 5000, &result, &err), 0);
		assert_int_equal(result.policy, cases[i].policy);
		struct quota_limit l = service_size_limit(&cfg, &result);
		if (l.has != cases[i].has || (l.has && l.value != cases[i].value))
			fail_msg("case %zu %s: has %d value %llu", i, rcpt, (int)l.has,
			         (unsigned long long)l.value);
		config_free(&cfg);
	}
	/* the mapping itself: the alias's own, else the configuration's */
	static const char *const configs[] = { ANY, ALL };
	for (size_t i = 0; i < 2; i++) {
		configure(&cfg, configs[i]);
		enum alias_policy def = i == 0 ? ALIAS_POLICY_ANY : ALIAS_POLICY_ALL;
		assert_int_equal(service_alias_policy(&cfg, STORE_POLICY_DEFAULT), def);
		assert_int_equal(service_alias_policy(&cfg, STORE_POLICY_ANY), ALIAS_POLICY_ANY);
		assert_int_equal(service_alias_policy(&cfg, STORE_POLICY_ALL), ALIAS_POLICY_ALL);
		config_free(&cfg);
	}
	assert_string_equal(service_policy_name(ALIAS_POLICY_ANY), "any");
	assert_string_equal(service_policy_name(ALIAS_POLICY_ALL), "all");
}

/* ---- service_resolve_mailbox() ---- */

struct mailbox_case {
	const char *rcpt;
	bool exact;
	bool down;
	int rc;
	enum service_resolve_error error; /* when rc is -1 */
	int64_t id;                       /* when rc is 0 */
};

static const struct mailbox_case mcases[] = {
	{ "alice@example.org", true, false, 0, 0, 10 },
	{ "ALICE@example.org", true, false, 0, 0, 10 },
	{ "alice+x@example.org", true, false, 0, 0, 10 },
	{ "alice+x@example.org", false, false, 0, 0, 10 },
	/* a disabled mailbox is still the mailbox a report is about */
	{ "off@example.org", true, false, 0, 0, 13 },
	/* an alias or catch-all with exactly one target, unless exact */
	{ "both@example.org", false, false, 0, 0, 10 },
	{ "both@example.org", true, false, -1, SERVICE_NOT_A_MAILBOX, 0 },
	{ "onlyoff@example.org", false, false, 0, 0, 13 },
	{ "anyone@catchall.example", false, false, 0, 0, 20 },
	{ "anyone@catchall.example", true, false, -1, SERVICE_NOT_A_MAILBOX, 0 },
	/* several targets */
	{ "team@example.org", false, false, -1, SERVICE_AMBIGUOUS_RECIPIENT, 0 },
	{ "all@wide.example", false, false, -1, SERVICE_AMBIGUOUS_RECIPIENT, 0 },
	/* nothing */
	{ "nobody@example.org", false, false, -1, SERVICE_UNKNOWN_RECIPIENT, 0 },
	{ "nobody@example.org", true, false, -1, SERVICE_UNKNOWN_RECIPIENT, 0 },
	{ "empty@example.org", false, false, -1, SERVICE_UNKNOWN_RECIPIENT, 0 },
	{ "ghost@example.org", false, false, -1, SERVICE_UNKNOWN_RECIPIENT, 0 },
	{ "x@nowhere.example", false, false, -1, SERVICE_UNKNOWN_RECIPIENT, 0 },
	{ "no-at-sign", false, false, -1, SERVICE_INVALID_ADDRESS, 0 },
	{ "alice@example.org", true, true, -1, SERVICE_STORE_UNAVAILABLE, 0 },
};

static void test_resolve_mailbox(void **state)
{
	(void)state;
	struct config cfg;
	configure(&cfg, "");
	struct service svc = { .cfg = &cfg, .store = memstore_store(ms) };
	memstore_set_age(ms, STALE); /* age does not matter here */
	for (size_t i = 0; i < sizeof(mcases) / sizeof(mcases[0]); i++) {
		const struct mailbox_case *c = &mcases[i];
		struct store_mailbox mb;
		enum service_resolve_error e = (enum service_resolve_error) - 1;
		const char *why = NULL;
		memstore_set_error(ms, c->down ? "the test's store is down" : NULL);
		int rc = service_resolve_mailbox(&svc, c->rcpt, strlen(c->rcpt), c->exact, &mb, &e,
		                                 &why);
		memstore_set_error(ms, NULL);
		if (rc != c->rc || (rc == 0 && mb.id != c->id) || (rc < 0 && e != c->error))
			fail_msg("case %zu %s exact %d: rc %d id %lld error %d", i, c->rcpt,
			         (int)c->exact, rc, rc == 0 ? (long long)mb.id : 0LL, (int)e);
		if (rc < 0)
			assert_non_null(why);
	}
	memstore_set_age(ms, 0);
	config_free(&cfg);
}

/* ---- the memstore's other operations ---- */

static void test_store_ops(void **state)
{
	(void)state;
	struct store *st = memstore_store(ms);
	struct store_status status;
	memstore_set_age(ms, 2500);
	store_status(st, &status);
	assert_true(status.loaded && status.db_up);
	assert_true(status.domains == 5);
	assert_true(status.mailboxes == sizeof(mailboxes) / sizeof(mailboxes[0]) + WIDE);
	assert_true(status.aliases == sizeof(aliases) / sizeof(aliases[0]) + 4);
	assert_true(status.age_seconds > 2.49 && status.age_seconds < 2.51);
	memstore_set_age(ms, 0);

	const char *err = NULL;
	struct store_token t = { .id = 9, .scope = TOKEN_SELF, .mailbox_id = 10 };
	struct store_token got;
	assert_int_equal(store_token(st, 9, &got), 1);
	assert_int_equal(vindex_put_token(memstore_index(ms), &t, &err), 0);
	assert_int_equal(store_token(st, 9, &got), 0);
	assert_true(got.mailbox_id == 10 && got.scope == TOKEN_SELF);
	memstore_set_error(ms, "down");
	assert_int_equal(store_token(st, 9, &got), -1);
	store_status(st, &status);
	assert_false(status.db_up);
	memstore_set_error(ms, NULL);
	assert_int_equal(vindex_del(memstore_index(ms), VINDEX_TOKEN, 9), 0);

	/* another memstore, destroyed through the store interface */
	struct memstore *other = memstore_new();
	struct store *ost = memstore_store(other);
	store_destroy(&ost);
	assert_null(ost);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),     cmocka_unit_test(test_check_targets),
		cmocka_unit_test(test_policy),    cmocka_unit_test(test_resolve_mailbox),
		cmocka_unit_test(test_store_ops),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
