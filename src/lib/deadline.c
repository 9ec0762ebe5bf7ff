/* deadline: timespec arithmetic in one place. Pure but for reading the clock. */
#include "deadline.h"

struct timespec deadline_in(clockid_t clock, unsigned long ms)
{
	struct timespec t;
	clock_gettime(clock, &t);
	t.tv_sec += (time_t)(ms / 1000);
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

long deadline_left_ms(clockid_t clock, const struct timespec *d)
{
	struct timespec now;
	clock_gettime(clock, &now);
	return (long)(d->tv_sec - now.tv_sec) * 1000 + (d->tv_nsec - now.tv_nsec) / 1000000;
}
