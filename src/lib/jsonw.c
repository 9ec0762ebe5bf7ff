/*
 * jsonw: see the header. Pure: writes only into the caller's buffer. It must never emit
 * invalid JSON: every string is escaped per RFC 8259 and structure is tracked by depth.
 */
#include "jsonw.h"

#include <stdlib.h>
#include <string.h>

#define JSONW_INITIAL 2048 /* a single check result fits: no reallocation on the hot path */

void jsonw_init(struct jsonw *w, struct buf *out)
{
	w->out = out;
	w->depth = 0;
	w->first[0] = true;
	w->failed = false;
	buf_reserve(out, JSONW_INITIAL);
}

static void put(struct jsonw *w, const char *s, size_t len)
{
	struct buf *b = w->out;
	if (b->cap - b->len > len && b->max - b->len >= len) {
		/* fast path: it fits in what is allocated (with room for the NUL) and in max */
		memcpy(b->data + b->len, s, len);
		b->len += len;
		b->data[b->len] = '\0';
		return;
	}
	if (!w->failed && buf_append(b, s, len) < 0)
		w->failed = true;
}

/* Separator before a value: a comma unless it is the first in its container or follows a key. */
static void before_value(struct jsonw *w)
{
	if (!w->first[w->depth])
		put(w, ",", 1);
	w->first[w->depth] = false;
}

static void open(struct jsonw *w, char c)
{
	before_value(w);
	put(w, &c, 1);
	if (w->depth + 1 >= JSONW_DEPTH_MAX)
		abort(); /* our responses are shallow: deeper is our bug */
	w->first[++w->depth] = true;
}

static void close_(struct jsonw *w, char c)
{
	put(w, &c, 1);
	w->depth--;
}

void jsonw_object(struct jsonw *w)
{
	open(w, '{');
}

void jsonw_array(struct jsonw *w)
{
	open(w, '[');
}

void jsonw_end_object(struct jsonw *w)
{
	close_(w, '}');
}

void jsonw_end_array(struct jsonw *w)
{
	close_(w, ']');
}

static void put_string(struct jsonw *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	put(w, "\"", 1);
	const char *run = s;
	for (const char *p = s;; p++) {
		unsigned char c = (unsigned char)*p;
		if (c != 0 && c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(w, run, (size_t)(p - run));
		if (c == 0)
			break;
		char esc[6] = { '\\', (char)c, 0, 0, 0, 0 };
		size_t n = 2;
		if (c < 0x20) {
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		put(w, esc, n);
		run = p + 1;
	}
	put(w, "\"", 1);
}

void jsonw_key_quoted(struct jsonw *w, const char *quoted, size_t len)
{
	if (!w->first[w->depth])
		put(w, ",", 1);
	put(w, quoted, len);
	w->first[w->depth] = true; /* the value that follows takes no comma */
}

void jsonw_string(struct jsonw *w, const char *s)
{
	if (s == NULL) {
		jsonw_null(w);
		return;
	}
	before_value(w);
	put_string(w, s);
	w->first[w->depth] = false;
}

/* The decimal digits of v, written backwards ending at end; returns where they start. */
static char *digits_before(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return end;
}

void jsonw_u64(struct jsonw *w, uint64_t v)
{
	char num[24]; /* 20 digits at most */
	char *p = digits_before(num + sizeof(num), v);
	before_value(w);
	put(w, p, (size_t)(num + sizeof(num) - p));
}

void jsonw_tenths(struct jsonw *w, uint64_t tenths)
{
	char num[24]; /* 19 digits, the point and one decimal at most */
	char *end = num + sizeof(num);
	*--end = (char)('0' + tenths % 10);
	*--end = '.';
	char *p = digits_before(end, tenths / 10);
	before_value(w);
	put(w, p, (size_t)(num + sizeof(num) - p));
}

void jsonw_bool(struct jsonw *w, bool v)
{
	before_value(w);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void jsonw_null(struct jsonw *w)
{
	before_value(w);
	put(w, "null", 4);
}

int jsonw_finish(struct jsonw *w)
{
	if (w->depth != 0)
		abort(); /* unbalanced: our bug */
	return w->failed ? -1 : 0;
}
