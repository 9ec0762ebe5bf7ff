/*
 * answer: the per-protocol half of a policy-server connection. For each complete request in a
 * connection's input it runs the pure protocol rules (policy.c, netstring.c, socketmap.c, exim.c),
 * one service_check() and the reply mapping (reply.c), and appends the answer. It must never block
 * or do I/O but logging, never answer a request it could not fully parse, and never let one
 * peer's text reach a log line unsanitised.
 */
#include "answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exim.h"
#include "log.h"
#include "metrics.h"
#include "netstring.h"
#include "policy.h"
#include "reply.h"
#include "socketmap.h"

size_t answer_request_max(enum answer_protocol proto)
{
	if (proto == ANSWER_SOCKETMAP) /* the length, ':', the payload and ',' */
		return NETSTRING_DIGITS_MAX + 1 + SOCKETMAP_REQUEST_MAX + 1;
	if (proto == ANSWER_EXIM)
		return EXIM_REQUEST_MAX;
	return POLICY_REQUEST_MAX;
}

/* How loud a decision is logged: accepts at debug, refusals at info, store trouble at warn. */
static enum log_level decision_level(enum quota_verdict verdict)
{
	if (verdict == QUOTA_TEMPFAIL)
		return LOG_LEVEL_WARN;
	return verdict == QUOTA_ACCEPT ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
}

/* The action for one policy request by the state rules (policy.h) and the check; logs the
   decision. */
static const char *policy_action(struct answer_ctx *ctx, unsigned long id,
                                 const struct policy_request *req)
{
	struct policy_check chk;
	char rcpt[128];
	if (!policy_wants_check(req, &chk))
		return "DUNNO";
	unsigned long long size = (unsigned long long)chk.size;
	str_sanitize(rcpt, sizeof(rcpt), chk.recipient.ptr, chk.recipient.len, 100);
	struct check_result *res = ctx->result;
	const char *why;
	uint64_t t0 = metrics_now();
	if (service_check(ctx->svc, chk.recipient.ptr, chk.recipient.len, chk.size, res, &why) <
	    0) {
		metrics_check(METRICS_POLICY, NULL, t0);
		log_info("conn=%lu rcpt=<%s> size=%llu verdict=invalid_address error=\"%s\" "
		         "action=DUNNO",
		         id, rcpt, size, why);
		return "DUNNO";
	}
	metrics_check(METRICS_POLICY, res, t0);
	const char *action = reply_policy_action(&ctx->cfg->replies, res->verdict);
	enum log_level lvl = decision_level(res->verdict);
	if (log_enabled(lvl)) {
		/* what follows one message's RCPTs through the log: Postfix's instance (one per
		   transaction), queue id, client and sender */
		char qid[32], inst[48], client[48], sender[128];
		str_sanitize(qid, sizeof(qid), req->queue_id.ptr, req->queue_id.len, 20);
		str_sanitize(inst, sizeof(inst), req->instance.ptr, req->instance.len, 40);
		str_sanitize(client, sizeof(client), req->client_address.ptr,
		             req->client_address.len, 45);
		str_sanitize(sender, sizeof(sender), req->sender.ptr, req->sender.len, 100);
		log_write(lvl,
		          "conn=%lu instance=%s queue_id=%s client_address=%s sender=<%s> state=%s "
		          "rcpt=<%s> size=%llu match=%s verdict=%s reason=%s action=\"%s\"",
		          id, inst[0] ? inst : "-", qid[0] ? qid : "-", client[0] ? client : "-",
		          sender, policy_state_name(req->state), rcpt, size,
		          service_match_name(res->match), quota_verdict_name(res->verdict),
		          quota_reason_name(res->reason), action);
	}
	return action;
}

static int policy_input(struct answer_ctx *ctx, unsigned long id, const char *via, struct buf *in,
                        struct buf *out, const char **why_r)
{
	for (;;) {
		struct policy_request req;
		size_t used;
		const char *why;
		int rc = policy_parse(in->data, in->len, &req, &used, &why);
		if (rc == 0)
			return 0;
		if (rc < 0) {
			log_info("conn=%lu event=protocol_error via=%s error=\"%s\"", id, via, why);
			*why_r = "protocol_error";
			return -1;
		}
		const char *action = ctx->handler != NULL ? ctx->handler(ctx->handler_ctx, &req)
		                                          : policy_action(ctx, id, &req);
		if (policy_answer_append(out, action) < 0) {
			log_info("conn=%lu event=close reason=output_backlog", id);
			*why_r = "output_backlog";
			return -1;
		}
		buf_consume(in, used);
	}
}

/* The answer to one well-framed socketmap request; logs the decision. */
static struct socketmap_answer socketmap_lookup(struct answer_ctx *ctx, unsigned long id,
                                                const char *via, const char *payload, size_t len)
{
	struct socketmap_request req;
	struct socketmap_answer a = { SOCKETMAP_NOTFOUND, "" };
	char key[128];
	const char *why;
	if (socketmap_request_parse(payload, len, &req, &why) < 0) {
		str_sanitize(key, sizeof(key), payload, len, 100);
		log_info("conn=%lu event=socketmap_refused via=%s request=\"%s\" error=\"%s\"", id,
		         via, key, why);
		a.status = SOCKETMAP_PERM;
		a.text = why;
		return a;
	}
	str_sanitize(key, sizeof(key), req.key, req.key_len, 100);
	struct check_result *res = ctx->result;
	/* no size in a table lookup: size 0 is checked as 1 byte, so only a full recipient
	   (one that can take nothing more) is refused */
	uint64_t t0 = metrics_now();
	if (service_check(ctx->svc, req.key, req.key_len, 0, res, &why) < 0) {
		metrics_check(METRICS_SOCKETMAP, NULL, t0);
		log_debug("conn=%lu via=%s key=<%s> verdict=invalid_address error=\"%s\" "
		          "answer=NOTFOUND",
		          id, via, key, why);
		return a;
	}
	metrics_check(METRICS_SOCKETMAP, res, t0);
	a = socketmap_answer_verdict(&ctx->cfg->replies, res->verdict, res->store_error);
	enum log_level lvl = a.status == SOCKETMAP_NOTFOUND ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
	if (a.status == SOCKETMAP_TEMP)
		lvl = LOG_LEVEL_WARN;
	if (log_enabled(lvl))
		log_write(lvl,
		          "conn=%lu via=%s key=<%s> match=%s verdict=%s reason=%s answer=%s "
		          "text=\"%s\"",
		          id, via, key, service_match_name(res->match),
		          quota_verdict_name(res->verdict), quota_reason_name(res->reason),
		          socketmap_status_name(a.status), a.text);
	return a;
}

static int socketmap_input(struct answer_ctx *ctx, unsigned long id, const char *via,
                           struct buf *in, struct buf *out, const char **why_r)
{
	for (;;) {
		const char *payload, *why;
		size_t plen, used;
		int rc = netstring_parse(in->data, in->len, SOCKETMAP_REQUEST_MAX, &payload, &plen,
		                         &used, &why);
		if (rc == 0)
			return 0;
		if (rc < 0) {
			log_info("conn=%lu event=protocol_error via=%s error=\"%s\"", id, via, why);
			/* the peer learns why; out may be full, then it learns it from the close */
			if (socketmap_reply_append(out, SOCKETMAP_PERM, why) < 0)
				log_debug("conn=%lu event=perm_unsent", id);
			*why_r = "protocol_error";
			return -1;
		}
		struct socketmap_answer a = socketmap_lookup(ctx, id, via, payload, plen);
		if (socketmap_reply_append(out, a.status, a.text) < 0) {
			log_info("conn=%lu event=close reason=output_backlog", id);
			*why_r = "output_backlog";
			return -1;
		}
		buf_consume(in, used);
	}
}

/* The reply line to one Exim request line; logs the decision. */
static const char *exim_lookup(struct answer_ctx *ctx, unsigned long id, const char *via,
                               const char *line, size_t len, struct reply_line *rl)
{
	struct exim_request req;
	char rcpt[128];
	const char *why;
	if (exim_request_parse(line, len, &req, &why) < 0) {
		str_sanitize(rcpt, sizeof(rcpt), line, len, 100);
		log_info("conn=%lu event=protocol_error via=%s request=\"%s\" error=\"%s\"", id,
		         via, rcpt, why);
		snprintf(rl->text, sizeof(rl->text), EXIM_REPLY_BAD_REQUEST ": %s", why);
		return rl->text;
	}
	str_sanitize(rcpt, sizeof(rcpt), req.rcpt, req.rcpt_len, 100);
	unsigned long long size = (unsigned long long)req.size;
	struct check_result *res = ctx->result;
	uint64_t t0 = metrics_now();
	if (service_check(ctx->svc, req.rcpt, req.rcpt_len, req.size, res, &why) < 0) {
		metrics_check(METRICS_EXIM, NULL, t0);
		log_info("conn=%lu via=%s rcpt=<%s> size=%llu verdict=invalid_address error=\"%s\" "
		         "answer=OK",
		         id, via, rcpt, size, why);
		return "OK";
	}
	metrics_check(METRICS_EXIM, res, t0);
	const char *reply = exim_reply(&ctx->cfg->replies, res->verdict, rl);
	enum log_level lvl = decision_level(res->verdict);
	if (log_enabled(lvl))
		log_write(lvl,
		          "conn=%lu via=%s rcpt=<%s> size=%llu%s match=%s verdict=%s reason=%s "
		          "answer=\"%s\"",
		          id, via, rcpt, size, req.has_size ? "" : " size_given=no",
		          service_match_name(res->match), quota_verdict_name(res->verdict),
		          quota_reason_name(res->reason), reply);
	return reply;
}

/* One request per connection (Exim reads the reply until the server closes): answer the first
   line, then ask for the close whatever follows it. */
static int exim_input(struct answer_ctx *ctx, unsigned long id, const char *via, struct buf *in,
                      struct buf *out, bool at_eof, const char **why_r)
{
	size_t llen, used;
	const char *why, *reply;
	struct reply_line rl;
	int rc = exim_request_line(in->data, in->len, at_eof, &llen, &used, &why);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		log_info("conn=%lu event=protocol_error via=%s error=\"%s\"", id, via, why);
		snprintf(rl.text, sizeof(rl.text), EXIM_REPLY_BAD_REQUEST ": %s", why);
		reply = rl.text;
		*why_r = "protocol_error";
	} else {
		reply = exim_lookup(ctx, id, via, in->data, llen, &rl);
		*why_r = "answered";
	}
	if (exim_reply_append(out, reply) < 0) /* the first answer on an empty buffer */
		abort();
	buf_consume(in, rc < 0 ? in->len : used);
	return rc < 0 ? -1 : 1;
}

int answer_input(struct answer_ctx *ctx, enum answer_protocol proto, unsigned long conn_id,
                 const char *via, struct buf *in, struct buf *out, bool at_eof, const char **why_r)
{
	if (proto == ANSWER_EXIM)
		return exim_input(ctx, conn_id, via, in, out, at_eof, why_r);
	if (proto == ANSWER_SOCKETMAP)
		return socketmap_input(ctx, conn_id, via, in, out, why_r);
	return policy_input(ctx, conn_id, via, in, out, why_r);
}
