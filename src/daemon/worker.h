/* worker: a fixed set of threads that run queued jobs, so that the threads serving connections
   and checks never wait on PostgreSQL (the HTTP requests that need the database run here). */
#ifndef MQ_WORKER_H
#define MQ_WORKER_H

typedef void (*worker_fn)(void *arg);

struct worker_pool;

/* Start threads (1..64) sharing a queue of at most queue_max jobs waiting. Start-up only: a
   thread that cannot start is fatal. */
struct worker_pool *worker_pool_new(unsigned threads, unsigned queue_max, const char *name);

/*
 * Queue fn(arg) to run on one of the threads. Returns 0, or -1 (nothing queued) when queue_max
 * jobs are already waiting or the pool is being destroyed. Thread-safe.
 */
int worker_pool_submit(struct worker_pool *pool, worker_fn fn, void *arg)
        __attribute__((warn_unused_result));

/* Jobs waiting or running now. Thread-safe. */
unsigned worker_pool_busy(struct worker_pool *pool);

/* Refuse new jobs, run every job already queued, join the threads, free, NULL the pointer. */
void worker_pool_destroy(struct worker_pool **pool);

#endif
