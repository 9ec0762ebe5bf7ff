/*
 * bulk: the import and export formats (pure). NDJSON: one object per line with "type"
 * ("domain", "mailbox", "alias") and the fields of a create body. CSV (RFC 4180): one kind per
 * file, a header row naming the columns; an empty cell is null (inherit / unlimited / the
 * configured default), alias targets are separated by spaces. An optional column left out of
 * a file is a field left out of each row (an update leaves it as it is), so files written
 * before a field existed still import. The columns are the key and the API names of fields.h's
 * table, in its order. Parsing never stops at the first bad row: every row's problems are
 * reported with its line number, up to BULK_ERRORS_MAX.
 */
#ifndef MQ_BULK_H
#define MQ_BULK_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "resource.h"

#define BULK_BODY_MAX    (32 * 1024 * 1024) /* an import request */
#define BULK_LINE_MAX    (64 * 1024)        /* one NDJSON line or CSV record */
#define BULK_ROWS_MAX    250000             /* rows in one import (memory: ~1 KiB each) */
#define BULK_ERRORS_MAX  1000               /* errors reported (counted beyond) */
#define BULK_COLUMNS_MAX 32

enum bulk_format { BULK_NDJSON, BULK_CSV };

struct bulk_row {
	size_t line; /* 1-based line where the row starts */
	enum resource_kind kind;
	json_t *obj; /* a create body: key and fields (owned) */
};

struct bulk_error {
	size_t line; /* 0: the request as a whole */
	char field[RESOURCE_FIELD_MAX + 1];
	char code[32];
	char message[200];
};

struct bulk_errors {
	struct bulk_error list[BULK_ERRORS_MAX];
	size_t n;     /* stored */
	size_t total; /* seen, stored or not */
};

/* Count a problem and keep it while fewer than BULK_ERRORS_MAX are kept; field (NULL: none),
   code and message (NULL: "invalid") are copied, cut to their arrays. */
void bulk_error_add(struct bulk_errors *e, size_t line, const char *field, const char *code,
                    const char *message);

/* "ndjson"/"csv" and "domain(s)"/"mailbox(es)"/"alias(es)": 0 or -1. */
int bulk_format_parse(const char *s, enum bulk_format *f_r) __attribute__((warn_unused_result));
int bulk_kind_parse(const char *s, enum resource_kind *k_r) __attribute__((warn_unused_result));

/*
 * Split data[len] into rows (csv_kind: the kind of every CSV row). Rows go to *rows_r (caller
 * frees with bulk_rows_free), problems to errs. Returns 0, or -1 when the input as a whole is
 * unusable (no header, too many rows, a line over BULK_LINE_MAX): see errs.
 */
int bulk_parse(enum bulk_format fmt, enum resource_kind csv_kind, const char *data, size_t len,
               struct bulk_row **rows_r, size_t *n_r, struct bulk_errors *errs)
        __attribute__((warn_unused_result));
void bulk_rows_free(struct bulk_row *rows, size_t n);

/* Append the CSV header of a kind (with its line end): the key and fields.h's API names, in
   their order; under 200 bytes. 0, or -1 when out's limit was reached (out then ends in a part
   of it). */
int bulk_csv_header(enum resource_kind kind, struct buf *out) __attribute__((warn_unused_result));
/* One exported object (an API document) as an NDJSON line or CSV record, importable as is.
   -1 when out is full. */
int bulk_write(enum bulk_format fmt, enum resource_kind kind, json_t *doc, struct buf *out)
        __attribute__((warn_unused_result));

#endif
