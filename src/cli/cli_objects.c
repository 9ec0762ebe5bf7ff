/*
 * cli_objects: the domain, mailbox and alias commands of mailquota (add, set, del, get, list;
 * alias add and remove) and the listing every collection shares. FIELD=VALUE arguments are
 * read through the field table of fields.h, by a field's short name or its API name, and get
 * shows the names set takes; it must never send a field the table does not name, nor print a
 * name or a value set would refuse. Sizes are shown for people ("7.5 MiB") unless --bytes
 * asks for byte counts; get shows a settable size as set takes it back ("10M", else bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "fields.h"
#include "strnum.h"
#include "xalloc.h"

#define LIST_PAGE          1000        /* items asked for per page when listing everything */
#define LIST_PATH_MAX      (64 * 1024) /* a page's path: collection, query and the API's cursor */
#define GET_NAME_WIDTH     26          /* get's first column: "usage.pool_remaining_bytes" */
#define GET_VALUE_WIDTH    20          /* get's value column: any 64-bit number and more */
#define GET_EXTRA_NAME_MAX 64          /* "effective.storage": a part of the API's document */

/* ---- sizes as people read them ---- */

const char *cli_size(const struct ctx *ctx, long long bytes, struct size_text *out)
{
	if (!ctx->bytes && bytes >= 0)
		return size_text((uint64_t)bytes, out);
	/* room for any 64-bit number: the text always fits */
	snprintf(out->s, sizeof(out->s), "%lld", bytes);
	return out->s;
}

/*
 * A size as set takes it back (strnum_size reads it): the largest of K, M, G, T it is a whole
 * number of ("10M", "1536K"), else its byte count; the byte count alone with --bytes.
 */
static const char *set_size(const struct ctx *ctx, long long bytes, struct size_text *out)
{
	static const char units[] = "KMGT";
	long long n = bytes;
	size_t u = 0;
	while (!ctx->bytes && n > 0 && n % 1024 == 0 && u < sizeof(units) - 1) {
		n /= 1024;
		u++;
	}
	/* room for any 64-bit number and a letter: the text always fits */
	if (u == 0)
		snprintf(out->s, sizeof(out->s), "%lld", bytes);
	else
		snprintf(out->s, sizeof(out->s), "%lld%c", n, units[u - 1]);
	return out->s;
}

/* Whether a member of the API's documents holds bytes: its name is "bytes" or ends in
   "_bytes" or "_size", as the API names every size. */
static bool size_name(const char *name)
{
	size_t l = strlen(name);
	return strcmp(name, "bytes") == 0 || (l > 6 && strcmp(name + l - 6, "_bytes") == 0) ||
	       (l > 5 && strcmp(name + l - 5, "_size") == 0);
}

/* ---- fields: FIELD=VALUE on the command line, JSON fields on the wire ---- */

/* The value of f in text, as set takes it: NULL with the expected form in *want_r (static,
   valid until the next call). */
static json_t *field_value(const struct field *f, const char *v, const char **want_r)
{
	uint64_t n;
	if (field_nullable(f->type) && (strcmp(v, "none") == 0 || strcmp(v, "inherit") == 0 ||
	                                (f->type == FIELD_CHOICE && strcmp(v, "default") == 0)))
		return json_null();
	switch (f->type) {
	case FIELD_SIZE:
		*want_r = "a size (bytes or K/M/G/T, or none)";
		if (strnum_size(v, INT64_MAX, &n) == 0)
			return json_integer((json_int_t)n);
		break;
	case FIELD_COUNT:
		*want_r = "a count (or none)";
		if (strnum_u64(v, strlen(v), INT64_MAX, &n) == 0)
			return json_integer((json_int_t)n);
		break;
	case FIELD_PERCENT:
		*want_r = "a percentage from 0 to 1000 (or none)";
		if (strnum_u64(v, strlen(v), FIELD_PERCENT_MAX, &n) == 0)
			return json_integer((json_int_t)n);
		break;
	case FIELD_BOOL:
		*want_r = "yes or no";
		if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
			return json_true();
		if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
			return json_false();
		break;
	case FIELD_TARGETS:
		*want_r = "changed with alias add and alias remove";
		break;
	case FIELD_CHOICE: {
		static char want[FIELD_NAMES_MAX + 32], choices[FIELD_NAMES_MAX];
		/* cut if need be: the text is for people */
		snprintf(want, sizeof(want), "one of %s, or default",
		         field_choices_text(f, ", ", choices, sizeof(choices)));
		*want_r = want;
		if (field_choice_valid(f, v))
			return json_string(v);
		break;
	}
	}
	return NULL;
}

/* "name=value" arguments into a JSON object of API fields; -1 (reported) on a bad one. */
static int parse_fields(enum resource_kind kind, int argc, char **argv, json_t *obj)
{
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		const struct field *f =
		        eq != NULL ? field_by_name(kind, argv[i], (size_t)(eq - argv[i])) : NULL;
		if (f == NULL) {
			char names[FIELD_NAMES_MAX];
			fprintf(stderr, "mailquota: unknown field \"%s\" (a %s takes %s)\n",
			        argv[i], resource_kind_name(kind),
			        field_names_text(kind, names, sizeof(names)));
			return -1;
		}
		const char *want = NULL;
		json_t *val = field_value(f, eq + 1, &want);
		if (val == NULL) {
			fprintf(stderr, "mailquota: %s: \"%s\" is not %s\n", f->cli, eq + 1, want);
			return -1;
		}
		json_object_set_new(obj, f->api, val);
	}
	return 0;
}

/* A field's value as set takes it back: none (a choice's: default), a size ("10M", else
   bytes), an integer, yes/no, a choice, targets joined by commas. */
static void put_value(const struct ctx *ctx, const struct field *f, json_t *v)
{
	struct size_text t;
	if (json_is_null(v) && field_nullable(f->type)) {
		printf("%-*s", GET_VALUE_WIDTH, f->type == FIELD_CHOICE ? "default" : "none");
	} else if (json_is_string(v) && f->type == FIELD_CHOICE) {
		printf("%-*s", GET_VALUE_WIDTH, json_string_value(v));
	} else if (json_is_integer(v) && f->type == FIELD_SIZE) {
		printf("%-*s", GET_VALUE_WIDTH,
		       set_size(ctx, (long long)json_integer_value(v), &t));
	} else if (json_is_integer(v)) {
		printf("%-*lld", GET_VALUE_WIDTH, (long long)json_integer_value(v));
	} else if (json_is_boolean(v)) {
		printf("%-*s", GET_VALUE_WIDTH, json_is_true(v) ? "yes" : "no");
	} else if (json_is_array(v)) {
		size_t i;
		json_t *m;
		json_array_foreach(v, i, m) printf("%s%s", i ? "," : "", json_string_value(m));
		printf(" ");
	} else {
		printf("%-*s", GET_VALUE_WIDTH, "-");
	}
}

/* One more part of a document as get shows it: "name value", an integer under a size's name
   (member: the name in the API's document) as cli_size shows it, a string bare, a fraction
   (a percentage) with one decimal as the tables show it, anything else as compact JSON. */
static void put_extra(const struct ctx *ctx, const char *name, const char *member, json_t *v)
{
	struct size_text t;
	if (json_is_integer(v) && size_name(member)) {
		printf("%-*s %s\n", GET_NAME_WIDTH, name,
		       cli_size(ctx, (long long)json_integer_value(v), &t));
		return;
	}
	if (json_is_string(v)) {
		printf("%-*s %s\n", GET_NAME_WIDTH, name, json_string_value(v));
		return;
	}
	if (json_is_real(v)) {
		printf("%-*s %.1f\n", GET_NAME_WIDTH, name, json_real_value(v));
		return;
	}
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	printf("%-*s %s\n", GET_NAME_WIDTH, name, s != NULL ? s : "?");
	free(s);
}

/*
 * An object as get shows it: the key, then each settable field by the name set takes, its
 * value as set takes it and its API name (so the lines read as FIELD=VALUE for set, and as
 * the columns of an export), then what the API adds (usage, effective limits, versions), an
 * object's members one a line as "object.member" (a member that is a field by the field's
 * short name: "effective.storage"), sizes as the tables show them.
 */
static void print_object(const struct ctx *ctx, enum resource_kind kind, json_t *doc)
{
	size_t n;
	const struct field *t = field_table(kind, &n);
	const char *key = field_key(kind), *k, *mk;
	json_t *v, *mv;
	const char *name = json_string_value(json_object_get(doc, key));
	printf("%-*s %s\n", GET_NAME_WIDTH, key, name != NULL ? name : "-");
	for (size_t i = 0; i < n; i++) {
		printf("%-*s ", GET_NAME_WIDTH, t[i].cli);
		put_value(ctx, &t[i], json_object_get(doc, t[i].api));
		printf(" %s\n", t[i].api);
	}
	json_object_foreach(doc, k, v)
	{
		if (strcmp(k, key) == 0 || field_by_api(kind, k) != NULL)
			continue;
		if (!json_is_object(v)) {
			put_extra(ctx, k, k, v);
			continue;
		}
		json_object_foreach(v, mk, mv)
		{
			const struct field *f = field_by_api(kind, mk);
			char full[GET_EXTRA_NAME_MAX];
			/* cut to fit: the name is for people */
			snprintf(full, sizeof(full), "%s.%s", k, f != NULL ? f->cli : mk);
			put_extra(ctx, full, mk, mv);
		}
	}
}

/* ---- tables ---- */

static void put_num(json_t *v, int width)
{
	if (json_is_integer(v))
		printf("%*lld", width, (long long)json_integer_value(v));
	else if (json_is_real(v))
		printf("%*.1f", width, json_real_value(v));
	else
		printf("%*s", width, "-");
}

/* A size column: as cli_size shows it, right-aligned ("-" when there is none). */
static void put_size(const struct ctx *ctx, json_t *v, int width)
{
	struct size_text t;
	if (json_is_integer(v))
		printf("%*s", width, cli_size(ctx, (long long)json_integer_value(v), &t));
	else
		put_num(v, width);
}

/* A domain column's width: room for its values (a size: "1023.9 KiB", or 13 digits of
   bytes) and for its short name. */
static int column_width(const struct field *f)
{
	int w = f->type == FIELD_PERCENT ? 5 : f->type == FIELD_COUNT ? 9 : 13;
	int l = (int)strlen(f->cli);
	return l > w ? l : w;
}

#define DOMAIN_NAME_WIDTH 32

void cli_print_header(enum resource_kind kind)
{
	size_t n;
	const struct field *t = field_table(kind, &n);
	switch (kind) {
	case RESOURCE_DOMAIN:
		/* every field, headed by the names set takes, then what the domain holds */
		printf("%-*s", DOMAIN_NAME_WIDTH, "DOMAIN");
		for (size_t i = 0; i < n; i++) {
			char h[64];
			size_t j = 0;
			for (; t[i].cli[j] != '\0' && j < sizeof(h) - 1; j++)
				h[j] = (char)(t[i].cli[j] >= 'a' && t[i].cli[j] <= 'z'
				                      ? t[i].cli[j] - 'a' + 'A'
				                      : t[i].cli[j]);
			h[j] = '\0';
			printf(" %*s", column_width(&t[i]), h);
		}
		cli_print_usage_header();
		printf("\n");
		break;
	case RESOURCE_MAILBOX:
		printf("MAILBOX                                          LIMIT          USED"
		       "       %%  MESSAGES ENABLED\n");
		break;
	case RESOURCE_ALIAS:
		printf("ALIAS                                    TARGETS\n");
		break;
	case RESOURCE_TOKEN:
		printf("    ID  NAME                     SCOPE  MAILBOX                        "
		       "CREATED\n");
		break;
	}
}

/* One object as its row, sizes as ctx shows them. */
static void print_row(const struct ctx *ctx, enum resource_kind kind, json_t *d)
{
	switch (kind) {
	case RESOURCE_DOMAIN: {
		size_t n;
		const struct field *t = field_table(kind, &n);
		printf("%-*s", DOMAIN_NAME_WIDTH, json_string_value(json_object_get(d, "name")));
		for (size_t i = 0; i < n; i++) {
			printf(" ");
			if (t[i].type == FIELD_SIZE)
				put_size(ctx, json_object_get(d, t[i].api), column_width(&t[i]));
			else
				put_num(json_object_get(d, t[i].api), column_width(&t[i]));
		}
		cli_print_usage_row(ctx, json_object_get(d, "usage"));
		break;
	}
	case RESOURCE_MAILBOX: {
		/* what applies and what is used: the effective limit, not the mailbox's own */
		json_t *u = json_object_get(d, "usage");
		printf("%-40s", json_string_value(json_object_get(d, "address")));
		put_size(ctx,
		         json_object_get(json_object_get(d, "effective"), "storage_limit_bytes"),
		         14);
		put_size(ctx, json_object_get(u, "bytes"), 14);
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

void cli_print_row(enum resource_kind kind, json_t *doc)
{
	static const struct ctx raw_sizes = { .bytes = true };
	print_row(&raw_sizes, kind, doc);
}

/* ---- the object commands ---- */

static int object_add(struct ctx *ctx, enum resource_kind kind, int argc, char **argv)
{
	struct resource_key key;
	if (cli_check_key(ctx, kind, argv[0], &key) < 0)
		return EXIT_USAGE;
	json_t *body = json_object();
	json_object_set_new(body, field_key(kind), json_string(key.text));
	if (parse_fields(kind, argc - 1, argv + 1, body) < 0) {
		json_decref(body);
		return EXIT_USAGE;
	}
	struct api_response r;
	int rc = cli_call(ctx, key.text, "POST", cli_collection(kind), body, NULL, &r);
	json_decref(body);
	if (rc != 0)
		return rc;
	if (ctx->json)
		cli_print_json(r.doc);
	api_response_free(&r);
	return 0;
}

static int object_set(struct ctx *ctx, enum resource_kind kind, int argc, char **argv)
{
	struct resource_key key;
	if (cli_check_key(ctx, kind, argv[0], &key) < 0)
		return EXIT_USAGE;
	json_t *body = json_object();
	if (parse_fields(kind, argc - 1, argv + 1, body) < 0) {
		json_decref(body);
		return EXIT_USAGE;
	}
	char *path = cli_item_path(ctx, kind, key.text, "");
	struct api_response r;
	int rc = cli_call(ctx, key.text, "PATCH", path, body, ctx->if_match, &r);
	free(path);
	json_decref(body);
	if (rc != 0)
		return rc;
	if (ctx->json)
		cli_print_json(r.doc);
	api_response_free(&r);
	return 0;
}

static int object_del(struct ctx *ctx, enum resource_kind kind, const char *arg)
{
	struct resource_key key;
	if (cli_check_key(ctx, kind, arg, &key) < 0)
		return EXIT_USAGE;
	char *path = cli_item_path(ctx, kind, key.text, "");
	struct api_response r;
	int rc = cli_call(ctx, key.text, "DELETE", path, NULL, ctx->if_match, &r);
	free(path);
	if (rc == 0)
		api_response_free(&r);
	return rc;
}

static int object_get(struct ctx *ctx, enum resource_kind kind, const char *arg)
{
	struct resource_key key;
	if (cli_check_key(ctx, kind, arg, &key) < 0)
		return EXIT_USAGE;
	char *path = cli_item_path(ctx, kind, key.text, "");
	struct api_response r;
	int rc = cli_call(ctx, key.text, "GET", path, NULL, NULL, &r);
	free(path);
	if (rc != 0)
		return rc;
	if (ctx->json)
		cli_print_json(r.doc);
	else
		print_object(ctx, kind, r.doc);
	api_response_free(&r);
	return 0;
}

/* "&name=value" onto q, both escaped: 0, or -1 (reported) when q is full. */
static int query_add(struct ctx *ctx, struct buf *q, const char *name, size_t nlen,
                     const char *value)
{
	char *n = xstrndup(name, nlen);
	char *en = api_escape(cli_api(ctx), n), *ev = api_escape(cli_api(ctx), value);
	int rc = buf_printf(q, "&%s=%s", en, ev);
	free(n);
	free(en);
	free(ev);
	if (rc < 0)
		fprintf(stderr, "mailquota: the arguments make a query over %d bytes\n",
		        CLI_QUERY_MAX);
	return rc;
}

/* The query of a list from its arguments into q; *cap_r from limit=. 0, or -1 (reported). */
static int list_query(struct ctx *ctx, enum resource_kind kind, int argc, char **argv, bool log,
                      struct buf *q, uint64_t *cap_r)
{
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		if (eq == NULL && (kind == RESOURCE_MAILBOX || kind == RESOURCE_ALIAS) && !log) {
			if (query_add(ctx, q, "domain", 6, argv[i]) < 0)
				return -1;
			continue;
		}
		if (eq == NULL) {
			fprintf(stderr, "mailquota: unexpected argument \"%s\" (want name=value)\n",
			        argv[i]);
			return -1;
		}
		if (strncmp(argv[i], "limit=", 6) == 0) {
			if (strnum_u64(eq + 1, strlen(eq + 1), UINT64_MAX, cap_r) < 0 ||
			    *cap_r == 0) {
				fprintf(stderr, "mailquota: limit=%s is not a positive count\n",
				        eq + 1);
				return -1;
			}
			continue;
		}
		if (query_add(ctx, q, argv[i], (size_t)(eq - argv[i]), eq + 1) < 0)
			return -1;
	}
	return 0;
}

int cli_list(struct ctx *ctx, enum resource_kind kind, int argc, char **argv,
             const struct cli_log *log)
{
	struct buf q;
	uint64_t cap = UINT64_MAX;
	buf_init(&q, CLI_QUERY_MAX);
	if (list_query(ctx, kind, argc, argv, log != NULL, &q, &cap) < 0) {
		buf_free(&q);
		return EXIT_USAGE;
	}
	const char *base = log != NULL ? log->path : cli_collection(kind);
	json_t *all = json_array();
	char *cursor = NULL;
	uint64_t got = 0;
	int rc = 0;
	if (!ctx->json && log == NULL)
		cli_print_header(kind);
	if (!ctx->json && log != NULL)
		printf("%s\n", log->header);
	do {
		struct buf path;
		buf_init(&path, LIST_PATH_MAX);
		uint64_t want = cap - got < LIST_PAGE ? cap - got : LIST_PAGE;
		if (buf_printf(&path, "%s?limit=%llu%s", base, (unsigned long long)want,
		               q.data != NULL ? q.data : "") < 0 ||
		    (cursor != NULL && buf_printf(&path, "&cursor=%s", cursor) < 0)) {
			/* the query is bounded far below: only a cursor can be this long */
			rc = cli_fail(base, "the API's list cursor is too long to send back");
			buf_free(&path);
			break;
		}
		free(cursor);
		cursor = NULL;
		struct api_response r;
		rc = cli_call(ctx, base, "GET", path.data, NULL, NULL, &r);
		buf_free(&path);
		if (rc != 0)
			break;
		size_t i;
		json_t *it;
		json_array_foreach(json_object_get(r.doc, "items"), i, it)
		{
			got++;
			if (ctx->json)
				json_array_append(all, it);
			else if (log != NULL)
				log->row(ctx, it);
			else
				print_row(ctx, kind, it);
		}
		const char *next = json_string_value(json_object_get(r.doc, "next_cursor"));
		if (next != NULL && got < cap)
			cursor = api_escape(cli_api(ctx), next);
		api_response_free(&r);
	} while (cursor != NULL);
	free(cursor);
	if (rc == 0 && ctx->json)
		cli_print_json(all);
	json_decref(all);
	buf_free(&q);
	return rc;
}

/* The generic object commands: the kind comes from the command's noun (see main). */
int cmd_add(struct ctx *c, int n, char **a)
{
	return object_add(c, c->kind, n, a);
}

int cmd_set(struct ctx *c, int n, char **a)
{
	return object_set(c, c->kind, n, a);
}

int cmd_del(struct ctx *c, int n, char **a)
{
	(void)n;
	return object_del(c, c->kind, a[0]);
}

int cmd_get(struct ctx *c, int n, char **a)
{
	(void)n;
	return object_get(c, c->kind, a[0]);
}

int cmd_list(struct ctx *c, int n, char **a)
{
	return cli_list(c, c->kind, n, a, NULL);
}

/* ---- alias targets ---- */

/* The mailbox addresses argv[0..argc) as a JSON array of keys; NULL (reported) on a bad one. */
static json_t *target_list(struct ctx *ctx, int argc, char **argv)
{
	struct resource_key t;
	json_t *targets = json_array();
	for (int i = 0; i < argc; i++) {
		if (cli_check_key(ctx, RESOURCE_MAILBOX, argv[i], &t) < 0) {
			json_decref(targets);
			return NULL;
		}
		json_array_append_new(targets, json_string(t.text));
	}
	return targets;
}

/* ADDRESS TARGET... [FIELD=VALUE...] of alias add and remove (fields: an argument with '=' and
   no '@', which no address is, into *fields_r when it is not NULL): 0 with *key, *targets_r
   (and *fields_r; caller decrefs), or -1 (reported). */
static int alias_args(struct ctx *ctx, int argc, char **argv, struct resource_key *key,
                      json_t **targets_r, json_t **fields_r)
{
	int nt = 1;
	if (cli_check_key(ctx, RESOURCE_ALIAS, argv[0], key) < 0)
		return -1;
	while (nt < argc && (strchr(argv[nt], '=') == NULL || strchr(argv[nt], '@') != NULL))
		nt++;
	json_t *fields = json_object();
	if ((nt < argc && fields_r == NULL) ||
	    parse_fields(RESOURCE_ALIAS, argc - nt, argv + nt, fields) < 0 ||
	    (*targets_r = target_list(ctx, nt - 1, argv + 1)) == NULL) {
		if (nt < argc && fields_r == NULL)
			fprintf(stderr, "mailquota: alias remove takes addresses only\n");
		json_decref(fields);
		return -1;
	}
	if (fields_r != NULL)
		*fields_r = fields;
	else
		json_decref(fields);
	return 0;
}

/* One call of alias add, body taken: 0 with *r (any status), or -1 with *rc_r reported. */
static int alias_send(struct ctx *ctx, const char *what, const char *method, const char *path,
                      json_t *body, struct api_response *r, int *rc_r)
{
	const char *err;
	int sent = api_call(cli_api(ctx), method, path, body, NULL, r, &err);
	json_decref(body);
	if (sent < 0)
		*rc_r = cli_api_error(what, r, err);
	return sent;
}

/* alias add ADDRESS TARGET... [policy=...]: create the alias, or add targets to it (and set
   the fields given either way) */
int cmd_alias_add(struct ctx *ctx, int argc, char **argv)
{
	struct resource_key key;
	json_t *targets, *fields;
	if (alias_args(ctx, argc, argv, &key, &targets, &fields) < 0)
		return EXIT_USAGE;
	char *path = cli_item_path(ctx, RESOURCE_ALIAS, key.text, "");
	struct api_response r = { 0 };
	int rc = 0;
	/* PATCH first (the common case once a list exists); 404 means create it */
	for (int attempt = 0; attempt < 2; attempt++) {
		json_t *patch = json_deep_copy(fields);
		if (json_array_size(targets) > 0)
			json_object_set(patch, "add_targets", targets);
		if (alias_send(ctx, key.text, "PATCH", path, patch, &r, &rc) < 0)
			break;
		if (r.status != 404) {
			rc = r.status == 200 ? 0 : cli_api_error(key.text, &r, NULL);
			break;
		}
		api_response_free(&r);
		json_t *post = json_pack("{s:s, s:O}", "address", key.text, "targets", targets);
		json_object_update(post, fields);
		if (alias_send(ctx, key.text, "POST", "/v1/aliases", post, &r, &rc) < 0)
			break;
		if (r.status != 409) { /* 409: created meanwhile by someone else: PATCH again */
			rc = r.status == 201 ? 0 : cli_api_error(key.text, &r, NULL);
			break;
		}
		api_response_free(&r);
	}
	if (rc == 0 && ctx->json)
		cli_print_json(r.doc);
	api_response_free(&r);
	free(path);
	json_decref(targets);
	json_decref(fields);
	return rc;
}

/* alias remove ADDRESS TARGET...: take targets off an alias */
int cmd_alias_remove(struct ctx *ctx, int argc, char **argv)
{
	struct resource_key key;
	json_t *targets;
	if (alias_args(ctx, argc, argv, &key, &targets, NULL) < 0)
		return EXIT_USAGE;
	json_t *body = json_pack("{s:o}", "remove_targets", targets);
	char *path = cli_item_path(ctx, RESOURCE_ALIAS, key.text, "");
	struct api_response r;
	int rc = cli_call(ctx, key.text, "PATCH", path, body, NULL, &r);
	json_decref(body);
	free(path);
	if (rc == 0) {
		if (ctx->json)
			cli_print_json(r.doc);
		api_response_free(&r);
	}
	return rc;
}
