/*
 * memstore: a store for tests, held in memory and filled from C data, with the view's index
 * (vindex) behind it, so a test of the service resolves exactly as the daemon does, without
 * PostgreSQL or threads. It can also pretend to be stale (an age) or unavailable (an error).
 */
#ifndef MQ_MEMSTORE_H
#define MQ_MEMSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "vindex.h"

/* What to put into a memstore: arrays of items, each put in this order (domains first). */
struct memstore_data {
	const struct vindex_domain *domains;
	size_t ndomains;
	const struct vindex_mailbox *mailboxes;
	size_t nmailboxes;
	const struct vindex_alias *aliases;
	size_t naliases;
	const struct store_token *tokens;
	size_t ntokens;
};

struct memstore;

/* An empty store that answers at once (age 0). Never fails. Free with store_destroy() on
   memstore_store(), or memstore_free(). */
struct memstore *memstore_new(void);
/* Free the store and NULL the pointer; NULL is a no-op. */
void memstore_free(struct memstore **msp);

/* The store operations (resolve, status, destroy, token, mailbox: a mailbox by id with its
   warning levels, as /v1/self reads it) of ms; owned by ms. */
struct store *memstore_store(struct memstore *ms);

/* Its index, for a test to put, delete or move items directly. Owned by ms. */
struct vindex *memstore_index(struct memstore *ms);

/* Put every item of data; 0, or -1 with the index's *error_r at the first item refused (the
   items before it stay). */
int memstore_fill(struct memstore *ms, const struct memstore_data *data, const char **error_r)
        __attribute__((warn_unused_result));

/* The age every resolution reports from now on (how long since the data was current). */
void memstore_set_age(struct memstore *ms, uint64_t age_ms);

/* Make resolve and token fail with error (a static string) as a store out of reach does;
   NULL makes them answer again. */
void memstore_set_error(struct memstore *ms, const char *error);

#endif
