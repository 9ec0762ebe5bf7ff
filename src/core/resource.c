/*
 * resource: field tables and checks for admin API bodies. Pure: it must never log, allocate
 * anything but the returned JSON, or accept a value the database would refuse (a body that
 * passes here must only fail in the database for reasons of state: exists, not found...).
 */
#include "resource.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "report.h"

enum field_type {
	F_SIZE,     /* integer 0..2^63-1, or null (inherit / unlimited) */
	F_GRACE,    /* integer 0..1000, or null */
	F_BOOL,     /* true or false */
	F_TARGETS,  /* array of 1..RESOURCE_TARGETS_MAX mailbox addresses */
	F_TARGETS0, /* the same, possibly empty */
	F_NAME,     /* 1..RESOURCE_NAME_MAX characters, no control characters */
	F_SCOPE,    /* a token scope */
	F_ADDRESS,  /* a mailbox address, or null */
	F_TIME,     /* RFC 3339 time, or null */
};

struct field {
	const char *name;
	enum field_type type;
	bool required; /* on create */
};

static const struct field domain_fields[] = {
	{ "pool_limit_bytes", F_SIZE, false },
	{ "default_storage_limit_bytes", F_SIZE, false },
	{ "default_message_limit", F_SIZE, false },
	{ "default_max_message_size", F_SIZE, false },
	{ "max_message_size", F_SIZE, false },
	{ "grace_percent", F_GRACE, false },
};

static const struct field mailbox_fields[] = {
	{ "storage_limit_bytes", F_SIZE, false },
	{ "message_limit", F_SIZE, false },
	{ "max_message_size", F_SIZE, false },
	{ "grace_percent", F_GRACE, false },
	{ "enabled", F_BOOL, false },
};

/* on create only "targets"; updates may also add and remove */
static const struct field alias_fields[] = {
	{ "targets", F_TARGETS, true },
	{ "add_targets", F_TARGETS0, false },
	{ "remove_targets", F_TARGETS0, false },
};

static const struct field token_fields[] = {
	{ "name", F_NAME, true },
	{ "scope", F_SCOPE, true },
	{ "mailbox", F_ADDRESS, false },
	{ "expires_at", F_TIME, false },
};

struct kind {
	const char *name;
	const char *key; /* the key field in a create body; NULL: none (tokens get an id) */
	const struct field *fields;
	size_t nfields;
};

#define KIND(n, k, f)                             \
	{                                         \
		n, k, f, sizeof(f) / sizeof(f[0]) \
	}
static const struct kind kinds[] = {
	[RESOURCE_DOMAIN] = KIND("domain", "name", domain_fields),
	[RESOURCE_MAILBOX] = KIND("mailbox", "address", mailbox_fields),
	[RESOURCE_ALIAS] = KIND("alias", "address", alias_fields),
	[RESOURCE_TOKEN] = KIND("token", NULL, token_fields),
};

const char *resource_kind_name(enum resource_kind kind)
{
	return kinds[kind].name;
}

/*
 * Stored names are stricter than what checks accept: a domain is an ASCII host name (labels of
 * letters, digits, '-' and '_', 1..63 octets, no leading or trailing '-'; IDNs in their
 * xn-- form), a local part printable ASCII without '@'. Nothing a terminal or a log could
 * misrender gets into the database through the API.
 */
static bool hostname_ok(const char *d)
{
	size_t label = 0;
	char prev = '.';
	for (const char *p = d;; p++) {
		char c = *p;
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || prev == '-')
				return false;
			if (c == '\0')
				return true;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		           (c == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
		prev = c;
	}
}

static bool local_ok(const char *l)
{
	for (; *l; l++)
		if ((unsigned char)*l < 0x21 || (unsigned char)*l > 0x7e || *l == '@')
			return false;
	return true;
}

int resource_key_parse(enum resource_kind kind, const char *text, const struct address_rules *rules,
                       struct resource_key *key_r, const char **why_r)
{
	struct address a;
	/* no extension stripping: a stored name is taken whole */
	struct address_rules whole = *rules;
	whole.delimiters[0] = '\0';
	size_t len = strlen(text);
	memset(key_r, 0, sizeof(*key_r));
	if (len > RESOURCE_KEY_MAX) {
		*why_r = "too long";
		return -1;
	}
	if (kind == RESOURCE_DOMAIN || (kind == RESOURCE_ALIAS && text[0] == '@')) {
		/* validate a domain as the domain of a one-letter address */
		char probe[RESOURCE_KEY_MAX + 3];
		const char *dom = kind == RESOURCE_DOMAIN ? text : text + 1;
		if (dom[0] == '\0' || strchr(dom, '@') != NULL) {
			*why_r = kind == RESOURCE_DOMAIN ? "not a domain name"
			                                 : "a catch-all is written @domain";
			return -1;
		}
		int n = snprintf(probe, sizeof(probe), "x@%s", dom);
		if (n < 0 || (size_t)n >= sizeof(probe)) {
			*why_r = "too long";
			return -1;
		}
		if (address_normalize(probe, strlen(probe), &whole, &a, why_r) < 0)
			return -1;
		if (!hostname_ok(a.domain)) {
			*why_r = "a domain is an ASCII host name (IDNs in xn-- form)";
			return -1;
		}
		(void)!str_copy(key_r->domain, a.domain, sizeof(key_r->domain));
		key_r->catchall = kind == RESOURCE_ALIAS;
		n = snprintf(key_r->text, sizeof(key_r->text), "%s%s",
		             kind == RESOURCE_ALIAS ? "@" : "", a.domain);
		if (n < 0 || (size_t)n >= sizeof(key_r->text)) {
			*why_r = "too long";
			return -1;
		}
		return 0;
	}
	if (address_normalize(text, len, &whole, &a, why_r) < 0)
		return -1;
	if (!local_ok(a.local)) {
		*why_r = "a local part is printable ASCII without @";
		return -1;
	}
	if (!hostname_ok(a.domain)) {
		*why_r = "a domain is an ASCII host name (IDNs in xn-- form)";
		return -1;
	}
	(void)!str_copy(key_r->local, a.local, sizeof(key_r->local));
	(void)!str_copy(key_r->domain, a.domain, sizeof(key_r->domain));
	int n = snprintf(key_r->text, sizeof(key_r->text), "%s@%s", a.local, a.domain);
	if (n < 0 || (size_t)n >= sizeof(key_r->text)) {
		*why_r = "too long";
		return -1;
	}
	return 0;
}

static void set_error(struct resource_error *e, const char *code, const char *field,
                      const char *reason)
{
	e->code = code;
	(void)!str_copy(e->field, field, sizeof(e->field)); /* truncation is fine for a quote */
	e->reason = reason;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Check one value; on success *out is the value to store (a new reference). */
static const char *check_value(const struct field *f, json_t *v, const struct address_rules *rules,
                               json_t **out)
{
	const char *why;
	struct resource_key k;
	switch (f->type) {
	case F_SIZE:
	case F_GRACE:
		if (json_is_null(v))
			break;
		if (!json_is_integer(v))
			return f->type == F_SIZE ? "must be a non-negative integer (bytes) or null"
			                         : "must be an integer from 0 to 1000, or null";
		if (json_integer_value(v) < 0)
			return "must not be negative";
		if (f->type == F_GRACE && json_integer_value(v) > 1000)
			return "must be at most 1000";
		break;
	case F_BOOL:
		if (!json_is_boolean(v))
			return "must be true or false";
		break;
	case F_TARGETS:
	case F_TARGETS0: {
		if (!json_is_array(v))
			return "must be an array of mailbox addresses";
		size_t n = json_array_size(v), i;
		if (n == 0 && f->type == F_TARGETS)
			return "must name at least one mailbox";
		if (n > RESOURCE_TARGETS_MAX)
			return "names more than 1000 mailboxes";
		json_t *norm = json_array(), *t;
		json_array_foreach(v, i, t)
		{
			if (!json_is_string(t) ||
			    resource_key_parse(RESOURCE_MAILBOX, json_string_value(t), rules, &k,
			                       &why) < 0) {
				json_decref(norm);
				return "every target must be a valid mailbox address";
			}
			json_array_append_new(norm, json_string(k.text));
		}
		*out = norm;
		return NULL;
	}
	case F_NAME:
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > RESOURCE_NAME_MAX || has_control(json_string_value(v)))
			return "must be 1 to 100 characters without control characters";
		break;
	case F_SCOPE: {
		if (!json_is_string(v) || (strcmp(json_string_value(v), "admin") != 0 &&
		                           strcmp(json_string_value(v), "read") != 0 &&
		                           strcmp(json_string_value(v), "usage") != 0 &&
		                           strcmp(json_string_value(v), "self") != 0))
			return "must be one of admin, read, usage, self";
		break;
	}
	case F_ADDRESS:
		if (json_is_null(v))
			break;
		if (!json_is_string(v) ||
		    resource_key_parse(RESOURCE_MAILBOX, json_string_value(v), rules, &k, &why) < 0)
			return "must be a valid mailbox address";
		*out = json_string(k.text);
		return NULL;
	case F_TIME:
		if (json_is_null(v))
			break;
		if (!json_is_string(v) || !rfc3339_valid(json_string_value(v)))
			return "must be an RFC 3339 time such as 2026-11-22T10:00:00Z";
		break;
	}
	*out = json_incref(v);
	return NULL;
}

int resource_check(enum resource_kind kind, enum resource_mode mode, json_t *body,
                   const struct address_rules *rules, struct resource_key *key_r, json_t **fields_r,
                   struct resource_error *err_r)
{
	const struct kind *k = &kinds[kind];
	const char *name;
	json_t *v;
	if (!json_is_object(body)) {
		set_error(err_r, "invalid_body", "", "the body must be a JSON object");
		return -1;
	}
	json_t *fields = json_object();
	json_object_foreach(body, name, v)
	{
		if (k->key != NULL && strcmp(name, k->key) == 0) {
			if (mode == RESOURCE_UPDATE) {
				set_error(err_r, "invalid_field", name,
				          "cannot be changed: delete and create instead");
				goto fail;
			}
			const char *why;
			if (!json_is_string(v) || resource_key_parse(kind, json_string_value(v),
			                                             rules, key_r, &why) < 0) {
				set_error(err_r, "invalid_field", name,
				          kind == RESOURCE_DOMAIN ? "must be a valid domain name"
				          : kind == RESOURCE_ALIAS
				                  ? "must be an address, or @domain for a catch-all"
				                  : "must be a valid mailbox address");
				goto fail;
			}
			continue;
		}
		const struct field *f = NULL;
		for (size_t i = 0; i < k->nfields; i++)
			if (strcmp(k->fields[i].name, name) == 0)
				f = &k->fields[i];
		/* a new alias has targets only; tokens are never updated */
		if (f == NULL ||
		    (kind == RESOURCE_ALIAS && mode == RESOURCE_CREATE && f->type == F_TARGETS0)) {
			set_error(err_r, "unknown_field", name, "no such field");
			goto fail;
		}
		json_t *out = NULL;
		const char *why = check_value(f, v, rules, &out);
		if (why != NULL) {
			set_error(err_r, "invalid_field", name, why);
			goto fail;
		}
		json_object_set_new(fields, name, out);
	}
	if (mode == RESOURCE_CREATE) {
		if (k->key != NULL && json_object_get(body, k->key) == NULL) {
			set_error(err_r, "missing_field", k->key, "is required");
			goto fail;
		}
		for (size_t i = 0; i < k->nfields; i++) {
			if (k->fields[i].required &&
			    json_object_get(fields, k->fields[i].name) == NULL) {
				set_error(err_r, "missing_field", k->fields[i].name, "is required");
				goto fail;
			}
		}
	} else if (json_object_size(fields) == 0) {
		set_error(err_r, "invalid_body", "", "the body names no field to change");
		goto fail;
	}
	if (kind == RESOURCE_TOKEN) {
		json_t *scope = json_object_get(fields, "scope"),
		       *mb = json_object_get(fields, "mailbox");
		/* tokens are never changed, only created (an update body may lack a scope) */
		if (!json_is_string(scope)) {
			set_error(err_r, "invalid_body", "",
			          "a token cannot be changed: create another");
			goto fail;
		}
		bool self = strcmp(json_string_value(scope), "self") == 0;
		if (self != (mb != NULL && !json_is_null(mb))) {
			set_error(err_r, "invalid_field", "mailbox",
			          "is required with scope self and refused with any other");
			goto fail;
		}
	}
	*fields_r = fields;
	return 0;
fail:
	json_decref(fields);
	return -1;
}

int resource_check_request(json_t *body, size_t max, json_t **recipients_r, uint64_t *size_r,
                           struct resource_error *err_r)
{
	const char *key;
	json_t *val, *rcpts = NULL, *size_j = NULL;
	memset(err_r, 0, sizeof(*err_r));
	json_object_foreach(body, key, val)
	{
		if (strcmp(key, "recipients") == 0)
			rcpts = val;
		else if (strcmp(key, "size") == 0)
			size_j = val;
		else {
			set_error(err_r, "unknown_field", key,
			          "unknown field; allowed: recipients, size");
			return -1;
		}
	}
	if (size_j != NULL && (!json_is_integer(size_j) || json_integer_value(size_j) < 0)) {
		set_error(err_r, "invalid_field", "size", "size must be a non-negative integer");
		return -1;
	}
	if (!json_is_array(rcpts) || json_array_size(rcpts) == 0) {
		set_error(err_r, "invalid_field", "recipients",
		          "recipients must be a non-empty array of strings");
		return -1;
	}
	if (json_array_size(rcpts) > max) {
		set_error(err_r, "too_many", "recipients",
		          "at most 1000 recipients per request (HTTP_BATCH_MAX)");
		return -1;
	}
	size_t i;
	json_array_foreach(rcpts, i, val)
	{
		if (!json_is_string(val)) {
			set_error(err_r, "invalid_field", "recipients",
			          "every recipient must be a string");
			return -1;
		}
	}
	*recipients_r = rcpts;
	*size_r = size_j != NULL ? (uint64_t)json_integer_value(size_j) : 0;
	return 0;
}

/* A signed integer field within +-USAGE_DELTA_LIMIT; 0 when absent and optional. */
static int get_delta(json_t *obj, const char *name, bool required, int64_t *out)
{
	json_t *v = json_object_get(obj, name);
	if (v == NULL) {
		*out = 0;
		return required ? -1 : 0;
	}
	if (!json_is_integer(v))
		return -1;
	json_int_t x = json_integer_value(v);
	if (x > USAGE_DELTA_LIMIT || x < -USAGE_DELTA_LIMIT)
		return -1;
	*out = (int64_t)x;
	return 0;
}

const char *resource_check_report(json_t *rep, struct resource_report *r)
{
	const char *key;
	json_t *val;
	if (!json_is_object(rep))
		return "each report must be an object";
	json_object_foreach(rep, key, val)
	{
		if (strcmp(key, "recipient") != 0 && strcmp(key, "mailbox") != 0 &&
		    strcmp(key, "bytes") != 0 && strcmp(key, "messages") != 0 &&
		    strcmp(key, "key") != 0 && strcmp(key, "occurred_at") != 0)
			return "unknown field (allowed: recipient or mailbox, bytes, messages, "
			       "key, "
			       "occurred_at)";
	}
	json_t *rc = json_object_get(rep, "recipient"), *mb = json_object_get(rep, "mailbox");
	if ((rc == NULL) == (mb == NULL))
		return "give exactly one of recipient and mailbox";
	if (!json_is_string(rc != NULL ? rc : mb))
		return "recipient/mailbox must be a string";
	json_t *k = json_object_get(rep, "key");
	if (!json_is_string(k) || !usage_key_valid(json_string_value(k)))
		return "key must be 1 to 200 printable ASCII characters without spaces";
	json_t *t = json_object_get(rep, "occurred_at");
	if (t != NULL && (!json_is_string(t) || !rfc3339_valid(json_string_value(t))))
		return "occurred_at must be an RFC 3339 time such as 2026-11-22T10:00:00Z";
	if (get_delta(rep, "bytes", true, &r->bytes) < 0 ||
	    get_delta(rep, "messages", false, &r->messages) < 0)
		return "bytes (required) and messages must be integers within +-2^62";
	r->address = json_string_value(rc != NULL ? rc : mb);
	r->exact = mb != NULL;
	r->key = json_string_value(k);
	r->occurred_at = t != NULL ? json_string_value(t) : NULL;
	return NULL;
}
