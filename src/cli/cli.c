/*
 * mailquota: the administrative command line. Every command but `migrate` and
 * `token bootstrap` talks to a daemon's HTTP API (URL and token from -u / MAILQUOTA_URL /
 * api_url and MAILQUOTA_TOKEN / api_token_file), so the CLI does exactly what a panel can do,
 * with the same checks, audit records and errors. Commands are rows of one table, their
 * functions in the cli_<group>.c files (see cli.h); output is a table for humans (sizes in
 * binary units, "7.5 MiB", or byte counts with --bytes), or JSON with --json. This file holds
 * main, the global options, the table and the helpers that reach the API; it must never print
 * the token. Exit codes: see usage().
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fields.h"
#include "log.h"
#include "version.h"
#include "xalloc.h"

#define TOKEN_FILE_MAX 512
#define ETAG_MAX       63 /* --if-match: the API's ETags are "<id>.<version>" */

struct command {
	const char *noun;
	const char *verb; /* NULL: the noun alone is the command */
	int min_args, max_args;
	cmd_fn fn;
	const char *args;
	const char *help;
};

int cli_fail(const char *what, const char *err)
{
	fprintf(stderr, "mailquota: %s: %s\n", what, err);
	return EXIT_FAIL;
}

/* ---- the API connection ---- */

/* The token: MAILQUOTA_TOKEN, else the first line of api_token_file; NULL if neither. */
static char *load_token(const struct config *cfg)
{
	const char *env = getenv("MAILQUOTA_TOKEN");
	if (env != NULL && env[0] != '\0')
		return xstrdup(env);
	if (cfg->api_token_file[0] == '\0')
		return NULL;
	FILE *f = fopen(cfg->api_token_file, "r");
	if (f == NULL) {
		fprintf(stderr, "mailquota: api_token_file %s: %s\n", cfg->api_token_file,
		        strerror(errno));
		return NULL;
	}
	char line[TOKEN_FILE_MAX];
	char *tok = fgets(line, sizeof(line), f) != NULL ? line : NULL;
	fclose(f);
	if (tok == NULL)
		return NULL;
	tok[strcspn(tok, "\r\n \t")] = '\0';
	char *out = xstrdup(tok);
	explicit_bzero(line, sizeof(line));
	return out;
}

/* The API's base URL: -u, MAILQUOTA_URL, api_url, else http:// and http_listen (a wildcard
   listen address is reached on loopback). */
int cli_api_url(struct ctx *ctx, char *out, size_t size)
{
	const char *env = getenv("MAILQUOTA_URL");
	const char *u = ctx->url_opt != NULL            ? ctx->url_opt
	                : env != NULL && env[0] != '\0' ? env
	                : ctx->cfg.api_url[0] != '\0'   ? ctx->cfg.api_url
	                                                : NULL;
	int n;
	if (u != NULL) {
		n = snprintf(out, size, "%s", u);
	} else {
		const char *l = ctx->cfg.http_listen;
		if (l[0] == '\0')
			return -1;
		if (strncmp(l, "0.0.0.0:", 8) == 0)
			n = snprintf(out, size, "http://127.0.0.1:%s", l + 8);
		else if (strncmp(l, "[::]:", 5) == 0)
			n = snprintf(out, size, "http://[::1]:%s", l + 5);
		else
			n = snprintf(out, size, "http://%s", l);
	}
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

struct api_client *cli_api(struct ctx *ctx)
{
	if (ctx->api != NULL)
		return ctx->api;
	char url[API_URL_MAX];
	if (cli_api_url(ctx, url, sizeof(url)) < 0) {
		fprintf(stderr, "mailquota: no API to talk to: set api_url, MAILQUOTA_URL or -u\n");
		exit(EXIT_USAGE);
	}
	char *tok = load_token(&ctx->cfg);
	if (tok == NULL) {
		fprintf(stderr, "mailquota: no API token: set MAILQUOTA_TOKEN or api_token_file "
		                "(make the first one with `mailquota token bootstrap NAME`)\n");
		exit(EXIT_AUTH);
	}
	ctx->api = api_client_new(url, tok);
	explicit_bzero(tok, strlen(tok));
	free(tok);
	return ctx->api;
}

int cli_api_error(const char *what, const struct api_response *r, const char *transport)
{
	if (transport != NULL) {
		fprintf(stderr, "mailquota: %s: cannot reach the API: %s\n", what, transport);
		return EXIT_TEMP;
	}
	const char *msg = json_string_value(json_object_get(r->doc, "message"));
	fprintf(stderr, "mailquota: %s: %s\n", what, msg != NULL ? msg : "unexpected answer");
	switch (r->status) {
	case 401:
	case 403:
		return EXIT_AUTH;
	case 404:
		return EXIT_NOTFOUND;
	case 409:
	case 412:
		return EXIT_CONFLICT;
	case 503:
		return EXIT_TEMP;
	default:
		return r->status >= 500 ? EXIT_TEMP : EXIT_FAIL;
	}
}

int cli_call(struct ctx *ctx, const char *what, const char *method, const char *path, json_t *body,
             const char *if_match, struct api_response *r)
{
	const char *err;
	if (api_call(cli_api(ctx), method, path, body, if_match, r, &err) < 0)
		return cli_api_error(what, r, err);
	if (r->status >= 200 && r->status < 300)
		return 0;
	int rc = cli_api_error(what, r, NULL);
	api_response_free(r);
	return rc;
}

void cli_print_json(json_t *doc)
{
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s != NULL)
		printf("%s\n", s);
	free(s);
}

int cli_check_key(struct ctx *ctx, enum resource_kind kind, const char *s, struct resource_key *key)
{
	const char *why;
	if (resource_key_parse(kind, s, &ctx->cfg.address_rules, key, &why) < 0) {
		fprintf(stderr, "mailquota: %s: %s\n", s, why);
		return -1;
	}
	return 0;
}

const char *cli_collection(enum resource_kind kind)
{
	static const char *const collection[] = {
		[RESOURCE_DOMAIN] = "/v1/domains",
		[RESOURCE_MAILBOX] = "/v1/mailboxes",
		[RESOURCE_ALIAS] = "/v1/aliases",
		[RESOURCE_TOKEN] = "/v1/tokens",
	};
	return collection[kind];
}

char *cli_item_path(struct ctx *ctx, enum resource_kind kind, const char *key, const char *suffix)
{
	char *e = api_escape(cli_api(ctx), key);
	/* the three parts, the '/' between the first two and the NUL */
	size_t n = strlen(cli_collection(kind)) + strlen(e) + strlen(suffix) + 2;
	char *p = xmalloc(n);
	snprintf(p, n, "%s/%s%s", cli_collection(kind), e, suffix);
	free(e);
	return p;
}

/* ---- the command table ---- */

static const struct command commands[] = {
	{ "migrate", NULL, 0, 0, cmd_migrate, "", "apply pending schema migrations (database)" },
	{ "token", "bootstrap", 1, 4, cmd_token_bootstrap,
	  "NAME [scope=S] [mailbox=ADDRESS] [expires=TIME]",
	  "make a token with database access (the first admin token); prints it" },
	{ "token", "create", 1, 4, cmd_token_create,
	  "NAME [scope=S] [mailbox=ADDRESS] [expires=TIME]",
	  "make a token (scope admin, read, usage, self, precheck or metrics); prints it once" },
	{ "token", "list", 0, 1, cmd_token_list, "[all]", "list tokens (all: with revoked ones)" },
	{ "token", "get", 1, 1, cmd_token_get, "ID", "show a token (never its secret)" },
	{ "token", "revoke", 1, 1, cmd_token_revoke, "ID", "revoke a token everywhere" },
	{ "self-link", NULL, 1, 2, cmd_self_link, "ADDRESS [expires=DURATION]",
	  "a link to the self-check page for ADDRESS's user (default 1h)" },
	{ "domain", "add", 1, 64, cmd_add, "DOMAIN [FIELD=VALUE]...", "create a domain" },
	{ "domain", "set", 2, 64, cmd_set, "DOMAIN FIELD=VALUE...",
	  "change a domain's limits (fields: below)" },
	{ "domain", "del", 1, 1, cmd_del, "DOMAIN", "delete a domain and all it holds" },
	{ "domain", "get", 1, 1, cmd_get, "DOMAIN", "show a domain, by the field names set takes" },
	{ "domain", "list", 0, 16, cmd_list, "[NAME=VALUE]...",
	  "list domains with their usage (over_quota=, min_pool_percent=, prefix=, sort=, "
	  "limit=)" },
	{ "mailbox", "add", 1, 64, cmd_add, "ADDRESS [FIELD=VALUE]...", "create a mailbox" },
	{ "mailbox", "set", 2, 64, cmd_set, "ADDRESS FIELD=VALUE...",
	  "change a mailbox's limits (fields: below)" },
	{ "mailbox", "del", 1, 1, cmd_del, "ADDRESS", "delete a mailbox" },
	{ "mailbox", "get", 1, 1, cmd_get, "ADDRESS",
	  "show a mailbox, by the field names set takes" },
	{ "mailbox", "list", 0, 16, cmd_list, "[DOMAIN] [NAME=VALUE]...",
	  "list mailboxes (over_quota=, min_usage_percent=, enabled=, prefix=, sort=, limit=)" },
	{ "alias", "add", 2, 1002, cmd_alias_add, "ADDRESS|@DOMAIN MAILBOX... [policy=any|all]",
	  "create an alias (or catch-all) or add targets to it" },
	{ "alias", "set", 2, 2, cmd_set, "ADDRESS|@DOMAIN policy=any|all|default",
	  "set an alias's own alias_policy (default: the configuration's)" },
	{ "alias", "remove", 2, 1001, cmd_alias_remove, "ADDRESS|@DOMAIN MAILBOX...",
	  "take targets off an alias" },
	{ "alias", "del", 1, 1, cmd_del, "ADDRESS|@DOMAIN", "delete an alias" },
	{ "alias", "get", 1, 1, cmd_get, "ADDRESS|@DOMAIN", "show an alias" },
	{ "alias", "list", 0, 16, cmd_list, "[DOMAIN] [NAME=VALUE]...", "list aliases" },
	{ "usage", "add", 2, 5, cmd_usage_add, "ADDRESS BYTES [MESSAGES] [key=K] [at=TIME]",
	  "report a usage change (negative for deletions); a repeated key counts once" },
	{ "usage", "set", 2, 5, cmd_usage_set, "ADDRESS BYTES [MESSAGES] [source=S] [at=TIME]",
	  "set absolute usage from a recalculation (du, doveadm quota get)" },
	{ "usage", "get", 1, 1, cmd_usage_get, "ADDRESS", "show a mailbox's usage and limits" },
	{ "usage", "load", 0, 6, cmd_usage_load,
	  "[FILE|-] [format=doveadm|ndjson|csv] [source=S] [at=TIME] [quota_root=NAME] "
	  "[dry_run=true]",
	  "set many mailboxes' usage at once: doveadm -f tab quota get -A | mailquota usage load" },
	{ "usage", "flush", 0, 0, cmd_usage_flush, "",
	  "replay reports that deliver spooled while the API was unreachable" },
	{ "deliver", NULL, 3, 1000, cmd_deliver, "RECIPIENT [key=K] -- COMMAND [ARGS...]",
	  "delivery wrapper for a Postfix pipe transport: run COMMAND, report what it stored" },
	{ "check", NULL, 2, 2, cmd_check, "ADDRESS SIZE",
	  "ask the daemon (exit 0 accept, 3 refused, 4 unknown, 5 tempfail)" },
	{ "import", NULL, 1, 5, cmd_import,
	  "FILE|- [format=ndjson|csv] [type=T] [mode=best_effort] [dry_run=true]",
	  "import domains, mailboxes, aliases (all or nothing by default); errors by line" },
	{ "export", NULL, 0, 2, cmd_export, "[format=ndjson|csv] [type=domains|mailboxes|aliases]",
	  "write domains, mailboxes and aliases to standard output, importable as is" },
	{ "warnings", "list", 0, 16, cmd_warnings_list,
	  "[state=pending|delivered|failed] [mailbox=ADDRESS] [since=TIME] [limit=N]",
	  "warning events, newest first, with their deliveries (the last 50 unless limit=)" },
	{ "warnings", "settings", 0, 0, cmd_warnings_settings, "",
	  "show the warning thresholds, hysteresis and delivery channels" },
	{ "warnings", "set", 1, 3, cmd_warnings_set,
	  "[thresholds=80,90,100] [hysteresis=5] [channels=webhook,mail|none]",
	  "change the installation's warning settings" },
	{ "warnings", "domain", 2, 3, cmd_warnings_domain,
	  "DOMAIN thresholds=LIST|inherit [hysteresis=N|inherit] | DOMAIN inherit",
	  "give a domain its own warning thresholds (replacing what it had)" },
	{ "audit", NULL, 0, 16, cmd_audit, "[NAME=VALUE]...",
	  "show the audit log, newest first (object=, action=, token=, since=, until=, limit=)" },
	{ "stats", NULL, 0, 1, cmd_stats, "[top=N]",
	  "the installation's totals and its N (10) largest domains" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The fields of kind as add and set take them: short name, API name, help. */
static void usage_fields(FILE *out, enum resource_kind kind)
{
	size_t n;
	const struct field *t = field_table(kind, &n);
	fprintf(out, "\n%s fields (FIELD=VALUE; the API's name works too):\n",
	        resource_kind_name(kind));
	for (size_t i = 0; i < n; i++)
		fprintf(out, "  %-18s %-29s %s\n", t[i].cli, t[i].api, t[i].help);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: mailquota [-c config] [-d conninfo] [-u url] [--json] [-b|--bytes]\n"
	             "                 [--if-match ETAG] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		char head[96];
		snprintf(head, sizeof(head), "%s%s%s %s", commands[i].noun,
		         commands[i].verb ? " " : "", commands[i].verb ? commands[i].verb : "",
		         commands[i].args);
		fprintf(out, "  %-48s %s\n", head, commands[i].help);
	}
	usage_fields(out, RESOURCE_DOMAIN);
	usage_fields(out, RESOURCE_MAILBOX);
	fprintf(out,
	        "\n--if-match ETAG (the etag a get shows) makes set and del change only that\n"
	        "version (exit 6 if it changed since).\n"
	        "Everything but migrate and token bootstrap goes through the HTTP API: the URL\n"
	        "comes from -u, MAILQUOTA_URL, api_url or http_listen; the token from\n"
	        "MAILQUOTA_TOKEN or api_token_file. Sizes take K, M, G, T suffixes (powers of\n"
	        "1024); a limit of \"none\" inherits the domain default (mailbox) or means\n"
	        "unlimited (domain). Tables and text show sizes in binary units, rounded down\n"
	        "(\"7.5 MiB\"), get shows them as set takes them (\"10M\", else bytes);\n"
	        "-b/--bytes shows byte counts. --json is the API's documents, always in bytes.\n"
	        "Exit codes: 0 success, 1 refused by the API, 2 usage error, 3 check: refused,\n"
	        "4 not found (check: unknown recipient), 5 temporary failure (retry),\n"
	        "6 conflict (exists, or changed since read), 7 no token or not allowed.\n");
}

int main(int argc, char **argv)
{
	struct ctx ctx = { .json = false };
	const char *path = NULL, *conninfo = NULL;
	const char *err = "";
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "bytes", no_argument, NULL, 'b' }, /* sizes as byte counts in tables and text */
		{ "if-match", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "+c:d:u:e:jbhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'd':
			conninfo = optarg;
			break;
		case 'u':
			ctx.url_opt = optarg;
			break;
		case 'j':
			ctx.json = true;
			break;
		case 'b':
			ctx.bytes = true;
			break;
		case 'e': {
			/* as the API shows it, with or without its quotes */
			static char etag[ETAG_MAX + 1];
			const char *e = optarg[0] == '"' ? optarg + 1 : optarg;
			size_t el = strlen(e);
			if (el > 0 && e[el - 1] == '"')
				el--;
			if (el == 0 || el >= sizeof(etag) || memchr(e, '"', el) != NULL) {
				fprintf(stderr, "mailquota: --if-match: not an ETag\n");
				return EXIT_USAGE;
			}
			memcpy(etag, e, el);
			etag[el] = '\0';
			ctx.if_match = etag;
			break;
		}
		case 'V':
			printf("mailquota %s\n", MAILQUOTA_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	log_setup("mailquota", LOG_LEVEL_WARN); /* warnings only: output is for humans */
	config_init(&ctx.cfg);
	if (config_load(&ctx.cfg, path, &err) < 0) {
		fprintf(stderr, "mailquota: %s\n", err);
		config_free(&ctx.cfg);
		return EXIT_FAIL;
	}
	if (conninfo != NULL && (config_set(&ctx.cfg, "database_url", conninfo, &err) < 0 ||
	                         config_finish(&ctx.cfg, &err) < 0)) {
		fprintf(stderr, "mailquota: %s\n", err);
		config_free(&ctx.cfg);
		return EXIT_FAIL;
	}
	if (optind >= argc) {
		usage(stderr);
		config_free(&ctx.cfg);
		return EXIT_USAGE;
	}
	const char *noun = argv[optind];
	int rest = argc - optind - 1;
	char **args = argv + optind + 1;
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const struct command *c = &commands[i];
		if (strcmp(c->noun, noun) != 0)
			continue;
		char **a = args;
		int n = rest;
		if (c->verb != NULL) {
			if (n < 1 || strcmp(c->verb, a[0]) != 0)
				continue;
			a++;
			n--;
		}
		if (n < c->min_args || n > c->max_args) {
			fprintf(stderr, "usage: mailquota %s%s%s %s\n", c->noun, c->verb ? " " : "",
			        c->verb ? c->verb : "", c->args);
			config_free(&ctx.cfg);
			return EXIT_USAGE;
		}
		ctx.kind = strcmp(noun, "mailbox") == 0 ? RESOURCE_MAILBOX
		           : strcmp(noun, "alias") == 0 ? RESOURCE_ALIAS
		                                        : RESOURCE_DOMAIN;
		int rc = c->fn(&ctx, n, a);
		api_client_free(&ctx.api);
		config_free(&ctx.cfg);
		return rc;
	}
	fprintf(stderr, "mailquota: unknown command \"%s%s%s\"\n\n", noun, rest > 0 ? " " : "",
	        rest > 0 ? args[0] : "");
	usage(stderr);
	config_free(&ctx.cfg);
	return EXIT_USAGE;
}
