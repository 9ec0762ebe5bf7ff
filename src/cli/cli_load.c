/*
 * cli_load: mailquota usage load, the absolute usage of many mailboxes from a file or a pipe
 * (`doveadm -f tab quota get -A | mailquota usage load`), sent in batches to
 * POST /v1/usage/recalculations. The input is read as a stream (never whole): lines become
 * items, items fill a batch up to RECALC_ITEMS_MAX items or RECALC_BODY_MAX bytes, and from a
 * pipe a batch also goes once its first line is LOAD_FLUSH_MS old, so that usage set from a
 * running doveadm is at most that stale. Every line that cannot be used, and every item the API
 * refuses, is reported as FILE:LINE; the load goes on. It must never hold more than one batch
 * and one line in memory, never send an item its line did not give, and never report success
 * for a batch the API did not acknowledge.
 *
 * When usage was measured (measured_at, which decides which delta reports the load supersedes):
 * an item's own measured_at (NDJSON, CSV); else at=TIME; else for a regular file its
 * modification time (the file was written when doveadm finished); else (a pipe) the moment the
 * batch's first item was read.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "doveadm.h"
#include "recalc.h"
#include "report.h"
#include "strnum.h"
#include "xalloc.h"

#define LOAD_LINE_MAX     (64 * 1024) /* one input line (a longer one is reported and skipped) */
#define LOAD_READ_CHUNK   (64 * 1024)
#define LOAD_FLUSH_MS     1000 /* from a pipe: a batch waits at most this long for more lines */
#define LOAD_ENVELOPE_MAX 2048 /* a batch's body besides its items: source, measured_at, keys */
#define LOAD_SHOWN_MAX    100  /* problems printed one by one; the rest are counted */
#define LOAD_RETRIES      4    /* a batch the API could not take now: tried again, 1, 2, 4, 8 s */
#define LOAD_PATH         "/v1/usage/recalculations"

_Static_assert(LOAD_LINE_MAX >= DOVEADM_LINE_MAX, "a doveadm line fits a line");

enum load_format { LOAD_DOVEADM, LOAD_NDJSON, LOAD_CSV };

/* The input: a descriptor read in chunks, cut into lines. */
struct input {
	const char *name; /* for messages: the file's name, or "-" */
	int fd;
	bool regular;  /* a regular file: never waits; else batches are flushed on time */
	char *data;    /* LOAD_LINE_MAX + LOAD_READ_CHUNK bytes */
	size_t start;  /* the next line starts here */
	size_t len;    /* bytes held */
	bool eof;      /* read returned 0 */
	bool skipping; /* within an overlong line: dropped up to its end */
	size_t line;   /* number of the last line handed out */
};

enum input_got { INPUT_LINE, INPUT_END, INPUT_WAIT, INPUT_FAILED };

/*
 * The next line (without "\n") in *p and *n, valid until the next call; *too_long when it was over
 * LOAD_LINE_MAX (then it is not given). INPUT_WAIT when wait_ms (>= 0) passed without a whole
 * line from a pipe.
 */
static enum input_got input_line(struct input *in, int wait_ms, const char **p, size_t *n,
                                 bool *too_long)
{
	*too_long = false;
	for (;;) {
		char *from = in->data + in->start;
		char *nl = memchr(from, '\n', in->len - in->start);
		if (nl != NULL || (in->eof && in->len > in->start)) {
			size_t l = nl != NULL ? (size_t)(nl - from) : in->len - in->start;
			in->start += l + (nl != NULL);
			in->line++;
			*too_long = in->skipping;
			in->skipping = false;
			*p = from;
			*n = l;
			return INPUT_LINE;
		}
		if (in->eof)
			return INPUT_END;
		/* no whole line held: keep what there is at the front, then read more */
		memmove(in->data, from, in->len - in->start);
		in->len -= in->start;
		in->start = 0;
		if (in->len > LOAD_LINE_MAX) {
			in->skipping =
			        true; /* the line's end is still to come: drop what is here */
			in->len = 0;
		}
		if (wait_ms >= 0 && !in->regular) {
			struct pollfd pfd = { .fd = in->fd, .events = POLLIN };
			int pr = poll(&pfd, 1, wait_ms);
			if (pr < 0 && errno != EINTR)
				return INPUT_FAILED;
			if (pr <= 0)
				return INPUT_WAIT;
		}
		ssize_t got = read(in->fd, in->data + in->len, LOAD_READ_CHUNK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return INPUT_FAILED;
		if (got == 0)
			in->eof = true;
		in->len += (size_t)got;
	}
}

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A wall-clock time as RFC 3339 with milliseconds. */
static void time_text(const struct timespec *ts, char out[RFC3339_MAX + 1])
{
	struct tm tm;
	char day[24];
	gmtime_r(&ts->tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, RFC3339_MAX + 1, "%s.%03ldZ", day, ts->tv_nsec / 1000000); /* fits */
}

/* What one run has done so far. */
struct tally {
	size_t applied, changed, unknown, invalid, doveadm_errors, ignored, batches;
	size_t shown; /* problems printed */
};

/* One item of the batch being filled: where it came from. */
struct origin {
	size_t line;
};

struct load {
	struct ctx *ctx;
	struct input in;
	enum load_format fmt;
	const char *source;
	const char *at;                  /* at=, or NULL */
	char file_time[RFC3339_MAX + 1]; /* a regular file's modification time, or "" */
	bool dry_run;
	json_t *items; /* the batch */
	struct origin *origins;
	size_t body;                /* the batch's items' bytes as JSON */
	struct timespec first_read; /* when the batch's first item's line was read */
	long long first_ms;
	struct tally t;
	json_t *problems; /* the first LOAD_SHOWN_MAX, for --json */
	/* CSV: which cell holds what (-1: none) */
	int col_mailbox, col_bytes, col_messages, col_at;
	bool csv_header_seen;
};

/* Report a problem with line (0: none) of the input: printed, counted by the caller. */
static void problem(struct load *l, size_t line, const char *mailbox, const char *code,
                    const char *message)
{
	if (l->t.shown++ >= LOAD_SHOWN_MAX)
		return;
	if (l->ctx->json) {
		json_t *p = json_pack("{s:I, s:s, s:s}", "line", (json_int_t)line, "error", code,
		                      "message", message);
		if (mailbox != NULL)
			json_object_set_new(p, "mailbox", json_string(mailbox));
		json_array_append_new(l->problems, p);
		return;
	}
	char m[120];
	if (mailbox != NULL) /* untrusted text: sanitised and cut before it is printed */
		str_sanitize(m, sizeof(m), mailbox, strlen(mailbox), 100);
	fprintf(stderr, "%s:%zu: %s%s%s: %s\n", l->in.name, line, mailbox != NULL ? m : "",
	        mailbox != NULL ? ": " : "", code, message);
}

/* The batch's body. */
static json_t *batch_body(struct load *l)
{
	json_t *b = json_pack("{s:s, s:O}", "source", l->source, "items", l->items);
	char t[RFC3339_MAX + 1];
	const char *at = l->at;
	if (at == NULL && l->file_time[0] != '\0')
		at = l->file_time;
	if (at == NULL) {
		time_text(&l->first_read, t);
		at = t;
	}
	json_object_set_new(b, "measured_at", json_string(at));
	return b;
}

/* Count and report the API's answer to the batch. */
static void take_results(struct load *l, json_t *doc)
{
	json_t *res = json_object_get(doc, "results"), *r;
	size_t i;
	json_array_foreach(res, i, r)
	{
		size_t line = i < json_array_size(l->items) ? l->origins[i].line : 0;
		const char *err = json_string_value(json_object_get(r, "error"));
		const char *mb = json_string_value(json_object_get(r, "mailbox"));
		if (err == NULL) {
			l->t.applied++;
			l->t.changed += json_is_true(json_object_get(r, "changed"));
			continue;
		}
		if (strcmp(err, "unknown_mailbox") == 0)
			l->t.unknown++;
		else
			l->t.invalid++;
		const char *msg = json_string_value(json_object_get(r, "message"));
		problem(l, line, mb, err, msg != NULL ? msg : "refused");
	}
}

/*
 * Send the batch (if any), retrying an API or database that cannot answer now. 0, or the exit
 * code to stop with (printed): the API refused the batch as a whole, or stayed away.
 */
static int flush(struct load *l)
{
	size_t n = json_array_size(l->items);
	if (n == 0)
		return 0;
	json_t *body = batch_body(l);
	const char *path = l->dry_run ? LOAD_PATH "?dry_run=true" : LOAD_PATH;
	int rc = 0;
	for (int attempt = 0;; attempt++) {
		struct api_response r;
		const char *transport = NULL;
		if (api_call(cli_api(l->ctx), "POST", path, body, NULL, &r, &transport) == 0 &&
		    r.status == 200 && json_is_array(json_object_get(r.doc, "results"))) {
			take_results(l, r.doc);
			api_response_free(&r);
			break;
		}
		bool later = transport != NULL || r.status >= 500;
		if (!later || attempt == LOAD_RETRIES) {
			/* the lines before the batch's first were dealt with; the rest were not
			 * sent */
			fprintf(stderr, "mailquota: usage load: stopped at %s:%zu\n", l->in.name,
			        l->origins[0].line);
			rc = cli_api_error("usage load", &r, transport);
			api_response_free(&r);
			break;
		}
		api_response_free(&r);
		sleep(1u << attempt);
	}
	json_decref(body);
	json_array_clear(l->items);
	l->body = 0;
	l->t.batches++;
	return rc;
}

/* Add an item (taken: its reference) read from line at the time the line was read. 0, or the
   exit code of a failed flush. */
static int add_item(struct load *l, json_t *item, size_t line, const struct timespec *read_at,
                    long long read_ms)
{
	char *text = json_dumps(item, JSON_COMPACT);
	size_t len = text != NULL ? strlen(text) + 1 : 0; /* and its comma */
	free(text);
	int rc = 0;
	size_t n = json_array_size(l->items);
	if (n == RECALC_ITEMS_MAX || l->body + len > RECALC_BODY_MAX - LOAD_ENVELOPE_MAX)
		rc = flush(l);
	if (rc != 0) {
		json_decref(item);
		return rc;
	}
	n = json_array_size(l->items);
	if (n == 0) {
		l->first_read = *read_at;
		l->first_ms = read_ms;
	}
	l->origins[n].line = line;
	json_array_append_new(l->items, item);
	l->body += len;
	return 0;
}

/* ---- the three formats: a line (or a doveadm user) into an item ---- */

/* A doveadm user's figures as an item, or the reason it has none. */
static json_t *doveadm_item(struct load *l, const struct doveadm_user *u)
{
	if (u->failed) {
		l->t.doveadm_errors++;
		problem(l, u->failed_line, u->user, "doveadm_error",
		        "doveadm could not read this user's quota (\"error\"): see its log");
		return NULL;
	}
	if (!u->has_bytes && !u->has_messages) {
		l->t.invalid++;
		problem(l, u->line, u->user, "no_figures",
		        "no STORAGE or MESSAGE row of the quota root taken");
		return NULL;
	}
	json_t *it = json_pack("{s:s}", "mailbox", u->user);
	if (u->has_bytes)
		json_object_set_new(it, "bytes", json_integer((json_int_t)u->bytes));
	if (u->has_messages)
		json_object_set_new(it, "messages", json_integer((json_int_t)u->messages));
	return it;
}

/* An NDJSON line as an item, checked as the API will check it; NULL (reported) if it is not. */
static json_t *ndjson_item(struct load *l, const char *p, size_t n)
{
	json_error_t je;
	json_t *it = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
	struct recalc_item ri;
	const char *field = "", *why = "not a JSON object";
	if (it == NULL || recalc_check_item(it, &ri, &field, &why) < 0) {
		l->t.invalid++;
		problem(l, l->in.line, json_string_value(json_object_get(it, "mailbox")),
		        "invalid_item", why);
		json_decref(it);
		return NULL;
	}
	return it;
}

/* The CSV header: which cell is what. 0, or -1 (reported: the file cannot be read). */
static int csv_header(struct load *l, const char *const *cells, size_t n)
{
	static const char *const names[] = { "mailbox", "bytes", "messages", "measured_at" };
	int *cols[] = { &l->col_mailbox, &l->col_bytes, &l->col_messages, &l->col_at };
	for (size_t k = 0; k < 4; k++)
		*cols[k] = -1;
	for (size_t c = 0; c < n; c++) {
		size_t k = 0;
		while (k < 4 && strcmp(cells[c], names[k]) != 0)
			k++;
		if (k == 4 || *cols[k] >= 0) {
			problem(l, l->in.line, NULL, "invalid_header",
			        "columns are mailbox, bytes, messages, measured_at, each once");
			return -1;
		}
		*cols[k] = (int)c;
	}
	if (l->col_mailbox < 0 || (l->col_bytes < 0 && l->col_messages < 0)) {
		problem(l, l->in.line, NULL, "invalid_header",
		        "a mailbox column and a bytes or messages column are needed");
		return -1;
	}
	l->csv_header_seen = true;
	return 0;
}

/* The cells of a CSV record as an item's members; NULL with *why_r when a figure is not a
   number. */
static json_t *csv_members(const struct load *l, const char *const *cells, size_t nc,
                           const char **why_r)
{
	static const char *const names[] = { "mailbox", "bytes", "messages", "measured_at" };
	const int cols[] = { l->col_mailbox, l->col_bytes, l->col_messages, l->col_at };
	json_t *it = json_object();
	for (size_t k = 0; k < 4; k++) {
		if (cols[k] < 0 || (size_t)cols[k] >= nc || cells[cols[k]][0] == '\0')
			continue; /* an empty cell: the figure is not given */
		const char *v = cells[cols[k]];
		uint64_t num;
		if (k != 1 && k != 2) {
			json_object_set_new(it, names[k], json_string(v));
		} else if (strnum_u64(v, strlen(v), RECALC_FIGURE_MAX, &num) == 0) {
			json_object_set_new(it, names[k], json_integer((json_int_t)num));
		} else {
			*why_r = "bytes and messages must be whole numbers from 0 to 2^63-1";
			json_decref(it);
			return NULL;
		}
	}
	return it;
}

/* A CSV record as an item; NULL (reported) if it is not one, with *fatal for a bad header. */
static json_t *csv_item(struct load *l, const char *p, size_t n, bool *fatal)
{
	const char *cells[RECALC_CSV_CELLS], *why = NULL, *field = "";
	char *out = xmalloc(n + 1);
	size_t nc;
	json_t *it = NULL;
	struct recalc_item ri;
	*fatal = false;
	if (recalc_csv_split(p, n, out, cells, &nc, &why) < 0) {
		*fatal = !l->csv_header_seen;
	} else if (!l->csv_header_seen) {
		*fatal = csv_header(l, cells, nc) < 0;
		free(out);
		return NULL; /* reported by csv_header() */
	} else if ((it = csv_members(l, cells, nc, &why)) != NULL &&
	           recalc_check_item(it, &ri, &field, &why) == 0) {
		free(out);
		return it;
	}
	if (*fatal) {
		problem(l, l->in.line, NULL, "invalid_header", why);
	} else {
		l->t.invalid++;
		problem(l, l->in.line, json_string_value(json_object_get(it, "mailbox")),
		        "invalid_item", why);
	}
	json_decref(it);
	free(out);
	return NULL;
}

/* ---- the command ---- */

/* The options after the file: 0, or -1 (printed). */
static int load_options(struct load *l, int argc, char **argv, const char **root_r)
{
	*root_r = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '='), *v = eq != NULL ? eq + 1 : "";
		size_t nl = eq != NULL ? (size_t)(eq - a) : strlen(a);
		bool ok = true;
		if (nl == 6 && strncmp(a, "format", nl) == 0) {
			l->fmt = strcmp(v, "doveadm") == 0  ? LOAD_DOVEADM
			         : strcmp(v, "ndjson") == 0 ? LOAD_NDJSON
			                                    : LOAD_CSV;
			ok = l->fmt != LOAD_CSV || strcmp(v, "csv") == 0;
		} else if (nl == 6 && strncmp(a, "source", nl) == 0) {
			l->source = v;
			ok = v[0] != '\0' && strlen(v) <= USAGE_SOURCE_MAX;
		} else if (nl == 2 && strncmp(a, "at", nl) == 0) {
			l->at = v;
			ok = v[0] != '\0' && rfc3339_valid(v);
		} else if (nl == 10 && strncmp(a, "quota_root", nl) == 0) {
			*root_r = v;
			ok = strlen(v) <= DOVEADM_ROOT_MAX;
		} else if (nl == 7 && strncmp(a, "dry_run", nl) == 0) {
			l->dry_run = strcmp(v, "true") == 0;
			ok = l->dry_run || strcmp(v, "false") == 0;
		} else {
			ok = false;
		}
		if (!ok) {
			fprintf(stderr, "mailquota: usage load: bad argument \"%s\"\n", a);
			return -1;
		}
	}
	if (*root_r != NULL && l->fmt != LOAD_DOVEADM) {
		fprintf(stderr, "mailquota: usage load: quota_root= goes with format=doveadm\n");
		return -1;
	}
	return 0;
}

/* Open the input: 0, or -1 (printed). A regular file's modification time becomes the batches'
   measured_at unless at= says otherwise. */
static int load_open(struct load *l, const char *name)
{
	l->in.name = name;
	l->in.fd = strcmp(name, "-") == 0 ? STDIN_FILENO : open(name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (l->in.fd < 0 || fstat(l->in.fd, &st) < 0) {
		cli_fail(name, strerror(errno));
		if (l->in.fd > STDIN_FILENO)
			close(l->in.fd);
		return -1;
	}
	l->in.regular = S_ISREG(st.st_mode);
	if (l->in.regular)
		time_text(&st.st_mtim, l->file_time);
	l->in.data = xmalloc(LOAD_LINE_MAX + LOAD_READ_CHUNK);
	return 0;
}

/* One line of the input (read at read_at): into an item when it gives one. 0, or an exit code
   to stop with. */
static int load_line(struct load *l, struct doveadm_reader *dr, const char *p, size_t n,
                     const struct timespec *read_at, long long read_ms, struct timespec *user_at,
                     long long *user_ms)
{
	json_t *it = NULL;
	bool fatal = false, blank = true;
	if (l->in.line == 1 && n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
		p += 3; /* a UTF-8 byte order mark, as spreadsheets write it */
		n -= 3;
	}
	for (size_t i = 0; i < n && blank; i++)
		blank = p[i] == ' ' || p[i] == '\t' || p[i] == '\r';
	if (l->fmt == LOAD_DOVEADM) {
		enum doveadm_line kind;
		struct doveadm_row row;
		struct doveadm_user done;
		const char *why;
		if (doveadm_parse_line(p, n, &kind, &row, &why) < 0) {
			l->t.invalid++;
			problem(l, l->in.line, NULL, "invalid_line", why);
			return 0;
		}
		int rc = 0;
		if (doveadm_reader_feed(dr, l->in.line, kind, &row, &done) == 1 &&
		    (it = doveadm_item(l, &done)) != NULL)
			rc = add_item(l, it, done.line, user_at, *user_ms);
		if (dr->open && dr->cur.line == l->in.line) { /* this line began a user */
			*user_at = *read_at;
			*user_ms = read_ms;
		}
		return rc;
	}
	if (blank)
		return 0;
	it = l->fmt == LOAD_NDJSON ? ndjson_item(l, p, n) : csv_item(l, p, n, &fatal);
	if (fatal)
		return EXIT_FAIL;
	return it != NULL ? add_item(l, it, l->in.line, read_at, read_ms) : 0;
}

/* The whole input, batch by batch: 0, or the exit code it stopped with. */
static int load_run(struct load *l, struct doveadm_reader *dr)
{
	struct timespec user_at = { 0 };
	long long user_ms = 0;
	for (;;) {
		int wait = -1, rc = 0;
		if (json_array_size(l->items) > 0 && !l->in.regular) {
			/* however many lines are waiting: a batch read from a pipe goes on time */
			long long left = l->first_ms + LOAD_FLUSH_MS - now_ms();
			if (left <= 0 && (rc = flush(l)) != 0)
				return rc;
			wait = left > 0 ? (int)left : -1;
		}
		const char *p;
		size_t n;
		bool too_long;
		enum input_got got = input_line(&l->in, wait, &p, &n, &too_long);
		if (got == INPUT_WAIT) {
			rc = flush(l);
		} else if (got == INPUT_FAILED) {
			cli_fail(l->in.name, strerror(errno));
			rc = flush(l);
			return rc != 0 ? rc : EXIT_FAIL;
		} else if (got == INPUT_END) {
			break;
		} else if (too_long) {
			l->t.invalid++;
			problem(l, l->in.line, NULL, "invalid_line", "longer than 64 KiB");
		} else {
			struct timespec read_at;
			clock_gettime(CLOCK_REALTIME, &read_at);
			rc = load_line(l, dr, p, n, &read_at, now_ms(), &user_at, &user_ms);
		}
		if (rc != 0)
			return rc;
	}
	struct doveadm_user done;
	json_t *it;
	if (l->fmt == LOAD_DOVEADM && doveadm_reader_finish(dr, &done) == 1 &&
	    (it = doveadm_item(l, &done)) != NULL) {
		int rc = add_item(l, it, done.line, &user_at, user_ms);
		if (rc != 0)
			return rc;
	}
	l->t.ignored = dr->ignored;
	return flush(l);
}

static void load_summary(const struct load *l)
{
	const struct tally *t = &l->t;
	if (l->ctx->json) {
		json_t *d = json_pack(
		        "{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:O, s:I}", "dry_run", l->dry_run,
		        "applied", (json_int_t)t->applied, "changed", (json_int_t)t->changed,
		        "unknown", (json_int_t)t->unknown, "invalid", (json_int_t)t->invalid,
		        "doveadm_errors", (json_int_t)t->doveadm_errors, "ignored_rows",
		        (json_int_t)t->ignored, "batches", (json_int_t)t->batches, "problems",
		        l->problems, "problems_total", (json_int_t)t->shown);
		cli_print_json(d);
		json_decref(d);
		return;
	}
	if (t->shown > LOAD_SHOWN_MAX)
		fprintf(stderr, "... and %zu more problems\n", t->shown - LOAD_SHOWN_MAX);
	printf("usage load: %zu applied (%zu changed), %zu unknown, %zu invalid, %zu "
	       "doveadm errors; %zu rows of other quota roots ignored; %zu batches%s\n",
	       t->applied, t->changed, t->unknown, t->invalid, t->doveadm_errors, t->ignored,
	       t->batches, l->dry_run ? " (dry run: nothing stored)" : "");
}

/* usage load [FILE|-] [format=] [source=] [at=] [quota_root=] [dry_run=] */
int cmd_usage_load(struct ctx *ctx, int argc, char **argv)
{
	const char *file = "-", *root;
	if (argc > 0 && strchr(argv[0], '=') == NULL) {
		file = argv[0];
		argc--;
		argv++;
	}
	struct load l = { .ctx = ctx, .fmt = LOAD_DOVEADM };
	if (load_options(&l, argc, argv, &root) < 0) {
		fprintf(stderr, "usage: mailquota usage load [FILE|-] [format=doveadm|ndjson|csv] "
		                "[source=S] [at=TIME] [quota_root=NAME] [dry_run=true]\n");
		return EXIT_USAGE;
	}
	if (l.source == NULL)
		l.source = l.fmt == LOAD_DOVEADM ? "doveadm" : "mailquota usage load";
	(void)cli_api(ctx); /* no URL or token: said and exited before reading anything */
	if (load_open(&l, file) < 0)
		return EXIT_FAIL;
	l.items = json_array();
	l.origins = xcalloc(RECALC_ITEMS_MAX, sizeof(*l.origins));
	l.problems = json_array();
	struct doveadm_reader dr;
	doveadm_reader_init(&dr, root);
	int rc = load_run(&l, &dr);
	load_summary(&l);
	if (rc == 0)
		rc = l.t.invalid + l.t.doveadm_errors > 0 ? EXIT_FAIL
		     : l.t.unknown > 0                    ? EXIT_NOTFOUND
		                                          : 0;
	if (l.in.fd != STDIN_FILENO)
		close(l.in.fd);
	free(l.in.data);
	free(l.origins);
	json_decref(l.items);
	json_decref(l.problems);
	return rc;
}
