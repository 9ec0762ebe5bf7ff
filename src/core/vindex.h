/*
 * vindex: the in-memory index of domains, mailboxes, aliases and API tokens that the view keeps
 * and answers checks from. Items are put and deleted by record id; lookups go by key (domain
 * name, domain + local part, id) and resolve an address the way a check needs it. Each domain's
 * pool usage is kept as a running sum of its mailboxes' usage as they are put and deleted.
 *
 * Pure: allocation only; no I/O, no locks, no globals. Not thread-safe: the view serialises
 * writers against readers with its own lock; lookups on an index nobody changes may run at once.
 */
#ifndef MQ_VINDEX_H
#define MQ_VINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "quota.h"
#include "store.h"

/* The largest limit or id an item may hold: PostgreSQL's bigint. */
#define VINDEX_VALUE_MAX INT64_MAX

/* The highest warning level a mailbox may hold: the highest threshold sql/013_warnings.sql lets
   an installation or domain set, in percent of a limit. */
#define VINDEX_WARN_MAX 1000

/* The kinds of item, in the order a batch of changes is applied (mailboxes count their usage
   into their domain, so domains come first). */
enum vindex_kind {
	VINDEX_DOMAIN,
	VINDEX_MAILBOX,
	VINDEX_ALIAS,
	VINDEX_TOKEN,
};
#define VINDEX_KINDS 4

/* A domain as put: its limits and the defaults its mailboxes inherit. */
struct vindex_domain {
	int64_t id;
	const char *name;                    /* lower case, as addresses are normalised; copied */
	struct quota_limit pool;             /* the sum of its mailboxes' usage may not exceed it */
	struct quota_limit default_storage;  /* for mailboxes without their own */
	struct quota_limit default_messages; /* for mailboxes without their own */
	struct quota_limit default_max_size; /* for mailboxes without their own */
	struct quota_limit max_size;         /* max message size for the whole domain */
	int grace_percent; /* -1: unset (the configured default); else 0..QUOTA_GRACE_PERCENT_MAX */
};

/* A mailbox as put; unset limits inherit the domain's defaults. */
struct vindex_mailbox {
	int64_t id;
	int64_t domain_id;
	const char *local; /* local part, as addresses are normalised; copied */
	struct quota_limit storage;
	struct quota_limit messages;
	struct quota_limit max_size;
	int grace_percent; /* -1: the domain's; else 0..QUOTA_GRACE_PERCENT_MAX */
	uint64_t used_bytes;
	uint64_t used_messages;
	bool enabled; /* false: never decided for (its checks answer unknown) */
	/* warning levels: 0 none, else the highest threshold (percent of the limit, at most
	   VINDEX_WARN_MAX) that fired and has not been re-armed; PostgreSQL decides them */
	unsigned warn_storage;
	unsigned warn_messages;
};

/* An alias or a domain's catch-all alias as put. */
struct vindex_alias {
	int64_t id;
	int64_t domain_id;
	const char *local;              /* NULL: the domain's catch-all; copied */
	const int64_t *targets;         /* mailbox ids, resolved in this order; copied */
	size_t ntargets;                /* 0: the alias matches nothing */
	enum store_alias_policy policy; /* its own rule (aliases.policy); 0: DEFAULT */
};

struct vindex;

/* An empty index with a hash seed of its own. Never fails. Free with vindex_free(). */
struct vindex *vindex_new(void);
/* Free the index and every item in it; NULL the pointer. NULL is a no-op. */
void vindex_free(struct vindex **vip);

/* Make room for this many items of each kind so a full load does not rehash. */
void vindex_reserve(struct vindex *vi, size_t domains, size_t mailboxes, size_t aliases);

/*
 * Insert an item, or replace the item of the same kind with the same id (whatever its old key:
 * a renamed item is found only under its new name). A replaced domain keeps the usage sum of
 * its mailboxes; a mailbox's usage moves from its old domain's sum to its new one's. A mailbox
 * or alias may be put before its domain (it resolves once the domain is there; a mailbox put
 * before its domain is not counted in the domain's sum). Two items of one kind with the same
 * key but different ids are the caller's bug: which one a lookup finds is then unspecified.
 * Returns 0, or -1 with a static *error_r when a value is out of range (a negative id, a limit
 * over VINDEX_VALUE_MAX, a grace percentage outside -1..QUOTA_GRACE_PERCENT_MAX, a warning level
 * over VINDEX_WARN_MAX, more than UINT32_MAX targets, an alias policy over STORE_POLICY_MAX);
 * the index is then unchanged.
 */
int vindex_put_domain(struct vindex *vi, const struct vindex_domain *d, const char **error_r)
        __attribute__((warn_unused_result));
int vindex_put_mailbox(struct vindex *vi, const struct vindex_mailbox *m, const char **error_r)
        __attribute__((warn_unused_result));
int vindex_put_alias(struct vindex *vi, const struct vindex_alias *a, const char **error_r)
        __attribute__((warn_unused_result));
/* A usable token (revoked ones are simply not put); the same replacement rule. */
int vindex_put_token(struct vindex *vi, const struct store_token *t, const char **error_r)
        __attribute__((warn_unused_result));

/* Delete the item of kind with this id; 0, or 1 if there was none. Deleting a domain leaves its
   mailboxes and aliases in place: they resolve again if it comes back, but its usage sum then
   counts only mailboxes put after it (the view's periodic full load recounts). */
int vindex_del(struct vindex *vi, enum vindex_kind kind, int64_t id);

/*
 * Move the item of kind with this id from src into dst, replacing dst's as vindex_put_*() does
 * (no copy: the item itself changes index; a moved domain takes dst's usage sum, as a put one
 * does). 0, or 1 if src has no such item (both unchanged). This is how a batch fetched into a
 * scratch index is applied to the live one.
 */
int vindex_move(struct vindex *dst, struct vindex *src, enum vindex_kind kind, int64_t id);

/* How many items of kind the index holds. */
size_t vindex_count(const struct vindex *vi, enum vindex_kind kind);

/*
 * Resolve a normalised address into *res_r (match, targets, truncated; age_ms is left to the
 * caller), in this order: an alias for the whole local part, the mailbox of that name, the same
 * two for the local part without its extension (addr->base), then the domain's catch-all. An
 * alias without targets matches nothing. Targets are the alias's mailboxes in its order, each
 * with its limits inherited from its domain and its domain's usage sum; a target whose mailbox
 * or domain is unknown is skipped (so an alias may match with 0 targets); past
 * STORE_TARGETS_MAX, res_r->truncated is set. res_r->policy is the matched alias's own rule
 * (STORE_POLICY_DEFAULT for a mailbox or no match). Never fails, never allocates.
 */
void vindex_resolve(const struct vindex *vi, const struct address *addr,
                    struct store_resolution *res_r);

/* The token with record id: 0 with *tok_r, or 1 if unknown (*tok_r untouched). */
int vindex_token(const struct vindex *vi, int64_t id, struct store_token *tok_r);

/* The mailbox with record id, limits resolved as a resolution's targets are (warning levels
   included): 0 with *mb_r, or 1 when vi has no such mailbox (or not its domain). */
int vindex_mailbox(const struct vindex *vi, int64_t id, struct store_mailbox *mb_r)
        __attribute__((warn_unused_result));

#endif
