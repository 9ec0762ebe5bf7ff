/*
 * view: the in-memory store. It loads domains, mailboxes and aliases at start, keeps them
 * coherent with PostgreSQL through LISTEN/NOTIFY (sql/002_notify.sql), reloads in full after a
 * lost connection and on a periodic sweep, and answers every lookup from memory.
 */
#ifndef MQ_VIEW_H
#define MQ_VIEW_H

#include "store.h"

struct view_options {
	const char *conninfo;
	unsigned sweep_interval; /* seconds between full reloads; 0: never */
	unsigned ping_interval;  /* seconds between liveness probes of an idle connection */
};

/*
 * Create the view and start its listener thread, which connects, LISTENs and loads. Lookups
 * fail (the service tempfails) until the first load completes; after that they always succeed
 * from memory, database or not. Never fails.
 */
struct store *view_new(const struct view_options *opt);

/* Wait up to timeout_ms for the first load; 0 when loaded, -1 otherwise. */
int view_wait_loaded(struct store *store, unsigned timeout_ms) __attribute__((warn_unused_result));

#endif
