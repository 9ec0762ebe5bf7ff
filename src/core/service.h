/* service: one recipient check, from raw address to verdict and the facts behind it; the only
   module that sees the store and the decision together. It returns no protocol text: each front
   end maps the verdict to its own protocol through reply.h. */
#ifndef MQ_SERVICE_H
#define MQ_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "config.h"
#include "quota.h"
#include "store.h"

struct service_target {
	struct store_mailbox mailbox;
	struct quota_result result;
};

struct check_result {
	enum quota_verdict verdict;
	enum quota_reason reason;
	struct address address;
	enum store_match match;
	bool truncated; /* more targets than STORE_TARGETS_MAX: under ALIAS_POLICY_ANY answered as
	                   accept; under ALIAS_POLICY_ALL refused only by a target it saw */
	enum alias_policy policy; /* the rule that decided: the alias's own, else alias_policy */
	int decider; /* index into targets of the mailbox whose verdict was taken; -1 if none */
	const char *store_error; /* with QUOTA_TEMPFAIL: why */
	unsigned ntargets;
	struct service_target targets[STORE_TARGETS_MAX];
};

struct service {
	const struct config *cfg; /* borrowed, outlives the service */
	struct store *store;      /* borrowed */
};

/* Why a recipient could not be resolved to exactly one mailbox. */
enum service_resolve_error {
	SERVICE_INVALID_ADDRESS,
	SERVICE_UNKNOWN_RECIPIENT,
	SERVICE_AMBIGUOUS_RECIPIENT, /* an alias with several targets */
	SERVICE_NOT_A_MAILBOX,       /* exact mailbox wanted, an alias or catch-all matched */
	SERVICE_STORE_UNAVAILABLE,
};

/*
 * Resolve rcpt[len] to the one mailbox a usage report or recalculation is about: a mailbox, or
 * (unless exact) an alias or catch-all with exactly one target, as checks resolve it. Returns 0
 * with *mb_r, or -1 with *err_r and a static *why_r.
 */
int service_resolve_mailbox(const struct service *svc, const char *rcpt, size_t len, bool exact,
                            struct store_mailbox *mb_r, enum service_resolve_error *err_r,
                            const char **why_r) __attribute__((warn_unused_result));

/*
 * Check whether the recipient rcpt[len] can take a message of size bytes (0 → 1 byte).
 * Returns 0 with *res_r filled (every verdict, including UNKNOWN and TEMPFAIL when the store
 * cannot answer), or -1 when the address itself is invalid (*error_r: static text).
 * Disabled targets are skipped; an alias (or catch-all) whose targets are all disabled is
 * UNKNOWN. With several enabled targets, the alias's own policy decides, or, when it has none
 * (STORE_POLICY_DEFAULT), cfg->alias_rule (service_alias_policy(); res_r->policy says which):
 *   ALIAS_POLICY_ANY: refused only if every target refuses, then with the least final of their
 *     verdicts (over quota before too big for the mailbox before too big for the system);
 *     decider: the first accepting target, else the refusal taken. Truncated: accept.
 *   ALIAS_POLICY_ALL: refused if any target refuses, with the most final of the refusals (too
 *     big for the system before too big for the mailbox before over quota: the one retrying
 *     cannot cure), the first in target order among equals; decider: that target, or the first
 *     target when all accept. Truncated: refused by a refusing target among those seen, else
 *     accept (decider -1): never a refusal the unseen targets could contradict.
 * "First" is target order (the store's: ascending mailbox id in the daemon's view). A refusal
 * from data older than view_max_age becomes TEMPFAIL (the global size limit excepted).
 * Thread-safe; never logs.
 */
int service_check(const struct service *svc, const char *rcpt, size_t len, uint64_t size,
                  struct check_result *res_r, const char **error_r)
        __attribute__((warn_unused_result));

/* The decision's input for a message of size bytes to mailbox m under cfg (the configured
   system size limit and default grace applied), as service_check() decides it. Pure. */
void service_input(const struct config *cfg, const struct store_mailbox *m, uint64_t size,
                   struct quota_input *in_r);

/*
 * The largest message res's alias or mailbox would take by the targets' size limits alone
 * (their room ignored), as service_check() combines them under res->policy: the largest of the
 * targets' limits under ALIAS_POLICY_ANY, the smallest under ALIAS_POLICY_ALL; {false, 0} when
 * nothing limits it. For "too big" answers that name the size that would fit. Pure.
 */
struct quota_limit service_size_limit(const struct config *cfg, const struct check_result *res);

/* The rule an alias whose own policy is own is decided by: own, or with STORE_POLICY_DEFAULT
   the configured alias_policy (cfg->alias_rule). Pure. */
enum alias_policy service_alias_policy(const struct config *cfg, enum store_alias_policy own);

/* Name of an alias policy for logs, JSON and configuration: "any", "all". */
const char *service_policy_name(enum alias_policy p);

/* Name of a store match for logs and JSON: "mailbox", "alias", "catchall", "none". */
const char *service_match_name(enum store_match m);

#endif
