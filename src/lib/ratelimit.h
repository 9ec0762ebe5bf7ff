/* ratelimit: a token bucket (pure arithmetic; callers keep the buckets and any lock). */
#ifndef MQ_RATELIMIT_H
#define MQ_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* Start from { 0 }: a bucket never seen is full. */
struct rate_bucket {
	bool started;
	uint64_t micro;   /* tokens held, in millionths */
	uint64_t last_ms; /* when it was last refilled */
};

/*
 * Take n tokens from b at now_ms (a monotonic clock), refilled at rate per second up to burst.
 * Returns 0 when they were there (and takes them), or -1 when not (nothing taken) with
 * *retry_ms_r how long until n would be there (n > burst: never, UINT64_MAX). rate >= 1,
 * burst >= 1, both at most 10^6; they may change between calls (a bucket holding more than a
 * lowered burst is cut to it). Pure.
 */
int rate_take(struct rate_bucket *b, uint64_t now_ms, uint64_t rate, uint64_t burst, uint64_t n,
              uint64_t *retry_ms_r) __attribute__((warn_unused_result));

#endif
