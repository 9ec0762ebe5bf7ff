/* The JSON writer's output must parse (with jansson) to what was written; UTF-8 validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "jsonw.h"
#include "utf8.h"

static void test_roundtrip(void **state)
{
	(void)state;
	struct buf b;
	struct jsonw w;
	buf_init(&b, 4096);
	jsonw_init(&w, &b);
	jsonw_object(&w);
	jsonw_key(&w, "s");
	jsonw_string(&w, "quote\" back\\ nl\n tab\t ctl\x01 caf\xc3\xa9");
	jsonw_key(&w, "n");
	jsonw_u64(&w, UINT64_MAX);
	jsonw_key(&w, "z");
	jsonw_null(&w);
	jsonw_key(&w, "a");
	jsonw_array(&w);
	jsonw_bool(&w, true);
	jsonw_object(&w);
	jsonw_end_object(&w);
	jsonw_array(&w);
	jsonw_end_array(&w);
	jsonw_string(&w, NULL);
	jsonw_end_array(&w);
	jsonw_end_object(&w);
	assert_int_equal(jsonw_finish(&w), 0);
	assert_string_equal(b.data, "{\"s\":\"quote\\\" back\\\\ nl\\u000a tab\\u0009 ctl\\u0001 "
	                            "caf\xc3\xa9\",\"n\":18446744073709551615,\"z\":null,"
	                            "\"a\":[true,{},[],null]}");
	json_error_t err;
	json_t *j = json_loads(b.data, JSON_DECODE_INT_AS_REAL, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "s")),
	                    "quote\" back\\ nl\n tab\t ctl\x01 caf\xc3\xa9");
	json_decref(j);
	buf_free(&b);
}

static void test_limit(void **state)
{
	(void)state;
	struct buf b;
	struct jsonw w;
	buf_init(&b, 10);
	jsonw_init(&w, &b);
	jsonw_array(&w);
	jsonw_string(&w, "far too long for ten bytes");
	jsonw_end_array(&w);
	assert_int_equal(jsonw_finish(&w), -1);
	buf_free(&b);
}

struct u8 {
	const char *s;
	bool ok;
};

static const struct u8 u8rows[] = {
	{ "plain", true },
	{ "caf\xc3\xa9", true },
	{ "\xe2\x82\xac", true },      /* euro sign */
	{ "\xf0\x9f\x98\x80", true },  /* emoji */
	{ "\xc3", false },             /* truncated */
	{ "\xc0\xaf", false },         /* overlong */
	{ "\xe0\x80\xaf", false },     /* overlong */
	{ "\xed\xa0\x80", false },     /* surrogate */
	{ "\xf4\x90\x80\x80", false }, /* > U+10FFFF */
	{ "\xff", false },
	{ "\x80", false },
	{ "\xe2\x82", false },
};

static void test_utf8(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(u8rows) / sizeof(u8rows[0]); i++)
		if (utf8_valid(u8rows[i].s, strlen(u8rows[i].s)) != u8rows[i].ok)
			fail_msg("row %zu", i);
	assert_false(utf8_valid("a\0b", 3));
}

/* Cutting never leaves half a character: "é" is 2 bytes, "€" 3, "😀" 4. */
static const struct {
	const char *s;
	size_t max, want;
} cuts[] = {
	{ "abc", 5, 3 },
	{ "abc", 3, 3 },
	{ "abc", 2, 2 },
	{ "a\xc3\xa9", 2, 1 },
	{ "a\xc3\xa9", 3, 3 },
	{ "\xe2\x82\xac!", 1, 0 },
	{ "\xe2\x82\xac!", 2, 0 },
	{ "\xe2\x82\xac!", 3, 3 },
	{ "x\xf0\x9f\x98\x80", 4, 1 },
	{ "x\xf0\x9f\x98\x80", 5, 5 },
	{ "", 0, 0 },
	{ "abc", 0, 0 },
};

static void test_utf8_cut(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		size_t n = utf8_cut(cuts[i].s, strlen(cuts[i].s), cuts[i].max);
		if (n != cuts[i].want || !utf8_valid(cuts[i].s, n))
			fail_msg("row %zu: %zu, want %zu", i, n, cuts[i].want);
	}
}

static void test_tenths(void **state)
{
	(void)state;
	struct buf b;
	struct jsonw w;
	buf_init(&b, 1024);
	jsonw_init(&w, &b);
	jsonw_array(&w);
	jsonw_tenths(&w, 0);
	jsonw_tenths(&w, 5);
	jsonw_tenths(&w, 750);
	jsonw_tenths(&w, UINT64_MAX);
	jsonw_end_array(&w);
	assert_int_equal(jsonw_finish(&w), 0);
	assert_string_equal(b.data, "[0.0,0.5,75.0,1844674407370955161.5]");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_limit),
		cmocka_unit_test(test_utf8),      cmocka_unit_test(test_utf8_cut),
		cmocka_unit_test(test_tenths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
