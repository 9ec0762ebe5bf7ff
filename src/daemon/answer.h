/* answer: turns the requests buffered on one policy-server connection into answers, one
   function per protocol the server speaks (the Postfix policy delegation protocol, the
   socketmap table, Exim's readsocket); the event loop and connections are policy_server.h's. */
#ifndef MQ_ANSWER_H
#define MQ_ANSWER_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "service.h"

/* Which protocol a listener, and every connection it accepts, speaks. */
enum answer_protocol {
	ANSWER_POLICY,    /* policy.h: check_policy_service */
	ANSWER_SOCKETMAP, /* socketmap.h: check_recipient_access socketmap:...:mailquota */
	ANSWER_EXIM,      /* exim.h: ${readsocket{...}}, one request per connection */
};

/*
 * A replacement for how policy requests are answered (benchmarks use a do-nothing handler to
 * measure the socket code alone). fn returns the action text, which must stay valid until the
 * next call; it is sanitised and cut as policy_answer_append() says.
 */
struct policy_request;
typedef const char *(*policy_handler_fn)(void *ctx, const struct policy_request *req);

struct answer_ctx {
	const struct config *cfg;    /* borrowed */
	const struct service *svc;   /* borrowed; NULL only with a handler and policy only */
	struct check_result *result; /* reused: one check at a time */
	policy_handler_fn handler;   /* NULL: checks through svc */
	void *handler_ctx;
};

/* The most bytes of one request a connection of proto buffers (its input buffer's max). */
size_t answer_request_max(enum answer_protocol proto);

/*
 * Answer every complete request at the start of in, appending the answers to out and
 * consuming the requests from in; a partial request is left for more bytes, unless at_eof (the
 * peer half-closed: a protocol whose request may end with the input, Exim's, answers it).
 * Returns 0; 1 when the protocol has answered all a connection may ask (Exim's one request),
 * *why_r "answered"; or -1 when the connection must stop reading (a protocol error, or out
 * full because the peer does not read) with static *why_r for the log ("protocol_error",
 * "output_backlog"). After 1 or -1 the connection closes once out is sent: the answers owed
 * are in it (a socketmap peer also gets a PERM answer saying why, an Exim peer a 4xx line).
 * Logs one line per decision and per protocol error, with conn=conn_id.
 */
int answer_input(struct answer_ctx *ctx, enum answer_protocol proto, unsigned long conn_id,
                 const char *via, struct buf *in, struct buf *out, bool at_eof, const char **why_r)
        __attribute__((warn_unused_result));

#endif
