/*
 * warn_worker: delivers warnings (see warn_worker.h). One thread: claim a due delivery, send it
 * (an HTTP POST with libcurl, or the mail command with the message on its input), record the
 * outcome, and sleep until the next delivery falls due or PostgreSQL announces a new event.
 * Nothing here runs on a check's path. What a receiver or a mail command can do to the daemon
 * is bounded: each attempt has a deadline, a webhook's answer is read up to
 * WEBHOOK_ANSWER_MAX bytes and a command's output up to COMMAND_OUTPUT_MAX, and a stop request
 * ends an attempt at once.
 */
/* posix_spawn_file_actions_addclosefrom_np needs _GNU_SOURCE, which the build defines */
#include "warn_worker.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "db.h"
#include "log.h"
#include "reload.h"
#include "version.h"
#include "warn_outbox.h"
#include "warning.h"
#include "xalloc.h"

#define SECRET_MAX         1024 /* bytes of the webhook secret file */
#define WEBHOOK_BODY_MAX   (8 * 1024)
#define WEBHOOK_ANSWER_MAX (64 * 1024)
#define COMMAND_OUTPUT_MAX 400 /* of the mail command's output, kept as the error */
#define PRUNE_INTERVAL_S   3600
#define IDLE_WAIT_MS       60000 /* at most between looks at the outbox */
#define DB_BACKOFF_MAX_MS  30000
#define ERROR_TEXT_MAX     (COMMAND_OUTPUT_MAX + 100)

/* The live parameters the thread reads (reload.h), copied under the read lock before each use. */
struct warn_limits {
	unsigned webhook_timeout, mail_timeout, retry_base, retry_max, max_tries, retention;
};

/* What the channel parameters set up (see warn_worker.h). */
struct warn_setup {
	unsigned channels; /* bits 1 << enum warning_channel */
	uint8_t secret[SECRET_MAX];
	size_t secret_len;
	char *template;
};

struct warn_worker {
	const struct config *cfg;
	struct warn_limits lim; /* the thread's own copy */
	/* replaced under the reload write lock, read under the read one */
	struct warn_setup *setup;
	struct warn_outbox *ob;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	int wake[2];
	bool channel_off; /* the last send found its channel switched off by a reload */
};

static _Thread_local char errbuf[300];

/* Read path whole into a new string (at most max bytes): it, or NULL with *error_r. */
static char *read_file(const char *what, const char *path, size_t max, size_t *len_r,
                       const char **error_r)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(errbuf, sizeof(errbuf), "%s: %s: %s", what, path, strerror(errno));
		*error_r = errbuf;
		return NULL;
	}
	char *s = xmalloc(max + 2);
	size_t n = fread(s, 1, max + 1, f);
	fclose(f);
	if (n > max) {
		free(s);
		snprintf(errbuf, sizeof(errbuf), "%s: %s is larger than %zu bytes", what, path,
		         max);
		*error_r = errbuf;
		return NULL;
	}
	s[n] = '\0';
	*len_r = n;
	return s;
}

/* Whether tmpl makes a message within WARNING_MAIL_MAX for the longest values an event has. */
static bool renders_for_any_event(const char *tmpl, const char *from)
{
	struct warning_event ev = { .resource = WARNING_STORAGE,
		                    .threshold = WARNING_THRESHOLD_MAX,
		                    .used = UINT64_MAX,
		                    .limit = UINT64_MAX };
	memset(ev.event_id, 'f', WARNING_EVENT_ID_LEN);
	memset(ev.address, 'a', sizeof(ev.address) - 1);
	memset(ev.percent, '9', sizeof(ev.percent) - 1);
	struct buf out;
	buf_init(&out, WARNING_MAIL_MAX);
	int rc = warning_mail_render(&ev, tmpl, from, "Wed, 31 Dec 2099 23:59:59 +0000", &out);
	buf_free(&out);
	return rc == 0;
}

/* Copy the live parameters; on the warning thread, which reads them only from w->lim. */
static void refresh_limits(struct warn_worker *w)
{
	reload_read_lock();
	w->lim = (struct warn_limits){
		.webhook_timeout = (unsigned)w->cfg->warning_webhook_timeout,
		.mail_timeout = (unsigned)w->cfg->warning_mail_timeout,
		.retry_base = (unsigned)w->cfg->warning_retry_base,
		.retry_max = (unsigned)w->cfg->warning_retry_max,
		.max_tries = (unsigned)w->cfg->warning_max_tries,
		.retention = (unsigned)w->cfg->warning_retention,
	};
	reload_read_unlock();
}

void warn_setup_free(struct warn_setup **sp)
{
	struct warn_setup *s = *sp;
	if (s == NULL)
		return;
	explicit_bzero(s->secret, sizeof(s->secret));
	free(s->template);
	free(s);
	*sp = NULL;
}

/* The channels cfg sets up, with the secret and the template read and checked into ws: 0, or
   -1 with *error_r (see warn_setup_load()). */
static int load_channels(struct warn_setup *ws, const struct config *cfg, const char **error_r)
{
	unsigned channels = 0;
	if (cfg->warning_webhook_url[0] != '\0')
		channels |= 1u << WARNING_WEBHOOK;
	if (cfg->warning_mail_command[0] != '\0')
		channels |= 1u << WARNING_MAIL;
	ws->channels = channels;
	size_t len;
	if (channels & (1u << WARNING_WEBHOOK)) {
		char *s = read_file("warning_webhook_secret_file", cfg->warning_webhook_secret_file,
		                    SECRET_MAX, &len, error_r);
		if (s == NULL)
			return -1;
		while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
			len--; /* a file written by echo ends in a newline that is not the secret's
			        */
		memcpy(ws->secret, s, len);
		ws->secret_len = len;
		explicit_bzero(s, len);
		free(s);
		if (len < 16) {
			*error_r =
			        "warning_webhook_secret_file: the secret must be at least 16 bytes";
			return -1;
		}
	}
	if (channels & (1u << WARNING_MAIL)) {
		const char *path = cfg->warning_mail_template;
		ws->template = path[0] != '\0' ? read_file("warning_mail_template", path,
		                                           WARNING_TEMPLATE_MAX, &len, error_r)
		                               : xstrdup(warning_default_template);
		const char *why;
		unsigned line;
		if (ws->template == NULL)
			return -1;
		if (warning_template_check(ws->template, &why, &line) < 0) {
			snprintf(errbuf, sizeof(errbuf), "warning_mail_template: line %u: %s", line,
			         why);
			*error_r = errbuf;
			return -1;
		}
		if (!renders_for_any_event(ws->template, cfg->warning_mail_from)) {
			*error_r = "warning_mail_template: the message for the longest address and "
			           "figures would exceed 32 KiB";
			return -1;
		}
		char copy[1024];
		char *argv[WARNING_COMMAND_ARGS_MAX];
		snprintf(copy, sizeof(copy), "%s", cfg->warning_mail_command);
		if (strlen(cfg->warning_mail_command) >= sizeof(copy) ||
		    warning_command_split(copy, argv) < 0) {
			*error_r = "warning_mail_command: at most 30 words and 1023 bytes";
			return -1;
		}
	}
	return 0;
}

struct warn_setup *warn_setup_load(const struct config *cfg, const char **error_r)
{
	struct warn_setup *s = xcalloc(1, sizeof(*s));
	if (load_channels(s, cfg, error_r) < 0)
		warn_setup_free(&s);
	return s;
}

void warn_worker_swap_setup(struct warn_worker *w, struct warn_setup **sp)
{
	struct warn_setup *old = w->setup;
	w->setup = *sp;
	*sp = old;
}

void warn_worker_wake(struct warn_worker *w)
{
	if (write(w->wake[1], "x", 1) < 0) {
		/* the pipe is full: a wake-up is pending already */
	}
}

struct warn_worker *warn_worker_new(const struct config *cfg, const char **error_r)
{
	*error_r = NULL;
	struct warn_worker *w = xcalloc(1, sizeof(*w));
	w->cfg = cfg;
	w->wake[0] = w->wake[1] = -1;
	if ((w->setup = warn_setup_load(cfg, error_r)) == NULL)
		goto fail;
	if (pipe2(w->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		*error_r = "pipe failed";
		goto fail;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	w->ob = warn_outbox_new(cfg->database_url, (unsigned)cfg->database_connect_timeout,
	                        (unsigned)cfg->database_statement_timeout);
	return w;
fail:
	warn_worker_destroy(&w);
	return NULL;
}

static bool stopping(struct warn_worker *w)
{
	return atomic_load(&w->stop);
}

/* ---- webhook ---- */

static size_t discard(char *data, size_t size, size_t n, void *cls)
{
	(void)data;
	size_t *got = cls;
	*got += size * n;
	return *got > WEBHOOK_ANSWER_MAX ? 0 : size * n; /* 0 ends the transfer */
}

static int progress(void *cls, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return stopping(cls) ? 1 : 0;
}

static enum warn_outcome send_webhook(struct warn_worker *w, const struct warning_event *ev,
                                      const struct buf *body, char *err, size_t errsize)
{
	char sig[WARNING_SIGNATURE_MAX], h_sig[WARNING_SIGNATURE_MAX + 32], h_id[80];
	CURL *c = curl_easy_init();
	if (c == NULL) {
		snprintf(err, errsize, "curl_easy_init failed");
		return WARN_RETRY;
	}
	/* the URL and the secret are live (reload.h): signed and copied (libcurl copies the
	   URL) under the read lock, sent without it */
	reload_read_lock();
	bool on = (w->setup->channels & (1u << WARNING_WEBHOOK)) != 0;
	if (on) {
		warning_signature(w->setup->secret, w->setup->secret_len, (int64_t)time(NULL),
		                  body->data, body->len, sig);
		curl_easy_setopt(c, CURLOPT_URL, w->cfg->warning_webhook_url);
	}
	reload_read_unlock();
	if (!on) {
		curl_easy_cleanup(c);
		snprintf(err, errsize, "a reload switched the webhook channel off");
		w->channel_off = true;
		return WARN_RETRY;
	}
	snprintf(h_sig, sizeof(h_sig), "Mailquota-Signature: %s", sig);
	snprintf(h_id, sizeof(h_id), "Mailquota-Event-Id: %s", ev->event_id);
	struct curl_slist *h = NULL;
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, h_sig);
	h = curl_slist_append(h, h_id);
	h = curl_slist_append(h, "Expect:");
	size_t got = 0;
	long ms = (long)w->lim.webhook_timeout * 1000;
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "mailquota/" MAILQUOTA_VERSION);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body->len);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc == CURLE_WRITE_ERROR && status >= 200 && status < 300)
		return WARN_DELIVERED; /* a 2xx with a long answer we stopped reading */
	if (rc != CURLE_OK) {
		snprintf(err, errsize, "%s", curl_easy_strerror(rc));
		return WARN_RETRY;
	}
	if (status >= 200 && status < 300)
		return WARN_DELIVERED;
	snprintf(err, errsize, "the receiver answered HTTP %ld", status);
	return WARN_RETRY;
}

/* ---- mail ---- */

static long ms_left(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (deadline->tv_sec - now.tv_sec) * 1000 +
	          (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 0;
}

/* Start argv with its input and output on pipes: the pid, or -1 with err filled. */
static pid_t spawn(char **argv, int *in_r, int *out_r, char *err, size_t errsize)
{
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(out, O_CLOEXEC) < 0) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		close(in[0]);
		close(in[1]);
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, out[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&at);
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE); /* the daemon ignores it; the command should not inherit that */
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	/* its own process group: a timeout kills what it started too */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	                                      POSIX_SPAWN_SETPGROUP);
	char *envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(in[0]);
	close(out[1]);
	if (rc != 0) {
		snprintf(err, errsize, "cannot run %s: %s", argv[0], strerror(rc));
		close(in[1]);
		close(out[0]);
		return -1;
	}
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	*in_r = in[1];
	*out_r = out[0];
	return pid;
}

/*
 * Feed msg to the command's input and keep (part of) its output until it exits — not until its
 * output ends: a command may leave a background process (sendmail's own delivery) holding it
 * — all before the deadline and while not stopping: its wait status in *status_r and 0, or -1
 * (its process group was killed).
 */
static int run_command(struct warn_worker *w, pid_t pid, int in, int out, const struct buf *msg,
                       const struct timespec *deadline, char *output, size_t outsize, int *status_r)
{
	size_t sent = 0, kept = 0;
	bool eof = false, exited = false;
	while (!exited && !stopping(w) && ms_left(deadline) > 0) {
		struct pollfd p[3] = { { .fd = in, .events = POLLOUT },
			               { .fd = eof ? -1 : out, .events = POLLIN },
			               { .fd = w->wake[0], .events = POLLIN } };
		long wait = ms_left(deadline) < 50 ? ms_left(deadline) : 50;
		poll(p, 3, (int)wait);
		if (in >= 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n = write(in, msg->data + sent, msg->len - sent);
			if (n > 0)
				sent += (size_t)n;
			if ((n < 0 && errno != EAGAIN) || sent == msg->len) {
				close(in);
				in = -1;
			}
		}
		if (!eof && (p[1].revents & (POLLIN | POLLERR | POLLHUP))) {
			char chunk[512];
			ssize_t n = read(out, chunk, sizeof(chunk));
			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				eof = true;
			} else if (n > 0 && kept < outsize - 1) {
				size_t k = (size_t)n < outsize - 1 - kept ? (size_t)n
				                                          : outsize - 1 - kept;
				memcpy(output + kept, chunk, k);
				kept += k;
			}
		}
		exited = waitpid(pid, status_r, WNOHANG) == pid;
	}
	output[kept] = '\0';
	if (in >= 0)
		close(in);
	close(out);
	if (exited)
		return 0;
	kill(-pid, SIGKILL);
	waitpid(pid, status_r, 0);
	return -1;
}

static enum warn_outcome send_mail(struct warn_worker *w, const struct warning_event *ev, char *err,
                                   size_t errsize)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (ev->address[0] == '-') {
		/* it would be read as an option of the command */
		snprintf(err, errsize, "an address starting with '-' is not given to a command");
		return WARN_FAILED;
	}
	/* the template, the sender and the command are live (reload.h): the message rendered
	   and the command copied under the read lock, run without it */
	struct buf msg;
	char copy[1024];
	buf_init(&msg, WARNING_MAIL_MAX);
	reload_read_lock();
	bool on = (w->setup->channels & (1u << WARNING_MAIL)) != 0;
	int rc = on ? warning_mail_render(ev, w->setup->template, w->cfg->warning_mail_from, date,
	                                  &msg)
	            : 0;
	snprintf(copy, sizeof(copy), "%s", w->cfg->warning_mail_command);
	reload_read_unlock();
	if (!on || rc < 0) {
		buf_free(&msg);
		if (!on) {
			snprintf(err, errsize, "a reload switched the mail channel off");
			w->channel_off = true;
			return WARN_RETRY;
		}
		snprintf(err, errsize, "the message is larger than %d bytes", WARNING_MAIL_MAX);
		return WARN_FAILED;
	}
	char *argv[WARNING_COMMAND_ARGS_MAX];
	int argc = warning_command_split(copy, argv); /* checked by warn_setup_load() */
	char rcpt[sizeof(ev->address)];
	snprintf(rcpt, sizeof(rcpt), "%s", ev->address);
	argv[argc] = rcpt;
	argv[argc + 1] = NULL;

	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)w->lim.mail_timeout;
	int in, out, status = 0;
	char output[COMMAND_OUTPUT_MAX];
	pid_t pid = spawn(argv, &in, &out, err, errsize);
	if (pid < 0) {
		buf_free(&msg);
		return WARN_RETRY;
	}
	rc = run_command(w, pid, in, out, &msg, &deadline, output, sizeof(output), &status);
	buf_free(&msg);
	for (char *p = output; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (rc < 0) {
		snprintf(err, errsize, "%s did not finish within %llu s and was killed", argv[0],
		         (unsigned long long)w->lim.mail_timeout);
		return WARN_RETRY;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return WARN_DELIVERED;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (WIFEXITED(status))
		snprintf(err, errsize, "%s exited with %d: %s", argv[0], code, output);
	else
		snprintf(err, errsize, "%s was killed by signal %d", argv[0], WTERMSIG(status));
	/* sendmail's permanent refusals (sysexits.h); everything else may pass */
	if (code == EX_DATAERR || code == EX_NOUSER || code == EX_NOHOST || code == EX_NOPERM)
		return WARN_FAILED;
	return WARN_RETRY;
}

/* ---- the loop ---- */

static uint32_t random32(void)
{
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)time(NULL) ^ (uint32_t)getpid();
	return r;
}

/* Deliver what is due on channel: 0, or -1 with *error_r when the database failed. */
static int deliver_due(struct warn_worker *w, enum warning_channel ch, const char **error_r)
{
	while (!stopping(w)) {
		struct warning_event ev;
		struct buf body;
		unsigned tries;
		buf_init(&body, WEBHOOK_BODY_MAX);
		int rc = warn_outbox_claim(w->ob, ch, &ev, &body, &tries, error_r);
		if (rc <= 0) {
			buf_free(&body);
			return rc;
		}
		char err[ERROR_TEXT_MAX] = "";
		refresh_limits(w);
		w->channel_off = false;
		enum warn_outcome o = ch == WARNING_WEBHOOK
		                              ? send_webhook(w, &ev, &body, err, sizeof(err))
		                              : send_mail(w, &ev, err, sizeof(err));
		buf_free(&body);
		if (w->channel_off) {
			/* not sent, so no try: it waits, due, for the channel to be switched on */
			warn_outbox_release(w->ob);
			log_info("event=warning_held id=%s channel=%s note=\"%s\"", ev.event_id,
			         warning_channel_name(ch), err);
			return 0; /* the loop looks at the channels again */
		}
		if (stopping(w) && o != WARN_DELIVERED)
			return 0; /* cut short: the claim ends with the connection, and is made
			             again */
		uint64_t delay = warning_backoff_ms(tries + 1, w->lim.retry_base, w->lim.retry_max,
		                                    random32());
		const char *state;
		if (warn_outbox_finish(w->ob, o, w->lim.max_tries, delay,
		                       o == WARN_DELIVERED ? NULL : err, &state, error_r) < 0)
			return -1; /* delivered or not, it is sent again: the same event id */
		char clean[ERROR_TEXT_MAX];
		str_sanitize(clean, sizeof(clean), err, strlen(err), ERROR_TEXT_MAX - 1);
		if (o == WARN_DELIVERED)
			log_info("event=warning_delivered id=%s channel=%s mailbox=%s tries=%u",
			         ev.event_id, warning_channel_name(ch), ev.address, tries + 1);
		else
			log_warn("event=warning_%s id=%s channel=%s mailbox=%s tries=%u "
			         "error=\"%s\"%s",
			         strcmp(state, "failed") == 0 ? "failed" : "not_delivered",
			         ev.event_id, warning_channel_name(ch), ev.address, tries + 1,
			         clean,
			         strcmp(state, "pending") == 0 ? " note=\"will retry\"" : "");
	}
	return 0;
}

/* Prune once an hour: 0, or -1 with *error_r. The hour starts again whatever came of it. */
static int prune(struct warn_worker *w, time_t *last, unsigned channels, const char **error_r)
{
	time_t now = time(NULL);
	if (now - *last < PRUNE_INTERVAL_S)
		return 0;
	*last = now;
	uint64_t n = 0;
	refresh_limits(w);
	int rc = warn_outbox_prune(w->ob, w->lim.retention, &n, error_r);
	if (n > 0)
		log_info("event=warnings_pruned events=%llu", (unsigned long long)n);
	if (channels == 0)
		warn_outbox_disconnect(w->ob); /* nothing else to do here for an hour */
	return rc;
}

static void *run(void *arg)
{
	struct warn_worker *w = arg;
	unsigned backoff = 1000;
	bool failing = false;
	time_t last_prune = 0;
	while (!stopping(w)) {
		const char *why = "";
		int rc = 0;
		reload_read_lock(); /* a reload may switch channels on or off */
		unsigned channels = w->setup->channels;
		reload_read_unlock();
		for (int ch = 0; ch < WARNING_CHANNELS && rc == 0; ch++)
			if (channels & (1u << ch))
				rc = deliver_due(w, (enum warning_channel)ch, &why);
		if (rc == 0)
			rc = prune(w, &last_prune, channels, &why);
		uint64_t due = channels != 0 ? 0 : (uint64_t)PRUNE_INTERVAL_S * 1000;
		if (rc == 0 && channels != 0)
			rc = warn_outbox_next_due(w->ob, channels, &due, &why);
		if (stopping(w))
			break;
		if (rc < 0) {
			if (!failing) /* once per outage */
				log_warn("event=warning_outbox_unavailable error=\"%s\" "
				         "note=\"retrying "
				         "with back-off\"",
				         why);
			failing = true;
			due = backoff;
			backoff = backoff * 2 > DB_BACKOFF_MAX_MS ? DB_BACKOFF_MAX_MS : backoff * 2;
		} else {
			if (failing)
				log_info("event=warning_outbox_available");
			failing = false;
			backoff = 1000;
		}
		if (due > 0)
			warn_outbox_wait(w->ob, w->wake[0],
			                 (unsigned)(due < IDLE_WAIT_MS ? due : IDLE_WAIT_MS));
		char drain[16]; /* warn_worker_wake()'s bytes: a pipe left readable would spin */
		while (read(w->wake[0], drain, sizeof(drain)) > 0) {
		}
	}
	return NULL;
}

int warn_worker_start(struct warn_worker *w, const char **error_r)
{
	if (pthread_create(&w->thread, NULL, run, w) != 0) {
		*error_r = "cannot start the warning thread";
		return -1;
	}
	w->started = true;
	unsigned channels = w->setup->channels; /* no reload before the daemon runs */
	if (channels != 0)
		log_info("event=warnings_delivering webhook=%s mail=%s",
		         (channels & (1u << WARNING_WEBHOOK)) ? "yes" : "no",
		         (channels & (1u << WARNING_MAIL)) ? "yes" : "no");
	return 0;
}

void warn_worker_destroy(struct warn_worker **wp)
{
	struct warn_worker *w = *wp;
	if (w == NULL)
		return;
	atomic_store(&w->stop, true);
	if (w->wake[1] >= 0 && write(w->wake[1], "x", 1) < 0) {
		/* the pipe is full: a wake-up is pending already */
	}
	if (w->started)
		pthread_join(w->thread, NULL);
	warn_outbox_destroy(&w->ob);
	for (int i = 0; i < 2; i++)
		if (w->wake[i] >= 0)
			close(w->wake[i]);
	warn_setup_free(&w->setup);
	free(w);
	*wp = NULL;
}
