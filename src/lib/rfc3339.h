/* rfc3339: timestamp validation. */
#ifndef MQ_RFC3339_H
#define MQ_RFC3339_H

#include <stdbool.h>

#define RFC3339_MAX 40 /* longest timestamp taken: nanoseconds and an offset fit easily */

/*
 * Whether t is "" or YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) naming a real moment as
 * PostgreSQL reads it (leap second :60 allowed, offsets up to 15:59): an impossible date would
 * fail the cast of a whole batch. Pure.
 */
bool rfc3339_valid(const char *t);

#endif
