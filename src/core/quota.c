/*
 * quota: the decision at the heart of mailquota. Pure and total: every input, including
 * UINT64_MAX everywhere, gives a defined answer without overflow (docs/style.md rule 11). It must
 * never look anything up, log, or depend on anything but its argument.
 */
#include "quota.h"

struct quota_limit quota_limit_inherit(struct quota_limit mailbox, struct quota_limit domain)
{
	return mailbox.has ? mailbox : domain;
}

uint64_t quota_remaining(struct quota_limit limit, uint64_t used)
{
	return used >= limit.value ? 0 : limit.value - used;
}

/* limit + limit * grace / 100, saturating at UINT64_MAX. grace <= QUOTA_GRACE_PERCENT_MAX. */
static uint64_t with_grace(uint64_t limit, unsigned grace)
{
	if (grace > QUOTA_GRACE_PERCENT_MAX)
		grace = QUOTA_GRACE_PERCENT_MAX;
	/* split limit so neither product can overflow: (q*100 + r) * g / 100 = q*g + r*g/100 */
	uint64_t q = limit / 100, r = limit % 100;
	uint64_t extra;
	if (grace == 0)
		return limit;
	if (q > UINT64_MAX / grace)
		return UINT64_MAX;
	extra = q * grace + (r * grace) / 100; /* r * grace < 100 * 1001: no overflow */
	if (extra > UINT64_MAX - limit)
		return UINT64_MAX;
	return limit + extra;
}

/* Would a message of size bytes fit under limit given used, with grace? */
static bool fits(uint64_t limit, uint64_t used, uint64_t size, unsigned grace)
{
	if (used >= limit)
		return false; /* full: even a grace cannot admit more */
	uint64_t hard = with_grace(limit, grace);
	/* hard >= limit > used, so hard - used cannot wrap */
	return size <= hard - used;
}

/* The most a message may be under limit given used, with grace (the other side of fits()). */
static uint64_t room(uint64_t limit, uint64_t used, unsigned grace)
{
	return used >= limit ? 0 : with_grace(limit, grace) - used;
}

/* Lower *best to cap when it is smaller (ties keep the earlier, more final reason). */
static void lower(struct quota_limit *best, enum quota_reason *by, uint64_t cap,
                  enum quota_reason reason)
{
	if (!best->has || cap < best->value) {
		best->has = true;
		best->value = cap;
		*by = reason;
	}
}

struct quota_limit quota_largest(const struct quota_input *in, enum quota_reason *by_r)
{
	struct quota_limit best = { false, 0 };
	*by_r = QUOTA_REASON_NONE;
	if (in->system_max_size.has)
		lower(&best, by_r, in->system_max_size.value, QUOTA_REASON_SYSTEM_MAX_SIZE);
	if (in->domain_max_size.has)
		lower(&best, by_r, in->domain_max_size.value, QUOTA_REASON_DOMAIN_MAX_SIZE);
	if (in->max_size.has)
		lower(&best, by_r, in->max_size.value, QUOTA_REASON_MAILBOX_MAX_SIZE);
	if (in->storage.has)
		lower(&best, by_r, room(in->storage.value, in->used_bytes, in->grace_percent),
		      QUOTA_REASON_STORAGE);
	if (in->messages.has && in->used_messages >= in->messages.value)
		lower(&best, by_r, 0, QUOTA_REASON_MESSAGES);
	if (in->domain_pool.has)
		lower(&best, by_r,
		      room(in->domain_pool.value, in->domain_used_bytes, in->grace_percent),
		      QUOTA_REASON_DOMAIN_POOL);
	return best;
}

struct quota_result quota_decide(const struct quota_input *in)
{
	struct quota_result r = { QUOTA_ACCEPT, QUOTA_REASON_NONE };
	uint64_t size = in->size == 0 ? 1 : in->size;

	if (in->system_max_size.has && size > in->system_max_size.value) {
		r.verdict = QUOTA_TOO_BIG_SYSTEM;
		r.reason = QUOTA_REASON_SYSTEM_MAX_SIZE;
	} else if (in->domain_max_size.has && size > in->domain_max_size.value) {
		r.verdict = QUOTA_TOO_BIG_SYSTEM;
		r.reason = QUOTA_REASON_DOMAIN_MAX_SIZE;
	} else if (in->max_size.has && size > in->max_size.value) {
		r.verdict = QUOTA_TOO_BIG_MAILBOX;
		r.reason = QUOTA_REASON_MAILBOX_MAX_SIZE;
	} else if (in->storage.has &&
	           !fits(in->storage.value, in->used_bytes, size, in->grace_percent)) {
		r.verdict = QUOTA_OVER_QUOTA;
		r.reason = QUOTA_REASON_STORAGE;
	} else if (in->messages.has && in->used_messages >= in->messages.value) {
		r.verdict = QUOTA_OVER_QUOTA;
		r.reason = QUOTA_REASON_MESSAGES;
	} else if (in->domain_pool.has &&
	           !fits(in->domain_pool.value, in->domain_used_bytes, size, in->grace_percent)) {
		r.verdict = QUOTA_OVER_QUOTA;
		r.reason = QUOTA_REASON_DOMAIN_POOL;
	}
	return r;
}

const char *quota_verdict_name(enum quota_verdict v)
{
	switch (v) {
	case QUOTA_ACCEPT:
		return "accept";
	case QUOTA_OVER_QUOTA:
		return "over_quota";
	case QUOTA_TOO_BIG_MAILBOX:
		return "too_big_mailbox";
	case QUOTA_TOO_BIG_SYSTEM:
		return "too_big_system";
	case QUOTA_UNKNOWN:
		return "unknown";
	case QUOTA_TEMPFAIL:
		return "tempfail";
	}
	return "invalid";
}

const char *quota_reason_name(enum quota_reason r)
{
	switch (r) {
	case QUOTA_REASON_NONE:
		return "none";
	case QUOTA_REASON_STORAGE:
		return "storage";
	case QUOTA_REASON_MESSAGES:
		return "messages";
	case QUOTA_REASON_DOMAIN_POOL:
		return "domain_pool";
	case QUOTA_REASON_MAILBOX_MAX_SIZE:
		return "mailbox_max_size";
	case QUOTA_REASON_DOMAIN_MAX_SIZE:
		return "domain_max_size";
	case QUOTA_REASON_SYSTEM_MAX_SIZE:
		return "system_max_size";
	}
	return "invalid";
}
