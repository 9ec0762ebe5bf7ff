/* libFuzzer target: the Exim readsocket request reader and parser (the input is what a client
   may send on one connection). A line must lie inside the input and never be longer than
   EXIM_REQUEST_MAX, with and without the end of input; a parsed recipient must lie inside its
   line and be non-empty; a reply written from any text (here the line) must be exactly one
   line of printable ASCII ending in "\n", no longer than EXIM_REPLY_MAX. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "exim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const char *text, size_t len)
{
	char t[EXIM_REPLY_MAX + 8];
	size_t n = len < sizeof(t) - 1 ? len : sizeof(t) - 1;
	memcpy(t, text, n);
	t[n] = '\0';
	struct buf out;
	buf_init(&out, EXIM_REPLY_MAX);
	if (exim_reply_append(&out, t) < 0)
		abort(); /* the longest reply fits EXIM_REPLY_MAX */
	size_t want = strlen(t) < EXIM_REPLY_MAX - 1 ? strlen(t) : EXIM_REPLY_MAX - 1;
	if (out.len != want + 1 || out.data[out.len - 1] != '\n')
		abort();
	for (size_t i = 0; i + 1 < out.len; i++)
		if ((unsigned char)out.data[i] < 0x20 || (unsigned char)out.data[i] >= 0x7f)
			abort();
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	for (int at_eof = 0; at_eof < 2; at_eof++) {
		size_t llen = 0, used = 0;
		const char *err = NULL;
		int rc = exim_request_line(p, size, at_eof, &llen, &used, &err);
		if (rc < 0) {
			if (err == NULL)
				abort();
			continue;
		}
		if (rc == 0) {
			if (at_eof && size > 0)
				abort(); /* at the end of input a request is answered */
			continue;
		}
		if (used > size || llen > used || llen >= EXIM_REQUEST_MAX ||
		    memchr(p, '\n', llen) != NULL)
			abort();
		struct exim_request req;
		if (exim_request_parse(p, llen, &req, &err) == 0) {
			if (req.rcpt != p || req.rcpt_len == 0 || req.rcpt_len >= llen ||
			    (!req.has_size && req.size != 0))
				abort();
		} else if (err == NULL) {
			abort();
		}
		check_reply(p, llen);
	}
	return 0;
}
