/* exim: the request line and reply line of mailquota's listener for Exim's ${readsocket{...}}
   expansion (pure): "<recipient> <size>" in, "OK" or an SMTP reply line out, one of each per
   connection. The event loop is policy_server.c's, the check service.h's. */
#ifndef MQ_EXIM_H
#define MQ_EXIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quota.h"
#include "reply.h"

struct buf;

/* Named limits (docs/style.md rule 10). A request line, its terminator included, is at most
   EXIM_REQUEST_MAX octets: an address (at most 254 octets by RFC 5321, more accepted and left
   to the address rules), a space and a size. A longer one is answered EXIM_REPLY_BAD_REQUEST. */
#define EXIM_REQUEST_MAX 1024
/* The longest reply line, its "\n" included: a configured reply is at most REPLY_MAX. */
#define EXIM_REPLY_MAX (REPLY_MAX + 2)

/* The answer to a request that cannot be read (a configuration mistake in the ACL, or not
   Exim at all): a temporary failure, so the mail waits and is never accepted or bounced by
   it. The reason follows after ": ". */
#define EXIM_REPLY_BAD_REQUEST "451 4.3.5 Quota service could not read the request"

/* A request's recipient (inside the caller's buffer, not NUL-terminated) and size. */
struct exim_request {
	const char *rcpt;
	size_t rcpt_len;
	uint64_t size; /* 0 when the MAIL command carried no SIZE (Exim's $message_size -1) */
	bool has_size;
};

/*
 * Find the first request line in buf[len]: it ends at "\n" ("\r\n" too), or at the end of
 * input when at_eof (Exim half-closes after the request, so the newline is optional). Returns
 * 1 with *line_len_r (without the terminator) and *used_r (with it) when a line is there, 0 when
 * more input is needed, -1 with static *error_r when no line can come: len reached
 * EXIM_REQUEST_MAX without a newline, or a NUL byte. Pure.
 */
int exim_request_line(const char *buf, size_t len, bool at_eof, size_t *line_len_r, size_t *used_r,
                      const char **error_r) __attribute__((warn_unused_result));

/*
 * Parse one request line (without its terminator): "<recipient> <size>", the size the last
 * space-separated word: decimal digits (at most 20, no sign, below 2^64) or "-1" for no SIZE.
 * The recipient is everything before that space, not empty. Returns 0 with *req_r, or -1 with
 * static *error_r. Pure.
 */
int exim_request_parse(const char *line, size_t len, struct exim_request *req_r,
                       const char **error_r) __attribute__((warn_unused_result));

/*
 * The reply line for a verdict under set, without "\n": "OK" when the MTA decides itself (the
 * recipient can take the message, or an unknown recipient under a DUNNO reply), otherwise the
 * SMTP reply line reply_smtp() gives, code and enhanced code first: a 5xx for the ACL to deny
 * with, a 4xx to defer with. Static, set's or line's text. Pure.
 */
const char *exim_reply(const struct reply_set *set, enum quota_verdict verdict,
                       struct reply_line *line);

/*
 * Append text and "\n" to out: every byte outside printable ASCII becomes '?' (a reply never
 * spans lines, which Exim would turn into a multi-line SMTP reply), and text beyond
 * EXIM_REPLY_MAX - 1 octets is cut. Returns 0, or -1 when out has no room (out unchanged).
 * Pure.
 */
int exim_reply_append(struct buf *out, const char *text) __attribute__((warn_unused_result));

#endif
