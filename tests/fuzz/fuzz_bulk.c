/* libFuzzer target: import parsing (NDJSON and CSV) and the admin body checks behind it; the
   first byte picks the format and the CSV kind. A row that passes the checks must export in
   the field table's columns, and that export must import again to the same fields. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bulk.h"
#include "fields.h"
#include "resource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bulk_errors errs, errs2;

/* What export wrote imports again: one row, accepted, with the same key and fields (columns
   the row left out come back null). */
static void round_trip(enum bulk_format fmt, const struct bulk_row *row,
                       const struct address_rules *rules, const struct resource_key *key,
                       json_t *fields)
{
	/* an export is of documents, which have every field: a row without a value for a field
	   that cannot be null (enabled) would come back null, and be refused */
	size_t n;
	const struct field *t = field_table(row->kind, &n);
	for (size_t i = 0; i < n; i++)
		if (!field_nullable(t[i].type) && json_object_get(fields, t[i].api) == NULL)
			return;
	struct buf out;
	buf_init(&out, 1 << 20);
	if (fmt == BULK_CSV && bulk_csv_header(row->kind, &out) < 0)
		abort();
	if (bulk_write(fmt, row->kind, row->obj, &out) < 0)
		abort();
	if (out.len > BULK_LINE_MAX / 2) { /* a longer line may not fit in one import line */
		buf_free(&out);
		return;
	}
	/* the CSV header starts with the key */
	if (fmt == BULK_CSV &&
	    strncmp(out.data, field_key(row->kind), strlen(field_key(row->kind))))
		abort();
	struct bulk_row *back;
	size_t m;
	struct resource_key key2;
	struct resource_error e;
	json_t *fields2;
	errs2.n = errs2.total = 0;
	if (bulk_parse(fmt, row->kind, out.data, out.len, &back, &m, &errs2) < 0 || m != 1 ||
	    back[0].kind != row->kind ||
	    resource_check(back[0].kind, RESOURCE_CREATE, back[0].obj, rules, &key2, &fields2, &e) <
	            0)
		abort();
	if (strcmp(key->text, key2.text) != 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		json_t *a = json_object_get(fields, t[i].api),
		       *b = json_object_get(fields2, t[i].api);
		if (a != NULL ? !json_equal(a, b) : !json_is_null(b))
			abort();
	}
	if (json_object_size(fields2) != n)
		abort(); /* every column, and nothing but the columns */
	json_decref(fields2);
	bulk_rows_free(back, m);
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	enum bulk_format fmt = (data[0] & 1) ? BULK_CSV : BULK_NDJSON;
	enum resource_kind kind = (enum resource_kind)((data[0] >> 1) % 3);
	struct address_rules rules = { .fold_local = data[0] & 8, .delimiters = "+" };
	struct bulk_row *rows;
	size_t n;
	errs.n = errs.total = 0;
	int rc = bulk_parse(fmt, kind, (const char *)data + 1, size - 1, &rows, &n, &errs);
	if (rc < 0 && errs.total == 0)
		abort(); /* a refusal always says why */
	for (size_t i = 0; i < n; i++) {
		struct resource_key key;
		struct resource_error e;
		json_t *fields;
		if (rows[i].line == 0)
			abort();
		if (resource_check(rows[i].kind, RESOURCE_CREATE, rows[i].obj, &rules, &key,
		                   &fields, &e) == 0) {
			round_trip(fmt, &rows[i], &rules, &key, fields);
			json_decref(fields);
		} else if (e.code == NULL || e.reason == NULL ||
		           (e.problem != RESOURCE_INVALID_BODY &&
		            e.problem != RESOURCE_UNKNOWN_FIELD &&
		            e.problem != RESOURCE_INVALID_FIELD &&
		            e.problem != RESOURCE_MISSING_FIELD)) {
			abort();
		}
	}
	bulk_rows_free(rows, n);
	return 0;
}
