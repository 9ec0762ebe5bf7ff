/*
 * filter: the libmilter callbacks of mailquota-milter. MAIL FROM's SIZE= is kept per
 * transaction; each RCPT is one policy request to mailquotad (milter_reply.c builds it and maps
 * the answer), whose refusal or deferral becomes that recipient's own SMTP reply through
 * smfi_setreply(). libmilter runs each SMTP session on a thread of its own; a session's state
 * (struct session, kept with smfi_setpriv) belongs to that thread, and the configuration is
 * read-only, so nothing here is locked but the session counter (atomic). It must never answer
 * a recipient with an accept it did not get from the daemon: anything short of an answer is
 * milter_tempfail_reply. Every MTA- or daemon-supplied text is sanitised before it is logged.
 */
#include "filter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "milter_reply.h"
#include "policy_client.h"
#include "xalloc.h"

/* One policy request: seven attributes of at most MILTER_VALUE_MAX octets and their names. */
#define REQUEST_MAX (8 * (MILTER_VALUE_MAX + 32))

static const struct config *cfg;
static const char *target;           /* the daemon's policy socket or host:port */
static struct milter_reply tempfail; /* milter_tempfail_reply, mapped once */
static atomic_ulong sessions;        /* ids for log lines */

struct session {
	unsigned long id;
	unsigned long txn; /* MAIL FROM commands seen, for instance= */
	struct policy_client *pc;
	char client_address[INET6_ADDRSTRLEN];
	char *sender; /* NULL outside a transaction, or when too long to send */
	uint64_t size;
};

static struct session *session_get(SMFICTX *ctx)
{
	struct session *s = smfi_getpriv(ctx);
	if (s != NULL)
		return s;
	s = xcalloc(1, sizeof(*s));
	s->id = atomic_fetch_add(&sessions, 1) + 1;
	s->pc = policy_client_new(target, (unsigned long)cfg->milter_timeout * 1000);
	if (smfi_setpriv(ctx, s) != MI_SUCCESS)
		abort(); /* libmilter refuses only a NULL context */
	return s;
}

static void transaction_end(struct session *s)
{
	free(s->sender);
	s->sender = NULL;
	s->size = 0;
}

static sfsistat on_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                             unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                             unsigned long *pf2, unsigned long *pf3)
{
	(void)ctx;
	(void)f0;
	(void)f2;
	(void)f3;
	/* only connect (the client address), MAIL and RCPT are wanted: the MTA may skip the
	   rest, which it offers in f1 (Postfix offers all of these) */
	unsigned long skip = SMFIP_NOHELO | SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH |
	                     SMFIP_NOUNKNOWN | SMFIP_NODATA;
	*pf0 = 0; /* no actions: the milter never changes a message */
	*pf1 = f1 & skip;
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

static sfsistat on_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *addr)
{
	(void)hostname;
	struct session *s = session_get(ctx);
	if (addr == NULL)
		return SMFIS_CONTINUE;
	const void *a = NULL;
	if (addr->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)addr)->sin_addr;
	else if (addr->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr;
	if (a == NULL ||
	    inet_ntop(addr->sa_family, a, s->client_address, sizeof(s->client_address)) == NULL)
		s->client_address[0] = '\0';
	return SMFIS_CONTINUE;
}

static sfsistat on_envfrom(SMFICTX *ctx, char **argv)
{
	struct session *s = session_get(ctx);
	transaction_end(s);
	s->txn++;
	size_t nargs = 0;
	while (argv[nargs] != NULL && nargs < MILTER_ESMTP_ARGS_MAX + 1)
		nargs++;
	if (argv[0] != NULL && strnlen(argv[0], MILTER_VALUE_MAX + 3) <= MILTER_VALUE_MAX + 2)
		s->sender = xstrdup(argv[0]); /* with its <>; longer: sent without a sender */
	const char *why;
	if (nargs > 0 &&
	    milter_size_parse((const char *const *)argv + 1, nargs - 1, &s->size, &why) < 0)
		log_info("conn=%lu event=bad_size error=\"%s\" size=0", s->id, why);
	return SMFIS_CONTINUE;
}

/* Hand r to the MTA for this recipient; the sfsistat that goes with it. */
static sfsistat answer(SMFICTX *ctx, struct session *s, struct milter_reply *r)
{
	if (r->kind == MILTER_CONTINUE)
		return SMFIS_CONTINUE;
	if (smfi_setreply(ctx, r->code, r->xcode, r->text) != MI_SUCCESS)
		log_warn("conn=%lu event=setreply_failed reply=\"%s %s\"", s->id, r->code,
		         r->xcode);
	return r->kind == MILTER_REJECT ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

static sfsistat on_envrcpt(SMFICTX *ctx, char **argv)
{
	struct session *s = session_get(ctx);
	char rcpt[128], qid[40], act[160], instance[64];
	const char *queue_id = smfi_getsymval(ctx, "i");
	str_sanitize(rcpt, sizeof(rcpt), argv[0] != NULL ? argv[0] : "",
	             argv[0] != NULL ? strnlen(argv[0], 1024) : 0, 100);
	str_sanitize(qid, sizeof(qid), queue_id != NULL ? queue_id : "-",
	             queue_id != NULL ? strnlen(queue_id, 64) : 1, 30);
	snprintf(instance, sizeof(instance), "milter.%ld.%lu.%lu", (long)getpid(), s->id, s->txn);
	struct milter_query q = {
		argv[0], s->sender, queue_id, s->client_address, instance, s->size
	};
	struct buf req;
	struct policy_action action;
	struct milter_reply r;
	const char *why;
	buf_init(&req, REQUEST_MAX);
	if (milter_request_append(&req, &q, &why) < 0) {
		log_info("conn=%lu queue_id=%s rcpt=%s size=%llu event=bad_request error=\"%s\" "
		         "reply=\"%s %s\"",
		         s->id, qid, rcpt, (unsigned long long)s->size, why, tempfail.code,
		         tempfail.xcode);
		buf_free(&req);
		r = tempfail;
		return answer(ctx, s, &r);
	}
	int rc = policy_client_ask(s->pc, req.data, req.len, &action, &why);
	buf_free(&req);
	if (rc < 0) {
		log_warn("conn=%lu queue_id=%s rcpt=%s size=%llu event=daemon_unavailable "
		         "error=\"%s\" reply=\"%s %s\"",
		         s->id, qid, rcpt, (unsigned long long)s->size, why, tempfail.code,
		         tempfail.xcode);
		r = tempfail;
		return answer(ctx, s, &r);
	}
	str_sanitize(act, sizeof(act), action.text, action.len, 150);
	if (milter_reply_from_action(action.text, action.len, &r, &why) < 0) {
		log_warn("conn=%lu queue_id=%s rcpt=%s size=%llu event=bad_answer action=\"%s\" "
		         "error=\"%s\" reply=\"%s %s\"",
		         s->id, qid, rcpt, (unsigned long long)s->size, act, why, tempfail.code,
		         tempfail.xcode);
		r = tempfail;
		return answer(ctx, s, &r);
	}
	log_write(r.kind == MILTER_CONTINUE ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
	          "conn=%lu queue_id=%s rcpt=%s size=%llu action=\"%s\" reply=\"%s %s\"", s->id,
	          qid, rcpt, (unsigned long long)s->size, act,
	          r.kind == MILTER_CONTINUE ? "continue" : r.code, r.xcode);
	return answer(ctx, s, &r);
}

static sfsistat on_abort(SMFICTX *ctx)
{
	struct session *s = smfi_getpriv(ctx);
	if (s != NULL)
		transaction_end(s);
	return SMFIS_CONTINUE;
}

static sfsistat on_close(SMFICTX *ctx)
{
	struct session *s = smfi_getpriv(ctx);
	if (s == NULL)
		return SMFIS_CONTINUE;
	transaction_end(s);
	policy_client_destroy(&s->pc);
	free(s);
	(void)smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
	.xxfi_name = "mailquota",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = 0, /* no actions: headers and body are never changed */
	.xxfi_connect = on_connect,
	.xxfi_envfrom = on_envfrom,
	.xxfi_envrcpt = on_envrcpt,
	.xxfi_abort = on_abort,
	.xxfi_close = on_close,
	.xxfi_negotiate = on_negotiate,
};

int filter_setup(const struct config *c, struct smfiDesc **desc_r, const char **error_r)
{
	const char *why;
	target = c->milter_connect[0] != '\0' ? c->milter_connect : c->policy_socket;
	if (target[0] == '\0') {
		*error_r = "milter_connect and policy_socket are both empty: no daemon to ask";
		return -1;
	}
	if (milter_reply_from_action(c->milter_tempfail_reply, strlen(c->milter_tempfail_reply),
	                             &tempfail, &why) < 0 ||
	    tempfail.kind != MILTER_TEMPFAIL) {
		*error_r = "milter_tempfail_reply: not a 4xx reply or DEFER_IF_PERMIT text";
		return -1;
	}
	cfg = c;
	*desc_r = &desc;
	return 0;
}
