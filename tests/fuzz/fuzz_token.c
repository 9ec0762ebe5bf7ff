/* libFuzzer target: bearer tokens. token_parse() must never read past len and accept only the
   one canonical spelling "mqt_<id>_<43 base64url>"; a generated token must parse to its id;
   scope names parse only to themselves. (The Authorization header's "Bearer " and the
   TOKEN_TEXT_MAX cut are applied by authenticate(), static in http.c: mirrored here.) */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parse(const char *text, size_t len)
{
	int64_t id = -7;
	if (token_parse(text, len, &id) < 0) {
		if (id != -7)
			abort(); /* output untouched on failure */
		return;
	}
	if (id <= 0 || len > TOKEN_TEXT_MAX || len < TOKEN_SECRET_LEN)
		abort();
	/* the only spelling: no sign, no leading zero, no other prefix */
	char canon[TOKEN_TEXT_MAX + 1];
	int n = snprintf(canon, sizeof(canon), "mqt_%lld_%.*s", (long long)id, TOKEN_SECRET_LEN,
	                 text + len - TOKEN_SECRET_LEN);
	if (n < 0 || (size_t)n != len || memcmp(canon, text, len) != 0)
		abort();
	uint8_t h1[TOKEN_HASH_LEN], h2[TOKEN_HASH_LEN];
	token_hash(text, len, h1);
	token_hash(canon, len, h2);
	if (!token_hash_equal(h1, h2))
		abort();
	h2[len % TOKEN_HASH_LEN] ^= 1;
	if (token_hash_equal(h1, h2))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exactly size bytes, no NUL after them: an over-read is an ASan report */
	char *text = malloc(size > 0 ? size : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	check_parse(text, size);

	/* as an Authorization value: "Bearer", spaces, then at most TOKEN_TEXT_MAX + 1 bytes */
	if (size >= 7 && strncasecmp(text, "Bearer ", 7) == 0) {
		size_t off = 7;
		while (off < size && text[off] == ' ')
			off++;
		size_t len = strnlen(text + off, size - off);
		if (len <= TOKEN_TEXT_MAX)
			check_parse(text + off, len);
	}

	/* a scope name parses only to itself */
	char *name = strndup(text, size);
	enum token_scope s;
	if (name != NULL && token_scope_parse(name, &s) == 0 &&
	    strcmp(token_scope_name(s), name) != 0)
		abort();
	free(name);

	/* any positive id makes a token that parses back to it */
	if (size >= 8) {
		uint64_t v;
		memcpy(&v, data, 8);
		int64_t id = (int64_t)(v & INT64_MAX), back = 0;
		char tok[TOKEN_TEXT_MAX];
		uint8_t hash[TOKEN_HASH_LEN], again[TOKEN_HASH_LEN];
		if (id > 0 && token_generate(id, tok, sizeof(tok), hash) == 0) {
			token_hash(tok, strlen(tok), again);
			if (token_parse(tok, strlen(tok), &back) < 0 || back != id ||
			    !token_hash_equal(hash, again))
				abort();
		}
	}
	free(text);
	return 0;
}
