/* rfc3339: timestamp validation. */
#ifndef MQ_RFC3339_H
#define MQ_RFC3339_H

#include <stdbool.h>
#include <stdint.h>

#define RFC3339_MAX 40 /* longest timestamp taken: nanoseconds and an offset fit easily */

/*
 * Whether t is "" or YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) naming a real moment as
 * PostgreSQL reads it (leap second :60 allowed, offsets up to 15:59): an impossible date would
 * fail the cast of a whole batch. Pure.
 */
bool rfc3339_valid(const char *t);

/* The Unix time t names (the fraction dropped): 0 with *epoch_r, or -1 when t is not valid as
   rfc3339_valid() sees it or is "". Pure. */
int rfc3339_epoch(const char *t, int64_t *epoch_r) __attribute__((warn_unused_result));

/* epoch as "YYYY-MM-DDTHH:MM:SSZ" (years 0001..9999, as rfc3339_valid() takes them). Pure. */
void rfc3339_format(int64_t epoch, char out[RFC3339_MAX + 1]);

#endif
