/*
 * policy: the Postfix policy delegation protocol (SMTPD_POLICY_README): the request parser, the
 * state rules deciding which requests need a recipient check, and the answer formatter. Pure:
 * works on caller-owned buffers, keeps no state between calls, no I/O, no logging. It must never
 * read past len, never accept a line, attribute count or request over its named limit, never let
 * a value it cannot parse (size=abc) pass as something else, never check a recipient at
 * END-OF-MESSAGE unless it is the message's only one, and never write an answer whose text could
 * end it early.
 */
#include "policy.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "strnum.h"

static bool str_is(struct policy_str s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static bool name_is(const char *name, size_t nlen, const char *lit)
{
	size_t n = strlen(lit);
	return nlen == n && memcmp(name, lit, n) == 0;
}

/* Assign only the first occurrence of an attribute. */
static void first(struct policy_str *dst, bool *seen, const char *v, size_t vlen)
{
	if (*seen)
		return;
	*seen = true;
	dst->ptr = v;
	dst->len = vlen;
}

int policy_parse(const char *buf, size_t len, struct policy_request *req_r, size_t *consumed_r,
                 const char **error_r)
{
	struct policy_request req;
	struct policy_str request = { "", 0 }, size = { "", 0 }, count = { "", 0 };
	bool seen_request = false, seen_state = false, seen_rcpt = false, seen_instance = false,
	     seen_size = false, seen_count = false, seen_qid = false, seen_sender = false,
	     seen_client = false;
	size_t pos = 0;

	memset(&req, 0, sizeof(req));
	req.protocol_state.ptr = req.recipient.ptr = req.instance.ptr = req.queue_id.ptr =
	        req.sender.ptr = req.client_address.ptr = "";

	for (;;) {
		if (pos >= POLICY_REQUEST_MAX) {
			*error_r = "request exceeds POLICY_REQUEST_MAX";
			return -1;
		}
		const char *line = buf + pos;
		size_t avail = len - pos;
		const char *nl = memchr(line, '\n', avail);
		if (nl == NULL) {
			if (avail > POLICY_LINE_MAX + 1) {
				*error_r = "line exceeds POLICY_LINE_MAX";
				return -1;
			}
			if (pos + avail > POLICY_REQUEST_MAX) {
				*error_r = "request exceeds POLICY_REQUEST_MAX";
				return -1;
			}
			return 0;
		}
		size_t llen = (size_t)(nl - line);
		pos += llen + 1;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen > POLICY_LINE_MAX) {
			*error_r = "line exceeds POLICY_LINE_MAX";
			return -1;
		}
		if (pos > POLICY_REQUEST_MAX) {
			*error_r = "request exceeds POLICY_REQUEST_MAX";
			return -1;
		}
		if (llen == 0)
			break; /* end of request */
		if (++req.attrs > POLICY_ATTRS_MAX) {
			*error_r = "request exceeds POLICY_ATTRS_MAX attributes";
			return -1;
		}
		const char *eq = memchr(line, '=', llen);
		if (eq == NULL || eq == line) {
			*error_r = "line is not name=value";
			return -1;
		}
		size_t nlen = (size_t)(eq - line);
		const char *v = eq + 1;
		size_t vlen = llen - nlen - 1;
		if (memchr(line, '\0', llen) != NULL) {
			*error_r = "NUL byte in request";
			return -1;
		}
		/* Postfix sends ~30 attributes: dispatch on the first letter before comparing */
		switch (line[0]) {
		case 'r':
			if (name_is(line, nlen, "request"))
				first(&request, &seen_request, v, vlen);
			else if (name_is(line, nlen, "recipient"))
				first(&req.recipient, &seen_rcpt, v, vlen);
			else if (name_is(line, nlen, "recipient_count"))
				first(&count, &seen_count, v, vlen);
			break;
		case 'p':
			if (name_is(line, nlen, "protocol_state"))
				first(&req.protocol_state, &seen_state, v, vlen);
			break;
		case 'i':
			if (name_is(line, nlen, "instance"))
				first(&req.instance, &seen_instance, v, vlen);
			break;
		case 's':
			if (name_is(line, nlen, "size"))
				first(&size, &seen_size, v, vlen);
			else if (name_is(line, nlen, "sender"))
				first(&req.sender, &seen_sender, v, vlen);
			break;
		case 'q':
			if (name_is(line, nlen, "queue_id"))
				first(&req.queue_id, &seen_qid, v, vlen);
			break;
		case 'c':
			if (name_is(line, nlen, "client_address"))
				first(&req.client_address, &seen_client, v, vlen);
			break;
		default:
			break;
		}
	}

	if (!str_is(request, "smtpd_access_policy")) {
		*error_r =
		        seen_request ? "request is not smtpd_access_policy" : "request= is missing";
		return -1;
	}
	if (size.len > 0 && strnum_u64(size.ptr, size.len, UINT64_MAX, &req.size) < 0) {
		*error_r = "size is not a decimal number";
		return -1;
	}
	if (count.len > 0 &&
	    strnum_u64(count.ptr, count.len, UINT64_MAX, &req.recipient_count) < 0) {
		*error_r = "recipient_count is not a decimal number";
		return -1;
	}
	if (str_is(req.protocol_state, "RCPT"))
		req.state = POLICY_STATE_RCPT;
	else if (str_is(req.protocol_state, "END-OF-MESSAGE"))
		req.state = POLICY_STATE_END_OF_MESSAGE;
	else
		req.state = POLICY_STATE_OTHER;
	*req_r = req;
	*consumed_r = pos;
	return 1;
}

bool policy_wants_check(const struct policy_request *req, struct policy_check *check_r)
{
	switch (req->state) {
	case POLICY_STATE_RCPT:
		break;
	case POLICY_STATE_END_OF_MESSAGE:
		if (req->recipient_count != 1)
			return false;
		break;
	case POLICY_STATE_OTHER:
	default:
		return false;
	}
	if (req->recipient.len == 0)
		return false;
	check_r->recipient = req->recipient;
	check_r->size = req->size;
	return true;
}

const char *policy_state_name(enum policy_state state)
{
	switch (state) {
	case POLICY_STATE_RCPT:
		return "RCPT";
	case POLICY_STATE_END_OF_MESSAGE:
		return "END-OF-MESSAGE";
	case POLICY_STATE_OTHER:
		break;
	}
	return "OTHER";
}

int policy_answer_append(struct buf *out, const char *action)
{
	static const char head[] = "action=", tail[] = "\n\n";
	size_t n = strnlen(action, POLICY_ACTION_MAX);
	/* n <= POLICY_ACTION_MAX, so the sum cannot wrap */
	size_t total = sizeof(head) - 1 + n + sizeof(tail) - 1;
	if (out->len > out->max || out->max - out->len < total)
		return -1;
	/* each append fits: the room for all three was checked above */
	if (buf_append(out, head, sizeof(head) - 1) < 0 || buf_append(out, action, n) < 0)
		abort();
	for (char *p = out->data + out->len - n; p < out->data + out->len; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	if (buf_append(out, tail, sizeof(tail) - 1) < 0)
		abort();
	return 0;
}
