/*
 * cli: what the files of the mailquota command share. cli.c holds main, the global options and
 * the command table, and the helpers below that every command group uses to reach the API;
 * each cli_<group>.c holds the cmd_* functions of its rows: cli_objects.c (domains, mailboxes,
 * aliases), cli_admin.c (tokens, audit, migrate), cli_usage.c (usage reports, the spool,
 * deliver), cli_load.c (usage load), cli_check.c (check), cli_stats.c (stats) and cli_bulk.c
 * (import, export). A command prints its own output and errors and returns the process's exit
 * code.
 */
#ifndef MQ_CLI_H
#define MQ_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "apiclient.h"
#include "config.h"
#include "resource.h"
#include "sizetext.h"

#define EXIT_FAIL     1 /* the API refused the request (its message says why) */
#define EXIT_USAGE    2 /* bad command line */
#define EXIT_REFUSED  3 /* check: the recipient would be refused */
#define EXIT_NOTFOUND 4 /* no such object; check: unknown recipient */
#define EXIT_TEMP     5 /* the API or its database cannot answer now: retry */
#define EXIT_CONFLICT 6 /* exists already, or changed since read (412) */
#define EXIT_AUTH     7 /* no token, or the token may not do this */

#define CLI_QUERY_MAX 4096 /* the query string built from a command's name=value arguments */
#define CLI_ERROR_MAX 256  /* an API's message kept for an error_r (cut to fit) */

/* One run of the command. */
struct ctx {
	struct config cfg;
	bool json;
	bool bytes; /* --bytes: sizes as byte counts, not in binary units ("7.5 MiB") */
	const char *url_opt;
	const char *if_match;      /* --if-match ETAG: set and del change only that version */
	enum resource_kind kind;   /* of the command's noun: domain, mailbox, alias */
	struct api_client *api;    /* made on first use by cli_api() */
	char error[CLI_ERROR_MAX]; /* an API's message handed out as an error_r: valid until
	                              the next call on this ctx */
};

/* A row's function: argv[0..argc) are the arguments after the noun and verb. */
typedef int (*cmd_fn)(struct ctx *ctx, int argc, char **argv);

#define API_URL_MAX 1024 /* the API's base URL, and the self-check page's */

/* The API's base URL for this run (-u, MAILQUOTA_URL, api_url, else http:// and http_listen)
   into out[size]: 0, or -1 when there is none or it does not fit. */
int cli_api_url(struct ctx *ctx, char *out, size_t size) __attribute__((warn_unused_result));

/* "mailquota: what: err" on standard error; returns EXIT_FAIL. */
int cli_fail(const char *what, const char *err);

/*
 * The API client of this run, made on first use from -u / MAILQUOTA_URL / api_url and the
 * token; without a URL or a token it says so and exits (EXIT_USAGE, EXIT_AUTH).
 */
struct api_client *cli_api(struct ctx *ctx);

/* Print what went wrong with a call (transport: the reason no answer came, or NULL for the
   answer r) and return its exit code. */
int cli_api_error(const char *what, const struct api_response *r, const char *transport);

/*
 * One call; on a 2xx answer returns 0 with *r (caller frees with api_response_free), else
 * prints the error (naming what) and returns its exit code.
 */
int cli_call(struct ctx *ctx, const char *what, const char *method, const char *path, json_t *body,
             const char *if_match, struct api_response *r);

/* doc as indented JSON on standard output. */
void cli_print_json(json_t *doc);

/* Parse a key of kind locally (the API would refuse it too, but a usage error is clearer):
   0 with *key, or -1 after printing why. */
int cli_check_key(struct ctx *ctx, enum resource_kind kind, const char *s,
                  struct resource_key *key);

/* The API path of an object's collection: "/v1/domains"... */
const char *cli_collection(enum resource_kind kind);

/* "/v1/<kind>s/<key, escaped><suffix>" (malloc'd). */
char *cli_item_path(struct ctx *ctx, enum resource_kind kind, const char *key, const char *suffix);

/* A newest-first log the API pages like a list (the audit log, warnings): its path, the table's
   header line and how one item becomes a row. */
struct cli_log {
	const char *path;
	const char *header;
	void (*row)(const struct ctx *ctx, json_t *item);
};

/*
 * List every page of kind's collection (log non-NULL: of that log instead) with the query built
 * from argv: a bare word is the domain filter (mailboxes, aliases), name=value pass through as
 * API parameters, limit=N caps the total. Prints a table, or one JSON array with --json.
 */
int cli_list(struct ctx *ctx, enum resource_kind kind, int argc, char **argv,
             const struct cli_log *log);

#define LOG_DEFAULT_LIMIT "limit=50" /* a log shows its newest 50 unless asked otherwise */
/* cli_list() of log with LOG_DEFAULT_LIMIT unless argv has a limit= (cli_admin.c). */
int cli_log_list(struct ctx *ctx, const struct cli_log *log, int argc, char **argv);

/*
 * A size as this run shows sizes in tables and text: the byte count with --bytes, else
 * size_text()'s binary units ("7.5 MiB", rounded down); a negative count (no size) as its
 * digits. Into out; returns out->s. Never used for --json output, which is always the API's.
 */
const char *cli_size(const struct ctx *ctx, long long bytes, struct size_text *out);

/* A table's header line for kind (the same with and without --bytes). */
void cli_print_header(enum resource_kind kind);

/* A domain's usage columns (mailboxes, over quota, bytes used, pool percent), each after a
   space: their header, and their values from the usage object of a domain document, sizes as
   cli_size shows them (cli_stats.c). The domain table and stats end their lines with them. */
void cli_print_usage_header(void);
void cli_print_usage_row(const struct ctx *ctx, json_t *usage);

/* One object as its row, sizes as byte counts: for the rows that have none (tokens,
   aliases); cli_list shows domains and mailboxes with their sizes as the run asks. */
void cli_print_row(enum resource_kind kind, json_t *doc);

/* A mailbox's limits and usage as check and usage get show them (indented lines, sizes as
   cli_size shows them). */
void cli_print_state(const struct ctx *ctx, json_t *mailbox);

/* The rows of the command table (cli.c), by group. */
int cmd_add(struct ctx *ctx, int argc, char **argv);
int cmd_set(struct ctx *ctx, int argc, char **argv);
int cmd_del(struct ctx *ctx, int argc, char **argv);
int cmd_get(struct ctx *ctx, int argc, char **argv);
int cmd_list(struct ctx *ctx, int argc, char **argv);
int cmd_alias_add(struct ctx *ctx, int argc, char **argv);
int cmd_alias_remove(struct ctx *ctx, int argc, char **argv);

int cmd_token_bootstrap(struct ctx *ctx, int argc, char **argv);
int cmd_token_create(struct ctx *ctx, int argc, char **argv);
int cmd_token_list(struct ctx *ctx, int argc, char **argv);
int cmd_self_link(struct ctx *ctx, int argc, char **argv);
int cmd_token_get(struct ctx *ctx, int argc, char **argv);
int cmd_token_revoke(struct ctx *ctx, int argc, char **argv);
int cmd_migrate(struct ctx *ctx, int argc, char **argv);
int cmd_audit(struct ctx *ctx, int argc, char **argv);

int cmd_usage_add(struct ctx *ctx, int argc, char **argv);
int cmd_usage_set(struct ctx *ctx, int argc, char **argv);
int cmd_usage_get(struct ctx *ctx, int argc, char **argv);
int cmd_usage_load(struct ctx *ctx, int argc, char **argv); /* cli_load.c */
int cmd_usage_flush(struct ctx *ctx, int argc, char **argv);
int cmd_deliver(struct ctx *ctx, int argc, char **argv);
int cmd_check(struct ctx *ctx, int argc, char **argv);

int cmd_warnings_settings(struct ctx *ctx, int argc, char **argv); /* cli_warnings.c */
int cmd_warnings_set(struct ctx *ctx, int argc, char **argv);
int cmd_warnings_domain(struct ctx *ctx, int argc, char **argv);
int cmd_warnings_list(struct ctx *ctx, int argc, char **argv);
int cmd_stats(struct ctx *ctx, int argc, char **argv);

int cmd_import(struct ctx *ctx, int argc, char **argv);
int cmd_export(struct ctx *ctx, int argc, char **argv);

#endif
