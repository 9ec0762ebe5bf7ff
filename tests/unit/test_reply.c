/* Table tests for reply profiles, validation and the SMTP line mapping. */
#include <setjmp.h>
#include <stdarg.h>
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
	struct reply_set set;
	assert_int_equal(reply_profile_parse("conventional", &p), 0);
	reply_set_defaults(&set, p);
	assert_string_equal(reply_for(&set, QUOTA_OVER_QUOTA), "552 5.2.2 Mailbox full");
	assert_int_equal(reply_profile_parse("strict", &p), 0);
	reply_set_defaults(&set, p);
	assert_string_equal(reply_for(&set, QUOTA_OVER_QUOTA), "452 4.2.2 Mailbox full");
	assert_int_equal(reply_profile_parse("no452", &p), 0);
	reply_set_defaults(&set, p);
	assert_string_equal(reply_for(&set, QUOTA_OVER_QUOTA), "450 4.2.2 Mailbox full");
	assert_int_equal(reply_profile_parse("lenient", &p), -1);

	assert_string_equal(reply_for(&set, QUOTA_ACCEPT), "DUNNO");
	assert_string_equal(reply_for(&set, QUOTA_UNKNOWN), "DUNNO");
	assert_string_equal(reply_for(&set, QUOTA_TOO_BIG_MAILBOX),
	                    "552 5.2.3 Message length exceeds administrative limit");
	assert_string_equal(reply_for(&set, QUOTA_TOO_BIG_SYSTEM),
	                    "552 5.3.4 Message too big for system");
	assert_string_equal(reply_for(&set, QUOTA_TEMPFAIL),
	                    "451 4.3.0 Quota service temporarily unavailable");
	/* every default passes its own validation */
	const char *err;
	assert_int_equal(reply_validate(REPLY_KIND_REFUSAL, set.over_quota, &err), 0);
	assert_int_equal(reply_validate(REPLY_KIND_REFUSAL, set.too_big_mailbox, &err), 0);
	assert_int_equal(reply_validate(REPLY_KIND_REFUSAL, set.too_big_system, &err), 0);
	assert_int_equal(reply_validate(REPLY_KIND_TEMPFAIL, set.tempfail, &err), 0);
	assert_int_equal(reply_validate(REPLY_KIND_UNKNOWN, set.unknown, &err), 0);
}

static void test_smtp_line(void **state)
{
	(void)state;
	char out[64];
	assert_null(reply_smtp_line("DUNNO", out, sizeof(out)));
	assert_string_equal(reply_smtp_line("552 5.2.2 Full", out, sizeof(out)), "552 5.2.2 Full");
	assert_string_equal(reply_smtp_line("DEFER_IF_PERMIT Later", out, sizeof(out)),
	                    "450 4.7.1 Later");
	assert_null(reply_smtp_line("552 5.2.2 Full", out, 5)); /* truncation is refused */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_profiles),
		cmocka_unit_test(test_smtp_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
