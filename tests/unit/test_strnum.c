/* Table tests for strict number parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "strnum.h"

static void test_u64(void **state)
{
	(void)state;
	uint64_t v = 42;
	assert_int_equal(strnum_u64("0", 1, UINT64_MAX, &v), 0);
	assert_true(v == 0);
	assert_int_equal(strnum_u64("18446744073709551615", 20, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	v = 7;
	assert_int_equal(strnum_u64("18446744073709551616", 20, UINT64_MAX, &v), -1);
	assert_true(v == 7); /* untouched on failure */
	assert_int_equal(strnum_u64("", 0, UINT64_MAX, &v), -1);
	assert_int_equal(strnum_u64("-1", 2, UINT64_MAX, &v), -1);
	assert_int_equal(strnum_u64("+1", 2, UINT64_MAX, &v), -1);
	assert_int_equal(strnum_u64(" 1", 2, UINT64_MAX, &v), -1);
	assert_int_equal(strnum_u64("1 ", 2, UINT64_MAX, &v), -1);
	assert_int_equal(strnum_u64("0x10", 4, UINT64_MAX, &v), -1);
	assert_int_equal(strnum_u64("101", 3, 100, &v), -1);
	assert_int_equal(strnum_u64("100", 3, 100, &v), 0);
	assert_int_equal(strnum_u64("12abc", 2, UINT64_MAX, &v), 0); /* length bounds it */
	assert_true(v == 12);
}

static void test_size(void **state)
{
	(void)state;
	uint64_t v = 0;
	assert_int_equal(strnum_size("10K", UINT64_MAX, &v), 0);
	assert_true(v == 10240);
	assert_int_equal(strnum_size("2m", UINT64_MAX, &v), 0);
	assert_true(v == 2097152);
	assert_int_equal(strnum_size("1G", UINT64_MAX, &v), 0);
	assert_true(v == 1073741824ULL);
	assert_int_equal(strnum_size("3T", UINT64_MAX, &v), 0);
	assert_true(v == 3ULL << 40);
	assert_int_equal(strnum_size("16777216T", UINT64_MAX, &v), -1); /* 2^64: overflow */
	assert_int_equal(strnum_size("8388608T", INT64_MAX, &v), -1);   /* 2^63 > max */
	assert_int_equal(strnum_size("K", UINT64_MAX, &v), -1);
	assert_int_equal(strnum_size("10KB", UINT64_MAX, &v), -1);
	assert_int_equal(strnum_size("1.5G", UINT64_MAX, &v), -1);
}

static void test_duration(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int rc;
		uint64_t v;
	} rows[] = {
		{ "90", 0, 90 },         { "90s", 0, 90 },    { "30m", 0, 1800 },
		{ "1h", 0, 3600 },       { "7d", 0, 604800 }, { "2w", 0, 1209600 },
		{ "0", 0, 0 },           { "", -1, 0 },       { "h", -1, 0 },
		{ "1H", -1, 0 },         { "1.5h", -1, 0 },   { "-1h", -1, 0 },
		{ "1hh", -1, 0 },        { " 1h", -1, 0 },    { "31536001", -1, 0 },
		{ "365d", 0, 31536000 }, { "366d", -1, 0 },   { "30500000000000000w", -1, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t v = 12345;
		int rc = strnum_duration(rows[i].s, 31536000, &v);
		if (rc != rows[i].rc || (rc == 0 && v != rows[i].v) || (rc < 0 && v != 12345))
			fail_msg("\"%s\": rc %d, %llu", rows[i].s, rc, (unsigned long long)v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_u64),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_duration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
