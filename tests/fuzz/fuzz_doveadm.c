/* libFuzzer target: `doveadm quota get -A` output, cut into lines as `mailquota usage load`
   cuts it, through doveadm_parse_line() and the per-user reader (each user's first root, and
   a named one). A parsed row must hold what its line said: written again as a -f tab line it
   parses to the same row; a figure never passes INT64_MAX; the reader hands out every user it
   opened exactly once. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doveadm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_row(enum doveadm_line kind, const struct doveadm_row *row)
{
	size_t ul = strnlen(row->user, sizeof(row->user)),
	       rl = strnlen(row->root, sizeof(row->root));
	if (ul == 0 || ul > DOVEADM_USER_MAX || rl > DOVEADM_ROOT_MAX)
		abort();
	if (kind == DOVEADM_FAILED)
		return;
	if (row->figure > INT64_MAX ||
	    row->figure != (row->resource == DOVEADM_STORAGE ? row->value * 1024 : row->value))
		abort();
	/* the same row as a -f tab line: it must parse to itself */
	char again[DOVEADM_LINE_MAX + 1];
	char limit[24];
	snprintf(limit, sizeof(limit), "%llu", (unsigned long long)row->limit);
	int n = snprintf(again, sizeof(again), "%s\t%s\t%s\t%llu\t%s\t0", row->user, row->root,
	                 row->resource == DOVEADM_STORAGE ? "STORAGE" : "MESSAGE",
	                 (unsigned long long)row->value, row->limited ? limit : "-");
	if (n < 0 || (size_t)n >= sizeof(again))
		return; /* a table line at the very limit may not fit as tab: nothing to compare */
	enum doveadm_line k2;
	struct doveadm_row r2;
	const char *err;
	if (doveadm_parse_line(again, (size_t)n, &k2, &r2, &err) < 0 || k2 != DOVEADM_ROW ||
	    strcmp(r2.user, row->user) != 0 || strcmp(r2.root, row->root) != 0 ||
	    r2.resource != row->resource || r2.value != row->value || r2.figure != row->figure ||
	    r2.limited != row->limited || (row->limited && r2.limit != row->limit))
		abort();
}

static void run(const uint8_t *data, size_t size, const char *root)
{
	struct doveadm_reader r;
	struct doveadm_user u;
	size_t opened = 0, done = 0, line = 0;
	doveadm_reader_init(&r, root);
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		enum doveadm_line kind;
		struct doveadm_row row;
		const char *err = NULL;
		line++;
		if (doveadm_parse_line(p, len, &kind, &row, &err) < 0) {
			if (err == NULL)
				abort();
		} else if (kind == DOVEADM_ROW || kind == DOVEADM_FAILED) {
			check_row(kind, &row);
			bool was_open = r.open;
			char before[DOVEADM_USER_MAX + 1];
			memcpy(before, r.cur.user, sizeof(before));
			int fed = doveadm_reader_feed(&r, line, kind, &row, &u);
			if (fed == 1) {
				done++;
				if (strcmp(u.user, before) != 0 || u.failed != (u.failed_line != 0))
					abort();
			}
			if (!was_open || fed == 1)
				opened++;
			if (!r.open || strcmp(r.cur.user, row.user) != 0)
				abort();
		}
		p += len + (nl != NULL);
	}
	if (doveadm_reader_finish(&r, &u) == 1)
		done++;
	if (done != opened || doveadm_reader_finish(&r, &u) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size, NULL);
	run(data, size, "User quota");
	return 0;
}
