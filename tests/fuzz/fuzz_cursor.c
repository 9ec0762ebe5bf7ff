/* libFuzzer target: list cursors. Decoding any text must never read past its NUL or its bound,
   and what decodes must re-encode to a cursor that decodes to the same key and id; anything
   cursor_encode() accepts must decode again (NUL bytes split the input into sort, key, id). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cursor.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the sort orders admin.c hands out cursors under (and one it does not) */
static const char *const sorts[] = { "address", "-address",   "name",        "-name", "usage",
	                             "-usage",  "updated_at", "-updated_at", "id",    "-id",
	                             "" };

/* cursor_encode(sort, key, id) then cursor_decode() under sort gives back key and id. */
static void round_trip(const char *sort, const char *key, const char *id)
{
	struct buf b;
	/* a byte is at most 6 in JSON ("\u001f"), and base64 makes 4 of 3: room for any cursor */
	buf_init(&b, 8 * (strlen(sort) + strlen(key) + strlen(id)) + 64);
	if (cursor_encode(sort, key, id, &b) < 0) {
		/* only text jansson refuses as a JSON string may be refused */
		json_t *s = json_string(sort), *k = json_string(key), *i = json_string(id);
		if (s != NULL && k != NULL && i != NULL)
			abort();
		json_decref(s);
		json_decref(k);
		json_decref(i);
		buf_free(&b);
		return;
	}
	json_t *h = NULL;
	const char *k2, *i2;
	int rc = cursor_decode(b.data, sort, &h, &k2, &i2);
	if (rc != (b.len < CURSOR_MAX ? 0 : -1))
		abort();
	if (rc == 0 && (strcmp(k2, key) != 0 || strcmp(i2, id) != 0))
		abort();
	json_decref(h);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstring(data, size);
	if (text == NULL)
		return 0;

	/* the whole input as a cursor from a query string */
	for (size_t s = 0; s < sizeof(sorts) / sizeof(sorts[0]); s++) {
		json_t *h = NULL;
		const char *key = NULL, *id = NULL;
		if (cursor_decode(text, sorts[s], &h, &key, &id) == 0) {
			if (h == NULL || key == NULL || id == NULL || strlen(text) >= CURSOR_MAX)
				abort();
			round_trip(sorts[s], key, id);
			json_decref(h);
		}
	}

	/* "sort\0key\0id" as page rows would give them */
	const char *sort = text, *key = sort + strlen(sort);
	key += key < text + size;
	const char *id = key + strlen(key);
	id += id < text + size;
	round_trip(sort, key, id);
	free(text);
	return 0;
}
