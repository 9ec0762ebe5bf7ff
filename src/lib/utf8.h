/* utf8: UTF-8 validation. */
#ifndef MQ_UTF8_H
#define MQ_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Whether s[len] is valid UTF-8 with no NUL (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
bool utf8_valid(const char *s, size_t len);

#endif
