/* Tests for the socketmap protocol's pure part: request parsing (map name, key), the verdict →
   answer rule under each reply profile and configured texts, and the reply writer (status
   words, sanitising, cutting, room). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "netstring.h"
#include "socketmap.h"

struct request_case {
	const char *in;
	int rc;
	const char *key;   /* with rc 0 */
	const char *error; /* with rc -1: a fragment */
};

static const struct request_case request_cases[] = {
	{ "mailquota user@example.test", 0, "user@example.test", NULL },
	{ "mailquota User+Tag@Example.TEST", 0, "User+Tag@Example.TEST", NULL },
	{ "mailquota a b", 0, "a b", NULL }, /* the key is all after the first space */
	{ "mailquota  x", 0, " x", NULL },
	{ "mailquota example.test", 0, "example.test", NULL }, /* not an address: the check says */
	{ "mailquota ", -1, NULL, "empty key" },
	{ "mailquota", -1, NULL, "name key" },
	{ "", -1, NULL, "name key" },
	{ "other user@example.test", -1, NULL, "unknown map" },
	{ "MAILQUOTA user@example.test", -1, NULL, "unknown map" }, /* names are exact */
	{ "mailquotax user@example.test", -1, NULL, "unknown map" },
	{ " mailquota user@example.test", -1, NULL, "unknown map" },
	{ "mailquot user@example.test", -1, NULL, "unknown map" },
};

static void test_request_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(request_cases) / sizeof(request_cases[0]); i++) {
		const struct request_case *c = &request_cases[i];
		struct socketmap_request req;
		const char *err = NULL;
		int rc = socketmap_request_parse(c->in, strlen(c->in), &req, &err);
		if (rc != c->rc)
			fail_msg("case %zu (%s): rc %d, want %d", i, c->in, rc, c->rc);
		if (rc == 0) {
			assert_int_equal(req.key_len, strlen(c->key));
			assert_memory_equal(req.key, c->key, req.key_len);
		} else if (strstr(err, c->error) == NULL) {
			fail_msg("case %zu (%s): error \"%s\", want \"%s\"", i, c->in, err,
			         c->error);
		}
	}
}

struct verdict_case {
	enum reply_profile profile;
	const char *unknown; /* configured unknown-recipient action, NULL: the default */
	enum quota_verdict verdict;
	const char *temp_reason;
	enum socketmap_status status;
	const char *text;
};

static const struct verdict_case verdict_cases[] = {
	{ REPLY_PROFILE_CONVENTIONAL, NULL, QUOTA_ACCEPT, NULL, SOCKETMAP_NOTFOUND, "" },
	{ REPLY_PROFILE_CONVENTIONAL, NULL, QUOTA_OVER_QUOTA, NULL, SOCKETMAP_OK,
	  "552 5.2.2 Mailbox full" },
	{ REPLY_PROFILE_STRICT, NULL, QUOTA_OVER_QUOTA, NULL, SOCKETMAP_OK,
	  "452 4.2.2 Mailbox full" },
	{ REPLY_PROFILE_NO452, NULL, QUOTA_OVER_QUOTA, NULL, SOCKETMAP_OK,
	  "450 4.2.2 Mailbox full" },
	{ REPLY_PROFILE_CONVENTIONAL, NULL, QUOTA_TOO_BIG_MAILBOX, NULL, SOCKETMAP_OK,
	  "552 5.2.3 Message length exceeds administrative limit" },
	{ REPLY_PROFILE_CONVENTIONAL, NULL, QUOTA_TOO_BIG_SYSTEM, NULL, SOCKETMAP_OK,
	  "552 5.3.4 Message too big for system" },
	{ REPLY_PROFILE_CONVENTIONAL, NULL, QUOTA_UNKNOWN, NULL, SOCKETMAP_NOTFOUND, "" },
	{ REPLY_PROFILE_CONVENTIONAL, "550 5.1.1 No such user", QUOTA_UNKNOWN, NULL, SOCKETMAP_OK,
	  "550 5.1.1 No such user" },
	{ REPLY_PROFILE_CONVENTIONAL, NULL, QUOTA_TEMPFAIL, "view not loaded", SOCKETMAP_TEMP,
	  "view not loaded" },
	{ REPLY_PROFILE_CONVENTIONAL, NULL, QUOTA_TEMPFAIL, NULL, SOCKETMAP_TEMP,
	  "store unavailable" },
};

static void test_verdict_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(verdict_cases) / sizeof(verdict_cases[0]); i++) {
		const struct verdict_case *c = &verdict_cases[i];
		struct reply_set set;
		reply_set_defaults(&set, c->profile);
		if (c->unknown != NULL)
			assert_int_equal(str_copy(set.unknown, c->unknown, sizeof(set.unknown)), 0);
		struct socketmap_answer a =
		        socketmap_answer_verdict(&set, c->verdict, c->temp_reason);
		if (a.status != c->status || strcmp(a.text, c->text) != 0)
			fail_msg("case %zu: %s \"%s\", want %s \"%s\"", i,
			         socketmap_status_name(a.status), a.text,
			         socketmap_status_name(c->status), c->text);
	}
}

/* The one reply in out, without its netstring framing. */
static void reply_payload(const struct buf *out, char *dst, size_t size)
{
	const char *payload, *err;
	size_t plen, used;
	assert_int_equal(netstring_parse(out->data, out->len, SOCKETMAP_REPLY_MAX, &payload, &plen,
	                                 &used, &err),
	                 1);
	assert_int_equal(used, out->len);
	assert_true(plen < size);
	memcpy(dst, payload, plen);
	dst[plen] = '\0';
}

struct reply_case {
	enum socketmap_status status;
	const char *text;
	const char *want;
};

static const struct reply_case reply_cases[] = {
	{ SOCKETMAP_OK, "552 5.2.2 Mailbox full", "OK 552 5.2.2 Mailbox full" },
	{ SOCKETMAP_NOTFOUND, "", "NOTFOUND " },
	{ SOCKETMAP_TEMP, "store unavailable", "TEMP store unavailable" },
	{ SOCKETMAP_PERM, "unknown map name", "PERM unknown map name" },
	{ SOCKETMAP_OK, "a,b:c", "OK a,b:c" }, /* framing bytes are safe inside a netstring */
	{ SOCKETMAP_TEMP, "line\r\nbreak\ttab\x7f\xff", "TEMP line??break?tab??" },
};

static void test_reply_table(void **state)
{
	(void)state;
	struct buf out;
	buf_init(&out, 1024);
	for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *c = &reply_cases[i];
		char got[1024];
		buf_reset(&out);
		assert_int_equal(socketmap_reply_append(&out, c->status, c->text), 0);
		reply_payload(&out, got, sizeof(got));
		if (strcmp(got, c->want) != 0)
			fail_msg("case %zu: \"%s\", want \"%s\"", i, got, c->want);
	}
	buf_free(&out);
}

static void test_reply_limits(void **state)
{
	(void)state;
	struct buf out;
	char text[SOCKETMAP_TEXT_MAX + 100], got[SOCKETMAP_TEXT_MAX + 100];
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	buf_init(&out, 4096);
	assert_int_equal(socketmap_reply_append(&out, SOCKETMAP_OK, text), 0);
	reply_payload(&out, got, sizeof(got));
	assert_int_equal(strlen(got), strlen("OK ") + SOCKETMAP_TEXT_MAX);
	buf_free(&out);
	/* no room: nothing is written */
	buf_init(&out, 12);
	assert_int_equal(socketmap_reply_append(&out, SOCKETMAP_NOTFOUND, ""), 0); /* 12 bytes */
	assert_int_equal(out.len, 12);
	assert_int_equal(socketmap_reply_append(&out, SOCKETMAP_NOTFOUND, ""), -1);
	assert_int_equal(out.len, 12);
	buf_free(&out);
	assert_string_equal(socketmap_status_name(SOCKETMAP_OK), "OK");
	assert_string_equal(socketmap_status_name(SOCKETMAP_NOTFOUND), "NOTFOUND");
	assert_string_equal(socketmap_status_name(SOCKETMAP_TEMP), "TEMP");
	assert_string_equal(socketmap_status_name(SOCKETMAP_PERM), "PERM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_table),
		cmocka_unit_test(test_verdict_table),
		cmocka_unit_test(test_reply_table),
		cmocka_unit_test(test_reply_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
