/*
 * strnum: whole-string, range-checked number parsing. Never accepts a partial parse, a sign or
 * white space; never writes the output on failure. Pure.
 */
#include "strnum.h"

#include <string.h>

int strnum_u64(const char *s, size_t len, uint64_t max, uint64_t *out_r)
{
	uint64_t v = 0;
	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v > max)
		return -1;
	*out_r = v;
	return 0;
}

int strnum_size(const char *s, uint64_t max, uint64_t *out_r)
{
	size_t len = strlen(s);
	uint64_t mult = 1, v;
	if (len > 1) {
		switch (s[len - 1]) {
		case 'k':
		case 'K':
			mult = 1024ULL;
			break;
		case 'm':
		case 'M':
			mult = 1024ULL * 1024;
			break;
		case 'g':
		case 'G':
			mult = 1024ULL * 1024 * 1024;
			break;
		case 't':
		case 'T':
			mult = 1024ULL * 1024 * 1024 * 1024;
			break;
		default:
			break;
		}
		if (mult != 1)
			len--;
	}
	if (strnum_u64(s, len, UINT64_MAX, &v) < 0)
		return -1;
	if (v > UINT64_MAX / mult || v * mult > max)
		return -1;
	*out_r = v * mult;
	return 0;
}

int strnum_duration(const char *s, uint64_t max, uint64_t *out_r)
{
	static const struct {
		char unit;
		uint64_t seconds;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 } };
	size_t len = strlen(s);
	uint64_t mult = 1, v;
	for (size_t i = 0; len > 1 && i < sizeof(units) / sizeof(units[0]); i++) {
		if (s[len - 1] == units[i].unit) {
			mult = units[i].seconds;
			len--;
			break;
		}
	}
	if (strnum_u64(s, len, UINT64_MAX, &v) < 0 || v > UINT64_MAX / mult || v * mult > max)
		return -1;
	*out_r = v * mult;
	return 0;
}
