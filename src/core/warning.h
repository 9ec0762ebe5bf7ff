/*
 * warning: the pure parts of quota warnings (sql/013_warnings.sql detects them; the daemon's
 * warning worker delivers them): checking a change of the warning settings, the retry delay,
 * the webhook signature, and the mail a user receives, made from a text template.
 */
#ifndef MQ_WARNING_H
#define MQ_WARNING_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "buf.h"

#define WARNING_THRESHOLDS_MAX   10   /* thresholds in one list */
#define WARNING_THRESHOLD_MAX    1000 /* percent: grace lets usage pass 100 % */
#define WARNING_HYSTERESIS_MAX   50   /* points */
#define WARNING_DOMAINS_MAX      1000 /* domains one settings change may name */
#define WARNING_EVENT_ID_LEN     36   /* a UUID's text */
#define WARNING_SIGNATURE_MAX    96   /* "t=<seconds>,v1=<64 hex digits>" */
#define WARNING_TEMPLATE_MAX     (16 * 1024)
#define WARNING_MAIL_MAX         (32 * 1024) /* a rendered message */
#define WARNING_COMMAND_ARGS_MAX 32
#define WARNING_ATTEMPT_MAX_S    60 /* warning_webhook_timeout, warning_mail_timeout at most */

enum warning_resource { WARNING_STORAGE, WARNING_MESSAGES };

/* How events reach people; the names are the database's ("webhook", "mail"). */
enum warning_channel { WARNING_WEBHOOK, WARNING_MAIL };
#define WARNING_CHANNELS 2
const char *warning_channel_name(enum warning_channel c);

/* One event as the worker delivers it (the columns of warning_events). */
struct warning_event {
	char event_id[WARNING_EVENT_ID_LEN + 1];
	char address[ADDRESS_LOCAL_MAX + 1 + ADDRESS_DOMAIN_MAX + 1]; /* as stored: never cut */
	enum warning_resource resource;
	unsigned threshold;  /* percent */
	char percent[24];    /* "81.5", or "" when the limit is 0 */
	uint64_t used;       /* bytes or messages */
	uint64_t limit;      /* bytes or messages */
	char created_at[40]; /* RFC 3339 */
};

/*
 * Check the body of a settings change (PATCH /v1/warnings/settings): an object with any of
 * "thresholds" (an ascending array of at most WARNING_THRESHOLDS_MAX integers 1..1000),
 * "hysteresis" (0..50), "channels" (distinct "webhook" and "mail") and "domains" (an object of
 * at most WARNING_DOMAINS_MAX domain names, each null — inherit again — or an object with
 * "thresholds" and "hysteresis", each of which may be null to inherit). Domain names are
 * normalised with rules. 0 with a new object in *fields_r (the caller decrefs), or -1 with
 * *field_r (the offending field's name, static or within body) and *why_r (static text).
 */
int warning_settings_check(json_t *body, const struct address_rules *rules, json_t **fields_r,
                           const char **field_r, const char **why_r)
        __attribute__((warn_unused_result));

/*
 * Milliseconds to wait after failed attempt number tries (1, 2, ...): base_s doubled per
 * attempt, at most max_s, times a factor from 0.8 to 1.2 chosen by rnd (any 32-bit number),
 * so that daemons that failed together do not retry together.
 */
uint64_t warning_backoff_ms(unsigned tries, unsigned base_s, unsigned max_s, uint32_t rnd);

/*
 * The webhook signature header's value for body[len] sent at unix time t: "t=<t>,v1=<hex of
 * HMAC-SHA256(secret, "<t>." body)>" (the receiver recomputes it, and refuses an old t to stop
 * replays). out must hold WARNING_SIGNATURE_MAX bytes.
 */
void warning_signature(const uint8_t *secret, size_t secret_len, int64_t t, const char *body,
                       size_t len, char out[WARNING_SIGNATURE_MAX]);

/* The template used when warning_mail_template names no file. */
extern const char warning_default_template[];

/*
 * Check a mail template: header lines (Subject: at least; no From, To, Date, Message-ID,
 * Auto-Submitted, MIME or Content- headers, which are ours), an empty line, the body; the
 * placeholders {address} {resource} {threshold} {percent} {used} {limit} {event_id} only, with
 * {{ for a brace. 0, or -1 with *why_r (static) and *line_r (1-based).
 */
int warning_template_check(const char *tmpl, const char **why_r, unsigned *line_r)
        __attribute__((warn_unused_result));

/*
 * The message for ev from a checked template, as the sendmail command reads it: our headers
 * (From: from, To: the address, Date: date — RFC 5322 text the caller made — Message-ID from
 * the event id and from's domain, so a repeat is recognisable, Auto-Submitted:
 * auto-generated, MIME headers for UTF-8 text), the template's headers and its body, lines
 * ending in LF (sendmail -i). Placeholder values are made safe for a header (no line breaks).
 * Appended to out: 0, or -1 when out's limit is reached.
 */
int warning_mail_render(const struct warning_event *ev, const char *tmpl, const char *from,
                        const char *date, struct buf *out) __attribute__((warn_unused_result));

/*
 * Split a command line at spaces and tabs (no shell, no quoting) into argv[0..n) within
 * storage (a copy of cmd the caller owns, which this modifies), NULL-terminated. n, or -1 when
 * it is empty or has more than WARNING_COMMAND_ARGS_MAX - 2 words (room for the recipient and
 * the NULL).
 */
int warning_command_split(char *storage, char *argv[WARNING_COMMAND_ARGS_MAX]);

#endif
