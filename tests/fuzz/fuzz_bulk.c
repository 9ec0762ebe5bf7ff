/* libFuzzer target: import parsing (NDJSON and CSV) and the admin body checks behind it; the
   first byte picks the format and the CSV kind. A row that passes the checks must export. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "bulk.h"
#include "resource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	static struct bulk_errors errs;
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
			struct buf out;
			buf_init(&out, 1 << 20);
			if (bulk_write(fmt, rows[i].kind, rows[i].obj, &out) < 0)
				abort();
			buf_free(&out);
			json_decref(fields);
		} else if (e.code == NULL || e.reason == NULL) {
			abort();
		}
	}
	bulk_rows_free(rows, n);
	return 0;
}
