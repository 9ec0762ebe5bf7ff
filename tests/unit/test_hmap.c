/* hmap against a straightforward model: random inserts and removals must agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "hmap.h"

static bool eq_u64(const void *item, const void *key)
{
	return *(const uint64_t *)item == *(const uint64_t *)key;
}

#define N 20000

static void test_against_model(void **state)
{
	(void)state;
	static uint64_t values[N];
	static bool present[N];
	struct hmap m;
	hmap_init(&m);
	for (uint64_t i = 0; i < N; i++)
		values[i] = i * 7919;
	srand(12345);
	size_t count = 0;
	for (int step = 0; step < 200000; step++) {
		size_t k = (size_t)rand() % N;
		/* a deliberately weak hash (few distinct values) makes long chains and wrap-around
		 */
		uint64_t h = (values[k] % 97) * 1000003;
		if (rand() % 3 == 0) {
			void *got = hmap_remove(&m, h, &values[k], eq_u64);
			assert_true((got != NULL) == present[k]);
			if (got != NULL) {
				assert_ptr_equal(got, &values[k]);
				present[k] = false;
				count--;
			}
		} else if (!present[k]) {
			hmap_insert(&m, h, &values[k]);
			present[k] = true;
			count++;
		}
		assert_int_equal(m.count, count);
	}
	for (size_t k = 0; k < N; k++) {
		uint64_t h = (values[k] % 97) * 1000003;
		void *got = hmap_get(&m, h, &values[k], eq_u64);
		assert_true((got != NULL) == present[k]);
	}
	hmap_free(&m);
}

static void test_zero_hash_and_empty(void **state)
{
	(void)state;
	struct hmap m;
	uint64_t a = 5, b = 6;
	hmap_init(&m);
	assert_null(hmap_get(&m, 0, &a, eq_u64));
	assert_null(hmap_remove(&m, 0, &a, eq_u64));
	hmap_insert(&m, 0, &a);
	hmap_insert(&m, 0, &b);
	assert_ptr_equal(hmap_get(&m, 0, &a, eq_u64), &a);
	assert_ptr_equal(hmap_get(&m, 0, &b, eq_u64), &b);
	assert_ptr_equal(hmap_remove(&m, 0, &a, eq_u64), &a);
	assert_ptr_equal(hmap_get(&m, 0, &b, eq_u64), &b);
	hmap_free(&m);
	assert_true(hmap_hash_bytes("abc", 3, 1) != hmap_hash_bytes("abc", 3, 2));
	assert_true(hmap_hash_bytes("abc", 3, 1) == hmap_hash_bytes("abc", 3, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_against_model),
		cmocka_unit_test(test_zero_hash_and_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
