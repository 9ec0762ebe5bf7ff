/* reply: verdict → Postfix policy action and SMTP reply line, with profiles and load-time
   validation (pure). Each front end maps a service verdict to its own protocol here. */
#ifndef MQ_REPLY_H
#define MQ_REPLY_H

#include <stddef.h>

#include "quota.h"

/* An SMTP reply line is at most 512 octets with CRLF (RFC 5321 §4.5.3.1.5); we keep room for
   the "<rcpt>: Recipient address rejected: " prefix Postfix adds. */
#define REPLY_MAX 300

enum reply_profile { REPLY_PROFILE_CONVENTIONAL, REPLY_PROFILE_STRICT, REPLY_PROFILE_NO452 };

/* What kind of answer a configured reply is, which decides what it may look like. */
enum reply_kind {
	REPLY_KIND_REFUSAL,  /* over quota / too big: a 4xx or 5xx SMTP reply */
	REPLY_KIND_TEMPFAIL, /* store trouble: a 4xx reply or DEFER_IF_PERMIT text, never 5xx */
	REPLY_KIND_UNKNOWN,  /* unknown recipient: DUNNO, DEFER_IF_PERMIT text, or 4xx/5xx */
};

struct reply_set {
	char over_quota[REPLY_MAX + 1];
	char too_big_mailbox[REPLY_MAX + 1];
	char too_big_system[REPLY_MAX + 1];
	char tempfail[REPLY_MAX + 1];
	char unknown[REPLY_MAX + 1];
};

/* "conventional", "strict", "no452"; 0 or -1. */
int reply_profile_parse(const char *s, enum reply_profile *profile_r)
        __attribute__((warn_unused_result));
/* The default over-quota reply of a profile, e.g. "552 5.2.2 Mailbox full". Static string. */
const char *reply_profile_over_quota(enum reply_profile profile);
/* Fill *set with the built-in defaults for a profile. */
void reply_set_defaults(struct reply_set *set, enum reply_profile profile);

/*
 * Check one configured reply of the given kind. Refuses: non-printable text, more than
 * REPLY_MAX octets, a malformed code, a 2xx/3xx code, 554 (not a valid RCPT reply, RFC 5321
 * §4.3.2), a DSN whose class differs from the code's class (Postfix would rewrite it), a 5xx
 * tempfail. Returns 0, or -1 with a static *error_r. Pure.
 */
int reply_validate(enum reply_kind kind, const char *reply, const char **error_r)
        __attribute__((warn_unused_result));

/*
 * The Postfix policy action for a verdict: "DUNNO" for QUOTA_ACCEPT (the MTA decides), the
 * configured reply of set otherwise. The string is static or owned by set. Pure.
 */
const char *reply_policy_action(const struct reply_set *set, enum quota_verdict verdict);

/* Room for any SMTP reply line reply_smtp() gives for a reply_set's text: never more than the
   text itself, since "450 4.7.1 " is shorter than the "DEFER_IF_PERMIT " it replaces. */
struct reply_line {
	char text[REPLY_MAX + 1];
};

/*
 * The SMTP reply line an MTA sends for a verdict under set, as Postfix builds it: the configured
 * reply itself when it starts with a code, "450 4.7.1 text" for "DEFER_IF_PERMIT text" (text
 * "Service unavailable" when none), NULL when the MTA decides itself (QUOTA_ACCEPT, a DUNNO
 * unknown-recipient reply, or any text that is neither). A returned line is line->text and
 * is never cut (see struct reply_line). Pure.
 */
const char *reply_smtp(const struct reply_set *set, enum quota_verdict verdict,
                       struct reply_line *line);

#endif
