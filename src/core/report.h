/* report: a usage report as the daemon and the CLI carry it, with its limits and checks (pure). */
#ifndef MQ_REPORT_H
#define MQ_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "rfc3339.h"

#define USAGE_KEY_MAX     200  /* idempotency key: 1..200 printable ASCII characters */
#define USAGE_BATCH_MAX   1000 /* reports in one call */
#define USAGE_SOURCE_MAX  100  /* a recalculation's source label */
#define USAGE_DELTA_LIMIT 4611686018427387904LL /* |delta| <= 2^62 */

struct usage_report {
	int64_t mailbox_id;
	int64_t bytes;
	int64_t messages;
	char key[USAGE_KEY_MAX + 1];
	char occurred_at[RFC3339_MAX + 1]; /* "" when not given */
};

enum usage_status {
	USAGE_APPLIED,
	USAGE_SUPERSEDED,      /* happened before the last recalculation: counted already */
	USAGE_CONFLICT,        /* the key was used before with different content */
	USAGE_UNKNOWN_MAILBOX, /* the mailbox is gone */
};

struct usage_result {
	enum usage_status status;
	bool clamped;   /* usage would have left 0 .. 2^63-1 */
	bool duplicate; /* the key was seen before: this is the original outcome */
	uint64_t used_bytes;
	uint64_t used_messages;
};

/* Whether key is 1..USAGE_KEY_MAX printable ASCII characters without spaces. Pure. */
bool usage_key_valid(const char *key);

#endif
