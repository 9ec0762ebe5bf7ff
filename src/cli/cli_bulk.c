/*
 * cli_bulk: mailquota import and export. An import file is sent whole in one request (one
 * transaction on the server) and every bad row the API reports is printed as FILE:LINE; an
 * export streams the API's answer to standard output as it arrives. It must never read more
 * than BULK_BODY_MAX of a file, nor hold an export in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "bulk.h"
#include "cli.h"

#define BULK_PATH_MAX (CLI_QUERY_MAX + 64) /* "/v1/import" and the query */

/* format=, type=, mode=, dry_run= arguments as a query string ("" or "?a=b&c=d") into q;
   -1 (reported) on any other argument or a query over CLI_QUERY_MAX. */
static int bulk_query(struct ctx *ctx, int argc, char **argv, const char *const *allowed,
                      struct buf *q)
{
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		bool ok = false;
		for (const char *const *a = allowed; eq != NULL && *a != NULL; a++)
			ok |= strlen(*a) == (size_t)(eq - argv[i]) &&
			      strncmp(*a, argv[i], strlen(*a)) == 0;
		if (!ok) {
			fprintf(stderr, "mailquota: unexpected argument \"%s\"\n", argv[i]);
			return -1;
		}
		char *v = api_escape(cli_api(ctx), eq + 1);
		int rc = buf_printf(q, "%s%.*s=%s", q->len ? "&" : "?", (int)(eq - argv[i]),
		                    argv[i], v);
		free(v);
		if (rc < 0) {
			fprintf(stderr, "mailquota: the arguments make a query over %d bytes\n",
			        CLI_QUERY_MAX);
			return -1;
		}
	}
	return 0;
}

/* "/v1/<what><query>" into path (bounded so that any query fits). */
static void bulk_path(struct buf *path, const char *what, const struct buf *q)
{
	buf_init(path, BULK_PATH_MAX);
	if (buf_printf(path, "/v1/%s%s", what, q->data != NULL ? q->data : "") < 0)
		abort(); /* BULK_PATH_MAX leaves room for the longest query and route */
}

/* export [format=ndjson|csv] [type=domains|mailboxes|aliases]: to standard output */
int cmd_export(struct ctx *ctx, int argc, char **argv)
{
	static const char *const allowed[] = { "format", "type", NULL };
	struct buf q, path;
	buf_init(&q, CLI_QUERY_MAX);
	if (bulk_query(ctx, argc, argv, allowed, &q) < 0) {
		buf_free(&q);
		return EXIT_USAGE;
	}
	bulk_path(&path, "export", &q);
	struct api_response r;
	const char *err;
	int rc = 0;
	if (api_call_raw(cli_api(ctx), "GET", path.data, NULL, NULL, 0, stdout, false, &r, &err) <
	    0)
		rc = cli_api_error("export", &r, err); /* a cut stream ends here too */
	else if (r.status != 200)
		rc = cli_api_error("export", &r, NULL);
	else if (fflush(stdout) != 0)
		rc = cli_fail("export", strerror(errno));
	api_response_free(&r);
	buf_free(&q);
	buf_free(&path);
	return rc;
}

/* A file (or standard input: "-") into data, which holds at most BULK_BODY_MAX: 0, or -1
   with *error_r (static, or strerror's). */
static int read_file(const char *name, struct buf *data, const char **error_r)
{
	FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
	if (f == NULL) {
		*error_r = strerror(errno);
		return -1;
	}
	char chunk[65536];
	size_t n;
	int rc = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(data, chunk, n) < 0) {
			*error_r = "larger than 32 MiB: split it";
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		*error_r = strerror(errno);
		rc = -1;
	}
	if (f != stdin)
		fclose(f);
	return rc;
}

/* The API's import report: every bad row as FILE:LINE: field: reason, then a summary. */
static void print_import(const char *file, json_t *d)
{
	size_t i;
	json_t *e, *errors = json_object_get(d, "errors");
	json_array_foreach(errors, i, e)
	{
		const char *fld = json_string_value(json_object_get(e, "field"));
		fprintf(stderr, "%s:%lld: %s%s%s\n", file,
		        (long long)json_integer_value(json_object_get(e, "line")),
		        fld != NULL ? fld : "", fld != NULL ? ": " : "",
		        json_string_value(json_object_get(e, "message")));
	}
	long long total = json_integer_value(json_object_get(d, "errors_total"));
	if (total > (long long)json_array_size(errors))
		fprintf(stderr, "... and %lld more errors\n",
		        total - (long long)json_array_size(errors));
	printf("%s: %lld rows: %lld created, %lld updated, %lld unchanged, %lld failed; %s\n", file,
	       (long long)json_integer_value(json_object_get(d, "rows")),
	       (long long)json_integer_value(json_object_get(d, "created")),
	       (long long)json_integer_value(json_object_get(d, "updated")),
	       (long long)json_integer_value(json_object_get(d, "unchanged")),
	       (long long)json_integer_value(json_object_get(d, "failed")),
	       json_is_true(json_object_get(d, "applied"))   ? "applied"
	       : json_is_true(json_object_get(d, "dry_run")) ? "dry run: nothing applied"
	                                                     : "nothing applied");
}

/* import FILE [format=] [type=] [mode=] [dry_run=]: one request, one transaction */
int cmd_import(struct ctx *ctx, int argc, char **argv)
{
	static const char *const allowed[] = { "format", "type", "mode", "dry_run", NULL };
	struct buf q, path, data;
	const char *err;
	int rc;
	buf_init(&q, CLI_QUERY_MAX);
	if (bulk_query(ctx, argc - 1, argv + 1, allowed, &q) < 0) {
		buf_free(&q);
		return EXIT_USAGE;
	}
	/* the format from the file name when not given */
	const char *query = q.data != NULL ? q.data : "";
	size_t fl = strlen(argv[0]);
	bool csv = strstr(query, "format=csv") != NULL ||
	           (strstr(query, "format=") == NULL && fl > 4 &&
	            strcmp(argv[0] + fl - 4, ".csv") == 0);
	if (csv && strstr(query, "format=") == NULL &&
	    buf_printf(&q, "%sformat=csv", q.len ? "&" : "?") < 0) {
		buf_free(&q);
		return cli_fail(argv[0], "the arguments make too long a query");
	}
	buf_init(&data, BULK_BODY_MAX);
	if (read_file(argv[0], &data, &err) < 0) {
		buf_free(&q);
		buf_free(&data);
		return cli_fail(argv[0], err);
	}
	bulk_path(&path, "import", &q);
	struct api_response r;
	bool tty = isatty(STDERR_FILENO) && !ctx->json;
	if (api_call_raw(cli_api(ctx), "POST", path.data, csv ? "text/csv" : "application/x-ndjson",
	                 data.data != NULL ? data.data : "", data.len, NULL, tty, &r, &err) < 0) {
		rc = cli_api_error("import", &r, err);
		goto out;
	}
	if (r.status != 200 && r.status != 422) {
		rc = cli_api_error("import", &r, NULL);
		api_response_free(&r);
		goto out;
	}
	if (ctx->json)
		cli_print_json(r.doc);
	else
		print_import(argv[0], r.doc);
	rc = r.status == 200 && json_integer_value(json_object_get(r.doc, "failed")) == 0
	             ? 0
	             : EXIT_FAIL;
	api_response_free(&r);
out:
	buf_free(&q);
	buf_free(&path);
	buf_free(&data);
	return rc;
}
