/*
 * mailquota: the administrative command line. Every command but `migrate` and
 * `token bootstrap` talks to a daemon's HTTP API (URL and token from -u / MAILQUOTA_URL /
 * api_url and MAILQUOTA_TOKEN / api_token_file), so the CLI does exactly what a panel can do,
 * with the same checks, audit records and errors. Commands are rows of one table; output is a
 * table for humans, or JSON with --json. Exit codes: see usage().
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "apiclient.h"
#include "buf.h"
#include "bulk.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "resource.h"
#include "strnum.h"
#include "usage.h"
#include "version.h"
#include "xalloc.h"

#define EXIT_FAIL     1 /* the API refused the request (its message says why) */
#define EXIT_USAGE    2 /* bad command line */
#define EXIT_REFUSED  3 /* check: the recipient would be refused */
#define EXIT_NOTFOUND 4 /* no such object; check: unknown recipient */
#define EXIT_TEMP     5 /* the API or its database cannot answer now: retry */
#define EXIT_CONFLICT 6 /* exists already, or changed since read (412) */
#define EXIT_AUTH     7 /* no token, or the token may not do this */
/* sysexits.h codes Postfix's pipe(8) understands */
#define EX_USAGE_MAIL    64
#define EX_TEMPFAIL_MAIL 75

#define LIST_PAGE      1000 /* items asked for per page when listing everything */
#define TOKEN_FILE_MAX 512

struct ctx {
	struct config cfg;
	bool json;
	const char *url_opt;
	const char *if_match;    /* --if-match ETAG: set and del change only that version */
	enum resource_kind kind; /* of the command's noun: domain, mailbox, alias */
	struct api_client *api;
};

typedef int (*cmd_fn)(struct ctx *ctx, int argc, char **argv);

struct command {
	const char *noun;
	const char *verb; /* NULL: the noun alone is the command */
	int min_args, max_args;
	cmd_fn fn;
	const char *args;
	const char *help;
};

static int fail(const char *what, const char *err)
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
static int api_url(struct ctx *ctx, char *out, size_t size)
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

static struct api_client *api_of(struct ctx *ctx)
{
	if (ctx->api != NULL)
		return ctx->api;
	char url[1024];
	if (api_url(ctx, url, sizeof(url)) < 0) {
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

/* The exit code and message of an API error answer (or no answer). */
static int api_error(const char *what, const struct api_response *r, const char *transport)
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

/*
 * One call; on a 2xx answer returns 0 with *r (caller frees), else prints the error and returns
 * its exit code.
 */
static int call(struct ctx *ctx, const char *what, const char *method, const char *path,
                json_t *body, const char *if_match, struct api_response *r)
{
	char err[256];
	if (api_call(api_of(ctx), method, path, body, if_match, r, err, sizeof(err)) < 0)
		return api_error(what, r, err);
	if (r->status >= 200 && r->status < 300)
		return 0;
	int rc = api_error(what, r, NULL);
	api_response_free(r);
	return rc;
}

static void print_json(json_t *doc)
{
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s != NULL)
		printf("%s\n", s);
	free(s);
}

/* ---- fields: name=value on the command line, JSON fields on the wire ---- */

enum ftype { F_SIZE, F_COUNT, F_GRACE, F_BOOL };

struct cli_field {
	enum resource_kind kind;
	const char *name; /* as admins type it */
	const char *json; /* as the API names it */
	enum ftype type;
};

static const struct cli_field cli_fields[] = {
	{ RESOURCE_DOMAIN, "pool", "pool_limit_bytes", F_SIZE },
	{ RESOURCE_DOMAIN, "storage", "default_storage_limit_bytes", F_SIZE },
	{ RESOURCE_DOMAIN, "messages", "default_message_limit", F_COUNT },
	{ RESOURCE_DOMAIN, "mailbox-max-size", "default_max_message_size", F_SIZE },
	{ RESOURCE_DOMAIN, "max-size", "max_message_size", F_SIZE },
	{ RESOURCE_DOMAIN, "grace", "grace_percent", F_GRACE },
	{ RESOURCE_MAILBOX, "storage", "storage_limit_bytes", F_SIZE },
	{ RESOURCE_MAILBOX, "messages", "message_limit", F_COUNT },
	{ RESOURCE_MAILBOX, "max-size", "max_message_size", F_SIZE },
	{ RESOURCE_MAILBOX, "grace", "grace_percent", F_GRACE },
	{ RESOURCE_MAILBOX, "enabled", "enabled", F_BOOL },
};

static const char *field_names(enum resource_kind k)
{
	return k == RESOURCE_DOMAIN ? "pool, storage, messages, mailbox-max-size, max-size, grace"
	                            : "storage, messages, max-size, grace, enabled";
}

/* "name=value" arguments into a JSON object of API fields; -1 (reported) on a bad one. */
static int parse_fields(enum resource_kind kind, int argc, char **argv, json_t *obj)
{
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		const struct cli_field *f = NULL;
		size_t nl = eq != NULL ? (size_t)(eq - argv[i]) : 0;
		for (size_t k = 0; eq != NULL && k < sizeof(cli_fields) / sizeof(cli_fields[0]);
		     k++)
			if (cli_fields[k].kind == kind && strlen(cli_fields[k].name) == nl &&
			    strncmp(cli_fields[k].name, argv[i], nl) == 0)
				f = &cli_fields[k];
		if (f == NULL) {
			fprintf(stderr, "mailquota: unknown field \"%s\" (fields: %s)\n", argv[i],
			        field_names(kind));
			return -1;
		}
		const char *v = eq + 1;
		uint64_t n;
		json_t *val = NULL;
		if (f->type != F_BOOL && (strcmp(v, "none") == 0 || strcmp(v, "inherit") == 0))
			val = json_null();
		else if (f->type == F_SIZE && strnum_size(v, INT64_MAX, &n) == 0)
			val = json_integer((json_int_t)n);
		else if (f->type == F_COUNT && strnum_u64(v, strlen(v), INT64_MAX, &n) == 0)
			val = json_integer((json_int_t)n);
		else if (f->type == F_GRACE && strnum_u64(v, strlen(v), 1000, &n) == 0)
			val = json_integer((json_int_t)n);
		else if (f->type == F_BOOL && (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0))
			val = json_true();
		else if (f->type == F_BOOL && (strcmp(v, "no") == 0 || strcmp(v, "false") == 0))
			val = json_false();
		if (val == NULL) {
			fprintf(stderr, "mailquota: %s: \"%s\" is not %s\n", f->name, v,
			        f->type == F_SIZE    ? "a size (bytes or K/M/G/T, or none)"
			        : f->type == F_COUNT ? "a count (or none)"
			        : f->type == F_GRACE ? "a percentage from 0 to 1000 (or none)"
			                             : "yes or no");
			return -1;
		}
		json_object_set_new(obj, f->json, val);
	}
	return 0;
}

/* Check a key locally (the API would refuse it too, but a usage error is clearer). */
static int check_key(struct ctx *ctx, enum resource_kind kind, const char *s,
                     struct resource_key *key)
{
	const char *why;
	if (resource_key_parse(kind, s, &ctx->cfg.address_rules, key, &why) < 0) {
		fprintf(stderr, "mailquota: %s: %s\n", s, why);
		return -1;
	}
	return 0;
}

static const char *const collection[] = {
	[RESOURCE_DOMAIN] = "/v1/domains",
	[RESOURCE_MAILBOX] = "/v1/mailboxes",
	[RESOURCE_ALIAS] = "/v1/aliases",
	[RESOURCE_TOKEN] = "/v1/tokens",
};

static char *item_path(enum resource_kind kind, const char *key, const char *suffix)
{
	char *e = api_escape(key);
	size_t n = strlen(collection[kind]) + strlen(e) + strlen(suffix) + 2;
	char *p = xmalloc(n);
	snprintf(p, n, "%s/%s%s", collection[kind], e, suffix);
	free(e);
	return p;
}

/* ---- printing ---- */

static void put_num(json_t *v, int width)
{
	if (json_is_integer(v))
		printf("%*lld", width, (long long)json_integer_value(v));
	else if (json_is_real(v))
		printf("%*.1f", width, json_real_value(v));
	else
		printf("%*s", width, "-");
}

static void print_row(enum resource_kind kind, json_t *d)
{
	switch (kind) {
	case RESOURCE_DOMAIN:
		printf("%-32s", json_string_value(json_object_get(d, "name")));
		put_num(json_object_get(d, "pool_limit_bytes"), 14);
		put_num(json_object_get(d, "default_storage_limit_bytes"), 14);
		put_num(json_object_get(d, "default_message_limit"), 10);
		put_num(json_object_get(d, "max_message_size"), 12);
		put_num(json_object_get(d, "grace_percent"), 6);
		break;
	case RESOURCE_MAILBOX: {
		json_t *u = json_object_get(d, "usage");
		printf("%-40s", json_string_value(json_object_get(d, "address")));
		put_num(json_object_get(json_object_get(d, "effective"), "storage_limit_bytes"),
		        14);
		put_num(json_object_get(u, "bytes"), 14);
		put_num(json_object_get(u, "percent"), 8);
		put_num(json_object_get(u, "messages"), 10);
		printf(" %s%s", json_is_true(json_object_get(d, "enabled")) ? "yes" : "no ",
		       json_is_true(json_object_get(u, "over_quota")) ? " OVER" : "");
		break;
	}
	case RESOURCE_ALIAS: {
		printf("%-40s ", json_string_value(json_object_get(d, "address")));
		size_t i;
		json_t *t;
		json_array_foreach(json_object_get(d, "targets"), i, t)
		        printf("%s%s", i ? "," : "", json_string_value(t));
		break;
	}
	case RESOURCE_TOKEN: {
		const char *mb = json_string_value(json_object_get(d, "mailbox"));
		const char *exp = json_string_value(json_object_get(d, "expires_at"));
		const char *rev = json_string_value(json_object_get(d, "revoked_at"));
		printf("%6lld  %-24s %-6s %-30s %.19s %s%.19s",
		       (long long)json_integer_value(json_object_get(d, "id")),
		       json_string_value(json_object_get(d, "name")),
		       json_string_value(json_object_get(d, "scope")), mb ? mb : "-",
		       json_string_value(json_object_get(d, "created_at")),
		       rev   ? "revoked "
		       : exp ? "expires "
		             : "",
		       rev   ? rev
		       : exp ? exp
		             : "");
		break;
	}
	}
	printf("\n");
}

static const char *const headers[] = {
	[RESOURCE_DOMAIN] = "DOMAIN                                    POOL       STORAGE  MESSAGES"
	                    "    MAX-SIZE GRACE",
	[RESOURCE_MAILBOX] = "MAILBOX                                          LIMIT          USED"
	                     "       %  MESSAGES ENABLED",
	[RESOURCE_ALIAS] = "ALIAS                                    TARGETS",
	[RESOURCE_TOKEN] = "    ID  NAME                     SCOPE  MAILBOX                        "
	                   "CREATED",
};

/* ---- generic object commands ---- */

static int object_add(struct ctx *ctx, enum resource_kind kind, int argc, char **argv)
{
	struct resource_key key;
	if (check_key(ctx, kind, argv[0], &key) < 0)
		return EXIT_USAGE;
	json_t *body = json_object();
	json_object_set_new(body, kind == RESOURCE_DOMAIN ? "name" : "address",
	                    json_string(key.text));
	if (parse_fields(kind, argc - 1, argv + 1, body) < 0) {
		json_decref(body);
		return EXIT_USAGE;
	}
	struct api_response r;
	int rc = call(ctx, key.text, "POST", collection[kind], body, NULL, &r);
	json_decref(body);
	if (rc != 0)
		return rc;
	if (ctx->json)
		print_json(r.doc);
	api_response_free(&r);
	return 0;
}

static int object_set(struct ctx *ctx, enum resource_kind kind, int argc, char **argv)
{
	struct resource_key key;
	if (check_key(ctx, kind, argv[0], &key) < 0)
		return EXIT_USAGE;
	json_t *body = json_object();
	if (parse_fields(kind, argc - 1, argv + 1, body) < 0) {
		json_decref(body);
		return EXIT_USAGE;
	}
	char *path = item_path(kind, key.text, "");
	struct api_response r;
	int rc = call(ctx, key.text, "PATCH", path, body, ctx->if_match, &r);
	free(path);
	json_decref(body);
	if (rc != 0)
		return rc;
	if (ctx->json)
		print_json(r.doc);
	api_response_free(&r);
	return 0;
}

static int object_del(struct ctx *ctx, enum resource_kind kind, const char *arg)
{
	struct resource_key key;
	if (check_key(ctx, kind, arg, &key) < 0)
		return EXIT_USAGE;
	char *path = item_path(kind, key.text, "");
	struct api_response r;
	int rc = call(ctx, key.text, "DELETE", path, NULL, ctx->if_match, &r);
	free(path);
	if (rc == 0)
		api_response_free(&r);
	return rc;
}

static int object_get(struct ctx *ctx, enum resource_kind kind, const char *arg)
{
	struct resource_key key;
	if (check_key(ctx, kind, arg, &key) < 0)
		return EXIT_USAGE;
	char *path = item_path(kind, key.text, "");
	struct api_response r;
	int rc = call(ctx, key.text, "GET", path, NULL, NULL, &r);
	free(path);
	if (rc != 0)
		return rc;
	if (ctx->json) {
		print_json(r.doc);
	} else {
		const char *k;
		json_t *v;
		json_object_foreach(r.doc, k, v)
		{
			char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			printf("%-28s %s\n", k, s != NULL ? s : "?");
			free(s);
		}
	}
	api_response_free(&r);
	return 0;
}

/*
 * List every page of path with the query built from argv: a bare word is the domain filter,
 * name=value pass through as API parameters (limit=N caps the total).
 */
static int object_list(struct ctx *ctx, enum resource_kind kind, int argc, char **argv, bool audit)
{
	struct buf q;
	buf_init(&q, 1 << 16);
	uint64_t cap = UINT64_MAX;
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		if (eq == NULL && (kind == RESOURCE_MAILBOX || kind == RESOURCE_ALIAS) && !audit) {
			char *e = api_escape(argv[i]);
			if (buf_printf(&q, "&domain=%s", e) < 0)
				abort();
			free(e);
			continue;
		}
		if (eq == NULL) {
			fprintf(stderr, "mailquota: unexpected argument \"%s\" (want name=value)\n",
			        argv[i]);
			buf_free(&q);
			return EXIT_USAGE;
		}
		if (strncmp(argv[i], "limit=", 6) == 0) {
			if (strnum_u64(eq + 1, strlen(eq + 1), UINT64_MAX, &cap) < 0 || cap == 0) {
				fprintf(stderr, "mailquota: limit=%s is not a positive count\n",
				        eq + 1);
				buf_free(&q);
				return EXIT_USAGE;
			}
			continue;
		}
		char *name = strndup(argv[i], (size_t)(eq - argv[i]));
		char *n = api_escape(name), *v = api_escape(eq + 1);
		if (buf_printf(&q, "&%s=%s", n, v) < 0)
			abort();
		free(name);
		free(n);
		free(v);
	}
	const char *base = audit ? "/v1/audit" : collection[kind];
	json_t *all = json_array();
	char *cursor = NULL;
	uint64_t got = 0;
	int rc = 0;
	if (!ctx->json && !audit)
		printf("%s\n", headers[kind]);
	if (!ctx->json && audit)
		printf("%8s  %-27s %-8s %-16s %s\n", "ID", "AT", "TOKEN", "ACTION", "OBJECT");
	do {
		struct buf path;
		buf_init(&path, 1 << 17);
		uint64_t want = cap - got < LIST_PAGE ? cap - got : LIST_PAGE;
		if (buf_printf(&path, "%s?limit=%llu%s", base, (unsigned long long)want,
		               q.data != NULL ? q.data : "") < 0 ||
		    (cursor != NULL && buf_printf(&path, "&cursor=%s", cursor) < 0))
			abort();
		free(cursor);
		cursor = NULL;
		struct api_response r;
		rc = call(ctx, base, "GET", path.data, NULL, NULL, &r);
		buf_free(&path);
		if (rc != 0)
			break;
		size_t i;
		json_t *it;
		json_array_foreach(json_object_get(r.doc, "items"), i, it)
		{
			got++;
			if (ctx->json) {
				json_array_append(all, it);
			} else if (audit) {
				const char *tn =
				        json_string_value(json_object_get(it, "token_name"));
				printf("%8lld  %-27s %-8s %-16s %s\n",
				       (long long)json_integer_value(json_object_get(it, "id")),
				       json_string_value(json_object_get(it, "at")), tn ? tn : "-",
				       json_string_value(json_object_get(it, "action")),
				       json_string_value(json_object_get(it, "object")));
			} else {
				print_row(kind, it);
			}
		}
		const char *next = json_string_value(json_object_get(r.doc, "next_cursor"));
		if (next != NULL && got < cap)
			cursor = xstrdup(next);
		api_response_free(&r);
	} while (cursor != NULL);
	if (rc == 0 && ctx->json)
		print_json(all);
	json_decref(all);
	buf_free(&q);
	return rc;
}

/* The generic object commands: the kind comes from the command's noun (see main). */
static int cmd_add(struct ctx *c, int n, char **a)
{
	return object_add(c, c->kind, n, a);
}
static int cmd_set(struct ctx *c, int n, char **a)
{
	return object_set(c, c->kind, n, a);
}
static int cmd_del(struct ctx *c, int n, char **a)
{
	(void)n;
	return object_del(c, c->kind, a[0]);
}
static int cmd_get(struct ctx *c, int n, char **a)
{
	(void)n;
	return object_get(c, c->kind, a[0]);
}
static int cmd_list(struct ctx *c, int n, char **a)
{
	return object_list(c, c->kind, n, a, false);
}
static int cmd_audit(struct ctx *c, int n, char **a)
{
	bool has_limit = false;
	for (int i = 0; i < n; i++)
		has_limit |= strncmp(a[i], "limit=", 6) == 0;
	if (has_limit)
		return object_list(c, RESOURCE_TOKEN, n, a, true);
	/* the newest 50 unless asked otherwise */
	char **b = xcalloc((size_t)n + 1, sizeof(*b));
	memcpy(b, a, (size_t)n * sizeof(*b));
	b[n] = (char *)"limit=50";
	int rc = object_list(c, RESOURCE_TOKEN, n + 1, b, true);
	free(b);
	return rc;
}

/* alias add ADDRESS TARGET...: create the alias, or add targets to it */
static int cmd_alias_add(struct ctx *ctx, int argc, char **argv)
{
	struct resource_key key, t;
	if (check_key(ctx, RESOURCE_ALIAS, argv[0], &key) < 0)
		return EXIT_USAGE;
	json_t *targets = json_array();
	for (int i = 1; i < argc; i++) {
		if (check_key(ctx, RESOURCE_MAILBOX, argv[i], &t) < 0) {
			json_decref(targets);
			return EXIT_USAGE;
		}
		json_array_append_new(targets, json_string(t.text));
	}
	char *path = item_path(RESOURCE_ALIAS, key.text, "");
	struct api_response r;
	char err[256];
	int rc = 0;
	/* PATCH first (the common case once a list exists); 404 means create it */
	for (int attempt = 0; attempt < 2; attempt++) {
		json_t *body = json_pack("{s:O}", "add_targets", targets);
		if (api_call(api_of(ctx), "PATCH", path, body, NULL, &r, err, sizeof(err)) < 0) {
			json_decref(body);
			rc = api_error(key.text, &r, err);
			break;
		}
		json_decref(body);
		if (r.status != 404) {
			rc = r.status == 200 ? 0 : api_error(key.text, &r, NULL);
			break;
		}
		api_response_free(&r);
		body = json_pack("{s:s, s:O}", "address", key.text, "targets", targets);
		if (api_call(api_of(ctx), "POST", "/v1/aliases", body, NULL, &r, err, sizeof(err)) <
		    0) {
			json_decref(body);
			rc = api_error(key.text, &r, err);
			break;
		}
		json_decref(body);
		if (r.status != 409) { /* 409: created meanwhile by someone else: PATCH again */
			rc = r.status == 201 ? 0 : api_error(key.text, &r, NULL);
			break;
		}
		api_response_free(&r);
	}
	if (rc == 0 && ctx->json)
		print_json(r.doc);
	api_response_free(&r);
	free(path);
	json_decref(targets);
	return rc;
}

/* alias remove ADDRESS TARGET...: take targets off an alias */
static int cmd_alias_remove(struct ctx *ctx, int argc, char **argv)
{
	struct resource_key key, t;
	if (check_key(ctx, RESOURCE_ALIAS, argv[0], &key) < 0)
		return EXIT_USAGE;
	json_t *targets = json_array();
	for (int i = 1; i < argc; i++) {
		if (check_key(ctx, RESOURCE_MAILBOX, argv[i], &t) < 0) {
			json_decref(targets);
			return EXIT_USAGE;
		}
		json_array_append_new(targets, json_string(t.text));
	}
	json_t *body = json_pack("{s:o}", "remove_targets", targets);
	char *path = item_path(RESOURCE_ALIAS, key.text, "");
	struct api_response r;
	int rc = call(ctx, key.text, "PATCH", path, body, NULL, &r);
	json_decref(body);
	free(path);
	if (rc == 0) {
		if (ctx->json)
			print_json(r.doc);
		api_response_free(&r);
	}
	return rc;
}

/* ---- tokens ---- */

/* "scope=S mailbox=A expires=T" into a token body; -1 (reported) on anything else */
static int token_body(const char *name, int argc, char **argv, json_t **body_r)
{
	json_t *body = json_pack("{s:s, s:s}", "name", name, "scope", "admin");
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		const char *field = NULL;
		if (eq != NULL && strncmp(argv[i], "scope=", 6) == 0)
			field = "scope";
		else if (eq != NULL && strncmp(argv[i], "mailbox=", 8) == 0)
			field = "mailbox";
		else if (eq != NULL && strncmp(argv[i], "expires=", 8) == 0)
			field = "expires_at";
		if (field == NULL) {
			fprintf(stderr, "mailquota: %s: want scope=, mailbox= or expires=\n",
			        argv[i]);
			json_decref(body);
			return -1;
		}
		json_object_set_new(body, field, json_string(eq + 1));
	}
	*body_r = body;
	return 0;
}

static int cmd_token_create(struct ctx *ctx, int argc, char **argv)
{
	json_t *body;
	if (token_body(argv[0], argc - 1, argv + 1, &body) < 0)
		return EXIT_USAGE;
	struct api_response r;
	int rc = call(ctx, "token create", "POST", "/v1/tokens", body, NULL, &r);
	json_decref(body);
	if (rc != 0)
		return rc;
	if (ctx->json) {
		print_json(r.doc);
	} else {
		printf("%s\n", json_string_value(json_object_get(r.doc, "token")));
		fprintf(stderr, "token %lld (%s, scope %s): shown once, store it now\n",
		        (long long)json_integer_value(json_object_get(r.doc, "id")), argv[0],
		        json_string_value(json_object_get(r.doc, "scope")));
	}
	api_response_free(&r);
	return 0;
}

static int cmd_token_list(struct ctx *ctx, int argc, char **argv)
{
	if (argc == 1 && strcmp(argv[0], "all") != 0) {
		fprintf(stderr, "usage: mailquota token list [all]\n");
		return EXIT_USAGE;
	}
	char *a[] = { (char *)"include_revoked=true" };
	return object_list(ctx, RESOURCE_TOKEN, argc, a, false);
}

static int cmd_token_get(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	uint64_t id;
	if (strnum_u64(argv[0], strlen(argv[0]), INT64_MAX, &id) < 0 || id == 0) {
		fprintf(stderr, "mailquota: %s is not a token id\n", argv[0]);
		return EXIT_USAGE;
	}
	char path[64];
	snprintf(path, sizeof(path), "/v1/tokens/%llu", (unsigned long long)id);
	struct api_response r;
	int rc = call(ctx, argv[0], "GET", path, NULL, NULL, &r);
	if (rc != 0)
		return rc;
	if (ctx->json) {
		print_json(r.doc);
	} else {
		printf("%s\n", headers[RESOURCE_TOKEN]);
		print_row(RESOURCE_TOKEN, r.doc);
	}
	api_response_free(&r);
	return 0;
}

static int cmd_token_revoke(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	uint64_t id;
	if (strnum_u64(argv[0], strlen(argv[0]), INT64_MAX, &id) < 0 || id == 0) {
		fprintf(stderr, "mailquota: %s is not a token id\n", argv[0]);
		return EXIT_USAGE;
	}
	char path[64];
	snprintf(path, sizeof(path), "/v1/tokens/%llu", (unsigned long long)id);
	struct api_response r;
	int rc = call(ctx, argv[0], "DELETE", path, NULL, NULL, &r);
	if (rc == 0)
		api_response_free(&r);
	return rc;
}

/* token bootstrap NAME [...]: with database access, no API token (the first admin token) */
static int cmd_token_bootstrap(struct ctx *ctx, int argc, char **argv)
{
	json_t *body, *fields;
	if (token_body(argv[0], argc - 1, argv + 1, &body) < 0)
		return EXIT_USAGE;
	struct resource_key key;
	struct resource_error e;
	if (resource_check(RESOURCE_TOKEN, RESOURCE_CREATE, body, &ctx->cfg.address_rules, &key,
	                   &fields, &e) < 0) {
		fprintf(stderr, "mailquota: %s: %s\n", e.field, e.reason);
		json_decref(body);
		return EXIT_USAGE;
	}
	json_decref(body);
	struct admin *a = admin_new(ctx->cfg.database_url, 1, NULL, 0);
	struct admin_outcome o = { 0 };
	char text[TOKEN_TEXT_MAX];
	enum admin_status st = admin_token_create(a, fields, 0, text, &o);
	json_decref(fields);
	admin_destroy(&a);
	int rc = 0;
	if (st != ADMIN_DONE)
		rc = fail("token bootstrap",
		          st == ADMIN_UNAVAILABLE ? "database unavailable" : o.message);
	else if (strcmp(o.code, "created") != 0)
		rc = fail("token bootstrap", o.code);
	else
		printf("%s\n", text);
	explicit_bzero(text, sizeof(text));
	admin_outcome_free(&o);
	return rc;
}

static int cmd_migrate(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char err[512];
	unsigned n;
	PGconn *conn = db_connect(ctx->cfg.database_url, "mailquota", err, sizeof(err));
	if (conn == NULL)
		return fail("cannot connect to the database", err);
	PQclear(PQexec(conn, "SET client_min_messages = warning"));
	int rc = migrate_apply(conn, &n, err, sizeof(err));
	PQfinish(conn);
	if (rc < 0)
		return fail("migrate", err);
	printf("migrations applied: %u (schema has %u)\n", n, migrations_count);
	return 0;
}

/* ---- usage ---- */

/* "name=value" options after the positional arguments of usage and deliver commands. */
static const char *opt_value(int argc, char **argv, int from, const char *name)
{
	size_t n = strlen(name);
	for (int i = from; i < argc; i++)
		if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=')
			return argv[i] + n + 1;
	return NULL;
}

static int check_opts(int argc, char **argv, int from, const char *const *allowed)
{
	for (int i = from; i < argc; i++) {
		bool ok = false;
		for (const char *const *a = allowed; *a != NULL && !ok; a++)
			ok = strncmp(argv[i], *a, strlen(*a)) == 0 && argv[i][strlen(*a)] == '=';
		if (!ok) {
			fprintf(stderr, "mailquota: unexpected argument \"%s\"\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

static bool count_arg(const char *s, bool signed_ok, int64_t *out)
{
	uint64_t v;
	bool neg = signed_ok && s[0] == '-';
	if (strnum_size(s + neg, (uint64_t)USAGE_DELTA_LIMIT, &v) < 0)
		return false;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return true;
}

struct report {
	char key[USAGE_KEY_MAX + 1];
	char occurred_at[RFC3339_MAX + 1];
	int64_t bytes, messages;
	const char *recipient;
};

static json_t *report_json(const struct report *rep)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:s}", "recipient", rep->recipient, "bytes",
	                      (json_int_t)rep->bytes, "messages", (json_int_t)rep->messages, "key",
	                      rep->key);
	if (rep->occurred_at[0] != '\0')
		json_object_set_new(o, "occurred_at", json_string(rep->occurred_at));
	return o;
}

enum send_result { SENT, SEND_LATER, SEND_REFUSED };

/*
 * POST reports[0..n) in one request, retrying an unreachable API or a 503 a few times when
 * retries > 0. SENT fills *res_r (the results array, caller decrefs); SEND_LATER means try again
 * later (nothing was applied), SEND_REFUSED that the API refused the request as a whole.
 */
static enum send_result send_reports(struct ctx *ctx, json_t *reports, int retries, json_t **res_r,
                                     char *why, size_t whysize)
{
	json_t *body = json_pack("{s:O}", "reports", reports);
	enum send_result out = SEND_LATER;
	for (int attempt = 0; attempt <= retries; attempt++) {
		if (attempt > 0)
			sleep(1);
		struct api_response r;
		if (api_call(api_of(ctx), "POST", "/v1/usage", body, NULL, &r, why, whysize) < 0)
			continue;
		if (r.status == 200 && json_is_array(json_object_get(r.doc, "results"))) {
			*res_r = json_incref(json_object_get(r.doc, "results"));
			out = SENT;
		} else {
			const char *m = json_string_value(json_object_get(r.doc, "message"));
			snprintf(why, whysize, "%s", m != NULL ? m : "unexpected answer");
			out = r.status >= 500 ? SEND_LATER : SEND_REFUSED;
		}
		api_response_free(&r);
		if (out != SEND_LATER)
			break;
	}
	json_decref(body);
	return out;
}

static int print_result(json_t *res)
{
	const char *err = json_string_value(json_object_get(res, "error"));
	const char *key = json_string_value(json_object_get(res, "key"));
	if (err != NULL) {
		fprintf(stderr, "mailquota: usage not recorded (%s): %s (key %s)\n", err,
		        json_string_value(json_object_get(res, "message")), key);
		return strcmp(err, "unknown_recipient") == 0 ? EXIT_NOTFOUND : EXIT_FAIL;
	}
	json_t *u = json_object_get(res, "usage");
	printf("%s: %s%s%s, usage now %lld bytes, %lld messages (key %s)\n",
	       json_string_value(json_object_get(res, "mailbox")),
	       json_string_value(json_object_get(res, "status")),
	       json_is_true(json_object_get(res, "duplicate")) ? " (duplicate: original result)"
	                                                       : "",
	       json_is_true(json_object_get(res, "clamped")) ? " (clamped)" : "",
	       (long long)json_integer_value(json_object_get(u, "bytes")),
	       (long long)json_integer_value(json_object_get(u, "messages")), key);
	return 0;
}

static int cmd_usage_add(struct ctx *ctx, int argc, char **argv)
{
	static const char *const opts[] = { "key", "at", NULL };
	int npos = argc > 2 && strchr(argv[2], '=') == NULL ? 3 : 2;
	struct report rep = { .recipient = argv[0] };
	const char *key = opt_value(argc, argv, npos, "key"),
	           *at = opt_value(argc, argv, npos, "at");
	if (check_opts(argc, argv, npos, opts) < 0 || !count_arg(argv[1], true, &rep.bytes) ||
	    (npos == 3 && !count_arg(argv[2], true, &rep.messages))) {
		fprintf(stderr,
		        "usage: mailquota usage add ADDRESS BYTES [MESSAGES] [key=K] [at=TIME]\n");
		return EXIT_USAGE;
	}
	if (key == NULL) {
		/* no key: this report is new; print the key so a retry can reuse it */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(rep.key, sizeof(rep.key), "cli/%lld.%09ld/%d", (long long)ts.tv_sec,
		         ts.tv_nsec, (int)getpid());
	} else if (str_copy(rep.key, key, sizeof(rep.key)) < 0 || !usage_key_valid(key)) {
		fprintf(stderr,
		        "mailquota: key must be 1-200 printable characters without spaces\n");
		return EXIT_USAGE;
	}
	if (at != NULL && !rfc3339_valid(at)) {
		fprintf(stderr, "mailquota: at must be an RFC 3339 time\n");
		return EXIT_USAGE;
	}
	(void)!str_copy(rep.occurred_at, at ? at : "", sizeof(rep.occurred_at));
	json_t *reports = json_array(), *res = NULL;
	json_array_append_new(reports, report_json(&rep));
	char why[256] = "";
	enum send_result s = send_reports(ctx, reports, 2, &res, why, sizeof(why));
	json_decref(reports);
	if (s != SENT) {
		fprintf(stderr, "mailquota: usage not recorded: %s (retry with key=%s)\n", why,
		        rep.key);
		return s == SEND_LATER ? EXIT_TEMP : EXIT_FAIL;
	}
	int rc = ctx->json ? (print_json(json_array_get(res, 0)), 0)
	                   : print_result(json_array_get(res, 0));
	json_decref(res);
	return rc;
}

static int cmd_usage_set(struct ctx *ctx, int argc, char **argv)
{
	static const char *const opts[] = { "source", "at", NULL };
	int npos = argc > 2 && strchr(argv[2], '=') == NULL ? 3 : 2;
	int64_t bytes, msgs = -1;
	const char *source = opt_value(argc, argv, npos, "source"),
	           *at = opt_value(argc, argv, npos, "at");
	struct resource_key key;
	if (check_opts(argc, argv, npos, opts) < 0 || !count_arg(argv[1], false, &bytes) ||
	    (npos == 3 && !count_arg(argv[2], false, &msgs)) ||
	    (at != NULL && !rfc3339_valid(at)) ||
	    (source != NULL && (source[0] == '\0' || strlen(source) > USAGE_SOURCE_MAX))) {
		fprintf(stderr, "usage: mailquota usage set ADDRESS BYTES [MESSAGES] [source=S] "
		                "[at=TIME]\n");
		return EXIT_USAGE;
	}
	if (check_key(ctx, RESOURCE_MAILBOX, argv[0], &key) < 0)
		return EXIT_USAGE;
	json_t *body = json_pack("{s:I, s:s}", "bytes", (json_int_t)bytes, "source",
	                         source != NULL ? source : "cli");
	if (msgs >= 0)
		json_object_set_new(body, "messages", json_integer(msgs));
	if (at != NULL)
		json_object_set_new(body, "measured_at", json_string(at));
	char *path = item_path(RESOURCE_MAILBOX, key.text, "/usage");
	struct api_response r;
	int rc = call(ctx, key.text, "PUT", path, body, NULL, &r);
	free(path);
	json_decref(body);
	if (rc == 0) {
		if (ctx->json)
			print_json(r.doc);
		api_response_free(&r);
	}
	return rc;
}

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

static void print_state(json_t *m)
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

static int cmd_usage_get(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	struct resource_key key;
	if (check_key(ctx, RESOURCE_MAILBOX, argv[0], &key) < 0)
		return EXIT_USAGE;
	char *path = item_path(RESOURCE_MAILBOX, key.text, "/usage");
	struct api_response r;
	int rc = call(ctx, key.text, "GET", path, NULL, NULL, &r);
	free(path);
	if (rc != 0)
		return rc;
	if (ctx->json) {
		print_json(r.doc);
	} else {
		printf("mailbox %s\n", json_string_value(json_object_get(r.doc, "address")));
		print_state(r.doc);
	}
	api_response_free(&r);
	return 0;
}

/*
 * The report spool: one line per report that could not be recorded,
 * "key TAB occurred_at TAB bytes TAB messages TAB recipient", appended under an exclusive
 * lock; `mailquota usage flush` replays it (the keys make replays safe).
 */
static int spool_append(struct ctx *ctx, const struct report *rep)
{
	char line[USAGE_KEY_MAX + RFC3339_MAX + ADDRESS_MAX + 96];
	int n = snprintf(line, sizeof(line), "%s\t%s\t%lld\t%lld\t%s\n", rep->key, rep->occurred_at,
	                 (long long)rep->bytes, (long long)rep->messages, rep->recipient);
	if (n < 0 || (size_t)n >= sizeof(line) || strpbrk(rep->recipient, "\t\n") != NULL)
		return -1;
	int fd = open(ctx->cfg.report_spool, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int rc = flock(fd, LOCK_EX) == 0 && write(fd, line, (size_t)n) == n ? 0 : -1;
	close(fd);
	return rc;
}

/* Parse one spool line (modified in place); 0 or -1. */
static int spool_parse(char *line, struct report *rep)
{
	char *f[5];
	int nf = 0;
	line[strcspn(line, "\n")] = '\0';
	for (char *p = line; nf < 5; nf++) {
		f[nf] = p;
		char *tab = strchr(p, '\t');
		if (tab == NULL) {
			nf++;
			break;
		}
		*tab = '\0';
		p = tab + 1;
	}
	memset(rep, 0, sizeof(*rep));
	if (nf != 5 || !usage_key_valid(f[0]) || !rfc3339_valid(f[1]) ||
	    !count_arg(f[2], true, &rep->bytes) || !count_arg(f[3], true, &rep->messages) ||
	    f[4][0] == '\0')
		return -1;
	(void)!str_copy(rep->key, f[0], sizeof(rep->key));
	(void)!str_copy(rep->occurred_at, f[1], sizeof(rep->occurred_at));
	rep->recipient = f[4];
	return 0;
}

static int cmd_usage_flush(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	int fd = open(ctx->cfg.report_spool, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			printf("nothing spooled\n");
			return 0;
		}
		return fail(ctx->cfg.report_spool, strerror(errno));
	}
	if (flock(fd, LOCK_EX) < 0) {
		close(fd);
		return fail(ctx->cfg.report_spool, strerror(errno));
	}
	FILE *in = fdopen(dup(fd), "r");
	struct buf keep;
	buf_init(&keep, SIZE_MAX / 2);
	char line[1024];
	unsigned applied = 0, dropped = 0, kept = 0;
	/* replay in batches of up to USAGE_BATCH_MAX: one request, one transaction each */
	char **lines = NULL;
	size_t nlines = 0;
	while (in != NULL && fgets(line, sizeof(line), in) != NULL) {
		lines = xrealloc(lines, (nlines + 1) * sizeof(*lines));
		lines[nlines++] = xstrdup(line);
	}
	if (in != NULL)
		fclose(in);
	for (size_t start = 0; start < nlines; start += USAGE_BATCH_MAX) {
		size_t end = start + USAGE_BATCH_MAX < nlines ? start + USAGE_BATCH_MAX : nlines;
		json_t *reports = json_array();
		size_t *idx = xcalloc(end - start, sizeof(*idx));
		size_t n = 0;
		for (size_t i = start; i < end; i++) {
			char tmp[1024];
			struct report rep;
			(void)!str_copy(tmp, lines[i], sizeof(tmp));
			if (spool_parse(tmp, &rep) < 0) {
				fprintf(stderr, "mailquota: dropping a malformed spool line\n");
				dropped++;
				continue;
			}
			json_array_append_new(reports, report_json(&rep));
			idx[n++] = i;
		}
		json_t *res = NULL;
		char why[256] = "";
		enum send_result s =
		        n > 0 ? send_reports(ctx, reports, 0, &res, why, sizeof(why)) : SENT;
		for (size_t j = 0; j < n; j++) {
			const char *err = s == SENT ? json_string_value(json_object_get(
			                                      json_array_get(res, j), "error"))
			                            : NULL;
			if (s == SEND_LATER || (s == SENT && res == NULL)) {
				if (buf_puts(&keep, lines[idx[j]]) < 0)
					abort();
				kept++;
			} else if (s == SEND_REFUSED || err != NULL) {
				fprintf(stderr, "mailquota: dropping a spooled report: %s\n",
				        err != NULL ? err : why);
				dropped++;
			} else {
				applied++;
			}
		}
		json_decref(res);
		json_decref(reports);
		free(idx);
	}
	for (size_t i = 0; i < nlines; i++)
		free(lines[i]);
	free(lines);
	int rc = ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0 &&
	                         (keep.len == 0 ||
	                          write(fd, keep.data, keep.len) == (ssize_t)keep.len)
	                 ? 0
	                 : -1;
	close(fd);
	buf_free(&keep);
	printf("spooled reports: %u applied, %u kept for later, %u dropped\n", applied, kept,
	       dropped);
	if (rc < 0)
		return fail(ctx->cfg.report_spool, "cannot rewrite the spool");
	return kept > 0 ? EXIT_TEMP : 0;
}

/*
 * deliver: a delivery wrapper for Postfix pipe(8) transports. The message on standard input
 * goes to COMMAND (the real local delivery agent) while its bytes are counted; when COMMAND
 * succeeds the delivery is reported through the API as +bytes, +1 message under a key that
 * makes Postfix's redeliveries of the same message count once. Exits with COMMAND's status, so
 * Postfix sees the delivery's real outcome; a report that cannot be recorded is spooled and
 * never turns a done delivery into a retry (that would deliver the message twice).
 */
static int cmd_deliver(struct ctx *ctx, int argc, char **argv)
{
	int sep = -1;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			sep = i;
			break;
		}
	static const char *const opts[] = { "key", NULL };
	if (sep < 0 || sep + 1 >= argc || check_opts(sep, argv, 1, opts) < 0) {
		fprintf(stderr,
		        "usage: mailquota deliver RECIPIENT [key=K] -- COMMAND [ARGS...]\n");
		return EX_USAGE_MAIL;
	}
	const char *key = opt_value(sep, argv, 1, "key");
	int pipefd[2];
	if (pipe(pipefd) < 0)
		return EX_TEMPFAIL_MAIL;
	pid_t pid = fork();
	if (pid < 0)
		return EX_TEMPFAIL_MAIL;
	if (pid == 0) {
		dup2(pipefd[0], STDIN_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execvp(argv[sep + 1], argv + sep + 1);
		fprintf(stderr, "mailquota deliver: cannot run %s: %s\n", argv[sep + 1],
		        strerror(errno));
		_exit(EX_TEMPFAIL_MAIL);
	}
	close(pipefd[0]);
	signal(SIGPIPE, SIG_IGN);
	/* copy, count and hash (FNV-1a) the message: the hash keys redeliveries of it */
	uint64_t bytes = 0, hash = 0xcbf29ce484222325ULL;
	char chunk[65536];
	ssize_t n;
	bool write_failed = false;
	while ((n = read(STDIN_FILENO, chunk, sizeof(chunk))) > 0) {
		bytes += (uint64_t)n;
		for (ssize_t i = 0; i < n; i++) {
			hash ^= (unsigned char)chunk[i];
			hash *= 0x100000001b3ULL;
		}
		for (ssize_t off = 0; off < n && !write_failed;) {
			ssize_t w = write(pipefd[1], chunk + off, (size_t)(n - off));
			if (w < 0) {
				write_failed = true;
				break;
			}
			off += w;
		}
	}
	close(pipefd[1]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int rc = WIFEXITED(status) ? WEXITSTATUS(status) : EX_TEMPFAIL_MAIL;
	if (rc != 0 || n < 0 || write_failed)
		return rc != 0 ? rc : EX_TEMPFAIL_MAIL;

	struct report rep = { .recipient = argv[0], .bytes = (int64_t)bytes, .messages = 1 };
	if (key != NULL && usage_key_valid(key))
		(void)!str_copy(rep.key, key, sizeof(rep.key));
	else
		snprintf(rep.key, sizeof(rep.key), "deliver/%016llx/%.150s",
		         (unsigned long long)hash, argv[0]);
	for (char *c = rep.key; *c; c++) /* keep the key printable whatever the address holds */
		if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
			*c = '_';
	/* when it happened: a recalculation measured after this counts it already */
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(rep.occurred_at, sizeof(rep.occurred_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *reports = json_array(), *res = NULL;
	json_array_append_new(reports, report_json(&rep));
	char why[256] = "";
	enum send_result s = send_reports(ctx, reports, 2, &res, why, sizeof(why));
	json_decref(reports);
	const char *err =
	        s == SENT ? json_string_value(json_object_get(json_array_get(res, 0), "error"))
	                  : NULL;
	json_decref(res);
	if (s == SENT && err == NULL)
		return 0;
	if (s == SEND_LATER && spool_append(ctx, &rep) == 0) {
		fprintf(stderr,
		        "mailquota deliver: delivered; usage spooled to %s (run mailquota "
		        "usage flush): %s\n",
		        ctx->cfg.report_spool, why);
		return 0;
	}
	fprintf(stderr,
	        "mailquota deliver: delivered, but usage not recorded for %s (%llu bytes, "
	        "key %s): %s; a recalculation will correct it\n",
	        argv[0], (unsigned long long)bytes, rep.key, err != NULL ? err : why);
	return 0;
}

/* ---- bulk ---- */

/* format=, type=, mode=, dry_run= arguments as a query string; -1 (reported) otherwise. */
static int bulk_query(int argc, char **argv, const char *const *allowed, struct buf *q)
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
		char *v = api_escape(eq + 1);
		if (buf_printf(q, "%s%.*s=%s", q->len ? "&" : "?", (int)(eq - argv[i]), argv[i],
		               v) < 0)
			abort();
		free(v);
	}
	if (q->len == 0 && buf_puts(q, "") < 0)
		abort();
	return 0;
}

/* export [format=ndjson|csv] [type=domains|mailboxes|aliases]: to standard output */
static int cmd_export(struct ctx *ctx, int argc, char **argv)
{
	static const char *const allowed[] = { "format", "type", NULL };
	struct buf q, path;
	buf_init(&q, 4096);
	if (bulk_query(argc, argv, allowed, &q) < 0) {
		buf_free(&q);
		return EXIT_USAGE;
	}
	buf_init(&path, 8192);
	if (buf_printf(&path, "/v1/export%s", q.data) < 0)
		abort();
	struct api_response r;
	char err[256];
	int rc = 0;
	if (api_call_raw(api_of(ctx), "GET", path.data, NULL, NULL, 0, stdout, false, &r, err,
	                 sizeof(err)) < 0)
		rc = api_error("export", &r, err); /* a cut stream ends here too */
	else if (r.status != 200)
		rc = api_error("export", &r, NULL);
	else if (fflush(stdout) != 0)
		rc = fail("export", strerror(errno));
	api_response_free(&r);
	buf_free(&q);
	buf_free(&path);
	return rc;
}

/* import FILE [format=] [type=] [mode=] [dry_run=]: one request, one transaction */
static int cmd_import(struct ctx *ctx, int argc, char **argv)
{
	static const char *const allowed[] = { "format", "type", "mode", "dry_run", NULL };
	struct buf q, path, data;
	buf_init(&q, 4096);
	if (bulk_query(argc - 1, argv + 1, allowed, &q) < 0) {
		buf_free(&q);
		return EXIT_USAGE;
	}
	/* the format from the file name when not given */
	size_t fl = strlen(argv[0]);
	bool csv = strstr(q.data, "format=csv") != NULL ||
	           (strstr(q.data, "format=") == NULL && fl > 4 &&
	            strcmp(argv[0] + fl - 4, ".csv") == 0);
	if (csv && strstr(q.data, "format=") == NULL &&
	    buf_printf(&q, "%sformat=csv", q.len ? "&" : "?") < 0)
		abort();
	FILE *f = strcmp(argv[0], "-") == 0 ? stdin : fopen(argv[0], "r");
	if (f == NULL) {
		buf_free(&q);
		return fail(argv[0], strerror(errno));
	}
	buf_init(&data, BULK_BODY_MAX);
	char chunk[65536];
	size_t n;
	bool too_big = false;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(&data, chunk, n) < 0) {
			too_big = true;
			break;
		}
	bool read_err = ferror(f);
	if (f != stdin)
		fclose(f);
	if (too_big || read_err) {
		buf_free(&q);
		buf_free(&data);
		return fail(argv[0], too_big ? "larger than 32 MiB: split it" : strerror(errno));
	}
	buf_init(&path, 8192);
	if (buf_printf(&path, "/v1/import%s", q.data) < 0)
		abort();
	struct api_response r;
	char err[256];
	int rc;
	bool tty = isatty(STDERR_FILENO) && !ctx->json;
	if (api_call_raw(api_of(ctx), "POST", path.data, csv ? "text/csv" : "application/x-ndjson",
	                 data.data != NULL ? data.data : "", data.len, NULL, tty, &r, err,
	                 sizeof(err)) < 0) {
		rc = api_error("import", &r, err);
		goto out;
	}
	if (r.status != 200 && r.status != 422) {
		rc = api_error("import", &r, NULL);
		api_response_free(&r);
		goto out;
	}
	if (ctx->json) {
		print_json(r.doc);
	} else {
		json_t *d = r.doc;
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(d, "errors"), i, e)
		{
			const char *fld = json_string_value(json_object_get(e, "field"));
			fprintf(stderr, "%s:%lld: %s%s%s\n", argv[0],
			        (long long)json_integer_value(json_object_get(e, "line")),
			        fld != NULL ? fld : "", fld != NULL ? ": " : "",
			        json_string_value(json_object_get(e, "message")));
		}
		long long total = json_integer_value(json_object_get(d, "errors_total"));
		if ((size_t)total > json_array_size(json_object_get(d, "errors")))
			fprintf(stderr, "... and %lld more errors\n",
			        total - (long long)json_array_size(json_object_get(d, "errors")));
		printf("%s: %lld rows: %lld created, %lld updated, %lld unchanged, %lld failed; "
		       "%s\n",
		       argv[0], (long long)json_integer_value(json_object_get(d, "rows")),
		       (long long)json_integer_value(json_object_get(d, "created")),
		       (long long)json_integer_value(json_object_get(d, "updated")),
		       (long long)json_integer_value(json_object_get(d, "unchanged")),
		       (long long)json_integer_value(json_object_get(d, "failed")),
		       json_is_true(json_object_get(d, "applied"))   ? "applied"
		       : json_is_true(json_object_get(d, "dry_run")) ? "dry run: nothing applied"
		                                                     : "nothing applied");
	}
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

/* ---- check ---- */

static int cmd_check(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	uint64_t size;
	if (strnum_size(argv[1], INT64_MAX, &size) < 0) {
		fprintf(stderr, "mailquota: %s is not a size\n", argv[1]);
		return EXIT_USAGE;
	}
	char *rcpt = api_escape(argv[0]);
	char path[1024];
	int pn = snprintf(path, sizeof(path), "/v1/check?recipient=%s&size=%llu", rcpt,
	                  (unsigned long long)size);
	free(rcpt);
	if (pn < 0 || (size_t)pn >= sizeof(path)) {
		fprintf(stderr, "mailquota: %s: address too long\n", argv[0]);
		return EXIT_USAGE;
	}
	struct api_response r;
	char err[256];
	if (api_call(api_of(ctx), "GET", path, NULL, NULL, &r, err, sizeof(err)) < 0)
		return api_error("check", &r, err);
	if (r.status == 400) {
		api_error(argv[0], &r, NULL);
		api_response_free(&r);
		return EXIT_USAGE;
	}
	if (r.status != 200) {
		int rc = api_error("check", &r, NULL);
		api_response_free(&r);
		return rc;
	}
	json_t *d = r.doc;
	const char *verdict = json_string_value(json_object_get(d, "verdict"));
	const char *reason = json_string_value(json_object_get(d, "reason"));
	if (ctx->json) {
		print_json(d);
	} else {
		printf("recipient: %s (%s)\n", json_string_value(json_object_get(d, "address")),
		       json_string_value(json_object_get(d, "match")));
		printf("size:      %llu\n", (unsigned long long)size);
		printf("verdict:   %s", verdict);
		if (reason != NULL && strcmp(reason, "none") != 0)
			printf(" (%s)", reason);
		printf("\naction:    %s\n", json_string_value(json_object_get(d, "action")));
		json_t *targets = json_object_get(d, "targets"),
		       *one = json_object_get(d, "mailbox");
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
			print_state(m);
		}
		json_decref(targets);
	}
	int rc = strcmp(verdict, "accept") == 0     ? 0
	         : strcmp(verdict, "unknown") == 0  ? EXIT_NOTFOUND
	         : strcmp(verdict, "tempfail") == 0 ? EXIT_TEMP
	                                            : EXIT_REFUSED;
	api_response_free(&r);
	return rc;
}

static const struct command commands[] = {
	{ "migrate", NULL, 0, 0, cmd_migrate, "", "apply pending schema migrations (database)" },
	{ "token", "bootstrap", 1, 4, cmd_token_bootstrap,
	  "NAME [scope=S] [mailbox=ADDRESS] [expires=TIME]",
	  "make a token with database access (the first admin token); prints it" },
	{ "token", "create", 1, 4, cmd_token_create,
	  "NAME [scope=S] [mailbox=ADDRESS] [expires=TIME]",
	  "make a token (scope admin, read, usage or self); prints it once" },
	{ "token", "list", 0, 1, cmd_token_list, "[all]", "list tokens (all: with revoked ones)" },
	{ "token", "get", 1, 1, cmd_token_get, "ID", "show a token (never its secret)" },
	{ "token", "revoke", 1, 1, cmd_token_revoke, "ID", "revoke a token everywhere" },
	{ "domain", "add", 1, 64, cmd_add, "DOMAIN [FIELD=VALUE]...", "create a domain" },
	{ "domain", "set", 2, 64, cmd_set, "DOMAIN FIELD=VALUE...",
	  "change domain limits (pool, storage, messages, mailbox-max-size, max-size, grace)" },
	{ "domain", "del", 1, 1, cmd_del, "DOMAIN", "delete a domain and all it holds" },
	{ "domain", "get", 1, 1, cmd_get, "DOMAIN", "show a domain" },
	{ "domain", "list", 0, 16, cmd_list, "[NAME=VALUE]...",
	  "list domains (prefix=, updated_since=, sort=, limit=)" },
	{ "mailbox", "add", 1, 64, cmd_add, "ADDRESS [FIELD=VALUE]...", "create a mailbox" },
	{ "mailbox", "set", 2, 64, cmd_set, "ADDRESS FIELD=VALUE...",
	  "change mailbox limits (storage, messages, max-size, grace, enabled)" },
	{ "mailbox", "del", 1, 1, cmd_del, "ADDRESS", "delete a mailbox" },
	{ "mailbox", "get", 1, 1, cmd_get, "ADDRESS", "show a mailbox" },
	{ "mailbox", "list", 0, 16, cmd_list, "[DOMAIN] [NAME=VALUE]...",
	  "list mailboxes (over_quota=, min_usage_percent=, enabled=, prefix=, sort=, limit=)" },
	{ "alias", "add", 2, 1001, cmd_alias_add, "ADDRESS|@DOMAIN MAILBOX...",
	  "create an alias (or catch-all) or add targets to it" },
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
	{ "audit", NULL, 0, 16, cmd_audit, "[NAME=VALUE]...",
	  "show the audit log, newest first (object=, action=, token=, since=, until=, limit=)" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: mailquota [-c config] [-d conninfo] [-u url] [--json] "
	             "[--if-match ETAG] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		char head[96];
		snprintf(head, sizeof(head), "%s%s%s %s", commands[i].noun,
		         commands[i].verb ? " " : "", commands[i].verb ? commands[i].verb : "",
		         commands[i].args);
		fprintf(out, "  %-48s %s\n", head, commands[i].help);
	}
	fprintf(out,
	        "\n--if-match ETAG (the etag a get shows) makes set and del change only that\n"
	        "version (exit 6 if it changed since).\n"
	        "Everything but migrate and token bootstrap goes through the HTTP API: the URL\n"
	        "comes from -u, MAILQUOTA_URL, api_url or http_listen; the token from\n"
	        "MAILQUOTA_TOKEN or api_token_file. Sizes take K, M, G, T suffixes (powers of\n"
	        "1024); a limit of \"none\" inherits the domain default (mailbox) or means\n"
	        "unlimited (domain).\n"
	        "Exit codes: 0 success, 1 refused by the API, 2 usage error, 3 check: refused,\n"
	        "4 not found (check: unknown recipient), 5 temporary failure (retry),\n"
	        "6 conflict (exists, or changed since read), 7 no token or not allowed.\n");
}

int main(int argc, char **argv)
{
	struct ctx ctx = { .json = false };
	const char *path = NULL, *conninfo = NULL;
	char err[CONFIG_ERROR_MAX];
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "if-match", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "+c:d:u:e:jhV", longopts, NULL)) != -1) {
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
		case 'e': {
			/* as the API shows it, with or without its quotes */
			static char etag[64];
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
	if (config_load(&ctx.cfg, path, err) < 0) {
		fprintf(stderr, "mailquota: %s\n", err);
		config_free(&ctx.cfg);
		return EXIT_FAIL;
	}
	if (conninfo != NULL && (config_set(&ctx.cfg, "database_url", conninfo, err) < 0 ||
	                         config_finish(&ctx.cfg, err) < 0)) {
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
