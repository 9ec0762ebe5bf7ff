/* Table tests for the COPY text-format row parser: escapes, nulls, field counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "copytext.h"

#define N NULL /* a null field in the expected values */

struct case_ {
	const char *line; /* as COPY ... TO STDOUT sends it */
	int rc;
	int n;
	const char *f[COPYTEXT_FIELDS_MAX];
};

static void test_rows(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
		{ "1\texample.com\t\\N\t100\n", 0, 4, { "1", "example.com", N, "100" } },
		{ "1\texample.com", 0, 2, { "1", "example.com" } }, /* no final newline */
		{ "", 0, 1, { "" } },
		{ "\n", 0, 1, { "" } },
		{ "\t", 0, 2, { "", "" } },
		{ "a\t\tb", 0, 3, { "a", "", "b" } },
		/* null is exactly \N; anything else is text */
		{ "\\N", 0, 1, { N } },
		{ "\\N\t\\N\n", 0, 2, { N, N } },
		{ "\\Nx\tx\\N", 0, 2, { "Nx", "xN" } },
		{ "\\\\N", 0, 1, { "\\N" } }, /* a backslash, then N: text */
		/* the escapes COPY TO writes */
		{ "a\\tb\tc\\nd", 0, 2, { "a\tb", "c\nd" } },
		{ "\\b\\f\\n\\r\\t\\v\\\\", 0, 1, { "\b\f\n\r\t\v\\" } },
		{ "C:\\\\dir\\\\", 0, 1, { "C:\\dir\\" } },
		/* a backslash before anything else stands for that character: COPY TO never writes
		   octal or hex escapes (COPY FROM would read \101 and \x41 as 'A') */
		{ "\\101\t\\x41\t\\a\t\\.", 0, 4, { "101", "x41", "a", "." } },
		{ "\\\t", 0, 1, { "\t" } },   /* escaped tab: data, not a separator */
		{ "ab\\", 0, 1, { "ab\\" } }, /* a backslash ending the line */
		{ "ab\\\n", 0, 1, { "ab\\" } },
		{ "a\r\n", 0, 1, { "a\r" } }, /* only the final \n is the line end */
		{ "\xc3\xa9\t\x01", 0, 2, { "\xc3\xa9", "\x01" } },
		/* COPYTEXT_FIELDS_MAX (16) fields, and one more */
		{ "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t",
		  0,
		  16,
		  { "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "" } },
		{ "0\t1\t2\t3\t4\t5\t6\t7\t8\t9\ta\tb\tc\td\te\tf\n",
		  0,
		  16,
		  { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e",
		    "f" } },
		{ "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t", -1, 0, { "" } },
		{ "0\t1\t2\t3\t4\t5\t6\t7\t8\t9\ta\tb\tc\td\te\tf\tg\n", -1, 0, { "" } },
		{ "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N"
		  "\t",
		  -1,
		  0,
		  { "" } },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct case_ *c = &cases[i];
		size_t len = strlen(c->line);
		/* exactly len bytes and the one writable byte after them, as libpq gives */
		char *line = malloc(len + 1);
		memcpy(line, c->line, len + 1);
		struct copytext_row r;
		int rc = copytext_parse_line(line, len, &r);
		if (rc != c->rc)
			fail_msg("case %zu: rc %d", i, rc);
		if (rc == 0) {
			if (r.n != c->n)
				fail_msg("case %zu: %d fields, expected %d", i, r.n, c->n);
			for (int k = 0; k < r.n; k++) {
				const char *want = c->f[k];
				if (r.f[k] < line || r.f[k] > line + len)
					fail_msg("case %zu field %d: not in the line", i, k);
				if (want == NULL ? !r.null[k] || r.f[k][0] != '\0'
				                 : r.null[k] || strcmp(r.f[k], want) != 0)
					fail_msg("case %zu field %d: \"%s\"%s", i, k, r.f[k],
					         r.null[k] ? " (null)" : "");
			}
		}
		free(line);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
