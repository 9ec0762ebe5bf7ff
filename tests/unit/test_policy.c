/* Tests for the policy protocol: the parser (golden requests, partial input, every limit), the
   state rules deciding which requests are checked, and the answer formatter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "policy.h"

/* A request as Postfix 3.7 sends it at RCPT (abridged only in values). */
static const char postfix_rcpt[] = "request=smtpd_access_policy\n"
                                   "protocol_state=RCPT\n"
                                   "protocol_name=ESMTP\n"
                                   "client_address=192.0.2.10\n"
                                   "client_name=mail.example.org\n"
                                   "reverse_client_name=mail.example.org\n"
                                   "helo_name=mail.example.org\n"
                                   "sender=alice@example.org\n"
                                   "recipient=User1+tag@Example.Test\n"
                                   "recipient_count=0\n"
                                   "queue_id=\n"
                                   "instance=1a2b.5f3e1c9a.8d4e1.0\n"
                                   "size=12345\n"
                                   "etrn_domain=\n"
                                   "stress=\n"
                                   "sasl_method=\n"
                                   "sasl_username=\n"
                                   "sasl_sender=\n"
                                   "ccert_subject=\n"
                                   "ccert_issuer=\n"
                                   "ccert_fingerprint=\n"
                                   "encryption_protocol=TLSv1.3\n"
                                   "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
                                   "encryption_keysize=256\n"
                                   "policy_context=\n"
                                   "server_address=192.0.2.1\n"
                                   "server_port=25\n"
                                   "\n";

static int parse(const char *s, struct policy_request *req, size_t *used, const char **err)
{
	return policy_parse(s, strlen(s), req, used, err);
}

static void test_postfix_rcpt(void **state)
{
	(void)state;
	struct policy_request req;
	size_t used;
	const char *err;
	assert_int_equal(parse(postfix_rcpt, &req, &used, &err), 1);
	assert_int_equal(used, strlen(postfix_rcpt));
	assert_int_equal(req.state, POLICY_STATE_RCPT);
	assert_int_equal(req.recipient.len, strlen("User1+tag@Example.Test"));
	assert_memory_equal(req.recipient.ptr, "User1+tag@Example.Test", req.recipient.len);
	assert_true(req.size == 12345);
	assert_true(req.recipient_count == 0);
	assert_int_equal(req.attrs, 27);
}

static void test_every_prefix_is_incomplete(void **state)
{
	(void)state;
	struct policy_request req;
	size_t used;
	const char *err;
	size_t n = strlen(postfix_rcpt);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(policy_parse(postfix_rcpt, i, &req, &used, &err), 0);
}

static void test_pipelined(void **state)
{
	(void)state;
	const char *two = "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@b\n\n"
	                  "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n"
	                  "recipient=c@d\nrecipient_count=1\nsize=99\n\n";
	struct policy_request req;
	size_t used;
	const char *err;
	assert_int_equal(parse(two, &req, &used, &err), 1);
	assert_memory_equal(req.recipient.ptr, "a@b", 3);
	assert_true(req.size == 0);
	assert_int_equal(parse(two + used, &req, &used, &err), 1);
	assert_int_equal(req.state, POLICY_STATE_END_OF_MESSAGE);
	assert_true(req.recipient_count == 1);
	assert_true(req.size == 99);
}

struct row {
	const char *in;
	int ret;
	const char *err_part;
};

static const struct row rows[] = {
	/* first value of a repeated attribute counts; unknown ones are ignored; CRLF tolerated */
	{ "request=smtpd_access_policy\nrecipient=first@x\nrecipient=second@x\nfoo=bar\n\n", 1,
	  NULL },
	{ "request=smtpd_access_policy\r\nprotocol_state=RCPT\r\n\r\n", 1, NULL },
	{ "request=smtpd_access_policy\nsize=\n\n", 1, NULL },
	{ "request=smtpd_access_policy\nprotocol_state=DATA\n\n", 1, NULL },
	{ "\n", -1, "missing" },
	{ "protocol_state=RCPT\n\n", -1, "missing" },
	{ "request=junk\n\n", -1, "not smtpd_access_policy" },
	{ "request=smtpd_access_policy\nnovalue\n\n", -1, "name=value" },
	{ "request=smtpd_access_policy\n=value\n\n", -1, "name=value" },
	{ "request=smtpd_access_policy\nsize=12x\n\n", -1, "size" },
	{ "request=smtpd_access_policy\nsize=-1\n\n", -1, "size" },
	{ "request=smtpd_access_policy\nsize=99999999999999999999999\n\n", -1, "size" },
	{ "request=smtpd_access_policy\nrecipient_count=two\n\n", -1, "recipient_count" },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct policy_request req;
		size_t used;
		const char *err = NULL;
		int ret = parse(rows[i].in, &req, &used, &err);
		if (ret != rows[i].ret)
			fail_msg("row %zu: got %d want %d (%s)", i, ret, rows[i].ret,
			         err ? err : "");
		if (ret < 0 && strstr(err, rows[i].err_part) == NULL)
			fail_msg("row %zu: error \"%s\" lacks \"%s\"", i, err, rows[i].err_part);
	}
	struct policy_request req;
	size_t used;
	const char *err;
	assert_int_equal(parse(rows[0].in, &req, &used, &err), 1);
	assert_memory_equal(req.recipient.ptr, "first@x", 7);
}

static void test_nul_byte(void **state)
{
	(void)state;
	const char s[] = "request=smtpd_access_policy\nrecipient=a\0b\n\n";
	struct policy_request req;
	size_t used;
	const char *err;
	assert_int_equal(policy_parse(s, sizeof(s) - 1, &req, &used, &err), -1);
}

static void test_line_limit(void **state)
{
	(void)state;
	struct buf b;
	struct policy_request req;
	size_t used;
	const char *err;
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_puts(&b, "request=smtpd_access_policy\nccert_subject="), 0);
	size_t prefix = strlen("ccert_subject=");
	for (size_t i = prefix; i < POLICY_LINE_MAX; i++)
		assert_int_equal(buf_puts(&b, "x"), 0);
	assert_int_equal(buf_puts(&b, "\n\n"), 0);
	/* exactly POLICY_LINE_MAX is fine */
	assert_int_equal(policy_parse(b.data, b.len, &req, &used, &err), 1);
	buf_reset(&b);
	assert_int_equal(buf_puts(&b, "request=smtpd_access_policy\nccert_subject="), 0);
	for (size_t i = prefix; i < POLICY_LINE_MAX + 1; i++)
		assert_int_equal(buf_puts(&b, "x"), 0);
	assert_int_equal(buf_puts(&b, "\n\n"), 0);
	assert_int_equal(policy_parse(b.data, b.len, &req, &used, &err), -1);
	/* an endless line is refused before its newline arrives */
	buf_reset(&b);
	for (size_t i = 0; i < POLICY_LINE_MAX + 10; i++)
		assert_int_equal(buf_puts(&b, "y"), 0);
	assert_int_equal(policy_parse(b.data, b.len, &req, &used, &err), -1);
	assert_non_null(strstr(err, "POLICY_LINE_MAX"));
	buf_free(&b);
}

static void test_attr_and_request_limits(void **state)
{
	(void)state;
	struct buf b;
	struct policy_request req;
	size_t used;
	const char *err;
	buf_init(&b, 1 << 22);
	assert_int_equal(buf_puts(&b, "request=smtpd_access_policy\n"), 0);
	for (int i = 1; i < POLICY_ATTRS_MAX; i++)
		assert_int_equal(buf_printf(&b, "a%d=1\n", i), 0);
	assert_int_equal(buf_puts(&b, "\n"), 0);
	assert_int_equal(policy_parse(b.data, b.len, &req, &used, &err), 1);
	b.len--; /* drop the empty line and add one attribute too many */
	assert_int_equal(buf_puts(&b, "one=more\n\n"), 0);
	assert_int_equal(policy_parse(b.data, b.len, &req, &used, &err), -1);
	assert_non_null(strstr(err, "POLICY_ATTRS_MAX"));

	/* many long lines exceed the request limit even under the attribute limit */
	buf_reset(&b);
	assert_int_equal(buf_puts(&b, "request=smtpd_access_policy\n"), 0);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(buf_printf(&b, "x%d=", i), 0);
		for (int j = 0; j < 3000; j++)
			assert_int_equal(buf_puts(&b, "z"), 0);
		assert_int_equal(buf_puts(&b, "\n"), 0);
	}
	assert_int_equal(policy_parse(b.data, b.len, &req, &used, &err), -1);
	assert_non_null(strstr(err, "POLICY_REQUEST_MAX"));
	buf_free(&b);
}

/* The state rules, applied to parsed requests. */
struct check_row {
	const char *in;   /* the attributes after request=smtpd_access_policy */
	const char *rcpt; /* the recipient to check; NULL: no check, DUNNO */
	uint64_t size;
};

static const struct check_row check_rows[] = {
	{ "protocol_state=RCPT\nrecipient=a@b\nsize=10\n", "a@b", 10 },
	{ "protocol_state=RCPT\nrecipient=a@b\n", "a@b", 0 },
	{ "protocol_state=RCPT\nrecipient=a@b\nrecipient_count=5\n", "a@b", 0 },
	{ "protocol_state=RCPT\nrecipient=\nsize=10\n", NULL, 0 },
	{ "protocol_state=RCPT\nsize=10\n", NULL, 0 },
	{ "protocol_state=END-OF-MESSAGE\nrecipient=a@b\nrecipient_count=1\nsize=99\n", "a@b", 99 },
	{ "protocol_state=END-OF-MESSAGE\nrecipient=\nrecipient_count=0\nsize=99\n", NULL, 0 },
	{ "protocol_state=END-OF-MESSAGE\nrecipient=a@b\nrecipient_count=0\nsize=99\n", NULL, 0 },
	{ "protocol_state=END-OF-MESSAGE\nrecipient=a@b\nrecipient_count=2\nsize=99\n", NULL, 0 },
	{ "protocol_state=END-OF-MESSAGE\nrecipient=a@b\nsize=99\n", NULL, 0 },
	{ "protocol_state=END-OF-MESSAGE\nrecipient=\nrecipient_count=1\n", NULL, 0 },
	{ "protocol_state=CONNECT\nrecipient=a@b\n", NULL, 0 },
	{ "protocol_state=EHLO\nrecipient=a@b\n", NULL, 0 },
	{ "protocol_state=MAIL\nrecipient=a@b\nsize=10\n", NULL, 0 },
	{ "protocol_state=DATA\nrecipient=a@b\nrecipient_count=1\n", NULL, 0 },
	{ "protocol_state=VRFY\nrecipient=a@b\n", NULL, 0 },
	{ "protocol_state=rcpt\nrecipient=a@b\n", NULL, 0 }, /* states are upper case */
	{ "recipient=a@b\n", NULL, 0 },                      /* no state at all */
};

static void test_wants_check(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(check_rows) / sizeof(check_rows[0]); i++) {
		const struct check_row *r = &check_rows[i];
		struct buf b;
		struct policy_request req;
		struct policy_check chk = { { "untouched", 9 }, 7 };
		size_t used;
		const char *err;
		buf_init(&b, 4096);
		assert_int_equal(buf_printf(&b, "request=smtpd_access_policy\n%s\n", r->in), 0);
		if (policy_parse(b.data, b.len, &req, &used, &err) != 1)
			fail_msg("row %zu does not parse", i);
		bool want = policy_wants_check(&req, &chk);
		if (want != (r->rcpt != NULL))
			fail_msg("row %zu: check %d, want %d", i, want, r->rcpt != NULL);
		if (want) {
			if (chk.recipient.len != strlen(r->rcpt) ||
			    memcmp(chk.recipient.ptr, r->rcpt, chk.recipient.len) != 0)
				fail_msg("row %zu: wrong recipient", i);
			if (chk.recipient.ptr < b.data || chk.recipient.ptr >= b.data + b.len)
				fail_msg("row %zu: recipient outside the request", i);
			if (chk.size != r->size)
				fail_msg("row %zu: size %llu, want %llu", i,
				         (unsigned long long)chk.size, (unsigned long long)r->size);
		}
		buf_free(&b);
	}
}

static void test_state_name(void **state)
{
	(void)state;
	assert_string_equal(policy_state_name(POLICY_STATE_RCPT), "RCPT");
	assert_string_equal(policy_state_name(POLICY_STATE_END_OF_MESSAGE), "END-OF-MESSAGE");
	assert_string_equal(policy_state_name(POLICY_STATE_OTHER), "OTHER");
}

struct answer_row {
	const char *action;
	const char *out;
};

static const struct answer_row answer_rows[] = {
	{ "DUNNO", "action=DUNNO\n\n" },
	{ "552 5.2.2 Mailbox full", "action=552 5.2.2 Mailbox full\n\n" },
	{ "DEFER_IF_PERMIT Service unavailable", "action=DEFER_IF_PERMIT Service unavailable\n\n" },
	{ "", "action=\n\n" },
	/* text that would end the answer early or forge a second one is defused */
	{ "DUNNO\n\naction=REJECT", "action=DUNNO??action=REJECT\n\n" },
	{ "552 full\r", "action=552 full?\n\n" },
	{ "552 \x7f\xc3\xa9\t", "action=552 ????\n\n" },
};

static void test_answer_table(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 4096);
	for (size_t i = 0; i < sizeof(answer_rows) / sizeof(answer_rows[0]); i++) {
		buf_reset(&b);
		assert_int_equal(policy_answer_append(&b, answer_rows[i].action), 0);
		if (b.len != strlen(answer_rows[i].out) ||
		    memcmp(b.data, answer_rows[i].out, b.len) != 0)
			fail_msg("row %zu: got \"%s\"", i, b.data);
	}
	/* answers are appended after what is already owed */
	buf_reset(&b);
	assert_int_equal(policy_answer_append(&b, "DUNNO"), 0);
	assert_int_equal(policy_answer_append(&b, "452 4.2.2 Mailbox full"), 0);
	assert_string_equal(b.data, "action=DUNNO\n\naction=452 4.2.2 Mailbox full\n\n");
	buf_free(&b);
}

static void test_answer_limits(void **state)
{
	(void)state;
	struct buf b;
	char action[POLICY_ACTION_MAX + 11];
	/* longer text is cut at POLICY_ACTION_MAX */
	memset(action, 'z', sizeof(action) - 1);
	action[sizeof(action) - 1] = '\0';
	buf_init(&b, 4096);
	assert_int_equal(policy_answer_append(&b, action), 0);
	assert_int_equal(b.len, strlen("action=") + POLICY_ACTION_MAX + 2);
	assert_memory_equal(b.data + b.len - 3, "z\n\n", 3);
	buf_free(&b);
	/* a full buffer takes nothing, not half an answer */
	buf_init(&b, strlen("action=DUNNO\n\n") * 2 - 1);
	assert_int_equal(policy_answer_append(&b, "DUNNO"), 0);
	assert_int_equal(policy_answer_append(&b, "DUNNO"), -1);
	assert_string_equal(b.data, "action=DUNNO\n\n");
	buf_free(&b);
	/* exactly full is fine */
	buf_init(&b, strlen("action=DUNNO\n\n") * 2);
	assert_int_equal(policy_answer_append(&b, "DUNNO"), 0);
	assert_int_equal(policy_answer_append(&b, "DUNNO"), 0);
	assert_int_equal(policy_answer_append(&b, ""), -1);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postfix_rcpt),
		cmocka_unit_test(test_every_prefix_is_incomplete),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_attr_and_request_limits),
		cmocka_unit_test(test_wants_check),
		cmocka_unit_test(test_state_name),
		cmocka_unit_test(test_answer_table),
		cmocka_unit_test(test_answer_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
