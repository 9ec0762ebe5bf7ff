/* Table tests for sizes shown to people: binary units, one decimal, never rounded up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sizetext.h"

static const struct {
	uint64_t bytes;
	const char *text;
} sizes[] = {
	{ 0, "0 B" },
	{ 1023, "1023 B" },
	{ 1024, "1 KiB" },
	{ 1536, "1.5 KiB" },
	{ 2047, "1.9 KiB" }, /* rounded down, never up */
	{ 10485760, "10 MiB" },
	{ 7864320, "7.5 MiB" },
	{ 10485759, "9.9 MiB" },
	{ 1073741824, "1 GiB" },
	{ 5497558138880ull, "5 TiB" },
	{ 1152921504606846976ull, "1 EiB" },
	{ UINT64_MAX, "15.9 EiB" },
};

static void test_size_text(void **state)
{
	(void)state;
	struct size_text t;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		assert_string_equal(size_text(sizes[i].bytes, &t), sizes[i].text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
