/*
 * reload: SIGHUP, in the manner of `postfix reload` and PgBouncer's RELOAD. The configuration
 * is loaded afresh exactly as at start-up and checked as `mailquotad -n` checks it; a failure
 * keeps the running configuration whole. Otherwise the live parameters' values (config.c's
 * table says which) are moved into the one running struct config that every module borrows,
 * and restart-only ones that differ are named and left alone.
 *
 * Threads. The policy thread is the only writer and reads without a lock. Every other reader
 * of a live parameter holds reload_lock for reading around each use: libmicrohttpd's request
 * callback (checks are memory work), one iteration of the HTTP reaper, the warning thread
 * while it copies its limits, signs a webhook body or renders a mail (never while sending).
 * The warning channels' set-up (the secret and template files, read anew at every reload) is
 * swapped into the warning worker under the same write lock. HTTP worker jobs (database work, an
 * import may run for minutes) and stream producers read restart-only parameters only, and take no
 * lock: that is why the address rules and self_token_max_lifetime, which they read, are
 * restart-only. The writer only try-locks, retried from the policy thread's event loop every
 * 10 ms (RELOAD_RETRY_MS in policy_server.c), so a reload does not make checks wait for HTTP
 * requests; only after WAIT_NOTICE_SEC of readers overlapping every try does it wait, up to
 * WAIT_SLICE_MS a try (a reader's hold is memory work, so a gap comes soon; checks wait that
 * long at most). A reader never waits behind a writer (glibc's rwlock prefers readers; an
 * uncontended read lock is one atomic operation). Strings are swapped under the write lock and
 * the old ones freed after it is released: a reader can never hold one, since it reads only
 * under the lock.
 *
 * It must never apply part of a configuration that fails, nor free a string another thread
 * may be reading.
 */
#include "reload.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "deadline.h"
#include "log.h"
#include "sdnotify.h"
#include "warn_worker.h"
#include "xalloc.h"

#define NAMES_MAX       1024 /* of a log line's list of changed parameters */
#define WAIT_NOTICE_SEC 1    /* a reload waiting this long for readers is logged once */
#define WAIT_SLICE_MS   5    /* ... and then waits up to this long at each try */

static pthread_rwlock_t reload_lock = PTHREAD_RWLOCK_INITIALIZER;

struct reload {
	struct config *running;
	const char *path;
	char *const *overrides;
	size_t noverrides;
	struct warn_worker *warn; /* borrowed; NULL: none */
	struct config *pending;   /* checked, waiting for the write lock */
	struct warn_setup *setup; /* pending's warning channels, read and checked */
	char changed[NAMES_MAX];
	time_t since; /* CLOCK_MONOTONIC second the pending one was loaded */
	bool waiting_logged;
};

void reload_read_lock(void)
{
	if (pthread_rwlock_rdlock(&reload_lock) != 0)
		abort(); /* only on our bug: too many readers or a deadlock */
}

void reload_read_unlock(void)
{
	pthread_rwlock_unlock(&reload_lock);
}

static time_t mono_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

struct reload *reload_new(struct config *running, const char *path, char *const *overrides,
                          size_t n, struct warn_worker *warn)
{
	struct reload *r = xcalloc(1, sizeof(*r));
	r->warn = warn;
	r->running = running;
	r->path = path;
	r->overrides = overrides;
	r->noverrides = n;
	return r;
}

static void drop_pending(struct reload *r)
{
	warn_setup_free(&r->setup);
	if (r->pending == NULL)
		return;
	config_free(r->pending);
	free(r->pending);
	r->pending = NULL;
}

/* The end of a reload, applied or not (status: what came of it): systemd's Type=notify-reload
   waits for it. */
static void done(const char *status)
{
	sdnotify_ready(status);
}

/* A configuration error for a log line's quoted value: its double quotes become single ones,
   other characters a log line must not hold '?' (the messages quote values already cut). */
static const char *log_text(char *dst, size_t size, const char *s)
{
	size_t i = 0;
	for (; s[i] != '\0' && i + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[i] = c == '"' ? '\'' : c < 0x20 || c >= 0x7f || c == '\\' ? '?' : (char)c;
	}
	dst[i] = '\0';
	return dst;
}

/* Load and check the configuration into r->pending and r->setup; the STATUS= text for systemd
   when that fails (the reload ends there), else NULL. */
static const char *load(struct reload *r)
{
	struct config *fresh = xmalloc(sizeof(*fresh));
	const char *err;
	config_init(fresh);
	if (config_load_all(fresh, r->path, r->overrides, r->noverrides, &err) < 0 ||
	    (r->setup = warn_setup_load(fresh, &err)) == NULL) {
		char text[CONFIG_ERROR_MAX];
		log_error("event=reload_failed error=\"%s\" note=\"the running configuration is "
		          "kept\"",
		          log_text(text, sizeof(text), err));
		config_free(fresh);
		free(fresh);
		return "reload failed: the running configuration is kept (see the log)";
	}
	char restart[NAMES_MAX];
	if (config_diff(r->running, fresh, false, restart, sizeof(restart)) > 0)
		log_warn("event=reload_needs_restart keys=\"%s\" note=\"not applied: restart "
		         "mailquotad to change them (milter_*: restart mailquota-milter)\"",
		         restart);
	/* applied even when no value changed: the secret and template files are read anew */
	config_diff(r->running, fresh, true, r->changed, sizeof(r->changed));
	r->pending = fresh;
	r->since = mono_sec();
	r->waiting_logged = false;
	return NULL;
}

int reload_step(struct reload *r, bool request)
{
	if (request) {
		sdnotify_reloading("reloading the configuration");
		log_info("event=reload_requested");
		drop_pending(r); /* the file may have changed again: read it anew */
		const char *status = load(r);
		if (r->pending == NULL) {
			done(status);
			return 0;
		}
	}
	if (r->pending == NULL)
		return 0;
	int rc = pthread_rwlock_trywrlock(&reload_lock);
	if (rc == EBUSY && mono_sec() - r->since >= WAIT_NOTICE_SEC) {
		/* readers overlap every time we try (steady HTTP load): wait for a gap, briefly;
		   readers only do memory work, so one comes within microseconds */
		struct timespec until = deadline_in(CLOCK_REALTIME, WAIT_SLICE_MS);
		rc = pthread_rwlock_timedwrlock(&reload_lock, &until);
		if (rc == ETIMEDOUT)
			rc = EBUSY;
	}
	if (rc == EBUSY) {
		if (!r->waiting_logged && mono_sec() - r->since >= WAIT_NOTICE_SEC) {
			log_info("event=reload_waiting note=\"HTTP requests hold the "
			         "configuration\"");
			r->waiting_logged = true;
		}
		return 1;
	}
	if (rc != 0)
		abort(); /* EDEADLK: this thread holds it, our bug */
	config_apply_live(r->running, r->pending);
	if (r->warn != NULL)
		warn_worker_swap_setup(r->warn, &r->setup);
	log_set_level(r->running->level);
	pthread_rwlock_unlock(&reload_lock);
	/* the old strings and setup are in pending now; no reader can hold them any more */
	drop_pending(r);
	if (r->warn != NULL)
		warn_worker_wake(r->warn);
	log_notice("event=reloaded changed=\"%s\"", r->changed);
	done("configuration reloaded");
	return 0;
}

void reload_destroy(struct reload **rp)
{
	struct reload *r = *rp;
	if (r == NULL)
		return;
	drop_pending(r);
	free(r);
	*rp = NULL;
}
