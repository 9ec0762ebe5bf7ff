/*
 * socketmap: the pure part of the Postfix socketmap table mailquota serves for
 * check_recipient_access (socketmap_table(5); Postfix's client is src/global/dict_sockmap.c).
 * A lookup carries no message size, so the table answers only what holds for any message:
 * a recipient that is already full is refused with the configured reply, anything else is
 * NOTFOUND and left to the restrictions that follow. It must never answer OK for an accepted
 * recipient, never let a reply text break out of its netstring or carry control bytes, and
 * never answer a map name other than SOCKETMAP_NAME.
 */
#include "socketmap.h"

#include <string.h>

#include "buf.h"
#include "netstring.h"

const char *socketmap_status_name(enum socketmap_status status)
{
	switch (status) {
	case SOCKETMAP_OK:
		return "OK";
	case SOCKETMAP_NOTFOUND:
		return "NOTFOUND";
	case SOCKETMAP_TEMP:
		return "TEMP";
	case SOCKETMAP_PERM:
		return "PERM";
	}
	return "PERM";
}

int socketmap_request_parse(const char *payload, size_t len, struct socketmap_request *req_r,
                            const char **error_r)
{
	const char *sp = memchr(payload, ' ', len);
	if (sp == NULL) {
		*error_r = "request is not \"name key\"";
		return -1;
	}
	size_t nlen = (size_t)(sp - payload);
	if (nlen != strlen(SOCKETMAP_NAME) || memcmp(payload, SOCKETMAP_NAME, nlen) != 0) {
		*error_r = "unknown map name";
		return -1;
	}
	if (len - nlen - 1 == 0) {
		*error_r = "empty key";
		return -1;
	}
	req_r->key = sp + 1;
	req_r->key_len = len - nlen - 1;
	return 0;
}

struct socketmap_answer socketmap_answer_verdict(const struct reply_set *set,
                                                 enum quota_verdict verdict,
                                                 const char *temp_reason)
{
	struct socketmap_answer a = { SOCKETMAP_NOTFOUND, "" };
	switch (verdict) {
	case QUOTA_ACCEPT:
		break;
	case QUOTA_TEMPFAIL:
		a.status = SOCKETMAP_TEMP;
		a.text = temp_reason != NULL ? temp_reason : "store unavailable";
		break;
	case QUOTA_UNKNOWN: {
		const char *act = reply_policy_action(set, verdict);
		if (strcmp(act, "DUNNO") != 0) {
			a.status = SOCKETMAP_OK;
			a.text = act;
		}
		break;
	}
	case QUOTA_OVER_QUOTA:
	case QUOTA_TOO_BIG_MAILBOX:
	case QUOTA_TOO_BIG_SYSTEM:
		a.status = SOCKETMAP_OK;
		a.text = reply_policy_action(set, verdict);
		break;
	}
	return a;
}

int socketmap_reply_append(struct buf *out, enum socketmap_status status, const char *text)
{
	/* "NOTFOUND " + text: the status word, its space and at most SOCKETMAP_TEXT_MAX */
	char reply[sizeof("NOTFOUND ") + SOCKETMAP_TEXT_MAX];
	const char *word = socketmap_status_name(status);
	size_t wl = strlen(word), n = 0;
	memcpy(reply, word, wl);
	reply[wl] = ' ';
	for (; text[n] != '\0' && n < SOCKETMAP_TEXT_MAX; n++) {
		unsigned char ch = (unsigned char)text[n];
		reply[wl + 1 + n] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	return netstring_append(out, reply, wl + 1 + n);
}
