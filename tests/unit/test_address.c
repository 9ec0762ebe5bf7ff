/* Table tests for address_normalize(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "address.h"

struct row {
	const char *in;
	bool fold;
	const char *delims;
	int ret;
	const char *local, *base, *domain;
};

static const struct row rows[] = {
	{ "User1+tag@Example.Test", true, "+", 0, "user1+tag", "user1", "example.test" },
	{ "User1+tag@Example.Test", false, "+", 0, "User1+tag", "User1", "example.test" },
	{ "user1@example.test", true, "+", 0, "user1", "user1", "example.test" },
	{ "<user1@example.test>", true, "+", 0, "user1", "user1", "example.test" },
	{ "a-b+c@x.test", true, "+-", 0, "a-b+c", "a", "x.test" },
	{ "a+b-c@x.test", true, "-+", 0, "a+b-c", "a", "x.test" },
	{ "+leading@x.test", true, "+", 0, "+leading", "+leading", "x.test" },
	{ "owner-list@x.test", true, "", 0, "owner-list", "owner-list", "x.test" },
	{ "a+b@x.test", true, "", 0, "a+b", "a+b", "x.test" },
	{ "\"quoted@local\"@x.test", true, "+", 0, "\"quoted@local\"", "\"quoted@local\"",
	  "x.test" },
	{ "u@[192.0.2.1]", true, "+", 0, "u", "u", "[192.0.2.1]" },
	{ "u@b\xc3\xbc"
	  "cher.test",
	  true, "+", 0, "u", "u",
	  "b\xc3\xbc"
	  "cher.test" },
	{ "", true, "+", -1, NULL, NULL, NULL },
	{ "<>", true, "+", -1, NULL, NULL, NULL },
	{ "postmaster", true, "+", -1, NULL, NULL, NULL },
	{ "@x.test", true, "+", -1, NULL, NULL, NULL },
	{ "u@", true, "+", -1, NULL, NULL, NULL },
	{ "u@.x.test", true, "+", -1, NULL, NULL, NULL },
	{ "u@x.test.", true, "+", -1, NULL, NULL, NULL },
	{ "u@x..test", true, "+", -1, NULL, NULL, NULL },
	{ "u@x test", true, "+", -1, NULL, NULL, NULL },
	{ "u\n@x.test", true, "+", -1, NULL, NULL, NULL },
	{ "u@[1.2.3.4", true, "+", -1, NULL, NULL, NULL },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct address_rules rules = { .fold_local = r->fold };
		strcpy(rules.delimiters, r->delims);
		struct address a;
		const char *err = NULL;
		int ret = address_normalize(r->in, strlen(r->in), &rules, &a, &err);
		if (ret != r->ret)
			fail_msg("row %zu (%s): got %d want %d", i, r->in, ret, r->ret);
		if (ret == 0) {
			assert_string_equal(a.local, r->local);
			assert_string_equal(a.base, r->base);
			assert_string_equal(a.domain, r->domain);
			assert_int_equal(a.has_extension, strcmp(r->local, r->base) != 0);
		} else {
			assert_non_null(err);
		}
	}
}

static void test_length_limits(void **state)
{
	(void)state;
	struct address_rules rules = { .fold_local = true, .delimiters = "+" };
	struct address a;
	const char *err;
	char buf[600];

	/* local part: 64 ok, 65 refused */
	memset(buf, 'a', 64);
	strcpy(buf + 64, "@x.test");
	assert_int_equal(address_normalize(buf, strlen(buf), &rules, &a, &err), 0);
	memset(buf, 'a', 65);
	strcpy(buf + 65, "@x.test");
	assert_int_equal(address_normalize(buf, strlen(buf), &rules, &a, &err), -1);
	assert_string_equal(err, "local part longer than 64 octets");
	/* ... unless an extension takes it over: the base is what is looked up (a long +tag must
	   not get past a full mailbox) */
	memset(buf, 0, sizeof(buf));
	strcpy(buf, "Full+");
	memset(buf + 5, 'a', 70);
	strcpy(buf + 75, "@x.test");
	assert_int_equal(address_normalize(buf, strlen(buf), &rules, &a, &err), 0);
	assert_string_equal(a.base, "full");
	assert_string_equal(a.local, "full");
	assert_true(a.has_extension);
	/* ... but a base over 64 names nothing */
	memset(buf, 'a', 65);
	strcpy(buf + 65, "+tag@x.test");
	assert_int_equal(address_normalize(buf, strlen(buf), &rules, &a, &err), -1);
	assert_string_equal(err, "local part longer than 64 octets");

	/* whole address: 254 ok, 255 refused */
	memset(buf, 0, sizeof(buf));
	strcpy(buf, "u@");
	for (size_t n = 2; n < 254; n++)
		buf[n] = (n % 10 == 0) ? '.' : 'd';
	assert_int_equal(strlen(buf), 254);
	assert_int_equal(address_normalize(buf, 254, &rules, &a, &err), 0);
	buf[254] = 'd';
	assert_int_equal(address_normalize(buf, 255, &rules, &a, &err), -1);
	assert_string_equal(err, "address longer than 254 octets");

	/* the length argument, not a NUL, bounds the input */
	assert_int_equal(address_normalize("u@x.testGARBAGE", 8, &rules, &a, &err), 0);
	assert_string_equal(a.domain, "x.test");

	/* NUL inside the length is a control character */
	assert_int_equal(address_normalize("u\0@x.test", 9, &rules, &a, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_length_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
