/*
 * token: API bearer tokens. A token is "mqt_<id>_<secret>": the id finds its record, the secret
 * is 32 random bytes in base64url. Only SHA-256 of the whole text is ever stored, and the
 * comparison with it takes the same time whatever the bytes. Pure except token_generate(),
 * which reads the kernel's random source.
 */
#ifndef MQ_TOKEN_H
#define MQ_TOKEN_H

#include <nettle/sha2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_HASH_LEN   32
#define TOKEN_SECRET_LEN 43  /* base64url of 32 bytes, unpadded */
#define TOKEN_TEXT_MAX   128 /* longer Authorization values are refused unread */

enum token_scope {
	TOKEN_ADMIN,
	TOKEN_READ,
	TOKEN_USAGE,
	TOKEN_SELF,
	TOKEN_PRECHECK,
	TOKEN_METRICS, /* GET /metrics only (docs/metrics.md) */
};

/* "admin", "read", "usage", "self", "precheck", "metrics". */
const char *token_scope_name(enum token_scope s);
/* 0 with *s_r, or -1 for an unknown name. */
int token_scope_parse(const char *name, enum token_scope *s_r) __attribute__((warn_unused_result));

/*
 * Make a new token for record id: text_r gets the NUL-terminated text (size >= TOKEN_TEXT_MAX),
 * hash_r its SHA-256. 0, or -1 when no randomness is available (errno set).
 */
int token_generate(int64_t id, char *text_r, size_t size, uint8_t hash_r[TOKEN_HASH_LEN])
        __attribute__((warn_unused_result));

/* The record id a token text names: 0 with *id_r, or -1 if the text is not shaped like a
   token (wrong prefix, id, separator, secret length or alphabet). Never reads past len. */
int token_parse(const char *text, size_t len, int64_t *id_r) __attribute__((warn_unused_result));

/* SHA-256 of text[len]. */
void token_hash(const char *text, size_t len, uint8_t hash_r[TOKEN_HASH_LEN]);

/*
 * The same hash over data that arrives in pieces (the project's one content hash: the command
 * line keys a delivered message's usage report by it). init, then update with each piece, then
 * final, which writes the hash of all pieces and leaves h ready for init again. Never fails.
 */
struct token_hasher {
	struct sha256_ctx sha;
};
void token_hash_init(struct token_hasher *h);
void token_hash_update(struct token_hasher *h, const void *data, size_t len);
void token_hash_final(struct token_hasher *h, uint8_t hash_r[TOKEN_HASH_LEN]);

/* Equality of two hashes in time independent of their contents. */
bool token_hash_equal(const uint8_t a[TOKEN_HASH_LEN], const uint8_t b[TOKEN_HASH_LEN]);

#endif
