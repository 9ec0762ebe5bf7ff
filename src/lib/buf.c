/*
 * buf: bounded growable strings. Every append checks the buffer's maximum before copying, so a
 * peer can never make us buffer more than the limit its module named.
 */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

static void reserve(struct buf *b, size_t need)
{
	/* need <= max < SIZE_MAX, so need + 1 cannot wrap */
	if (need + 1 <= b->cap)
		return;
	size_t cap = b->cap < 64 ? 64 : b->cap;
	while (cap < need + 1)
		cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void buf_reserve(struct buf *b, size_t n)
{
	size_t room = b->max - b->len;
	reserve(b, b->len + (n < room ? n : room));
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	if (len > b->max - b->len)
		return -1;
	reserve(b, b->len + len);
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || (size_t)n > b->max - b->len)
		return -1;
	reserve(b, b->len + (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int ret = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return ret;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

int str_copy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);
	if (size == 0)
		return -1;
	if (len >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

const char *str_sanitize(char *dst, size_t size, const char *s, size_t len, size_t max_chars)
{
	size_t out = 0;
	if (size == 0)
		return dst;
	/* keep room for "..." and the NUL */
	size_t room = size > 4 ? size - 4 : 0;
	if (max_chars < room)
		room = max_chars;
	size_t i;
	for (i = 0; i < len && out < room; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[out++] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
	}
	if (i < len && size >= 4) {
		memcpy(dst + out, "...", 3);
		out += 3;
	}
	dst[out] = '\0';
	return dst;
}
