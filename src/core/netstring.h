/* netstring: D. J. Bernstein's netstrings ("12:hello world!,", cr.yp.to/proto/netstrings.txt),
   the framing of Postfix's socketmap protocol (pure). */
#ifndef MQ_NETSTRING_H
#define MQ_NETSTRING_H

#include <stddef.h>

struct buf;

/* The most length digits a parser reads: enough for any max a caller may pass (size_t). */
#define NETSTRING_DIGITS_MAX 20

/*
 * Look for one complete netstring at the start of buf[len] whose payload is at most max bytes.
 * Returns:
 *   1  a netstring ends within buf: *payload_r points to its payload inside buf,
 *      *payload_len_r is its length, *consumed_r the netstring's whole length;
 *   0  more bytes are needed (what is there is a valid beginning within max);
 *  -1  not a netstring, or one announcing more than max: *error_r says why (static text).
 * The length must be decimal digits without a sign, without leading zeros (but "0" itself),
 * and is refused as soon as its digits say it is over max, before any payload is waited for.
 * Pure: no state between calls; never reads past len.
 */
int netstring_parse(const char *buf, size_t len, size_t max, const char **payload_r,
                    size_t *payload_len_r, size_t *consumed_r, const char **error_r)
        __attribute__((warn_unused_result));

/* Append data[len] as one netstring to out. 0, or -1 when out has no room for all of it (out
   unchanged). Pure. */
int netstring_append(struct buf *out, const char *data, size_t len)
        __attribute__((warn_unused_result));

#endif
