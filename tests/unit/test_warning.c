/* Table tests for warnings' pure parts: settings checks, retry delays, the webhook signature
   (against an HMAC-SHA256 test vector), templates and the rendered mail, command splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "warning.h"

static const struct address_rules rules = { .delimiters = "+", .fold_local = true };

static void test_settings(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		const char *field; /* NULL: accepted */
		const char *normalised;
	} cases[] = {
		{ "{}", NULL, "{}" },
		{ "{\"thresholds\": [80, 90, 100], \"hysteresis\": 5}", NULL,
		  "{\"thresholds\": [80, 90, 100], \"hysteresis\": 5}" },
		{ "{\"thresholds\": []}", NULL, "{\"thresholds\": []}" },
		{ "{\"thresholds\": [1, 1000]}", NULL, "{\"thresholds\": [1, 1000]}" },
		{ "{\"channels\": [\"mail\", \"webhook\"]}", NULL,
		  "{\"channels\": [\"mail\", \"webhook\"]}" },
		{ "{\"domains\": {\"Example.ORG\": null}}", NULL,
		  "{\"domains\": {\"example.org\": null}}" },
		{ "{\"domains\": {\"a.test\": {\"thresholds\": null, \"hysteresis\": 2}}}", NULL,
		  "{\"domains\": {\"a.test\": {\"thresholds\": null, \"hysteresis\": 2}}}" },
		{ "{\"thresholds\": [90, 80]}", "thresholds", NULL },
		{ "{\"thresholds\": [80, 80]}", "thresholds", NULL },
		{ "{\"thresholds\": [0]}", "thresholds", NULL },
		{ "{\"thresholds\": [1001]}", "thresholds", NULL },
		{ "{\"thresholds\": [1,2,3,4,5,6,7,8,9,10,11]}", "thresholds", NULL },
		{ "{\"thresholds\": [80.5]}", "thresholds", NULL },
		{ "{\"thresholds\": null}", "thresholds", NULL },
		{ "{\"hysteresis\": 51}", "hysteresis", NULL },
		{ "{\"hysteresis\": -1}", "hysteresis", NULL },
		{ "{\"hysteresis\": \"5\"}", "hysteresis", NULL },
		{ "{\"channels\": [\"sms\"]}", "channels", NULL },
		{ "{\"channels\": [\"mail\", \"mail\"]}", "channels", NULL },
		{ "{\"channels\": \"mail\"}", "channels", NULL },
		{ "{\"domains\": []}", "domains", NULL },
		{ "{\"domains\": {\"no domain\": null}}", "domains", NULL },
		{ "{\"domains\": {\"a.test\": 5}}", "domains", NULL },
		{ "{\"domains\": {\"a.test\": {\"colour\": 1}}}", "domains", NULL },
		{ "{\"domains\": {\"a.test\": {\"hysteresis\": 99}}}", "hysteresis", NULL },
		{ "{\"colour\": 1}", "colour", NULL },
		{ "[]", "", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *body = json_loads(cases[i].body, 0, NULL), *fields = NULL;
		assert_non_null(body);
		const char *field = NULL, *why = NULL;
		int rc = warning_settings_check(body, &rules, &fields, &field, &why);
		if (cases[i].field == NULL) {
			if (rc != 0)
				fail_msg("case %zu refused: %s %s", i, field, why);
			json_t *want = json_loads(cases[i].normalised, 0, NULL);
			if (!json_equal(fields, want))
				fail_msg("case %zu: got %s", i, json_dumps(fields, JSON_COMPACT));
			json_decref(want);
			json_decref(fields);
		} else {
			if (rc != -1)
				fail_msg("case %zu accepted", i);
			assert_string_equal(field, cases[i].field);
			assert_non_null(why);
		}
		json_decref(body);
	}
}

static void test_backoff(void **state)
{
	(void)state;
	/* rnd % 401 picks the factor: 0 -> 0.8, 200 -> 1.0, 400 -> 1.2 */
	assert_int_equal(warning_backoff_ms(1, 30, 3600, 200), 30000);
	assert_int_equal(warning_backoff_ms(2, 30, 3600, 200), 60000);
	assert_int_equal(warning_backoff_ms(3, 30, 3600, 200), 120000);
	assert_int_equal(warning_backoff_ms(8, 30, 3600, 200), 3600000); /* capped */
	assert_int_equal(warning_backoff_ms(1000000, 30, 3600, 200), 3600000);
	assert_int_equal(warning_backoff_ms(1, 30, 3600, 0), 24000);
	assert_int_equal(warning_backoff_ms(1, 30, 3600, 400), 36000);
	assert_int_equal(warning_backoff_ms(0, 1, 1, 200), 1000);
	assert_int_equal(warning_backoff_ms(1, 604800, 604800, 400), 725760000);
}

static void test_signature(void **state)
{
	(void)state;
	char a[WARNING_SIGNATURE_MAX], b[WARNING_SIGNATURE_MAX];
	const uint8_t key[] = "Jefe";
	warning_signature(key, 4, 1700000000, "{}", 2, a);
	warning_signature(key, 4, 1700000000, "{}", 2, b);
	assert_string_equal(a, b);
	assert_int_equal(strncmp(a, "t=1700000000,v1=", 16), 0);
	assert_int_equal(strlen(a), 16 + 64);
	warning_signature(key, 4, 1700000001, "{}", 2, b);
	assert_string_not_equal(a + 16, b + 16); /* the time is signed too */
	/* HMAC-SHA256("key", "0." + fox) by another implementation (Python's hmac module, as a
	   receiver would check it): python3 -c 'import hmac, hashlib; print(hmac.new(b"key",
	   b"0.The quick brown fox jumps over the lazy dog", hashlib.sha256).hexdigest())' */
	const char *fox = "The quick brown fox jumps over the lazy dog";
	warning_signature((const uint8_t *)"key", 3, 0, fox, strlen(fox), a);
	assert_string_equal(a, "t=0,v1="
	                       "8511f28f7a1949f0c42772b447d68b2daf760f5f0439a20a17e3b4e7cd395763");
}

static const struct warning_event event = {
	.event_id = "0b6c8f8e-1d2a-4c55-9f0e-3f2d1c0b9a87",
	.address = "bob@demo.test",
	.resource = WARNING_STORAGE,
	.threshold = 90,
	.percent = "93.4",
	.used = 9793700,
	.limit = 10485760,
	.created_at = "2026-11-27T09:55:00.000000Z",
};

static void test_template_check(void **state)
{
	(void)state;
	static const struct {
		const char *tmpl;
		unsigned line; /* 0: accepted */
	} cases[] = {
		{ warning_default_template, 0 },
		{ "Subject: hi\n\nbody\n", 0 },
		{ "Subject: {percent} %\nX-Tag: {{x}}\n\n{address} {resource} {threshold} {used} "
		  "{limit} {event_id}\n",
		  0 },
		{ "Subject: long\n  folded\n\nbody", 0 },
		{ "subject: case\n\nbody", 0 },
		{ "Subject: hi\nTopic: quota\nToken: x\nX-Mailquota: y\n\nbody", 0 },
		{ "Subject: hi\nX-Mailquota-Event: forged\n\nbody", 2 },
		{ "Subject: hi\n", 2 },                     /* no body */
		{ "X-Other: hi\n\nbody\n", 4 },             /* no Subject */
		{ "Subject: hi\nFrom: me@x\n\nbody\n", 2 }, /* ours */
		{ "Subject: hi\nContent-Type: text/html\n\nbody\n", 2 },
		{ "Subject: hi\nAuto-Submitted: no\n\nbody\n", 2 },
		{ "Subject: {nope}\n\nbody\n", 1 },
		{ "Subject: hi\n\nbody {used\n", 3 },
		{ "Subject: hi\nnot a header\n\nbody\n", 2 },
		{ "Subject: hi\n\nbell \a\n", 3 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = NULL;
		unsigned line = 0;
		int rc = warning_template_check(cases[i].tmpl, &why, &line);
		if (cases[i].line == 0 && rc != 0)
			fail_msg("case %zu refused at line %u: %s", i, line, why);
		if (cases[i].line != 0 && (rc != -1 || line != cases[i].line))
			fail_msg("case %zu: rc %d line %u (want line %u)", i, rc, line,
			         cases[i].line);
	}
}

static void test_render(void **state)
{
	(void)state;
	struct buf out;
	buf_init(&out, WARNING_MAIL_MAX);
	assert_int_equal(warning_mail_render(&event, warning_default_template,
	                                     "Postmaster <postmaster@demo.test>",
	                                     "Fri, 27 Nov 2026 09:55:01 +0000", &out),
	                 0);
	const char *want_head =
	        "From: Postmaster <postmaster@demo.test>\n"
	        "To: bob@demo.test\n"
	        "Date: Fri, 27 Nov 2026 09:55:01 +0000\n"
	        "Message-ID: <warning.0b6c8f8e-1d2a-4c55-9f0e-3f2d1c0b9a87@demo.test>\n"
	        "Auto-Submitted: auto-generated\n";
	assert_int_equal(strncmp(out.data, want_head, strlen(want_head)), 0);
	assert_non_null(strstr(out.data, "\nSubject: Your mailbox is 93.4 % full\n\n"));
	assert_non_null(strstr(out.data,
	                       "reached 90 % of its storage limit:\nit holds 9.3 MiB of 10 "
	                       "MiB."));
	buf_free(&out);

	/* messages, a zero limit, braces, and values that try to add a header */
	struct warning_event ev = event;
	ev.resource = WARNING_MESSAGES;
	ev.used = 3;
	ev.limit = 0;
	ev.percent[0] = '\0';
	snprintf(ev.address, sizeof(ev.address), "evil\r\nBcc: x@y");
	buf_init(&out, WARNING_MAIL_MAX);
	assert_int_equal(warning_mail_render(&ev,
	                                     "Subject: {{{percent}} {address}\n\n{used}/{limit}",
	                                     "a@b", "d", &out),
	                 0);
	assert_null(strstr(out.data, "\nBcc:"));
	assert_non_null(strstr(out.data, "\nSubject: {over 100} evil  Bcc: x@y\n\n3 messages/0 "
	                                 "messages"));
	assert_non_null(
	        strstr(out.data, "Message-ID: <warning.0b6c8f8e-1d2a-4c55-9f0e-3f2d1c0b9a87@b>"));
	buf_free(&out);

	/* a local part that is no dot-atom is quoted in To: (the command gets it as it is) */
	static const struct {
		const char *address, *to;
	} quoted[] = {
		{ "first.last@x.test", "To: first.last@x.test\n" },
		{ "o'brien+tag@x.test", "To: o'brien+tag@x.test\n" },
		{ "a,b@x.test", "To: \"a,b\"@x.test\n" },
		{ "say\"hi\"@x.test", "To: \"say\\\"hi\\\"\"@x.test\n" },
		{ ".dot@x.test", "To: \".dot\"@x.test\n" },
		{ "two..dots@x.test", "To: \"two..dots\"@x.test\n" },
		{ "-opt@x.test", "To: -opt@x.test\n" },
	};
	for (size_t i = 0; i < sizeof(quoted) / sizeof(quoted[0]); i++) {
		ev = event;
		snprintf(ev.address, sizeof(ev.address), "%s", quoted[i].address);
		buf_init(&out, WARNING_MAIL_MAX);
		assert_int_equal(warning_mail_render(&ev, "Subject: s\n\nb", "a@b", "d", &out), 0);
		if (strstr(out.data, quoted[i].to) == NULL)
			fail_msg("case %zu: no %s in %s", i, quoted[i].to, out.data);
		buf_free(&out);
	}

	/* a full buffer is refused, not cut */
	buf_init(&out, 64);
	assert_int_equal(warning_mail_render(&event, warning_default_template, "a@b", "d", &out),
	                 -1);
	buf_free(&out);
}

static void test_command_split(void **state)
{
	(void)state;
	char s[256], *argv[WARNING_COMMAND_ARGS_MAX];
	snprintf(s, sizeof(s), "  /usr/sbin/sendmail\t-i -f  postmaster@x --  ");
	assert_int_equal(warning_command_split(s, argv), 5);
	assert_string_equal(argv[0], "/usr/sbin/sendmail");
	assert_string_equal(argv[1], "-i");
	assert_string_equal(argv[3], "postmaster@x");
	assert_string_equal(argv[4], "--");
	assert_null(argv[5]);
	snprintf(s, sizeof(s), "   ");
	assert_int_equal(warning_command_split(s, argv), -1);
	char many[256] = "";
	for (int i = 0; i < WARNING_COMMAND_ARGS_MAX - 2; i++)
		strcat(many, "a ");
	snprintf(s, sizeof(s), "%s", many);
	assert_int_equal(warning_command_split(s, argv), WARNING_COMMAND_ARGS_MAX - 2);
	strcat(many, "b");
	snprintf(s, sizeof(s), "%s", many);
	assert_int_equal(warning_command_split(s, argv), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings),  cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_signature), cmocka_unit_test(test_template_check),
		cmocka_unit_test(test_render),    cmocka_unit_test(test_command_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
