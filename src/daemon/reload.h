/* reload: SIGHUP re-reads the configuration and applies its live parameters to the running
   one (config.h: config_key_live()), and the lock under which other threads read them. */
#ifndef MQ_RELOAD_H
#define MQ_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "warn_worker.h"

struct reload;

/*
 * A reloader for running, the configuration the daemon started with (borrowed; it must outlive
 * the reloader): each reload loads path and the overrides[n] ("name=value", the -o options)
 * exactly as start-up did (config_load_all(), then warn_setup_load(): what `mailquotad -n`
 * checks) and hands warn (borrowed, NULL: none) its new warning channels. path and overrides
 * are borrowed too.
 */
struct reload *reload_new(struct config *running, const char *path, char *const *overrides,
                          size_t n, struct warn_worker *warn);

/*
 * On the thread that serves policy requests (the one writer of the running configuration; it
 * reads it without the lock): request true for a SIGHUP, false to retry one that is waiting.
 * A configuration that fails its checks is refused (logged at error level, event=reload_failed)
 * and the running one kept; restart-only parameters that differ are named in a warning
 * (event=reload_needs_restart) and not applied; the live ones are applied under the write lock
 * and named (event=reloaded). Never blocks: while a reader holds the lock, returns 1 and the
 * caller calls again soon (request false); else 0. A new request replaces one still waiting.
 */
int reload_step(struct reload *r, bool request);

/* Free the reloader (and a configuration still waiting), NULL the pointer; NULL is ignored. */
void reload_destroy(struct reload **rp);

/*
 * Every thread but the policy thread holds this read lock around each use of a live parameter
 * (an HTTP request callback, an iteration of the warning or the reaper thread), and never for
 * longer than memory work: no database call, no network wait. Uncontended but for a reload's
 * moment: the writer only ever try-locks, so no reader waits behind a waiting writer.
 */
void reload_read_lock(void);
void reload_read_unlock(void);

#endif
