/*
 * jsonw: a streaming JSON writer into a bounded buffer, for the check path's responses.
 * jansson builds a tree of allocated nodes and then serialises it; for a check result that cost
 * a quarter of the HTTP server's CPU (measured with perf), so hot responses are written directly.
 * jansson still decodes every request body and writes the rare responses (errors, health).
 */
#ifndef MQ_JSONW_H
#define MQ_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define JSONW_DEPTH_MAX 16

struct jsonw {
	struct buf *out;
	int depth;
	bool first[JSONW_DEPTH_MAX]; /* no member written yet at this depth */
	bool failed;                 /* the buffer's limit was hit; the output is unusable */
};

void jsonw_init(struct jsonw *w, struct buf *out);
void jsonw_object(struct jsonw *w); /* { */
void jsonw_array(struct jsonw *w);  /* [ */
void jsonw_end_object(struct jsonw *w);
void jsonw_end_array(struct jsonw *w);
/* The key of the next member of the current object: a literal without characters to escape. */
#define jsonw_key(w, lit) jsonw_key_quoted((w), "\"" lit "\":", sizeof(lit) + 2)
/* The same with the key already written as "key": (len bytes), as jsonw_key() does. */
void jsonw_key_quoted(struct jsonw *w, const char *quoted, size_t len);
/* Values: a string (escaped; must be valid UTF-8, which callers ensure), or NULL for null. */
void jsonw_string(struct jsonw *w, const char *s);
void jsonw_u64(struct jsonw *w, uint64_t v);
/* A number with one decimal, tenths/10 ("75.0", "0.5"): exact, no floating point. */
void jsonw_tenths(struct jsonw *w, uint64_t tenths);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
/* 0 if everything fit, -1 otherwise. */
int jsonw_finish(struct jsonw *w) __attribute__((warn_unused_result));

#endif
