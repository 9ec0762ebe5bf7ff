/*
 * doveadm: `doveadm quota get -A` output, line by line, into rows, and rows into each user's
 * figures (see doveadm.h for what Dovecot prints and where). Pure: no I/O, no allocation, no
 * globals. It must never read outside line[0..len), never accept a figure that is not a
 * decimal number or whose byte count passes INT64_MAX, and never mix the rows of two users or
 * of two quota roots into one user's figures.
 */
#include "doveadm.h"

#include <string.h>

#include "strnum.h"

/* A piece of the line. */
struct span {
	const char *p;
	size_t n;
};

/* The six columns in doveadm's order. */
enum { COL_USER, COL_ROOT, COL_TYPE, COL_VALUE, COL_LIMIT, COL_PERCENT, COLS };

static bool span_is(struct span s, const char *lit)
{
	return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static bool is_space(char c)
{
	return c == ' ';
}

/* s without spaces at either end. */
static struct span trim(struct span s)
{
	while (s.n > 0 && is_space(s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && is_space(s.p[s.n - 1]))
		s.n--;
	return s;
}

/* -f tab: fields between tabs, exactly six (five: no Username column). 0 or -1. */
static int split_tab(struct span line, struct span col[COLS], const char **error_r)
{
	size_t k = 0;
	const char *p = line.p, *end = line.p + line.n;
	for (;;) {
		const char *tab = memchr(p, '\t', (size_t)(end - p));
		const char *stop = tab != NULL ? tab : end;
		if (k == COLS) {
			*error_r = "more than six tab-separated columns";
			return -1;
		}
		col[k++] = (struct span){ p, (size_t)(stop - p) };
		if (tab == NULL)
			break;
		p = tab + 1;
	}
	if (k == COLS - 1) {
		*error_r = "no Username column: run doveadm quota get with -A (or -u with a "
		           "wildcard)";
		return -1;
	}
	if (k != COLS) {
		*error_r = "fewer than six tab-separated columns";
		return -1;
	}
	return 0;
}

/* The last occurrence of lit in s, or NULL. */
static const char *last_of(struct span s, const char *lit)
{
	size_t n = strlen(lit);
	for (size_t i = s.n; i >= n; i--)
		if (memcmp(s.p + i - n, lit, n) == 0)
			return s.p + i - n;
	return NULL;
}

/* -f flow: "USER Quota name=ROOT Type=T Value=V Limit=L %=P"; titles are searched from the
   right, so a root's name may hold anything but the titles after it. 0 or -1. */
static int split_flow(struct span line, struct span col[COLS], const char **error_r)
{
	static const char *const titles[COLS] = {
		[COL_ROOT] = " Quota name=", [COL_TYPE] = " Type=", [COL_VALUE] = " Value=",
		[COL_LIMIT] = " Limit=",     [COL_PERCENT] = " %=",
	};
	struct span rest = line;
	const char *starts[COLS];
	for (int k = COL_PERCENT; k >= COL_ROOT; k--) {
		const char *at = last_of(rest, titles[k]);
		if (at == NULL) {
			*error_r = "a flow line without Quota name=, Type=, Value=, Limit= and %=";
			return -1;
		}
		starts[k] = at;
		rest.n = (size_t)(at - rest.p);
	}
	col[COL_USER] = rest;
	const char *end = line.p + line.n;
	for (int k = COL_ROOT; k < COLS; k++) {
		const char *from = starts[k] + strlen(titles[k]);
		const char *to = k + 1 < COLS ? starts[k + 1] : end;
		col[k] = (struct span){ from, (size_t)(to - from) };
	}
	return 0;
}

/* The table (default): words separated by runs of spaces; the first is the user, the last four
   are Type, Value, Limit and %, what lies between (trimmed) is the root. 0 or -1. */
static int split_table(struct span line, struct span col[COLS], const char **error_r)
{
	struct span words[5]; /* the first word, then the last four */
	const char *end = line.p + line.n, *p = line.p;
	while (p < end && is_space(*p))
		p++;
	const char *w = p;
	while (p < end && !is_space(*p))
		p++;
	words[0] = (struct span){ w, (size_t)(p - w) };
	const char *root_from = p, *q = end;
	for (int k = 4; k >= 1; k--) {
		while (q > root_from && is_space(q[-1]))
			q--;
		const char *we = q;
		while (q > root_from && !is_space(q[-1]))
			q--;
		if (q == we) {
			*error_r = "not six columns (Username, Quota name, Type, Value, Limit, %)";
			return -1;
		}
		words[k] = (struct span){ q, (size_t)(we - q) };
	}
	col[COL_USER] = words[0];
	col[COL_ROOT] = trim((struct span){ root_from, (size_t)(q - root_from) });
	for (int k = 1; k <= 4; k++)
		col[COL_ROOT + k] = words[k];
	return 0;
}

/* Whether s holds a control character. */
static bool has_control(struct span s)
{
	for (size_t i = 0; i < s.n; i++)
		if ((unsigned char)s.p[i] < 0x20 || s.p[i] == 0x7f)
			return true;
	return false;
}

static int number(struct span s, uint64_t max, uint64_t *out_r)
{
	return strnum_u64(s.p, s.n, max, out_r);
}

/* The columns as a row (or the header, or a failed figure). 0 or -1. */
static int take_columns(struct span col[COLS], enum doveadm_line *kind_r, struct doveadm_row *row_r,
                        const char **error_r)
{
	if (span_is(col[COL_USER], "Username") && span_is(col[COL_TYPE], "Type") &&
	    span_is(col[COL_VALUE], "Value")) {
		*kind_r = DOVEADM_HEADER;
		return 0;
	}
	struct span user = col[COL_USER], root = col[COL_ROOT];
	if (user.n == 0 || user.n > DOVEADM_USER_MAX || memchr(user.p, ' ', user.n) != NULL) {
		*error_r = "the username is empty, too long or holds a space";
		return -1;
	}
	if (root.n > DOVEADM_ROOT_MAX) {
		*error_r = "the quota root's name is too long";
		return -1;
	}
	if (has_control(user) || has_control(root)) {
		*error_r = "control characters in the username or the quota root's name";
		return -1;
	}
	struct doveadm_row row = { .limited = false };
	if (span_is(col[COL_TYPE], "STORAGE")) {
		row.resource = DOVEADM_STORAGE;
	} else if (span_is(col[COL_TYPE], "MESSAGE")) {
		row.resource = DOVEADM_MESSAGE;
	} else {
		*error_r = "Type is neither STORAGE nor MESSAGE";
		return -1;
	}
	memcpy(row.user, user.p, user.n); /* both checked against their arrays above */
	memcpy(row.root, root.p, root.n);
	if (span_is(col[COL_VALUE], "error")) {
		*kind_r = DOVEADM_FAILED;
		*row_r = row;
		return 0;
	}
	/* STORAGE is in KiB: the byte count must stay within INT64_MAX */
	uint64_t max = row.resource == DOVEADM_STORAGE ? INT64_MAX / 1024 : INT64_MAX;
	uint64_t pct;
	if (number(col[COL_VALUE], max, &row.value) < 0) {
		*error_r = "Value is not a number of at most 2^63-1 bytes or messages";
		return -1;
	}
	if (!span_is(col[COL_LIMIT], "-")) {
		if (number(col[COL_LIMIT], UINT64_MAX, &row.limit) < 0) {
			*error_r = "Limit is neither a number nor -";
			return -1;
		}
		row.limited = true;
	}
	if (number(col[COL_PERCENT], UINT64_MAX, &pct) < 0) {
		*error_r = "% is not a number";
		return -1;
	}
	row.figure = row.resource == DOVEADM_STORAGE ? row.value * 1024 : row.value;
	*kind_r = DOVEADM_ROW;
	*row_r = row;
	return 0;
}

int doveadm_parse_line(const char *line, size_t len, enum doveadm_line *kind_r,
                       struct doveadm_row *row_r, const char **error_r)
{
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > DOVEADM_LINE_MAX) {
		*error_r = "line too long";
		return -1;
	}
	struct span s = { line, len }, col[COLS];
	if (memchr(line, '\0', len) != NULL) {
		*error_r = "a NUL byte";
		return -1;
	}
	bool tab = memchr(line, '\t', len) != NULL;
	if (!tab && trim(s).n == 0) {
		*kind_r = DOVEADM_BLANK;
		return 0;
	}
	int rc = tab                            ? split_tab(s, col, error_r)
	         : last_of(s, " Type=") != NULL ? split_flow(s, col, error_r)
	                                        : split_table(s, col, error_r);
	if (rc < 0)
		return -1;
	return take_columns(col, kind_r, row_r, error_r);
}

void doveadm_reader_init(struct doveadm_reader *r, const char *root)
{
	memset(r, 0, sizeof(*r));
	r->root = root;
}

int doveadm_reader_feed(struct doveadm_reader *r, size_t line, enum doveadm_line kind,
                        const struct doveadm_row *row, struct doveadm_user *done_r)
{
	if (kind != DOVEADM_ROW && kind != DOVEADM_FAILED)
		return 0;
	int ret = 0;
	if (r->open && strcmp(r->cur.user, row->user) != 0) {
		*done_r = r->cur;
		r->open = false;
		ret = 1;
	}
	if (!r->open) {
		memset(&r->cur, 0, sizeof(r->cur));
		memcpy(r->cur.user, row->user, sizeof(r->cur.user)); /* same array size */
		r->cur.line = line;
		r->open = true;
		r->root_seen = false;
	}
	const char *want = r->root != NULL ? r->root : r->root_seen ? r->cur.root : row->root;
	if (strcmp(want, row->root) != 0) {
		r->ignored++;
		return ret;
	}
	if (!r->root_seen) {
		memcpy(r->cur.root, row->root, sizeof(r->cur.root)); /* same array size */
		r->root_seen = true;
	}
	bool storage = row->resource == DOVEADM_STORAGE;
	if (kind == DOVEADM_FAILED) {
		if (!r->cur.failed)
			r->cur.failed_line = line;
		r->cur.failed = true;
	} else if (storage) {
		r->cur.has_bytes = true;
		r->cur.bytes = row->figure;
	} else {
		r->cur.has_messages = true;
		r->cur.messages = row->figure;
	}
	return ret;
}

int doveadm_reader_finish(struct doveadm_reader *r, struct doveadm_user *done_r)
{
	if (!r->open)
		return 0;
	*done_r = r->cur;
	r->open = false;
	return 1;
}
