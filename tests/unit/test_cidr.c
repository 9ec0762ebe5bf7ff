/* Table tests for network lists (policy_tcp_allow) and peer matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "cidr.h"

static const struct {
	const char *text;
	int rc;
	unsigned n;
} parse_cases[] = {
	{ "", 0, 0 },
	{ "127.0.0.0/8 ::1", 0, 2 },
	{ "127.0.0.0/8,::1", 0, 2 },
	{ " 10.0.0.0/8 ,\t192.0.2.7  ", 0, 2 },
	{ "[::1]/128 [fd00::]/8", 0, 2 },
	{ "0.0.0.0/0", 0, 1 },
	{ "::/0", 0, 1 },
	{ "192.0.2.1/24", -1, 0 },  /* host bits set */
	{ "127.0.0.0/33", -1, 0 },  /* v4 prefix too long */
	{ "::1/129", -1, 0 },       /* v6 prefix too long */
	{ "127.0.0.0/", -1, 0 },    /* empty prefix */
	{ "127.0.0.0/-1", -1, 0 },  /* not a number */
	{ "127.0.0.0/08x", -1, 0 }, /* trailing junk */
	{ "localhost", -1, 0 },     /* names are not networks */
	{ "127.1", -1, 0 },         /* inet_pton refuses the short forms */
	{ "[127.0.0.1]", -1, 0 },   /* brackets are for IPv6 */
	{ "1.2.3.4.5", -1, 0 },
	{ "0123456789012345678901234567890123456789012345678901234567890123456789", -1, 0 },
};

static void test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		struct cidr_list l = { .n = 99 };
		const char *why = NULL;
		int rc = cidr_list_parse(parse_cases[i].text, &l, &why);
		if (rc != parse_cases[i].rc)
			fail_msg("case %zu \"%s\": rc %d, want %d", i, parse_cases[i].text, rc,
			         parse_cases[i].rc);
		if (rc == 0)
			assert_int_equal(l.n, parse_cases[i].n);
		else
			assert_true(l.n == 99 && why != NULL); /* untouched, with a reason */
	}
}

static void test_too_many(void **state)
{
	(void)state;
	char text[CIDR_LIST_MAX * 16 + 32] = "";
	for (int i = 0; i <= CIDR_LIST_MAX; i++) {
		char one[20];
		snprintf(one, sizeof(one), "10.0.%d.0/24 ", i);
		strcat(text, one);
	}
	struct cidr_list l;
	const char *why;
	assert_int_equal(cidr_list_parse(text, &l, &why), -1);
}

static bool match4(const struct cidr_list *l, const char *a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	assert_int_equal(inet_pton(AF_INET, a, &sin.sin_addr), 1);
	return cidr_list_match(l, (struct sockaddr *)&sin);
}

static bool match6(const struct cidr_list *l, const char *a)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	assert_int_equal(inet_pton(AF_INET6, a, &sin6.sin6_addr), 1);
	return cidr_list_match(l, (struct sockaddr *)&sin6);
}

static const struct {
	const char *list;
	const char *addr;
	bool v6;
	bool match;
} match_cases[] = {
	{ "127.0.0.0/8 ::1", "127.0.0.1", false, true },
	{ "127.0.0.0/8 ::1", "127.255.255.254", false, true },
	{ "127.0.0.0/8 ::1", "128.0.0.1", false, false },
	{ "127.0.0.0/8 ::1", "::1", true, true },
	{ "127.0.0.0/8 ::1", "::2", true, false },
	{ "127.0.0.0/8 ::1", "::ffff:127.0.0.1", true, true }, /* v4-mapped: its IPv4 address */
	{ "127.0.0.0/8 ::1", "::ffff:10.0.0.1", true, false },
	{ "::ffff:0:0/96", "127.0.0.1", false, false }, /* families never mix otherwise */
	{ "192.0.2.0/25", "192.0.2.127", false, true },
	{ "192.0.2.0/25", "192.0.2.128", false, false },
	{ "192.0.2.7", "192.0.2.7", false, true },
	{ "192.0.2.7", "192.0.2.6", false, false },
	{ "0.0.0.0/0", "203.0.113.9", false, true },
	{ "fd00::/8", "fdab::1", true, true },
	{ "fc00::/7", "fdab::1", true, true },
	{ "fd00::/8", "fe80::1", true, false },
	{ "2001:db8::/33", "2001:db8:7fff::1", true, true },
	{ "2001:db8::/33", "2001:db8:8000::1", true, false },
	{ "", "127.0.0.1", false, false }, /* an empty list allows nobody */
};

static void test_match(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		struct cidr_list l;
		const char *why;
		assert_int_equal(cidr_list_parse(match_cases[i].list, &l, &why), 0);
		bool m = match_cases[i].v6 ? match6(&l, match_cases[i].addr)
		                           : match4(&l, match_cases[i].addr);
		if (m != match_cases[i].match)
			fail_msg("case %zu: %s in %s: %d", i, match_cases[i].addr,
			         match_cases[i].list, m);
	}
	struct cidr_list l;
	const char *why;
	assert_int_equal(cidr_list_parse("0.0.0.0/0 ::/0", &l, &why), 0);
	struct sockaddr sa = { .sa_family = AF_UNIX };
	assert_false(cidr_list_match(&l, &sa)); /* not an IP peer */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
