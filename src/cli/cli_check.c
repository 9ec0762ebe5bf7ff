/*
 * cli_check: mailquota check, and the account of a mailbox's limits and usage that check and
 * usage get print. It asks the daemon the question Postfix asks (GET /v1/check) and turns the
 * verdict into the exit code; it must never decide anything itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "strnum.h"

static void print_limit(const char *name, json_t *limit, json_t *used)
{
	if (!json_is_integer(limit))
		printf("  %-18s %lld used, unlimited\n", name, (long long)json_integer_value(used));
	else
		printf("  %-18s %lld used of %lld, %lld left\n", name,
		       (long long)json_integer_value(used), (long long)json_integer_value(limit),
		       json_integer_value(used) > json_integer_value(limit)
		               ? 0LL
		               : (long long)(json_integer_value(limit) - json_integer_value(used)));
}

void cli_print_state(json_t *m)
{
	json_t *l = json_object_get(m, "limits"), *u = json_object_get(m, "usage"),
	       *d = json_object_get(m, "domain");
	print_limit("storage", json_object_get(l, "storage_bytes"), json_object_get(u, "bytes"));
	print_limit("messages", json_object_get(l, "messages"), json_object_get(u, "messages"));
	print_limit("domain pool", json_object_get(d, "pool_limit_bytes"),
	            json_object_get(d, "pool_used_bytes"));
	json_t *mx = json_object_get(l, "max_message_size"),
	       *dx = json_object_get(d, "max_message_size");
	if (json_is_integer(mx))
		printf("  %-18s %lld\n", "max message size", (long long)json_integer_value(mx));
	else
		printf("  %-18s unlimited\n", "max message size");
	if (json_is_integer(dx))
		printf("  %-18s %lld\n", "domain max size", (long long)json_integer_value(dx));
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

static void print_check(json_t *d, uint64_t size)
{
	const char *reason = json_string_value(json_object_get(d, "reason"));
	printf("recipient: %s (%s)\n", json_string_value(json_object_get(d, "address")),
	       json_string_value(json_object_get(d, "match")));
	printf("size:      %llu\n", (unsigned long long)size);
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
		cli_print_state(m);
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
		print_check(r.doc, size);
	int rc = verdict_exit(verdict);
	api_response_free(&r);
	return rc;
}
