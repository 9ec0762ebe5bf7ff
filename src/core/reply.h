/* reply: verdict → SMTP reply / policy action, with profiles and load-time validation (pure). */
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

/* The reply (policy action text) for a verdict; "DUNNO" for QUOTA_ACCEPT. */
const char *reply_for(const struct reply_set *set, enum quota_verdict verdict);

/*
 * The SMTP reply line the MTA will send for a policy action: the action itself when it starts
 * with a code, "450 4.7.1 text" for DEFER_IF_PERMIT, NULL for DUNNO (the MTA decides).
 * Writes into out[size]; returns out or NULL.
 */
const char *reply_smtp_line(const char *action, char *out, size_t size);

#endif
