/*
 * cli_stats: `mailquota stats [top=N]`, the installation's totals from GET /v1/stats: one line
 * per figure, named by its place in the API's document ("mailboxes.over_quota"), sizes for
 * people unless --bytes; then the largest domains as a table with the domain table's usage
 * columns, which the domain table ends with too (cli_print_usage_row()). --json prints the
 * API's document. It must never print a figure under a name the API's document does not have
 * (a figure it lacks is left out).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "strnum.h"

#define STATS_NAME_WIDTH   24 /* "mailboxes.over_quota" and more */
#define STATS_PATH_MAX     32 /* "/v1/stats?top=" and up to three digits */
#define STATS_DOMAIN_WIDTH 32

/* The usage columns of a domain (its document's usage object): after its fields in the domain
   table (cli_objects.c), after its name in the top list here. */
static const struct {
	const char *head;
	const char *member;
	int width;
	bool size;
} usage_columns[] = {
	{ "MAILBOXES", "mailboxes", 9, false },
	{ "OVER", "over_quota", 7, false },
	{ "USED", "bytes", 13, true },
	{ "POOL%", "pool_percent", 7, false },
};
#define USAGE_COLUMNS (sizeof(usage_columns) / sizeof(usage_columns[0]))

void cli_print_usage_header(void)
{
	for (size_t i = 0; i < USAGE_COLUMNS; i++)
		printf(" %*s", usage_columns[i].width, usage_columns[i].head);
}

void cli_print_usage_row(const struct ctx *ctx, json_t *usage)
{
	for (size_t i = 0; i < USAGE_COLUMNS; i++) {
		json_t *v = json_object_get(usage, usage_columns[i].member);
		int w = usage_columns[i].width;
		struct size_text t;
		if (json_is_integer(v) && usage_columns[i].size)
			printf(" %*s", w, cli_size(ctx, (long long)json_integer_value(v), &t));
		else if (json_is_integer(v))
			printf(" %*lld", w, (long long)json_integer_value(v));
		else if (json_is_real(v))
			printf(" %*.1f", w,
			       json_real_value(v)); /* a percentage, as the tables show */
		else
			printf(" %*s", w, "-");
	}
}

/* name value, value as its member's kind: a size in bytes ("bytes"), a count, a time. */
static void put_line(const struct ctx *ctx, const char *name, const char *member, json_t *v)
{
	struct size_text t;
	if (json_is_integer(v) && strcmp(member, "bytes") == 0)
		printf("%-*s %s\n", STATS_NAME_WIDTH, name,
		       cli_size(ctx, (long long)json_integer_value(v), &t));
	else if (json_is_integer(v))
		printf("%-*s %lld\n", STATS_NAME_WIDTH, name, (long long)json_integer_value(v));
	else if (json_is_string(v))
		printf("%-*s %s\n", STATS_NAME_WIDTH, name, json_string_value(v));
}

/* The figures in the order people read them, by their place in the document. */
static const char *const figures[] = {
	"as_of",           "domains.total",     "domains.over_quota", "domains.pool_full",
	"mailboxes.total", "mailboxes.enabled", "mailboxes.disabled", "mailboxes.over_quota",
	"aliases.total",   "aliases.catch_all", "usage.bytes",        "usage.messages",
	"pending_deltas",
};

/* Every figure of figures[] the document has, one a line. */
static void print_totals(const struct ctx *ctx, json_t *doc)
{
	for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]); i++) {
		const char *dot = strchr(figures[i], '.');
		json_t *v = doc;
		if (dot != NULL) {
			char obj[STATS_NAME_WIDTH];
			/* the names above are shorter */
			snprintf(obj, sizeof(obj), "%.*s", (int)(dot - figures[i]), figures[i]);
			v = json_object_get(doc, obj);
		}
		const char *member = dot != NULL ? dot + 1 : figures[i];
		put_line(ctx, figures[i], member, json_object_get(v, member));
	}
}

int cmd_stats(struct ctx *ctx, int argc, char **argv)
{
	char path[STATS_PATH_MAX] = "/v1/stats";
	if (argc == 1) {
		uint64_t top;
		if (strncmp(argv[0], "top=", 4) != 0 ||
		    strnum_u64(argv[0] + 4, strlen(argv[0] + 4), 100, &top) < 0) {
			fprintf(stderr, "mailquota: stats: want top=N, N from 0 to 100\n");
			return EXIT_USAGE;
		}
		/* at most three digits: fits */
		snprintf(path, sizeof(path), "/v1/stats?top=%llu", (unsigned long long)top);
	}
	struct api_response r;
	int rc = cli_call(ctx, "stats", "GET", path, NULL, NULL, &r);
	if (rc != 0)
		return rc;
	if (ctx->json) {
		cli_print_json(r.doc);
		api_response_free(&r);
		return 0;
	}
	print_totals(ctx, r.doc);
	json_t *top = json_object_get(r.doc, "top_domains");
	if (json_array_size(top) > 0) {
		printf("\n%-*s", STATS_DOMAIN_WIDTH, "DOMAIN");
		cli_print_usage_header();
		printf("\n");
		size_t i;
		json_t *d;
		json_array_foreach(top, i, d)
		{
			printf("%-*s", STATS_DOMAIN_WIDTH,
			       json_string_value(json_object_get(d, "name")));
			cli_print_usage_row(ctx, json_object_get(d, "usage"));
			printf("\n");
		}
	}
	api_response_free(&r);
	return 0;
}
