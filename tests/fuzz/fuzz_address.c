/* libFuzzer target: address normalisation; the first byte picks the rules. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	struct address_rules rules = { .fold_local = data[0] & 1 };
	strcpy(rules.delimiters, (data[0] & 2) ? "+-" : (data[0] & 4) ? "" : "+");
	struct address a;
	const char *err = NULL;
	if (address_normalize((const char *)data + 1, size - 1, &rules, &a, &err) == 0) {
		if (strlen(a.local) > ADDRESS_LOCAL_MAX || strlen(a.domain) > ADDRESS_DOMAIN_MAX ||
		    strlen(a.base) > strlen(a.local) ||
		    strncmp(a.base, a.local, strlen(a.base)) != 0)
			abort();
		for (const char *c = a.domain; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				abort();
	} else if (err == NULL) {
		abort();
	}
	return 0;
}
