/* Tests for the Exim readsocket protocol's pure part: finding the request line (terminators,
   the end of input, the length limit, NUL), parsing "<recipient> <size>", the verdict → reply
   line rule under each reply profile and configured texts, and the reply writer (one line,
   sanitised, cut, room). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "exim.h"

struct line_case {
	const char *in;
	size_t len; /* 0: strlen(in) */
	bool at_eof;
	int rc;
	size_t line_len, used; /* with rc 1 */
	const char *error;     /* with rc -1: a fragment */
};

static const struct line_case line_cases[] = {
	{ "a@b 1\n", 0, false, 1, 5, 6, NULL },
	{ "a@b 1\r\n", 0, false, 1, 5, 7, NULL },
	{ "a@b 1\nmore", 0, false, 1, 5, 6, NULL }, /* the caller answers one and closes */
	{ "a@b 1", 0, false, 0, 0, 0, NULL },       /* more may come */
	{ "a@b 1", 0, true, 1, 5, 5, NULL },        /* Exim half-closed: that is the request */
	{ "a@b 1\r", 0, true, 1, 5, 6, NULL },
	{ "", 0, false, 0, 0, 0, NULL },
	{ "", 0, true, 0, 0, 0, NULL }, /* nothing asked, nothing answered */
	{ "\n", 0, false, 1, 0, 1, NULL },
	{ "a\0b 1\n", 6, false, -1, 0, 0, "NUL" },
	{ "a@b 1\n\0", 7, false, 1, 5, 6, NULL }, /* after the line: not looked at */
};

static void test_line_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
		const struct line_case *c = &line_cases[i];
		size_t len = c->len ? c->len : strlen(c->in), llen = 99, used = 99;
		const char *err = NULL;
		int rc = exim_request_line(c->in, len, c->at_eof, &llen, &used, &err);
		if (rc != c->rc)
			fail_msg("case %zu: rc %d, want %d", i, rc, c->rc);
		if (rc == 1 && (llen != c->line_len || used != c->used))
			fail_msg("case %zu: line %zu used %zu, want %zu %zu", i, llen, used,
			         c->line_len, c->used);
		if (rc < 0 && strstr(err, c->error) == NULL)
			fail_msg("case %zu: error \"%s\", want \"%s\"", i, err, c->error);
	}
}

static void test_line_limit(void **state)
{
	(void)state;
	char big[EXIM_REQUEST_MAX + 10];
	size_t llen, used;
	const char *err = NULL;
	memset(big, 'x', sizeof(big));
	/* the longest line that fits: EXIM_REQUEST_MAX with its newline */
	big[EXIM_REQUEST_MAX - 1] = '\n';
	assert_int_equal(exim_request_line(big, EXIM_REQUEST_MAX, false, &llen, &used, &err), 1);
	assert_int_equal(llen, EXIM_REQUEST_MAX - 1);
	big[EXIM_REQUEST_MAX - 1] = 'x';
	assert_int_equal(exim_request_line(big, EXIM_REQUEST_MAX - 1, false, &llen, &used, &err),
	                 0);
	assert_int_equal(exim_request_line(big, EXIM_REQUEST_MAX, false, &llen, &used, &err), -1);
	assert_non_null(strstr(err, "too long"));
	/* a newline beyond the limit does not count */
	big[EXIM_REQUEST_MAX + 2] = '\n';
	assert_int_equal(exim_request_line(big, sizeof(big), false, &llen, &used, &err), -1);
}

struct parse_case {
	const char *in;
	int rc;
	const char *rcpt; /* with rc 0 */
	uint64_t size;
	bool has_size;
	const char *error; /* with rc -1: a fragment */
};

static const struct parse_case parse_cases[] = {
	{ "user@example.test 1000", 0, "user@example.test", 1000, true, NULL },
	{ "User+Tag@Example.TEST 0", 0, "User+Tag@Example.TEST", 0, true, NULL },
	{ "user@example.test -1", 0, "user@example.test", 0, false, NULL }, /* no SIZE */
	{ "\"a b\"@example.test 5", 0, "\"a b\"@example.test", 5, true, NULL },
	{ "a@b 18446744073709551615", 0, "a@b", UINT64_MAX, true, NULL },
	{ "a@b 18446744073709551616", -1, NULL, 0, false, "decimal" },
	{ "a@b 000000000000000000001", -1, NULL, 0, false, "decimal" }, /* 21 digits */
	{ "a@b +1", -1, NULL, 0, false, "decimal" },
	{ "a@b -2", -1, NULL, 0, false, "decimal" },
	{ "a@b 1k", -1, NULL, 0, false, "decimal" },
	{ "a@b ", -1, NULL, 0, false, "decimal" },
	{ "a@b", -1, NULL, 0, false, "<recipient> <size>" },
	{ "", -1, NULL, 0, false, "<recipient> <size>" },
	{ " 5", -1, NULL, 0, false, "empty recipient" },
	{ "a@b  5", 0, "a@b ", 5, true, NULL }, /* the address rules refuse it later */
};

static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct exim_request req;
		const char *err = NULL;
		int rc = exim_request_parse(c->in, strlen(c->in), &req, &err);
		if (rc != c->rc)
			fail_msg("case %zu (%s): rc %d, want %d", i, c->in, rc, c->rc);
		if (rc == 0) {
			assert_int_equal(req.rcpt_len, strlen(c->rcpt));
			assert_memory_equal(req.rcpt, c->rcpt, req.rcpt_len);
			assert_true(req.size == c->size);
			assert_int_equal(req.has_size, c->has_size);
		} else if (strstr(err, c->error) == NULL) {
			fail_msg("case %zu (%s): error \"%s\", want \"%s\"", i, c->in, err,
			         c->error);
		}
	}
}

struct verdict_case {
	enum reply_profile profile;
	const char *unknown;  /* configured unknown-recipient action, NULL: the default */
	const char *tempfail; /* configured tempfail reply, NULL: the default */
	enum quota_verdict verdict;
	const char *want;
};

static const struct verdict_case verdict_cases[] = {
	{ REPLY_PROFILE_CONVENTIONAL, NULL, NULL, QUOTA_ACCEPT, "OK" },
	{ REPLY_PROFILE_CONVENTIONAL, NULL, NULL, QUOTA_OVER_QUOTA, "552 5.2.2 Mailbox full" },
	{ REPLY_PROFILE_STRICT, NULL, NULL, QUOTA_OVER_QUOTA, "452 4.2.2 Mailbox full" },
	{ REPLY_PROFILE_CONVENTIONAL, NULL, NULL, QUOTA_TOO_BIG_MAILBOX,
	  "552 5.2.3 Message length exceeds administrative limit" },
	{ REPLY_PROFILE_CONVENTIONAL, NULL, NULL, QUOTA_TOO_BIG_SYSTEM,
	  "552 5.3.4 Message too big for system" },
	{ REPLY_PROFILE_CONVENTIONAL, NULL, NULL, QUOTA_UNKNOWN, "OK" }, /* Exim decides */
	{ REPLY_PROFILE_CONVENTIONAL, "550 5.1.1 No such user", NULL, QUOTA_UNKNOWN,
	  "550 5.1.1 No such user" },
	{ REPLY_PROFILE_CONVENTIONAL, "DEFER_IF_PERMIT Unknown here", NULL, QUOTA_UNKNOWN,
	  "450 4.7.1 Unknown here" },
	{ REPLY_PROFILE_CONVENTIONAL, NULL, "451 4.3.0 Try later", QUOTA_TEMPFAIL,
	  "451 4.3.0 Try later" },
};

static void test_verdict_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(verdict_cases) / sizeof(verdict_cases[0]); i++) {
		const struct verdict_case *c = &verdict_cases[i];
		struct reply_set set;
		struct reply_line line;
		reply_set_defaults(&set, c->profile);
		if (c->unknown != NULL)
			assert_int_equal(str_copy(set.unknown, c->unknown, sizeof(set.unknown)), 0);
		if (c->tempfail != NULL)
			assert_int_equal(str_copy(set.tempfail, c->tempfail, sizeof(set.tempfail)),
			                 0);
		const char *got = exim_reply(&set, c->verdict, &line);
		if (strcmp(got, c->want) != 0)
			fail_msg("case %zu: \"%s\", want \"%s\"", i, got, c->want);
	}
	/* the default tempfail reply is a 4xx line, for `defer message =` */
	struct reply_set set;
	struct reply_line line;
	reply_set_defaults(&set, REPLY_PROFILE_CONVENTIONAL);
	assert_int_equal(exim_reply(&set, QUOTA_TEMPFAIL, &line)[0], '4');
	assert_int_equal(EXIM_REPLY_BAD_REQUEST[0], '4');
}

static void test_reply_writer(void **state)
{
	(void)state;
	struct buf out;
	buf_init(&out, 4096);
	assert_int_equal(exim_reply_append(&out, "552 5.2.2 Mailbox full"), 0);
	assert_string_equal(out.data, "552 5.2.2 Mailbox full\n");
	buf_reset(&out);
	assert_int_equal(exim_reply_append(&out, "a\r\nb\tc\x7f\xff"), 0);
	assert_string_equal(out.data, "a??b?c??\n");
	buf_reset(&out);
	char text[EXIM_REPLY_MAX + 50];
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(exim_reply_append(&out, text), 0);
	assert_int_equal(out.len, EXIM_REPLY_MAX);
	assert_int_equal(out.data[out.len - 1], '\n');
	buf_free(&out);
	buf_init(&out, 3); /* no room: nothing is written */
	assert_int_equal(exim_reply_append(&out, "OK"), 0);
	assert_int_equal(exim_reply_append(&out, "OK"), -1);
	assert_int_equal(out.len, 3);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_table),   cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_parse_table),  cmocka_unit_test(test_verdict_table),
		cmocka_unit_test(test_reply_writer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
