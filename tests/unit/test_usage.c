/* Table tests for the check a usage report's key gets before any SQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "report.h"

static void test_keys(void **state)
{
	(void)state;
	char long_key[USAGE_KEY_MAX + 2];
	memset(long_key, 'k', sizeof(long_key));
	long_key[USAGE_KEY_MAX] = '\0';
	assert_true(usage_key_valid(long_key));
	long_key[USAGE_KEY_MAX] = 'k';
	long_key[USAGE_KEY_MAX + 1] = '\0';
	assert_false(usage_key_valid(long_key));
	assert_true(usage_key_valid("host/queue-id/1"));
	assert_false(usage_key_valid(""));
	assert_false(usage_key_valid("with space"));
	assert_false(usage_key_valid("tab\there"));
	assert_false(usage_key_valid("caf\xc3\xa9"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
