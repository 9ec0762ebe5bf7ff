/*
 * config: one table describes every parameter (name, type, default, range, help), as Postfix's
 * CONFIG_*_TABLE and PgBouncer's CfKey do; parsing, validation, printing and the man page all
 * follow from it. Parsing is done by inih; everything here is pure but for allocation.
 * It must never accept a value it would later have to reinterpret or clamp silently.
 */
#include "config.h"
#include "config_internal.h"

#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "hostport.h"
#include "milter_reply.h"
#include "strnum.h"
#include "warning.h"
#include "xalloc.h"

enum cfg_type { CFG_STR, CFG_UINT, CFG_SIZE, CFG_BOOL, CFG_MODE };

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t offset;
	const char *def;
	uint64_t min, max; /* numbers only */
	const char *help;
	bool live; /* a reload (SIGHUP) applies it; else it needs a restart */
};

/*
 * K: a parameter fixed at start (read once into a listener, a pool, a thread, or read by HTTP
 * worker jobs, which hold no lock: see src/daemon/reload.c). L: one a reload applies; the
 * daemon reads it only on the policy thread or under the reload lock, per request. A new row
 * is K unless its every reader is known to be one of those. docs/configuration.md lists the
 * K rows (tests/unit/test_config.c checks that list against this table).
 */
#define K(name, type, def, min, max, help)                                             \
	{                                                                              \
#name, type, offsetof(struct config, name), def, min, max, help, false \
	}
#define L(name, type, def, min, max, help)                                            \
	{                                                                             \
#name, type, offsetof(struct config, name), def, min, max, help, true \
	}

/* Limits on untrusted-by-nature sizes live in the modules; these are operator-chosen. */
static const struct cfg_key keys[] = {
	K(database_url, CFG_STR, "", 0, 0,
	  "libpq connection string or URI; empty uses the PG* environment variables"),
	K(database_pool_size, CFG_UINT, "4", 1, 64,
	  "PostgreSQL connections the daemon opens for writes (usage reports)"),
	K(database_connect_timeout, CFG_UINT, "3", 1, 60,
	  "seconds a new PostgreSQL connection may take (libpq connect_timeout)"),
	K(database_statement_timeout, CFG_UINT, "10", 1, 3600,
	  "seconds one statement of a write or admin read may run; the daemon gives up on a call "
	  "1 s after it (a frozen server) and answers 503"),
	K(database_lock_timeout, CFG_UINT, "3", 1, 3600,
	  "seconds a write waits for a row lock before it is refused (503) and rolled back"),
	K(database_bulk_timeout, CFG_UINT, "600", 1, 86400,
	  "seconds an import or one export fetch may run (instead of database_statement_timeout)"),
	K(domain_usage_fold_interval, CFG_UINT, "2", 0, 3600,
	  "seconds between folds of the domains' usage changes into their totals (0: this daemon "
	  "never folds; reads stay exact, and slow down as changes pile up)"),
	K(usage_key_retention, CFG_UINT, "604800", 3600, 31536000,
	  "seconds an idempotency key is remembered; a retry within it is never counted twice"),
	L(report_spool, CFG_STR, "/var/spool/mailquota/reports", 0, 0,
	  "file where mailquota deliver keeps reports it could not record (mailquota usage flush)"),
	K(view_sweep_interval, CFG_UINT, "300", 0, 86400,
	  "seconds between full reloads of the in-memory view (0: never)"),
	K(view_ping_interval, CFG_UINT, "5", 1, 3600,
	  "seconds between probes of an idle listener connection"),
	K(view_load_timeout, CFG_UINT, "10", 0, 3600,
	  "seconds start-up waits for the first load before serving (tempfail until loaded)"),
	L(view_max_age, CFG_UINT, "3600", 1, 2592000,
	  "seconds the view may go without confirming it is in sync with PostgreSQL before its "
	  "refusals become reply_tempfail"),
	K(policy_socket, CFG_STR, "/run/mailquota/policy.sock", 0, 0,
	  "Unix socket for the Postfix policy protocol; empty disables it"),
	K(policy_socket_owner, CFG_STR, "", 0, 0, "owner of the policy socket (user name)"),
	K(policy_socket_group, CFG_STR, "", 0, 0, "group of the policy socket (e.g. postfix)"),
	K(policy_socket_mode, CFG_MODE, "0660", 0, 0777, "permission bits of the policy socket"),
	K(policy_tcp_listen, CFG_STR, "", 0, 0,
	  "host:port for the policy protocol over TCP (e.g. 127.0.0.1:10040); empty disables it"),
	L(policy_idle_timeout, CFG_UINT, "600", 1, 86400,
	  "seconds an idle policy connection is kept (longer than Postfix's 300 s max_idle)"),
	K(policy_max_connections, CFG_UINT, "1024", 1, 100000,
	  "concurrent policy connections; more are accepted and closed at once"),
	L(policy_max_connections_per_client, CFG_UINT, "256", 1, 100000,
	  "concurrent policy connections from one client (TCP address, or Unix user id)"),
	L(policy_tcp_allow, CFG_STR, "127.0.0.0/8 ::1", 0, 0,
	  "networks that may use the TCP policy listener (CIDR list, like Postfix's mynetworks)"),
	K(socketmap_socket, CFG_STR, "", 0, 0,
	  "Unix socket for Postfix's socketmap table (check_recipient_access "
	  "socketmap:unix:<path>:mailquota; refuses only already full mailboxes), with the owner, "
	  "group and mode of the policy socket; empty disables it"),
	K(socketmap_tcp_listen, CFG_STR, "", 0, 0,
	  "host:port for the socketmap table over TCP (clients in policy_tcp_allow); empty "
	  "disables it"),
	K(exim_socket, CFG_STR, "", 0, 0,
	  "Unix socket for Exim's ${readsocket{...}} in the RCPT ACL (one \"<recipient> <size>\" "
	  "line in, \"OK\" or an SMTP reply line out), with the owner, group and mode of the "
	  "policy socket; empty disables it"),
	K(exim_tcp_listen, CFG_STR, "", 0, 0,
	  "host:port for Exim's readsocket requests over TCP (clients in policy_tcp_allow); empty "
	  "disables it"),
	K(milter_socket, CFG_STR, "unix:/run/mailquota-milter/milter.sock", 0, 0,
	  "where mailquota-milter listens for the MTA, in libmilter's form: unix:/path or "
	  "inet:port@host (inet6:port@host); mailquota-milter refuses to start when empty"),
	K(milter_socket_group, CFG_STR, "", 0, 0,
	  "group given the milter's Unix socket (e.g. postfix); empty: the milter's own"),
	K(milter_socket_mode, CFG_MODE, "0660", 0, 0777,
	  "permission bits of the milter's Unix socket"),
	K(milter_connect, CFG_STR, "", 0, 0,
	  "the daemon's policy service the milter asks: a Unix socket path or host:port; empty: "
	  "policy_socket"),
	K(milter_timeout, CFG_UINT, "5", 1, 300,
	  "seconds the milter waits for the daemon's answer (connecting included) before it "
	  "answers milter_tempfail_reply"),
	K(milter_tempfail_reply, CFG_STR, "451 4.3.5 Quota service unavailable", 0, 0,
	  "the milter's reply when the daemon cannot be asked or answers nonsense (4xx or "
	  "DEFER_IF_PERMIT text)"),
	K(http_listen, CFG_STR, "127.0.0.1:8080", 0, 0,
	  "host:port for the HTTP API; empty disables it"),
	K(metrics_listen, CFG_STR, "", 0, 0,
	  "host:port that serves GET /metrics and nothing else, without a token (loopback or a "
	  "trusted network only; needs http_listen); empty disables it"),
	K(http_max_connections, CFG_UINT, "256", 1, 100000, "concurrent HTTP connections"),
	K(http_timeout, CFG_UINT, "30", 1, 3600, "seconds an idle HTTP connection is kept"),
	K(http_threads, CFG_UINT, "1", 1, 64,
	  "HTTP threads serving connections and checks (never database work)"),
	K(http_workers, CFG_UINT, "4", 1, 64,
	  "threads that run the HTTP requests needing the database (writes, admin reads)"),
	K(http_queue_max, CFG_UINT, "256", 1, 100000,
	  "database requests waiting for a worker; more are answered 503 at once"),
	K(http_max_connections_per_address, CFG_UINT, "64", 0, 100000,
	  "concurrent HTTP connections from one client address (0: no limit)"),
	L(http_request_timeout, CFG_UINT, "30", 1, 3600,
	  "seconds a connection has to send a complete request, from connecting or from its "
	  "previous response (idle keep-alive connections close after it too)"),
	L(http_cors_origins, CFG_STR, "", 0, 0,
	  "browser origins allowed to call the HTTP API (space-separated, or *); empty: none"),
	L(precheck_rate, CFG_UINT, "10", 1, 1000000,
	  "recipients a token may precheck per second (GET/POST /v1/precheck), on average"),
	L(precheck_burst, CFG_UINT, "100", 1, 1000000,
	  "recipients a token may precheck at once after a pause (a POST of more is refused)"),
	K(self_token_max_lifetime, CFG_UINT, "86400", 60, 31536000,
	  "seconds a self-scoped token may live at most (one created without expires_at gets "
	  "this): the links users get to the self-check page are short-lived"),
	L(self_page_url, CFG_STR, "", 0, 0,
	  "the self-check page as users reach it (e.g. https://mail.example.com/quota/self), for "
	  "mailquota self-link; empty: api_url (or http_listen) and /self"),
	L(api_url, CFG_STR, "", 0, 0,
	  "the API the mailquota command talks to; empty: http:// and http_listen"),
	L(api_token_file, CFG_STR, "", 0, 0,
	  "file holding the mailquota command's API token (MAILQUOTA_TOKEN overrides it)"),
	K(recipient_delimiter, CFG_STR, "+", 0, 0,
	  "characters that start an address extension (user+tag); empty disables stripping"),
	K(fold_local_part, CFG_BOOL, "yes", 0, 0, "compare local parts case-insensitively"),
	L(message_size_limit, CFG_SIZE, "0", 0, INT64_MAX,
	  "global max message size in bytes (K/M/G suffixes); 0 means no global limit"),
	L(grace_percent, CFG_UINT, "0", 0, QUOTA_GRACE_PERCENT_MAX,
	  "default grace: a mailbox under its limit may take a last message ending this % above "
	  "it"),
	L(reply_profile, CFG_STR, "conventional", 0, 0,
	  "over-quota reply: conventional (552 5.2.2), strict (452 4.2.2), no452 (450 4.2.2)"),
	L(reply_over_quota, CFG_STR, "", 0, 0, "over-quota reply; empty uses the profile's"),
	L(reply_too_big_mailbox, CFG_STR, "552 5.2.3 Message length exceeds administrative limit",
	  0, 0, "reply when the size exceeds the mailbox's max message size"),
	L(reply_too_big_system, CFG_STR, "552 5.3.4 Message too big for system", 0, 0,
	  "reply when the size exceeds the domain's or the global max message size"),
	L(reply_tempfail, CFG_STR, "451 4.3.0 Quota service temporarily unavailable", 0, 0,
	  "reply when no usable data is available (4xx or DEFER_IF_PERMIT text)"),
	L(unknown_recipient_action, CFG_STR, "DUNNO", 0, 0,
	  "action for a recipient mailquota does not know (DUNNO lets the MTA decide)"),
	L(alias_policy, CFG_STR, "any", 0, 0,
	  "an alias with several targets: any (refused only if every target refuses) or all "
	  "(refused if any target refuses)"),
	L(log_level, CFG_STR, "info", 0, 0, "debug, info, notice, warn or error"),
	L(shutdown_timeout, CFG_UINT, "10", 0, 3600,
	  "seconds SIGTERM waits for requests in progress to be answered before exiting"),
	L(warning_webhook_url, CFG_STR, "", 0, 0,
	  "http(s) URL this daemon POSTs quota warnings to (channel webhook); empty: it does not "
	  "deliver webhooks"),
	L(warning_webhook_secret_file, CFG_STR, "", 0, 0,
	  "file holding the secret that signs each webhook body (HMAC-SHA256, header "
	  "Mailquota-Signature); required with warning_webhook_url"),
	L(warning_webhook_timeout, CFG_UINT, "10", 1, WARNING_ATTEMPT_MAX_S,
	  "seconds one webhook attempt may take (connecting, sending, the receiver's answer)"),
	L(warning_mail_command, CFG_STR, "", 0, 0,
	  "sendmail-compatible command that mails warnings to users (channel mail), split at "
	  "spaces, no shell; the recipient is added as its last argument, the message is its "
	  "input (e.g. /usr/sbin/sendmail -i -f postmaster@example.com --); empty: no mail"),
	L(warning_mail_from, CFG_STR, "", 0, 0,
	  "From: of warning mail (e.g. Postmaster <postmaster@example.com>); required with "
	  "warning_mail_command"),
	L(warning_mail_template, CFG_STR, "", 0, 0,
	  "file with the warning mail's Subject: and body, with {address} {resource} "
	  "{threshold} {percent} {used} {limit} {event_id}; empty: the built-in text"),
	L(warning_mail_timeout, CFG_UINT, "30", 1, WARNING_ATTEMPT_MAX_S,
	  "seconds the mail command may run before it is killed and the delivery retried"),
	L(warning_retry_base, CFG_UINT, "30", 1, 86400,
	  "seconds before the first retry of a failed delivery; doubled for each further one"),
	L(warning_retry_max, CFG_UINT, "3600", 1, 604800, "seconds between retries at most"),
	L(warning_max_tries, CFG_UINT, "10", 1, 1000,
	  "attempts per delivery before it is marked failed (GET /v1/warnings?state=failed)"),
	L(warning_retention, CFG_UINT, "2592000", 3600, 31536000,
	  "seconds warning events are kept (delivered, failed or still pending)"),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static void *slot(struct config *cfg, const struct cfg_key *k)
{
	return (char *)cfg + k->offset;
}

static const void *cslot(const struct config *cfg, const struct cfg_key *k)
{
	return (const char *)cfg + k->offset;
}

static const struct cfg_key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int cfg_set(struct config *cfg, const char *name, const char *value, config_error *err);

void config_seterr(config_error *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(*err, sizeof(*err), fmt, ap); /* truncation of a message is harmless */
	va_end(ap);
}

static int parse_value(const struct cfg_key *k, const char *value, void *dst, config_error *err)
{
	uint64_t v;
	char sane[80];
	switch (k->type) {
	case CFG_STR:
		free(*(char **)dst);
		*(char **)dst = xstrdup(value);
		return 0;
	case CFG_BOOL:
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 ||
		    strcmp(value, "1") == 0) {
			*(bool *)dst = true;
			return 0;
		}
		if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 ||
		    strcmp(value, "0") == 0) {
			*(bool *)dst = false;
			return 0;
		}
		config_seterr(err, "%s: \"%s\" is not yes or no", k->name,
		              str_sanitize(sane, sizeof(sane), value, strlen(value), 60));
		return -1;
	case CFG_MODE:
		if (value[0] == '\0' || strspn(value, "01234567") != strlen(value) ||
		    strlen(value) > 4) {
			config_seterr(err, "%s: \"%s\" is not an octal mode such as 0660", k->name,
			              str_sanitize(sane, sizeof(sane), value, strlen(value), 60));
			return -1;
		}
		v = strtoull(value, NULL, 8);
		break;
	case CFG_UINT:
		if (strnum_u64(value, strlen(value), UINT64_MAX, &v) < 0) {
			config_seterr(err, "%s: \"%s\" is not a whole number", k->name,
			              str_sanitize(sane, sizeof(sane), value, strlen(value), 60));
			return -1;
		}
		break;
	case CFG_SIZE:
		if (strnum_size(value, UINT64_MAX, &v) < 0) {
			config_seterr(err, "%s: \"%s\" is not a size (bytes, or with K/M/G/T)",
			              k->name,
			              str_sanitize(sane, sizeof(sane), value, strlen(value), 60));
			return -1;
		}
		break;
	default:
		abort();
	}
	if (v < k->min || v > k->max) {
		config_seterr(err, "%s: %llu is out of range %llu..%llu", k->name,
		              (unsigned long long)v, (unsigned long long)k->min,
		              (unsigned long long)k->max);
		return -1;
	}
	*(uint64_t *)dst = v;
	return 0;
}

void config_init(struct config *cfg)
{
	config_error err;
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NKEYS; i++)
		if (parse_value(&keys[i], keys[i].def, slot(cfg, &keys[i]), &err) < 0)
			abort(); /* a default that does not parse is our bug */
	if (config_check(cfg, &err) < 0)
		abort();
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].type == CFG_STR) {
			char **p = slot(cfg, &keys[i]);
			free(*p);
			*p = NULL;
		}
	}
}

static int cfg_set(struct config *cfg, const char *name, const char *value, config_error *err)
{
	const struct cfg_key *k = find_key(name);
	if (k == NULL) {
		char sane[80];
		config_seterr(err, "unknown parameter \"%s\"",
		              str_sanitize(sane, sizeof(sane), name, strlen(name), 60));
		return -1;
	}
	return parse_value(k, value, slot(cfg, k), err);
}

struct parse_state {
	struct config *cfg;
	config_error *err;
	bool failed;
};

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	if (st->failed)
		return 0;
	if (section[0] != '\0') {
		config_seterr(st->err, "sections are not used; put \"%s\" outside [%s]", name,
		              section);
		st->failed = true;
		return 0;
	}
	if (cfg_set(st->cfg, name, value, st->err) < 0) {
		st->failed = true;
		return 0;
	}
	return 1;
}

static int finish_parse(struct config *cfg, int rc, struct parse_state *st, config_error *err)
{
	if (rc != 0) {
		char inner[CONFIG_ERROR_MAX];
		if (rc < 0) {
			config_seterr(err, "cannot read the configuration");
			return -1;
		}
		/* keep our message, prefixed with the line inih reports */
		snprintf(inner, sizeof(inner), "%s",
		         st->failed ? *err : "syntax error (want name = value)");
		config_seterr(err, "line %d: %s", rc, inner);
		return -1;
	}
	return config_check(cfg, err);
}

static int cfg_parse_string(struct config *cfg, const char *text, config_error *err)
{
	struct parse_state st = { cfg, err, false };
	return finish_parse(cfg, ini_parse_string(text, ini_cb, &st), &st, err);
}

static int cfg_load_file(struct config *cfg, const char *path, config_error *err)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		config_seterr(err, "cannot open %s: %m", path);
		return -1;
	}
	struct parse_state st = { cfg, err, false };
	int rc = ini_parse_file(f, ini_cb, &st);
	fclose(f);
	if (finish_parse(cfg, rc, &st, err) < 0) {
		char inner[CONFIG_ERROR_MAX];
		memcpy(inner, *err, sizeof(inner));
		config_seterr(err, "%s: %s", path, inner);
		return -1;
	}
	return 0;
}

static int cfg_load(struct config *cfg, const char *path, config_error *err)
{
	if (path == NULL && access(CONFIG_DEFAULT_PATH, F_OK) != 0)
		return 0;
	return cfg_load_file(cfg, path != NULL ? path : CONFIG_DEFAULT_PATH, err);
}

static void format_value(const struct config *cfg, const struct cfg_key *k, char *out, size_t n)
{
	const void *p = cslot(cfg, k);
	switch (k->type) {
	case CFG_STR:
		snprintf(out, n, "%s", *(char *const *)p);
		break;
	case CFG_BOOL:
		snprintf(out, n, "%s", *(const bool *)p ? "yes" : "no");
		break;
	case CFG_MODE:
		snprintf(out, n, "%04llo", (unsigned long long)*(const uint64_t *)p);
		break;
	default:
		snprintf(out, n, "%llu", (unsigned long long)*(const uint64_t *)p);
		break;
	}
}

void config_print(const struct config *cfg, FILE *out, bool only_changed)
{
	struct config def;
	config_init(&def);
	for (size_t i = 0; i < NKEYS; i++) {
		char v[1024], dv[1024];
		format_value(cfg, &keys[i], v, sizeof(v));
		format_value(&def, &keys[i], dv, sizeof(dv));
		if (only_changed && strcmp(v, dv) == 0)
			continue;
		fprintf(out, "%s = %s\n", keys[i].name, v);
	}
	config_free(&def);
}

/* The public calls: the same, with the message kept in cfg->error (docs/style.md rule 5). */
#define WITH_ERROR(call)                       \
	do {                                   \
		if ((call) < 0) {              \
			*error_r = cfg->error; \
			return -1;             \
		}                              \
		return 0;                      \
	} while (0)

int config_parse_string(struct config *cfg, const char *text, const char **error_r)
{
	WITH_ERROR(cfg_parse_string(cfg, text, &cfg->error));
}

int config_load_file(struct config *cfg, const char *path, const char **error_r)
{
	WITH_ERROR(cfg_load_file(cfg, path, &cfg->error));
}

int config_load(struct config *cfg, const char *path, const char **error_r)
{
	WITH_ERROR(cfg_load(cfg, path, &cfg->error));
}

int config_set(struct config *cfg, const char *name, const char *value, const char **error_r)
{
	WITH_ERROR(cfg_set(cfg, name, value, &cfg->error));
}

int config_finish(struct config *cfg, const char **error_r)
{
	WITH_ERROR(config_check(cfg, &cfg->error));
}

int config_load_all(struct config *cfg, const char *path, char *const *overrides, size_t n,
                    const char **error_r)
{
	if (config_load(cfg, path, error_r) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *o = overrides[i], *eq = strchr(o, '='), *err;
		char name[64];
		size_t nl = eq != NULL ? (size_t)(eq - o) : 0;
		if (eq == NULL || nl >= sizeof(name)) {
			config_seterr(&cfg->error, "-o %.100s: %s", o,
			              eq == NULL ? "want name=value" : "unknown parameter");
			*error_r = cfg->error;
			return -1;
		}
		memcpy(name, o, nl);
		name[nl] = '\0';
		if (config_set(cfg, name, eq + 1, &err) < 0) {
			/* err is cfg->error: keep it before writing the message over it */
			char why[CONFIG_ERROR_MAX];
			snprintf(why, sizeof(why), "%s", err);
			config_seterr(&cfg->error, "-o: %s", why);
			*error_r = cfg->error;
			return -1;
		}
	}
	return config_finish(cfg, error_r);
}

/* ---- reload: which parameters changed, and applying the live ones ---- */

int config_key_live(const char *name)
{
	const struct cfg_key *k = find_key(name);
	return k == NULL ? -1 : k->live ? 1 : 0;
}

const char *config_key_name(size_t i)
{
	return i < NKEYS ? keys[i].name : NULL;
}

static bool same_value(const struct config *a, const struct config *b, const struct cfg_key *k)
{
	const void *pa = cslot(a, k), *pb = cslot(b, k);
	switch (k->type) {
	case CFG_STR:
		return strcmp(*(char *const *)pa, *(char *const *)pb) == 0;
	case CFG_BOOL:
		return *(const bool *)pa == *(const bool *)pb;
	default:
		return *(const uint64_t *)pa == *(const uint64_t *)pb;
	}
}

size_t config_diff(const struct config *a, const struct config *b, bool live, char *out,
                   size_t size)
{
	size_t count = 0, len = 0;
	bool cut = false;
	if (size > 0)
		out[0] = '\0';
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].live != live || same_value(a, b, &keys[i]))
			continue;
		count++;
		/* room for the name, its comma and ",..." with the terminator */
		size_t need = strlen(keys[i].name) + (len > 0 ? 1 : 0);
		if (cut || size < sizeof(",...") || need > size - len - sizeof(",...")) {
			if (!cut && size >= len + sizeof(",..."))
				snprintf(out + len, size - len, "%s", len > 0 ? ",..." : "...");
			cut = true;
			continue;
		}
		snprintf(out + len, size - len, "%s%s", len > 0 ? "," : "", keys[i].name);
		len += need;
	}
	return count;
}

void config_apply_live(struct config *running, struct config *fresh)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct cfg_key *k = &keys[i];
		if (!k->live)
			continue;
		if (k->type == CFG_STR) {
			/* swapped, not copied: the old string goes with fresh, freed by its owner
			   once no reader can hold it */
			char **r = slot(running, k), **f = slot(fresh, k), *old = *r;
			*r = *f;
			*f = old;
		} else if (k->type == CFG_BOOL) {
			*(bool *)slot(running, k) = *(const bool *)slot(fresh, k);
		} else {
			*(uint64_t *)slot(running, k) = *(const uint64_t *)slot(fresh, k);
		}
	}
	/* the derived fields that follow from live parameters alone (config_check()); the
	   address rules follow from restart-only ones and stay */
	running->replies = fresh->replies;
	running->profile = fresh->profile;
	running->level = fresh->level;
	running->alias_rule = fresh->alias_rule;
	running->policy_tcp_allow_list = fresh->policy_tcp_allow_list;
}
