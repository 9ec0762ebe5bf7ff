/*
 * recalc: a batch of recalculations (absolute usage of many mailboxes) as
 * POST /v1/usage/recalculations takes it and `mailquota usage load` sends it: the limits, the
 * body's checks and each item's (pure). A request is
 *   {"source": "doveadm", "measured_at": "2026-11-22T03:00:00Z",
 *    "items": [{"mailbox": "bob@example.org", "bytes": 734003200, "messages": 5120}, ...]}
 * where an item gives bytes, messages or both (an omitted figure keeps its stored value) and may
 * carry its own measured_at. A body that is wrong as a whole is refused as a whole; an item that
 * is wrong is answered for itself while the others are applied. Nothing here resolves an
 * address or touches the database.
 */
#ifndef MQ_RECALC_H
#define MQ_RECALC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define RECALC_ITEMS_MAX  5000         /* items in one request */
#define RECALC_BODY_MAX   (512 * 1024) /* one request's body (the daemon's JSON body limit) */
#define RECALC_FIGURE_MAX INT64_MAX    /* bytes or messages of one mailbox */

/* What is wrong with a body as a whole; the daemon answers 413 for RECALC_TOO_MANY, else 400. */
enum recalc_problem {
	RECALC_INVALID_BODY,  /* not an object, an unknown member, no items */
	RECALC_INVALID_FIELD, /* source or measured_at is not what they take */
	RECALC_TOO_MANY,      /* more than RECALC_ITEMS_MAX items */
};

/* A checked body; everything borrowed from it. */
struct recalc_batch {
	json_t *items;           /* the array: 1..RECALC_ITEMS_MAX elements, each still unchecked */
	const char *source;      /* 1..USAGE_SOURCE_MAX characters */
	const char *measured_at; /* RFC 3339, or NULL: the database's now() */
};

/*
 * Check body's members (items, source, measured_at; nothing else). 0 with *batch_r, or -1 with
 * *problem_r, *field_r (the member at fault; "" for the body as a whole) and *error_r, all
 * static.
 */
int recalc_check_batch(json_t *body, struct recalc_batch *batch_r, enum recalc_problem *problem_r,
                       const char **field_r, const char **error_r)
        __attribute__((warn_unused_result));

/* One checked item; the strings borrowed from it. */
struct recalc_item {
	const char *mailbox; /* as given: the caller normalises it (resource_key_parse) */
	bool has_bytes, has_messages;
	uint64_t bytes, messages; /* each at most RECALC_FIGURE_MAX; 0 when not given */
	const char *measured_at;  /* RFC 3339, or NULL: the batch's */
};

/*
 * Check one item: an object with mailbox (a string) and at least one of bytes and messages
 * (integers 0..RECALC_FIGURE_MAX), optionally measured_at; nothing else. 0 with *item_r, or -1
 * with *field_r (the member at fault; "" for the item as a whole) and *error_r, both static.
 */
int recalc_check_item(json_t *item, struct recalc_item *item_r, const char **field_r,
                      const char **error_r) __attribute__((warn_unused_result));

/* ---- the CSV form `mailquota usage load format=csv` reads ---- */

#define RECALC_CSV_CELLS 8 /* cells in one record: mailbox, bytes, messages, measured_at */

/*
 * Split the CSV record line[0..len) (RFC 4180, one record per line: no line break inside a
 * quoted cell; a trailing "\r" is ignored) into at most RECALC_CSV_CELLS cells. Each cell is
 * written unquoted and NUL-terminated into out, which must hold len + 1 bytes, and cells_r[k]
 * points at it there. 0 with *n_r (at least 1), or -1 with static *error_r: a quote inside an
 * unquoted cell, an unterminated quoted cell, text after a closing quote, a NUL byte, more than
 * RECALC_CSV_CELLS cells.
 */
int recalc_csv_split(const char *line, size_t len, char *out, const char *cells_r[RECALC_CSV_CELLS],
                     size_t *n_r, const char **error_r) __attribute__((warn_unused_result));

#endif
