/* Table tests for the Prometheus exposition writer: names, label escaping, numbers (+Inf, NaN,
   exact integers, shortest round trip), cumulative histogram buckets, and every limit. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "prom.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_names(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		bool metric, label;
	} cases[] = {
		{ "mailquota_checks_total", true, true },
		{ "a", true, true },
		{ "_x", true, true },
		{ "__reserved", true, false },
		{ "ns:rule:rate5m", true, false },
		{ ":x", true, false },
		{ "9lives", false, false },
		{ "", false, false },
		{ "with space", false, false },
		{ "dash-ed", false, false },
		{ "ümlaut", false, false },
	};
	for (size_t i = 0; i < N(cases); i++) {
		assert_int_equal(prom_name_valid(cases[i].name), cases[i].metric);
		assert_int_equal(prom_label_name_valid(cases[i].name), cases[i].label);
	}
	char longname[PROM_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[PROM_NAME_MAX] = '\0';
	assert_true(prom_name_valid(longname)); /* exactly the limit */
	longname[PROM_NAME_MAX] = 'a';
	longname[PROM_NAME_MAX + 1] = '\0';
	assert_false(prom_name_valid(longname));
	assert_false(prom_label_name_valid(longname));
}

static void test_numbers(void **state)
{
	(void)state;
	static const struct {
		double v;
		const char *text;
	} cases[] = {
		{ 0, "0" },
		{ -0.0, "0" },
		{ 1, "1" },
		{ -3, "-3" },
		{ 0.5, "0.5" },
		{ 0.1, "0.1" }, /* shortest that reads back, not 0.10000000000000001 */
		{ 2.5e-05, "2.5e-05" },
		{ 1.0 / 3, "0.33333333333333331" },
		{ 9007199254740991.0, "9007199254740991" }, /* 2^53 - 1: still an integer */
		{ 9007199254740992.0, "9007199254740992" }, /* %.17g: no shorter form reads back */
		{ 1e300, "1e+300" },
		{ 1800000000.25, "1800000000.25" },
		{ INFINITY, "+Inf" },
		{ -INFINITY, "-Inf" },
		{ NAN, "NaN" },
	};
	char buf[PROM_NUMBER_MAX];
	for (size_t i = 0; i < N(cases); i++)
		assert_string_equal(prom_number(buf, sizeof(buf), cases[i].v), cases[i].text);
	/* the longest form fits the documented size */
	assert_true(strlen(prom_number(buf, sizeof(buf), -1.2345678901234567e-300)) <
	            PROM_NUMBER_MAX);
}

static void test_label_escape(void **state)
{
	(void)state;
	static const struct {
		const char *in, *label, *help;
	} cases[] = {
		{ "plain", "plain", "plain" },
		{ "a\"b", "a\\\"b", "a\"b" },
		{ "back\\slash", "back\\\\slash", "back\\\\slash" },
		{ "two\nlines", "two\\nlines", "two\\nlines" },
		{ "\\\"\n", "\\\\\\\"\\n", "\\\\\"\\n" },
		{ "", "", "" },
		{ "tab\tkept", "tab\tkept", "tab\tkept" },
		{ "ünï", "ünï", "ünï" }, /* UTF-8 passes as it is */
	};
	for (size_t i = 0; i < N(cases); i++) {
		struct buf b;
		buf_init(&b, 1024);
		assert_int_equal(prom_escape_label(&b, cases[i].in), 0);
		assert_string_equal(b.data != NULL ? b.data : "", cases[i].label);
		buf_reset(&b);
		assert_int_equal(prom_escape_help(&b, cases[i].in), 0);
		assert_string_equal(b.data != NULL ? b.data : "", cases[i].help);
		buf_free(&b);
	}
}

static void test_escape_limits(void **state)
{
	(void)state;
	char v[PROM_LABEL_VALUE_MAX + 2];
	memset(v, 'x', sizeof(v));
	v[PROM_LABEL_VALUE_MAX] = '\0';
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(prom_escape_label(&b, v), 0); /* exactly the limit */
	buf_reset(&b);
	v[PROM_LABEL_VALUE_MAX] = 'x';
	v[PROM_LABEL_VALUE_MAX + 1] = '\0';
	assert_int_equal(prom_escape_label(&b, v), -1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	/* a full buffer: -1 and nothing half-written */
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "ab"), 0);
	assert_int_equal(prom_escape_label(&b, "\"\"\"\""), -1); /* 8 bytes escaped, 2 used */
	assert_int_equal(b.len, 2);
	assert_string_equal(b.data, "ab");
	buf_free(&b);
}

/* The whole text one writer call produces, or NULL with the failure in *why. */
static const char *written(struct buf *b, const char **why)
{
	return b->data != NULL ? b->data : (*why == NULL ? "" : NULL);
}

static void test_samples(void **state)
{
	(void)state;
	static const struct prom_label fe[] = { { "front_end", "policy" },
		                                { "verdict", "over_quota" } };
	static const struct prom_label odd[] = { { "version", "1.0 \"beta\"\n" } };
	struct buf b;
	const char *why = NULL;
	struct prom_writer w;
	buf_init(&b, 4096);
	prom_init(&w, &b);
	prom_family(&w, "mailquota_checks_total", PROM_COUNTER, "Checks answered.\nBy \\ end.");
	prom_sample_u64(&w, "mailquota_checks_total", fe, N(fe), UINT64_MAX);
	prom_family(&w, "mailquota_build_info", PROM_GAUGE, "Build.");
	prom_sample(&w, "mailquota_build_info", odd, N(odd), 1);
	prom_sample(&w, "mailquota_view_age_seconds", NULL, 0, 0.25);
	assert_int_equal(prom_finish(&w, &why), 0);
	assert_string_equal(written(&b, &why),
	                    "# HELP mailquota_checks_total Checks answered.\\nBy \\\\ end.\n"
	                    "# TYPE mailquota_checks_total counter\n"
	                    "mailquota_checks_total{front_end=\"policy\",verdict=\"over_quota\"} "
	                    "18446744073709551615\n"
	                    "# HELP mailquota_build_info Build.\n"
	                    "# TYPE mailquota_build_info gauge\n"
	                    "mailquota_build_info{version=\"1.0 \\\"beta\\\"\\n\"} 1\n"
	                    "mailquota_view_age_seconds 0.25\n");
	buf_free(&b);
}

static void test_histogram(void **state)
{
	(void)state;
	static const double bounds[] = { 0.001, 0.01, 0.1 };
	static const uint64_t counts[] = { 3, 0, 2, 1 }; /* not cumulative; last: above 0.1 */
	static const struct prom_label fe[] = { { "front_end", "http" } };
	struct buf b;
	const char *why = NULL;
	struct prom_writer w;
	buf_init(&b, 4096);
	prom_init(&w, &b);
	prom_histogram(&w, "mailquota_check_duration_seconds", fe, N(fe), bounds, counts, N(bounds),
	               0.5);
	assert_int_equal(prom_finish(&w, &why), 0);
	assert_string_equal(
	        written(&b, &why),
	        "mailquota_check_duration_seconds_bucket{front_end=\"http\",le=\"0.001\"} 3\n"
	        "mailquota_check_duration_seconds_bucket{front_end=\"http\",le=\"0.01\"} 3\n"
	        "mailquota_check_duration_seconds_bucket{front_end=\"http\",le=\"0.1\"} 5\n"
	        "mailquota_check_duration_seconds_bucket{front_end=\"http\",le=\"+Inf\"} 6\n"
	        "mailquota_check_duration_seconds_sum{front_end=\"http\"} 0.5\n"
	        "mailquota_check_duration_seconds_count{front_end=\"http\"} 6\n");
	/* no labels, no bounds: only +Inf; a count that would wrap saturates */
	static const uint64_t huge[] = { UINT64_MAX };
	buf_reset(&b);
	prom_histogram(&w, "h", NULL, 0, NULL, huge, 0, 0);
	assert_int_equal(prom_finish(&w, &why), 0);
	assert_string_equal(b.data, "h_bucket{le=\"+Inf\"} 18446744073709551615\n"
	                            "h_sum 0\n"
	                            "h_count 18446744073709551615\n");
	buf_free(&b);
}

/* Every refusal: the first failure is kept and reported. */
static void test_failures(void **state)
{
	(void)state;
	static const double bad_bounds[] = { 0.1, 0.1 };
	static const double inf_bounds[] = { 1, INFINITY };
	static const uint64_t counts[3] = { 0 };
	static const struct prom_label five[5] = {
		{ "a", "" }, { "b", "" }, { "c", "" }, { "d", "" }, { "e", "" }
	};
	static const struct prom_label badl[] = { { "__name__", "x" } };
	double many[PROM_BUCKETS_MAX + 1];
	uint64_t many_counts[PROM_BUCKETS_MAX + 2] = { 0 };
	for (size_t i = 0; i < N(many); i++)
		many[i] = (double)i;
	const char *why;
	struct buf b;
	struct prom_writer w;
	buf_init(&b, 4096);
	for (int c = 0; c < 7; c++) {
		buf_reset(&b);
		prom_init(&w, &b);
		why = NULL;
		switch (c) {
		case 0:
			prom_family(&w, "bad name", PROM_GAUGE, "x");
			break;
		case 1:
			prom_sample(&w, "m", five, N(five), 1);
			break;
		case 2:
			prom_sample(&w, "m", badl, N(badl), 1);
			break;
		case 3:
			prom_histogram(&w, "h", NULL, 0, bad_bounds, counts, N(bad_bounds), 0);
			break;
		case 4:
			prom_histogram(&w, "h", NULL, 0, inf_bounds, counts, N(inf_bounds), 0);
			break;
		case 5:
			prom_histogram(&w, "h", NULL, 0, many, many_counts, N(many), 0);
			break;
		case 6: {
			char help[PROM_HELP_MAX + 2];
			memset(help, 'h', sizeof(help) - 1);
			help[sizeof(help) - 1] = '\0';
			prom_family(&w, "m", PROM_GAUGE, help);
			break;
		}
		}
		prom_sample(&w, "after_a_failure", NULL, 0, 1); /* does nothing now */
		assert_int_equal(prom_finish(&w, &why), -1);
		assert_non_null(why);
		assert_null(b.data == NULL ? NULL : strstr(b.data, "after_a_failure"));
	}
	buf_free(&b);
	/* a full buffer */
	buf_init(&b, 16);
	prom_init(&w, &b);
	prom_family(&w, "mailquota_checks_total", PROM_COUNTER, "Checks.");
	assert_int_equal(prom_finish(&w, &why), -1);
	assert_string_equal(why, "the exposition outgrew its buffer");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),        cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_label_escape), cmocka_unit_test(test_escape_limits),
		cmocka_unit_test(test_samples),      cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
