/*
 * token: the format, hashing and comparison of API bearer tokens. It must never keep or log a
 * token's text, and never compare secrets with an early exit.
 */
#include "token.h"

#include <errno.h>
#include <nettle/base64.h>
#include <nettle/memops.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "strnum.h"

#define PREFIX     "mqt_"
#define PREFIX_LEN 4
#define SECRET_RAW 32

static const char *const scope_names[] = {
	[TOKEN_ADMIN] = "admin", [TOKEN_READ] = "read",         [TOKEN_USAGE] = "usage",
	[TOKEN_SELF] = "self",   [TOKEN_PRECHECK] = "precheck", [TOKEN_METRICS] = "metrics",
};

const char *token_scope_name(enum token_scope s)
{
	return scope_names[s];
}

int token_scope_parse(const char *name, enum token_scope *s_r)
{
	for (size_t i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++) {
		if (strcmp(name, scope_names[i]) == 0) {
			*s_r = (enum token_scope)i;
			return 0;
		}
	}
	return -1;
}

static bool b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

void token_hash_init(struct token_hasher *h)
{
	sha256_init(&h->sha);
}

void token_hash_update(struct token_hasher *h, const void *data, size_t len)
{
	sha256_update(&h->sha, len, data);
}

void token_hash_final(struct token_hasher *h, uint8_t hash_r[TOKEN_HASH_LEN])
{
	_Static_assert(TOKEN_HASH_LEN == SHA256_DIGEST_SIZE, "a token hash is a SHA-256");
	sha256_digest(&h->sha, SHA256_DIGEST_SIZE, hash_r); /* also starts h afresh */
}

void token_hash(const char *text, size_t len, uint8_t hash_r[TOKEN_HASH_LEN])
{
	struct token_hasher h;
	token_hash_init(&h);
	token_hash_update(&h, text, len);
	token_hash_final(&h, hash_r);
}

int token_generate(int64_t id, char *text_r, size_t size, uint8_t hash_r[TOKEN_HASH_LEN])
{
	uint8_t raw[SECRET_RAW];
	size_t got = 0;
	while (got < SECRET_RAW) {
		ssize_t n = getrandom(raw + got, SECRET_RAW - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	/* base64url of 32 bytes: 43 characters and one '=' of padding, which tokens leave out */
	char secret[BASE64_ENCODE_LENGTH(SECRET_RAW) + BASE64_ENCODE_FINAL_LENGTH + 1];
	struct base64_encode_ctx enc;
	base64url_encode_init(&enc);
	size_t o = base64_encode_update(&enc, secret, SECRET_RAW, raw);
	o += base64_encode_final(&enc, secret + o);
	if (o != TOKEN_SECRET_LEN + 1)
		abort();
	secret[TOKEN_SECRET_LEN] = '\0';
	int n = snprintf(text_r, size, PREFIX "%lld_%s", (long long)id, secret);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(secret, sizeof(secret));
	if (n < 0 || (size_t)n >= size)
		abort(); /* callers pass TOKEN_TEXT_MAX */
	token_hash(text_r, (size_t)n, hash_r);
	return 0;
}

int token_parse(const char *text, size_t len, int64_t *id_r)
{
	if (len < PREFIX_LEN + 2 + TOKEN_SECRET_LEN || len > TOKEN_TEXT_MAX ||
	    memcmp(text, PREFIX, PREFIX_LEN) != 0)
		return -1;
	const char *id = text + PREFIX_LEN;
	size_t idlen = len - PREFIX_LEN - 1 - TOKEN_SECRET_LEN;
	if (id[idlen] != '_')
		return -1;
	uint64_t v;
	if (idlen == 0 || id[0] == '0' || strnum_u64(id, idlen, INT64_MAX, &v) < 0)
		return -1;
	for (size_t i = len - TOKEN_SECRET_LEN; i < len; i++)
		if (!b64url_char(text[i]))
			return -1;
	*id_r = (int64_t)v;
	return 0;
}

bool token_hash_equal(const uint8_t a[TOKEN_HASH_LEN], const uint8_t b[TOKEN_HASH_LEN])
{
	return memeql_sec(a, b, TOKEN_HASH_LEN) != 0; /* time independent of the contents */
}
