/*
 * memstore: the test store. A vindex behind the store operations, with an age and an error a
 * test sets. It must stay as thin as that: every rule of resolution belongs to vindex, so what
 * a test learns here holds for the daemon's view.
 */
#include "memstore.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct memstore {
	struct store store; /* first: a struct store * is a struct memstore * */
	struct vindex *idx;
	uint64_t age_ms;
	const char *error; /* NULL: answer */
};

static int ms_resolve(struct store *store, const struct address *addr,
                      struct store_resolution *res_r, const char **error_r)
{
	struct memstore *ms = (struct memstore *)store;
	if (ms->error != NULL) {
		*error_r = ms->error;
		return -1;
	}
	vindex_resolve(ms->idx, addr, res_r);
	res_r->age_ms = ms->age_ms;
	return 0;
}

static void ms_status(struct store *store, struct store_status *st)
{
	struct memstore *ms = (struct memstore *)store;
	memset(st, 0, sizeof(*st));
	st->db_up = ms->error == NULL;
	st->loaded = true;
	st->age_seconds = (double)ms->age_ms / 1000;
	st->domains = vindex_count(ms->idx, VINDEX_DOMAIN);
	st->mailboxes = vindex_count(ms->idx, VINDEX_MAILBOX);
	st->aliases = vindex_count(ms->idx, VINDEX_ALIAS);
	st->full_loads = 1;
}

static void ms_destroy(struct store *store)
{
	struct memstore *ms = (struct memstore *)store;
	vindex_free(&ms->idx);
	free(ms);
}

static int ms_token(struct store *store, int64_t id, struct store_token *tok_r)
{
	struct memstore *ms = (struct memstore *)store;
	if (ms->error != NULL)
		return -1;
	return vindex_token(ms->idx, id, tok_r);
}

static int ms_mailbox(struct store *store, int64_t id, struct store_mailbox *mb_r)
{
	struct memstore *ms = (struct memstore *)store;
	if (ms->error != NULL)
		return -1;
	return vindex_mailbox(ms->idx, id, mb_r);
}

static const struct store_ops ms_ops = { ms_resolve, ms_status, ms_destroy, ms_token, ms_mailbox };

struct memstore *memstore_new(void)
{
	struct memstore *ms = xcalloc(1, sizeof(*ms));
	ms->store.ops = &ms_ops;
	ms->idx = vindex_new();
	return ms;
}

void memstore_free(struct memstore **msp)
{
	if (*msp == NULL)
		return;
	ms_destroy(&(*msp)->store);
	*msp = NULL;
}

struct store *memstore_store(struct memstore *ms)
{
	return &ms->store;
}

struct vindex *memstore_index(struct memstore *ms)
{
	return ms->idx;
}

int memstore_fill(struct memstore *ms, const struct memstore_data *data, const char **error_r)
{
	for (size_t i = 0; i < data->ndomains; i++)
		if (vindex_put_domain(ms->idx, &data->domains[i], error_r) < 0)
			return -1;
	for (size_t i = 0; i < data->nmailboxes; i++)
		if (vindex_put_mailbox(ms->idx, &data->mailboxes[i], error_r) < 0)
			return -1;
	for (size_t i = 0; i < data->naliases; i++)
		if (vindex_put_alias(ms->idx, &data->aliases[i], error_r) < 0)
			return -1;
	for (size_t i = 0; i < data->ntokens; i++)
		if (vindex_put_token(ms->idx, &data->tokens[i], error_r) < 0)
			return -1;
	return 0;
}

void memstore_set_age(struct memstore *ms, uint64_t age_ms)
{
	ms->age_ms = age_ms;
}

void memstore_set_error(struct memstore *ms, const char *error)
{
	ms->error = error;
}
