/* libFuzzer target: the policy protocol parser must never read out of bounds, never claim to
   consume more than it was given, and always make progress or stop. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t left = size;
	for (;;) {
		struct policy_request req;
		size_t used = 0;
		const char *err = NULL;
		int rc = policy_parse(p, left, &req, &used, &err);
		if (rc <= 0) {
			if (rc < 0 && err == NULL)
				abort();
			return 0;
		}
		if (used == 0 || used > left)
			abort();
		if (req.recipient.len > 0 &&
		    (req.recipient.ptr < p || req.recipient.ptr + req.recipient.len > p + used))
			abort();
		p += used;
		left -= used;
	}
}
