/* Table tests for the token bucket: bursts, refill, the answer to wait, a clock stepping back,
   and the largest settings without overflow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ratelimit.h"

static void test_burst_then_rate(void **state)
{
	(void)state;
	struct rate_bucket b = { 0 };
	uint64_t retry = 0;
	/* 5 per second, bursts of 10: ten at once, then none */
	for (int i = 0; i < 10; i++)
		assert_int_equal(rate_take(&b, 1000, 5, 10, 1, &retry), 0);
	assert_int_equal(rate_take(&b, 1000, 5, 10, 1, &retry), -1);
	assert_int_equal(retry, 200); /* one token every 200 ms */
	assert_int_equal(rate_take(&b, 1199, 5, 10, 1, &retry), -1);
	assert_int_equal(retry, 1);
	assert_int_equal(rate_take(&b, 1200, 5, 10, 1, &retry), 0);
	/* a long pause refills to the burst, not beyond */
	for (int i = 0; i < 10; i++)
		assert_int_equal(rate_take(&b, 100000, 5, 10, 1, &retry), 0);
	assert_int_equal(rate_take(&b, 100000, 5, 10, 1, &retry), -1);
}

static void test_many_at_once(void **state)
{
	(void)state;
	struct rate_bucket b = { 0 };
	uint64_t retry = 0;
	assert_int_equal(rate_take(&b, 0, 10, 100, 60, &retry), 0);
	assert_int_equal(rate_take(&b, 0, 10, 100, 60, &retry), -1); /* 40 left: nothing is taken */
	assert_int_equal(retry, 2000);                               /* 20 more at 10/s */
	assert_int_equal(rate_take(&b, 0, 10, 100, 40, &retry), 0);
	assert_int_equal(rate_take(&b, 0, 10, 100, 101, &retry), -1); /* more than a burst: never */
	assert_int_equal(retry, UINT64_MAX);
}

static void test_clock_back(void **state)
{
	(void)state;
	struct rate_bucket b = { 0 };
	uint64_t retry = 0;
	assert_int_equal(rate_take(&b, 5000, 1, 1, 1, &retry), 0);
	assert_int_equal(rate_take(&b, 1000, 1, 1, 1, &retry), -1); /* earlier: no refill */
	assert_int_equal(rate_take(&b, 5999, 1, 1, 1, &retry), -1);
	assert_int_equal(rate_take(&b, 6000, 1, 1, 1, &retry), 0);
}

/* burst lowered between calls (a reload): the bucket is cut to it, never wraps around */
static void test_burst_lowered(void **state)
{
	(void)state;
	struct rate_bucket b = { 0 };
	uint64_t retry;
	assert_int_equal(rate_take(&b, 0, 1, 100, 1, &retry), 0); /* 99 left */
	assert_int_equal(rate_take(&b, 0, 1, 10, 10, &retry), 0); /* cut to 10, all taken */
	assert_int_equal(rate_take(&b, 0, 1, 10, 1, &retry), -1);
	assert_int_equal(retry, 1000);
	assert_int_equal(rate_take(&b, 5000, 1, 10, 5, &retry), 0); /* refilled at the rate */
	assert_int_equal(rate_take(&b, 5000, 1, 10, 1, &retry), -1);
}

static void test_limits(void **state)
{
	(void)state;
	struct rate_bucket b = { 0 };
	uint64_t retry = 0;
	assert_int_equal(rate_take(&b, 0, 1000000, 1000000, 1000000, &retry), 0);
	assert_int_equal(rate_take(&b, 0, 1000000, 1000000, 1, &retry), -1);
	assert_int_equal(retry, 1);
	assert_int_equal(rate_take(&b, UINT64_MAX, 1000000, 1000000, 1000000, &retry), 0);
	struct rate_bucket c = { 0 };
	assert_int_equal(rate_take(&c, 0, 1, 1000000, 1000000, &retry), 0);
	assert_int_equal(rate_take(&c, 0, 1, 1000000, 1000000, &retry), -1);
	assert_int_equal(retry, 1000000000ULL); /* 10^6 tokens at 1/s */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_rate), cmocka_unit_test(test_many_at_once),
		cmocka_unit_test(test_clock_back),      cmocka_unit_test(test_burst_lowered),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
