/* ratelimit: see the header. Integer arithmetic in millionths of a token: it must never
   overflow, and never let a clock that steps back hand out tokens. */
#include "ratelimit.h"

#define MICRO 1000000ULL

int rate_take(struct rate_bucket *b, uint64_t now_ms, uint64_t rate, uint64_t burst, uint64_t n,
              uint64_t *retry_ms_r)
{
	uint64_t cap = burst * MICRO;            /* burst <= 10^6: at most 10^12 */
	uint64_t per_ms = rate * (MICRO / 1000); /* refill a ms, in millionths */
	if (!b->started) {
		b->started = true;
		b->micro = cap;
		b->last_ms = now_ms;
	}
	if (b->micro > cap) /* burst was lowered (a reload): hold no more than the new one */
		b->micro = cap;
	if (now_ms > b->last_ms) {
		uint64_t dt = now_ms - b->last_ms;
		/* rate * 1000 millionths a ms; from empty, full after cap / (rate * 1000) ms, so
		   any longer pause just fills it (and dt * rate * 1000 stays below cap * 1000 <
		   2^64) */
		uint64_t add = dt >= cap / per_ms + 1 ? cap : dt * per_ms;
		b->micro = cap - b->micro <= add ? cap : b->micro + add;
		b->last_ms = now_ms;
	}
	if (n > burst) {
		*retry_ms_r = UINT64_MAX;
		return -1;
	}
	uint64_t want = n * MICRO;
	if (b->micro >= want) {
		b->micro -= want;
		return 0;
	}
	/* the missing millionths arrive at per_ms a ms; round up */
	*retry_ms_r = (want - b->micro + per_ms - 1) / per_ms;
	return -1;
}
