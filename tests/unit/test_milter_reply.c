/* Tests for mailquota-milter's pure part: SIZE= among MAIL FROM's ESMTP parameters (absent,
   malformed, UINT64_MAX edges, limits), the policy request written for one RCPT (attributes,
   brackets, forged lines refused, room), the daemon's answer framing, and the action → milter
   reply mapping (codes, enhanced codes, classes, '%' escaping, defaults, refusals). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "milter_reply.h"

struct size_case {
	const char *args[4]; /* NULL-terminated */
	int rc;
	uint64_t size;
};

static const struct size_case size_cases[] = {
	{ { NULL }, 1, 0 },
	{ { "BODY=8BITMIME", NULL }, 1, 0 },
	{ { "SIZE=1000", NULL }, 0, 1000 },
	{ { "size=42", NULL }, 0, 42 },
	{ { "BODY=8BITMIME", "SIZE=0", NULL }, 0, 0 },
	{ { "SIZE=18446744073709551615", NULL }, 0, UINT64_MAX },
	{ { "SIZE=18446744073709551616", NULL }, -1, 0 },
	{ { "SIZE=000000000000000000001", NULL }, -1, 0 }, /* 21 digits */
	{ { "SIZE=00000000000000000001", NULL }, 0, 1 },   /* 20 digits */
	{ { "SIZE=", NULL }, -1, 0 },
	{ { "SIZE=-1", NULL }, -1, 0 },
	{ { "SIZE=+1", NULL }, -1, 0 },
	{ { "SIZE=1 ", NULL }, -1, 0 },
	{ { "SIZE=1k", NULL }, -1, 0 },
	{ { "SIZE=1", "SIZE=2", NULL }, -1, 0 },
	{ { "SIZE", NULL }, 1, 0 },    /* not SIZE=: some other keyword */
	{ { "SIZEX=5", NULL }, 1, 0 }, /* likewise */
};

static void test_size_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
		const struct size_case *c = &size_cases[i];
		size_t n = 0;
		while (c->args[n] != NULL)
			n++;
		uint64_t size = 77;
		const char *err = NULL;
		int rc = milter_size_parse(c->args, n, &size, &err);
		if (rc != c->rc || size != c->size)
			fail_msg("case %zu: rc %d size %llu, want %d %llu", i, rc,
			         (unsigned long long)size, c->rc, (unsigned long long)c->size);
		if (rc < 0)
			assert_non_null(err);
	}
}

static void test_size_limits(void **state)
{
	(void)state;
	/* only the first MILTER_ESMTP_ARGS_MAX parameters are looked at */
	const char *args[MILTER_ESMTP_ARGS_MAX + 1];
	for (size_t i = 0; i < MILTER_ESMTP_ARGS_MAX; i++)
		args[i] = "X=1";
	args[MILTER_ESMTP_ARGS_MAX] = "SIZE=5";
	uint64_t size;
	const char *err;
	assert_int_equal(milter_size_parse(args, MILTER_ESMTP_ARGS_MAX + 1, &size, &err), 1);
	args[MILTER_ESMTP_ARGS_MAX - 1] = "SIZE=5";
	assert_int_equal(milter_size_parse(args, MILTER_ESMTP_ARGS_MAX + 1, &size, &err), 0);
	assert_int_equal(size, 5);
	/* a huge parameter is read no further than the limit */
	char *big = malloc(MILTER_ESMTP_ARG_MAX + 10);
	memset(big, '1', MILTER_ESMTP_ARG_MAX + 9);
	memcpy(big, "SIZE=", 5);
	big[MILTER_ESMTP_ARG_MAX + 9] = '\0';
	const char *one[] = { big };
	assert_int_equal(milter_size_parse(one, 1, &size, &err), -1);
	assert_int_equal(size, 0);
	free(big);
}

struct spec_case {
	const char *spec;
	int rc;
	const char *path; /* with rc 0: the Unix path, or NULL for inet */
};

static const struct spec_case spec_cases[] = {
	{ "unix:/run/mailquota-milter/milter.sock", 0, "/run/mailquota-milter/milter.sock" },
	{ "local:/a", 0, "/a" },
	{ "inet:10041@127.0.0.1", 0, NULL },
	{ "inet6:10041@::1", 0, NULL },
	{ "inet:65535@h", 0, NULL },
	{ "unix:", -1, NULL },
	{ "unix:relative", -1, NULL },
	{ "inet:10041", -1, NULL }, /* every address: refused */
	{ "inet:10041@", -1, NULL },
	{ "inet:0@h", -1, NULL },
	{ "inet:65536@h", -1, NULL },
	{ "inet:@h", -1, NULL },
	{ "inet:1@a b", -1, NULL },
	{ "inet:1@a@b", -1, NULL },
	{ "tcp:1@h", -1, NULL },
	{ "/run/x.sock", -1, NULL },
	{ "", -1, NULL },
};

static void test_spec_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(spec_cases) / sizeof(spec_cases[0]); i++) {
		const struct spec_case *c = &spec_cases[i];
		const char *path = "unset", *err = NULL;
		int rc = milter_spec_check(c->spec, &path, &err);
		if (rc != c->rc)
			fail_msg("case %zu (%s): rc %d, want %d", i, c->spec, rc, c->rc);
		if (rc < 0 || c->path == NULL) {
			assert_null(path);
			if (rc < 0)
				assert_non_null(err);
		} else {
			assert_string_equal(path, c->path);
		}
	}
}

struct request_case {
	struct milter_query q;
	const char *want;  /* the request, or NULL when refused */
	const char *error; /* a fragment, when refused */
};

#define HEAD "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"

static const struct request_case request_cases[] = {
	{ { "<user@example.test>", "<s@client.test>", "4ABC", "192.0.2.1", "m.1.1.1", 500 },
	  HEAD "recipient=user@example.test\nsender=s@client.test\nqueue_id=4ABC\n"
	       "client_address=192.0.2.1\ninstance=m.1.1.1\nsize=500\n\n",
	  NULL },
	{ { "User1+tag@EXAMPLE.test", NULL, NULL, NULL, NULL, 0 },
	  HEAD "recipient=User1+tag@EXAMPLE.test\nsize=0\n\n",
	  NULL },
	/* the null sender <> is left out, as Postfix sends an empty one */
	{ { "<a@b>", "<>", "", "", NULL, UINT64_MAX },
	  HEAD "recipient=a@b\nsize=18446744073709551615\n\n",
	  NULL },
	{ { "<>", NULL, NULL, NULL, NULL, 1 }, NULL, "empty recipient" },
	{ { "", NULL, NULL, NULL, NULL, 1 }, NULL, "empty recipient" },
	{ { NULL, NULL, NULL, NULL, NULL, 1 }, NULL, "empty recipient" },
	{ { "<a@b>\nrecipient=x@y", NULL, NULL, NULL, NULL, 1 }, NULL, "control" },
	{ { "<a@b>", "<s\r@x>", NULL, NULL, NULL, 1 }, NULL, "control" },
	{ { "<a@b>", NULL, "Q\x7f", NULL, NULL, 1 }, NULL, "control" },
};

static void test_request_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(request_cases) / sizeof(request_cases[0]); i++) {
		const struct request_case *c = &request_cases[i];
		struct buf out;
		const char *err = NULL;
		buf_init(&out, 4096);
		assert_int_equal(buf_puts(&out, "keep"), 0);
		int rc = milter_request_append(&out, &c->q, &err);
		if (c->want != NULL) {
			if (rc != 0)
				fail_msg("case %zu: refused: %s", i, err);
			assert_string_equal(out.data + 4, c->want);
		} else {
			if (rc != -1 || strstr(err, c->error) == NULL)
				fail_msg("case %zu: rc %d error %s, want %s", i, rc,
				         err ? err : "-", c->error);
			assert_string_equal(out.data, "keep"); /* unchanged */
		}
		buf_free(&out);
	}
}

static void test_request_limits(void **state)
{
	(void)state;
	char *v = malloc(MILTER_VALUE_MAX + 3);
	memset(v, 'a', MILTER_VALUE_MAX + 2);
	v[0] = '<';
	v[MILTER_VALUE_MAX + 1] = '>';
	v[MILTER_VALUE_MAX + 2] = '\0';
	struct milter_query q = { v, NULL, NULL, NULL, NULL, 1 };
	struct buf out;
	const char *err;
	buf_init(&out, 8192);
	assert_int_equal(milter_request_append(&out, &q, &err), 0); /* exactly the limit */
	buf_reset(&out);
	v[MILTER_VALUE_MAX + 1] = 'a'; /* no brackets: two octets over */
	assert_int_equal(milter_request_append(&out, &q, &err), -1);
	assert_non_null(strstr(err, "too long"));
	assert_int_equal(out.len, 0);
	free(v);
	buf_free(&out);
	/* no room: refused whole, out unchanged */
	struct milter_query small = { "a@b", NULL, NULL, NULL, NULL, 1 };
	buf_init(&out, 40);
	assert_int_equal(milter_request_append(&out, &small, &err), -1);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

struct answer_case {
	const char *in;
	int rc;
	const char *action; /* with rc 1 */
	size_t consumed;    /* with rc 1 */
};

static const struct answer_case answer_cases[] = {
	{ "action=DUNNO\n\n", 1, "DUNNO", 14 },
	{ "action=552 5.2.2 Mailbox full\n\nextra", 1, "552 5.2.2 Mailbox full", 31 },
	{ "action=DUNNO\r\n\r\n", 1, "DUNNO", 16 },
	{ "other=x\naction=OK\naction=REJECT\n\n", 1, "OK", 33 }, /* the first counts */
	{ "action=", 0, NULL, 0 },
	{ "action=DUNNO\n", 0, NULL, 0 },
	{ "", 0, NULL, 0 },
	{ "\n", -1, NULL, 0 },
	{ "other=x\n\n", -1, NULL, 0 },
	{ "garbage\n\n", -1, NULL, 0 },
	{ "HTTP/1.1 400 Bad Request\r\n", -1, NULL, 0 },
};

static void test_answer_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(answer_cases) / sizeof(answer_cases[0]); i++) {
		const struct answer_case *c = &answer_cases[i];
		const char *action = NULL, *err = NULL;
		size_t alen = 0, used = 0;
		int rc = milter_answer_parse(c->in, strlen(c->in), &action, &alen, &used, &err);
		if (rc != c->rc)
			fail_msg("case %zu: rc %d, want %d", i, rc, c->rc);
		if (rc == 1) {
			assert_int_equal(alen, strlen(c->action));
			assert_memory_equal(action, c->action, alen);
			assert_int_equal(used, c->consumed);
		}
		if (rc < 0)
			assert_non_null(err);
	}
}

static void test_answer_limit(void **state)
{
	(void)state;
	char *in = malloc(MILTER_ANSWER_MAX + 2);
	const char *action, *err;
	size_t alen, used;
	memset(in, 'x', MILTER_ANSWER_MAX + 1);
	memcpy(in, "action=", 7);
	/* MILTER_ANSWER_MAX bytes without a line end: still "more needed"; one more: refused */
	assert_int_equal(milter_answer_parse(in, MILTER_ANSWER_MAX, &action, &alen, &used, &err),
	                 0);
	assert_int_equal(
	        milter_answer_parse(in, MILTER_ANSWER_MAX + 1, &action, &alen, &used, &err), -1);
	/* an answer of exactly MILTER_ANSWER_MAX octets is taken */
	in[MILTER_ANSWER_MAX - 2] = '\n';
	in[MILTER_ANSWER_MAX - 1] = '\n';
	assert_int_equal(milter_answer_parse(in, MILTER_ANSWER_MAX, &action, &alen, &used, &err),
	                 1);
	assert_int_equal(used, MILTER_ANSWER_MAX);
	free(in);
}

struct action_case {
	const char *action;
	int rc;
	enum milter_kind kind;
	const char *code, *xcode, *text;
};

static const struct action_case action_cases[] = {
	{ "DUNNO", 0, MILTER_CONTINUE, "", "", "" },
	{ "dunno", 0, MILTER_CONTINUE, "", "", "" },
	{ "OK", 0, MILTER_CONTINUE, "", "", "" },
	{ "552 5.2.2 Mailbox full", 0, MILTER_REJECT, "552", "5.2.2", "Mailbox full" },
	{ "552 5.2.3 Message length exceeds administrative limit", 0, MILTER_REJECT, "552", "5.2.3",
	  "Message length exceeds administrative limit" },
	{ "552 5.3.4 Message too big for system", 0, MILTER_REJECT, "552", "5.3.4",
	  "Message too big for system" },
	{ "452 4.2.2 Mailbox full", 0, MILTER_TEMPFAIL, "452", "4.2.2", "Mailbox full" },
	{ "451 4.3.0 Quota service temporarily unavailable", 0, MILTER_TEMPFAIL, "451", "4.3.0",
	  "Quota service temporarily unavailable" },
	{ "550 No such user", 0, MILTER_REJECT, "550", "5.7.1", "No such user" },
	{ "450 4.7.1", 0, MILTER_TEMPFAIL, "450", "4.7.1", "Service unavailable" },
	{ "552", 0, MILTER_REJECT, "552", "5.7.1", "Recipient address rejected" },
	{ "552 4.2.2 Mailbox full", 0, MILTER_REJECT, "552", "5.2.2", "Mailbox full" },
	{ "552 5.123.456 x", 0, MILTER_REJECT, "552", "5.123.456", "x" },
	{ "552 5.1234.5 x", 0, MILTER_REJECT, "552", "5.7.1", "5.1234.5 x" }, /* not a code */
	{ "552 5.2.2x y", 0, MILTER_REJECT, "552", "5.7.1", "5.2.2x y" },
	{ "552 5.2.2 100% full", 0, MILTER_REJECT, "552", "5.2.2", "100%% full" },
	{ "552 5.2.2 %s%n", 0, MILTER_REJECT, "552", "5.2.2", "%%s%%n" },
	{ "552 5.2.2 caf\xc3\xa9\t", 0, MILTER_REJECT, "552", "5.2.2", "caf???" },
	{ "DEFER_IF_PERMIT Service is busy", 0, MILTER_TEMPFAIL, "450", "4.7.1",
	  "Service is busy" },
	{ "DEFER_IF_PERMIT", 0, MILTER_TEMPFAIL, "450", "4.7.1", "Service unavailable" },
	{ "defer_if_permit x", 0, MILTER_TEMPFAIL, "450", "4.7.1", "x" },
	{ "DEFER try later", 0, MILTER_TEMPFAIL, "450", "4.7.1", "try later" },
	{ "REJECT", 0, MILTER_REJECT, "550", "5.7.1", "Recipient address rejected" },
	{ "", -1, 0, NULL, NULL, NULL },
	{ "250 2.0.0 Ok", -1, 0, NULL, NULL, NULL },
	{ "354 go on", -1, 0, NULL, NULL, NULL },
	{ "652 x", -1, 0, NULL, NULL, NULL },
	{ "55 short", -1, 0, NULL, NULL, NULL },
	{ "5522 x", -1, 0, NULL, NULL, NULL },
	{ "DUNNOX", -1, 0, NULL, NULL, NULL },
	{ "OK fine", -1, 0, NULL, NULL, NULL },
	{ "PREPEND X-Quota: 1", -1, 0, NULL, NULL, NULL },
	{ "DEFER_IF_PERMITX", -1, 0, NULL, NULL, NULL },
	{ "HOLD", -1, 0, NULL, NULL, NULL },
};

static void test_action_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(action_cases) / sizeof(action_cases[0]); i++) {
		const struct action_case *c = &action_cases[i];
		struct milter_reply r;
		const char *err = NULL;
		int rc = milter_reply_from_action(c->action, strlen(c->action), &r, &err);
		if (rc != c->rc)
			fail_msg("case %zu (%s): rc %d, want %d", i, c->action, rc, c->rc);
		if (rc < 0) {
			assert_non_null(err);
			continue;
		}
		if (r.kind != c->kind || strcmp(r.code, c->code) != 0 ||
		    strcmp(r.xcode, c->xcode) != 0 || strcmp(r.text, c->text) != 0)
			fail_msg("case %zu (%s): %d \"%s\" \"%s\" \"%s\"", i, c->action, r.kind,
			         r.code, r.xcode, r.text);
	}
}

static void test_action_text_limit(void **state)
{
	(void)state;
	/* a text of '%' only, longer than the limit: cut to MILTER_TEXT_MAX characters, each
	   doubled, and it still fits */
	char a[10 + MILTER_TEXT_MAX + 50];
	memcpy(a, "552 5.2.2 ", 10);
	memset(a + 10, '%', MILTER_TEXT_MAX + 50);
	struct milter_reply r;
	const char *err;
	assert_int_equal(milter_reply_from_action(a, sizeof(a), &r, &err), 0);
	assert_int_equal(strlen(r.text), 2 * MILTER_TEXT_MAX);
	/* the length given is what is read: no NUL needed */
	assert_int_equal(milter_reply_from_action("DUNNO and more", 5, &r, &err), 0);
	assert_int_equal(r.kind, MILTER_CONTINUE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_table),        cmocka_unit_test(test_size_table),
		cmocka_unit_test(test_size_limits),       cmocka_unit_test(test_request_table),
		cmocka_unit_test(test_request_limits),    cmocka_unit_test(test_answer_table),
		cmocka_unit_test(test_answer_limit),      cmocka_unit_test(test_action_table),
		cmocka_unit_test(test_action_text_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
