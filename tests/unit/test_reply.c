/* Table tests for reply profiles, validation, and the mapping of every verdict under every
   profile to a policy action and an SMTP reply line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "reply.h"

struct row {
	enum reply_kind kind;
	const char *reply;
	int ret;
};

static const struct row rows[] = {
	{ REPLY_KIND_REFUSAL, "552 5.2.2 Mailbox full", 0 },
	{ REPLY_KIND_REFUSAL, "452 4.2.2 Mailbox full", 0 },
	{ REPLY_KIND_REFUSAL, "450 4.2.2 Mailbox full", 0 },
	{ REPLY_KIND_REFUSAL, "552 5.3.4 Message too big for system", 0 },
	{ REPLY_KIND_REFUSAL, "552 Mailbox full", 0 },
	{ REPLY_KIND_REFUSAL, "552", 0 },
	{ REPLY_KIND_REFUSAL, "552 4.2.2 Mailbox full", -1 }, /* class mismatch */
	{ REPLY_KIND_REFUSAL, "452 5.2.2 Mailbox full", -1 },
	{ REPLY_KIND_REFUSAL, "554 5.2.2 Mailbox full", -1 }, /* 554 at RCPT */
	{ REPLY_KIND_REFUSAL, "250 2.0.0 Ok", -1 },
	{ REPLY_KIND_REFUSAL, "352 Mailbox full", -1 },
	{ REPLY_KIND_REFUSAL, "5522 Mailbox full", -1 },
	{ REPLY_KIND_REFUSAL, "55 Mailbox full", -1 },
	{ REPLY_KIND_REFUSAL, "562 Mailbox full", -1 },
	{ REPLY_KIND_REFUSAL, "552 5.2 Mailbox full", -1 },
	{ REPLY_KIND_REFUSAL, "552 5.2.2222 Mailbox full", -1 },
	{ REPLY_KIND_REFUSAL, "552 5.2.2x Mailbox full", -1 },
	{ REPLY_KIND_REFUSAL, "552 5.2.2 Mailbox\tfull", -1 },
	{ REPLY_KIND_REFUSAL, "DUNNO", -1 },
	{ REPLY_KIND_REFUSAL, "DEFER_IF_PERMIT full", -1 },
	{ REPLY_KIND_REFUSAL, "", -1 },
	{ REPLY_KIND_TEMPFAIL, "451 4.3.0 Try later", 0 },
	{ REPLY_KIND_TEMPFAIL, "DEFER_IF_PERMIT Service unavailable", 0 },
	{ REPLY_KIND_TEMPFAIL, "DEFER_IF_PERMIT", 0 },
	{ REPLY_KIND_TEMPFAIL, "DEFER_IF_PERMITX", -1 },
	{ REPLY_KIND_TEMPFAIL, "551 5.3.0 Broken", -1 }, /* never 5xx */
	{ REPLY_KIND_UNKNOWN, "DUNNO", 0 },
	{ REPLY_KIND_UNKNOWN, "550 5.1.1 User unknown", 0 },
	{ REPLY_KIND_UNKNOWN, "DEFER_IF_PERMIT unknown", 0 },
	{ REPLY_KIND_UNKNOWN, "REJECT", -1 },
	{ REPLY_KIND_UNKNOWN, "OK", -1 },
};

static void test_validate(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *err = NULL;
		int ret = reply_validate(rows[i].kind, rows[i].reply, &err);
		if (ret != rows[i].ret)
			fail_msg("row %zu \"%s\": got %d want %d (%s)", i, rows[i].reply, ret,
			         rows[i].ret, err ? err : "");
		if (ret < 0)
			assert_non_null(err);
	}
}

static void test_too_long(void **state)
{
	(void)state;
	char r[REPLY_MAX + 2];
	const char *err;
	memset(r, 'x', sizeof(r));
	memcpy(r, "552 5.2.2 ", 10);
	r[REPLY_MAX] = '\0';
	assert_int_equal(reply_validate(REPLY_KIND_REFUSAL, r, &err), 0);
	r[REPLY_MAX] = 'x';
	r[REPLY_MAX + 1] = '\0';
	assert_int_equal(reply_validate(REPLY_KIND_REFUSAL, r, &err), -1);
}

static void test_profiles(void **state)
{
	(void)state;
	enum reply_profile p;
	assert_int_equal(reply_profile_parse("conventional", &p), 0);
	assert_int_equal(p, REPLY_PROFILE_CONVENTIONAL);
	assert_int_equal(reply_profile_parse("strict", &p), 0);
	assert_int_equal(p, REPLY_PROFILE_STRICT);
	assert_int_equal(reply_profile_parse("no452", &p), 0);
	assert_int_equal(p, REPLY_PROFILE_NO452);
	assert_int_equal(reply_profile_parse("lenient", &p), -1);
	assert_string_equal(reply_profile_over_quota(REPLY_PROFILE_STRICT),
	                    "452 4.2.2 Mailbox full");
	/* every profile's defaults pass their own validation */
	for (p = REPLY_PROFILE_CONVENTIONAL; p <= REPLY_PROFILE_NO452; p++) {
		struct reply_set set;
		const char *err;
		reply_set_defaults(&set, p);
		assert_int_equal(reply_validate(REPLY_KIND_REFUSAL, set.over_quota, &err), 0);
		assert_int_equal(reply_validate(REPLY_KIND_REFUSAL, set.too_big_mailbox, &err), 0);
		assert_int_equal(reply_validate(REPLY_KIND_REFUSAL, set.too_big_system, &err), 0);
		assert_int_equal(reply_validate(REPLY_KIND_TEMPFAIL, set.tempfail, &err), 0);
		assert_int_equal(reply_validate(REPLY_KIND_UNKNOWN, set.unknown, &err), 0);
	}
}

#define TOO_BIG_MAILBOX "552 5.2.3 Message length exceeds administrative limit"
#define TOO_BIG_SYSTEM  "552 5.3.4 Message too big for system"
#define TEMPFAIL        "451 4.3.0 Quota service temporarily unavailable"

/* One verdict under one profile's defaults: the policy action and the SMTP line (NULL: none). */
struct map_row {
	enum reply_profile profile;
	enum quota_verdict verdict;
	const char *action;
	const char *smtp;
};

static const struct map_row map_rows[] = {
	{ REPLY_PROFILE_CONVENTIONAL, QUOTA_ACCEPT, "DUNNO", NULL },
	{ REPLY_PROFILE_CONVENTIONAL, QUOTA_OVER_QUOTA, "552 5.2.2 Mailbox full",
	  "552 5.2.2 Mailbox full" },
	{ REPLY_PROFILE_CONVENTIONAL, QUOTA_TOO_BIG_MAILBOX, TOO_BIG_MAILBOX, TOO_BIG_MAILBOX },
	{ REPLY_PROFILE_CONVENTIONAL, QUOTA_TOO_BIG_SYSTEM, TOO_BIG_SYSTEM, TOO_BIG_SYSTEM },
	{ REPLY_PROFILE_CONVENTIONAL, QUOTA_UNKNOWN, "DUNNO", NULL },
	{ REPLY_PROFILE_CONVENTIONAL, QUOTA_TEMPFAIL, TEMPFAIL, TEMPFAIL },
	{ REPLY_PROFILE_STRICT, QUOTA_ACCEPT, "DUNNO", NULL },
	{ REPLY_PROFILE_STRICT, QUOTA_OVER_QUOTA, "452 4.2.2 Mailbox full",
	  "452 4.2.2 Mailbox full" },
	{ REPLY_PROFILE_STRICT, QUOTA_TOO_BIG_MAILBOX, TOO_BIG_MAILBOX, TOO_BIG_MAILBOX },
	{ REPLY_PROFILE_STRICT, QUOTA_TOO_BIG_SYSTEM, TOO_BIG_SYSTEM, TOO_BIG_SYSTEM },
	{ REPLY_PROFILE_STRICT, QUOTA_UNKNOWN, "DUNNO", NULL },
	{ REPLY_PROFILE_STRICT, QUOTA_TEMPFAIL, TEMPFAIL, TEMPFAIL },
	{ REPLY_PROFILE_NO452, QUOTA_ACCEPT, "DUNNO", NULL },
	{ REPLY_PROFILE_NO452, QUOTA_OVER_QUOTA, "450 4.2.2 Mailbox full",
	  "450 4.2.2 Mailbox full" },
	{ REPLY_PROFILE_NO452, QUOTA_TOO_BIG_MAILBOX, TOO_BIG_MAILBOX, TOO_BIG_MAILBOX },
	{ REPLY_PROFILE_NO452, QUOTA_TOO_BIG_SYSTEM, TOO_BIG_SYSTEM, TOO_BIG_SYSTEM },
	{ REPLY_PROFILE_NO452, QUOTA_UNKNOWN, "DUNNO", NULL },
	{ REPLY_PROFILE_NO452, QUOTA_TEMPFAIL, TEMPFAIL, TEMPFAIL },
};

static void check_map(size_t i, const struct reply_set *set, enum quota_verdict verdict,
                      const char *action, const char *smtp)
{
	struct reply_line line;
	memset(&line, 'x', sizeof(line)); /* an unused line must not leak into the answer */
	const char *a = reply_policy_action(set, verdict);
	const char *l = reply_smtp(set, verdict, &line);
	if (strcmp(a, action) != 0)
		fail_msg("row %zu verdict %d: action \"%s\", want \"%s\"", i, (int)verdict, a,
		         action);
	if (smtp == NULL && l != NULL)
		fail_msg("row %zu verdict %d: smtp \"%s\", want none", i, (int)verdict, l);
	if (smtp != NULL && (l == NULL || strcmp(l, smtp) != 0))
		fail_msg("row %zu verdict %d: smtp \"%s\", want \"%s\"", i, (int)verdict,
		         l ? l : "(none)", smtp);
	if (l != NULL && l != line.text)
		fail_msg("row %zu: the line is not in the caller's buffer", i);
}

static void test_map_defaults(void **state)
{
	(void)state;
	bool seen[3][QUOTA_TEMPFAIL + 1] = { { false } };
	for (size_t i = 0; i < sizeof(map_rows) / sizeof(map_rows[0]); i++) {
		const struct map_row *r = &map_rows[i];
		struct reply_set set;
		reply_set_defaults(&set, r->profile);
		check_map(i, &set, r->verdict, r->action, r->smtp);
		seen[r->profile][r->verdict] = true;
	}
	for (int p = 0; p < 3; p++) /* the table covers every verdict under every profile */
		for (int v = 0; v <= QUOTA_TEMPFAIL; v++)
			if (!seen[p][v])
				fail_msg("profile %d verdict %d has no row", p, v);
}

/* Configured replies: which field, what the operator wrote, and the line the MTA sends. */
struct conf_row {
	enum quota_verdict verdict;
	const char *reply;
	const char *smtp;
};

static const struct conf_row conf_rows[] = {
	{ QUOTA_UNKNOWN, "DUNNO", NULL },
	{ QUOTA_UNKNOWN, "550 5.1.1 No such user", "550 5.1.1 No such user" },
	{ QUOTA_UNKNOWN, "DEFER_IF_PERMIT No such user yet", "450 4.7.1 No such user yet" },
	{ QUOTA_TEMPFAIL, "DEFER_IF_PERMIT Service unavailable", "450 4.7.1 Service unavailable" },
	{ QUOTA_TEMPFAIL, "DEFER_IF_PERMIT", "450 4.7.1 Service unavailable" },
	{ QUOTA_TEMPFAIL, "DEFER_IF_PERMITX", NULL }, /* not the keyword (validation refuses) */
	{ QUOTA_TEMPFAIL, "421 4.3.0 Later", "421 4.3.0 Later" },
	{ QUOTA_OVER_QUOTA, "552", "552" },
	{ QUOTA_TOO_BIG_MAILBOX, "452 4.3.1 Too big for now", "452 4.3.1 Too big for now" },
	{ QUOTA_TOO_BIG_SYSTEM, "552 5.3.4 Nope", "552 5.3.4 Nope" },
	{ QUOTA_ACCEPT, "unused", NULL }, /* accept is DUNNO whatever is configured */
};

static char *field(struct reply_set *set, enum quota_verdict v)
{
	switch (v) {
	case QUOTA_OVER_QUOTA:
		return set->over_quota;
	case QUOTA_TOO_BIG_MAILBOX:
		return set->too_big_mailbox;
	case QUOTA_TOO_BIG_SYSTEM:
		return set->too_big_system;
	case QUOTA_UNKNOWN:
		return set->unknown;
	case QUOTA_TEMPFAIL:
		return set->tempfail;
	case QUOTA_ACCEPT:
		break;
	}
	return NULL;
}

static void test_map_configured(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(conf_rows) / sizeof(conf_rows[0]); i++) {
		const struct conf_row *r = &conf_rows[i];
		struct reply_set set;
		reply_set_defaults(&set, REPLY_PROFILE_CONVENTIONAL);
		char *f = field(&set, r->verdict);
		if (f != NULL)
			memcpy(f, r->reply, strlen(r->reply) + 1);
		check_map(i, &set, r->verdict, f != NULL ? r->reply : "DUNNO", r->smtp);
	}
}

/* The longest valid replies give lines that still fit, uncut. */
static void test_map_longest(void **state)
{
	(void)state;
	struct reply_set set;
	struct reply_line line;
	char want[REPLY_MAX + 1];
	reply_set_defaults(&set, REPLY_PROFILE_CONVENTIONAL);
	memset(set.over_quota, 'a', REPLY_MAX);
	memcpy(set.over_quota, "552 5.2.2 ", 10);
	set.over_quota[REPLY_MAX] = '\0';
	assert_string_equal(reply_smtp(&set, QUOTA_OVER_QUOTA, &line), set.over_quota);
	memset(set.tempfail, 'b', REPLY_MAX);
	memcpy(set.tempfail, "DEFER_IF_PERMIT ", 16);
	set.tempfail[REPLY_MAX] = '\0';
	const char *err;
	assert_int_equal(reply_validate(REPLY_KIND_TEMPFAIL, set.tempfail, &err), 0);
	memset(want, 'b', sizeof(want));
	memcpy(want, "450 4.7.1 ", 10);
	want[REPLY_MAX - 6] = '\0'; /* "DEFER_IF_PERMIT " is 6 octets longer than "450 4.7.1 " */
	assert_string_equal(reply_smtp(&set, QUOTA_TEMPFAIL, &line), want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate),       cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_profiles),       cmocka_unit_test(test_map_defaults),
		cmocka_unit_test(test_map_configured), cmocka_unit_test(test_map_longest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
