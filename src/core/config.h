/* config: the configuration file (Postfix main.cf-like "name = value" lines) and its table. */
#ifndef MQ_CONFIG_H
#define MQ_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "address.h"
#include "cidr.h"
#include "log.h"
#include "reply.h"

#define CONFIG_DEFAULT_PATH "/etc/mailquota/mailquota.conf"

/* How a check decides an alias with several enabled targets (alias_policy). */
enum alias_policy {
	ALIAS_POLICY_ANY, /* accepted unless every target refuses */
	ALIAS_POLICY_ALL, /* refused if any target refuses */
};
#define CONFIG_ERROR_MAX 512

/* A configuration error message. */
typedef char config_error[CONFIG_ERROR_MAX];

struct config {
	/* raw values, owned; every key of the table has a slot here */
	char *database_url;
	uint64_t database_pool_size;
	uint64_t database_connect_timeout;
	uint64_t database_statement_timeout;
	uint64_t database_lock_timeout;
	uint64_t database_bulk_timeout;
	uint64_t usage_key_retention;
	uint64_t domain_usage_fold_interval;
	char *report_spool;
	uint64_t view_sweep_interval;
	uint64_t view_ping_interval;
	uint64_t view_load_timeout;
	uint64_t view_max_age;
	char *policy_socket;
	char *policy_socket_owner;
	char *policy_socket_group;
	uint64_t policy_socket_mode;
	char *policy_tcp_listen;
	uint64_t policy_idle_timeout;
	uint64_t policy_max_connections;
	uint64_t policy_max_connections_per_client;
	char *policy_tcp_allow;
	char *socketmap_socket;
	char *socketmap_tcp_listen;
	char *exim_socket;
	char *exim_tcp_listen;
	char *milter_socket;
	char *milter_socket_group;
	uint64_t milter_socket_mode;
	char *milter_connect;
	uint64_t milter_timeout;
	char *milter_tempfail_reply;
	char *http_listen;
	char *metrics_listen;
	uint64_t http_max_connections;
	uint64_t http_timeout;
	uint64_t http_threads;
	uint64_t http_workers;
	uint64_t http_queue_max;
	uint64_t http_max_connections_per_address;
	uint64_t http_request_timeout;
	char *http_cors_origins;
	uint64_t precheck_rate;
	uint64_t precheck_burst;
	uint64_t self_token_max_lifetime;
	char *self_page_url;
	char *api_url;
	char *api_token_file;
	char *recipient_delimiter;
	bool fold_local_part;
	uint64_t message_size_limit;
	uint64_t grace_percent;
	char *reply_profile;
	char *reply_over_quota;
	char *reply_too_big_mailbox;
	char *reply_too_big_system;
	char *reply_tempfail;
	char *unknown_recipient_action;
	char *alias_policy;
	char *log_level;
	uint64_t shutdown_timeout;
	char *warning_webhook_url;
	char *warning_webhook_secret_file;
	uint64_t warning_webhook_timeout;
	char *warning_mail_command;
	char *warning_mail_from;
	char *warning_mail_template;
	uint64_t warning_mail_timeout;
	uint64_t warning_retry_base;
	uint64_t warning_retry_max;
	uint64_t warning_max_tries;
	uint64_t warning_retention;

	/* derived by config_finish() */
	struct address_rules address_rules;
	struct reply_set replies;
	enum reply_profile profile;
	enum log_level level;
	enum alias_policy alias_rule;
	struct cidr_list policy_tcp_allow_list;

	config_error error; /* the last call's error message (see *error_r below) */
};

/* Fill *cfg with every default. Free with config_free(). */
void config_init(struct config *cfg);
void config_free(struct config *cfg);

/*
 * Parse configuration text over the current values of *cfg (later lines win, as in main.cf),
 * then validate every value and derive the typed fields. Returns 0, or -1 with *error_r set to
 * a message such as "line 7: unknown parameter \"polcy_socket\"", kept in cfg->error until the
 * next call on cfg (this holds for every call below). Pure except for the allocation of
 * strings.
 */
int config_parse_string(struct config *cfg, const char *text, const char **error_r)
        __attribute__((warn_unused_result));
/* The same for a file; a missing file is an error. */
int config_load_file(struct config *cfg, const char *path, const char **error_r)
        __attribute__((warn_unused_result));
/* Load path if given, else CONFIG_DEFAULT_PATH if that file exists (else keep the defaults).
   0, or -1 with *error_r. */
int config_load(struct config *cfg, const char *path, const char **error_r)
        __attribute__((warn_unused_result));
/* Set one parameter by name (as from the file); 0 or -1 with *error_r. Call config_finish()
   after. */
int config_set(struct config *cfg, const char *name, const char *value, const char **error_r)
        __attribute__((warn_unused_result));
/* Validate and derive typed fields; 0 or -1 with *error_r. */
int config_finish(struct config *cfg, const char **error_r) __attribute__((warn_unused_result));
/*
 * A program's whole configuration: config_load(path), then each "name=value" of overrides[n]
 * (the -o options; the string is not changed), then config_finish(). 0, or -1 with *error_r
 * (an override's error starts "-o").
 */
int config_load_all(struct config *cfg, const char *path, char *const *overrides, size_t n,
                    const char **error_r) __attribute__((warn_unused_result));

/*
 * Reload (SIGHUP): each parameter of the table is live (a reload applies it) or restart-only
 * (it is read once at start, e.g. into a listener or a thread pool). 1 live, 0 restart-only,
 * -1 no such parameter. Pure.
 */
int config_key_live(const char *name);
/* The name of the i-th parameter of the table (0-based), NULL past the last. Pure. */
const char *config_key_name(size_t i);
/*
 * The parameters of one class (live, or restart-only) whose values differ between a and b:
 * returns how many, and writes their names in table order, comma-separated, into out[size]
 * (ending in "..." when they do not all fit; "" when none). Pure.
 */
size_t config_diff(const struct config *a, const struct config *b, bool live, char *out,
                   size_t size);
/*
 * Give running fresh's values of every live parameter and the fields derived from them alone
 * (replies, profile, level, alias rule, TCP allow list); restart-only ones are not touched.
 * Strings are swapped, not copied: fresh then holds running's old strings, which the caller
 * frees with config_free(fresh) once no reader can still use them. Both must have passed
 * config_finish(). Pure but for the pointers moved; the caller excludes readers.
 */
void config_apply_live(struct config *running, struct config *fresh);

/* Print "name = value" for every parameter (all, or only non-default ones), like postconf -n. */
void config_print(const struct config *cfg, FILE *out, bool only_changed);

#endif
