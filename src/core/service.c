/*
 * service: composes normalisation, store lookup and the pure decision into a verdict. Front ends
 * call only this, and turn the verdict into their protocol's answer with reply.h; the service
 * itself never chooses protocol text. Under alias_policy = any (the default, or an alias's own
 * policy) it must never refuse a multi-target alias because one member is full (the bug
 * mailquota exists to prevent); under all it refuses exactly then, by the admin's choice. Either
 * way it must never refuse on the word of targets it could not see (a truncated alias), and never
 * answer a permanent refusal because the store is unavailable (that is QUOTA_TEMPFAIL).
 */
#include "service.h"

#include <string.h>

/* Lower rank = less final refusal (retrying later may cure it). Under "any" an alias refused by
   all targets reports the lowest; under "all" the highest: a retry cannot succeed before that
   target's refusal is cured. */
static int refusal_rank(enum quota_verdict v)
{
	switch (v) {
	case QUOTA_OVER_QUOTA:
		return 1;
	case QUOTA_TOO_BIG_MAILBOX:
		return 2;
	case QUOTA_TOO_BIG_SYSTEM:
		return 3;
	default:
		return 0;
	}
}

void service_input(const struct config *cfg, const struct store_mailbox *m, uint64_t size,
                   struct quota_input *in_r)
{
	*in_r = (struct quota_input){
		.size = size,
		.storage = m->storage,
		.messages = m->messages,
		.max_size = m->max_size,
		.domain_pool = m->domain_pool,
		.domain_max_size = m->domain_max_size,
		.system_max_size = { cfg->message_size_limit != 0, cfg->message_size_limit },
		.used_bytes = m->used_bytes,
		.used_messages = m->used_messages,
		.domain_used_bytes = m->domain_used_bytes,
		.grace_percent = m->has_grace ? m->grace_percent : (unsigned)cfg->grace_percent,
	};
}

static struct quota_result decide_one(const struct config *cfg, const struct store_mailbox *m,
                                      uint64_t size)
{
	struct quota_input in;
	service_input(cfg, m, size, &in);
	return quota_decide(&in);
}

static void set_verdict(struct check_result *res, enum quota_verdict v, enum quota_reason reason)
{
	res->verdict = v;
	res->reason = reason;
}

/* Whether refusal a is to be reported before the refusal b already chosen (b < 0: none yet). */
static bool refusal_wins(const struct check_result *res, enum alias_policy policy, int a, int b)
{
	if (b < 0)
		return true;
	int ra = refusal_rank(res->targets[a].result.verdict);
	int rb = refusal_rank(res->targets[b].result.verdict);
	/* strict: among equals the first in target order stays */
	return policy == ALIAS_POLICY_ALL ? ra > rb : ra < rb;
}

int service_check(const struct service *svc, const char *rcpt, size_t len, uint64_t size,
                  struct check_result *res_r, const char **error_r)
{
	struct store_resolution *rs;
	res_r->ntargets = 0;
	res_r->decider = -1;
	res_r->truncated = false;
	res_r->policy = svc->cfg->alias_rule;
	res_r->store_error = NULL;
	res_r->match = STORE_MATCH_NONE;
	if (address_normalize(rcpt, len, &svc->cfg->address_rules, &res_r->address, error_r) < 0)
		return -1;

	/* a resolution is tens of KiB: keep one per thread instead of on small thread stacks */
	static _Thread_local struct store_resolution scratch;
	rs = &scratch;
	const char *err;
	if (store_resolve(svc->store, &res_r->address, rs, &err) < 0) {
		res_r->store_error = err;
		set_verdict(res_r, QUOTA_TEMPFAIL, QUOTA_REASON_NONE);
		return 0;
	}
	res_r->match = rs->match;
	res_r->truncated = rs->truncated;
	/* the alias's own rule, where it has one, overrides the configured one */
	const enum alias_policy policy = service_alias_policy(svc->cfg, rs->policy);
	res_r->policy = policy;

	int first_accept = -1, refusal = -1;
	for (unsigned i = 0; i < rs->ntargets; i++) {
		const struct store_mailbox *m = &rs->targets[i];
		if (!m->enabled)
			continue; /* a disabled mailbox is not ours to decide */
		struct service_target *t = &res_r->targets[res_r->ntargets];
		t->mailbox = *m;
		t->result = decide_one(svc->cfg, m, size);
		int idx = (int)res_r->ntargets++;
		if (t->result.verdict == QUOTA_ACCEPT) {
			if (first_accept < 0)
				first_accept = idx;
		} else if (refusal_wins(res_r, policy, idx, refusal)) {
			refusal = idx;
		}
	}

	/* "any" refuses when every target refuses, "all" when one does; an alias with unseen
	   targets is refused only when what was seen suffices ("all") */
	bool refuse =
	        policy == ALIAS_POLICY_ALL ? refusal >= 0 : first_accept < 0 && !rs->truncated;

	if (res_r->ntargets == 0 && !rs->truncated) {
		set_verdict(res_r, QUOTA_UNKNOWN, QUOTA_REASON_NONE);
	} else if (!refuse) {
		/* (a truncated alias whose seen targets are all disabled lands here too: the unseen
		   ones may be enabled and have room, so it is no unknown recipient) */
		/* a truncated alias names no decider: the unseen targets had a say */
		if (!rs->truncated)
			res_r->decider = first_accept;
		set_verdict(res_r, QUOTA_ACCEPT, QUOTA_REASON_NONE);
	} else {
		res_r->decider = refusal;
		const struct quota_result *q = &res_r->targets[refusal].result;
		set_verdict(res_r, q->verdict, q->reason);
		/* a permanent refusal needs current data: from a view out of touch with PostgreSQL
		   for longer than view_max_age, the sender is asked to retry instead (the global
		   size limit is configuration, not data, and stays a refusal) */
		if (rs->age_ms / 1000 >= svc->cfg->view_max_age &&
		    q->reason != QUOTA_REASON_SYSTEM_MAX_SIZE) {
			res_r->store_error = "the view is older than view_max_age";
			set_verdict(res_r, QUOTA_TEMPFAIL, QUOTA_REASON_NONE);
		}
	}
	return 0;
}

struct quota_limit service_size_limit(const struct config *cfg, const struct check_result *res)
{
	struct quota_limit best = { false, 0 };
	for (unsigned i = 0; i < res->ntargets; i++) {
		struct quota_input in;
		enum quota_reason by;
		service_input(cfg, &res->targets[i].mailbox, 0, &in);
		in.storage.has = in.messages.has = in.domain_pool.has = false;
		struct quota_limit l = quota_largest(&in, &by);
		if (res->policy == ALIAS_POLICY_ALL) {
			/* every target must take it: the smallest limit */
			if (l.has && (!best.has || l.value < best.value))
				best = l;
		} else {
			/* one target suffices: the largest, and an unlimited one ends the search */
			if (!l.has)
				return l;
			if (i == 0 || l.value > best.value)
				best = l;
		}
	}
	return best;
}

enum alias_policy service_alias_policy(const struct config *cfg, enum store_alias_policy own)
{
	switch (own) {
	case STORE_POLICY_ANY:
		return ALIAS_POLICY_ANY;
	case STORE_POLICY_ALL:
		return ALIAS_POLICY_ALL;
	case STORE_POLICY_DEFAULT:
		break;
	}
	return cfg->alias_rule;
}

const char *service_policy_name(enum alias_policy p)
{
	return p == ALIAS_POLICY_ALL ? "all" : "any";
}

int service_resolve_mailbox(const struct service *svc, const char *rcpt, size_t len, bool exact,
                            struct store_mailbox *mb_r, enum service_resolve_error *err_r,
                            const char **why_r)
{
	struct address addr;
	if (address_normalize(rcpt, len, &svc->cfg->address_rules, &addr, why_r) < 0) {
		*err_r = SERVICE_INVALID_ADDRESS;
		return -1;
	}
	static _Thread_local struct store_resolution rs;
	if (store_resolve(svc->store, &addr, &rs, why_r) < 0) {
		*err_r = SERVICE_STORE_UNAVAILABLE;
		return -1;
	}
	if (rs.match == STORE_MATCH_NONE || rs.ntargets == 0) {
		*err_r = SERVICE_UNKNOWN_RECIPIENT;
		*why_r = "no mailbox, alias or catch-all for this address";
		return -1;
	}
	if (exact && rs.match != STORE_MATCH_MAILBOX) {
		*err_r = SERVICE_NOT_A_MAILBOX;
		*why_r = "the address is an alias or catch-all, not a mailbox";
		return -1;
	}
	if (rs.ntargets != 1 || rs.truncated) {
		*err_r = SERVICE_AMBIGUOUS_RECIPIENT;
		*why_r = "the alias has several targets: report for the mailbox itself";
		return -1;
	}
	*mb_r = rs.targets[0];
	return 0;
}

const char *service_match_name(enum store_match m)
{
	switch (m) {
	case STORE_MATCH_MAILBOX:
		return "mailbox";
	case STORE_MATCH_ALIAS:
		return "alias";
	case STORE_MATCH_CATCHALL:
		return "catchall";
	case STORE_MATCH_NONE:
		break;
	}
	return "none";
}
