/* libFuzzer target: a POST /v1/usage/recalculations body, decoded as http_parse_body() does,
   through recalc_check_batch() and recalc_check_item() for every item; and the input's lines as
   CSV records through recalc_csv_split() into a buffer of exactly len + 1 bytes (ASan catches a
   byte more). What passes must hold what the checks promise. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recalc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL)
		return;
	struct recalc_batch b;
	enum recalc_problem p;
	const char *field = NULL, *why = NULL;
	if (recalc_check_batch(doc, &b, &p, &field, &why) < 0) {
		if (field == NULL || why == NULL)
			abort();
		json_decref(doc);
		return;
	}
	if (json_array_size(b.items) == 0 || json_array_size(b.items) > RECALC_ITEMS_MAX ||
	    b.source == NULL || b.source[0] == '\0')
		abort();
	size_t i;
	json_t *item;
	json_array_foreach(b.items, i, item)
	{
		struct recalc_item it;
		if (recalc_check_item(item, &it, &field, &why) < 0) {
			if (field == NULL || why == NULL)
				abort();
			continue;
		}
		if (it.mailbox == NULL || (!it.has_bytes && !it.has_messages) ||
		    it.bytes > RECALC_FIGURE_MAX || it.messages > RECALC_FIGURE_MAX ||
		    (!it.has_bytes && it.bytes != 0) || (!it.has_messages && it.messages != 0) ||
		    (it.measured_at != NULL && it.measured_at[0] == '\0'))
			abort();
	}
	json_decref(doc);
}

static void check_csv(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		char *out = malloc(len + 1);
		const char *cells[RECALC_CSV_CELLS], *why = NULL;
		size_t n = 0;
		if (out == NULL)
			abort();
		if (recalc_csv_split(p, len, out, cells, &n, &why) < 0) {
			if (why == NULL)
				abort();
		} else {
			if (n < 1 || n > RECALC_CSV_CELLS)
				abort();
			for (size_t k = 0; k < n; k++)
				if (cells[k] < out || cells[k] + strlen(cells[k]) >= out + len + 1)
					abort();
		}
		free(out);
		p += len + (nl != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_json(data, size);
	check_csv(data, size);
	return 0;
}
