/* buf: a growable byte string with a hard maximum (docs/style.md rule 9). */
#ifndef MQ_BUF_H
#define MQ_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data; /* always NUL-terminated after len bytes */
	size_t len;
	size_t cap;
	size_t max; /* len never exceeds max */
};

/* Initialise an empty buffer that may hold at most max bytes. */
void buf_init(struct buf *b, size_t max);
/* Free the storage; the buffer may be initialised again. */
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Append; return 0, or -1 (buffer unchanged) when the result would exceed max. */
int buf_append(struct buf *b, const void *data, size_t len) __attribute__((warn_unused_result));
int buf_puts(struct buf *b, const char *s) __attribute__((warn_unused_result));
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)))
__attribute__((warn_unused_result));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)))
__attribute__((warn_unused_result));
/* Make room for n more bytes (up to max) so the next appends do not reallocate. */
void buf_reserve(struct buf *b, size_t n);
/* Remove the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);

/* Copy src into dst[size] with truncation check: 0, or -1 if src did not fit (dst truncated). */
int str_copy(char *dst, const char *src, size_t size) __attribute__((warn_unused_result));

/*
 * Write a log-safe version of s[len] into dst[size]: control characters, quotes, backslashes and
 * bytes >= 0x7f become '?', and text beyond max_chars is cut and marked with "...".
 * Returns dst. Never fails.
 */
const char *str_sanitize(char *dst, size_t size, const char *s, size_t len, size_t max_chars);

#endif
