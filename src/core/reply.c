/*
 * reply: the mapping from verdicts to what the MTA is told (the policy action the policy socket
 * answers, the SMTP reply line the MTA then sends, which the HTTP check reports), and the
 * load-time rules that keep an operator from configuring a reply Postfix would silently rewrite
 * or that RFC 5321 forbids at RCPT. Pure; never called with untrusted input except the config
 * file. The service decides verdicts and never sees this text; only front ends call the mapping.
 */
#include "reply.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The over-quota reply is held as an array of the reply_set field's size, so copying it into a
   set cannot truncate (checked at compile time in reply_set_defaults). */
static const struct {
	const char *name;
	enum reply_profile profile;
	char over_quota[REPLY_MAX + 1];
} profiles[] = {
	{ "conventional", REPLY_PROFILE_CONVENTIONAL, "552 5.2.2 Mailbox full" },
	{ "strict", REPLY_PROFILE_STRICT, "452 4.2.2 Mailbox full" },
	{ "no452", REPLY_PROFILE_NO452, "450 4.2.2 Mailbox full" },
};

#define DEFER_IF_PERMIT "DEFER_IF_PERMIT"
/* Postfix sends DEFER_IF_PERMIT text as access_map_defer_code (450 by default) with 4.7.1;
   the text when none is given is ours. */
#define DEFER_IF_PERMIT_CODE "450 4.7.1"
#define DEFER_IF_PERMIT_TEXT "Service unavailable"

/* Copy a string literal into a char array that it fits, as the compiler checks. */
#define COPY_LITERAL(dst, lit)                                                            \
	do {                                                                              \
		_Static_assert(sizeof(lit) <= sizeof(dst), "literal does not fit " #dst); \
		memcpy((dst), (lit), sizeof(lit));                                        \
	} while (0)

int reply_profile_parse(const char *s, enum reply_profile *profile_r)
{
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
		if (strcmp(s, profiles[i].name) == 0) {
			*profile_r = profiles[i].profile;
			return 0;
		}
	}
	return -1;
}

/* The profiles row of a profile; the first (conventional) for a value outside the enum. */
static size_t profile_row(enum reply_profile profile)
{
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		if (profiles[i].profile == profile)
			return i;
	return 0;
}

const char *reply_profile_over_quota(enum reply_profile profile)
{
	return profiles[profile_row(profile)].over_quota;
}

void reply_set_defaults(struct reply_set *set, enum reply_profile profile)
{
	_Static_assert(sizeof(profiles[0].over_quota) == sizeof(set->over_quota),
	               "a profile's over-quota reply must have the reply_set field's size");
	memcpy(set->over_quota, profiles[profile_row(profile)].over_quota, sizeof(set->over_quota));
	COPY_LITERAL(set->too_big_mailbox, "552 5.2.3 Message length exceeds administrative limit");
	COPY_LITERAL(set->too_big_system, "552 5.3.4 Message too big for system");
	COPY_LITERAL(set->tempfail, "451 4.3.0 Quota service temporarily unavailable");
	COPY_LITERAL(set->unknown, "DUNNO");
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits run of 1..max at *p; advances p. */
static bool digits(const char **p, int max)
{
	int n = 0;
	while (is_digit(**p) && n <= max) {
		(*p)++;
		n++;
	}
	return n >= 1 && n <= max;
}

/* "NNN[ X.Y.Z] text" (text may be empty). */
static int validate_smtp(enum reply_kind kind, const char *r, const char **error_r)
{
	if (!is_digit(r[0]) || !is_digit(r[1]) || !is_digit(r[2]) ||
	    (r[3] != ' ' && r[3] != '\0')) {
		*error_r = "reply must start with a three-digit SMTP code followed by a space";
		return -1;
	}
	if (r[0] != '4' && r[0] != '5') {
		*error_r = "reply code must be 4xx or 5xx";
		return -1;
	}
	if (r[1] > '5') {
		*error_r = "reply code second digit must be 0-5";
		return -1;
	}
	if (strncmp(r, "554", 3) == 0) {
		*error_r = "554 is not a valid reply to RCPT TO (RFC 5321 section 4.3.2); use 550 "
		           "or 552";
		return -1;
	}
	if (kind == REPLY_KIND_TEMPFAIL && r[0] != '4') {
		*error_r = "a temporary failure must be a 4xx reply or DEFER_IF_PERMIT, never 5xx";
		return -1;
	}
	if (r[3] == '\0')
		return 0;
	const char *p = r + 4;
	if (is_digit(p[0]) && p[1] == '.') {
		/* enhanced status code X.YYY.ZZZ (RFC 3463) */
		char cls = p[0];
		p += 2;
		if (!digits(&p, 3) || *p != '.') {
			*error_r = "malformed enhanced status code (want X.Y.Z)";
			return -1;
		}
		p++;
		if (!digits(&p, 3) || (*p != ' ' && *p != '\0')) {
			*error_r = "malformed enhanced status code (want X.Y.Z)";
			return -1;
		}
		if (cls != r[0]) {
			*error_r = "enhanced status code class differs from the reply code class "
			           "(Postfix would rewrite it); e.g. 552 goes with 5.x.x, 452 with "
			           "4.x.x";
			return -1;
		}
	}
	return 0;
}

int reply_validate(enum reply_kind kind, const char *reply, const char **error_r)
{
	size_t len = strlen(reply);
	if (len == 0) {
		*error_r = "reply is empty";
		return -1;
	}
	if (len > REPLY_MAX) {
		*error_r = "reply is longer than 300 characters";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)reply[i];
		if (c < 0x20 || c >= 0x7f) {
			*error_r = "reply contains a control or non-ASCII character";
			return -1;
		}
	}
	if (is_digit(reply[0]))
		return validate_smtp(kind, reply, error_r);
	if (strncmp(reply, DEFER_IF_PERMIT, strlen(DEFER_IF_PERMIT)) == 0 &&
	    (reply[strlen(DEFER_IF_PERMIT)] == ' ' || reply[strlen(DEFER_IF_PERMIT)] == '\0') &&
	    kind != REPLY_KIND_REFUSAL)
		return 0;
	if (strcmp(reply, "DUNNO") == 0 && kind == REPLY_KIND_UNKNOWN)
		return 0;
	switch (kind) {
	case REPLY_KIND_REFUSAL:
		*error_r =
		        "reply must be a 4xx or 5xx SMTP reply such as \"552 5.2.2 Mailbox full\"";
		break;
	case REPLY_KIND_TEMPFAIL:
		*error_r = "reply must be a 4xx SMTP reply or \"DEFER_IF_PERMIT text\"";
		break;
	case REPLY_KIND_UNKNOWN:
		*error_r = "reply must be DUNNO, \"DEFER_IF_PERMIT text\" or a 4xx/5xx SMTP reply";
		break;
	}
	return -1;
}

const char *reply_policy_action(const struct reply_set *set, enum quota_verdict verdict)
{
	switch (verdict) {
	case QUOTA_ACCEPT:
		return "DUNNO";
	case QUOTA_OVER_QUOTA:
		return set->over_quota;
	case QUOTA_TOO_BIG_MAILBOX:
		return set->too_big_mailbox;
	case QUOTA_TOO_BIG_SYSTEM:
		return set->too_big_system;
	case QUOTA_UNKNOWN:
		return set->unknown;
	case QUOTA_TEMPFAIL:
		return set->tempfail;
	}
	return set->tempfail;
}

const char *reply_smtp(const struct reply_set *set, enum quota_verdict verdict,
                       struct reply_line *line)
{
	_Static_assert(sizeof(DEFER_IF_PERMIT_CODE " ") <= sizeof(DEFER_IF_PERMIT " "),
	               "a DEFER_IF_PERMIT line must not be longer than its reply");
	_Static_assert(sizeof(DEFER_IF_PERMIT_CODE " " DEFER_IF_PERMIT_TEXT) <= sizeof(line->text),
	               "the default DEFER_IF_PERMIT line must fit");
	if (verdict == QUOTA_ACCEPT)
		return NULL;
	const char *r = reply_policy_action(set, verdict);
	size_t dl = strlen(DEFER_IF_PERMIT);
	int n;
	if (is_digit(r[0]))
		n = snprintf(line->text, sizeof(line->text), "%s", r);
	else if (strncmp(r, DEFER_IF_PERMIT, dl) == 0 && (r[dl] == ' ' || r[dl] == '\0'))
		n = snprintf(line->text, sizeof(line->text), DEFER_IF_PERMIT_CODE " %s",
		             r[dl] == ' ' ? r + dl + 1 : DEFER_IF_PERMIT_TEXT);
	else
		return NULL; /* DUNNO: the MTA goes on with its own restrictions */
	/* a reply_set field holds at most REPLY_MAX octets, and each form above is no longer
	   than the reply it came from (or than the default line): nothing is cut */
	if (n < 0 || (size_t)n >= sizeof(line->text))
		abort();
	return line->text;
}
