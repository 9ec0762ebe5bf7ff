/*
 * config_check: the checks that need several parameters or more than a value's type — listen
 * addresses, socket paths, replies, CORS origins, the milter socket, warnings — and what
 * config.c's table cannot derive by itself (the reply set, the address rules, the TCP allow
 * list, the alias rule), run once by config_finish(). Pure but for allocation. It must never
 * let a configuration start that a check or a listener would later have to reinterpret.
 */
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cidr.h"
#include "hostport.h"
#include "milter_reply.h"
#include "strnum.h"
#include "warning.h"
#include "xalloc.h"

/* A bare port means loopback: TCP listeners are never exposed unless an address is named. */
static int check_listen(const char *name, char **value, config_error *err)
{
	char *h, *p;
	if ((*value)[0] == '\0')
		return 0;
	if (strspn(*value, "0123456789") == strlen(*value)) {
		size_t n = strlen(*value) + sizeof("127.0.0.1:");
		char *v = xmalloc(n);
		snprintf(v, n, "127.0.0.1:%s", *value);
		free(*value);
		*value = v;
	}
	if (hostport_split(*value, &h, &p) < 0) {
		config_seterr(
		        err,
		        "%s: \"%s\" is not host:port or port (e.g. 127.0.0.1:10040, [::1]:10040)",
		        name, *value);
		return -1;
	}
	free(h);
	free(p);
	return 0;
}

/* A Unix socket path: empty (disabled) or absolute, and fitting a sockaddr_un. */
static int check_socket_path(const char *name, const char *path, config_error *err)
{
	if (path[0] != '\0' && path[0] != '/') {
		config_seterr(err, "%s: \"%s\" must be an absolute path", name, path);
		return -1;
	}
	if (strlen(path) >= 108) { /* sizeof(sockaddr_un.sun_path) on Linux */
		config_seterr(err, "%s: path longer than 107 bytes", name);
		return -1;
	}
	return 0;
}

static int check_reply(const char *name, enum reply_kind kind, const char *value, char *dst,
                       size_t size, config_error *err)
{
	const char *why;
	if (reply_validate(kind, value, &why) < 0) {
		char sane[80];
		config_seterr(err, "%s: \"%s\": %s", name,
		              str_sanitize(sane, sizeof(sane), value, strlen(value), 60), why);
		return -1;
	}
	if (str_copy(dst, value, size) < 0)
		abort(); /* reply_validate bounds the length */
	return 0;
}

/* Origins are "*" or scheme://host[:port], exactly as browsers send them in Origin. */
static int check_origins(const char *list, config_error *err)
{
	const char *p = list;
	while (*p != '\0') {
		size_t n = strcspn(p, " ,\t");
		if (n > 0) {
			/* the scheme's length, never reading past this origin's n bytes */
			size_t scheme = n > 7 && strncmp(p, "http://", 7) == 0    ? 7
			                : n > 8 && strncmp(p, "https://", 8) == 0 ? 8
			                                                          : 0;
			bool ok = (n == 1 && p[0] == '*') || scheme > 0;
			for (size_t i = scheme; ok && scheme > 0 && i < n; i++)
				ok = p[i] > 0x20 && p[i] < 0x7f && p[i] != '/' && p[i] != '@';
			if (!ok || n > 200) {
				config_seterr(
				        err,
				        "http_cors_origins: \"%.*s\" is not an origin such as "
				        "https://panel.example.com or *",
				        (int)(n > 200 ? 200 : n), p);
				return -1;
			}
		}
		p += n;
		p += strspn(p, " ,\t");
	}
	return 0;
}

/* The milter's settings (mailquota-milter; the daemon ignores them). */
/* The milter's settings; *path_r is milter_socket's Unix path ("" when none or inet:). */
static int check_milter(struct config *cfg, const char **path_r, config_error *err)
{
	const char *path = NULL, *why, *c = cfg->milter_connect;
	char *h, *p;
	if (cfg->milter_socket[0] != '\0' &&
	    (milter_spec_check(cfg->milter_socket, &path, &why) < 0 ||
	     (path != NULL && check_socket_path("milter_socket", path, err) < 0))) {
		char sane[80];
		if (path == NULL)
			config_seterr(err, "milter_socket: \"%s\": %s",
			              str_sanitize(sane, sizeof(sane), cfg->milter_socket,
			                           strlen(cfg->milter_socket), 60),
			              why);
		return -1;
	}
	*path_r = path != NULL ? path : "";
	if (c[0] == '/' && check_socket_path("milter_connect", c, err) < 0)
		return -1;
	if (c[0] != '\0' && c[0] != '/') {
		if (hostport_split(c, &h, &p) < 0) {
			config_seterr(
			        err, "milter_connect: \"%s\" is not a socket path or host:port", c);
			return -1;
		}
		free(h);
		free(p);
	}
	char unused[REPLY_MAX + 1];
	return check_reply("milter_tempfail_reply", REPLY_KIND_TEMPFAIL, cfg->milter_tempfail_reply,
	                   unused, sizeof(unused), err);
}

/* The warning delivery settings that only make sense together. */
static int check_warnings(const struct config *cfg, config_error *err)
{
	const char *url = cfg->warning_webhook_url;
	if (url[0] != '\0') {
		if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
			config_seterr(err,
			              "warning_webhook_url: must start with http:// or https://");
			return -1;
		}
		for (const char *p = url; *p != '\0'; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
				config_seterr(err, "warning_webhook_url: spaces and control "
				                   "characters are not "
				                   "allowed");
				return -1;
			}
		if (cfg->warning_webhook_secret_file[0] == '\0') {
			config_seterr(err, "warning_webhook_url needs warning_webhook_secret_file");
			return -1;
		}
	}
	if (cfg->warning_mail_command[0] != '\0') {
		if (cfg->warning_mail_command[0] != '/') {
			config_seterr(err,
			              "warning_mail_command: the program must be an absolute path");
			return -1;
		}
		if (strchr(cfg->warning_mail_from, '@') == NULL ||
		    strlen(cfg->warning_mail_from) > 200 ||
		    strpbrk(cfg->warning_mail_from, "\r\n") != NULL) {
			config_seterr(
			        err,
			        "warning_mail_command needs warning_mail_from, an address such "
			        "as postmaster@example.com (at most 200 characters)");
			return -1;
		}
	}
	if (cfg->warning_retry_max < cfg->warning_retry_base) {
		config_seterr(err, "warning_retry_max must not be less than warning_retry_base");
		return -1;
	}
	return 0;
}

int config_check(struct config *cfg, config_error *err)
{
	if (reply_profile_parse(cfg->reply_profile, &cfg->profile) < 0) {
		config_seterr(err, "reply_profile: \"%s\" is not conventional, strict or no452",
		              cfg->reply_profile);
		return -1;
	}
	if (log_level_parse(cfg->log_level, &cfg->level) < 0) {
		config_seterr(err, "log_level: \"%s\" is not debug, info, notice, warn or error",
		              cfg->log_level);
		return -1;
	}
	if (strcmp(cfg->alias_policy, "any") == 0) {
		cfg->alias_rule = ALIAS_POLICY_ANY;
	} else if (strcmp(cfg->alias_policy, "all") == 0) {
		cfg->alias_rule = ALIAS_POLICY_ALL;
	} else {
		config_seterr(err, "alias_policy: \"%s\" is not any or all", cfg->alias_policy);
		return -1;
	}
	struct reply_set *r = &cfg->replies;
	const char *oq = cfg->reply_over_quota[0] != '\0' ? cfg->reply_over_quota
	                                                  : reply_profile_over_quota(cfg->profile);
	if (check_reply("reply_over_quota", REPLY_KIND_REFUSAL, oq, r->over_quota,
	                sizeof(r->over_quota), err) < 0 ||
	    check_reply("reply_too_big_mailbox", REPLY_KIND_REFUSAL, cfg->reply_too_big_mailbox,
	                r->too_big_mailbox, sizeof(r->too_big_mailbox), err) < 0 ||
	    check_reply("reply_too_big_system", REPLY_KIND_REFUSAL, cfg->reply_too_big_system,
	                r->too_big_system, sizeof(r->too_big_system), err) < 0 ||
	    check_reply("reply_tempfail", REPLY_KIND_TEMPFAIL, cfg->reply_tempfail, r->tempfail,
	                sizeof(r->tempfail), err) < 0 ||
	    check_reply("unknown_recipient_action", REPLY_KIND_UNKNOWN,
	                cfg->unknown_recipient_action, r->unknown, sizeof(r->unknown), err) < 0)
		return -1;

	const char *d = cfg->recipient_delimiter;
	if (strlen(d) > ADDRESS_DELIMITERS_MAX) {
		config_seterr(err, "recipient_delimiter: at most %d characters",
		              ADDRESS_DELIMITERS_MAX);
		return -1;
	}
	for (const char *p = d; *p != '\0'; p++) {
		if (*p == '@' || (unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			config_seterr(
			        err,
			        "recipient_delimiter: \"%s\" may hold only printable characters "
			        "other than @ and space",
			        d);
			return -1;
		}
	}
	if (str_copy(cfg->address_rules.delimiters, d, sizeof(cfg->address_rules.delimiters)) < 0)
		abort();
	cfg->address_rules.fold_local = cfg->fold_local_part;

	if (check_listen("policy_tcp_listen", &cfg->policy_tcp_listen, err) < 0 ||
	    check_listen("socketmap_tcp_listen", &cfg->socketmap_tcp_listen, err) < 0 ||
	    check_listen("exim_tcp_listen", &cfg->exim_tcp_listen, err) < 0 ||
	    check_listen("http_listen", &cfg->http_listen, err) < 0 ||
	    check_listen("metrics_listen", &cfg->metrics_listen, err) < 0)
		return -1;
	if (cfg->metrics_listen[0] != '\0' && cfg->http_listen[0] == '\0') {
		config_seterr(err,
		              "metrics_listen: the HTTP server serves it; set http_listen too");
		return -1;
	}
	if (check_origins(cfg->http_cors_origins, err) < 0)
		return -1;
	const char *why;
	if (cidr_list_parse(cfg->policy_tcp_allow, &cfg->policy_tcp_allow_list, &why) < 0) {
		char sane[80];
		config_seterr(err, "policy_tcp_allow: \"%s\": %s",
		              str_sanitize(sane, sizeof(sane), cfg->policy_tcp_allow,
		                           strlen(cfg->policy_tcp_allow), 60),
		              why);
		return -1;
	}
	if (cfg->database_lock_timeout > cfg->database_statement_timeout) {
		config_seterr(
		        err,
		        "database_lock_timeout (%llu) must not exceed database_statement_timeout "
		        "(%llu)",
		        (unsigned long long)cfg->database_lock_timeout,
		        (unsigned long long)cfg->database_statement_timeout);
		return -1;
	}
	if (check_warnings(cfg, err) < 0)
		return -1;
	if (check_socket_path("policy_socket", cfg->policy_socket, err) < 0 ||
	    check_socket_path("socketmap_socket", cfg->socketmap_socket, err) < 0 ||
	    check_socket_path("exim_socket", cfg->exim_socket, err) < 0)
		return -1;
	const char *milter_path;
	if (check_milter(cfg, &milter_path, err) < 0)
		return -1;
	/* each listener its own socket: the second bind would replace the first's (the milter's
	   too, a program of its own that removes a socket in its way at start) */
	const struct {
		const char *name, *path;
	} socks[] = { { "policy_socket", cfg->policy_socket },
		      { "socketmap_socket", cfg->socketmap_socket },
		      { "exim_socket", cfg->exim_socket },
		      { "milter_socket", milter_path } };
	for (size_t i = 1; i < sizeof(socks) / sizeof(socks[0]); i++)
		for (size_t k = 0; k < i; k++)
			if (socks[i].path[0] != '\0' && strcmp(socks[i].path, socks[k].path) == 0) {
				config_seterr(err, "%s: the same path as %s", socks[i].name,
				              socks[k].name);
				return -1;
			}
	return 0;
}
