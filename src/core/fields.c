/*
 * fields: the field table of domains, mailboxes and aliases and its lookups. Pure and static:
 * it must never allocate, and never hold a row whose API name differs from a member of the
 * documents sql/ builds (mq_*_doc; the import, export and check code all trust these names),
 * nor a choice the column's CHECK refuses.
 */
#include "fields.h"

#include <stdio.h>
#include <string.h>

/* In export order: the columns of an export file follow these rows, after the key. */
static const struct field domain_fields[] = {
	{ "pool_limit_bytes", "pool", FIELD_SIZE, false,
	  "bytes the domain's mailboxes may hold together (none: unlimited)", NULL },
	{ "default_storage_limit_bytes", "storage", FIELD_SIZE, false,
	  "storage limit of a mailbox that sets none (none: unlimited)", NULL },
	{ "default_message_limit", "messages", FIELD_COUNT, false,
	  "message limit of a mailbox that sets none (none: unlimited)", NULL },
	{ "default_max_message_size", "mailbox-max-size", FIELD_SIZE, false,
	  "largest message for a mailbox that sets none (none: unlimited)", NULL },
	{ "max_message_size", "max-size", FIELD_SIZE, false,
	  "largest message for any mailbox of the domain (none: unlimited)", NULL },
	{ "grace_percent", "grace", FIELD_PERCENT, false,
	  "percent by which the last message may cross a limit (none: the configuration's)", NULL },
};

static const struct field mailbox_fields[] = {
	{ "storage_limit_bytes", "storage", FIELD_SIZE, false,
	  "bytes the mailbox may hold (none: its domain's default)", NULL },
	{ "message_limit", "messages", FIELD_COUNT, false,
	  "messages the mailbox may hold (none: its domain's default)", NULL },
	{ "max_message_size", "max-size", FIELD_SIZE, false,
	  "largest message (none: its domain's default)", NULL },
	{ "grace_percent", "grace", FIELD_PERCENT, false,
	  "percent by which the last message may cross a limit (none: its domain's)", NULL },
	{ "enabled", "enabled", FIELD_BOOL, false, "no: checks leave the mailbox alone (DUNNO)",
	  NULL },
};

/* An alias's own rule for several targets (sql/015's aliases.policy, store.h's policies). */
static const char *const alias_policies[] = { "any", "all", NULL };

static const struct field alias_fields[] = {
	{ "targets", "targets", FIELD_TARGETS, true, "the mailboxes that receive the alias's mail",
	  NULL },
	{ "policy", "policy", FIELD_CHOICE, false,
	  "any: refused only if every target refuses; all: if one does (default: alias_policy)",
	  alias_policies },
};

static const struct {
	const char *key;
	const struct field *fields;
	size_t n;
} kinds[] = {
	[RESOURCE_DOMAIN] = { "name", domain_fields,
	                      sizeof(domain_fields) / sizeof(domain_fields[0]) },
	[RESOURCE_MAILBOX] = { "address", mailbox_fields,
	                       sizeof(mailbox_fields) / sizeof(mailbox_fields[0]) },
	[RESOURCE_ALIAS] = { "address", alias_fields,
	                     sizeof(alias_fields) / sizeof(alias_fields[0]) },
	[RESOURCE_TOKEN] = { NULL, NULL, 0 },
};

const struct field *field_table(enum resource_kind kind, size_t *n_r)
{
	*n_r = kinds[kind].n;
	return kinds[kind].fields;
}

const char *field_key(enum resource_kind kind)
{
	return kinds[kind].key;
}

const struct field *field_by_api(enum resource_kind kind, const char *name)
{
	for (size_t i = 0; i < kinds[kind].n; i++)
		if (strcmp(kinds[kind].fields[i].api, name) == 0)
			return &kinds[kind].fields[i];
	return NULL;
}

static bool name_is(const char *s, const char *name, size_t len)
{
	return strlen(s) == len && memcmp(s, name, len) == 0;
}

const struct field *field_by_name(enum resource_kind kind, const char *name, size_t len)
{
	for (size_t i = 0; i < kinds[kind].n; i++) {
		const struct field *f = &kinds[kind].fields[i];
		if (name_is(f->cli, name, len) || name_is(f->api, name, len))
			return f;
	}
	return NULL;
}

bool field_choice_valid(const struct field *f, const char *text)
{
	if (f->type != FIELD_CHOICE)
		return false;
	for (const char *const *c = f->choices; *c != NULL; c++)
		if (strcmp(*c, text) == 0)
			return true;
	return false;
}

const char *field_choices_text(const struct field *f, const char *sep, char *out, size_t size)
{
	size_t o = 0;
	if (size == 0)
		return out;
	out[0] = '\0';
	for (size_t i = 0; f->type == FIELD_CHOICE && f->choices[i] != NULL; i++) {
		/* o < size throughout: a cut piece ends the text, as documented */
		int n = snprintf(out + o, size - o, "%s%s", i > 0 ? sep : "", f->choices[i]);
		if (n < 0 || (size_t)n >= size - o)
			break;
		o += (size_t)n;
	}
	return out;
}

bool field_nullable(enum field_type type)
{
	return type == FIELD_SIZE || type == FIELD_COUNT || type == FIELD_PERCENT ||
	       type == FIELD_CHOICE;
}

const char *field_names_text(enum resource_kind kind, char *out, size_t size)
{
	size_t o = 0;
	if (size == 0)
		return out;
	out[0] = '\0';
	for (size_t i = 0; i < kinds[kind].n; i++) {
		const struct field *f = &kinds[kind].fields[i];
		bool same = strcmp(f->cli, f->api) == 0;
		/* o < size throughout: a cut piece ends the text, as documented */
		int n = snprintf(out + o, size - o, "%s%s%s%s%s", i > 0 ? ", " : "", f->cli,
		                 same ? "" : " (", same ? "" : f->api, same ? "" : ")");
		if (n < 0 || (size_t)n >= size - o)
			break;
		o += (size_t)n;
	}
	return out;
}
