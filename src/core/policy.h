/* policy: the Postfix SMTPD policy delegation protocol (pure): request parsing, the state rules
   that say which requests need a recipient check, and answer formatting. */
#ifndef MQ_POLICY_H
#define MQ_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* Named limits on what a peer may send (docs/style.md rule 10). Postfix's longest attributes (ccert
   subjects, policy_context) stay far below the line limit. */
#define POLICY_LINE_MAX    4096  /* one name=value line, without the newline */
#define POLICY_ATTRS_MAX   256   /* attribute lines in one request */
#define POLICY_REQUEST_MAX 65536 /* one whole request */

/* The longest action text an answer carries; longer text is cut. An SMTP reply line is at most
   512 octets with its CRLF (RFC 5321 section 4.5.3.1.5), and Postfix adds to ours. */
#define POLICY_ACTION_MAX 512

enum policy_state {
	POLICY_STATE_OTHER, /* CONNECT, EHLO, HELO, MAIL, DATA, VRFY, ETRN, missing... */
	POLICY_STATE_RCPT,
	POLICY_STATE_END_OF_MESSAGE,
};

/* A string inside the caller's buffer; not NUL-terminated. */
struct policy_str {
	const char *ptr;
	size_t len;
};

struct policy_request {
	enum policy_state state;
	struct policy_str protocol_state; /* as sent, for logging */
	struct policy_str recipient;
	struct policy_str instance;
	struct policy_str queue_id;
	struct policy_str sender;
	struct policy_str client_address;
	uint64_t size;            /* 0 when absent or empty */
	uint64_t recipient_count; /* 0 when absent */
	unsigned attrs;           /* attribute lines seen */
};

/*
 * Look for one complete request at the start of buf[len]. Returns:
 *   1  a request ends within buf: *req_r filled (strings point into buf), *consumed_r = its
 *      length including the empty line;
 *   0  more bytes are needed (the partial request is within every limit so far);
 *  -1  the peer broke the protocol or a limit: *error_r says how (static text); the caller
 *      closes the connection.
 * Accepts "\n" line ends and tolerates "\r\n". Unknown attributes are ignored; for a repeated
 * attribute the first value counts. Requires request=smtpd_access_policy. Pure.
 */
int policy_parse(const char *buf, size_t len, struct policy_request *req_r, size_t *consumed_r,
                 const char **error_r) __attribute__((warn_unused_result));

/* What a request asks to have checked. */
struct policy_check {
	struct policy_str recipient; /* inside the request's buffer; never empty */
	uint64_t size;               /* the message size Postfix sent; 0 when it sent none */
};

/*
 * Postfix's state rules: whether req needs a recipient check. At RCPT its recipient is checked;
 * at END-OF-MESSAGE only when recipient_count is exactly 1, because Postfix names the recipient
 * only then and an answer there applies to the whole message. Any other state, or an empty
 * recipient, needs no check: the answer is DUNNO. Returns true with *check_r filled (pointing
 * into req's buffer), false otherwise. Pure.
 */
bool policy_wants_check(const struct policy_request *req, struct policy_check *check_r);

/* "RCPT", "END-OF-MESSAGE" or "OTHER", for logs. Static string. */
const char *policy_state_name(enum policy_state state);

/*
 * Append the answer to one request, "action=<action>\n\n", to out. Every byte of action outside
 * printable ASCII becomes '?' (a newline would end the answer early and let the text forge a
 * second one), and text beyond POLICY_ACTION_MAX octets is cut. Returns 0, or -1 when out has
 * no room for the whole answer (out unchanged). Pure.
 */
int policy_answer_append(struct buf *out, const char *action) __attribute__((warn_unused_result));

#endif
