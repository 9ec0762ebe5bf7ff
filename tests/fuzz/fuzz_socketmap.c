/* libFuzzer target: the socketmap framing and request parser (the input is what a client may
   send, a pipeline of netstrings). The netstring parser must never read out of bounds, never
   claim more than it was given, never return a payload over SOCKETMAP_REQUEST_MAX or outside
   the input; a request's key must lie inside its payload; a reply written from any text (here
   each payload) must read back as exactly one netstring of "<STATUS> " and printable ASCII,
   no longer than Postfix accepts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "netstring.h"
#include "socketmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(struct buf *out, const char *text, size_t len)
{
	char t[SOCKETMAP_TEXT_MAX + 2];
	size_t n = len < sizeof(t) - 1 ? len : sizeof(t) - 1;
	memcpy(t, text, n);
	t[n] = '\0';
	buf_reset(out);
	enum socketmap_status st = (enum socketmap_status)(len % 4);
	if (socketmap_reply_append(out, st, t) < 0)
		abort(); /* out's limit holds the longest reply */
	const char *payload, *err;
	size_t plen, used;
	if (netstring_parse(out->data, out->len, SOCKETMAP_REPLY_MAX, &payload, &plen, &used,
	                    &err) != 1 ||
	    used != out->len)
		abort();
	const char *word = socketmap_status_name(st);
	size_t wl = strlen(word);
	if (plen < wl + 1 || memcmp(payload, word, wl) != 0 || payload[wl] != ' ' ||
	    plen - wl - 1 != strnlen(t, SOCKETMAP_TEXT_MAX))
		abort();
	for (size_t i = 0; i < plen; i++)
		if ((unsigned char)payload[i] < 0x20 || (unsigned char)payload[i] >= 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t left = size;
	struct buf out;
	buf_init(&out, SOCKETMAP_TEXT_MAX + 64);
	for (;;) {
		const char *payload = NULL, *err = NULL;
		size_t plen = 0, used = 0;
		int rc = netstring_parse(p, left, SOCKETMAP_REQUEST_MAX, &payload, &plen, &used,
		                         &err);
		if (rc <= 0) {
			if (rc < 0 && err == NULL)
				abort();
			break;
		}
		if (used == 0 || used > left || plen > SOCKETMAP_REQUEST_MAX || payload < p ||
		    payload + plen > p + used)
			abort();
		struct socketmap_request req;
		if (socketmap_request_parse(payload, plen, &req, &err) == 0) {
			if (req.key_len == 0 || req.key < payload ||
			    req.key + req.key_len != payload + plen)
				abort();
		} else if (err == NULL) {
			abort();
		}
		check_reply(&out, payload, plen);
		p += used;
		left -= used;
	}
	buf_free(&out);
	return 0;
}
