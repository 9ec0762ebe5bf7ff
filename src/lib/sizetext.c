/* sizetext: see the header. Integer arithmetic only; it must never round a figure up. */
#include "sizetext.h"

#include <stdio.h>

const char *size_text(uint64_t bytes, struct size_text *out)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned u = 0;
	uint64_t whole = bytes, rest = 0; /* bytes = whole * 1024^u + rest */
	while (whole >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		rest = (whole % 1024) << (10 * u) | rest;
		whole /= 1024;
		u++;
	}
	/* tenths of the unit in rest, rounded down: rest < 1024^u, so the quotient is below 10;
	   rest * 10 can pass 2^64 (u = 6), hence 128 bits */
	unsigned tenths = (unsigned)(((unsigned __int128)rest * 10) >> (10 * u));
	/* the numbers are bounded (whole < 1024 or in EiB < 16, one digit): the text always fits */
	if (tenths == 0)
		snprintf(out->s, sizeof(out->s), "%llu %s", (unsigned long long)whole, units[u]);
	else
		snprintf(out->s, sizeof(out->s), "%llu.%u %s", (unsigned long long)whole, tenths,
		         units[u]);
	return out->s;
}
