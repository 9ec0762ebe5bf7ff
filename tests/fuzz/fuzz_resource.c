/* libFuzzer target: admin request bodies, decoded as http_parse_body() does (duplicate keys
   refused, an object only), through resource_check() for every kind and operation the API
   routes, with and without local-part folding; every string in the body also goes through
   resource_key_parse() for each kind and the usage field checks. What passes must be a fixed
   point: checking the normalised key and fields again gives the same. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "report.h"
#include "resource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the operations with a body: POST creates every kind, PATCH updates all but tokens */
static const struct {
	enum resource_kind kind;
	enum resource_mode mode;
} ops[] = {
	{ RESOURCE_DOMAIN, RESOURCE_CREATE },  { RESOURCE_DOMAIN, RESOURCE_UPDATE },
	{ RESOURCE_MAILBOX, RESOURCE_CREATE }, { RESOURCE_MAILBOX, RESOURCE_UPDATE },
	{ RESOURCE_ALIAS, RESOURCE_CREATE },   { RESOURCE_ALIAS, RESOURCE_UPDATE },
	{ RESOURCE_TOKEN, RESOURCE_CREATE },
};

static void check_key(enum resource_kind kind, const char *text, const struct address_rules *r)
{
	struct resource_key k, k2;
	const char *why = NULL;
	if (resource_key_parse(kind, text, r, &k, &why) < 0) {
		if (why == NULL)
			abort();
		return;
	}
	if (k.text[0] == '\0' || strlen(k.text) > RESOURCE_KEY_MAX || k.domain[0] == '\0' ||
	    k.catchall != (kind == RESOURCE_ALIAS && k.local[0] == '\0'))
		abort();
	/* a stored key must address its object again (GET, PATCH, DELETE by path) */
	if (resource_key_parse(kind, k.text, r, &k2, &why) < 0 || strcmp(k.text, k2.text) != 0)
		abort();
}

static void check_body(json_t *body, enum resource_kind kind, enum resource_mode mode,
                       const struct address_rules *r)
{
	struct resource_key key, key2;
	struct resource_error e = { 0 };
	json_t *fields = NULL, *fields2 = NULL;
	memset(&key, 0, sizeof(key));
	if (resource_check(kind, mode, body, r, &key, &fields, &e) < 0) {
		if (e.code == NULL || e.reason == NULL || fields != NULL ||
		    strlen(e.field) > RESOURCE_FIELD_MAX)
			abort();
		return;
	}
	if (!json_is_object(fields) || (mode == RESOURCE_UPDATE && json_object_size(fields) == 0))
		abort();
	const char *kf = field_key(kind);
	if (kf != NULL && mode == RESOURCE_CREATE && key.text[0] == '\0')
		abort();
	if (kf != NULL && json_object_get(fields, kf) != NULL)
		abort(); /* the key travels apart from the fields */
	/* what passes names only fields of the table (tokens and alias edits have their own) */
	const char *name;
	json_t *v;
	json_object_foreach(fields, name, v)
	{
		const struct field *f = field_by_api(kind, name);
		if (f == NULL && kind != RESOURCE_TOKEN &&
		    !(kind == RESOURCE_ALIAS && mode == RESOURCE_UPDATE))
			abort();
		if (f != NULL && json_is_null(v) && !field_nullable(f->type))
			abort();
	}
	/* checking what passed again gives the same key and fields */
	json_t *again = json_deep_copy(fields);
	if (kf != NULL && mode == RESOURCE_CREATE)
		json_object_set_new(again, kf, json_string(key.text));
	if (resource_check(kind, mode, again, r, &key2, &fields2, &e) < 0)
		abort();
	if (!json_equal(fields, fields2) ||
	    (kf != NULL && mode == RESOURCE_CREATE && strcmp(key.text, key2.text) != 0))
		abort();
	json_decref(again);
	json_decref(fields2);
	json_decref(fields);
}

/* Strings anywhere in the document: keys, targets, report keys and times. */
static void check_strings(json_t *v, const struct address_rules *r, int depth)
{
	if (depth > 3)
		return;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		for (int k = RESOURCE_DOMAIN; k <= RESOURCE_ALIAS; k++)
			check_key((enum resource_kind)k, s, r);
		size_t n = strlen(s);
		if (usage_key_valid(s) && (n == 0 || n > USAGE_KEY_MAX))
			abort();
		if (rfc3339_valid(s) && n != 0 && (n < 20 || n > RFC3339_MAX))
			abort();
		/* the command line's field lookup finds a field only by one of its two names */
		for (int k = RESOURCE_DOMAIN; k <= RESOURCE_TOKEN; k++) {
			const char *eq = strchr(s, '=');
			size_t len = eq != NULL ? (size_t)(eq - s) : n;
			const struct field *f = field_by_name((enum resource_kind)k, s, len);
			if (f != NULL && !((strlen(f->cli) == len && memcmp(f->cli, s, len) == 0) ||
			                   (strlen(f->api) == len && memcmp(f->api, s, len) == 0)))
				abort();
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		{
			if (i >= 16)
				break;
			check_strings(x, r, depth + 1);
		}
	} else if (json_is_object(v)) {
		const char *name;
		json_t *x;
		json_object_foreach(v, name, x)
		{
			check_strings(x, r, depth + 1);
		}
	}
}

/* The bodies of POST /v1/check and POST /v1/usage: what passes is what the handlers rely on. */
static void check_requests(json_t *doc)
{
	json_t *rcpts;
	uint64_t size;
	struct resource_error e;
	if (resource_check_request(doc, 1000, &rcpts, &size, &e) == 0) {
		if (!json_is_array(rcpts) || json_array_size(rcpts) == 0 ||
		    json_array_size(rcpts) > 1000 || size > (uint64_t)INT64_MAX)
			abort();
		size_t i;
		json_t *v;
		json_array_foreach(rcpts, i, v) if (!json_is_string(v)) abort();
	} else if (e.code == NULL || e.reason == NULL) {
		abort();
	}
	json_t *reps = json_object_get(doc, "reports");
	size_t i;
	json_t *rep;
	json_array_foreach(reps, i, rep)
	{
		struct resource_report r;
		const char *why;
		if (resource_check_report(rep, &r, &why) < 0)
			continue;
		if (r.address == NULL || r.key == NULL || !usage_key_valid(r.key) ||
		    r.bytes > USAGE_DELTA_LIMIT || r.bytes < -USAGE_DELTA_LIMIT ||
		    r.messages > USAGE_DELTA_LIMIT || r.messages < -USAGE_DELTA_LIMIT ||
		    (r.occurred_at != NULL && !rfc3339_valid(r.occurred_at)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL)
		return 0;
	if (!json_is_object(doc)) {
		json_decref(doc);
		return 0;
	}
	static const struct address_rules rules[] = { { true, "+" }, { false, "+-" } };
	for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			check_body(doc, ops[i].kind, ops[i].mode, &rules[r]);
		check_strings(doc, &rules[r], 0);
	}
	check_requests(doc);
	json_decref(doc);
	return 0;
}
