/*
 * warning: settings checks, retry delays, webhook signatures and warning mail (see warning.h).
 * Pure: no clock, no randomness of its own, no I/O. A template comes from the administrator,
 * but the values put into it come from the database: each is cut and stripped of line breaks
 * so that no value can add a header or end the headers.
 */
#include "warning.h"

#include <nettle/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "resource.h"
#include "sizetext.h"

const char *warning_channel_name(enum warning_channel c)
{
	return c == WARNING_WEBHOOK ? "webhook" : "mail";
}

/* ---- settings ---- */

/* An ascending array of 0..WARNING_THRESHOLDS_MAX thresholds: a copy, or NULL with *why_r. */
static json_t *thresholds_check(json_t *v, const char **why_r)
{
	if (!json_is_array(v) || json_array_size(v) > WARNING_THRESHOLDS_MAX) {
		*why_r = "must be an array of at most 10 ascending percentages from 1 to 1000";
		return NULL;
	}
	json_int_t prev = 0;
	size_t i;
	json_t *t;
	json_array_foreach(v, i, t)
	{
		json_int_t n = json_is_integer(t) ? json_integer_value(t) : -1;
		if (n < 1 || n > WARNING_THRESHOLD_MAX || n <= prev) {
			*why_r = "must be an array of at most 10 ascending percentages from 1 to "
			         "1000";
			return NULL;
		}
		prev = n;
	}
	return json_deep_copy(v);
}

static bool hysteresis_ok(json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 &&
	       json_integer_value(v) <= WARNING_HYSTERESIS_MAX;
}

static json_t *channels_check(json_t *v, const char **why_r)
{
	static const char *const names[] = { "webhook", "mail" };
	bool seen[2] = { false, false };
	size_t i;
	json_t *c;
	*why_r = "must be an array of distinct channels: \"webhook\", \"mail\"";
	if (!json_is_array(v))
		return NULL;
	json_array_foreach(v, i, c)
	{
		size_t k = 0;
		while (k < 2 && !(json_is_string(c) && strcmp(json_string_value(c), names[k]) == 0))
			k++;
		if (k == 2 || seen[k])
			return NULL;
		seen[k] = true;
	}
	return json_deep_copy(v);
}

/* One domain's entry: null, or {thresholds?, hysteresis?} with null values allowed. */
static json_t *domain_entry_check(json_t *v, const char **field_r, const char **why_r)
{
	if (json_is_null(v))
		return json_null();
	if (!json_is_object(v)) {
		*why_r = "must be null (inherit) or an object with thresholds and hysteresis";
		return NULL;
	}
	json_t *out = json_object();
	const char *k;
	json_t *x;
	json_object_foreach(v, k, x)
	{
		json_t *copy = NULL;
		if (strcmp(k, "thresholds") == 0) {
			*field_r = "thresholds";
			copy = json_is_null(x) ? json_null() : thresholds_check(x, why_r);
		} else if (strcmp(k, "hysteresis") == 0) {
			*field_r = "hysteresis";
			*why_r = "must be null or an integer from 0 to 50";
			copy = json_is_null(x) || hysteresis_ok(x) ? json_deep_copy(x) : NULL;
		} else {
			*why_r = "is not a setting of a domain (thresholds, hysteresis)";
		}
		if (copy == NULL) {
			json_decref(out);
			return NULL;
		}
		json_object_set_new(out, k, copy);
	}
	return out;
}

static json_t *domains_check(json_t *v, const struct address_rules *rules, const char **field_r,
                             const char **why_r)
{
	if (!json_is_object(v) || json_object_size(v) > WARNING_DOMAINS_MAX) {
		*why_r = "must be an object of at most 1000 domain names";
		return NULL;
	}
	json_t *out = json_object();
	const char *name;
	json_t *e;
	json_object_foreach(v, name, e)
	{
		struct resource_key key;
		const char *w;
		*field_r = "domains";
		json_t *copy = NULL;
		if (resource_key_parse(RESOURCE_DOMAIN, name, rules, &key, &w) < 0)
			*why_r = "names something that is not a domain";
		else
			copy = domain_entry_check(e, field_r, why_r);
		if (copy == NULL) {
			json_decref(out);
			return NULL;
		}
		json_object_set_new(out, key.domain, copy);
	}
	return out;
}

int warning_settings_check(json_t *body, const struct address_rules *rules, json_t **fields_r,
                           const char **field_r, const char **why_r)
{
	*field_r = "";
	if (!json_is_object(body)) {
		*why_r = "the body must be a JSON object";
		return -1;
	}
	json_t *out = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v)
	{
		json_t *copy = NULL;
		*field_r = k;
		if (strcmp(k, "thresholds") == 0) {
			copy = thresholds_check(v, why_r);
		} else if (strcmp(k, "hysteresis") == 0) {
			*why_r = "must be an integer from 0 to 50";
			copy = hysteresis_ok(v) ? json_deep_copy(v) : NULL;
		} else if (strcmp(k, "channels") == 0) {
			copy = channels_check(v, why_r);
		} else if (strcmp(k, "domains") == 0) {
			copy = domains_check(v, rules, field_r, why_r);
		} else {
			*why_r = "is not a warning setting (thresholds, hysteresis, channels, "
			         "domains)";
		}
		if (copy == NULL) {
			json_decref(out);
			return -1;
		}
		json_object_set_new(out, k, copy);
	}
	*fields_r = out;
	return 0;
}

/* ---- delivery ---- */

uint64_t warning_backoff_ms(unsigned tries, unsigned base_s, unsigned max_s, uint32_t rnd)
{
	uint64_t d = base_s;
	for (unsigned i = 1; i < tries && d < max_s; i++)
		d *= 2;
	if (d > max_s)
		d = max_s;
	/* 0.8 .. 1.2 of d, in thousandths */
	uint64_t factor = 800 + (uint64_t)rnd % 401;
	return d * factor;
}

void warning_signature(const uint8_t *secret, size_t secret_len, int64_t t, const char *body,
                       size_t len, char out[WARNING_SIGNATURE_MAX])
{
	struct hmac_sha256_ctx ctx;
	uint8_t mac[SHA256_DIGEST_SIZE];
	char ts[24];
	int n = snprintf(ts, sizeof(ts), "%lld.", (long long)t);
	hmac_sha256_set_key(&ctx, secret_len, secret);
	hmac_sha256_update(&ctx, (size_t)n, (const uint8_t *)ts);
	hmac_sha256_update(&ctx, len, (const uint8_t *)body);
	hmac_sha256_digest(&ctx, sizeof(mac), mac);
	int off = snprintf(out, WARNING_SIGNATURE_MAX, "t=%lld,v1=", (long long)t);
	for (size_t i = 0; i < sizeof(mac); i++)
		off += snprintf(out + off, WARNING_SIGNATURE_MAX - (size_t)off, "%02x", mac[i]);
}

/* ---- mail ---- */

const char warning_default_template[] =
        "Subject: Your mailbox is {percent} % full\n"
        "\n"
        "Your mailbox {address} has reached {threshold} % of its {resource} limit:\n"
        "it holds {used} of {limit}.\n"
        "\n"
        "When it is full, new mail to it is refused and returned to its senders.\n"
        "Please delete messages you no longer need, or ask for more space.\n"
        "\n"
        "This message was sent automatically; replies are not read.\n";

static const char *const placeholders[] = { "address", "resource", "threshold", "percent",
	                                    "used",    "limit",    "event_id" };
#define NPLACEHOLDERS (sizeof(placeholders) / sizeof(placeholders[0]))

/* Headers the message gets from us, never from a template (and every Content- header). */
static const char *const own_headers[] = {
	"from",         "to",     "date",        "message-id",       "auto-submitted",
	"mime-version", "sender", "return-path", "x-mailquota-event"
};

/* Whether the header named name[len] is one of ours. */
static bool own_header(const char *name, size_t len)
{
	if (len >= 8 && strncasecmp(name, "content-", 8) == 0)
		return true;
	for (size_t i = 0; i < sizeof(own_headers) / sizeof(own_headers[0]); i++)
		if (strlen(own_headers[i]) == len && strncasecmp(name, own_headers[i], len) == 0)
			return true;
	return false;
}

/* The placeholder at p ("{name}"): its index, or -1. */
static int placeholder_at(const char *p)
{
	for (size_t i = 0; i < NPLACEHOLDERS; i++) {
		size_t n = strlen(placeholders[i]);
		if (strncmp(p + 1, placeholders[i], n) == 0 && p[1 + n] == '}')
			return (int)i;
	}
	return -1;
}

int warning_template_check(const char *tmpl, const char **why_r, unsigned *line_r)
{
	*line_r = 1;
	if (strlen(tmpl) > WARNING_TEMPLATE_MAX) {
		*why_r = "the template is longer than 16 KiB";
		return -1;
	}
	bool in_headers = true, subject = false;
	for (const char *line = tmpl; *line != '\0'; (*line_r)++) {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		if (in_headers && len == 0) {
			in_headers = false;
		} else if (in_headers) {
			const char *colon = memchr(line, ':', len);
			if (line[0] == ' ' || line[0] == '\t') {
				/* a folded continuation of the previous header */
			} else if (colon == NULL || colon == line ||
			           memchr(line, ' ', (size_t)(colon - line))) {
				*why_r = "a header line must be \"Name: value\", then an empty "
				         "line, then the "
				         "body";
				return -1;
			} else {
				if (own_header(line, (size_t)(colon - line))) {
					*why_r = "this header is set by mailquota (From, To, Date, "
					         "Message-ID, Auto-Submitted, MIME)";
					return -1;
				}
				subject |= (size_t)(colon - line) == 7 &&
				           strncasecmp(line, "subject", 7) == 0;
			}
		}
		for (size_t i = 0; i < len; i++) {
			if (line[i] == '{' && line[i + 1] == '{') {
				i++;
			} else if (line[i] == '{' && placeholder_at(line + i) < 0) {
				*why_r = "unknown placeholder (known: {address} {resource} "
				         "{threshold} "
				         "{percent} {used} {limit} {event_id}; {{ for a brace)";
				return -1;
			} else if ((unsigned char)line[i] < 0x20 && line[i] != '\t') {
				*why_r = "control characters other than tab are not allowed";
				return -1;
			}
		}
		line = end != NULL ? end + 1 : line + len;
	}
	if (in_headers || !subject) {
		*why_r = "the template needs a Subject: header, an empty line and a body";
		return -1;
	}
	return 0;
}

/* Append s with line breaks and other control characters made spaces. */
static int put_value(struct buf *out, const char *s)
{
	char clean[256];
	size_t n = 0;
	for (; *s != '\0' && n < sizeof(clean) - 1; s++)
		clean[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
	return buf_append(out, clean, n);
}

static int put_placeholder(struct buf *out, int which, const struct warning_event *ev)
{
	struct size_text a;
	char num[64];
	bool storage = ev->resource == WARNING_STORAGE;
	switch (which) {
	case 0:
		return put_value(out, ev->address);
	case 1:
		return put_value(out, storage ? "storage" : "message count");
	case 2:
		snprintf(num, sizeof(num), "%u", ev->threshold);
		return put_value(out, num);
	case 3:
		return put_value(out, ev->percent[0] != '\0' ? ev->percent : "over 100");
	case 4:
	case 5: {
		uint64_t v = which == 4 ? ev->used : ev->limit;
		if (storage)
			return put_value(out, size_text(v, &a));
		snprintf(num, sizeof(num), "%llu messages", (unsigned long long)v);
		return put_value(out, num);
	}
	default:
		return put_value(out, ev->event_id);
	}
}

/* The part of from after its last '@' (before a closing '>'), for the Message-ID. */
static void from_domain(const char *from, char *out, size_t size)
{
	const char *at = strrchr(from, '@');
	size_t n = 0;
	if (at != NULL)
		for (at++; (unsigned char)*at > ' ' && *at != '>' && n < size - 1; at++)
			out[n++] = *at;
	out[n] = '\0';
	if (n == 0)
		snprintf(out, size, "mailquota.invalid");
}

/* RFC 5322 atext, the characters an unquoted local part may have besides dots. */
static bool atext(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL) || (unsigned char)c >= 0x80;
}

/* addr for a To: header: its local part as a quoted string unless it is a dot-atom. */
static int put_address(struct buf *out, const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t local = at != NULL ? (size_t)(at - addr) : strlen(addr);
	bool dot_atom = local > 0 && addr[0] != '.' && addr[local - 1] != '.';
	for (size_t i = 0; i < local && dot_atom; i++)
		dot_atom = atext(addr[i]) || (addr[i] == '.' && addr[i + 1] != '.');
	if (dot_atom)
		return put_value(out, addr);
	char q[2 * ADDRESS_LOCAL_MAX + 3];
	size_t n = 0;
	q[n++] = '"';
	for (size_t i = 0; i < local && i < ADDRESS_LOCAL_MAX; i++) {
		if (addr[i] == '"' || addr[i] == '\\')
			q[n++] = '\\';
		q[n++] = addr[i];
	}
	q[n++] = '"';
	q[n] = '\0';
	return put_value(out, q) < 0 || put_value(out, at != NULL ? at : "") < 0 ? -1 : 0;
}

int warning_mail_render(const struct warning_event *ev, const char *tmpl, const char *from,
                        const char *date, struct buf *out)
{
	char dom[ADDRESS_DOMAIN_MAX + 1];
	from_domain(from, dom, sizeof(dom));
	if (buf_puts(out, "From: ") < 0 || put_value(out, from) < 0 ||
	    buf_puts(out, "\nTo: ") < 0 || put_address(out, ev->address) < 0 ||
	    buf_puts(out, "\nDate: ") < 0 || put_value(out, date) < 0 ||
	    buf_puts(out, "\nMessage-ID: <warning.") < 0 || put_value(out, ev->event_id) < 0 ||
	    buf_puts(out, "@") < 0 || put_value(out, dom) < 0 ||
	    buf_puts(out, ">\nAuto-Submitted: auto-generated\nX-Mailquota-Event: ") < 0 ||
	    put_value(out, ev->event_id) < 0 ||
	    buf_puts(out, "\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
	                  "Content-Transfer-Encoding: 8bit\n") < 0)
		return -1;
	for (const char *p = tmpl; *p != '\0'; p++) {
		int which;
		if (p[0] == '{' && p[1] == '{') {
			if (buf_append(out, "{", 1) < 0)
				return -1;
			p++;
		} else if (p[0] == '{' && (which = placeholder_at(p)) >= 0) {
			if (put_placeholder(out, which, ev) < 0)
				return -1;
			p += strlen(placeholders[which]) + 1;
		} else if (buf_append(out, p, 1) < 0) {
			return -1;
		}
	}
	return 0;
}

int warning_command_split(char *storage, char *argv[WARNING_COMMAND_ARGS_MAX])
{
	int n = 0;
	for (char *p = storage; *p != '\0';) {
		while (*p == ' ' || *p == '\t')
			*p++ = '\0';
		if (*p == '\0')
			break;
		if (n == WARNING_COMMAND_ARGS_MAX - 2)
			return -1;
		argv[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
	}
	argv[n] = NULL;
	return n > 0 ? n : -1;
}
