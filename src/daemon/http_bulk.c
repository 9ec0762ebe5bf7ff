/*
 * http_bulk: imports and exports over HTTP. An export streams NDJSON or CSV from one database
 * snapshot on a thread of its own (http_stream_new()); an import parses the body (bulk.c), puts
 * every row through the checks of a single create (resource.c) and hands the rest to
 * admin_import() in one transaction, then reports per line. It must never import a row
 * resource.c refused, and never commit an all-or-nothing import with any row refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "bulk.h"
#include "http_internal.h"
#include "resource.h"
#include "xalloc.h"

#define CSV_HEADER_MAX (64 * 1024) /* the CSV header line of an export */
#define ALL_KINDS      ((1u << RESOURCE_DOMAIN) | (1u << RESOURCE_MAILBOX) | (1u << RESOURCE_ALIAS))

struct export_stream {
	struct admin_export *x;
	enum bulk_format fmt;
	struct buf header; /* the CSV header line, handed out first */
};

/* Produce the next 1000 objects (on the stream's own thread: it waits on the database). */
static int export_produce(void *cls, struct buf *out)
{
	struct export_stream *s = cls;
	if (s->header.len > 0) {
		if (buf_append(out, s->header.data, s->header.len) < 0)
			return -1;
		buf_reset(&s->header);
		return 1;
	}
	const char *error; /* logged by admin_export_next() */
	return admin_export_next(s->x, s->fmt, out, &error);
}

static void export_done(void *cls)
{
	struct export_stream *s = cls;
	admin_export_close(&s->x);
	buf_free(&s->header);
	free(s);
}

static const char *const export_params[] = { "format", "type", NULL };
static const char *const import_params[] = { "format", "type", "mode", "dry_run", NULL };

/* What an import or export asked for in its query. */
struct bulk_query {
	enum bulk_format fmt;
	unsigned kinds;   /* bits 1 << kind */
	const char *mode; /* "all_or_nothing" or "best_effort" */
	bool dry_run;
	enum resource_kind kind; /* with one kind: that one */
};

/* Take parameter n=v into b: NULL, or what is wrong with it. */
static const char *bulk_param(const char *n, const char *v, struct bulk_query *b, bool *typed)
{
	int yes = 0;
	if (strcmp(n, "format") == 0) {
		if (bulk_format_parse(v, &b->fmt) < 0)
			return "must be ndjson or csv";
	} else if (strcmp(n, "type") == 0) {
		if (bulk_kind_parse(v, &b->kind) < 0)
			return "must be domains, mailboxes or aliases";
		b->kinds = 1u << b->kind;
		*typed = true;
	} else if (strcmp(n, "mode") == 0) {
		b->mode = v;
		if (strcmp(v, "all_or_nothing") != 0 && strcmp(v, "best_effort") != 0)
			return "must be all_or_nothing or best_effort";
	} else if (strcmp(n, "dry_run") == 0) {
		if (!http_query_bool(v, &yes))
			return "must be true or false";
		b->dry_run = yes == 1;
	}
	return NULL;
}

/* The format (fmt when not given), type, mode and dry_run parameters; type is required for CSV.
   0 or -1 with the reply. */
static int bulk_query(struct MHD_Connection *conn, const char *const *allowed, enum bulk_format fmt,
                      struct bulk_query *b, struct http_reply *err_r)
{
	struct http_query c;
	http_query_collect(conn, &c);
	*b = (struct bulk_query){
		.fmt = fmt, .kinds = ALL_KINDS, .mode = "all_or_nothing", .kind = RESOURCE_DOMAIN
	};
	bool typed = false;
	for (size_t i = 0; i < c.n; i++) {
		const char *n = c.p[i].name, *why = NULL;
		bool known = false;
		for (size_t k = 0; allowed[k] != NULL; k++)
			known |= strcmp(allowed[k], n) == 0;
		if (!known || c.too_many || c.too_long)
			why = "is not a parameter here";
		else
			why = bulk_param(n, c.p[i].value, b, &typed);
		if (why != NULL) {
			*err_r = http_query_error(n, why);
			return -1;
		}
	}
	if (b->fmt == BULK_CSV && !typed) {
		*err_r = http_error_field(400, "missing_parameter", "type",
		                          "a CSV file holds one type: give type=domains, mailboxes "
		                          "or aliases");
		return -1;
	}
	return 0;
}

struct http_reply http_admin_export(struct http_server *srv, struct MHD_Connection *conn,
                                    struct http_request *req)
{
	(void)req;
	struct bulk_query b;
	struct http_reply r;
	const char *error;
	if (bulk_query(conn, export_params, BULK_NDJSON, &b, &r) < 0)
		return r;
	struct export_stream *s = xcalloc(1, sizeof(*s));
	s->fmt = b.fmt;
	buf_init(&s->header, CSV_HEADER_MAX);
	s->x = admin_export_open(srv->admin, b.kinds, &error);
	if (s->x == NULL) {
		buf_free(&s->header);
		free(s);
		return http_admin_unavailable(error);
	}
	if (b.fmt == BULK_CSV && bulk_csv_header(b.kind, &s->header) < 0)
		abort(); /* a header is under 200 bytes, CSV_HEADER_MAX far more */
	struct MHD_Response *resp = http_stream_new(srv, conn, export_produce, export_done, s);
	if (resp == NULL) {
		export_done(s);
		return http_busy("too many exports run at once; retry later");
	}
	return http_reply_stream(resp, b.fmt == BULK_CSV ? "text/csv; charset=utf-8"
	                                                 : "application/x-ndjson");
}

/* Whether an import's Content-Type is one it reads (none: it is read as given by format). */
static bool import_type_ok(struct MHD_Connection *conn)
{
	static const struct {
		const char *prefix;
		size_t len;
	} types[] = { { "application/x-ndjson", 20 },
		      { "application/ndjson", 18 },
		      { "text/csv", 8 },
		      { "text/plain", 10 } };
	const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
	for (size_t i = 0; ctype != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strncasecmp(ctype, types[i].prefix, types[i].len) == 0)
			return true;
	return ctype == NULL;
}

/* The 200 or 422 report of an import. */
static struct http_reply import_report(const struct bulk_query *b, int prc, size_t rows,
                                       const struct admin_import_counts *counts, bool applied,
                                       const struct bulk_errors *errs)
{
	json_t *list = json_array();
	for (size_t i = 0; i < errs->n; i++) {
		const struct bulk_error *e = &errs->list[i];
		json_t *o = json_pack("{s:I, s:s, s:s}", "line", (json_int_t)e->line, "error",
		                      e->code, "message", e->message);
		if (e->field[0] != '\0')
			json_object_set_new(o, "field", json_string(e->field));
		json_array_append_new(list, o);
	}
	bool all = strcmp(b->mode, "all_or_nothing") == 0;
	bool failed = prc < 0 || (all && errs->total > 0);
	json_t *doc = json_pack(
	        "{s:b, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:I}", "applied", applied, "dry_run",
	        b->dry_run, "mode", b->mode, "rows", (json_int_t)(prc < 0 ? 0 : rows), "created",
	        (json_int_t)counts->created, "updated", (json_int_t)counts->updated, "unchanged",
	        (json_int_t)counts->unchanged, "failed", (json_int_t)counts->failed, "errors", list,
	        "errors_total", (json_int_t)errs->total);
	if (failed) {
		json_object_set_new(doc, "error", json_string("import_failed"));
		json_object_set_new(doc, "message",
		                    json_string(prc < 0 ? "the file cannot be read"
		                                        : "some rows are invalid: nothing was "
		                                          "imported"));
	}
	return http_reply_json(failed ? 422 : 200, doc);
}

struct http_reply http_admin_import(struct http_server *srv, struct MHD_Connection *conn,
                                    struct http_request *req)
{
	struct bulk_query b;
	struct http_reply r;
	/* a body sent as text/csv is CSV unless format= says otherwise */
	const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
	bool csv = ctype != NULL && strncasecmp(ctype, "text/csv", 8) == 0;
	if (bulk_query(conn, import_params, csv ? BULK_CSV : BULK_NDJSON, &b, &r) < 0)
		return r;
	if (!import_type_ok(conn))
		return http_error(415, "unsupported_media_type",
		                  "an import is application/x-ndjson or text/csv");
	struct bulk_errors *errs = xcalloc(1, sizeof(*errs));
	struct bulk_row *rows = NULL;
	size_t n = 0;
	int prc = bulk_parse(b.fmt, b.kind, req->body.data != NULL ? req->body.data : "",
	                     req->body.len, &rows, &n, errs);
	size_t unreadable = errs->total; /* rows that did not even parse */
	/* every row through the same checks as a single create */
	struct admin_import_row *todo = xcalloc(n ? n : 1, sizeof(*todo));
	json_t **owned = xcalloc(n ? n : 1, sizeof(*owned));
	size_t ntodo = 0;
	for (size_t i = 0; prc == 0 && i < n; i++) {
		struct resource_error e;
		struct admin_import_row *t = &todo[ntodo];
		if (resource_check(rows[i].kind, RESOURCE_CREATE, rows[i].obj,
		                   &srv->cfg->address_rules, &t->key, &owned[ntodo], &e) < 0) {
			char msg[200]; /* cut on purpose */
			snprintf(msg, sizeof(msg), "%s%s%s", e.field, e.field[0] ? ": " : "",
			         e.reason);
			bulk_error_add(errs, rows[i].line, e.field, e.code, msg);
			continue;
		}
		t->line = rows[i].line;
		t->kind = rows[i].kind;
		t->fields = owned[ntodo];
		ntodo++;
	}
	bool all = strcmp(b.mode, "all_or_nothing") == 0;
	size_t invalid = errs->total;
	struct admin_import_counts counts = { 0 };
	bool applied = false;
	int rc = 0;
	const char *error = NULL;
	/* with invalid rows, an all-or-nothing import still runs the valid ones, rolled back, so
	   the report names every problem the database would find too */
	if (prc == 0 && ntodo > 0)
		rc = admin_import(srv->admin, todo, ntodo, all, b.dry_run || (all && invalid > 0),
		                  req->tok.id, &counts, errs, &applied, &error);
	counts.failed += invalid;
	if (rc < 0)
		r = http_db_unavailable("the database cannot be reached; nothing was imported");
	else
		r = import_report(&b, prc, n + unreadable, &counts, applied, errs);
	for (size_t i = 0; i < ntodo; i++)
		json_decref(owned[i]);
	free(owned);
	free(todo);
	bulk_rows_free(rows, n);
	free(errs);
	return r;
}
