/*
 * mailquota: the administrative command line. Commands are rows of one table; each parses its
 * arguments, talks to PostgreSQL through store_admin / migrate, and prints for humans.
 * Exit codes: 0 success, 1 the operation failed, 2 usage error; check: see usage().
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
#include "buf.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "resource.h"
#include "service.h"
#include "store_admin.h"
#include "store_pg.h"
#include "strnum.h"
#include "usage.h"
#include "version.h"

#define EXIT_FAIL    1
#define EXIT_USAGE   2
#define EXIT_REFUSED 3
#define EXIT_UNKNOWN 4
#define EXIT_TEMP    5
/* sysexits.h codes Postfix's pipe(8) understands */
#define EX_USAGE_MAIL    64
#define EX_TEMPFAIL_MAIL 75

struct ctx {
	struct config cfg;
	PGconn *conn;
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

static PGconn *conn_of(struct ctx *ctx)
{
	char err[512];
	if (ctx->conn == NULL) {
		ctx->conn = db_connect(ctx->cfg.database_url, "mailquota", err, sizeof(err));
		if (ctx->conn == NULL) {
			fprintf(stderr, "mailquota: cannot connect to the database: %s\n", err);
			exit(EXIT_FAIL);
		}
		PQclear(PQexec(ctx->conn, "SET client_min_messages = warning"));
	}
	return ctx->conn;
}

static int fail(const char *what, const char *err)
{
	fprintf(stderr, "mailquota: %s: %s\n", what, err);
	return EXIT_FAIL;
}

/* An address as stored: domain lower-cased, local part folded per config, extension kept. */
static int parse_address(struct ctx *ctx, const char *s, struct address *a)
{
	const char *why;
	struct address_rules rules = ctx->cfg.address_rules;
	rules.delimiters[0] = '\0';
	if (address_normalize(s, strlen(s), &rules, a, &why) < 0) {
		fprintf(stderr, "mailquota: %s: %s\n", s, why);
		return -1;
	}
	return 0;
}

static int parse_domain(struct ctx *ctx, const char *s, char *out, size_t size)
{
	char tmp[ADDRESS_DOMAIN_MAX + 8];
	struct address a;
	if (strlen(s) > ADDRESS_DOMAIN_MAX) {
		fprintf(stderr, "mailquota: %s: domain longer than 255 octets\n", s);
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "x@%s", s);
	if (parse_address(ctx, tmp, &a) < 0)
		return -1;
	snprintf(out, size, "%s", a.domain);
	return 0;
}

static int cmd_migrate(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char err[512];
	unsigned n;
	if (migrate_apply(conn_of(ctx), &n, err, sizeof(err)) < 0)
		return fail("migrate", err);
	printf("migrations applied: %u (schema has %u)\n", n, migrations_count);
	return 0;
}

/* token bootstrap NAME [scope=S] [mailbox=A] [expires=T]: with database access, no API token */
static int cmd_token_bootstrap(struct ctx *ctx, int argc, char **argv)
{
	json_t *body = json_pack("{s:s, s:s}", "name", argv[0], "scope", "admin");
	for (int i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (eq == NULL ||
		    (strncmp(argv[i], "scope=", 6) != 0 && strncmp(argv[i], "mailbox=", 8) != 0 &&
		     strncmp(argv[i], "expires=", 8) != 0)) {
			fprintf(stderr, "mailquota: %s: want scope=, mailbox= or expires=\n",
			        argv[i]);
			json_decref(body);
			return EXIT_USAGE;
		}
		*eq = '\0';
		json_object_set_new(body, strcmp(argv[i], "expires") == 0 ? "expires_at" : argv[i],
		                    json_string(eq + 1));
	}
	json_t *fields;
	struct resource_key key;
	struct resource_error e;
	if (resource_check(RESOURCE_TOKEN, RESOURCE_CREATE, body, &ctx->cfg.address_rules, &key,
	                   &fields, &e) < 0) {
		fprintf(stderr, "mailquota: %s: %s\n", e.field, e.reason);
		json_decref(body);
		return EXIT_USAGE;
	}
	json_decref(body);
	struct admin *a = admin_new(ctx->cfg.database_url, 1);
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

static int cmd_domain_add(struct ctx *ctx, int argc, char **argv)
{
	char d[ADDRESS_DOMAIN_MAX + 1], err[ADMIN_ERROR_MAX];
	if (parse_domain(ctx, argv[0], d, sizeof(d)) < 0)
		return EXIT_USAGE;
	if (admin_domain_add(conn_of(ctx), d, argv + 1, argc - 1, err) < 0)
		return fail(d, err);
	return 0;
}

static int cmd_domain_set(struct ctx *ctx, int argc, char **argv)
{
	char d[ADDRESS_DOMAIN_MAX + 1], err[ADMIN_ERROR_MAX];
	if (parse_domain(ctx, argv[0], d, sizeof(d)) < 0)
		return EXIT_USAGE;
	if (admin_domain_set(conn_of(ctx), d, argv + 1, argc - 1, err) < 0)
		return fail(d, err);
	return 0;
}

static int cmd_domain_del(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	char d[ADDRESS_DOMAIN_MAX + 1], err[ADMIN_ERROR_MAX];
	if (parse_domain(ctx, argv[0], d, sizeof(d)) < 0)
		return EXIT_USAGE;
	if (admin_domain_delete(conn_of(ctx), d, err) < 0)
		return fail(d, err);
	return 0;
}

static int cmd_domain_list(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char err[ADMIN_ERROR_MAX];
	if (admin_domain_list(conn_of(ctx), stdout, err) < 0)
		return fail("domain list", err);
	return 0;
}

static int cmd_mailbox_add(struct ctx *ctx, int argc, char **argv)
{
	struct address a;
	char err[ADMIN_ERROR_MAX];
	if (parse_address(ctx, argv[0], &a) < 0)
		return EXIT_USAGE;
	if (admin_mailbox_add(conn_of(ctx), &a, argv + 1, argc - 1, err) < 0)
		return fail(argv[0], err);
	return 0;
}

static int cmd_mailbox_set(struct ctx *ctx, int argc, char **argv)
{
	struct address a;
	char err[ADMIN_ERROR_MAX];
	if (parse_address(ctx, argv[0], &a) < 0)
		return EXIT_USAGE;
	if (admin_mailbox_set(conn_of(ctx), &a, argv + 1, argc - 1, err) < 0)
		return fail(argv[0], err);
	return 0;
}

static int cmd_mailbox_del(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	struct address a;
	char err[ADMIN_ERROR_MAX];
	if (parse_address(ctx, argv[0], &a) < 0)
		return EXIT_USAGE;
	if (admin_mailbox_delete(conn_of(ctx), &a, err) < 0)
		return fail(argv[0], err);
	return 0;
}

static int cmd_mailbox_list(struct ctx *ctx, int argc, char **argv)
{
	char d[ADDRESS_DOMAIN_MAX + 1], err[ADMIN_ERROR_MAX];
	if (argc == 1 && parse_domain(ctx, argv[0], d, sizeof(d)) < 0)
		return EXIT_USAGE;
	if (admin_mailbox_list(conn_of(ctx), argc == 1 ? d : NULL, stdout, err) < 0)
		return fail("mailbox list", err);
	return 0;
}

/* "local@domain" or "@domain" (catch-all: *local_r = NULL). */
static int parse_alias(struct ctx *ctx, const char *s, struct address *a, const char **local_r)
{
	if (s[0] == '@') {
		if (parse_domain(ctx, s + 1, a->domain, sizeof(a->domain)) < 0)
			return -1;
		*local_r = NULL;
		return 0;
	}
	if (parse_address(ctx, s, a) < 0)
		return -1;
	*local_r = a->local;
	return 0;
}

static int cmd_alias_add(struct ctx *ctx, int argc, char **argv)
{
	struct address a;
	const char *local;
	char err[ADMIN_ERROR_MAX];
	if (parse_alias(ctx, argv[0], &a, &local) < 0)
		return EXIT_USAGE;
	struct address *targets = calloc((size_t)argc, sizeof(*targets));
	if (targets == NULL)
		return fail("alias add", "out of memory");
	for (int i = 1; i < argc; i++) {
		if (parse_address(ctx, argv[i], &targets[i - 1]) < 0) {
			free(targets);
			return EXIT_USAGE;
		}
	}
	int rc = admin_alias_add(conn_of(ctx), local, a.domain, targets, argc - 1, err);
	free(targets);
	return rc < 0 ? fail(argv[0], err) : 0;
}

static int cmd_alias_del(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	struct address a;
	const char *local;
	char err[ADMIN_ERROR_MAX];
	if (parse_alias(ctx, argv[0], &a, &local) < 0)
		return EXIT_USAGE;
	if (admin_alias_delete(conn_of(ctx), local, a.domain, err) < 0)
		return fail(argv[0], err);
	return 0;
}

static int cmd_alias_list(struct ctx *ctx, int argc, char **argv)
{
	char d[ADDRESS_DOMAIN_MAX + 1], err[ADMIN_ERROR_MAX];
	if (argc == 1 && parse_domain(ctx, argv[0], d, sizeof(d)) < 0)
		return EXIT_USAGE;
	if (admin_alias_list(conn_of(ctx), argc == 1 ? d : NULL, stdout, err) < 0)
		return fail("alias list", err);
	return 0;
}

static void print_limit(const char *name, struct quota_limit l, uint64_t used, bool show_used)
{
	if (!l.has) {
		if (show_used)
			printf("  %-18s %llu used, unlimited\n", name, (unsigned long long)used);
		else
			printf("  %-18s unlimited\n", name);
	} else if (show_used) {
		printf("  %-18s %llu used of %llu, %llu left\n", name, (unsigned long long)used,
		       (unsigned long long)l.value, (unsigned long long)quota_remaining(l, used));
	} else {
		printf("  %-18s %llu\n", name, (unsigned long long)l.value);
	}
}

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

/* Resolve an address to the one mailbox a usage change is about (aliases as for checks).
 *db_down_r (may be NULL) tells a database failure from a permanent error. */
static int usage_mailbox_ex(struct ctx *ctx, const char *addr, struct store_mailbox *mb,
                            bool *db_down_r)
{
	struct store *store = store_pg_new(ctx->cfg.database_url, 1);
	struct service svc = { &ctx->cfg, store, NULL, NULL };
	enum service_resolve_error e = SERVICE_UNKNOWN_RECIPIENT;
	const char *why;
	int rc = service_resolve_mailbox(&svc, addr, strlen(addr), false, mb, &e, &why);
	if (db_down_r != NULL)
		*db_down_r = rc < 0 && e == SERVICE_STORE_UNAVAILABLE;
	store_destroy(&store);
	if (rc < 0)
		fprintf(stderr, "mailquota: %s: %s\n", addr, why);
	return rc;
}

static int usage_mailbox(struct ctx *ctx, const char *addr, struct store_mailbox *mb)
{
	return usage_mailbox_ex(ctx, addr, mb, NULL);
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

/* Apply one report, retrying a database failure a few times; 0, or -1 (reported). */
static int apply_report(struct ctx *ctx, struct usage_report *rep, struct usage_result *res)
{
	struct usage *u =
	        usage_new(ctx->cfg.database_url, 1, (unsigned)ctx->cfg.usage_key_retention);
	const char *why = "database unavailable";
	int rc = -1;
	for (int attempt = 0; attempt < 3 && rc < 0; attempt++) {
		if (attempt > 0)
			sleep(1);
		rc = usage_apply(u, rep, 1, res, &why);
	}
	usage_destroy(&u);
	if (rc < 0)
		fprintf(stderr, "mailquota: usage not recorded: %s (retry with key=%s)\n", why,
		        rep->key);
	return rc;
}

/*
 * The report spool: one line per report that could not be recorded,
 * "key TAB occurred_at TAB bytes TAB messages TAB recipient", appended under an exclusive
 * lock; `mailquota usage flush` replays it (the keys make replays safe).
 */
static int spool_append(struct ctx *ctx, const char *rcpt, const struct usage_report *rep)
{
	char line[USAGE_KEY_MAX + USAGE_TIME_MAX + ADDRESS_MAX + 96];
	int n = snprintf(line, sizeof(line), "%s\t%s\t%lld\t%lld\t%s\n", rep->key, rep->occurred_at,
	                 (long long)rep->bytes, (long long)rep->messages, rcpt);
	if (n < 0 || (size_t)n >= sizeof(line) || strpbrk(rcpt, "\t\n") != NULL)
		return -1;
	int fd = open(ctx->cfg.report_spool, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int rc = flock(fd, LOCK_EX) == 0 && write(fd, line, (size_t)n) == n ? 0 : -1;
	close(fd);
	return rc;
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
	while (in != NULL && fgets(line, sizeof(line), in) != NULL) {
		char copy[1024];
		(void)!str_copy(copy, line, sizeof(copy));
		char *f[5], *save = NULL, *p = line;
		int nf = 0;
		line[strcspn(line, "\n")] = '\0';
		for (char *tok = strtok_r(p, "\t", &save); tok != NULL && nf < 5;
		     tok = strtok_r(NULL, "\t", &save))
			f[nf++] = tok;
		struct usage_report rep = { 0 };
		struct usage_result res;
		struct store_mailbox mb;
		bool down = false;
		/* occurred_at may be empty: then there are four tab-separated fields after split */
		if (nf == 4) {
			f[4] = f[3];
			f[3] = f[2];
			f[2] = f[1];
			f[1] = (char *)"";
			nf = 5;
		}
		if (nf != 5 || !usage_key_valid(f[0]) || !usage_time_valid(f[1]) ||
		    !count_arg(f[2], true, &rep.bytes) || !count_arg(f[3], true, &rep.messages)) {
			fprintf(stderr, "mailquota: dropping a malformed spool line\n");
			dropped++;
			continue;
		}
		(void)!str_copy(rep.key, f[0], sizeof(rep.key));
		(void)!str_copy(rep.occurred_at, f[1], sizeof(rep.occurred_at));
		if (usage_mailbox_ex(ctx, f[4], &mb, &down) < 0) {
			if (down) {
				if (buf_puts(&keep, copy) < 0)
					abort();
				kept++;
			} else {
				dropped++;
			}
			continue;
		}
		rep.mailbox_id = mb.id;
		if (apply_report(ctx, &rep, &res) < 0) {
			if (buf_puts(&keep, copy) < 0)
				abort();
			kept++;
		} else {
			applied++;
		}
	}
	if (in != NULL)
		fclose(in);
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

static int print_report(const struct usage_report *rep, const struct usage_result *res,
                        const char *mailbox)
{
	static const char *const names[] = { "applied", "superseded", "key conflict",
		                             "mailbox gone" };
	printf("%s: %s%s%s, usage now %llu bytes, %llu messages (key %s)\n", mailbox,
	       names[res->status], res->duplicate ? " (duplicate: original result)" : "",
	       res->clamped ? " (clamped)" : "", (unsigned long long)res->used_bytes,
	       (unsigned long long)res->used_messages, rep->key);
	return res->status == USAGE_APPLIED || res->status == USAGE_SUPERSEDED ? 0 : EXIT_FAIL;
}

static int cmd_usage_add(struct ctx *ctx, int argc, char **argv)
{
	static const char *const opts[] = { "key", "at", NULL };
	int npos = argc > 2 && strchr(argv[2], '=') == NULL ? 3 : 2;
	struct usage_report rep = { 0 };
	struct usage_result res;
	struct store_mailbox mb;
	const char *key = opt_value(argc, argv, npos, "key"),
	           *at = opt_value(argc, argv, npos, "at");
	if (check_opts(argc, argv, npos, opts) < 0 || !count_arg(argv[1], true, &rep.bytes) ||
	    (npos == 3 && !count_arg(argv[2], true, &rep.messages))) {
		fprintf(stderr,
		        "usage: mailquota usage add ADDRESS BYTES [MESSAGES] [key=K] [at=TIME]\n");
		return EXIT_USAGE;
	}
	char generated[USAGE_KEY_MAX + 1];
	if (key == NULL) {
		/* no key: this report is new; print the key so a retry can reuse it */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(generated, sizeof(generated), "cli/%lld.%09ld/%d", (long long)ts.tv_sec,
		         ts.tv_nsec, (int)getpid());
		key = generated;
	}
	if (!usage_key_valid(key) || (at != NULL && !usage_time_valid(at))) {
		fprintf(stderr, "mailquota: key must be 1-200 printable characters without spaces, "
		                "at an RFC 3339 time\n");
		return EXIT_USAGE;
	}
	(void)!str_copy(rep.key, key, sizeof(rep.key));
	(void)!str_copy(rep.occurred_at, at ? at : "", sizeof(rep.occurred_at));
	if (usage_mailbox(ctx, argv[0], &mb) < 0)
		return EXIT_FAIL;
	rep.mailbox_id = mb.id;
	if (apply_report(ctx, &rep, &res) < 0)
		return EXIT_TEMP;
	return print_report(&rep, &res, mb.address);
}

static int cmd_usage_set(struct ctx *ctx, int argc, char **argv)
{
	static const char *const opts[] = { "source", "at", NULL };
	int npos = argc > 2 && strchr(argv[2], '=') == NULL ? 3 : 2;
	int64_t bytes, msgs = -1;
	const char *source = opt_value(argc, argv, npos, "source"),
	           *at = opt_value(argc, argv, npos, "at");
	if (check_opts(argc, argv, npos, opts) < 0 || !count_arg(argv[1], false, &bytes) ||
	    (npos == 3 && !count_arg(argv[2], false, &msgs)) ||
	    (at != NULL && !usage_time_valid(at)) ||
	    (source != NULL && (source[0] == '\0' || strlen(source) > USAGE_SOURCE_MAX))) {
		fprintf(stderr, "usage: mailquota usage set ADDRESS BYTES [MESSAGES] [source=S] "
		                "[at=TIME]\n");
		return EXIT_USAGE;
	}
	struct store_mailbox mb;
	if (usage_mailbox(ctx, argv[0], &mb) < 0)
		return EXIT_FAIL;
	struct usage *u =
	        usage_new(ctx->cfg.database_url, 1, (unsigned)ctx->cfg.usage_key_retention);
	const char *why;
	int rc = usage_set(u, mb.id, (uint64_t)bytes, msgs < 0 ? mb.used_messages : (uint64_t)msgs,
	                   source ? source : "cli", at ? at : "", &why);
	usage_destroy(&u);
	if (rc != 0)
		return fail(argv[0], rc < 0 ? why : "no such mailbox");
	return 0;
}

static int cmd_usage_get(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	struct store_mailbox mb;
	if (usage_mailbox(ctx, argv[0], &mb) < 0)
		return EXIT_FAIL;
	printf("mailbox %s\n", mb.address);
	print_limit("storage", mb.storage, mb.used_bytes, true);
	print_limit("messages", mb.messages, mb.used_messages, true);
	print_limit("domain pool", mb.domain_pool, mb.domain_used_bytes, true);
	return 0;
}

/*
 * deliver: a delivery wrapper for Postfix pipe(8) transports. The message on standard input
 * goes to COMMAND (the real local delivery agent) while its bytes are counted; when COMMAND
 * succeeds the delivery is reported as +bytes, +1 message under a key that makes Postfix's
 * redeliveries of the same message count once. Exits with COMMAND's status, so Postfix sees the
 * delivery's real outcome; a report that cannot be recorded is logged and never turns a done
 * delivery into a retry (that would deliver the message twice).
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

	struct usage_report rep = { 0 };
	struct usage_result res;
	struct store_mailbox mb;
	rep.bytes = (int64_t)bytes;
	rep.messages = 1;
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
	bool down = false;
	if (usage_mailbox_ex(ctx, argv[0], &mb, &down) == 0) {
		rep.mailbox_id = mb.id;
		if (apply_report(ctx, &rep, &res) == 0)
			return 0;
		down = true;
	}
	if (down && spool_append(ctx, argv[0], &rep) == 0) {
		fprintf(stderr,
		        "mailquota deliver: delivered; usage spooled to %s (run mailquota "
		        "usage flush)\n",
		        ctx->cfg.report_spool);
		return 0;
	}
	fprintf(stderr,
	        "mailquota deliver: delivered, but usage not recorded for %s (%llu bytes, "
	        "key %s); a recalculation will correct it\n",
	        argv[0], (unsigned long long)bytes, rep.key);
	return 0;
}

static int cmd_check(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	uint64_t size;
	if (strnum_size(argv[1], INT64_MAX, &size) < 0) {
		fprintf(stderr, "mailquota: %s is not a size\n", argv[1]);
		return EXIT_USAGE;
	}
	struct store *store = store_pg_new(ctx->cfg.database_url, 1);
	struct service svc = { &ctx->cfg, store, NULL, NULL };
	struct check_result *res = malloc(sizeof(*res));
	const char *why;
	if (res == NULL)
		return fail("check", "out of memory");
	if (service_check(&svc, argv[0], strlen(argv[0]), size, res, &why) < 0) {
		free(res);
		store_destroy(&store);
		fprintf(stderr, "mailquota: %s: %s\n", argv[0], why);
		return EXIT_USAGE;
	}
	printf("recipient: %s@%s (%s)\n", res->address.local, res->address.domain,
	       service_match_name(res->match));
	printf("size:      %llu\n", (unsigned long long)size);
	printf("verdict:   %s", quota_verdict_name(res->verdict));
	if (res->reason != QUOTA_REASON_NONE)
		printf(" (%s)", quota_reason_name(res->reason));
	printf("\naction:    %s\n", res->action);
	if (res->store_error != NULL)
		printf("error:     %s\n", res->store_error);
	for (unsigned i = 0; i < res->ntargets; i++) {
		const struct service_target *t = &res->targets[i];
		const struct store_mailbox *m = &t->mailbox;
		printf("mailbox %s: %s\n", m->address, quota_verdict_name(t->result.verdict));
		print_limit("storage", m->storage, m->used_bytes, true);
		print_limit("messages", m->messages, m->used_messages, true);
		print_limit("max message size", m->max_size, 0, false);
		print_limit("domain pool", m->domain_pool, m->domain_used_bytes, true);
		print_limit("domain max size", m->domain_max_size, 0, false);
	}
	int rc = 0;
	switch (res->verdict) {
	case QUOTA_ACCEPT:
		break;
	case QUOTA_UNKNOWN:
		rc = EXIT_UNKNOWN;
		break;
	case QUOTA_TEMPFAIL:
		rc = EXIT_TEMP;
		break;
	default:
		rc = EXIT_REFUSED;
	}
	free(res);
	store_destroy(&store);
	return rc;
}

static const struct command commands[] = {
	{ "migrate", NULL, 0, 0, cmd_migrate, "", "apply pending schema migrations" },
	{ "token", "bootstrap", 1, 4, cmd_token_bootstrap,
	  "NAME [scope=S] [mailbox=ADDRESS] [expires=TIME]",
	  "create a token with database access (the first admin token); prints it" },
	{ "domain", "add", 1, 64, cmd_domain_add, "DOMAIN [FIELD=VALUE]...", "create a domain" },
	{ "domain", "set", 2, 64, cmd_domain_set, "DOMAIN FIELD=VALUE...",
	  "change domain limits (pool, storage, messages, mailbox-max-size, max-size, grace)" },
	{ "domain", "del", 1, 1, cmd_domain_del, "DOMAIN", "delete a domain and all it holds" },
	{ "domain", "list", 0, 0, cmd_domain_list, "", "list domains" },
	{ "mailbox", "add", 1, 64, cmd_mailbox_add, "ADDRESS [FIELD=VALUE]...",
	  "create a mailbox" },
	{ "mailbox", "set", 2, 64, cmd_mailbox_set, "ADDRESS FIELD=VALUE...",
	  "change mailbox limits (storage, messages, max-size, grace, enabled)" },
	{ "mailbox", "del", 1, 1, cmd_mailbox_del, "ADDRESS", "delete a mailbox" },
	{ "mailbox", "list", 0, 1, cmd_mailbox_list, "[DOMAIN]", "list mailboxes with usage" },
	{ "alias", "add", 2, 1001, cmd_alias_add, "ADDRESS|@DOMAIN MAILBOX...",
	  "create an alias (or catch-all) or add targets to it" },
	{ "alias", "del", 1, 1, cmd_alias_del, "ADDRESS|@DOMAIN", "delete an alias" },
	{ "alias", "list", 0, 1, cmd_alias_list, "[DOMAIN]", "list aliases" },
	{ "usage", "add", 2, 5, cmd_usage_add, "ADDRESS BYTES [MESSAGES] [key=K] [at=TIME]",
	  "report a usage change (negative for deletions); a repeated key counts once" },
	{ "usage", "set", 2, 5, cmd_usage_set, "ADDRESS BYTES [MESSAGES] [source=S] [at=TIME]",
	  "set absolute usage from a recalculation (du, doveadm quota get)" },
	{ "usage", "get", 1, 1, cmd_usage_get, "ADDRESS", "show a mailbox's usage and limits" },
	{ "usage", "flush", 0, 0, cmd_usage_flush, "",
	  "replay reports that deliver spooled while the database was away" },
	{ "deliver", NULL, 3, 1000, cmd_deliver, "RECIPIENT [key=K] -- COMMAND [ARGS...]",
	  "delivery wrapper for a Postfix pipe transport: run COMMAND, report what it stored" },
	{ "check", NULL, 2, 2, cmd_check, "ADDRESS SIZE",
	  "decide as the daemon would (exit 0 accept, 3 refused, 4 unknown, 5 tempfail)" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: mailquota [-c config] [-d conninfo] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		char head[96];
		snprintf(head, sizeof(head), "%s%s%s %s", commands[i].noun,
		         commands[i].verb ? " " : "", commands[i].verb ? commands[i].verb : "",
		         commands[i].args);
		fprintf(out, "  %-44s %s\n", head, commands[i].help);
	}
	fprintf(out,
	        "\nSizes take K, M, G, T suffixes (powers of 1024); a limit of \"none\" inherits "
	        "the domain default\n(mailbox) or means unlimited (domain).\n"
	        "Exit codes: 0 success, 1 failure, 2 usage error; check: 3 refused, 4 unknown "
	        "recipient, 5 temporary failure.\n");
}

int main(int argc, char **argv)
{
	struct ctx ctx = { .conn = NULL };
	const char *path = NULL, *conninfo = NULL;
	char err[CONFIG_ERROR_MAX];
	int opt;
	while ((opt = getopt(argc, argv, "+c:d:hV")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'd':
			conninfo = optarg;
			break;
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
		int rc = c->fn(&ctx, n, a);
		if (ctx.conn != NULL)
			PQfinish(ctx.conn);
		config_free(&ctx.cfg);
		return rc;
	}
	fprintf(stderr, "mailquota: unknown command \"%s%s%s\"\n\n", noun, rest > 0 ? " " : "",
	        rest > 0 ? args[0] : "");
	usage(stderr);
	config_free(&ctx.cfg);
	return EXIT_USAGE;
}
