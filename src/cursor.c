/*
 * cursor: encoding and decoding of list cursors (base64url of the JSON array [sort, key, id]).
 * It must never read past a cursor's NUL or its CURSOR_MAX bound, never write past its decode
 * buffer, and never accept a cursor made under another sort order; it does no I/O.
 */
#include "cursor.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Append base64url of in[n], unpadded. 0, or -1 when out's maximum would be exceeded. */
static int b64url_encode(const char *in, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		char q[4] = { b64[v >> 18 & 63], b64[v >> 12 & 63], b64[v >> 6 & 63], b64[v & 63] };
		size_t emit = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;
		if (buf_append(out, q, emit) < 0)
			return -1;
	}
	return 0;
}

static int b64val(char c)
{
	const char *p = strchr(b64, c);
	return c != '\0' && p != NULL ? (int)(p - b64) : -1;
}

/* Decode s into out[size]; the decoded length, or -1. */
static long b64url_decode(const char *s, char *out, size_t size)
{
	size_t n = strlen(s), o = 0;
	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;
		size_t k;
		for (k = 0; k < 4 && i + k < n; k++) {
			int x = b64val(s[i + k]);
			if (x < 0)
				return -1;
			v |= (uint32_t)x << (18 - 6 * k);
		}
		for (size_t j = 0; j + 1 < k; j++) {
			if (o >= size)
				return -1;
			out[o++] = (char)(v >> (16 - 8 * j) & 0xff);
		}
	}
	return (long)o;
}

int cursor_encode(const char *sort, const char *key, const char *id, struct buf *out)
{
	/* json_pack() refuses strings that are not UTF-8: NULL, and then no text either */
	json_t *c = json_pack("[s, s, s]", sort, key, id);
	char *text = c != NULL ? json_dumps(c, JSON_COMPACT) : NULL;
	json_decref(c);
	if (text == NULL)
		return -1;
	int rc = b64url_encode(text, strlen(text), out);
	free(text);
	return rc;
}

int cursor_decode(const char *cursor, const char *sort, json_t **holder_r, const char **key_r,
                  const char **id_r)
{
	/* base64url decodes to at most 3/4 of its length, so raw holds any cursor we read */
	char raw[CURSOR_MAX];
	long len = strnlen(cursor, CURSOR_MAX) < CURSOR_MAX
	                   ? b64url_decode(cursor, raw, sizeof(raw))
	                   : -1;
	json_t *c = len < 0 ? NULL : json_loadb(raw, (size_t)len, 0, NULL);
	if (!json_is_array(c) || json_array_size(c) != 3 || !json_is_string(json_array_get(c, 0)) ||
	    strcmp(json_string_value(json_array_get(c, 0)), sort) != 0 ||
	    !json_is_string(json_array_get(c, 1)) || !json_is_string(json_array_get(c, 2))) {
		json_decref(c);
		return -1;
	}
	*key_r = json_string_value(json_array_get(c, 1));
	*id_r = json_string_value(json_array_get(c, 2));
	*holder_r = c;
	return 0;
}
