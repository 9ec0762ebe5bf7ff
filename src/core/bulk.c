/*
 * bulk: parsing imports and writing exports, as pure functions over memory. It must never
 * read past its input, accept a row it could not parse completely, or lose a row's line
 * number.
 */
#include "bulk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "strnum.h"
#include "utf8.h"
#include "xalloc.h"

/* The kinds a file holds (tokens are never imported or exported). */
#define FILE_KINDS 3
_Static_assert(RESOURCE_DOMAIN == 0 && RESOURCE_MAILBOX == 1 && RESOURCE_ALIAS == 2,
               "the file kinds come first");

/* A file's column i for kind, in export order: the key (column 0), then the API names of the
   field table's rows; NULL past the last column. */
static const char *column(enum resource_kind kind, size_t i)
{
	size_t n;
	const struct field *t = field_table(kind, &n);
	if (i > n)
		return NULL;
	return i == 0 ? field_key(kind) : t[i - 1].api;
}

/* Copy src into dst[size], cut to fit: the error report quotes, it need not be whole. */
static void copy_cut(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void bulk_error_add(struct bulk_errors *e, size_t line, const char *field, const char *code,
                    const char *message)
{
	e->total++;
	if (e->n >= BULK_ERRORS_MAX)
		return;
	struct bulk_error *x = &e->list[e->n++];
	x->line = line;
	copy_cut(x->field, sizeof(x->field), field != NULL ? field : "");
	copy_cut(x->code, sizeof(x->code), code);
	copy_cut(x->message, sizeof(x->message), message != NULL ? message : "invalid");
}

int bulk_format_parse(const char *s, enum bulk_format *f_r)
{
	if (strcmp(s, "ndjson") == 0)
		*f_r = BULK_NDJSON;
	else if (strcmp(s, "csv") == 0)
		*f_r = BULK_CSV;
	else
		return -1;
	return 0;
}

int bulk_kind_parse(const char *s, enum resource_kind *k_r)
{
	static const char *const plural[FILE_KINDS] = { "domains", "mailboxes", "aliases" };
	for (int k = 0; k < FILE_KINDS; k++) {
		if (strcmp(s, resource_kind_name((enum resource_kind)k)) == 0 ||
		    strcmp(s, plural[k]) == 0) {
			*k_r = (enum resource_kind)k;
			return 0;
		}
	}
	return -1;
}

void bulk_rows_free(struct bulk_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(rows[i].obj);
	free(rows);
}

static void push_row(struct bulk_row **rows, size_t *n, size_t *cap, size_t line,
                     enum resource_kind kind, json_t *obj)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		*rows = xrealloc(*rows, *cap * sizeof(**rows));
	}
	(*rows)[(*n)++] = (struct bulk_row){ line, kind, obj };
}

static int parse_ndjson(const char *data, size_t len, struct bulk_row **rows, size_t *n,
                        struct bulk_errors *errs)
{
	size_t cap = 0, line = 0, pos = 0;
	while (pos < len) {
		line++;
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t ll = nl != NULL ? (size_t)(nl - (data + pos)) : len - pos;
		const char *l = data + pos;
		pos += ll + (nl != NULL);
		if (ll > 0 && l[ll - 1] == '\r')
			ll--;
		size_t sp = 0;
		while (sp < ll && (l[sp] == ' ' || l[sp] == '\t'))
			sp++;
		if (sp == ll)
			continue; /* blank lines are allowed */
		if (ll > BULK_LINE_MAX) {
			bulk_error_add(errs, line, NULL, "line_too_long", "a line exceeds 64 KiB");
			return -1;
		}
		if (*n >= BULK_ROWS_MAX) {
			bulk_error_add(errs, line, NULL, "too_many_rows",
			               "more than 250,000 rows: split the file");
			return -1;
		}
		json_error_t jerr;
		json_t *obj = json_loadb(l, ll, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(obj)) {
			char msg[200];
			snprintf(msg, sizeof(msg), "not a JSON object: %s",
			         obj == NULL ? jerr.text : "another JSON value");
			bulk_error_add(errs, line, NULL, "invalid_json", msg);
			json_decref(obj);
			continue;
		}
		json_t *t = json_object_get(obj, "type");
		enum resource_kind kind;
		if (!json_is_string(t) || strcmp(json_string_value(t), "token") == 0 ||
		    bulk_kind_parse(json_string_value(t), &kind) < 0) {
			bulk_error_add(errs, line, "type", "invalid_field",
			               "type must be domain, mailbox or alias");
			json_decref(obj);
			continue;
		}
		json_object_del(obj, "type");
		push_row(rows, n, &cap, line, kind, obj);
	}
	return 0;
}

/*
 * One RFC 4180 record from data[*pos..len): fields into f (pointers into scratch), *nf set.
 * Lines are counted in *line. 0, 1 at the end of input, or -1 with *why.
 */
static int csv_record(const char *data, size_t len, size_t *pos, size_t *line, char *scratch,
                      char **f, size_t *nf, const char **why)
{
	size_t p = *pos, o = 0, start = p;
	*nf = 0;
	if (p >= len)
		return 1;
	f[(*nf)++] = scratch;
	bool quoted = false, was_quoted = false;
	while (p < len) {
		char c = data[p];
		if (p - start > BULK_LINE_MAX) {
			*why = "a record exceeds 64 KiB";
			return -1;
		}
		if (quoted) {
			if (c == '"') {
				if (p + 1 < len && data[p + 1] == '"') {
					scratch[o++] = '"';
					p += 2;
					continue;
				}
				quoted = false;
				p++;
				continue;
			}
			if (c == '\n')
				(*line)++;
			scratch[o++] = c;
			p++;
			continue;
		}
		if (c == '"') {
			if (was_quoted || &scratch[o] != f[*nf - 1]) {
				*why = "a quote inside an unquoted field";
				return -1;
			}
			quoted = was_quoted = true;
			p++;
			continue;
		}
		if (c == ',') {
			scratch[o++] = '\0';
			if (*nf == BULK_COLUMNS_MAX) {
				*why = "too many columns";
				return -1;
			}
			f[(*nf)++] = &scratch[o];
			was_quoted = false;
			p++;
			continue;
		}
		if (c == '\r' && p + 1 < len && data[p + 1] == '\n')
			p++;
		if (c == '\n' || (c == '\r' && data[p] == '\n')) {
			p++;
			break;
		}
		if (was_quoted) {
			*why = "text after a closing quote";
			return -1;
		}
		scratch[o++] = c;
		p++;
	}
	if (quoted) {
		*why = "a quoted field is not closed";
		return -1;
	}
	scratch[o] = '\0';
	*pos = p;
	return 0;
}

/*
 * The field named col in any kind's file, or NULL: a cell is read by its column's type even in
 * another kind's file, so that resource_check() reports such a column as unknown, not its value.
 */
static const struct field *any_field(const char *col)
{
	for (int k = 0; k < FILE_KINDS; k++) {
		const struct field *f = field_by_api((enum resource_kind)k, col);
		if (f != NULL)
			return f;
	}
	return NULL;
}

static bool any_key(const char *col)
{
	for (int k = 0; k < FILE_KINDS; k++)
		if (strcmp(field_key((enum resource_kind)k), col) == 0)
			return true;
	return false;
}

/* A CSV cell as the JSON value of column col; NULL with *why when it does not parse. */
static json_t *cell_value(const char *col, const char *v, const char **why)
{
	uint64_t n;
	if (!utf8_valid(v, strlen(v))) {
		*why = "is not valid UTF-8";
		return NULL;
	}
	if (any_key(col))
		return json_string(v);
	const struct field *f = any_field(col);
	if (f != NULL && f->type == FIELD_TARGETS) {
		json_t *a = json_array();
		const char *p = v;
		while (*p != '\0') {
			p += strspn(p, " \t");
			size_t l = strcspn(p, " \t");
			if (l > 0)
				json_array_append_new(a, json_stringn(p, l));
			p += l;
		}
		return a;
	}
	if (v[0] == '\0')
		return json_null();
	if (f == NULL || f->type == FIELD_CHOICE)
		return json_string(v); /* resource_check names the unknown field, checks choices */
	if (f->type == FIELD_BOOL) {
		if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
			return json_true();
		if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
			return json_false();
		*why = "must be true or false";
		return NULL;
	}
	if (strnum_u64(v, strlen(v), INT64_MAX, &n) < 0) {
		*why = "must be a non-negative integer, or empty";
		return NULL;
	}
	return json_integer((json_int_t)n);
}

static int parse_csv(enum resource_kind kind, const char *data, size_t len, struct bulk_row **rows,
                     size_t *n, struct bulk_errors *errs)
{
	char *scratch = xmalloc(BULK_LINE_MAX + 2);
	char *hdr_scratch = xmalloc(BULK_LINE_MAX + 2);
	char *f[BULK_COLUMNS_MAX], *h[BULK_COLUMNS_MAX];
	size_t nf, nh, pos = 0, line = 1, cap = 0;
	const char *why = NULL;
	int ret = -1;
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		pos = 3; /* a UTF-8 byte order mark, as spreadsheets write */
	int rc = csv_record(data, len, &pos, &line, hdr_scratch, h, &nh, &why);
	if (rc != 0) {
		bulk_error_add(errs, 1, NULL, "invalid_csv", rc > 0 ? "no header row" : why);
		goto out;
	}
	for (size_t i = 0; i < nh; i++) {
		if (!utf8_valid(h[i], strlen(h[i]))) {
			bulk_error_add(errs, 1, NULL, "invalid_csv",
			               "a column name is not valid UTF-8");
			goto out;
		}
	}
	for (size_t i = 0; i < nh; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(h[i], h[j]) == 0) {
				bulk_error_add(errs, 1, h[i], "invalid_csv",
				               "a column is named twice");
				goto out;
			}
	while (true) {
		line++;
		size_t start_line = line;
		rc = csv_record(data, len, &pos, &line, scratch, f, &nf, &why);
		if (rc > 0)
			break;
		if (rc < 0) {
			bulk_error_add(errs, start_line, NULL, "invalid_csv", why);
			goto out; /* the framing is lost: no later line can be trusted */
		}
		if (nf == 1 && f[0][0] == '\0')
			continue; /* a blank line */
		if (nf != nh) {
			char msg[120];
			snprintf(msg, sizeof(msg), "%zu fields, the header has %zu", nf, nh);
			bulk_error_add(errs, start_line, NULL, "invalid_csv", msg);
			continue;
		}
		if (*n >= BULK_ROWS_MAX) {
			bulk_error_add(errs, start_line, NULL, "too_many_rows",
			               "more than 250,000 rows: split the file");
			goto out;
		}
		json_t *obj = json_object();
		bool ok = true;
		for (size_t i = 0; i < nf && ok; i++) {
			json_t *v = cell_value(h[i], f[i], &why);
			if (v == NULL) {
				bulk_error_add(errs, start_line, h[i], "invalid_field", why);
				ok = false;
			} else {
				json_object_set_new(obj, h[i], v);
			}
		}
		if (ok)
			push_row(rows, n, &cap, start_line, kind, obj);
		else
			json_decref(obj);
	}
	ret = 0;
out:
	free(scratch);
	free(hdr_scratch);
	return ret;
}

int bulk_parse(enum bulk_format fmt, enum resource_kind csv_kind, const char *data, size_t len,
               struct bulk_row **rows_r, size_t *n_r, struct bulk_errors *errs)
{
	*rows_r = NULL;
	*n_r = 0;
	return fmt == BULK_NDJSON ? parse_ndjson(data, len, rows_r, n_r, errs)
	                          : parse_csv(csv_kind, data, len, rows_r, n_r, errs);
}

int bulk_csv_header(enum resource_kind kind, struct buf *out)
{
	const char *name;
	for (size_t i = 0; (name = column(kind, i)) != NULL; i++)
		if (buf_printf(out, "%s%s", i == 0 ? "" : ",", name) < 0)
			return -1;
	return buf_puts(out, "\r\n");
}

/* A CSV field, quoted when it must be. */
static int csv_field(struct buf *out, const char *s)
{
	if (strpbrk(s, ",\"\r\n") == NULL)
		return buf_puts(out, s);
	if (buf_puts(out, "\"") < 0)
		return -1;
	for (const char *p = s; *p; p++)
		if ((*p == '"' && buf_puts(out, "\"") < 0) || buf_append(out, p, 1) < 0)
			return -1;
	return buf_puts(out, "\"");
}

int bulk_write(enum bulk_format fmt, enum resource_kind kind, json_t *doc, struct buf *out)
{
	const char *name;
	if (fmt == BULK_NDJSON) {
		json_t *o = json_pack("{s:s}", "type", resource_kind_name(kind));
		for (size_t i = 0; (name = column(kind, i)) != NULL; i++) {
			json_t *v = json_object_get(doc, name);
			json_object_set(o, name, v != NULL ? v : json_null());
		}
		char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
		int rc = s != NULL && buf_puts(out, s) == 0 && buf_puts(out, "\n") == 0 ? 0 : -1;
		free(s);
		return rc;
	}
	for (size_t i = 0; (name = column(kind, i)) != NULL; i++) {
		json_t *v = json_object_get(doc, name);
		if (i > 0 && buf_puts(out, ",") < 0)
			return -1;
		int rc = 0;
		if (json_is_string(v)) {
			rc = csv_field(out, json_string_value(v));
		} else if (json_is_integer(v)) {
			rc = buf_printf(out, "%lld", (long long)json_integer_value(v));
		} else if (json_is_boolean(v)) {
			rc = buf_puts(out, json_is_true(v) ? "true" : "false");
		} else if (json_is_array(v)) {
			struct buf t;
			buf_init(&t, BULK_LINE_MAX);
			size_t j;
			json_t *x;
			json_array_foreach(v, j, x)
			{
				if (buf_printf(&t, "%s%s", j ? " " : "", json_string_value(x)) < 0)
					rc = -1;
			}
			if (rc == 0)
				rc = csv_field(out, t.data != NULL ? t.data : "");
			buf_free(&t);
		}
		if (rc < 0)
			return -1;
	}
	return buf_puts(out, "\r\n");
}
