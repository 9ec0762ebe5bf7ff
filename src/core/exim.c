/*
 * exim: the pure part of the listener for Exim's ${readsocket{...}} expansion. Exim connects,
 * writes the request, half-closes (shutdown=yes is its default) and reads until the server
 * closes (src/src/lookups/readsock.c), so a connection carries one request line and one reply
 * line. The reply is usable as it is in an ACL: "OK", a 5xx line for `deny message =`, a 4xx
 * line for `defer message =` (Exim requires the code's first digit to match the verb's).
 * It must never turn an unreadable request into an accept, never let a reply span lines,
 * and never read past the line it was given.
 */
#include "exim.h"

#include <string.h>

#include "buf.h"
#include "strnum.h"

int exim_request_line(const char *buf, size_t len, bool at_eof, size_t *line_len_r, size_t *used_r,
                      const char **error_r)
{
	size_t scan = len < EXIM_REQUEST_MAX ? len : EXIM_REQUEST_MAX;
	const char *nl = memchr(buf, '\n', scan);
	if (memchr(buf, '\0', nl != NULL ? (size_t)(nl - buf) : scan) != NULL) {
		*error_r = "NUL byte in the request";
		return -1;
	}
	size_t llen;
	if (nl != NULL) {
		llen = (size_t)(nl - buf);
		*used_r = llen + 1;
	} else if (len >= EXIM_REQUEST_MAX) {
		*error_r = "request line too long";
		return -1;
	} else if (at_eof && len > 0) {
		llen = len;
		*used_r = len;
	} else {
		return 0;
	}
	if (llen > 0 && buf[llen - 1] == '\r')
		llen--;
	*line_len_r = llen;
	return 1;
}

int exim_request_parse(const char *line, size_t len, struct exim_request *req_r,
                       const char **error_r)
{
	const char *sp = NULL;
	for (size_t i = len; i > 0; i--) {
		if (line[i - 1] == ' ') {
			sp = line + i - 1;
			break;
		}
	}
	if (sp == NULL) {
		*error_r = "request is not \"<recipient> <size>\"";
		return -1;
	}
	const char *num = sp + 1;
	size_t nlen = len - (size_t)(num - line);
	req_r->rcpt = line;
	req_r->rcpt_len = (size_t)(sp - line);
	if (req_r->rcpt_len == 0) {
		*error_r = "empty recipient";
		return -1;
	}
	if (nlen == 2 && memcmp(num, "-1", 2) == 0) {
		req_r->size = 0;
		req_r->has_size = false;
		return 0;
	}
	/* 20 digits hold every uint64_t; strnum_u64 refuses signs, spaces and overflow */
	if (nlen == 0 || nlen > 20 || strnum_u64(num, nlen, UINT64_MAX, &req_r->size) < 0) {
		*error_r = "size is not a decimal number or -1";
		return -1;
	}
	req_r->has_size = true;
	return 0;
}

const char *exim_reply(const struct reply_set *set, enum quota_verdict verdict,
                       struct reply_line *line)
{
	const char *smtp = reply_smtp(set, verdict, line);
	return smtp != NULL ? smtp : "OK";
}

int exim_reply_append(struct buf *out, const char *text)
{
	char reply[EXIM_REPLY_MAX];
	size_t n = 0;
	for (; text[n] != '\0' && n < sizeof(reply) - 1; n++) {
		unsigned char ch = (unsigned char)text[n];
		reply[n] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	reply[n++] = '\n';
	return buf_append(out, reply, n);
}
