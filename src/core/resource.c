/*
 * resource: checks of admin API bodies, by the field table of fields.h (and the token and
 * alias-edit rules kept here) and the key rules below. Pure: it must never log, allocate
 * anything but the returned JSON, or accept a value the database would refuse (a body that
 * passes here must only fail in the database for reasons of state: exists, not found...).
 */
#include "resource.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "token.h"

/* How a value is checked: the field table's types, and those of token and alias-edit fields. */
enum check {
	C_SIZE,     /* integer 0..2^63-1, or null (inherit / unlimited) */
	C_GRACE,    /* integer 0..FIELD_PERCENT_MAX, or null */
	C_BOOL,     /* true or false */
	C_TARGETS,  /* array of 1..RESOURCE_TARGETS_MAX mailbox addresses */
	C_TARGETS0, /* the same, possibly empty */
	C_NAME,     /* 1..RESOURCE_NAME_MAX characters, no control characters */
	C_SCOPE,    /* a token scope */
	C_ADDRESS,  /* a mailbox address, or null */
	C_TIME,     /* RFC 3339 time, or null */
	C_CHOICE,   /* one of the field table's choices for the field, or null */
};

/* A field resource_check() knows: from the field table, or one of the local tables below. */
struct rule {
	const char *name;
	enum check check;
	bool required;             /* on create */
	const struct field *field; /* its row of the field table; NULL for the local tables */
};

/* Tokens are created whole and never imported or set field by field: not in the field table. */
static const struct rule token_rules[] = {
	{ "name", C_NAME, true, NULL },
	{ "scope", C_SCOPE, true, NULL },
	{ "mailbox", C_ADDRESS, false, NULL },
	{ "expires_at", C_TIME, false, NULL },
};

/* Edits of an alias's targets, in an update only (a new alias names all its targets). */
static const struct rule alias_edit_rules[] = {
	{ "add_targets", C_TARGETS0, false, NULL },
	{ "remove_targets", C_TARGETS0, false, NULL },
};

static const char *const kind_names[] = {
	[RESOURCE_DOMAIN] = "domain",
	[RESOURCE_MAILBOX] = "mailbox",
	[RESOURCE_ALIAS] = "alias",
	[RESOURCE_TOKEN] = "token",
};

static const char *const problem_codes[] = {
	[RESOURCE_INVALID_BODY] = "invalid_body",   [RESOURCE_UNKNOWN_FIELD] = "unknown_field",
	[RESOURCE_INVALID_FIELD] = "invalid_field", [RESOURCE_MISSING_FIELD] = "missing_field",
	[RESOURCE_TOO_MANY] = "too_many",
};

static enum check check_of(enum field_type t)
{
	switch (t) {
	case FIELD_SIZE:
	case FIELD_COUNT:
		return C_SIZE;
	case FIELD_PERCENT:
		return C_GRACE;
	case FIELD_BOOL:
		return C_BOOL;
	case FIELD_CHOICE:
		return C_CHOICE;
	case FIELD_TARGETS:
		break;
	}
	return C_TARGETS;
}

static const struct rule *find_local(const struct rule *rules, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(rules[i].name, name) == 0)
			return &rules[i];
	return NULL;
}

/* The rule for field name of kind in mode into *r: true, or false for a field not taken. */
static bool find_rule(enum resource_kind kind, enum resource_mode mode, const char *name,
                      struct rule *r)
{
	const struct field *f = field_by_api(kind, name);
	const struct rule *local = NULL;
	if (f != NULL) {
		*r = (struct rule){ f->api, check_of(f->type), f->required, f };
		return true;
	}
	if (kind == RESOURCE_TOKEN)
		local = find_local(token_rules, sizeof(token_rules) / sizeof(token_rules[0]), name);
	else if (kind == RESOURCE_ALIAS && mode == RESOURCE_UPDATE)
		local = find_local(alias_edit_rules,
		                   sizeof(alias_edit_rules) / sizeof(alias_edit_rules[0]), name);
	if (local == NULL)
		return false;
	*r = *local;
	return true;
}

const char *resource_kind_name(enum resource_kind kind)
{
	return kind_names[kind];
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

_Static_assert(sizeof(((struct resource_key *)0)->local) == sizeof(((struct address *)0)->local),
               "a normalised local part fits a key whole");
_Static_assert(sizeof(((struct resource_key *)0)->domain) == sizeof(((struct address *)0)->domain),
               "a normalised domain fits a key whole");

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
		memcpy(key_r->domain, a.domain, sizeof(key_r->domain));
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
	memcpy(key_r->local, a.local, sizeof(key_r->local));
	memcpy(key_r->domain, a.domain, sizeof(key_r->domain));
	int n = snprintf(key_r->text, sizeof(key_r->text), "%s@%s", a.local, a.domain);
	if (n < 0 || (size_t)n >= sizeof(key_r->text)) {
		*why_r = "too long";
		return -1;
	}
	return 0;
}

/* The field is quoted back cut to RESOURCE_FIELD_MAX octets: a quote needs no more. */
static void set_error(struct resource_error *e, enum resource_problem problem, const char *field,
                      const char *reason)
{
	size_t n = strnlen(field, RESOURCE_FIELD_MAX);
	e->problem = problem;
	e->code = problem_codes[problem];
	memcpy(e->field, field, n);
	e->field[n] = '\0';
	e->reason = reason;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Check one value against the rule r; on success *out is the value to store (a new reference).
   A choice refused gets its reason in e->text (the choices listed), others a static one. */
static const char *check_value(const struct rule *r, json_t *v, const struct address_rules *rules,
                               json_t **out, struct resource_error *e)
{
	const enum check c = r->check;
	_Static_assert(FIELD_PERCENT_MAX == 1000, "the messages below say 1000");
	const char *why;
	struct resource_key k;
	switch (c) {
	case C_SIZE:
	case C_GRACE:
		if (json_is_null(v))
			break;
		if (!json_is_integer(v))
			return c == C_SIZE ? "must be a non-negative integer (bytes) or null"
			                   : "must be an integer from 0 to 1000, or null";
		if (json_integer_value(v) < 0)
			return "must not be negative";
		if (c == C_GRACE && json_integer_value(v) > FIELD_PERCENT_MAX)
			return "must be at most 1000";
		break;
	case C_BOOL:
		if (!json_is_boolean(v))
			return "must be true or false";
		break;
	case C_TARGETS:
	case C_TARGETS0: {
		if (!json_is_array(v))
			return "must be an array of mailbox addresses";
		size_t n = json_array_size(v), i;
		if (n == 0 && c == C_TARGETS)
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
	case C_NAME:
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > RESOURCE_NAME_MAX || has_control(json_string_value(v)))
			return "must be 1 to 100 characters without control characters";
		break;
	case C_SCOPE: {
		enum token_scope scope;
		if (!json_is_string(v) || token_scope_parse(json_string_value(v), &scope) < 0)
			return "must be one of admin, read, usage, self, precheck, metrics";
		break;
	}
	case C_ADDRESS:
		if (json_is_null(v))
			break;
		if (!json_is_string(v) ||
		    resource_key_parse(RESOURCE_MAILBOX, json_string_value(v), rules, &k, &why) < 0)
			return "must be a valid mailbox address";
		*out = json_string(k.text);
		return NULL;
	case C_TIME:
		if (json_is_null(v))
			break;
		if (!json_is_string(v) || !rfc3339_valid(json_string_value(v)))
			return "must be an RFC 3339 time such as 2026-11-22T10:00:00Z";
		break;
	case C_CHOICE: {
		if (json_is_null(v) ||
		    (json_is_string(v) && field_choice_valid(r->field, json_string_value(v))))
			break;
		char choices[FIELD_NAMES_MAX];
		/* cut if need be: the reason is for people */
		snprintf(e->text, sizeof(e->text), "must be one of %s, or null",
		         field_choices_text(r->field, ", ", choices, sizeof(choices)));
		return e->text;
	}
	}
	*out = json_incref(v);
	return NULL;
}

/* Whether a create body of kind lacks a required field: its name, or NULL. */
static const char *missing_required(enum resource_kind kind, json_t *fields)
{
	size_t n;
	const struct field *t = field_table(kind, &n);
	for (size_t i = 0; i < n; i++)
		if (t[i].required && json_object_get(fields, t[i].api) == NULL)
			return t[i].api;
	if (kind == RESOURCE_TOKEN)
		for (size_t i = 0; i < sizeof(token_rules) / sizeof(token_rules[0]); i++)
			if (token_rules[i].required &&
			    json_object_get(fields, token_rules[i].name) == NULL)
				return token_rules[i].name;
	return NULL;
}

int resource_check(enum resource_kind kind, enum resource_mode mode, json_t *body,
                   const struct address_rules *rules, struct resource_key *key_r, json_t **fields_r,
                   struct resource_error *err_r)
{
	const char *key = field_key(kind);
	const char *name;
	json_t *v;
	if (!json_is_object(body)) {
		set_error(err_r, RESOURCE_INVALID_BODY, "", "the body must be a JSON object");
		return -1;
	}
	json_t *fields = json_object();
	json_object_foreach(body, name, v)
	{
		if (key != NULL && strcmp(name, key) == 0) {
			if (mode == RESOURCE_UPDATE) {
				set_error(err_r, RESOURCE_INVALID_FIELD, name,
				          "cannot be changed: delete and create instead");
				goto fail;
			}
			const char *why;
			if (!json_is_string(v) || resource_key_parse(kind, json_string_value(v),
			                                             rules, key_r, &why) < 0) {
				set_error(err_r, RESOURCE_INVALID_FIELD, name,
				          kind == RESOURCE_DOMAIN ? "must be a valid domain name"
				          : kind == RESOURCE_ALIAS
				                  ? "must be an address, or @domain for a catch-all"
				                  : "must be a valid mailbox address");
				goto fail;
			}
			continue;
		}
		struct rule r;
		if (!find_rule(kind, mode, name, &r)) {
			set_error(err_r, RESOURCE_UNKNOWN_FIELD, name, "no such field");
			goto fail;
		}
		json_t *out = NULL;
		const char *why = check_value(&r, v, rules, &out, err_r);
		if (why != NULL) {
			set_error(err_r, RESOURCE_INVALID_FIELD, name, why);
			goto fail;
		}
		json_object_set_new(fields, name, out);
	}
	if (mode == RESOURCE_CREATE) {
		const char *missing = key != NULL && json_object_get(body, key) == NULL
		                              ? key
		                              : missing_required(kind, fields);
		if (missing != NULL) {
			set_error(err_r, RESOURCE_MISSING_FIELD, missing, "is required");
			goto fail;
		}
	} else if (json_object_size(fields) == 0) {
		set_error(err_r, RESOURCE_INVALID_BODY, "", "the body names no field to change");
		goto fail;
	}
	if (kind == RESOURCE_TOKEN) {
		json_t *scope = json_object_get(fields, "scope"),
		       *mb = json_object_get(fields, "mailbox");
		/* tokens are never changed, only created (an update body may lack a scope) */
		if (!json_is_string(scope)) {
			set_error(err_r, RESOURCE_INVALID_BODY, "",
			          "a token cannot be changed: create another");
			goto fail;
		}
		bool self = strcmp(json_string_value(scope), "self") == 0;
		if (self != (mb != NULL && !json_is_null(mb))) {
			set_error(err_r, RESOURCE_INVALID_FIELD, "mailbox",
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
			set_error(err_r, RESOURCE_UNKNOWN_FIELD, key,
			          "unknown field; allowed: recipients, size");
			return -1;
		}
	}
	if (size_j != NULL && (!json_is_integer(size_j) || json_integer_value(size_j) < 0)) {
		set_error(err_r, RESOURCE_INVALID_FIELD, "size",
		          "size must be a non-negative integer");
		return -1;
	}
	if (!json_is_array(rcpts) || json_array_size(rcpts) == 0) {
		set_error(err_r, RESOURCE_INVALID_FIELD, "recipients",
		          "recipients must be a non-empty array of strings");
		return -1;
	}
	if (json_array_size(rcpts) > max) {
		set_error(err_r, RESOURCE_TOO_MANY, "recipients",
		          "at most 1000 recipients per request (HTTP_BATCH_MAX)");
		return -1;
	}
	size_t i;
	json_array_foreach(rcpts, i, val)
	{
		if (!json_is_string(val)) {
			set_error(err_r, RESOURCE_INVALID_FIELD, "recipients",
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

int resource_token_expiry(json_t *fields, int64_t now, uint64_t max_lifetime,
                          struct resource_error *err_r)
{
	const char *scope = json_string_value(json_object_get(fields, "scope"));
	const char *text = json_string_value(json_object_get(fields, "expires_at"));
	enum token_scope sc;
	bool self = scope != NULL && token_scope_parse(scope, &sc) == 0 && sc == TOKEN_SELF;
	/* both bounded far below overflow: max_lifetime by the configuration, now by the clock */
	int64_t latest = now + (int64_t)max_lifetime, at;
	if (text == NULL) {
		if (self) {
			char when[RFC3339_MAX + 1];
			rfc3339_format(latest, when);
			json_object_set_new(fields, "expires_at", json_string(when));
		}
		return 0;
	}
	/* an expiry already past would make a token nobody can use (and 1970-01-01T00:00:00Z
	   would read as "never" where 0 means no expiry) */
	if (rfc3339_epoch(text, &at) < 0 || at <= now) {
		set_error(err_r, RESOURCE_INVALID_FIELD, "expires_at", "must be in the future");
		return -1;
	}
	/* a minute of slack for a client whose clock runs ahead of ours */
	if (self && at > latest + RESOURCE_CLOCK_SLACK) {
		set_error(err_r, RESOURCE_INVALID_FIELD, "expires_at",
		          "a self token may live at most self_token_max_lifetime seconds: ask for "
		          "an earlier expires_at, or leave it out to get the longest");
		return -1;
	}
	return 0;
}

int resource_check_report(json_t *rep, struct resource_report *r, const char **error_r)
{
	const char *key;
	json_t *val;
	if (!json_is_object(rep)) {
		*error_r = "each report must be an object";
		return -1;
	}
	json_object_foreach(rep, key, val)
	{
		if (strcmp(key, "recipient") != 0 && strcmp(key, "mailbox") != 0 &&
		    strcmp(key, "bytes") != 0 && strcmp(key, "messages") != 0 &&
		    strcmp(key, "key") != 0 && strcmp(key, "occurred_at") != 0) {
			*error_r = "unknown field (allowed: recipient or mailbox, bytes, messages, "
			           "key, occurred_at)";
			return -1;
		}
	}
	json_t *rc = json_object_get(rep, "recipient"), *mb = json_object_get(rep, "mailbox");
	if ((rc == NULL) == (mb == NULL)) {
		*error_r = "give exactly one of recipient and mailbox";
		return -1;
	}
	if (!json_is_string(rc != NULL ? rc : mb)) {
		*error_r = "recipient/mailbox must be a string";
		return -1;
	}
	json_t *k = json_object_get(rep, "key");
	if (!json_is_string(k) || !usage_key_valid(json_string_value(k))) {
		*error_r = "key must be 1 to 200 printable ASCII characters without spaces";
		return -1;
	}
	json_t *t = json_object_get(rep, "occurred_at");
	if (t != NULL && (!json_is_string(t) || !rfc3339_valid(json_string_value(t)))) {
		*error_r = "occurred_at must be an RFC 3339 time such as 2026-11-22T10:00:00Z";
		return -1;
	}
	if (get_delta(rep, "bytes", true, &r->bytes) < 0 ||
	    get_delta(rep, "messages", false, &r->messages) < 0) {
		*error_r = "bytes (required) and messages must be integers within +-2^62";
		return -1;
	}
	r->address = json_string_value(rc != NULL ? rc : mb);
	r->exact = mb != NULL;
	r->key = json_string_value(k);
	r->occurred_at = t != NULL ? json_string_value(t) : NULL;
	return 0;
}
