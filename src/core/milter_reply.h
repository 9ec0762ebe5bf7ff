/* milter_reply: the pure half of mailquota-milter: its socket setting, SIZE= in MAIL FROM's
   ESMTP parameters, the policy request the milter sends mailquotad for one RCPT, the daemon's
   answer, and the mapping of its action to what the milter tells the MTA (continue, or a reply
   for smfi_setreply()). */
#ifndef MQ_MILTER_REPLY_H
#define MQ_MILTER_REPLY_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/*
 * Check a milter_socket value, libmilter's connection spec: "unix:/path" or "local:/path"
 * (*path_r set to the path, which the caller checks as a socket path), or "inet:port@host" /
 * "inet6:port@host" (*path_r NULL; a host is required, since a bare port would listen on every
 * address). Returns 0, or -1 with a static *error_r (*path_r NULL). Pure.
 */
int milter_spec_check(const char *spec, const char **path_r, const char **error_r)
        __attribute__((warn_unused_result));

/* Named limits on what the MTA and the daemon may hand us (docs/style.md rule 10). */
#define MILTER_ESMTP_ARGS_MAX 64   /* ESMTP parameters of MAIL FROM looked at */
#define MILTER_ESMTP_ARG_MAX  1024 /* one parameter ("SIZE=" and at most 20 digits are used) */
#define MILTER_VALUE_MAX      1024 /* a recipient, sender, queue id... sent in a request */
#define MILTER_ANSWER_MAX     1024 /* the daemon's whole answer, "action=...\n\n" */
#define MILTER_TEXT_MAX       300  /* reply text handed to smfi_setreply(), escaped */

/*
 * Find SIZE= among MAIL FROM's ESMTP parameters args[0..nargs-1] (libmilter's argv after the
 * address; NULL entries end the list early). Only the first MILTER_ESMTP_ARGS_MAX are looked
 * at. Returns 0 with *size_r set when one well-formed SIZE=<digits> is there; 1 when none is
 * (*size_r = 0); -1 when a SIZE parameter is malformed (not 1..20 digits, over UINT64_MAX,
 * given twice, or longer than MILTER_ESMTP_ARG_MAX), *size_r = 0 and *error_r static text.
 * The keyword is matched case-insensitively (RFC 5321 section 2.4). Pure.
 */
int milter_size_parse(const char *const *args, size_t nargs, uint64_t *size_r, const char **error_r)
        __attribute__((warn_unused_result));

/* What the milter asks the daemon for one RCPT. Strings are NUL-terminated; NULL or "" leaves
   the attribute out (recipient is required). */
struct milter_query {
	const char *recipient; /* with or without <>, as libmilter passes it */
	const char *sender;
	const char *queue_id;
	const char *client_address;
	const char *instance;
	uint64_t size;
};

/*
 * Append the policy request for q to out: request=smtpd_access_policy, protocol_state=RCPT,
 * the attributes, and the empty line. Angle brackets around addresses are dropped. Returns 0,
 * or -1 with a static *error_r (out unchanged) when the recipient is empty, a value is longer
 * than MILTER_VALUE_MAX or holds a control character (it would end or forge an attribute
 * line), or out has no room. Pure.
 */
int milter_request_append(struct buf *out, const struct milter_query *q, const char **error_r)
        __attribute__((warn_unused_result));

/*
 * Look for the daemon's answer at the start of buf[len]: "action=<text>\n" followed by an empty
 * line (other attributes are ignored; "\r\n" tolerated). Returns 1 with *action_r / *action_len_r
 * pointing into buf and *consumed_r its length; 0 when more bytes are needed; -1 with a static
 * *error_r when it is not such an answer or exceeds MILTER_ANSWER_MAX. Pure.
 */
int milter_answer_parse(const char *buf, size_t len, const char **action_r, size_t *action_len_r,
                        size_t *consumed_r, const char **error_r)
        __attribute__((warn_unused_result));

enum milter_kind {
	MILTER_CONTINUE, /* SMFIS_CONTINUE: the MTA decides */
	MILTER_REJECT,   /* smfi_setreply() then SMFIS_REJECT: a 5xx reply */
	MILTER_TEMPFAIL, /* smfi_setreply() then SMFIS_TEMPFAIL: a 4xx reply */
};

/* A reply ready for smfi_setreply(ctx, code, xcode, text): printable ASCII, '%' doubled. */
struct milter_reply {
	enum milter_kind kind;
	char code[4];                       /* "552" */
	char xcode[12];                     /* "5.2.2": X.YYY.ZZZ at most */
	char text[2 * MILTER_TEXT_MAX + 1]; /* every '%' doubled, so up to twice the text */
};

/*
 * Map a Postfix policy action (as the daemon answers, action[len]) to a milter reply, as
 * Postfix's access(5) reads it: OK and DUNNO (any case) continue; "4NN/5NN [X.Y.Z] text" is
 * that reply (a missing enhanced code becomes X.7.1 and one of another class gets the code's
 * class, as Postfix does; text cut at MILTER_TEXT_MAX, non-printable bytes '?', empty text
 * "Recipient address rejected" or "Service unavailable"); "DEFER_IF_PERMIT [text]" and
 * "DEFER [text]" are 450 4.7.1, "REJECT [text]" 550 5.7.1 (Postfix would use its
 * access_map_reject_code, 554 by default, which RFC 5321 does not allow at RCPT; the daemon
 * never answers REJECT). Returns 0 with *r set, or -1
 * with a static *error_r when the action is anything else (2xx/3xx codes, other actions,
 * empty): the caller tempfails, never accepts. Pure.
 */
int milter_reply_from_action(const char *action, size_t len, struct milter_reply *r,
                             const char **error_r) __attribute__((warn_unused_result));

#endif
