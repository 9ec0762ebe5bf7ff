/* deadline: a moment some milliseconds ahead on a given clock, and how much of it is left. */
#ifndef MQ_DEADLINE_H
#define MQ_DEADLINE_H

#include <time.h>

/* Now plus ms on clock (CLOCK_MONOTONIC for waits we time ourselves, CLOCK_REALTIME for
   pthread_cond_timedwait). */
struct timespec deadline_in(clockid_t clock, unsigned long ms);

/* Milliseconds from now until d on clock; 0 or negative once it has passed. */
long deadline_left_ms(clockid_t clock, const struct timespec *d);

#endif
