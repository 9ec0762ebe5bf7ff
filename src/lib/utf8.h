/* utf8: UTF-8 validation. */
#ifndef MQ_UTF8_H
#define MQ_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Whether s[len] is valid UTF-8 with no NUL (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
bool utf8_valid(const char *s, size_t len);

/* The length of the longest prefix of s[len] that is at most max bytes and does not end inside
   a multi-byte character (for cutting text that must stay valid UTF-8). */
size_t utf8_cut(const char *s, size_t len, size_t max);

#endif
