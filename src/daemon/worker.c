/*
 * worker: a bounded job queue served by a fixed number of threads. It must never queue more
 * than queue_max jobs (a caller gets -1 and answers "busy" itself), and never drop a job it
 * accepted: destroy runs the queue empty before joining.
 */
#include "worker.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

#define WORKER_THREADS_MAX 64

struct job {
	worker_fn fn;
	void *arg;
};

struct worker_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *ring; /* queue_max slots */
	unsigned queue_max, head, count;
	unsigned running;
	bool stopping;
	unsigned nthreads;
	pthread_t threads[WORKER_THREADS_MAX];
};

static void *worker_main(void *arg)
{
	struct worker_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->count == 0 && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->count == 0)
			break; /* stopping, and nothing left to run */
		struct job j = p->ring[p->head];
		p->head = (p->head + 1) % p->queue_max;
		p->count--;
		p->running++;
		pthread_mutex_unlock(&p->lock);
		j.fn(j.arg);
		pthread_mutex_lock(&p->lock);
		p->running--;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct worker_pool *worker_pool_new(unsigned threads, unsigned queue_max, const char *name)
{
	struct worker_pool *p = xcalloc(1, sizeof(*p));
	p->queue_max = queue_max == 0 ? 1 : queue_max;
	p->ring = xcalloc(p->queue_max, sizeof(*p->ring));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (threads == 0)
		threads = 1;
	if (threads > WORKER_THREADS_MAX)
		threads = WORKER_THREADS_MAX;
	for (unsigned i = 0; i < threads; i++) {
		int rc = pthread_create(&p->threads[i], NULL, worker_main, p);
		if (rc != 0)
			log_fatal("event=start_failed error=\"%s thread: %s\"", name, strerror(rc));
		char tname[16];
		snprintf(tname, sizeof(tname), "%.10s-%u", name, i);
		pthread_setname_np(p->threads[i], tname);
		p->nthreads++;
	}
	return p;
}

int worker_pool_submit(struct worker_pool *p, worker_fn fn, void *arg)
{
	pthread_mutex_lock(&p->lock);
	if (p->stopping || p->count == p->queue_max) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	p->ring[(p->head + p->count) % p->queue_max] = (struct job){ fn, arg };
	p->count++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

unsigned worker_pool_busy(struct worker_pool *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned n = p->count + p->running;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void worker_pool_destroy(struct worker_pool **pp)
{
	struct worker_pool *p = *pp;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->ring);
	free(p);
	*pp = NULL;
}
