/* Tests for the configuration table: defaults, parsing, validation and error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* Reload: each parameter's class, as config.c's table says and the daemon's readers require. */
static void test_key_class(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		int live;
	} cases[] = {
		{ "reply_over_quota", 1 },
		{ "reply_profile", 1 },
		{ "unknown_recipient_action", 1 },
		{ "log_level", 1 },
		{ "policy_tcp_allow", 1 },
		{ "policy_max_connections_per_client", 1 },
		{ "policy_idle_timeout", 1 },
		{ "http_cors_origins", 1 },
		{ "http_request_timeout", 1 },
		{ "precheck_rate", 1 },
		/* a bucket holding more than a lowered burst is cut to it */
		{ "precheck_burst", 1 },
		{ "grace_percent", 1 },
		{ "message_size_limit", 1 },
		{ "alias_policy", 1 },
		{ "warning_retry_max", 1 },
		{ "shutdown_timeout", 1 },
		/* sockets, pools, threads and what HTTP worker jobs read (they hold no lock) */
		{ "policy_socket", 0 },
		{ "policy_socket_mode", 0 },
		{ "policy_tcp_listen", 0 },
		{ "policy_max_connections", 0 }, /* checked against RLIMIT_NOFILE at start */
		{ "http_listen", 0 },
		{ "http_threads", 0 },
		{ "http_workers", 0 },
		{ "http_max_connections", 0 },
		{ "database_url", 0 },
		{ "database_pool_size", 0 },
		{ "recipient_delimiter", 0 },
		{ "fold_local_part", 0 },
		{ "self_token_max_lifetime", 0 },
		{ "warning_webhook_url", 1 },
		{ "warning_mail_template", 1 },
		{ "nosuch", -1 },
		{ "", -1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (config_key_live(cases[i].name) != cases[i].live)
			fail_msg("%s: %d, want %d", cases[i].name, config_key_live(cases[i].name),
			         cases[i].live);
	/* every row of the table has a class */
	size_t n = 0;
	for (const char *k; (k = config_key_name(n)) != NULL; n++)
		assert_true(config_key_live(k) >= 0);
	assert_true(n > 60);
}

/* config_diff(): which parameters of each class differ from the defaults after text. */
static void test_diff(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		size_t nlive, nrestart;
		const char *live, *restart;
	} cases[] = {
		{ "", 0, 0, "", "" },
		/* a value set to its default is no change */
		{ "log_level = info\npolicy_socket = /run/mailquota/policy.sock\n", 0, 0, "", "" },
		{ "log_level = warn\nreply_over_quota = 552 5.2.2 Full\n", 2, 0,
		  "reply_over_quota,log_level", "" },
		{ "http_threads = 2\npolicy_socket = /tmp/p.sock\n", 0, 2, "",
		  "policy_socket,http_threads" },
		{ "fold_local_part = no\ngrace_percent = 5\npolicy_tcp_allow = 10.0.0.0/8\n", 2, 1,
		  "policy_tcp_allow,grace_percent", "fold_local_part" },
		/* the same listen address written as a bare port is the same value */
		{ "http_listen = 8080\n", 0, 0, "", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config a, b;
		const char *err = "";
		char live[256], restart[256];
		config_init(&a);
		config_init(&b);
		if (config_parse_string(&b, cases[i].text, &err) < 0)
			fail_msg("%s: %s", cases[i].text, err);
		assert_int_equal(config_diff(&a, &b, true, live, sizeof(live)), cases[i].nlive);
		assert_int_equal(config_diff(&a, &b, false, restart, sizeof(restart)),
		                 cases[i].nrestart);
		assert_string_equal(live, cases[i].live);
		assert_string_equal(restart, cases[i].restart);
		config_free(&a);
		config_free(&b);
	}
}

/* A list that does not fit ends in "...", within the buffer, and still counts every name. */
static void test_diff_cut(void **state)
{
	(void)state;
	struct config a, b;
	const char *err = "";
	config_init(&a);
	config_init(&b);
	assert_int_equal(config_parse_string(&b,
	                                     "reply_over_quota = 552 5.2.2 Full\n"
	                                     "log_level = warn\ngrace_percent = 5\n",
	                                     &err),
	                 0);
	static const struct {
		size_t size;
		const char *want;
	} cases[] = {
		{ 64, "grace_percent,reply_over_quota,log_level" },
		/* a name is written only with room left for ",..." after it */
		{ 45, "grace_percent,reply_over_quota,log_level" },
		{ 44, "grace_percent,reply_over_quota,..." },
		{ 35, "grace_percent,reply_over_quota,..." },
		{ 34, "grace_percent,..." },
		{ 18, "grace_percent,..." },
		{ 17, "..." },
		{ 5, "..." },
		{ 4, "" },
		{ 1, "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64];
		memset(out, 'x', sizeof(out));
		assert_int_equal(config_diff(&a, &b, true, out, cases[i].size), 3);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("size %zu: \"%s\", want \"%s\"", cases[i].size, out,
			         cases[i].want);
	}
	config_free(&a);
	config_free(&b);
}

/* config_apply_live(): live values and what derives from them move; restart-only ones stay. */
static void test_apply_live(void **state)
{
	(void)state;
	struct config run, fresh;
	const char *err = "";
	config_init(&run);
	config_init(&fresh);
	assert_int_equal(config_parse_string(&fresh,
	                                     "reply_profile = strict\n"
	                                     "reply_tempfail = 450 4.3.0 Later\n"
	                                     "unknown_recipient_action = 550 5.1.1 No such user\n"
	                                     "log_level = error\n"
	                                     "alias_policy = all\n"
	                                     "policy_tcp_allow = 10.0.0.0/8 192.168.0.0/16\n"
	                                     "http_cors_origins = https://a.example\n"
	                                     "precheck_rate = 7\n"
	                                     "message_size_limit = 1M\n"
	                                     "policy_socket = /tmp/other.sock\n"
	                                     "http_threads = 8\n"
	                                     "recipient_delimiter = -\n"
	                                     "database_url = dbname=other\n",
	                                     &err),
	                 0);
	config_apply_live(&run, &fresh);
	/* live: the values and the derived fields */
	assert_string_equal(run.reply_profile, "strict");
	assert_int_equal(run.profile, REPLY_PROFILE_STRICT);
	assert_string_equal(run.replies.over_quota, "452 4.2.2 Mailbox full");
	assert_string_equal(run.replies.tempfail, "450 4.3.0 Later");
	assert_string_equal(run.replies.unknown, "550 5.1.1 No such user");
	assert_int_equal(run.level, LOG_LEVEL_ERROR);
	assert_int_equal(run.alias_rule, ALIAS_POLICY_ALL);
	assert_int_equal(run.policy_tcp_allow_list.n, 2);
	assert_string_equal(run.http_cors_origins, "https://a.example");
	assert_true(run.precheck_rate == 7);
	assert_true(run.message_size_limit == 1024 * 1024);
	/* restart-only: untouched, and the address rules still follow the running delimiter */
	assert_string_equal(run.policy_socket, "/run/mailquota/policy.sock");
	assert_true(run.http_threads == 1);
	assert_string_equal(run.recipient_delimiter, "+");
	assert_string_equal(run.address_rules.delimiters, "+");
	assert_string_equal(run.database_url, "");
	/* fresh holds the old strings now, to be freed by its owner */
	assert_string_equal(fresh.reply_profile, "conventional");
	assert_string_equal(fresh.http_cors_origins, "");
	/* nothing live differs any more from a configuration loaded from the same text */
	struct config again;
	char names[256];
	config_init(&again);
	assert_int_equal(config_parse_string(&again,
	                                     "reply_profile = strict\n"
	                                     "reply_tempfail = 450 4.3.0 Later\n"
	                                     "unknown_recipient_action = 550 5.1.1 No "
	                                     "such user\n"
	                                     "log_level = error\nalias_policy = all\n"
	                                     "policy_tcp_allow = 10.0.0.0/8 "
	                                     "192.168.0.0/16\n"
	                                     "http_cors_origins = https://a.example\n"
	                                     "precheck_rate = 7\n"
	                                     "message_size_limit = 1M\n",
	                                     &err),
	                 0);
	assert_int_equal(config_diff(&run, &again, true, names, sizeof(names)), 0);
	config_free(&again);
	config_free(&fresh);
	config_free(&run);
}

/* docs/configuration.md's list of restart-only parameters is the table's. */
static void test_doc_restart_list(void **state)
{
	(void)state;
	FILE *f = fopen(MQ_SOURCE_DIR "/docs/configuration.md", "r");
	assert_non_null(f);
	char line[512], doc[4096] = "", table[4096] = "";
	bool in = false;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "<!-- restart-only:begin") != NULL) {
			in = true;
			continue;
		}
		if (strstr(line, "<!-- restart-only:end") != NULL)
			break;
		/* one "`name`" after another, separated by commas */
		for (char *p = line; in && (p = strchr(p, '`')) != NULL;) {
			char *end = strchr(p + 1, '`');
			assert_non_null(end);
			*end = '\0';
			strcat(doc, p + 1);
			strcat(doc, " ");
			p = end + 1;
		}
	}
	fclose(f);
	for (size_t i = 0; config_key_name(i) != NULL; i++)
		if (config_key_live(config_key_name(i)) == 0) {
			strcat(table, config_key_name(i));
			strcat(table, " ");
		}
	assert_string_equal(doc, table);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),         cmocka_unit_test(test_parse),
		cmocka_unit_test(test_errors),           cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_origins),          cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_key_class),        cmocka_unit_test(test_diff),
		cmocka_unit_test(test_diff_cut),         cmocka_unit_test(test_apply_live),
		cmocka_unit_test(test_doc_restart_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
