/* Tests for the bounded buffer and string helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void test_bounds(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "12345"), 0);
	assert_int_equal(buf_puts(&b, "6789"), -1); /* would exceed 8: unchanged */
	assert_int_equal(b.len, 5);
	assert_string_equal(b.data, "12345");
	assert_int_equal(buf_printf(&b, "%d", 678), 0);
	assert_string_equal(b.data, "12345678");
	assert_int_equal(buf_printf(&b, "%d", 9), -1);
	buf_consume(&b, 3);
	assert_string_equal(b.data, "45678");
	buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void test_copy_and_sanitize(void **state)
{
	(void)state;
	char small[4], out[32];
	assert_int_equal(str_copy(small, "abc", sizeof(small)), 0);
	assert_int_equal(str_copy(small, "abcd", sizeof(small)), -1);
	assert_string_equal(small, "abc");
	assert_string_equal(str_sanitize(out, sizeof(out), "a\"b\\c\nd\x80", 8, 100), "a?b?c?d?");
	assert_string_equal(str_sanitize(out, sizeof(out), "abcdefghij", 10, 4), "abcd...");
	assert_string_equal(str_sanitize(out, 8, "abcdefghij", 10, 100), "abcd...");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_copy_and_sanitize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
