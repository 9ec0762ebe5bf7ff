/* Tests for the configuration table: defaults, parsing, validation and error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "hostport.h"

static void test_defaults(void **state)
{
	(void)state;
	struct config c;
	config_init(&c);
	assert_string_equal(c.policy_socket, "/run/mailquota/policy.sock");
	assert_true(c.policy_idle_timeout > 300); /* longer than Postfix's max_idle */
	assert_true(c.fold_local_part);
	assert_string_equal(c.address_rules.delimiters, "+");
	assert_int_equal(c.profile, REPLY_PROFILE_CONVENTIONAL);
	assert_string_equal(c.replies.over_quota, "552 5.2.2 Mailbox full");
	assert_string_equal(c.replies.unknown, "DUNNO");
	assert_true(c.grace_percent == 0);
	assert_true(c.policy_socket_mode == 0660);
	config_free(&c);
}

static void test_parse(void **state)
{
	(void)state;
	struct config c;
	const char *err = "";
	config_init(&c);
	int rc = config_parse_string(&c,
	                             "# comment\n"
	                             "database_url = host=/tmp dbname=mq\n"
	                             "reply_profile = no452\n"
	                             "recipient_delimiter = +-\n"
	                             "fold_local_part = no\n"
	                             "message_size_limit = 50M\n"
	                             "policy_socket_mode = 0666\n"
	                             "policy_tcp_listen = [::1]:10040\n"
	                             "grace_percent = 10\n"
	                             "reply_too_big_mailbox = 552 5.2.3 Too big for this mailbox\n",
	                             &err);
	if (rc != 0)
		fail_msg("%s", err);
	assert_string_equal(c.database_url, "host=/tmp dbname=mq");
	assert_string_equal(c.replies.over_quota, "450 4.2.2 Mailbox full");
	assert_string_equal(c.address_rules.delimiters, "+-");
	assert_false(c.address_rules.fold_local);
	assert_true(c.message_size_limit == 50ULL * 1024 * 1024);
	assert_true(c.policy_socket_mode == 0666);
	assert_true(c.grace_percent == 10);
	assert_string_equal(c.replies.too_big_mailbox, "552 5.2.3 Too big for this mailbox");
	/* a bare port listens on loopback only */
	rc = config_parse_string(&c, "policy_tcp_listen = 10040\nhttp_listen = 8081\n", &err);
	assert_int_equal(rc, 0);
	assert_string_equal(c.policy_tcp_listen, "127.0.0.1:10040");
	assert_string_equal(c.http_listen, "127.0.0.1:8081");
	/* an explicit over-quota reply wins over the profile */
	rc = config_parse_string(&c, "reply_over_quota = 552 5.2.2 Quota exceeded\n", &err);
	assert_int_equal(rc, 0);
	assert_string_equal(c.replies.over_quota, "552 5.2.2 Quota exceeded");
	config_free(&c);
}

struct bad {
	const char *text;
	const char *expect; /* substring of the error */
};

static const struct bad bads[] = {
	{ "polcy_socket = /x\n", "line 1: unknown parameter \"polcy_socket\"" },
	{ "\n\nreply_profile = lenient\n", "reply_profile" },
	{ "reply_over_quota = 552 4.2.2 Mailbox full\n", "class" },
	{ "reply_over_quota = 554 5.2.2 Mailbox full\n", "554" },
	{ "reply_tempfail = 550 5.3.0 Down\n", "never 5xx" },
	{ "unknown_recipient_action = OK\n", "unknown_recipient_action" },
	{ "policy_idle_timeout = 0\n", "out of range" },
	{ "policy_idle_timeout = -5\n", "not a whole number" },
	{ "policy_idle_timeout = 10s\n", "not a whole number" },
	{ "message_size_limit = 10Q\n", "not a size" },
	{ "fold_local_part = maybe\n", "not yes or no" },
	{ "policy_socket_mode = 0999\n", "octal" },
	{ "policy_socket = relative.sock\n", "absolute" },
	{ "policy_tcp_listen = :10040\n", "host:port" },
	{ "policy_tcp_listen = 70000\n", "host:port" },
	{ "http_listen = 127.0.0.1:99999\n", "host:port" },
	{ "recipient_delimiter = @\n", "recipient_delimiter" },
	{ "grace_percent = 1001\n", "out of range" },
	{ "[main]\npolicy_socket = /x\n", "sections" },
	{ "just words\n", "line 1" },
	{ "log_level = loud\n", "log_level" },
	{ "http_cors_origins = panel.example\n", "http_cors_origins" },
	{ "http_cors_origins = https://\n", "http_cors_origins" },
	{ "http_cors_origins = http://a/\n", "http_cors_origins" },
	{ "http_cors_origins = https://u@a\n", "http_cors_origins" },
	{ "http_cors_origins = ,x\n", "http_cors_origins" },
	{ "http_cors_origins = **\n", "http_cors_origins" },
};

/* Origins that must pass, each at the very end of its string (no reading past it). */
static void test_origins(void **state)
{
	(void)state;
	static const char *const good[] = {
		"http_cors_origins = *\n",
		"http_cors_origins = https://a.example\n",
		"http_cors_origins = http://a.example:8080, https://b.example *\n",
		"http_cors_origins =\n",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct config c;
		const char *err = "";
		config_init(&c);
		if (config_parse_string(&c, good[i], &err) != 0)
			fail_msg("\"%s\": %s", good[i], err);
		config_free(&c);
	}
}

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct config c;
		const char *err = "";
		config_init(&c);
		int rc = config_parse_string(&c, bads[i].text, &err);
		if (rc == 0 || strstr(err, bads[i].expect) == NULL)
			fail_msg("\"%s\": rc=%d err=\"%s\", want \"%s\"", bads[i].text, rc, err,
			         bads[i].expect);
		config_free(&c);
	}
}

static void test_hostport(void **state)
{
	(void)state;
	char *h, *p;
	assert_int_equal(hostport_split("127.0.0.1:10040", &h, &p), 0);
	assert_string_equal(h, "127.0.0.1");
	assert_string_equal(p, "10040");
	free(h);
	free(p);
	assert_int_equal(hostport_split("[::1]:80", &h, &p), 0);
	assert_string_equal(h, "::1");
	free(h);
	free(p);
	assert_int_equal(hostport_split(":80", &h, &p), -1);
	assert_int_equal(hostport_split("host:0", &h, &p), -1);
	assert_int_equal(hostport_split("host:", &h, &p), -1);
	assert_int_equal(hostport_split("[::1]80", &h, &p), -1);
}

/* config_load_all(): the -o overrides of both programs, applied after the file, then checked. */
static void test_overrides(void **state)
{
	(void)state;
	struct config c;
	const char *err = NULL;
	char *ok[] = { "exim_tcp_listen=10042", "alias_policy=all", "log_level=warn" };
	config_init(&c);
	assert_int_equal(config_load_all(&c, "/dev/null/none", ok, 0, &err), -1); /* no file */
	config_free(&c);
	config_init(&c);
	assert_int_equal(config_load_all(&c, NULL, ok, 3, &err), 0);
	assert_string_equal(c.exim_tcp_listen, "127.0.0.1:10042"); /* a bare port: loopback */
	assert_int_equal(c.alias_rule, ALIAS_POLICY_ALL);
	assert_string_equal(ok[0], "exim_tcp_listen=10042"); /* the arguments are not changed */
	config_free(&c);
	static const struct {
		char *o;
		const char *error;
	} bad[] = {
		{ "nonsense", "-o nonsense: want name=value" },
		{ "nosuch=1", "-o: unknown parameter \"nosuch\"" },
		{ "http_threads=999", "-o: http_threads: 999 is out of range 1..64" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1",
		  "unknown parameter" },
		{ "alias_policy=some",
		  "alias_policy: \"some\" is not any or all" }, /* at the end */
		/* the milter would remove the daemon's socket at start */
		{ "milter_socket=unix:/run/mailquota/policy.sock",
		  "milter_socket: the same path as policy_socket" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		config_init(&c);
		char *o = bad[i].o;
		assert_int_equal(config_load_all(&c, NULL, &o, 1, &err), -1);
		if (strstr(err, bad[i].error) == NULL)
			fail_msg("%s: \"%s\", want \"%s\"", bad[i].o, err, bad[i].error);
		config_free(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults), cmocka_unit_test(test_parse),
		cmocka_unit_test(test_errors),   cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_origins),  cmocka_unit_test(test_overrides),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
