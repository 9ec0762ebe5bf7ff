/*
 * netstring: parses and writes netstrings, "<decimal length>:<payload>,". Pure: caller-owned
 * buffers, no state, no I/O. The input is untrusted (a socketmap client): it must never read
 * past len, never let the announced length overflow or exceed the caller's max (it is refused
 * from its digits, before a byte of payload is buffered), and never accept a frame whose
 * payload is not followed by its ','.
 */
#include "netstring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

int netstring_parse(const char *buf, size_t len, size_t max, const char **payload_r,
                    size_t *payload_len_r, size_t *consumed_r, const char **error_r)
{
	size_t n = 0, i = 0;
	for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
		if (i == NETSTRING_DIGITS_MAX) {
			*error_r = "netstring length has too many digits";
			return -1;
		}
		if (i == 1 && buf[0] == '0') {
			*error_r = "netstring length has a leading zero";
			return -1;
		}
		unsigned d = (unsigned)(buf[i] - '0');
		/* n * 10 + d <= max, written so that it cannot wrap: n <= max / 10 makes
		   n * 10 <= max */
		if (n > max / 10 || d > max - n * 10) {
			*error_r = "netstring longer than allowed";
			return -1;
		}
		n = n * 10 + d;
	}
	if (i == len)
		return 0; /* still in the digits, or nothing yet */
	if (buf[i] != ':' || i == 0) {
		*error_r = i == 0 ? "netstring does not start with a length"
		                  : "netstring length not followed by ':'";
		return -1;
	}
	/* the payload and its ',' need n + 1 bytes after the ':'; compared as "more than n"
	   so that n + 1 cannot wrap whatever max is */
	size_t start = i + 1;
	if (len - start <= n)
		return 0;
	if (buf[start + n] != ',') {
		*error_r = "netstring payload not followed by ','";
		return -1;
	}
	*payload_r = buf + start;
	*payload_len_r = n;
	*consumed_r = start + n + 1;
	return 1;
}

int netstring_append(struct buf *out, const char *data, size_t len)
{
	char head[NETSTRING_DIGITS_MAX + 2];
	int hl = snprintf(head, sizeof(head), "%zu:", len);
	if (hl < 0 || (size_t)hl >= sizeof(head))
		return -1; /* cannot happen: a size_t has at most 20 digits */
	/* room for head, data and ',' checked without adding sizes that could wrap */
	size_t room = out->max - out->len;
	if ((size_t)hl > room || len > room - (size_t)hl || room - (size_t)hl - len < 1)
		return -1;
	if (buf_append(out, head, (size_t)hl) < 0 || buf_append(out, data, len) < 0 ||
	    buf_append(out, ",", 1) < 0)
		abort(); /* fits by the check above */
	return 0;
}
