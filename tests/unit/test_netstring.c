/* Tests for netstrings: complete, partial and malformed frames, the length limit at its edges
   (refused from the digits, before the payload), pipelined frames, and the writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "netstring.h"

struct parse_case {
	const char *in;
	size_t max;
	int rc;
	const char *payload; /* with rc 1 */
	size_t consumed;     /* with rc 1 */
	const char *error;   /* with rc -1: a fragment of the message */
};

static const struct parse_case parse_cases[] = {
	{ "0:,", 100, 1, "", 3, NULL },
	{ "5:hello,", 100, 1, "hello", 8, NULL },
	{ "5:hello,5:world,", 100, 1, "hello", 8, NULL }, /* the first of a pipeline */
	{ "12:hello world!,", 100, 1, "hello world!", 16, NULL },
	{ "3:a,b,", 100, 1, "a,b", 6, NULL },
	{ "5:hello,", 5, 1, "hello", 8, NULL }, /* exactly max */
	{ "", 100, 0, NULL, 0, NULL },
	{ "5", 100, 0, NULL, 0, NULL },
	{ "5:", 100, 0, NULL, 0, NULL },
	{ "5:hel", 100, 0, NULL, 0, NULL },
	{ "5:hello", 100, 0, NULL, 0, NULL },     /* the ',' is still to come */
	{ "10", 10, 0, NULL, 0, NULL },           /* 10 is within max 10 */
	{ "6:hello,", 5, -1, NULL, 0, "longer" }, /* max + 1 */
	{ "11", 10, -1, NULL, 0, "longer" },      /* refused from its digits alone */
	{ "100", 99, -1, NULL, 0, "longer" },
	{ "99999999999999999999", SIZE_MAX, -1, NULL, 0, "longer" }, /* 10^20 - 1 > SIZE_MAX */
	{ "18446744073709551616", SIZE_MAX, -1, NULL, 0, "longer" }, /* SIZE_MAX + 1 */
	{ "000000000000000000000", SIZE_MAX, -1, NULL, 0, "leading zero" },
	{ "05:hello,", 100, -1, NULL, 0, "leading zero" },
	{ "00:,", 100, -1, NULL, 0, "leading zero" },
	{ ":hello,", 100, -1, NULL, 0, "start" },
	{ "-1:x,", 100, -1, NULL, 0, "start" },
	{ "+1:x,", 100, -1, NULL, 0, "start" },
	{ " 1:x,", 100, -1, NULL, 0, "start" },
	{ "1 :x,", 100, -1, NULL, 0, "':'" },
	{ "1x", 100, -1, NULL, 0, "':'" },
	{ "5:hello;", 100, -1, NULL, 0, "','" },
	{ "5:hello!,", 100, -1, NULL, 0, "','" },       /* payload longer than announced */
	{ "mailquota a@b", 100, -1, NULL, 0, "start" }, /* no framing at all */
};

static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		const char *payload = NULL, *err = NULL;
		size_t plen = 0, used = 0;
		int rc =
		        netstring_parse(c->in, strlen(c->in), c->max, &payload, &plen, &used, &err);
		if (rc != c->rc)
			fail_msg("case %zu (%s): rc %d, want %d (%s)", i, c->in, rc, c->rc,
			         err ? err : "");
		if (rc == 1) {
			assert_int_equal(plen, strlen(c->payload));
			assert_memory_equal(payload, c->payload, plen);
			assert_ptr_equal(payload, c->in + (payload - c->in));
			assert_int_equal(used, c->consumed);
		}
		if (rc == -1 && strstr(err, c->error) == NULL)
			fail_msg("case %zu (%s): error \"%s\", want \"%s\"", i, c->in, err,
			         c->error);
	}
}

/* Any prefix of a valid netstring needs more bytes; the whole of it is one frame. */
static void test_every_prefix(void **state)
{
	(void)state;
	const char *ns = "19:mailquota a@example,";
	for (size_t n = 0; n <= strlen(ns); n++) {
		const char *payload, *err;
		size_t plen, used;
		int rc = netstring_parse(ns, n, 100, &payload, &plen, &used, &err);
		assert_int_equal(rc, n == strlen(ns) ? 1 : 0);
	}
}

/* The payload may hold any byte, NUL included. */
static void test_binary_payload(void **state)
{
	(void)state;
	const char in[] = "3:a\0b,";
	const char *payload, *err;
	size_t plen, used;
	assert_int_equal(netstring_parse(in, sizeof(in) - 1, 10, &payload, &plen, &used, &err), 1);
	assert_int_equal(plen, 3);
	assert_memory_equal(payload, "a\0b", 3);
	assert_int_equal(used, 6);
}

static void test_append(void **state)
{
	(void)state;
	struct buf out;
	buf_init(&out, 16);
	assert_int_equal(netstring_append(&out, "", 0), 0);
	assert_string_equal(out.data, "0:,");
	assert_int_equal(netstring_append(&out, "hello", 5), 0);
	assert_string_equal(out.data, "0:,5:hello,");
	/* 3 + 8 used, 5 left: "2:ab," is 5 bytes and fits, "3:abc," does not */
	assert_int_equal(netstring_append(&out, "abc", 3), -1);
	assert_string_equal(out.data, "0:,5:hello,"); /* unchanged */
	assert_int_equal(netstring_append(&out, "ab", 2), 0);
	assert_int_equal(out.len, 16);
	assert_int_equal(netstring_append(&out, "", 0), -1);
	buf_free(&out);
}

/* What the writer writes, the parser reads back. */
static void test_round_trip(void **state)
{
	(void)state;
	struct buf out;
	buf_init(&out, 4096);
	char data[1000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	for (size_t n = 0; n <= sizeof(data); n += 37) {
		buf_reset(&out);
		assert_int_equal(netstring_append(&out, data, n), 0);
		const char *payload, *err;
		size_t plen, used;
		assert_int_equal(
		        netstring_parse(out.data, out.len, n, &payload, &plen, &used, &err), 1);
		assert_int_equal(plen, n);
		assert_memory_equal(payload, data, n);
		assert_int_equal(used, out.len);
	}
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),    cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_binary_payload), cmocka_unit_test(test_append),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
