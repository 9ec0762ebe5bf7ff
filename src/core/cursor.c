/*
 * cursor: encoding and decoding of list cursors (base64url of the JSON array [sort, key, id]).
 * It must never read past a cursor's NUL or its CURSOR_MAX bound, never write past its decode
 * buffer, and never accept a cursor made under another sort order; it does no I/O.
 */
#include "cursor.h"

#include <nettle/base64.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Append base64url of in[n] (nettle), unpadded. 0, or -1 when out's maximum would be
   exceeded. */
static int b64url_encode(const char *in, size_t n, struct buf *out)
{
	struct base64_encode_ctx enc;
	char *text = xmalloc(BASE64_ENCODE_LENGTH(n) + BASE64_ENCODE_FINAL_LENGTH);
	base64url_encode_init(&enc);
	size_t len = base64_encode_update(&enc, text, n, (const uint8_t *)in);
	len += base64_encode_final(&enc, text + len);
	while (len > 0 && text[len - 1] == '=')
		len--;
	int rc = buf_append(out, text, len);
	free(text);
	return rc;
}

/* Decode s (fewer than CURSOR_MAX characters, unpadded) into out[size] (nettle); the decoded
   length, or -1. Only the alphabet is accepted: nettle itself would skip white space. */
static long b64url_decode(const char *s, char *out, size_t size)
{
	char padded[CURSOR_MAX + 3];
	size_t n = strlen(s);
	if (n >= CURSOR_MAX || n % 4 == 1 || strspn(s, alphabet) != n ||
	    BASE64_DECODE_LENGTH(n + 3) > size)
		return -1;
	memcpy(padded, s, n);
	while (n % 4 != 0)
		padded[n++] = '=';
	struct base64_decode_ctx dec;
	size_t len = size;
	base64url_decode_init(&dec);
	if (!base64_decode_update(&dec, &len, (uint8_t *)out, n, padded) ||
	    !base64_decode_final(&dec))
		return -1;
	return (long)len;
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
