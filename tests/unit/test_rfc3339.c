/* Table tests for RFC 3339 timestamps: which are valid as PostgreSQL reads them, and their
   Unix times both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rfc3339.h"

static const struct {
	const char *t;
	bool ok;
} times[] = {
	{ "", true }, /* not given */
	{ "2026-11-22T10:00:00Z", true },
	{ "2026-11-22t10:00:00z", true },
	{ "2026-11-22 10:00:00+01:00", true },
	{ "2026-11-22T10:00:00.123456-05:30", true },
	{ "2024-02-29T00:00:00Z", true }, /* leap year */
	{ "2000-02-29T00:00:00Z", true }, /* divisible by 400 */
	{ "2026-12-31T23:59:60Z", true }, /* a leap second, as PostgreSQL reads it */
	{ "2026-01-01T00:00:00+15:59", true },
	{ "2026-02-29T00:00:00Z", false }, /* not a leap year: once failed a whole batch */
	{ "1900-02-29T00:00:00Z", false }, /* divisible by 100, not 400 */
	{ "2026-02-30T00:00:00Z", false },
	{ "2026-04-31T00:00:00Z", false },
	{ "2026-13-01T00:00:00Z", false },
	{ "2026-00-01T00:00:00Z", false },
	{ "2026-01-00T00:00:00Z", false },
	{ "0000-01-01T00:00:00Z", false },
	{ "2026-01-01T24:00:00Z", false },
	{ "2026-01-01T23:60:00Z", false },
	{ "2026-01-01T23:59:61Z", false },
	{ "2026-01-01T00:00:00+16:00", false },
	{ "2026-01-01T00:00:00+01:60", false },
	{ "2026-01-01T00:00:00", false }, /* no zone */
	{ "2026-01-01T00:00:00.Z", false },
	{ "2026-1-01T00:00:00Z", false },
	{ "2026-01-01X00:00:00Z", false },
	{ "2026-01-01T00:00:00Z ", false },
	{ "2026-01-01T00:00:00.0000000000000000000000Z", false }, /* over RFC3339_MAX */
};

static void test_times(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++)
		if (rfc3339_valid(times[i].t) != times[i].ok)
			fail_msg("\"%s\": want %s", times[i].t, times[i].ok ? "valid" : "invalid");
}

static const struct {
	const char *t;
	int64_t epoch;
} epochs[] = {
	{ "1970-01-01T00:00:00Z", 0 },
	{ "2026-11-27T10:00:00Z", 1795773600 },
	{ "2000-02-29T12:34:56.789+01:30", 951822296 },
	{ "1969-12-31T23:59:59Z", -1 },
	{ "2024-12-31T23:59:59-15:59", 1735747139 },
	{ "0001-01-01T00:00:00Z", -62135596800LL },
	{ "9999-12-31T23:59:59Z", 253402300799LL },
};

static void test_epochs(void **state)
{
	(void)state;
	char text[RFC3339_MAX + 1];
	int64_t e;
	for (size_t i = 0; i < sizeof(epochs) / sizeof(epochs[0]); i++) {
		if (rfc3339_epoch(epochs[i].t, &e) < 0 || e != epochs[i].epoch)
			fail_msg("%s: %lld, want %lld", epochs[i].t, (long long)e,
			         (long long)epochs[i].epoch);
		/* and back, in UTC */
		rfc3339_format(epochs[i].epoch, text);
		if (rfc3339_epoch(text, &e) < 0 || e != epochs[i].epoch)
			fail_msg("%s: formatted as %s", epochs[i].t, text);
	}
	rfc3339_format(1795773600, text);
	assert_string_equal(text, "2026-11-27T10:00:00Z");
	/* every day of four years, through a leap day and a century */
	for (int64_t t = 946684800 - 86400 * 400; t < 946684800 + 86400LL * 1100; t += 86400 + 1) {
		rfc3339_format(t, text);
		if (rfc3339_epoch(text, &e) < 0 || e != t)
			fail_msg("%lld: formatted as %s", (long long)t, text);
	}
	assert_int_equal(rfc3339_epoch("", &e), -1);
	assert_int_equal(rfc3339_epoch("2026-02-29T00:00:00Z", &e), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_epochs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
