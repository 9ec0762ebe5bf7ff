/*
 * cli_usage: the mailquota commands of delivery agents and recalculations: usage reports (add,
 * set, get), the spool of reports deliver could not make and its replay
 * (flush) and deliver itself. Every report carries an idempotency key, so a replay or a retry
 * never counts twice; deliver must never turn a delivery that happened into a retry (Postfix
 * would deliver the message again). Text output shows sizes as cli_size does; deliver's
 * messages keep byte counts (they go to the mail log, where exact figures matter).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "report.h"
#include "strnum.h"
#include "token.h"
#include "xalloc.h"

/* sysexits.h codes Postfix's pipe(8) understands */
#define EX_USAGE_MAIL    64
#define EX_TEMPFAIL_MAIL 75

#define SPOOL_LINE_MAX   1024               /* one spooled report (spool_append writes < 600) */
#define SPOOL_FLUSH_MAX  (16 * 1024 * 1024) /* spool replayed by one flush; the rest waits */
#define DELIVER_KEY_HASH 16                 /* hash octets in deliver's key: 32 hex digits */

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
 * POST reports in one request, retrying an unreachable API or a 503 a few times when
 * retries > 0. SENT fills *res_r (the results array, caller decrefs); SEND_LATER means try again
 * later (nothing was applied), SEND_REFUSED that the API refused the request as a whole; both
 * with *why_r (static, or ctx->error: valid until ctx's next call).
 */
static enum send_result send_reports(struct ctx *ctx, json_t *reports, int retries, json_t **res_r,
                                     const char **why_r)
{
	json_t *body = json_pack("{s:O}", "reports", reports);
	enum send_result out = SEND_LATER;
	*why_r = "no answer";
	for (int attempt = 0; attempt <= retries; attempt++) {
		if (attempt > 0)
			sleep(1);
		struct api_response r;
		if (api_call(cli_api(ctx), "POST", "/v1/usage", body, NULL, &r, why_r) < 0)
			continue;
		if (r.status == 200 && json_is_array(json_object_get(r.doc, "results"))) {
			*res_r = json_incref(json_object_get(r.doc, "results"));
			out = SENT;
		} else {
			const char *m = json_string_value(json_object_get(r.doc, "message"));
			/* cut to fit: the message is for people */
			snprintf(ctx->error, sizeof(ctx->error), "%s",
			         m != NULL ? m : "unexpected answer");
			*why_r = ctx->error;
			out = r.status >= 500 ? SEND_LATER : SEND_REFUSED;
		}
		api_response_free(&r);
		if (out != SEND_LATER)
			break;
	}
	json_decref(body);
	return out;
}

/* One report's result: its error (returning the exit code), or the usage it left (the bytes as
   cli_size shows them). */
static int print_result(const struct ctx *ctx, json_t *res)
{
	const char *err = json_string_value(json_object_get(res, "error"));
	const char *key = json_string_value(json_object_get(res, "key"));
	if (err != NULL) {
		fprintf(stderr, "mailquota: usage not recorded (%s): %s (key %s)\n", err,
		        json_string_value(json_object_get(res, "message")), key);
		return strcmp(err, "unknown_recipient") == 0 ? EXIT_NOTFOUND : EXIT_FAIL;
	}
	json_t *u = json_object_get(res, "usage");
	struct size_text t;
	printf("%s: %s%s%s, usage now %s%s, %lld messages (key %s)\n",
	       json_string_value(json_object_get(res, "mailbox")),
	       json_string_value(json_object_get(res, "status")),
	       json_is_true(json_object_get(res, "duplicate")) ? " (duplicate: original result)"
	                                                       : "",
	       json_is_true(json_object_get(res, "clamped")) ? " (clamped)" : "",
	       cli_size(ctx, (long long)json_integer_value(json_object_get(u, "bytes")), &t),
	       ctx->bytes ? " bytes" : "",
	       (long long)json_integer_value(json_object_get(u, "messages")), key);
	return 0;
}

int cmd_usage_add(struct ctx *ctx, int argc, char **argv)
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
	} else if (!usage_key_valid(key) || str_copy(rep.key, key, sizeof(rep.key)) < 0) {
		fprintf(stderr,
		        "mailquota: key must be 1-200 printable characters without spaces\n");
		return EXIT_USAGE;
	}
	if (at != NULL &&
	    (!rfc3339_valid(at) || str_copy(rep.occurred_at, at, sizeof(rep.occurred_at)) < 0)) {
		fprintf(stderr, "mailquota: at must be an RFC 3339 time\n");
		return EXIT_USAGE;
	}
	json_t *reports = json_array(), *res = NULL;
	json_array_append_new(reports, report_json(&rep));
	const char *why;
	enum send_result s = send_reports(ctx, reports, 2, &res, &why);
	json_decref(reports);
	if (s != SENT) {
		fprintf(stderr, "mailquota: usage not recorded: %s (retry with key=%s)\n", why,
		        rep.key);
		return s == SEND_LATER ? EXIT_TEMP : EXIT_FAIL;
	}
	int rc = 0;
	if (ctx->json)
		cli_print_json(json_array_get(res, 0));
	else
		rc = print_result(ctx, json_array_get(res, 0));
	json_decref(res);
	return rc;
}

int cmd_usage_set(struct ctx *ctx, int argc, char **argv)
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
	if (cli_check_key(ctx, RESOURCE_MAILBOX, argv[0], &key) < 0)
		return EXIT_USAGE;
	json_t *body = json_pack("{s:I, s:s}", "bytes", (json_int_t)bytes, "source",
	                         source != NULL ? source : "cli");
	if (msgs >= 0)
		json_object_set_new(body, "messages", json_integer(msgs));
	if (at != NULL)
		json_object_set_new(body, "measured_at", json_string(at));
	char *path = cli_item_path(ctx, RESOURCE_MAILBOX, key.text, "/usage");
	struct api_response r;
	int rc = cli_call(ctx, key.text, "PUT", path, body, NULL, &r);
	free(path);
	json_decref(body);
	if (rc == 0) {
		if (ctx->json)
			cli_print_json(r.doc);
		api_response_free(&r);
	}
	return rc;
}

int cmd_usage_get(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	struct resource_key key;
	if (cli_check_key(ctx, RESOURCE_MAILBOX, argv[0], &key) < 0)
		return EXIT_USAGE;
	char *path = cli_item_path(ctx, RESOURCE_MAILBOX, key.text, "/usage");
	struct api_response r;
	int rc = cli_call(ctx, key.text, "GET", path, NULL, NULL, &r);
	free(path);
	if (rc != 0)
		return rc;
	if (ctx->json) {
		cli_print_json(r.doc);
	} else {
		printf("mailbox %s\n", json_string_value(json_object_get(r.doc, "address")));
		cli_print_state(ctx, r.doc);
	}
	api_response_free(&r);
	return 0;
}

/* ---- the report spool ---- */

/*
 * One line per report that could not be recorded, "key TAB occurred_at TAB bytes TAB messages
 * TAB recipient", appended under an exclusive lock; `mailquota usage flush` replays it (the
 * keys make replays safe).
 */
static int spool_append(struct ctx *ctx, const struct report *rep)
{
	char line[USAGE_KEY_MAX + RFC3339_MAX + ADDRESS_MAX + 96];
	_Static_assert(sizeof(line) < SPOOL_LINE_MAX, "flush reads every line whole");
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
	    f[4][0] == '\0' || str_copy(rep->key, f[0], sizeof(rep->key)) < 0 ||
	    str_copy(rep->occurred_at, f[1], sizeof(rep->occurred_at)) < 0)
		return -1;
	rep->recipient = f[4];
	return 0;
}

/* All of data[len] at offset off of fd: 0 or -1. */
static int pwrite_all(int fd, const char *data, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, data, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/*
 * The spool becomes the kept lines followed by what this flush did not read (from offset
 * consumed on). keep->len <= consumed, so the remainder moves towards the start and each piece
 * is read before anything is written over it.
 */
static int spool_rewrite(int fd, const struct buf *keep, off_t consumed)
{
	char chunk[65536];
	off_t r = consumed, w = (off_t)keep->len;
	if (keep->len > 0 && pwrite_all(fd, keep->data, keep->len, 0) < 0)
		return -1;
	for (;;) {
		ssize_t n = pread(fd, chunk, sizeof(chunk), r);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (pwrite_all(fd, chunk, (size_t)n, w) < 0)
			return -1;
		r += n;
		w += n;
	}
	return ftruncate(fd, w);
}

struct flush_counts {
	unsigned applied, dropped, kept;
};

/* Replay lines[0..n) in one request; kept lines are appended to keep. 0, or -1 when keep is
   full (cannot happen: keep holds a part of what was read, within the same limit). */
static int flush_batch(struct ctx *ctx, char **lines, size_t n, struct buf *keep,
                       struct flush_counts *c)
{
	json_t *reports = json_array(), *res = NULL;
	size_t *idx = xcalloc(n, sizeof(*idx));
	size_t m = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		char tmp[SPOOL_LINE_MAX];
		struct report rep;
		if (str_copy(tmp, lines[i], sizeof(tmp)) < 0 || spool_parse(tmp, &rep) < 0) {
			fprintf(stderr, "mailquota: dropping a malformed spool line\n");
			c->dropped++;
			continue;
		}
		json_array_append_new(reports, report_json(&rep));
		idx[m++] = i;
	}
	const char *why = NULL;
	enum send_result s = m > 0 ? send_reports(ctx, reports, 0, &res, &why) : SENT;
	for (size_t j = 0; j < m && rc == 0; j++) {
		const char *err = s == SENT ? json_string_value(json_object_get(
		                                      json_array_get(res, j), "error"))
		                            : NULL;
		if (s == SEND_LATER || (s == SENT && res == NULL)) {
			rc = buf_puts(keep, lines[idx[j]]);
			c->kept++;
		} else if (s == SEND_REFUSED || err != NULL) {
			fprintf(stderr, "mailquota: dropping a spooled report: %s\n",
			        err != NULL ? err : why);
			c->dropped++;
		} else {
			c->applied++;
		}
	}
	json_decref(res);
	json_decref(reports);
	free(idx);
	return rc;
}

int cmd_usage_flush(struct ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const char *spool = ctx->cfg.report_spool;
	int fd = open(spool, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			printf("nothing spooled\n");
			return 0;
		}
		return cli_fail(spool, strerror(errno));
	}
	int dfd = flock(fd, LOCK_EX) == 0 ? dup(fd) : -1;
	FILE *in = dfd >= 0 ? fdopen(dfd, "r") : NULL;
	if (in == NULL) {
		int rc = cli_fail(spool, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		close(fd);
		return rc;
	}
	/* read whole lines up to SPOOL_FLUSH_MAX; the rest stays for the next flush */
	char line[SPOOL_LINE_MAX];
	char **lines = NULL;
	size_t nlines = 0, consumed = 0;
	bool more = false;
	while (fgets(line, sizeof(line), in) != NULL) {
		size_t l = strlen(line);
		if (l > SPOOL_FLUSH_MAX - consumed) {
			more = true;
			break;
		}
		consumed += l;
		lines = xrealloc(lines, (nlines + 1) * sizeof(*lines));
		lines[nlines++] = xstrdup(line);
	}
	bool read_failed = ferror(in);
	fclose(in);
	struct buf keep;
	struct flush_counts c = { 0 };
	buf_init(&keep, SPOOL_FLUSH_MAX);
	int rc = read_failed ? -1 : 0;
	for (size_t start = 0; rc == 0 && start < nlines; start += USAGE_BATCH_MAX) {
		size_t n = nlines - start < USAGE_BATCH_MAX ? nlines - start : USAGE_BATCH_MAX;
		rc = flush_batch(ctx, lines + start, n, &keep, &c);
	}
	for (size_t i = 0; i < nlines; i++)
		free(lines[i]);
	free(lines);
	/* when the replay could not finish, the spool stays whole: replaying again is harmless */
	const char *failed = NULL;
	if (read_failed)
		failed = "cannot read the spool";
	else if (rc < 0)
		failed = "cannot keep the reports to retry";
	else if (spool_rewrite(fd, &keep, (off_t)consumed) < 0)
		failed = "cannot rewrite the spool";
	close(fd);
	buf_free(&keep);
	if (failed != NULL)
		return cli_fail(spool, failed);
	printf("spooled reports: %u applied, %u kept for later, %u dropped\n", c.applied, c.kept,
	       c.dropped);
	if (more)
		printf("the spool holds more than %d MiB: the rest waits for the next flush\n",
		       SPOOL_FLUSH_MAX / (1024 * 1024));
	return c.kept > 0 || more ? EXIT_TEMP : 0;
}

/* ---- deliver ---- */

/*
 * Copy standard input to fd while counting and hashing it (the token module's hash: the key of
 * the message's report). 0, or -1 when reading failed; *write_failed when the agent stopped
 * reading.
 */
static int copy_message(int fd, uint64_t *bytes_r, uint8_t hash_r[TOKEN_HASH_LEN],
                        bool *write_failed)
{
	struct token_hasher h;
	char chunk[65536];
	ssize_t n;
	token_hash_init(&h);
	*bytes_r = 0;
	*write_failed = false;
	while ((n = read(STDIN_FILENO, chunk, sizeof(chunk))) > 0) {
		*bytes_r += (uint64_t)n;
		token_hash_update(&h, chunk, (size_t)n);
		for (ssize_t off = 0; off < n && !*write_failed;) {
			ssize_t w = write(fd, chunk + off, (size_t)(n - off));
			if (w < 0)
				*write_failed = true;
			else
				off += w;
		}
	}
	token_hash_final(&h, hash_r);
	return n < 0 ? -1 : 0;
}

/* deliver's own key for a message: "deliver/<first 16 octets of its hash, hex>/<recipient>". */
static void deliver_key(const uint8_t hash[TOKEN_HASH_LEN], const char *recipient,
                        struct report *rep)
{
	char hex[2 * DELIVER_KEY_HASH + 1];
	for (size_t i = 0; i < DELIVER_KEY_HASH; i++)
		snprintf(hex + 2 * i, 3, "%02x", hash[i]);
	/* cut to fit USAGE_KEY_MAX: "deliver/" 8 + 32 + "/" 1 + 150 */
	snprintf(rep->key, sizeof(rep->key), "deliver/%s/%.150s", hex, recipient);
	for (char *c = rep->key; *c; c++) /* keep the key printable whatever the address holds */
		if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
			*c = '_';
}

/*
 * deliver: a delivery wrapper for Postfix pipe(8) transports. The message on standard input
 * goes to COMMAND (the real local delivery agent) while its bytes are counted; when COMMAND
 * succeeds the delivery is reported through the API as +bytes, +1 message under a key that
 * makes Postfix's redeliveries of the same message count once. Exits with COMMAND's status, so
 * Postfix sees the delivery's real outcome; a report that cannot be recorded is spooled and
 * never turns a done delivery into a retry (that would deliver the message twice).
 */
int cmd_deliver(struct ctx *ctx, int argc, char **argv)
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
	uint64_t bytes;
	uint8_t hash[TOKEN_HASH_LEN];
	bool write_failed;
	int read_rc = copy_message(pipefd[1], &bytes, hash, &write_failed);
	close(pipefd[1]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int rc = WIFEXITED(status) ? WEXITSTATUS(status) : EX_TEMPFAIL_MAIL;
	if (rc != 0 || read_rc < 0 || write_failed)
		return rc != 0 ? rc : EX_TEMPFAIL_MAIL;

	struct report rep = { .recipient = argv[0], .bytes = (int64_t)bytes, .messages = 1 };
	if (key == NULL || !usage_key_valid(key) || str_copy(rep.key, key, sizeof(rep.key)) < 0)
		deliver_key(hash, argv[0], &rep);
	/* when it happened: a recalculation measured after this counts it already */
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(rep.occurred_at, sizeof(rep.occurred_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *reports = json_array(), *res = NULL;
	json_array_append_new(reports, report_json(&rep));
	const char *why;
	enum send_result s = send_reports(ctx, reports, 2, &res, &why);
	json_decref(reports);
	const char *err =
	        s == SENT ? json_string_value(json_object_get(json_array_get(res, 0), "error"))
	                  : NULL;
	if (s == SENT && err == NULL) {
		json_decref(res);
		return 0;
	}
	if (s == SEND_LATER && spool_append(ctx, &rep) == 0) {
		fprintf(stderr,
		        "mailquota deliver: delivered; usage spooled to %s (run mailquota "
		        "usage flush): %s\n",
		        ctx->cfg.report_spool, why);
		json_decref(res);
		return 0;
	}
	fprintf(stderr,
	        "mailquota deliver: delivered, but usage not recorded for %s (%llu bytes, "
	        "key %s): %s; a recalculation will correct it\n",
	        argv[0], (unsigned long long)bytes, rep.key, err != NULL ? err : why);
	json_decref(res);
	return 0;
}
