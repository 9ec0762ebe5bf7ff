/*
 * recalc: the checks a batch of recalculations gets before anything resolves or stores it
 * (see recalc.h). Pure: no I/O, no allocation. It must never let through a figure that is
 * negative or not an integer, an unknown member, or more than RECALC_ITEMS_MAX items.
 */
#include "recalc.h"

#include <string.h>

#include "report.h"
#include "rfc3339.h"

/* Whether every member name of obj is one of names (NULL-terminated). */
static bool members_known(json_t *obj, const char *const *names)
{
	const char *key;
	json_t *val;
	json_object_foreach(obj, key, val)
	{
		(void)val;
		bool known = false;
		for (const char *const *n = names; *n != NULL && !known; n++)
			known = strcmp(*n, key) == 0;
		if (!known)
			return false;
	}
	return true;
}

/* A time member: absent (NULL), or an RFC 3339 string. 0, or -1. */
static int time_member(json_t *obj, const char *name, const char **out_r)
{
	json_t *v = json_object_get(obj, name);
	*out_r = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || !rfc3339_valid(json_string_value(v)) ||
	    json_string_value(v)[0] == '\0')
		return -1;
	*out_r = json_string_value(v);
	return 0;
}

int recalc_check_batch(json_t *body, struct recalc_batch *batch_r, enum recalc_problem *problem_r,
                       const char **field_r, const char **error_r)
{
	static const char *const names[] = { "items", "source", "measured_at", NULL };
	*problem_r = RECALC_INVALID_BODY;
	*field_r = "";
	if (!json_is_object(body) || !members_known(body, names)) {
		*error_r = "the body must be {\"source\": ..., \"items\": [...]} with optional "
		           "measured_at, nothing else";
		return -1;
	}
	json_t *items = json_object_get(body, "items");
	if (!json_is_array(items) || json_array_size(items) == 0) {
		*field_r = "items";
		*error_r = "items must be an array of at least one item";
		return -1;
	}
	if (json_array_size(items) > RECALC_ITEMS_MAX) {
		*problem_r = RECALC_TOO_MANY;
		*field_r = "items";
		*error_r = "at most 5000 items per request: split the batch";
		return -1;
	}
	_Static_assert(RECALC_ITEMS_MAX == 5000, "the message above names the limit");
	*problem_r = RECALC_INVALID_FIELD;
	json_t *src = json_object_get(body, "source");
	if (!json_is_string(src) || json_string_length(src) == 0 ||
	    json_string_length(src) > USAGE_SOURCE_MAX) {
		*field_r = "source";
		*error_r = "source (required) must be a string of 1 to 100 characters, e.g. "
		           "\"doveadm\"";
		return -1;
	}
	_Static_assert(USAGE_SOURCE_MAX == 100, "the message above names the limit");
	const char *at;
	if (time_member(body, "measured_at", &at) < 0) {
		*field_r = "measured_at";
		*error_r = "measured_at must be an RFC 3339 time such as 2026-11-22T03:00:00Z";
		return -1;
	}
	batch_r->items = items;
	batch_r->source = json_string_value(src);
	batch_r->measured_at = at;
	return 0;
}

/* A figure member: absent (*has_r false), or an integer 0..RECALC_FIGURE_MAX. 0, or -1. */
static int figure_member(json_t *obj, const char *name, bool *has_r, uint64_t *out_r)
{
	json_t *v = json_object_get(obj, name);
	*has_r = false;
	*out_r = 0;
	if (v == NULL)
		return 0;
	/* json_int_t is at most RECALC_FIGURE_MAX: a larger number never parses */
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*has_r = true;
	*out_r = (uint64_t)json_integer_value(v);
	return 0;
}

int recalc_check_item(json_t *item, struct recalc_item *item_r, const char **field_r,
                      const char **error_r)
{
	static const char *const names[] = { "mailbox", "bytes", "messages", "measured_at", NULL };
	*field_r = "";
	if (!json_is_object(item)) {
		*error_r = "an item must be an object";
		return -1;
	}
	if (!members_known(item, names)) {
		*error_r = "unknown member (allowed: mailbox, bytes, messages, measured_at)";
		return -1;
	}
	json_t *mb = json_object_get(item, "mailbox");
	if (!json_is_string(mb)) {
		*field_r = "mailbox";
		*error_r = "mailbox (required) must be an address";
		return -1;
	}
	struct recalc_item r = { .mailbox = json_string_value(mb) };
	if (figure_member(item, "bytes", &r.has_bytes, &r.bytes) < 0) {
		*field_r = "bytes";
		*error_r = "bytes must be an integer from 0 to 2^63-1";
		return -1;
	}
	if (figure_member(item, "messages", &r.has_messages, &r.messages) < 0) {
		*field_r = "messages";
		*error_r = "messages must be an integer from 0 to 2^63-1";
		return -1;
	}
	if (!r.has_bytes && !r.has_messages) {
		*error_r = "give bytes, messages or both";
		return -1;
	}
	if (time_member(item, "measured_at", &r.measured_at) < 0) {
		*field_r = "measured_at";
		*error_r = "measured_at must be an RFC 3339 time such as 2026-11-22T03:00:00Z";
		return -1;
	}
	*item_r = r;
	return 0;
}

/* One quoted cell from line[*i] (its opening quote) into out[*o]: 0, or -1 with *error_r. */
static int csv_quoted(const char *line, size_t len, size_t *i, char *out, size_t *o,
                      const char **error_r)
{
	for ((*i)++; *i < len; (*i)++) {
		if (line[*i] != '"') {
			out[(*o)++] = line[*i];
			continue;
		}
		if (*i + 1 < len && line[*i + 1] == '"') {
			out[(*o)++] = '"';
			(*i)++;
			continue;
		}
		(*i)++; /* past the closing quote: a separator or the end must follow */
		if (*i < len && line[*i] != ',') {
			*error_r = "text after a closing quote";
			return -1;
		}
		return 0;
	}
	*error_r = "a quoted cell is not closed on its line";
	return -1;
}

int recalc_csv_split(const char *line, size_t len, char *out, const char *cells_r[RECALC_CSV_CELLS],
                     size_t *n_r, const char **error_r)
{
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (memchr(line, '\0', len) != NULL) {
		*error_r = "a NUL byte";
		return -1;
	}
	/* out never outgrows len + 1: a cell loses its quotes, and its separator becomes its NUL */
	size_t i = 0, o = 0, n = 0;
	for (;;) {
		if (n == RECALC_CSV_CELLS) {
			*error_r = "more than 8 cells";
			return -1;
		}
		cells_r[n++] = out + o;
		if (i < len && line[i] == '"') {
			if (csv_quoted(line, len, &i, out, &o, error_r) < 0)
				return -1;
		} else {
			for (; i < len && line[i] != ','; i++) {
				if (line[i] == '"') {
					*error_r = "a quote inside an unquoted cell";
					return -1;
				}
				out[o++] = line[i];
			}
		}
		out[o++] = '\0';
		if (i >= len)
			break;
		i++; /* the comma */
	}
	_Static_assert(RECALC_CSV_CELLS == 8, "the message above names the limit");
	*n_r = n;
	return 0;
}
