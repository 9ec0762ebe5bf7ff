/* libFuzzer target: the COPY text-format row parser. It must stay inside line[0..len], give
   1..COPYTEXT_FIELDS_MAX fields that point into the line, and a row it parses must come back
   the same after escaping it again as COPY ... TO STDOUT does. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "copytext.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Escape fields as PostgreSQL's COPY TO text format does; the line's length. */
static size_t escape_row(const struct copytext_row *r, char *out)
{
	size_t o = 0;
	for (int k = 0; k < r->n; k++) {
		if (k > 0)
			out[o++] = '\t';
		if (r->null[k]) {
			out[o++] = '\\';
			out[o++] = 'N';
			continue;
		}
		for (const char *p = r->f[k]; *p; p++) {
			const char *esc = strchr("\b\f\n\r\t\v\\", *p);
			if (esc != NULL) {
				out[o++] = '\\';
				out[o++] = "bfnrtv\\"[esc - "\b\f\n\r\t\v\\"];
			} else {
				out[o++] = *p;
			}
		}
	}
	out[o++] = '\n';
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exactly the bytes and the one writable byte after them, as libpq hands a row over */
	char *line = fuzz_cstring(data, size);
	if (line == NULL)
		return 0;
	struct copytext_row r;
	if (copytext_parse_line(line, size, &r) < 0) {
		free(line);
		return 0;
	}
	if (r.n < 1 || r.n > COPYTEXT_FIELDS_MAX)
		abort();
	for (int k = 0; k < r.n; k++) {
		if (r.f[k] < line || r.f[k] > line + size || r.f[k] + strlen(r.f[k]) > line + size)
			abort();
		if (r.null[k] && r.f[k][0] != '\0')
			abort();
	}
	/* every byte escapes to at most two, plus separators and the newline */
	char *again = malloc(2 * size + COPYTEXT_FIELDS_MAX + 2);
	if (again == NULL)
		abort();
	size_t len = escape_row(&r, again);
	again[len] = '\0';
	struct copytext_row r2;
	if (copytext_parse_line(again, len, &r2) < 0 || r2.n != r.n)
		abort();
	for (int k = 0; k < r.n; k++)
		if (r2.null[k] != r.null[k] || strcmp(r2.f[k], r.f[k]) != 0)
			abort();
	free(again);
	free(line);
	return 0;
}
