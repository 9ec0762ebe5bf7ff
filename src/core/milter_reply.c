/*
 * milter_reply: everything mailquota-milter decides without I/O. It checks the milter_socket
 * setting, reads MAIL FROM's SIZE= parameter, writes the policy request for one recipient,
 * finds the daemon's answer, and maps its action to a milter reply. Pure; its inputs come from the
 * MTA (addresses, ESMTP parameters) and from mailquotad (the answer), both treated as untrusted and
 * bounded by the limits in the header. It must never turn an answer it does not understand into an
 * accept (the caller tempfails on -1), never let a value forge a request line, and never hand
 * smfi_setreply() a lone '%', a control character or a code of the wrong class.
 */
#include "milter_reply.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "strnum.h"

#define SIZE_DIGITS_MAX 20 /* UINT64_MAX has 20 digits */

/* The replies Postfix gives the actions that carry no code (access(5), access_map_*_code). */
#define DEFER_REPLY_CODE  "450"
#define DEFER_REPLY_XCODE "4.7.1"
#define REJECT_CODE       "550"
#define REJECT_XCODE      "5.7.1"
#define TEXT_REJECT       "Recipient address rejected"
#define TEXT_DEFER        "Service unavailable"

int milter_spec_check(const char *spec, const char **path_r, const char **error_r)
{
	const char *port = NULL, *at;
	uint64_t n;
	*path_r = NULL;
	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0) {
		const char *path = strchr(spec, ':') + 1;
		if (path[0] != '/') {
			*error_r = "want unix:/absolute/path";
			return -1;
		}
		*path_r = path;
		return 0;
	}
	if (strncmp(spec, "inet:", 5) == 0 || strncmp(spec, "inet6:", 6) == 0)
		port = strchr(spec, ':') + 1;
	at = port != NULL ? strchr(port, '@') : NULL;
	if (at == NULL || strnum_u64(port, (size_t)(at - port), 65535, &n) < 0 || n == 0 ||
	    at[1] == '\0' || strlen(at + 1) > 255 || strpbrk(at + 1, " \t@") != NULL) {
		*error_r = "not unix:/path or inet:port@host (e.g. "
		           "unix:/run/mailquota-milter/milter.sock, inet:10041@127.0.0.1)";
		return -1;
	}
	return 0;
}

int milter_size_parse(const char *const *args, size_t nargs, uint64_t *size_r, const char **error_r)
{
	bool seen = false;
	uint64_t size = 0;
	*size_r = 0;
	for (size_t i = 0; i < nargs && i < MILTER_ESMTP_ARGS_MAX && args[i] != NULL; i++) {
		const char *a = args[i];
		size_t len = strnlen(a, MILTER_ESMTP_ARG_MAX + 1);
		if (len < 5 || strncasecmp(a, "SIZE=", 5) != 0)
			continue;
		if (seen) {
			*error_r = "SIZE given twice";
			return -1;
		}
		seen = true;
		if (len > 5 + SIZE_DIGITS_MAX ||
		    strnum_u64(a + 5, len - 5, UINT64_MAX, &size) < 0) {
			*error_r = "SIZE is not a number of bytes (1 to 20 digits)";
			return -1;
		}
	}
	if (!seen)
		return 1;
	*size_r = size;
	return 0;
}

/* value without one pair of surrounding angle brackets, its length in *len_r. */
static const char *strip_brackets(const char *value, size_t *len_r)
{
	size_t len = strnlen(value, MILTER_VALUE_MAX + 3);
	if (len >= 2 && value[0] == '<' && value[len - 1] == '>') {
		*len_r = len - 2;
		return value + 1;
	}
	*len_r = len;
	return value;
}

/* Append "name=value\n" unless value is NULL or empty. */
static int attr(struct buf *out, const char *name, const char *value, bool brackets,
                const char **error_r)
{
	if (value == NULL)
		return 0;
	size_t len;
	const char *v = brackets ? strip_brackets(value, &len) : value;
	if (!brackets)
		len = strnlen(value, MILTER_VALUE_MAX + 1);
	if (len > MILTER_VALUE_MAX) {
		*error_r = "a value is too long for a policy request";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
			*error_r = "a value holds a control character";
			return -1;
		}
	}
	if (len == 0)
		return 0;
	if (buf_printf(out, "%s=%.*s\n", name, (int)len, v) < 0) {
		*error_r = "no room for the policy request";
		return -1;
	}
	return 0;
}

int milter_request_append(struct buf *out, const struct milter_query *q, const char **error_r)
{
	size_t rl = 0;
	if (q->recipient != NULL)
		(void)strip_brackets(q->recipient, &rl);
	if (rl == 0) {
		*error_r = "empty recipient";
		return -1;
	}
	size_t start = out->len;
	if (buf_puts(out, "request=smtpd_access_policy\nprotocol_state=RCPT\n"
	                  "protocol_name=ESMTP\n") < 0) {
		*error_r = "no room for the policy request";
		goto fail;
	}
	if (attr(out, "recipient", q->recipient, true, error_r) < 0 ||
	    attr(out, "sender", q->sender, true, error_r) < 0 ||
	    attr(out, "queue_id", q->queue_id, false, error_r) < 0 ||
	    attr(out, "client_address", q->client_address, false, error_r) < 0 ||
	    attr(out, "instance", q->instance, false, error_r) < 0)
		goto fail;
	if (buf_printf(out, "size=%llu\n\n", (unsigned long long)q->size) < 0) {
		*error_r = "no room for the policy request";
		goto fail;
	}
	return 0;
fail:
	out->len = start; /* out unchanged, as promised */
	if (out->data != NULL)
		out->data[start] = '\0';
	return -1;
}

int milter_answer_parse(const char *buf, size_t len, const char **action_r, size_t *action_len_r,
                        size_t *consumed_r, const char **error_r)
{
	const char *action = NULL;
	size_t action_len = 0, pos = 0;
	for (;;) {
		if (pos >= MILTER_ANSWER_MAX) {
			*error_r = "answer longer than MILTER_ANSWER_MAX";
			return -1;
		}
		const char *nl = memchr(buf + pos, '\n', len - pos);
		if (nl == NULL) {
			if (len - pos > MILTER_ANSWER_MAX) {
				*error_r = "answer longer than MILTER_ANSWER_MAX";
				return -1;
			}
			return 0;
		}
		size_t end = (size_t)(nl - buf), ll = end - pos;
		if (ll > 0 && buf[end - 1] == '\r')
			ll--;
		if (end + 1 > MILTER_ANSWER_MAX) {
			*error_r = "answer longer than MILTER_ANSWER_MAX";
			return -1;
		}
		if (ll == 0) {
			if (action == NULL) {
				*error_r = "answer without an action";
				return -1;
			}
			*action_r = action;
			*action_len_r = action_len;
			*consumed_r = end + 1;
			return 1;
		}
		const char *line = buf + pos;
		const char *eq = memchr(line, '=', ll);
		if (eq == NULL) {
			*error_r = "answer line is not name=value";
			return -1;
		}
		if (action == NULL && (size_t)(eq - line) == 6 && memcmp(line, "action", 6) == 0) {
			action = eq + 1;
			action_len = ll - 7;
		}
		pos = end + 1;
	}
}

/* Copy text[len] into r->text: non-printable bytes become '?', '%' doubled (libmilter reads
   the text as a format and drops a text with a lone '%'), at most MILTER_TEXT_MAX source
   characters; an empty text becomes def. */
static void set_text(struct milter_reply *r, const char *text, size_t len, const char *def)
{
	_Static_assert(sizeof(TEXT_REJECT) <= MILTER_TEXT_MAX, "default text fits");
	if (len == 0) {
		text = def;
		len = strlen(def);
	}
	if (len > MILTER_TEXT_MAX)
		len = MILTER_TEXT_MAX;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '%')
			r->text[o++] = '%';
		r->text[o++] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
	}
	/* o <= 2 * MILTER_TEXT_MAX, and r->text has one more byte */
	r->text[o] = '\0';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Length of an enhanced status code "D.D{1,3}.D{1,3}" at s[len], followed by a space or the
   end; 0 when there is none. */
static size_t xcode_len(const char *s, size_t len)
{
	size_t i = 0;
	if (len < 5 || !is_digit(s[0]) || s[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t n = 0;
		while (i < len && is_digit(s[i]) && n < 4) {
			i++;
			n++;
		}
		if (n < 1 || n > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	return i == len || s[i] == ' ' ? i : 0;
}

/* The word at the start of a[len] equals w (any case) and is followed by a space or the end;
 *rest_r the text after the space. */
static bool word_is(const char *a, size_t len, const char *w, const char **rest_r,
                    size_t *rest_len_r)
{
	size_t wl = strlen(w);
	if (len < wl || strncasecmp(a, w, wl) != 0 || (len > wl && a[wl] != ' '))
		return false;
	*rest_r = len > wl ? a + wl + 1 : a + len;
	*rest_len_r = len > wl ? len - wl - 1 : 0;
	return true;
}

static void set_fixed(struct milter_reply *r, enum milter_kind kind, const char *code,
                      const char *xcode, const char *text, size_t len, const char *def)
{
	r->kind = kind;
	memcpy(r->code, code, 4);
	memcpy(r->xcode, xcode, 6);
	set_text(r, text, len, def);
}

int milter_reply_from_action(const char *action, size_t len, struct milter_reply *r,
                             const char **error_r)
{
	const char *rest;
	size_t rl;
	memset(r, 0, sizeof(*r));
	if ((len == 2 && strncasecmp(action, "OK", 2) == 0) ||
	    (len == 5 && strncasecmp(action, "DUNNO", 5) == 0)) {
		r->kind = MILTER_CONTINUE;
		return 0;
	}
	if (word_is(action, len, "DEFER_IF_PERMIT", &rest, &rl) ||
	    word_is(action, len, "DEFER", &rest, &rl)) {
		set_fixed(r, MILTER_TEMPFAIL, DEFER_REPLY_CODE, DEFER_REPLY_XCODE, rest, rl,
		          TEXT_DEFER);
		return 0;
	}
	if (word_is(action, len, "REJECT", &rest, &rl)) {
		set_fixed(r, MILTER_REJECT, REJECT_CODE, REJECT_XCODE, rest, rl, TEXT_REJECT);
		return 0;
	}
	if (len < 3 || !is_digit(action[0]) || !is_digit(action[1]) || !is_digit(action[2]) ||
	    (len > 3 && action[3] != ' ')) {
		*error_r = "not an action the milter knows (DUNNO, OK, 4xx/5xx, DEFER_IF_PERMIT, "
		           "DEFER, REJECT)";
		return -1;
	}
	if (action[0] != '4' && action[0] != '5') {
		*error_r = "the reply code is not 4xx or 5xx";
		return -1;
	}
	r->kind = action[0] == '5' ? MILTER_REJECT : MILTER_TEMPFAIL;
	memcpy(r->code, action, 3);
	r->code[3] = '\0';
	rest = len > 3 ? action + 4 : action + len;
	rl = len > 3 ? len - 4 : 0;
	size_t xl = xcode_len(rest, rl);
	if (xl > 0) {
		/* xl <= 9 (D.DDD.DDD) < sizeof(r->xcode) */
		memcpy(r->xcode, rest, xl);
		r->xcode[xl] = '\0';
		r->xcode[0] =
		        action[0]; /* Postfix, too, gives the enhanced code the reply's class */
		rest += xl;
		rl -= xl;
		if (rl > 0) { /* the space after it */
			rest++;
			rl--;
		}
	} else {
		memcpy(r->xcode, action[0] == '5' ? REJECT_XCODE : DEFER_REPLY_XCODE, 6);
	}
	set_text(r, rest, rl, r->kind == MILTER_REJECT ? TEXT_REJECT : TEXT_DEFER);
	return 0;
}
