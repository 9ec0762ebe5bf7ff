/*
 * resource: what the admin API accepts for domains, mailboxes, aliases and tokens (pure).
 * The field table of fields.h says each settable field's name and type (tokens and the
 * update-only alias operations keep small tables here); a request body or an import row is
 * checked against it and turned into the normalised key and the JSON object of fields that the
 * database functions of sql/005_admin.sql take. Nothing here touches the network, the database
 * or the log.
 */
#ifndef MQ_RESOURCE_H
#define MQ_RESOURCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "address.h"
#include "fields.h"

#define RESOURCE_TARGETS_MAX 1000 /* mailboxes named in one alias change */
#define RESOURCE_NAME_MAX    100  /* a token's name */
#define RESOURCE_FIELD_MAX   64   /* a field name quoted back in an error */
#define RESOURCE_REASON_MAX  200  /* an error's reason composed from the field table */
#define RESOURCE_KEY_MAX     (ADDRESS_MAX + 1)
#define RESOURCE_CLOCK_SLACK 60 /* seconds a client's clock may run ahead of the daemon's */

enum resource_mode { RESOURCE_CREATE, RESOURCE_UPDATE };

/* A normalised object key: a domain name, or an address split in two (local NULL: catch-all). */
struct resource_key {
	char text[RESOURCE_KEY_MAX + 1]; /* "example.com", "user@example.com", "@example.com" */
	char local[ADDRESS_LOCAL_MAX + 1];
	char domain[ADDRESS_DOMAIN_MAX + 1];
	bool catchall;
};

/* What is wrong with a body; callers tell cases apart by this, never by the code text. */
enum resource_problem {
	RESOURCE_INVALID_BODY,  /* "invalid_body": not an object, or nothing to change */
	RESOURCE_UNKNOWN_FIELD, /* "unknown_field" */
	RESOURCE_INVALID_FIELD, /* "invalid_field": a value the field does not take */
	RESOURCE_MISSING_FIELD, /* "missing_field": a required field is absent */
	RESOURCE_TOO_MANY,      /* "too_many": more recipients than a check request may name */
};

struct resource_error {
	enum resource_problem problem;
	const char *code; /* the problem's name in API answers and import reports (static) */
	char field[RESOURCE_FIELD_MAX + 1];
	const char *reason; /* static text, or this error's own text (read it in place) */
	char text[RESOURCE_REASON_MAX + 1];
};

/* "domain", "mailbox", "alias", "token". */
const char *resource_kind_name(enum resource_kind kind);

/*
 * Parse and normalise the key of an object of kind from text (a path segment or a body field):
 * domains are lower-cased and checked, mailbox addresses normalised with rules (case folding;
 * an extension is kept, since it is part of a stored name), alias addresses may be "@domain".
 * 0 with *key_r, or -1 with a static *why_r.
 */
int resource_key_parse(enum resource_kind kind, const char *text, const struct address_rules *rules,
                       struct resource_key *key_r, const char **why_r)
        __attribute__((warn_unused_result));

/*
 * Check body against the field table of kind. In RESOURCE_CREATE mode the key field ("name" or
 * "address") is required and parsed into *key_r; in RESOURCE_UPDATE mode it is refused (keys
 * never change). On success returns 0 and a new object of the settable fields in *fields_r
 * (caller decrefs; alias targets normalised); else -1 with *err_r.
 */
int resource_check(enum resource_kind kind, enum resource_mode mode, json_t *body,
                   const struct address_rules *rules, struct resource_key *key_r, json_t **fields_r,
                   struct resource_error *err_r) __attribute__((warn_unused_result));

/*
 * A check request body {"recipients": [strings], "size": N}: 0 with *recipients_r (borrowed
 * from body: 1 to max strings) and *size_r (0 when absent), or -1 with *err_r: "unknown_field",
 * "invalid_field", or "too_many" for more than max recipients.
 */
int resource_check_request(json_t *body, size_t max, json_t **recipients_r, uint64_t *size_r,
                           struct resource_error *err_r) __attribute__((warn_unused_result));

/*
 * A new token's expiry against now: in fields, a checked token create body (resource_check()),
 * an "expires_at" not after now is refused; a self token's may be at most max_lifetime seconds
 * ahead (RESOURCE_CLOCK_SLACK more for clients' clocks), and one without gets now +
 * max_lifetime. 0, or -1 with *err_r (RESOURCE_INVALID_FIELD on expires_at).
 */
int resource_token_expiry(json_t *fields, int64_t now, uint64_t max_lifetime,
                          struct resource_error *err_r) __attribute__((warn_unused_result));

/* One usage report as POST /v1/usage takes it; strings borrowed from the report. */
struct resource_report {
	const char *address; /* "recipient" (resolved as checks do) or "mailbox" (exact) */
	bool exact;
	int64_t bytes, messages; /* deltas within +-USAGE_DELTA_LIMIT; messages 0 when absent */
	const char *key;
	const char *occurred_at; /* NULL when absent */
};

/* Check one report object: 0 with *r filled, or -1 with static *error_r naming the first
   problem. */
int resource_check_report(json_t *report, struct resource_report *r, const char **error_r)
        __attribute__((warn_unused_result));

#endif
