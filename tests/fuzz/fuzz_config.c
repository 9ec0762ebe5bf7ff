/* libFuzzer target: configuration parsing and validation never crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstring(data, size);
	if (text == NULL)
		return 0;
	struct config cfg;
	const char *err = "";
	config_init(&cfg);
	if (config_parse_string(&cfg, text, &err) < 0 && (err == NULL || err[0] == '\0'))
		abort();
	config_free(&cfg);
	free(text);
	return 0;
}
