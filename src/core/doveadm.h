/*
 * doveadm: the output of Dovecot's `doveadm quota get -A` (2.3), read one line at a time, and
 * each user's figures gathered from its rows (pure: no I/O, no allocation).
 *
 * What doveadm prints (src/plugins/quota/doveadm-quota.c, src/doveadm/doveadm-mail.c and the
 * formatters src/doveadm/doveadm-print-{tab,table,flow}.c of Dovecot 2.3.19.1): one row per
 * user, quota root and resource, with the columns Username, Quota name, Type, Value, Limit, %.
 * Type is STORAGE (Value and Limit in kibibytes, rounded up by Dovecot's quota_get_resource())
 * or MESSAGE (a count); Limit is "-" when unlimited; a figure Dovecot could not read is printed
 * as "error" in Value, Limit and %. No formatter escapes anything. Three formats are read:
 *   -f tab    "bob@example.org<TAB>User quota<TAB>STORAGE<TAB>7168<TAB>10240<TAB>70", after a
 *             header line of the titles (left out with doveadm -h);
 *   (table)   the default: the same columns padded with spaces (a quota root's name may hold
 *             spaces: it is what lies between the user and the last four columns);
 *   -f flow   "bob@example.org Quota name=User quota Type=STORAGE Value=7168 Limit=10240 %=70"
 *             (no header; the username's title is hidden).
 * The format is told apart per line: a tab makes it tab, " Type=" flow, anything else table.
 */
#ifndef MQ_DOVEADM_H
#define MQ_DOVEADM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DOVEADM_LINE_MAX 4096 /* one line of doveadm's output, without its line end */
#define DOVEADM_USER_MAX 320  /* a username (user@domain: longer than any address) */
#define DOVEADM_ROOT_MAX 255  /* a quota root's name */

enum doveadm_resource { DOVEADM_STORAGE, DOVEADM_MESSAGE };

/* What a line is. */
enum doveadm_line {
	DOVEADM_ROW,    /* a figure: the row is filled */
	DOVEADM_FAILED, /* doveadm could not read this figure ("error"): user, root, resource set */
	DOVEADM_HEADER, /* the titles (Username, Quota name, Type, Value, Limit, %) */
	DOVEADM_BLANK,  /* empty, or white space only */
};

struct doveadm_row {
	char user[DOVEADM_USER_MAX + 1];
	char root[DOVEADM_ROOT_MAX + 1]; /* may be "": a root configured without a name */
	enum doveadm_resource resource;
	uint64_t value;  /* as printed: KiB for STORAGE, messages for MESSAGE */
	uint64_t figure; /* bytes (value x 1024) for STORAGE, messages for MESSAGE; <= INT64_MAX */
	bool limited;    /* false: Limit was "-" */
	uint64_t limit;  /* as printed, when limited */
};

/*
 * Parse line[0..len) (without its "\n"; a trailing "\r" is ignored). 0 with *kind_r (and
 * *row_r for DOVEADM_ROW and DOVEADM_FAILED), or -1 with static *error_r: not six columns, an
 * unknown Type, a number that is not one or whose figure passes INT64_MAX, an empty or overlong
 * username, control characters, a line over DOVEADM_LINE_MAX.
 */
int doveadm_parse_line(const char *line, size_t len, enum doveadm_line *kind_r,
                       struct doveadm_row *row_r, const char **error_r)
        __attribute__((warn_unused_result));

/* One user's figures, gathered from the rows of one quota root. */
struct doveadm_user {
	char user[DOVEADM_USER_MAX + 1];
	char root[DOVEADM_ROOT_MAX + 1]; /* the root taken ("" with no row of it) */
	size_t line;                     /* the user's first line */
	bool has_bytes, has_messages;
	uint64_t bytes, messages;
	bool failed;        /* doveadm printed "error" for a figure of the root taken */
	size_t failed_line; /* where, when failed */
};

/*
 * Gathers users from rows. doveadm prints all of a user's rows (every root, every resource)
 * before the next user's, so a user is complete when a row of another user (or the end) comes.
 * Of several quota roots, one is taken per user: the one named root, or when root is NULL the
 * first one the user's rows name (Dovecot prints roots in the order of its quota, quota2, ...
 * settings, so this is `quota`). Rows of other roots are counted in ignored and skipped.
 */
struct doveadm_reader {
	const char *root; /* borrowed; NULL: each user's first root */
	struct doveadm_user cur;
	bool open;      /* cur holds a user */
	bool root_seen; /* cur's root was taken from a row */
	size_t ignored; /* rows of other quota roots */
};

void doveadm_reader_init(struct doveadm_reader *r, const char *root);

/*
 * Feed the row of line (as doveadm_parse_line() gave it: DOVEADM_ROW or DOVEADM_FAILED; other
 * kinds are ignored). Returns 1 when row begins another user: the previous one is complete in
 * *done_r; else 0. Within one user a later row for the same resource replaces an earlier one.
 */
int doveadm_reader_feed(struct doveadm_reader *r, size_t line, enum doveadm_line kind,
                        const struct doveadm_row *row, struct doveadm_user *done_r);

/* At the end of the input: 1 with the last user in *done_r, or 0 when there is none. */
int doveadm_reader_finish(struct doveadm_reader *r, struct doveadm_user *done_r);

#endif
