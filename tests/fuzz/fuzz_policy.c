/* libFuzzer target: the policy protocol parser must never read out of bounds, never claim to
   consume more than it was given, and always make progress or stop; the state rules must only
   ever pick a non-empty recipient inside the request at RCPT or single-recipient
   END-OF-MESSAGE; an answer formatted from any text (here each recipient) must be exactly one
   answer: "action=", printable ASCII, "\n\n". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Format the answer for text[len] (cut at the first NUL, as a C string is) and check it. */
static void check_answer(struct buf *out, const char *text, size_t len)
{
	char action[POLICY_ACTION_MAX + 2];
	size_t n = len < sizeof(action) - 1 ? len : sizeof(action) - 1;
	memcpy(action, text, n);
	action[n] = '\0';
	buf_reset(out);
	if (policy_answer_append(out, action) < 0)
		abort(); /* out's limit holds the longest answer */
	size_t want = strnlen(action, POLICY_ACTION_MAX);
	if (out->len != strlen("action=") + want + 2 || memcmp(out->data, "action=", 7) != 0 ||
	    memcmp(out->data + out->len - 2, "\n\n", 2) != 0)
		abort();
	for (size_t i = 7; i < out->len - 2; i++)
		if ((unsigned char)out->data[i] < 0x20 || (unsigned char)out->data[i] >= 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t left = size;
	struct buf out;
	buf_init(&out, POLICY_ACTION_MAX + 16);
	for (;;) {
		struct policy_request req;
		struct policy_check chk;
		size_t used = 0;
		const char *err = NULL;
		int rc = policy_parse(p, left, &req, &used, &err);
		if (rc <= 0) {
			if (rc < 0 && err == NULL)
				abort();
			break;
		}
		if (used == 0 || used > left)
			abort();
		if (req.recipient.len > 0 &&
		    (req.recipient.ptr < p || req.recipient.ptr + req.recipient.len > p + used))
			abort();
		if (policy_wants_check(&req, &chk)) {
			if (chk.recipient.len == 0 || chk.recipient.ptr != req.recipient.ptr ||
			    chk.recipient.len != req.recipient.len || chk.size != req.size)
				abort();
			if (req.state != POLICY_STATE_RCPT &&
			    (req.state != POLICY_STATE_END_OF_MESSAGE || req.recipient_count != 1))
				abort();
		} else if (req.recipient.len > 0 && (req.state == POLICY_STATE_RCPT ||
		                                     (req.state == POLICY_STATE_END_OF_MESSAGE &&
		                                      req.recipient_count == 1))) {
			abort();
		}
		check_answer(&out, req.recipient.ptr, req.recipient.len);
		p += used;
		left -= used;
	}
	buf_free(&out);
	return 0;
}
