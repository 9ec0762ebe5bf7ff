/* report: the fields of a usage report and the checks they get before any SQL. Pure. */
#include "report.h"

#include <string.h>

bool usage_key_valid(const char *key)
{
	size_t n = strlen(key);
	if (n == 0 || n > USAGE_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e)
			return false;
	return true;
}
