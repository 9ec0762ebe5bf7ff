/*
 * cli_check: mailquota check, and the account of a mailbox's limits and usage that check and
 * usage get print. It asks the daemon the question Postfix asks (GET /v1/check) and turns the
 * verdict into the exit code; it must never decide anything itself. Sizes are shown as
 * cli_size shows them ("7.5 MiB", byte counts with --bytes), message counts as numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "strnum.h"

/* A figure of a limit line: a size as cli_size shows it, else (sizes NULL) a count. */
static const char *figure(const struct ctx *sizes, long long n, struct size_text *out)
{
	if (sizes != NULL)
		return cli_size(sizes, n, out);
	snprintf(out->s, sizeof(out->s), "%lld", n); /* room for any 64-bit number */
	return out->s;
}

/* "name  U used of L, R left" (or "U used, unlimited"); sizes: the run when the figures are
   bytes, NULL when they are message counts. */
static void print_limit(const struct ctx *sizes, const char *name, json_t *limit, json_t *used)
{
	struct size_text u, l, r;
	long long uv = (long long)json_integer_value(used);
	long long lv = (long long)json_integer_value(limit);
	if (!json_is_integer(limit))
		printf("  %-18s %s used, unlimited\n", name, figure(sizes, uv, &u));
	else
		printf("  %-18s %s used of %s, %s left\n", name, figure(sizes, uv, &u),
		       figure(sizes, lv, &l), figure(sizes, uv > lv ? 0LL : lv - uv, &r));
}

void cli_print_state(const struct ctx *ctx, json_t *m)
{
	json_t *l = json_object_get(m, "limits"), *u = json_object_get(m, "usage"),
	       *d = json_object_get(m, "domain");
	struct size_text t;
	print_limit(ctx, "storage", json_object_get(l, "storage_bytes"),
	            json_object_get(u, "bytes"));
	print_limit(NULL, "messages", json_object_get(l, "messages"),
	            json_object_get(u, "messages"));
	print_limit(ctx, "domain pool", json_object_get(d, "pool_limit_bytes"),
	            json_object_get(d, "pool_used_bytes"));
	json_t *mx = json_object_get(l, "max_message_size"),
	       *dx = json_object_get(d, "max_message_size");
	if (json_is_integer(mx))
		printf("  %-18s %s\n", "max message size",
		       cli_size(ctx, (long long)json_integer_value(mx), &t));
	else
		printf("  %-18s unlimited\n", "max message size");
	if (json_is_integer(dx))
		printf("  %-18s %s\n", "domain max size",
		       cli_size(ctx, (long long)json_integer_value(dx), &t));
}

/* The exit code of a check's verdict, by the API's names (api-docs/openapi.yaml, Verdict). */
static int verdict_exit(const char *verdict)
{
	static const struct {
		const char *verdict;
		int exit;
	} exits[] = {
		{ "accept", 0 },
		{ "unknown", EXIT_NOTFOUND },
		{ "tempfail", EXIT_TEMP },
	};
	if (verdict == NULL)
		return EXIT_FAIL; /* not an answer to a check */
	for (size_t i = 0; i < sizeof(exits) / sizeof(exits[0]); i++)
		if (strcmp(exits[i].verdict, verdict) == 0)
			return exits[i].exit;
	return EXIT_REFUSED; /* over_quota and the too-big verdicts: every other one refuses */
}

static void print_check(const struct ctx *ctx, json_t *d, uint64_t size)
{
	const char *reason = json_string_value(json_object_get(d, "reason"));
	struct size_text t;
	printf("recipient: %s (%s)\n", json_string_value(json_object_get(d, "address")),
	       json_string_value(json_object_get(d, "match")));
	/* size <= INT64_MAX: cmd_check parsed it so */
	printf("size:      %s\n", cli_size(ctx, (long long)size, &t));
	printf("verdict:   %s", json_string_value(json_object_get(d, "verdict")));
	if (reason != NULL && strcmp(reason, "none") != 0)
		printf(" (%s)", reason);
	printf("\naction:    %s\n", json_string_value(json_object_get(d, "action")));
	json_t *targets = json_object_get(d, "targets"), *one = json_object_get(d, "mailbox");
	size_t i;
	json_t *m;
	if (!json_is_array(targets) && json_is_object(one)) {
		targets = json_array();
		json_array_append(targets, one);
	} else {
		json_incref(targets);
	}
	json_array_foreach(targets, i, m)
	{
		printf("mailbox %s: %s\n", json_string_value(json_object_get(m, "address")),
		       json_string_value(json_object_get(m, "verdict")));
		cli_print_state(ctx, m);
	}
	json_decref(targets);
}

int cmd_check(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	uint64_t size;
	if (strnum_size(argv[1], INT64_MAX, &size) < 0) {
		fprintf(stderr, "mailquota: %s is not a size\n", argv[1]);
		return EXIT_USAGE;
	}
	char *rcpt = api_escape(cli_api(ctx), argv[0]);
	char path[1024];
	int pn = snprintf(path, sizeof(path), "/v1/check?recipient=%s&size=%llu", rcpt,
	                  (unsigned long long)size);
	free(rcpt);
	if (pn < 0 || (size_t)pn >= sizeof(path)) {
		fprintf(stderr, "mailquota: %s: address too long\n", argv[0]);
		return EXIT_USAGE;
	}
	struct api_response r;
	const char *err;
	if (api_call(cli_api(ctx), "GET", path, NULL, NULL, &r, &err) < 0)
		return cli_api_error("check", &r, err);
	if (r.status == 400) {
		cli_api_error(argv[0], &r, NULL);
		api_response_free(&r);
		return EXIT_USAGE;
	}
	if (r.status != 200) {
		int rc = cli_api_error("check", &r, NULL);
		api_response_free(&r);
		return rc;
	}
	const char *verdict = json_string_value(json_object_get(r.doc, "verdict"));
	if (ctx->json)
		cli_print_json(r.doc);
	else
		print_check(ctx, r.doc, size);
	int rc = verdict_exit(verdict);
	api_response_free(&r);
	return rc;
}
