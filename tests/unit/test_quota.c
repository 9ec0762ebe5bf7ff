/* Table tests for quota_decide(), including UINT64_MAX edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "quota.h"

#define MAX UINT64_MAX
#define L(v)              \
	{                 \
		true, (v) \
	}
#define U                \
	{                \
		false, 0 \
	}

struct row {
	const char *name;
	struct quota_input in;
	enum quota_verdict verdict;
	enum quota_reason reason;
};

static const struct row rows[] = {
	{ "unlimited accepts anything", { .size = MAX }, QUOTA_ACCEPT, QUOTA_REASON_NONE },
	{ "fits exactly",
	  { .size = 100, .storage = L(1000), .used_bytes = 900 },
	  QUOTA_ACCEPT,
	  QUOTA_REASON_NONE },
	{ "one byte over",
	  { .size = 101, .storage = L(1000), .used_bytes = 900 },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_STORAGE },
	{ "size 0 is 1 byte: full mailbox refuses",
	  { .size = 0, .storage = L(1000), .used_bytes = 1000 },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_STORAGE },
	{ "size 0 is 1 byte: one byte left accepts",
	  { .size = 0, .storage = L(1000), .used_bytes = 999 },
	  QUOTA_ACCEPT,
	  QUOTA_REASON_NONE },
	{ "usage above limit",
	  { .size = 1, .storage = L(10), .used_bytes = 50 },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_STORAGE },
	{ "limit 0 refuses",
	  { .size = 1, .storage = L(0) },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_STORAGE },
	{ "UINT64_MAX size vs UINT64_MAX limit, empty",
	  { .size = MAX, .storage = L(MAX), .used_bytes = 0 },
	  QUOTA_ACCEPT,
	  QUOTA_REASON_NONE },
	{ "UINT64_MAX size, 1 used, no wrap",
	  { .size = MAX, .storage = L(MAX), .used_bytes = 1 },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_STORAGE },
	{ "UINT64_MAX used",
	  { .size = 1, .storage = L(MAX), .used_bytes = MAX },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_STORAGE },
	{ "used+size would wrap",
	  { .size = MAX - 5, .storage = L(100), .used_bytes = 10 },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_STORAGE },
	{ "grace admits the last message",
	  { .size = 150, .storage = L(1000), .used_bytes = 900, .grace_percent = 10 },
	  QUOTA_ACCEPT,
	  QUOTA_REASON_NONE },
	{ "grace has an end",
	  { .size = 201, .storage = L(1000), .used_bytes = 900, .grace_percent = 10 },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_STORAGE },
	{ "grace does not help a full mailbox",
	  { .size = 1, .storage = L(1000), .used_bytes = 1000, .grace_percent = 10 },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_STORAGE },
	{ "grace with UINT64_MAX limit saturates",
	  { .size = MAX - 1, .storage = L(MAX), .used_bytes = 1, .grace_percent = 1000 },
	  QUOTA_ACCEPT,
	  QUOTA_REASON_NONE },
	{ "grace with UINT64_MAX limit: one byte more is over",
	  { .size = MAX, .storage = L(MAX), .used_bytes = 1, .grace_percent = 1000 },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_STORAGE },
	{ "grace on a huge limit does not overflow",
	  { .size = MAX / 2, .storage = L(MAX / 2), .used_bytes = MAX / 4, .grace_percent = 100 },
	  QUOTA_ACCEPT,
	  QUOTA_REASON_NONE },
	{ "grace above the cap is capped",
	  { .size = 1100, .storage = L(100), .used_bytes = 0, .grace_percent = 4000000000u },
	  QUOTA_ACCEPT,
	  QUOTA_REASON_NONE },
	{ "grace cap: 1000% of 100 ends at 1100",
	  { .size = 1101, .storage = L(100), .used_bytes = 0, .grace_percent = 4000000000u },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_STORAGE },
	{ "message count reached",
	  { .size = 1, .messages = L(10), .used_messages = 10 },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_MESSAGES },
	{ "message count one left",
	  { .size = 1, .messages = L(10), .used_messages = 9 },
	  QUOTA_ACCEPT,
	  QUOTA_REASON_NONE },
	{ "message count UINT64_MAX",
	  { .size = 1, .messages = L(MAX), .used_messages = MAX },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_MESSAGES },
	{ "domain pool full",
	  { .size = 10, .storage = L(1000), .domain_pool = L(5000), .domain_used_bytes = 4995 },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_DOMAIN_POOL },
	{ "domain pool fits",
	  { .size = 5, .domain_pool = L(5000), .domain_used_bytes = 4995 },
	  QUOTA_ACCEPT,
	  QUOTA_REASON_NONE },
	{ "domain pool sum saturated",
	  { .size = 1, .domain_pool = L(MAX), .domain_used_bytes = MAX },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_DOMAIN_POOL },
	{ "mailbox max size",
	  { .size = 1001, .max_size = L(1000) },
	  QUOTA_TOO_BIG_MAILBOX,
	  QUOTA_REASON_MAILBOX_MAX_SIZE },
	{ "mailbox max size equal",
	  { .size = 1000, .max_size = L(1000) },
	  QUOTA_ACCEPT,
	  QUOTA_REASON_NONE },
	{ "domain max size",
	  { .size = 1001, .domain_max_size = L(1000) },
	  QUOTA_TOO_BIG_SYSTEM,
	  QUOTA_REASON_DOMAIN_MAX_SIZE },
	{ "system max size",
	  { .size = 1001, .system_max_size = L(1000) },
	  QUOTA_TOO_BIG_SYSTEM,
	  QUOTA_REASON_SYSTEM_MAX_SIZE },
	{ "too big beats over quota",
	  { .size = 2000, .max_size = L(1000), .storage = L(10), .used_bytes = 10 },
	  QUOTA_TOO_BIG_MAILBOX,
	  QUOTA_REASON_MAILBOX_MAX_SIZE },
	{ "system beats mailbox",
	  { .size = 2000, .max_size = L(1000), .system_max_size = L(1500) },
	  QUOTA_TOO_BIG_SYSTEM,
	  QUOTA_REASON_SYSTEM_MAX_SIZE },
	{ "storage checked before messages",
	  { .size = 1, .storage = L(1), .used_bytes = 1, .messages = L(1), .used_messages = 1 },
	  QUOTA_OVER_QUOTA,
	  QUOTA_REASON_STORAGE },
	{ "unset limits are unlimited even with usage",
	  { .size = 5, .storage = U, .messages = U, .used_bytes = MAX, .used_messages = MAX },
	  QUOTA_ACCEPT,
	  QUOTA_REASON_NONE },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct quota_result r = quota_decide(&rows[i].in);
		if (r.verdict != rows[i].verdict || r.reason != rows[i].reason)
			fail_msg("%s: got %s/%s want %s/%s", rows[i].name,
			         quota_verdict_name(r.verdict), quota_reason_name(r.reason),
			         quota_verdict_name(rows[i].verdict),
			         quota_reason_name(rows[i].reason));
	}
}

static void test_inherit_and_remaining(void **state)
{
	(void)state;
	struct quota_limit set = L(5), unset = U, dom = L(9);
	assert_true(quota_limit_inherit(set, dom).value == 5);
	assert_true(quota_limit_inherit(unset, dom).value == 9);
	assert_false(quota_limit_inherit(unset, unset).has);
	assert_true(quota_remaining((struct quota_limit)L(10), 3) == 7);
	assert_true(quota_remaining((struct quota_limit)L(10), 30) == 0);
	assert_true(quota_remaining((struct quota_limit)L(MAX), 0) == MAX);
}

/* quota_largest() agrees with quota_decide() at and around its answer, on every table row and
   on generated inputs with edge values. */
static void check_largest(const struct quota_input *base, const char *name)
{
	enum quota_reason by;
	struct quota_limit big = quota_largest(base, &by);
	uint64_t probes[] = { 1, 2, 1000, MAX / 2, MAX - 1, MAX, 0, 0, 0 };
	size_t n = 6;
	if (big.has) {
		probes[n++] = big.value;
		probes[n++] = big.value + 1; /* wraps to 0 at MAX: then checked as 1 byte */
		probes[n++] = big.value > 1 ? big.value - 1 : 1;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t s = probes[i] == 0 ? 1 : probes[i];
		struct quota_input in = *base;
		in.size = s;
		bool accepted = quota_decide(&in).verdict == QUOTA_ACCEPT;
		bool want = !big.has || s <= big.value;
		if (accepted != want)
			fail_msg("%s: size %llu: decide %s, largest %s%llu", name,
			         (unsigned long long)s, accepted ? "accepts" : "refuses",
			         big.has ? "" : "unlimited ", (unsigned long long)big.value);
	}
	if (big.has != (by != QUOTA_REASON_NONE))
		fail_msg("%s: reason and limit disagree", name);
}

static void test_largest(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		check_largest(&rows[i].in, rows[i].name);
	static const uint64_t edges[] = { 0,    1,        99,        100,     101,
		                          1000, 1u << 20, MAX / 100, MAX - 1, MAX };
	uint64_t x = 88172645463325252ull; /* xorshift64: a fixed, reproducible sequence */
#define NEXT() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
#define PICK() (NEXT() % 3 == 0 ? NEXT() : edges[NEXT() % (sizeof(edges) / sizeof(edges[0]))])
#define LIM()  ((struct quota_limit){ NEXT() % 2 == 0, PICK() })
	for (int i = 0; i < 20000; i++) {
		struct quota_input in = {
			.storage = LIM(),
			.messages = LIM(),
			.max_size = LIM(),
			.domain_pool = LIM(),
			.domain_max_size = LIM(),
			.system_max_size = LIM(),
			.used_bytes = PICK(),
			.used_messages = PICK(),
			.domain_used_bytes = PICK(),
			.grace_percent = (unsigned)(NEXT() % (QUOTA_GRACE_PERCENT_MAX + 1)),
		};
		check_largest(&in, "generated");
	}
#undef NEXT
#undef PICK
#undef LIM
	/* the limit that decides */
	struct quota_input in = { .storage = L(1000), .used_bytes = 400, .max_size = L(500) };
	enum quota_reason by;
	struct quota_limit big = quota_largest(&in, &by);
	assert_true(big.has);
	assert_int_equal(big.value, 500);
	assert_int_equal(by, QUOTA_REASON_MAILBOX_MAX_SIZE);
	in.used_bytes = 900;
	big = quota_largest(&in, &by);
	assert_int_equal(big.value, 100);
	assert_int_equal(by, QUOTA_REASON_STORAGE);
	in.grace_percent = 10; /* a last message may end 10 % above the limit */
	big = quota_largest(&in, &by);
	assert_int_equal(big.value, 200);
	in.messages = (struct quota_limit)L(5);
	in.used_messages = 5;
	big = quota_largest(&in, &by);
	assert_int_equal(big.value, 0);
	assert_int_equal(by, QUOTA_REASON_MESSAGES);
	struct quota_input none = { .used_bytes = MAX };
	big = quota_largest(&none, &by);
	assert_false(big.has);
	assert_int_equal(by, QUOTA_REASON_NONE);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(quota_verdict_name(QUOTA_OVER_QUOTA), "over_quota");
	assert_string_equal(quota_verdict_name(QUOTA_TOO_BIG_SYSTEM), "too_big_system");
	assert_string_equal(quota_reason_name(QUOTA_REASON_DOMAIN_POOL), "domain_pool");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_inherit_and_remaining),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_largest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
