/*
 * cli_warnings: `mailquota warnings ...`: the warning settings (installation and per domain)
 * through GET and PATCH /v1/warnings/settings, and the list of warning events. Arguments are
 * NAME=VALUE words turned into the JSON the API takes; the API checks the values (the command
 * only refuses what it cannot turn into JSON).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "strnum.h"
#include "warning.h"

#define SETTINGS_PATH "/v1/warnings/settings"

/* "80,90,100" as a JSON array of integers ("" and "none": empty); NULL when malformed. */
static json_t *number_list(const char *s)
{
	json_t *a = json_array();
	if (strcmp(s, "none") == 0 || s[0] == '\0')
		return a;
	while (*s != '\0') {
		size_t len = strcspn(s, ",");
		uint64_t v;
		if (strnum_u64(s, len, WARNING_THRESHOLD_MAX * 10ULL, &v) < 0) {
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, json_integer((json_int_t)v));
		s += len + (s[len] == ',');
	}
	return a;
}

/* "webhook,mail" as a JSON array of strings ("none": empty). */
static json_t *word_list(const char *s)
{
	json_t *a = json_array();
	if (strcmp(s, "none") == 0)
		return a;
	while (*s != '\0') {
		size_t len = strcspn(s, ",");
		json_array_append_new(a, json_stringn(s, len));
		s += len + (s[len] == ',');
	}
	return a;
}

/*
 * NAME=VALUE words into obj: thresholds=LIST, hysteresis=N, and with all, channels=LIST;
 * "inherit" as a value (domains only) is null. 0, or -1 after printing why.
 */
static int settings_args(int argc, char **argv, bool all, json_t *obj)
{
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		size_t nlen = eq != NULL ? (size_t)(eq - argv[i]) : 0;
		const char *v = eq != NULL ? eq + 1 : "";
		json_t *val = NULL;
		uint64_t n;
		bool inherit = !all && strcmp(v, "inherit") == 0;
		if (nlen == 10 && strncmp(argv[i], "thresholds", 10) == 0)
			val = inherit ? json_null() : number_list(v);
		else if (nlen == 10 && strncmp(argv[i], "hysteresis", 10) == 0)
			val = inherit ? json_null()
			      : strnum_u64(v, strlen(v), 1000, &n) == 0
			              ? json_integer((json_int_t)n)
			              : NULL;
		else if (all && nlen == 8 && strncmp(argv[i], "channels", 8) == 0)
			val = word_list(v);
		if (val == NULL) {
			fprintf(stderr,
			        "mailquota: %s: want thresholds=80,90,100 (or none), "
			        "hysteresis=N%s\n",
			        argv[i],
			        all ? " or channels=webhook,mail (or none)"
			            : " (either may be inherit)");
			return -1;
		}
		json_object_setn_new(obj, argv[i], nlen, val);
	}
	return 0;
}

static void print_thresholds(json_t *t)
{
	size_t i;
	json_t *v;
	if (json_is_null(t) || t == NULL) {
		printf("inherited");
		return;
	}
	if (json_array_size(t) == 0)
		printf("none");
	json_array_foreach(t, i, v)
	        printf("%s%lld %%", i > 0 ? ", " : "", (long long)json_integer_value(v));
}

static void print_settings(const struct ctx *ctx, json_t *doc)
{
	if (ctx->json) {
		cli_print_json(doc);
		return;
	}
	printf("thresholds: ");
	print_thresholds(json_object_get(doc, "thresholds"));
	printf("\nhysteresis: %lld points\nchannels:   ",
	       (long long)json_integer_value(json_object_get(doc, "hysteresis")));
	size_t i;
	json_t *v;
	json_t *ch = json_object_get(doc, "channels");
	if (json_array_size(ch) == 0)
		printf("none (events are recorded, not delivered)");
	json_array_foreach(ch, i, v) printf("%s%s", i > 0 ? ", " : "", json_string_value(v));
	printf("\n");
	const char *name;
	json_object_foreach(json_object_get(doc, "domains"), name, v)
	{
		json_t *h = json_object_get(v, "hysteresis");
		printf("domain %s: thresholds ", name);
		print_thresholds(json_object_get(v, "thresholds"));
		if (json_is_null(h))
			printf(", hysteresis inherited\n");
		else
			printf(", hysteresis %lld points\n", (long long)json_integer_value(h));
	}
}

/* PATCH body (NULL: GET) and print the settings. */
static int settings_call(struct ctx *ctx, json_t *body)
{
	struct api_response r;
	int rc = cli_call(ctx, "warnings", body != NULL ? "PATCH" : "GET", SETTINGS_PATH, body,
	                  NULL, &r);
	json_decref(body);
	if (rc != 0)
		return rc;
	print_settings(ctx, r.doc);
	api_response_free(&r);
	return 0;
}

int cmd_warnings_settings(struct ctx *ctx, int argc, char **argv)
{
	(void)argc, (void)argv;
	return settings_call(ctx, NULL);
}

int cmd_warnings_set(struct ctx *ctx, int argc, char **argv)
{
	json_t *body = json_object();
	if (settings_args(argc, argv, true, body) < 0) {
		json_decref(body);
		return EXIT_USAGE;
	}
	return settings_call(ctx, body);
}

int cmd_warnings_domain(struct ctx *ctx, int argc, char **argv)
{
	struct resource_key key;
	if (cli_check_key(ctx, RESOURCE_DOMAIN, argv[0], &key) < 0)
		return EXIT_USAGE;
	json_t *own = json_object();
	if (argc == 2 && strcmp(argv[1], "inherit") == 0) {
		json_decref(own);
		own = json_null();
	} else if (settings_args(argc - 1, argv + 1, false, own) < 0) {
		json_decref(own);
		return EXIT_USAGE;
	}
	json_t *body = json_pack("{s:{s:o}}", "domains", key.domain, own);
	return settings_call(ctx, body);
}

/* "pending/1 failed/3": each delivery's state and tries, or "-" (recorded only). */
static void print_warning_row(const struct ctx *ctx, json_t *ev)
{
	struct size_text u, l;
	bool storage = strcmp(json_string_value(json_object_get(ev, "resource")), "storage") == 0;
	long long used = (long long)json_integer_value(json_object_get(ev, "used"));
	long long lim = (long long)json_integer_value(json_object_get(ev, "limit"));
	char figures[64], deliveries[80] = "";
	if (storage)
		snprintf(figures, sizeof(figures), "%s/%s", cli_size(ctx, used, &u),
		         cli_size(ctx, lim, &l));
	else
		snprintf(figures, sizeof(figures), "%lld/%lld msgs", used, lim);
	size_t i, off = 0;
	json_t *d;
	json_array_foreach(json_object_get(ev, "deliveries"), i, d)
	{
		int n = snprintf(deliveries + off, sizeof(deliveries) - off, "%s%s:%s/%lld",
		                 i > 0 ? " " : "", json_string_value(json_object_get(d, "channel")),
		                 json_string_value(json_object_get(d, "state")),
		                 (long long)json_integer_value(json_object_get(d, "tries")));
		if (n < 0 || (size_t)n >= sizeof(deliveries) - off)
			break;
		off += (size_t)n;
	}
	printf("%-27s %-30s %-8s %4lld%% %-22s %s\n",
	       json_string_value(json_object_get(ev, "created_at")),
	       json_string_value(json_object_get(ev, "mailbox")), storage ? "storage" : "messages",
	       (long long)json_integer_value(json_object_get(ev, "threshold")), figures,
	       off > 0 ? deliveries : "-");
}

int cmd_warnings_list(struct ctx *ctx, int argc, char **argv)
{
	static char header[160];
	snprintf(header, sizeof(header), "%-27s %-30s %-8s %5s %-22s %s", "AT", "MAILBOX",
	         "RESOURCE", "LEVEL", "USED/LIMIT", "DELIVERIES (channel:state/tries)");
	const struct cli_log log = { "/v1/warnings", header, print_warning_row };
	return cli_log_list(ctx, &log, argc, argv);
}
