/*
 * metrics: the daemon's Prometheus metrics (docs/metrics.md). The front ends count into
 * process-wide counters as they go (relaxed C11 atomics: no lock and no allocation on the check
 * path, histogram buckets fixed at compile time); metrics_write() reads them, and asks the
 * store, the usage writer and the admin module for their own figures, when a scrape comes.
 */
#ifndef MQ_METRICS_H
#define MQ_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "answer.h"
#include "buf.h"
#include "service.h"

/* Every exposition fits in this much; more is a bug (the series are a fixed set). */
#define METRICS_OUTPUT_MAX (256 * 1024)

/* Who asked for a check (the milter asks through the policy socket: it counts as policy). */
enum metrics_front {
	METRICS_POLICY,
	METRICS_SOCKETMAP,
	METRICS_EXIM,
	METRICS_HTTP, /* GET and POST /v1/check, one per recipient */
};
#define METRICS_FRONTS (METRICS_HTTP + 1)

/* Where connections are accepted: the policy server's listeners, the HTTP API and the
   metrics_listen address. */
enum metrics_listener {
	METRICS_LISTEN_POLICY_UNIX,
	METRICS_LISTEN_POLICY_TCP,
	METRICS_LISTEN_SOCKETMAP_UNIX,
	METRICS_LISTEN_SOCKETMAP_TCP,
	METRICS_LISTEN_EXIM_UNIX,
	METRICS_LISTEN_EXIM_TCP,
	METRICS_LISTEN_HTTP,
	METRICS_LISTEN_METRICS,
};
#define METRICS_LISTENERS (METRICS_LISTEN_METRICS + 1)

/* Why a connection was refused (or, for http_queue_max, a request answered 503 busy). */
enum metrics_refusal {
	METRICS_REFUSED_MAX_CONNECTIONS, /* policy_max_connections; http_max_connections or
	                                    http_max_connections_per_address (libmicrohttpd does
	                                    not tell them apart) */
	METRICS_REFUSED_PER_CLIENT,      /* policy_max_connections_per_client */
	METRICS_REFUSED_TCP_ALLOW,       /* policy_tcp_allow */
	METRICS_REFUSED_DESCRIPTORS,     /* accept() ran out of descriptors: accepting paused */
	METRICS_REFUSED_QUEUE,           /* http_queue_max: every worker busy, the queue full */
};
#define METRICS_REFUSALS (METRICS_REFUSED_QUEUE + 1)

/* The monotonic clock in nanoseconds: take it before a check, give it to metrics_check(). */
uint64_t metrics_now(void);

/*
 * Count one check by front end fe that began at start (metrics_now()): its verdict and reason
 * from res, or res NULL for an address that could not be checked (verdict "invalid"), and its
 * duration in fe's histogram. Thread-safe, lock-free, never allocates.
 */
void metrics_check(enum metrics_front fe, const struct check_result *res, uint64_t start);

/* The listener a policy-server connection came through: its protocol, and whether it is the
   Unix socket (else TCP). */
enum metrics_listener metrics_policy_listener(enum answer_protocol proto, bool unix_socket);

/* A connection was accepted on l / has closed. Thread-safe, lock-free. */
void metrics_connection_opened(enum metrics_listener l);
void metrics_connection_closed(enum metrics_listener l);
/* A connection to l was refused for why. Thread-safe, lock-free. */
void metrics_refused(enum metrics_listener l, enum metrics_refusal why);

struct admin;
struct store;
struct usage;

/* What a scrape asks besides the counters; each may be NULL (its metrics are left out). */
struct metrics_sources {
	struct store *store;
	struct usage *usage;
	struct admin *admin;
};

/*
 * Write the whole exposition (text format 0.0.4) into out (its max at least
 * METRICS_OUTPUT_MAX): 0, or -1 with static *error_r (out outgrew its limit: a bug). Reads
 * /proc/self for the process metrics; never waits on the database. Thread-safe.
 */
int metrics_write(const struct metrics_sources *src, struct buf *out, const char **error_r)
        __attribute__((warn_unused_result));

#endif
