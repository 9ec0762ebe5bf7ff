/* socketmap: Postfix's socketmap lookup protocol (socketmap_table(5)) for mailquota's table
   (pure): the request "<name> <key>", the verdict → answer rule, and reply formatting. The
   framing is netstring.h's. */
#ifndef MQ_SOCKETMAP_H
#define MQ_SOCKETMAP_H

#include <stddef.h>

#include "quota.h"
#include "reply.h"

struct buf;

/* Named limits (docs/style.md rule 10). A request is "<name> <key>" with the key an address;
   longer requests are refused (PERM) and the connection closed. */
#define SOCKETMAP_REQUEST_MAX 4096
/* Postfix refuses replies longer than this (dict_sockmap.c, DICT_SOCKMAP_DEF_MAX_REPLY); ours
   are far shorter: at most SOCKETMAP_TEXT_MAX after the status word. */
#define SOCKETMAP_REPLY_MAX 100000
/* The longest text after a status word; longer text is cut (as POLICY_ACTION_MAX). */
#define SOCKETMAP_TEXT_MAX 512

/* The one map name answered: socketmap:unix:/run/mailquota/socketmap.sock:mailquota */
#define SOCKETMAP_NAME "mailquota"

enum socketmap_status {
	SOCKETMAP_OK,       /* "OK <data>": found; data is an access(5) action */
	SOCKETMAP_NOTFOUND, /* "NOTFOUND ": no opinion, the next restriction decides */
	SOCKETMAP_TEMP,     /* "TEMP <reason>": Postfix defers (4xx) */
	SOCKETMAP_PERM,     /* "PERM <reason>": Postfix treats the table as misconfigured */
};

/* A request's key, inside the caller's buffer (not NUL-terminated). */
struct socketmap_request {
	const char *key;
	size_t key_len;
};

/*
 * Split a request's payload[len] (a netstring's) into map name and key. Returns 0 with
 * *req_r, or -1 with static *error_r when the name is not SOCKETMAP_NAME, the space is
 * missing or the key is empty: a well-framed request the caller answers PERM, keeping the
 * connection. Pure.
 */
int socketmap_request_parse(const char *payload, size_t len, struct socketmap_request *req_r,
                            const char **error_r) __attribute__((warn_unused_result));

struct socketmap_answer {
	enum socketmap_status status;
	const char *text; /* static or owned by the reply_set; "" with NOTFOUND */
};

/*
 * The answer for a check's verdict (the check is made with size 0, checked as 1 byte, so it
 * refuses only a recipient that can take nothing more: an already full mailbox, an alias
 * whose every target is full). A refusal → OK with the configured reply of set (as
 * reply_policy_action()); QUOTA_ACCEPT → NOTFOUND; QUOTA_UNKNOWN → NOTFOUND when the
 * configured unknown-recipient action is DUNNO, else OK with it; QUOTA_TEMPFAIL → TEMP with
 * temp_reason ("store unavailable" when NULL). Pure.
 */
struct socketmap_answer socketmap_answer_verdict(const struct reply_set *set,
                                                 enum quota_verdict verdict,
                                                 const char *temp_reason);

/*
 * Append one reply, the netstring of "<STATUS> <text>", to out. Every byte of text outside
 * printable ASCII becomes '?', and text beyond SOCKETMAP_TEXT_MAX octets is cut. Returns 0, or
 * -1 when out has no room for the whole reply (out unchanged). Pure.
 */
int socketmap_reply_append(struct buf *out, enum socketmap_status status, const char *text)
        __attribute__((warn_unused_result));

/* "OK", "NOTFOUND", "TEMP", "PERM": the status word, also for logs. Static string. */
const char *socketmap_status_name(enum socketmap_status status);

#endif
