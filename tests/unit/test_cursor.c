/* Table tests for list cursors: round trips, the wire format, foreign and malformed cursors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "cursor.h"

struct trip {
	const char *sort, *key, *id;
};

static void test_round_trip(void **state)
{
	(void)state;
	static const struct trip cases[] = {
		{ "address", "a@b.example", "17" },
		{ "-address", "zz@example.org", "9223372036854775807" },
		{ "-id", "42", "42" },
		{ "usage", "0.5", "3" },
		{ "updated_at", "2026-11-22 10:00:00.123456+00", "1" },
		{ "address", "", "" },                              /* empty strings */
		{ "address", "q\"u\\o/te@x", "1" },                 /* JSON escapes */
		{ "address", "tab\there\nnl\x01\x1f", "2" },        /* control characters */
		{ "address", "j\xc3\xbcrgen@b\xc3\xbc.test", "3" }, /* UTF-8 */
		{ "address", "\xf0\x9f\x93\xac@x.test", "4" },      /* 4-byte UTF-8 */
		{ "a", "k", "1" },  /* 1, 2 and 3 trailing bytes of base64 */
		{ "ab", "k", "1" }, /* (the JSON text's length mod 3 differs) */
		{ "abc", "k", "1" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct trip *c = &cases[i];
		struct buf b;
		buf_init(&b, CURSOR_MAX);
		if (cursor_encode(c->sort, c->key, c->id, &b) < 0)
			fail_msg("case %zu: encode failed", i);
		/* base64url only: safe in a query string without escaping */
		if (strspn(b.data,
		           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
		    b.len)
			fail_msg("case %zu: %s is not base64url", i, b.data);
		json_t *h = NULL;
		const char *key = NULL, *id = NULL;
		if (cursor_decode(b.data, c->sort, &h, &key, &id) != 0)
			fail_msg("case %zu: %s did not decode", i, b.data);
		assert_string_equal(key, c->key);
		assert_string_equal(id, c->id);
		json_decref(h);
		buf_free(&b);
	}
}

/* The wire format is base64url of the compact JSON array: cursors handed out before stay valid. */
static void test_format(void **state)
{
	(void)state;
	static const struct {
		const char *sort, *key, *id, *cursor;
	} cases[] = {
		{ "address", "a@b.example", "17", "WyJhZGRyZXNzIiwiYUBiLmV4YW1wbGUiLCIxNyJd" },
		{ "-id", "42", "42", "WyItaWQiLCI0MiIsIjQyIl0" },
		{ "usage", "0.5", "3", "WyJ1c2FnZSIsIjAuNSIsIjMiXQ" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		buf_init(&b, CURSOR_MAX);
		assert_int_equal(cursor_encode(cases[i].sort, cases[i].key, cases[i].id, &b), 0);
		assert_string_equal(b.data, cases[i].cursor);
		buf_free(&b);
	}
}

static void test_encode_refused(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, CURSOR_MAX);
	assert_int_equal(cursor_encode("address", "\xff", "1", &b), -1); /* not UTF-8 */
	assert_int_equal(cursor_encode("address", "k", "\xc3", &b), -1);
	assert_int_equal(cursor_encode("\xed\xa0\x80", "k", "1", &b), -1); /* a surrogate */
	buf_free(&b);
	buf_init(&b, 10); /* the output's bound */
	assert_int_equal(cursor_encode("address", "k", "1", &b), -1);
	buf_free(&b);
}

struct bad {
	const char *cursor, *sort, *what;
};

static void test_refused(void **state)
{
	(void)state;
	static const struct bad cases[] = {
		/* foreign: made under another sort order */
		{ "WyJhZGRyZXNzIiwiYUBiLmV4YW1wbGUiLCIxNyJd", "-address", "other sort" },
		{ "WyJhZGRyZXNzIiwiYUBiLmV4YW1wbGUiLCIxNyJd", "addres", "sort prefix" },
		{ "WyJhZGRyZXNzIiwiYUBiLmV4YW1wbGUiLCIxNyJd", "", "empty sort" },
		{ "WyItaWQiLCI0MiIsIjQyIl0", "address", "an audit cursor" },
		/* not base64url */
		{ "", "address", "empty" },
		{ "W", "address", "one character (length 1 mod 4)" },
		{ "WyJhZ", "address", "length 1 mod 4" },
		{ "WyItaWQiLCI0MiIsIjQyIl0=", "-id", "padding" },
		{ "WyItaWQiLCI0MiIsIjQyIl0+", "-id", "base64 '+'" },
		{ "WyItaWQiLCI0MiIs/jQyIl0", "-id", "base64 '/'" },
		{ "WyItaWQiLCI0MiIsIjQyIl0 ", "-id", "trailing space" },
		{ "WyItaWQiLC%0MiIsIjQyIl0", "-id", "percent" },
		{ "WyItaWQiLCI0MiIsIjQyIl0\xc3\xa9", "-id", "non-ASCII" },
		/* base64url, but not [sort, key, id] */
		{ "bm90IGpzb24", "address", "not JSON" },
		{ "WyJhZGRyZXNzIiwiayJd", "address", "two elements" },
		{ "WyJhZGRyZXNzIiwiayIsIjEiLCJ4Il0", "address", "four elements" },
		{ "WyJhZGRyZXNzIiwiayIsMV0", "address", "a number id" },
		{ "eyJhZGRyZXNzIjoxfQ", "address", "an object" },
		{ "WzEsImsiLCIxIl0", "address", "a number sort" },
		{ "WyJhZGRyZXNzIiwia1x1MDAwMHgiLCIxIl0", "address", "a NUL in the key" },
		{ "WyJhZGRyZXNzIiwiayIsIjEiXXg", "address", "text after the array" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *h = (json_t *)&h;
		const char *key = "untouched", *id = "untouched";
		if (cursor_decode(cases[i].cursor, cases[i].sort, &h, &key, &id) != -1)
			fail_msg("case %zu (%s) was accepted", i, cases[i].what);
		if (h != (json_t *)&h || strcmp(key, "untouched") != 0 ||
		    strcmp(id, "untouched") != 0)
			fail_msg("case %zu (%s): outputs changed on failure", i, cases[i].what);
	}
}

/* Cursors of CURSOR_MAX characters or more are refused unread; shorter ones decode. */
static void test_length_limit(void **state)
{
	(void)state;
	char key[CURSOR_MAX];
	bool accepted_longest = false, refused_shortest = false;
	for (size_t n = 400; n < 600; n++) {
		memset(key, 'k', n);
		key[n] = '\0';
		struct buf b;
		buf_init(&b, 2 * CURSOR_MAX);
		assert_int_equal(cursor_encode("address", key, "1", &b), 0);
		json_t *h = NULL;
		const char *k, *id;
		int rc = cursor_decode(b.data, "address", &h, &k, &id);
		if (rc != (b.len < CURSOR_MAX ? 0 : -1))
			fail_msg("a cursor of %zu characters: %d", b.len, rc);
		if (rc == 0)
			assert_string_equal(k, key);
		accepted_longest |= b.len == CURSOR_MAX - 1 && rc == 0;
		refused_shortest |= b.len == CURSOR_MAX && rc == -1;
		json_decref(h);
		buf_free(&b);
	}
	assert_true(accepted_longest);
	assert_true(refused_shortest);
	/* a long run of valid characters is refused before decoding */
	char *longc = malloc(100000);
	memset(longc, 'A', 99999);
	longc[99999] = '\0';
	json_t *h = NULL;
	const char *k, *id;
	assert_int_equal(cursor_decode(longc, "address", &h, &k, &id), -1);
	free(longc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_format),
		cmocka_unit_test(test_encode_refused), cmocka_unit_test(test_refused),
		cmocka_unit_test(test_length_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
