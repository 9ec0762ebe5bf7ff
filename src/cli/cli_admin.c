/*
 * cli_admin: the mailquota commands that administer the installation rather than its
 * mailboxes: API tokens, the audit log, and the two commands that need the database itself
 * (migrate, token bootstrap: before any token exists there is no API to ask). It must never
 * print a token's secret but the once it is made, nor keep it in memory longer than needed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "cli.h"
#include "db.h"
#include "migrate.h"
#include "rfc3339.h"
#include "strnum.h"
#include "token.h"
#include "xalloc.h"

/* ---- tokens ---- */

/* "scope=S mailbox=A expires=T" into a token body; -1 (reported) on anything else */
static int token_body(const char *name, int argc, char **argv, json_t **body_r)
{
	static const struct {
		const char *arg; /* as typed, with its '=' */
		const char *field;
	} args[] = {
		{ "scope=", "scope" },
		{ "mailbox=", "mailbox" },
		{ "expires=", "expires_at" },
	};
	json_t *body = json_pack("{s:s, s:s}", "name", name, "scope", "admin");
	for (int i = 0; i < argc; i++) {
		const char *field = NULL, *value = NULL;
		for (size_t j = 0; j < sizeof(args) / sizeof(args[0]) && field == NULL; j++) {
			size_t l = strlen(args[j].arg);
			if (strncmp(argv[i], args[j].arg, l) == 0) {
				field = args[j].field;
				value = argv[i] + l;
			}
		}
		if (field == NULL) {
			fprintf(stderr, "mailquota: %s: want scope=, mailbox= or expires=\n",
			        argv[i]);
			json_decref(body);
			return -1;
		}
		json_object_set_new(body, field, json_string(value));
	}
	*body_r = body;
	return 0;
}

int cmd_token_create(struct ctx *ctx, int argc, char **argv)
{
	json_t *body;
	if (token_body(argv[0], argc - 1, argv + 1, &body) < 0)
		return EXIT_USAGE;
	struct api_response r;
	int rc = cli_call(ctx, "token create", "POST", "/v1/tokens", body, NULL, &r);
	json_decref(body);
	if (rc != 0)
		return rc;
	if (ctx->json) {
		cli_print_json(r.doc);
	} else {
		printf("%s\n", json_string_value(json_object_get(r.doc, "token")));
		fprintf(stderr, "token %lld (%s, scope %s): shown once, store it now\n",
		        (long long)json_integer_value(json_object_get(r.doc, "id")), argv[0],
		        json_string_value(json_object_get(r.doc, "scope")));
	}
	api_response_free(&r);
	return 0;
}

/* self-link ADDRESS [expires=DURATION]: a short-lived self token, printed as the URL of the
   self-check page with the token in its fragment (which browsers never send) */
int cmd_self_link(struct ctx *ctx, int argc, char **argv)
{
	uint64_t life = 3600;
	struct resource_key key;
	if (argc == 2 && (strncmp(argv[1], "expires=", 8) != 0 ||
	                  strnum_duration(argv[1] + 8, 31536000, &life) < 0 || life == 0)) {
		fprintf(stderr,
		        "mailquota: %s: want expires=DURATION (e.g. 30m, 1h, 7d; at most "
		        "self_token_max_lifetime, default 1h)\n",
		        argv[1]);
		return EXIT_USAGE;
	}
	if (cli_check_key(ctx, RESOURCE_MAILBOX, argv[0], &key) < 0)
		return EXIT_USAGE;
	char page[API_URL_MAX + 8], when[RFC3339_MAX + 1];
	int n;
	if (ctx->cfg.self_page_url[0] != '\0') {
		n = snprintf(page, sizeof(page), "%s", ctx->cfg.self_page_url);
	} else if (cli_api_url(ctx, page, sizeof(page) - 8) < 0) {
		n = -1;
	} else {
		size_t len = strlen(page); /* at most sizeof(page) - 9: "/self" fits */
		if (len > 0 && page[len - 1] == '/')
			len--; /* "http://host:8080/" names the same API */
		n = snprintf(page + len, sizeof(page) - len, "/self");
	}
	if (n < 0 || (size_t)n >= sizeof(page)) {
		fprintf(stderr, "mailquota: no page URL: set self_page_url, api_url or -u\n");
		return EXIT_USAGE;
	}
	rfc3339_format((int64_t)time(NULL) + (int64_t)life, when);
	json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "name", "self-link", "scope", "self",
	                         "mailbox", key.text, "expires_at", when);
	struct api_response r;
	int rc = cli_call(ctx, "self-link", "POST", "/v1/tokens", body, NULL, &r);
	json_decref(body);
	if (rc != 0)
		return rc;
	const char *tok = json_string_value(json_object_get(r.doc, "token"));
	if (tok == NULL) {
		api_response_free(&r);
		return cli_fail("self-link", "the API's answer has no token");
	}
	if (strncmp(page, "https://", 8) != 0)
		fprintf(stderr,
		        "mailquota: note: %.40s... is not https: the token would cross the "
		        "network in clear; set self_page_url to the page behind TLS\n",
		        page);
	if (ctx->json) {
		json_object_set_new(r.doc, "url", json_sprintf("%s#token=%s", page, tok));
		cli_print_json(r.doc);
	} else {
		printf("%s#token=%s\n", page, tok);
		fprintf(stderr,
		        "a link for %s until %s (token %lld): whoever has it sees this "
		        "mailbox's quota; `mailquota token revoke %lld` ends it\n",
		        key.text, when, (long long)json_integer_value(json_object_get(r.doc, "id")),
		        (long long)json_integer_value(json_object_get(r.doc, "id")));
	}
	api_response_free(&r);
	return 0;
}

int cmd_token_list(struct ctx *ctx, int argc, char **argv)
{
	if (argc == 1 && strcmp(argv[0], "all") != 0) {
		fprintf(stderr, "usage: mailquota token list [all]\n");
		return EXIT_USAGE;
	}
	char *a[] = { (char *)"include_revoked=true" };
	return cli_list(ctx, RESOURCE_TOKEN, argc, a, NULL);
}

/* "/v1/tokens/ID" into path[size] from a command-line id: 0, or -1 (reported). */
static int token_path(const char *arg, char *path, size_t size)
{
	uint64_t id;
	if (strnum_u64(arg, strlen(arg), INT64_MAX, &id) < 0 || id == 0) {
		fprintf(stderr, "mailquota: %s is not a token id\n", arg);
		return -1;
	}
	int n = snprintf(path, size, "/v1/tokens/%llu", (unsigned long long)id);
	return n < 0 || (size_t)n >= size ? -1 : 0; /* 20 digits at most: callers give room */
}

int cmd_token_get(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	char path[64];
	if (token_path(argv[0], path, sizeof(path)) < 0)
		return EXIT_USAGE;
	struct api_response r;
	int rc = cli_call(ctx, argv[0], "GET", path, NULL, NULL, &r);
	if (rc != 0)
		return rc;
	if (ctx->json) {
		cli_print_json(r.doc);
	} else {
		cli_print_header(RESOURCE_TOKEN);
		cli_print_row(RESOURCE_TOKEN, r.doc);
	}
	api_response_free(&r);
	return 0;
}

int cmd_token_revoke(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	char path[64];
	if (token_path(argv[0], path, sizeof(path)) < 0)
		return EXIT_USAGE;
	struct api_response r;
	int rc = cli_call(ctx, argv[0], "DELETE", path, NULL, NULL, &r);
	if (rc == 0)
		api_response_free(&r);
	return rc;
}

/* token bootstrap NAME [...]: with database access, no API token (the first admin token) */
int cmd_token_bootstrap(struct ctx *ctx, int argc, char **argv)
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
	struct admin_result res = { 0 };
	char text[TOKEN_TEXT_MAX];
	const char *err;
	int rc = 0;
	if (admin_token_issue(a, fields, 0, text, &res, &err) < 0)
		rc = cli_fail("token bootstrap",
		              err); /* at once: err is db.c's thread-local text */
	else if (res.code == ADMIN_INVALID_VALUE)
		rc = cli_fail("token bootstrap", res.message);
	else if (res.code != ADMIN_CREATED)
		rc = cli_fail("token bootstrap", admin_code_name(res.code));
	else
		printf("%s\n", text);
	json_decref(fields);
	admin_destroy(&a);
	explicit_bzero(text, sizeof(text));
	admin_result_free(&res);
	return rc;
}

/* ---- the database itself ---- */

int cmd_migrate(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const char *err;
	unsigned n;
	PGconn *conn = db_open(ctx->cfg.database_url, "mailquota", NULL, &err);
	if (conn == NULL)
		return cli_fail("cannot connect to the database", err);
	/* a migration's NOTICEs are for its author, not for whoever runs it */
	if (db_exec(conn, "SET client_min_messages = warning", db_call_timeout_ms(NULL), &err) <
	            0 ||
	    migrate_run(conn, &n, &err) < 0) {
		int rc = cli_fail("migrate", err);
		PQfinish(conn);
		return rc;
	}
	PQfinish(conn);
	printf("migrations applied: %u (schema has %u)\n", n, migrations_count);
	return 0;
}

/* ---- audit ---- */

static void print_audit_row(const struct ctx *ctx, json_t *it)
{
	(void)ctx;
	const char *tn = json_string_value(json_object_get(it, "token_name"));
	printf("%8lld  %-27s %-8s %-16s %s\n",
	       (long long)json_integer_value(json_object_get(it, "id")),
	       json_string_value(json_object_get(it, "at")), tn ? tn : "-",
	       json_string_value(json_object_get(it, "action")),
	       json_string_value(json_object_get(it, "object")));
}

int cli_log_list(struct ctx *c, const struct cli_log *log, int n, char **a)
{
	bool has_limit = false;
	for (int i = 0; i < n; i++)
		has_limit |= strncmp(a[i], "limit=", 6) == 0;
	if (has_limit)
		return cli_list(c, RESOURCE_TOKEN, n, a, log);
	char **b = xcalloc((size_t)n + 1, sizeof(*b));
	memcpy(b, a, (size_t)n * sizeof(*b));
	b[n] = (char *)LOG_DEFAULT_LIMIT;
	int rc = cli_list(c, RESOURCE_TOKEN, n + 1, b, log);
	free(b);
	return rc;
}

int cmd_audit(struct ctx *c, int n, char **a)
{
	static const struct cli_log audit = {
		"/v1/audit",
		"      ID  AT                          TOKEN    ACTION           OBJECT",
		print_audit_row
	};
	return cli_log_list(c, &audit, n, a);
}
