/* Tests for the policy protocol parser: golden requests, partial input and every limit. */
#include <setjmp.h>
#include <stdarg.h>
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
