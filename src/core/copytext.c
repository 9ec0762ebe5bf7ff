/*
 * copytext: the parser of PostgreSQL's COPY text format rows, used by the view to read its
 * snapshot. It must never read or write outside line[0..len] and never accept more fields than
 * a row holds; it does no I/O and keeps no state.
 */
#include "copytext.h"

int copytext_parse_line(char *line, size_t len, struct copytext_row *r)
{
	if (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	r->n = 0;
	char *p = line, *end = line + len;
	for (;;) {
		if (r->n == COPYTEXT_FIELDS_MAX)
			return -1;
		char *start = p, *out = p;
		while (p < end && *p != '\t') {
			if (*p == '\\' && p + 1 < end) {
				char c = p[1];
				switch (c) {
				case 'b':
					c = '\b';
					break;
				case 'f':
					c = '\f';
					break;
				case 'n':
					c = '\n';
					break;
				case 'r':
					c = '\r';
					break;
				case 't':
					c = '\t';
					break;
				case 'v':
					c = '\v';
					break;
				default:
					break;
				}
				if (p[1] == 'N' && p == start && (p + 2 == end || p[2] == '\t')) {
					r->null[r->n] = true;
					p += 2;
					out = start;
					goto field_done;
				}
				*out++ = c;
				p += 2;
			} else {
				*out++ = *p++;
			}
		}
		r->null[r->n] = false;
	field_done:
		*out = '\0';
		r->f[r->n++] = start;
		if (p >= end)
			return 0;
		p++; /* the tab */
	}
}
