/* Table tests for the `doveadm quota get -A` line parser and the per-user reader: the tab,
   table and flow formats of Dovecot 2.3, kibibytes, unlimited limits, failed figures, several
   quota roots, and every way a line can be wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "doveadm.h"

struct line_case {
	const char *line;
	int rc;
	enum doveadm_line kind;
	const char *user, *root;
	enum doveadm_resource resource;
	uint64_t value, figure;
	bool limited;
	uint64_t limit;
};

#define ROW(l, u, r, res, v, f, lim, limv)                    \
	{                                                     \
		l, 0, DOVEADM_ROW, u, r, res, v, f, lim, limv \
	}
#define KIND(l, k)                                                   \
	{                                                            \
		l, 0, k, NULL, NULL, DOVEADM_STORAGE, 0, 0, false, 0 \
	}
#define BAD(l)                                                                    \
	{                                                                         \
		l, -1, DOVEADM_BLANK, NULL, NULL, DOVEADM_STORAGE, 0, 0, false, 0 \
	}
#define S DOVEADM_STORAGE
#define M DOVEADM_MESSAGE

static const struct line_case lines[] = {
	/* -f tab: the header, rows of both types, unlimited, a root without a name, \r\n */
	KIND("Username\tQuota name\tType\tValue\tLimit\t%", DOVEADM_HEADER),
	ROW("bob@example.org\tUser quota\tSTORAGE\t7168\t10240\t70", "bob@example.org",
	    "User quota", S, 7168, 7168 * 1024, true, 10240),
	ROW("bob@example.org\tUser quota\tMESSAGE\t12\t-\t0", "bob@example.org", "User quota", M,
	    12, 12, false, 0),
	ROW("ann@example.org\t\tSTORAGE\t0\t-\t0\r", "ann@example.org", "", S, 0, 0, false, 0),
	ROW("a@b\tq\tSTORAGE\t9007199254740991\t-\t0", "a@b", "q", S, 9007199254740991ULL,
	    9007199254740991ULL * 1024, false, 0),
	ROW("a@b\tq\tMESSAGE\t9223372036854775807\t1\t0", "a@b", "q", M, INT64_MAX, INT64_MAX, true,
	    1),
	{ "bob@example.org\tUser quota\tSTORAGE\terror\terror\terror", 0, DOVEADM_FAILED,
	  "bob@example.org", "User quota", S, 0, 0, false, 0 },
	/* the default table: padded columns, a root with spaces, the widened last column */
	KIND("Username        Quota name Type    Value Limit                      %",
	     DOVEADM_HEADER),
	ROW("bob@example.org User quota STORAGE  7168 10240                     70",
	    "bob@example.org", "User quota", S, 7168, 7168 * 1024, true, 10240),
	ROW("bob@example.org User quota MESSAGE    12     -                      0",
	    "bob@example.org", "User quota", M, 12, 12, false, 0),
	ROW("x@y   Shared   quota   STORAGE 1 - 0", "x@y", "Shared   quota", S, 1, 1024, false, 0),
	ROW("x@y STORAGE 1 - 0", "x@y", "", S, 1, 1024, false, 0),
	ROW("  x@y  q  MESSAGE 3 4 75  ", "x@y", "q", M, 3, 3, true, 4),
	{ "carol@example.org User quota STORAGE error error error", 0, DOVEADM_FAILED,
	  "carol@example.org", "User quota", S, 0, 0, false, 0 },
	/* -f flow */
	ROW("bob@example.org Quota name=User quota Type=STORAGE Value=7168 Limit=10240 %=70",
	    "bob@example.org", "User quota", S, 7168, 7168 * 1024, true, 10240),
	ROW("bob@example.org Quota name= Type=MESSAGE Value=2 Limit=- %=0", "bob@example.org", "",
	    M, 2, 2, false, 0),
	/* blank lines */
	KIND("", DOVEADM_BLANK),
	KIND("   ", DOVEADM_BLANK),
	KIND("\r", DOVEADM_BLANK),
	/* wrong */
	BAD("bob@example.org\tUser quota\tSTORAGE\t1\t-"),       /* five columns: no -A */
	BAD("bob@example.org\tUser quota\tSTORAGE\t1\t-\t0\tx"), /* seven */
	BAD("bob\tq\tBYTES\t1\t-\t0"),                           /* unknown type */
	BAD("bob\tq\tstorage\t1\t-\t0"),                         /* case matters */
	BAD("bob\tq\tSTORAGE\t-1\t-\t0"),
	BAD("bob\tq\tSTORAGE\t1.5\t-\t0"),
	BAD("bob\tq\tSTORAGE\t\t-\t0"),
	BAD("bob\tq\tSTORAGE\t9007199254740992\t-\t0"), /* 2^53 KiB: over 2^63-1 bytes */
	BAD("bob\tq\tMESSAGE\t9223372036854775808\t-\t0"),
	BAD("bob\tq\tMESSAGE\t1\tlots\t0"),
	BAD("bob\tq\tMESSAGE\t1\t-\t"),
	BAD("\tq\tMESSAGE\t1\t-\t0"), /* no user */
	BAD("b b\tq\tMESSAGE\t1\t-\t0"),
	BAD("bob\tq\x01\tMESSAGE\t1\t-\t0"),
	BAD("bob STORAGE 1 -"), /* four words */
	BAD("justoneword"),
	BAD("bob q MESSAGE 1 - x"),
	BAD("bob Quota name=q Type=STORAGE Value=1 Limit=-"), /* flow without %= */
	BAD("bob Quota name=q Type=STORAGE Value=x Limit=- %=0"),
};

static void test_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		const struct line_case *c = &lines[i];
		enum doveadm_line kind = DOVEADM_BLANK;
		struct doveadm_row row;
		const char *err = NULL;
		memset(&row, 0xa5, sizeof(row));
		int rc = doveadm_parse_line(c->line, strlen(c->line), &kind, &row, &err);
		if (rc != c->rc)
			fail_msg("case %zu \"%s\": rc %d, want %d (%s)", i, c->line, rc, c->rc,
			         err != NULL ? err : "");
		if (rc < 0) {
			assert_non_null(err);
			continue;
		}
		if (kind != c->kind)
			fail_msg("case %zu \"%s\": kind %d, want %d", i, c->line, kind, c->kind);
		if (kind != DOVEADM_ROW && kind != DOVEADM_FAILED)
			continue;
		assert_string_equal(row.user, c->user);
		assert_string_equal(row.root, c->root);
		assert_int_equal(row.resource, c->resource);
		if (kind == DOVEADM_FAILED)
			continue;
		assert_true(row.value == c->value);
		assert_true(row.figure == c->figure);
		assert_int_equal(row.limited, c->limited);
		if (c->limited)
			assert_true(row.limit == c->limit);
	}
}

static void test_limits(void **state)
{
	(void)state;
	enum doveadm_line kind;
	struct doveadm_row row;
	const char *err;
	char line[DOVEADM_LINE_MAX + 64];
	/* a username of exactly DOVEADM_USER_MAX, then one more */
	char user[DOVEADM_USER_MAX + 2];
	memset(user, 'u', sizeof(user));
	user[DOVEADM_USER_MAX] = '\0';
	snprintf(line, sizeof(line), "%s\tq\tMESSAGE\t1\t-\t0", user);
	assert_int_equal(doveadm_parse_line(line, strlen(line), &kind, &row, &err), 0);
	assert_int_equal(strlen(row.user), DOVEADM_USER_MAX);
	user[DOVEADM_USER_MAX] = 'u';
	user[DOVEADM_USER_MAX + 1] = '\0';
	snprintf(line, sizeof(line), "%s\tq\tMESSAGE\t1\t-\t0", user);
	assert_int_equal(doveadm_parse_line(line, strlen(line), &kind, &row, &err), -1);
	/* a root of DOVEADM_ROOT_MAX + 1 */
	char root[DOVEADM_ROOT_MAX + 2];
	memset(root, 'r', sizeof(root));
	root[DOVEADM_ROOT_MAX + 1] = '\0';
	snprintf(line, sizeof(line), "u\t%s\tMESSAGE\t1\t-\t0", root);
	assert_int_equal(doveadm_parse_line(line, strlen(line), &kind, &row, &err), -1);
	/* a line over DOVEADM_LINE_MAX, and a NUL byte inside one */
	memset(line, ' ', DOVEADM_LINE_MAX + 1);
	assert_int_equal(doveadm_parse_line(line, DOVEADM_LINE_MAX + 1, &kind, &row, &err), -1);
	static const char nul[] = "u\tq\tMESSAGE\t1\0\t-\t0";
	assert_int_equal(doveadm_parse_line(nul, sizeof(nul) - 1, &kind, &row, &err), -1);
	/* only len bytes are read: the rest of the buffer is not the line */
	static const char more[] = "u\tq\tMESSAGE\t12\t-\t0garbage";
	assert_int_equal(doveadm_parse_line(more, sizeof(more) - 1 - 7, &kind, &row, &err), 0);
	assert_true(row.value == 12);
}

/* A stream of lines through the reader: what each user comes to. */
struct user_want {
	const char *user, *root;
	size_t line;
	bool has_bytes, has_messages;
	uint64_t bytes, messages;
	bool failed;
};

static size_t read_users(const char *const *in, const char *root, struct user_want *got, size_t max,
                         size_t *ignored)
{
	struct doveadm_reader r;
	struct doveadm_user u;
	size_t n = 0;
	doveadm_reader_init(&r, root);
	for (size_t i = 0; in[i] != NULL; i++) {
		enum doveadm_line kind;
		struct doveadm_row row;
		const char *err;
		assert_int_equal(doveadm_parse_line(in[i], strlen(in[i]), &kind, &row, &err), 0);
		if (doveadm_reader_feed(&r, i + 1, kind, &row, &u) == 1) {
			assert_true(n < max);
			got[n++] = (struct user_want){ strdup(u.user), strdup(u.root), u.line,
				                       u.has_bytes,    u.has_messages, u.bytes,
				                       u.messages,     u.failed };
		}
	}
	if (doveadm_reader_finish(&r, &u) == 1) {
		assert_true(n < max);
		got[n++] =
		        (struct user_want){ strdup(u.user), strdup(u.root), u.line,     u.has_bytes,
			                    u.has_messages, u.bytes,        u.messages, u.failed };
	}
	assert_int_equal(doveadm_reader_finish(&r, &u), 0);
	*ignored = r.ignored;
	return n;
}

static void check_users(const struct user_want *got, size_t n, const struct user_want *want,
                        size_t nwant)
{
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(got[i].user, want[i].user);
		assert_string_equal(got[i].root, want[i].root);
		assert_int_equal(got[i].line, want[i].line);
		assert_int_equal(got[i].has_bytes, want[i].has_bytes);
		assert_int_equal(got[i].has_messages, want[i].has_messages);
		assert_true(got[i].bytes == want[i].bytes);
		assert_true(got[i].messages == want[i].messages);
		assert_int_equal(got[i].failed, want[i].failed);
		free((char *)got[i].user);
		free((char *)got[i].root);
	}
}

static const char *const two_roots[] = {
	"Username\tQuota name\tType\tValue\tLimit\t%",
	"bob@x\tUser quota\tSTORAGE\t10\t100\t10",
	"bob@x\tUser quota\tMESSAGE\t3\t-\t0",
	"bob@x\tDomain\tSTORAGE\t5000\t-\t0",
	"bob@x\tDomain\tMESSAGE\t90\t-\t0",
	"ann@x\tUser quota\tSTORAGE\t1\t-\t0",
	"ann@x\tUser quota\tMESSAGE\terror\terror\terror",
	"ann@x\tDomain\tSTORAGE\t5000\t-\t0",
	"",
	"cy@x\tDomain\tSTORAGE\t7\t-\t0", /* a user without the first root */
	NULL,
};

static void test_reader(void **state)
{
	(void)state;
	struct user_want got[8];
	size_t ignored;
	/* each user's first root */
	size_t n = read_users(two_roots, NULL, got, 8, &ignored);
	const struct user_want first[] = {
		{ "bob@x", "User quota", 2, true, true, 10240, 3, false },
		{ "ann@x", "User quota", 6, true, false, 1024, 0, true },
		{ "cy@x", "Domain", 10, true, false, 7168, 0, false },
	};
	check_users(got, n, first, 3);
	assert_int_equal(ignored, 3);
	/* a named root: users without it come with no figures */
	n = read_users(two_roots, "Domain", got, 8, &ignored);
	const struct user_want domain[] = {
		{ "bob@x", "Domain", 2, true, true, 5000 * 1024, 90, false },
		{ "ann@x", "Domain", 6, true, false, 5000 * 1024, 0, false },
		{ "cy@x", "Domain", 10, true, false, 7168, 0, false },
	};
	check_users(got, n, domain, 3);
	assert_int_equal(ignored, 4);
	n = read_users(two_roots, "nope", got, 8, &ignored);
	const struct user_want none[] = {
		{ "bob@x", "", 2, false, false, 0, 0, false },
		{ "ann@x", "", 6, false, false, 0, 0, false },
		{ "cy@x", "", 10, false, false, 0, 0, false },
	};
	check_users(got, n, none, 3);
	assert_int_equal(ignored, 8);
	/* a user's rows split by another user's make two users; nothing at all makes none */
	static const char *const split[] = {
		"a@x q STORAGE 1 - 0",
		"b@x q STORAGE 2 - 0",
		"a@x q MESSAGE 3 - 0",
		NULL,
	};
	n = read_users(split, NULL, got, 8, &ignored);
	const struct user_want twice[] = {
		{ "a@x", "q", 1, true, false, 1024, 0, false },
		{ "b@x", "q", 2, true, false, 2048, 0, false },
		{ "a@x", "q", 3, false, true, 0, 3, false },
	};
	check_users(got, n, twice, 3);
	static const char *const empty[] = { "Username Quota name Type Value Limit %", "", NULL };
	assert_int_equal(read_users(empty, NULL, got, 8, &ignored), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_reader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
