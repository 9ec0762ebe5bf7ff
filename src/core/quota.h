/* quota: the pure quota decision for one mailbox. */
#ifndef MQ_QUOTA_H
#define MQ_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

/* What a check concluded. The order of refusals is the order of their precedence. */
enum quota_verdict {
	QUOTA_ACCEPT,
	QUOTA_OVER_QUOTA,      /* storage, message count or domain pool exhausted: 5.2.2 */
	QUOTA_TOO_BIG_MAILBOX, /* declared size over this mailbox's max message size: 5.2.3 */
	QUOTA_TOO_BIG_SYSTEM,  /* over the domain's or the global max message size: 5.3.4 */
	QUOTA_UNKNOWN,         /* no such recipient (decided by the service, not here) */
	QUOTA_TEMPFAIL,        /* no usable data (decided by the service, not here) */
};

/* Which limit caused the verdict. */
enum quota_reason {
	QUOTA_REASON_NONE,
	QUOTA_REASON_STORAGE,
	QUOTA_REASON_MESSAGES,
	QUOTA_REASON_DOMAIN_POOL,
	QUOTA_REASON_MAILBOX_MAX_SIZE,
	QUOTA_REASON_DOMAIN_MAX_SIZE,
	QUOTA_REASON_SYSTEM_MAX_SIZE,
};

/* An optional limit: has == false means unlimited. */
struct quota_limit {
	bool has;
	uint64_t value;
};

/* Grace percentages are capped so the grace allowance is computable without overflow. */
#define QUOTA_GRACE_PERCENT_MAX 1000

/* Everything the decision needs about one mailbox, already resolved (inheritance applied). */
struct quota_input {
	uint64_t size;                  /* declared message size; 0 is checked as 1 byte */
	struct quota_limit storage;     /* bytes */
	struct quota_limit messages;    /* message count */
	struct quota_limit max_size;    /* this mailbox's max message size */
	struct quota_limit domain_pool; /* sum of the domain's usage may not exceed this */
	struct quota_limit domain_max_size;
	struct quota_limit system_max_size;
	uint64_t used_bytes;
	uint64_t used_messages;
	uint64_t domain_used_bytes;
	unsigned grace_percent; /* lets the last message cross storage/pool by this much */
};

struct quota_result {
	enum quota_verdict verdict;
	enum quota_reason reason;
};

/*
 * Decide whether one message of in->size bytes fits. Precedence: too big for the system, then
 * the domain, then the mailbox; then storage, message count and domain pool. A limit is
 * "full" once usage reaches it; with grace g, a mailbox still under its limit accepts a message
 * that ends at most g % of the limit above it. Arithmetic never wraps, for any inputs. Pure.
 */
struct quota_result quota_decide(const struct quota_input *in);

/*
 * The largest message in would accept now, by the same rules as quota_decide() (in->size is
 * ignored): has=false when nothing limits it, else value (0: nothing fits, not even the 1 byte
 * an empty message is checked as). *by_r names the limit that decides (the first in
 * quota_decide()'s precedence among equals); QUOTA_REASON_NONE when unlimited. For every size
 * s >= 1, quota_decide() accepts s exactly when s <= value (or has is false). Pure.
 */
struct quota_limit quota_largest(const struct quota_input *in, enum quota_reason *by_r);

/* Inherit: the mailbox value if set, else the domain default, else unlimited. */
struct quota_limit quota_limit_inherit(struct quota_limit mailbox, struct quota_limit domain);

/* Stable lower-case names used in logs and JSON ("accept", "over_quota", ...). */
const char *quota_verdict_name(enum quota_verdict v);
const char *quota_reason_name(enum quota_reason r);

/* Remaining headroom under a limit (0 when used >= limit); meaningless when !limit.has. */
uint64_t quota_remaining(struct quota_limit limit, uint64_t used);

#endif
