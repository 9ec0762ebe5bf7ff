/*
 * copytext: one line of PostgreSQL's COPY ... TO STDOUT text format, split into fields in place.
 * Pure: no I/O, no allocation, no globals.
 */
#ifndef MQ_COPYTEXT_H
#define MQ_COPYTEXT_H

#include <stdbool.h>
#include <stddef.h>

#define COPYTEXT_FIELDS_MAX 16 /* columns in one row; more are refused */

/* The fields of one line. */
struct copytext_row {
	int n;                        /* number of fields, 1..COPYTEXT_FIELDS_MAX */
	char *f[COPYTEXT_FIELDS_MAX]; /* unescaped, NUL-terminated, in place; "" when null */
	bool null[COPYTEXT_FIELDS_MAX];
};

/*
 * Split line[len] (one COPY text row, with or without its final '\n') at tabs and undo its
 * backslash escapes in place: \b \f \n \r \t \v become those characters, a field that is
 * exactly \N is null, and a backslash before any other character stands for that character
 * (COPY TO never writes octal or hex escapes); a backslash ending the line stands for itself.
 * line[len] must be writable: each field is NUL-terminated inside line[0..len]. 0 with *r
 * filled, pointing into line; or -1 (line partly rewritten, *r meaningless) when the row has
 * more than COPYTEXT_FIELDS_MAX fields. Never fails otherwise: any bytes are a row.
 */
int copytext_parse_line(char *line, size_t len, struct copytext_row *r)
        __attribute__((warn_unused_result));

#endif
