/* ratelimit: see the header. Integer arithmetic in millionths of a token: it must never
   overflow, and never let a clock that steps back hand out tokens. */
#include "ratelimit.h"

#define MICRO 1000000ULL

bool rate_take(struct rate_bucket *b, uint64_t now_ms, uint64_t rate, uint64_t burst, uint64_t n,
               uint64_t *retry_ms_r)
{
	uint64_t cap = burst * MICRO; /* burst <= 10^6: at most 10^12 */
	if (!b->started) {
		b->started = true;
		b->micro = cap;
		b->last_ms = now_ms;
	}
	if (now_ms > b->last_ms) {
		uint64_t dt = now_ms - b->last_ms;
		/* rate * 1000 per ms in millionths; a full refill is reached after cap / rate ms */
		uint64_t add = dt >= cap / rate ? cap : dt * rate * (MICRO / 1000);
		b->micro = cap - b->micro <= add ? cap : b->micro + add;
		b->last_ms = now_ms;
	}
	if (n > burst) {
		*retry_ms_r = UINT64_MAX;
		return false;
	}
	uint64_t want = n * MICRO;
	if (b->micro >= want) {
		b->micro -= want;
		return true;
	}
	/* the missing millionths arrive at rate * 1000 per ms; round up */
	uint64_t per_ms = rate * (MICRO / 1000);
	*retry_ms_r = (want - b->micro + per_ms - 1) / per_ms;
	return false;
}
