/*
 * fields: the one table of what admins set on domains, mailboxes and aliases (pure). A row gives
 * a field's API name (request bodies, documents, import and export files), its short name on
 * the mailquota command line, its type and one line of help; each kind also names its key
 * field. resource checks request bodies against it, bulk reads and writes its columns in its
 * order, and the command line parses and shows FIELD=VALUE with it, so a field is added by
 * adding a row here (and a column in sql/). Tokens have no rows: they are created whole by
 * their own commands, never imported, exported or changed field by field.
 */
#ifndef MQ_FIELDS_H
#define MQ_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include "quota.h"

/* The kinds of object the admin API manages (resource.h builds on this). */
enum resource_kind { RESOURCE_DOMAIN, RESOURCE_MAILBOX, RESOURCE_ALIAS, RESOURCE_TOKEN };

enum field_type {
	FIELD_SIZE,    /* bytes: an integer 0..INT64_MAX, or null (inherit / unlimited) */
	FIELD_COUNT,   /* a count: an integer 0..INT64_MAX, or null */
	FIELD_PERCENT, /* an integer 0..FIELD_PERCENT_MAX, or null */
	FIELD_BOOL,    /* true or false, never null */
	FIELD_TARGETS, /* an array of 1..RESOURCE_TARGETS_MAX mailbox addresses */
	FIELD_CHOICE,  /* one of the field's choices (a string), or null (the configured default) */
};

#define FIELD_PERCENT_MAX QUOTA_GRACE_PERCENT_MAX
#define FIELD_NAMES_MAX   512 /* field_names_text(): every name of the longest kind, with room */

struct field {
	const char *api; /* "storage_limit_bytes": the API's and the files' name */
	const char *cli; /* "storage": what `mailquota mailbox set` takes besides api */
	enum field_type type;
	bool required;              /* in a create body (and so in every import row of the kind) */
	const char *help;           /* one line for people, no trailing period */
	const char *const *choices; /* FIELD_CHOICE: the values taken, NULL-terminated; else NULL */
};

/*
 * The settable fields of kind in export order (bulk's columns after the key), with their count
 * in *n_r; tokens have none (NULL, 0). The table is static: never freed, never changed.
 */
const struct field *field_table(enum resource_kind kind, size_t *n_r);

/* The key field of kind: "name" (domains), "address" (mailboxes, aliases); NULL for tokens. */
const char *field_key(enum resource_kind kind);

/* The field of kind whose API name is name; NULL when kind has none of that name. */
const struct field *field_by_api(enum resource_kind kind, const char *name);

/*
 * The field of kind named name[len] (not NUL-terminated) by either its short or its API name,
 * as the command line accepts both; NULL when kind has no such field.
 */
const struct field *field_by_name(enum resource_kind kind, const char *name, size_t len);

/* Whether text is one of f's choices (a FIELD_CHOICE field; false for any other). */
bool field_choice_valid(const struct field *f, const char *text);

/*
 * f's choices joined by sep ("any, all"), into out[size] (FIELD_NAMES_MAX fits every field's;
 * a smaller size cuts the text short). Returns out; "" for a field of another type.
 */
const char *field_choices_text(const struct field *f, const char *sep, char *out, size_t size);

/* Whether a value of type may be null (everything but booleans and targets). */
bool field_nullable(enum field_type type);

/*
 * Every name kind's fields take, for an error message or help: "pool (pool_limit_bytes),
 * storage (default_storage_limit_bytes), ..." (a field whose two names are one is named once),
 * into out[size] (size >= FIELD_NAMES_MAX fits every kind; a smaller size cuts the text
 * short). Returns out; "" for tokens.
 */
const char *field_names_text(enum resource_kind kind, char *out, size_t size);

#endif
