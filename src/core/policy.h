/* policy: the Postfix SMTPD policy delegation protocol, request parsing and reply formatting
   (pure). */
#ifndef MQ_POLICY_H
#define MQ_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Named limits on what a peer may send (STYLE.md rule 10). Postfix's longest attributes (ccert
   subjects, policy_context) stay far below the line limit. */
#define POLICY_LINE_MAX    4096  /* one name=value line, without the newline */
#define POLICY_ATTRS_MAX   256   /* attribute lines in one request */
#define POLICY_REQUEST_MAX 65536 /* one whole request */

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

#endif
