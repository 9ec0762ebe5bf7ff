/*
 * store: the one interface through which checks read mailboxes, aliases, limits and tokens.
 * The daemon's store is the in-memory view (src/store/view.c, kept current from PostgreSQL);
 * unit tests use tests/support/memstore.c. Both answer from a vindex, so the resolution rules
 * are the same code in each.
 */
#ifndef MQ_STORE_H
#define MQ_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "address.h"
#include "quota.h"
#include "token.h"

/* A multi-target alias is checked against at most this many targets; a larger one is answered
   as "no opinion" rather than decided on a partial list. */
#define STORE_TARGETS_MAX 100

/* An alias's own rule for several targets (aliases.policy), overriding the configured
   alias_policy for that alias: DEFAULT (NULL in the database) follows the configuration. */
enum store_alias_policy {
	STORE_POLICY_DEFAULT,
	STORE_POLICY_ANY,
	STORE_POLICY_ALL,
};
#define STORE_POLICY_MAX STORE_POLICY_ALL

enum store_match {
	STORE_MATCH_NONE,     /* no mailbox, alias or catch-all */
	STORE_MATCH_MAILBOX,  /* the address is a mailbox */
	STORE_MATCH_ALIAS,    /* the address is an alias */
	STORE_MATCH_CATCHALL, /* only the domain's catch-all alias matched */
};

/* One mailbox with its limits resolved (mailbox value, else domain default, else unlimited). */
struct store_mailbox {
	int64_t id;
	char address[ADDRESS_MAX + 1];
	struct quota_limit storage;
	struct quota_limit messages;
	struct quota_limit max_size;
	struct quota_limit domain_pool;
	struct quota_limit domain_max_size;
	bool has_grace; /* false: use the configured default grace */
	unsigned grace_percent;
	uint64_t used_bytes;
	uint64_t used_messages;
	uint64_t domain_used_bytes;
	bool enabled;
	/* warning levels of storage and messages: 0 none, else the highest threshold (percent of
	   the limit) that fired and has not been re-armed */
	unsigned warn_storage;
	unsigned warn_messages;
};

struct store_resolution {
	uint64_t age_ms; /* how long since the data was last known to match PostgreSQL */
	enum store_match match;
	bool truncated;                 /* the alias has more than STORE_TARGETS_MAX targets */
	enum store_alias_policy policy; /* the matched alias's own rule; DEFAULT for a mailbox */
	unsigned ntargets;
	struct store_mailbox targets[STORE_TARGETS_MAX];
};

/* How current a store's answers are, for health reports and metrics. */
struct store_status {
	bool db_up;         /* the backend reaches PostgreSQL now */
	bool loaded;        /* it has data to answer from */
	double age_seconds; /* how stale the data may be: ~0 while in sync */
	uint64_t domains;   /* items held in memory (0 for a store without a view) */
	uint64_t mailboxes;
	uint64_t aliases;
	uint64_t full_loads;      /* full loads done (start, sweeps, resyncs) */
	uint64_t notifications;   /* change notifications applied */
	uint64_t reconnects;      /* connections made to PostgreSQL after the first */
	double last_load_seconds; /* how long the last full load took */
};

/* An API token a store knows (revoked tokens are unknown). */
struct store_token {
	int64_t id;
	enum token_scope scope;
	int64_t mailbox_id; /* TOKEN_SELF: its mailbox; else 0 */
	int64_t expires;    /* Unix time; 0: never */
	uint8_t hash[TOKEN_HASH_LEN];
};

struct store;

struct store_ops {
	/* See store_resolve(). */
	int (*resolve)(struct store *store, const struct address *addr,
	               struct store_resolution *res_r, const char **error_r);
	/* Fill *st (never fails; may ask the database). */
	void (*status)(struct store *store, struct store_status *st);
	void (*destroy)(struct store *store);
	/* See store_token(); NULL for a store that knows no tokens. */
	int (*token)(struct store *store, int64_t id, struct store_token *tok_r);
	/* See store_mailbox_by_id(). */
	int (*mailbox)(struct store *store, int64_t id, struct store_mailbox *mb_r);
};

struct store {
	const struct store_ops *ops;
};

/*
 * Resolve a normalised address to the mailboxes a message to it would reach, in this order:
 * an alias for the whole local part, a mailbox for it, then the same for the local part without
 * its extension, then the domain's catch-all alias. Returns 0 (res_r->match may be NONE), or -1
 * when the store cannot answer now (*error_r: static text for logs). Thread-safe.
 */
static inline int store_resolve(struct store *store, const struct address *addr,
                                struct store_resolution *res_r, const char **error_r)
{
	return store->ops->resolve(store, addr, res_r, error_r);
}

static inline void store_status(struct store *store, struct store_status *st)
{
	store->ops->status(store, st);
}

/*
 * The usable (not revoked) token with record id: 0 with *tok_r, 1 if unknown, -1 when the
 * store cannot answer now. Thread-safe; never waits on the database.
 */
static inline int store_token(struct store *store, int64_t id, struct store_token *tok_r)
{
	return store->ops->token != NULL ? store->ops->token(store, id, tok_r) : -1;
}

/*
 * The mailbox with record id (a self token's own), limits resolved as a check resolves them:
 * 0 with *mb_r, 1 if unknown, -1 when the store cannot answer now or has no such operation
 * (store_status() says how
 * fresh the answers are). Thread-safe; never waits on the database.
 */
static inline int store_mailbox_by_id(struct store *store, int64_t id, struct store_mailbox *mb_r)
{
	return store->ops->mailbox != NULL ? store->ops->mailbox(store, id, mb_r) : -1;
}

/* Destroy a store and NULL the pointer. */
static inline void store_destroy(struct store **store)
{
	if (*store == NULL)
		return;
	(*store)->ops->destroy(*store);
	*store = NULL;
}

#endif
