/*
 * admin: SQL for the admin API, its shared part and the resources. Every change is one call of
 * a function of sql/005_admin.sql, which writes the audit record in the same transaction; the
 * code it answers becomes an enum admin_code here, in one table. It must never build SQL from
 * untrusted text: values travel as parameters, and the only text spliced into a query comes
 * from the tables of this module's files.
 */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "buf.h"
#include "dbpool.h"
#include "log.h"
#include "utf8.h"
#include "xalloc.h"

/* Every prepared statement of the admin pool (tokens' too: one pool, one table). */
static const struct db_statement statements[] = {
	{ "domain_change", "SELECT code, doc FROM mq_admin_domain($1, $2, $3, $4::jsonb, $5)", 5 },
	{ "mailbox_change", "SELECT code, doc FROM mq_admin_mailbox($1, $2, $3, $4, $5::jsonb, $6)",
	  6 },
	{ "alias_change", "SELECT code, doc FROM mq_admin_alias($1, $2, $3, $4, $5::jsonb, $6)",
	  6 },
	{ "domain_get", "SELECT mq_domain_doc(d) FROM domains d WHERE name = $1", 1 },
	{ "mailbox_get", "SELECT mq_mailbox_doc(m) FROM mailboxes m WHERE address = $1", 1 },
	{ "alias_get", "SELECT mq_alias_doc(a) FROM aliases a WHERE address = $1", 1 },
	{ "token_next", "SELECT mq_token_next_id()", 0 },
	{ "token_create",
	  "SELECT code, doc FROM mq_admin_token_create($1, $2, $3, $4, $5, decode($6, 'hex'),"
	  " $7::timestamptz)",
	  7 },
	{ "token_revoke", "SELECT code, doc FROM mq_admin_token_revoke($1, $2)", 2 },
	{ "token_get", "SELECT mq_token_doc(t) FROM api_tokens t WHERE id = $1", 1 },
	{ "usage_set",
	  "WITH b AS (SELECT id, mq_mailbox_doc(m) AS doc FROM mailboxes m WHERE address = $1"
	  "           FOR UPDATE),"
	  " u AS (UPDATE mailboxes m SET used_bytes = $2, used_messages = coalesce($3, "
	  "m.used_messages),"
	  "       usage_source = $4, usage_set_at = coalesce($5::timestamptz, now())"
	  "       FROM b WHERE m.id = b.id RETURNING m.*),"
	  " d AS (SELECT mq_mailbox_doc(u::mailboxes) AS doc FROM u),"
	  " a AS (INSERT INTO audit_log (token_id, action, object, before, after)"
	  "       SELECT $6, 'usage.set', $1, b.doc, d.doc FROM b, d)"
	  " SELECT doc FROM d",
	  6 },
};

/* The codes as sql/005_admin.sql and sql/006_bulk.sql spell them. */
static const char *const code_names[ADMIN_CODES] = {
	[ADMIN_OK] = "ok",
	[ADMIN_CREATED] = "created",
	[ADMIN_UPDATED] = "updated",
	[ADMIN_UNCHANGED] = "unchanged",
	[ADMIN_NOT_FOUND] = "not_found",
	[ADMIN_EXISTS] = "exists",
	[ADMIN_VERSION_MISMATCH] = "version_mismatch",
	[ADMIN_UNKNOWN_DOMAIN] = "unknown_domain",
	[ADMIN_UNKNOWN_TARGET] = "unknown_target",
	[ADMIN_NO_TARGETS] = "no_targets",
	[ADMIN_UNKNOWN_MAILBOX] = "unknown_mailbox",
	[ADMIN_INVALID_VALUE] = "invalid_value",
};

/* The op argument of the change functions. */
static const char *const op_names[] = {
	[ADMIN_CREATE] = "create",
	[ADMIN_UPDATE] = "update",
	[ADMIN_DELETE] = "delete",
};

const char *admin_code_name(enum admin_code code)
{
	return code_names[code];
}

int admin_code_parse(const char *text, enum admin_code *code_r)
{
	for (size_t i = 0; i < ADMIN_CODES; i++)
		if (strcmp(code_names[i], text) == 0) {
			*code_r = (enum admin_code)i;
			return 0;
		}
	return -1;
}

unsigned admin_bulk_timeout_ms(const struct admin *a)
{
	return a->bulk_timeout_s != 0 ? (a->bulk_timeout_s + 1) * 1000 : dbpool_timeout_ms(a->pool);
}

struct admin_begin admin_bulk_begin(const struct admin *a, const char *begin)
{
	struct admin_begin q;
	/* begin is one of our literals (under 60 characters) and the number an unsigned: fits */
	if (a->bulk_timeout_s != 0)
		snprintf(q.sql, sizeof(q.sql), "%s; SET LOCAL statement_timeout = %u", begin,
		         a->bulk_timeout_s * 1000);
	else
		snprintf(q.sql, sizeof(q.sql), "%s", begin);
	return q;
}

struct admin *admin_new(const char *conninfo, unsigned pool_size, const struct db_limits *limits,
                        unsigned bulk_timeout_s)
{
	struct admin *a = xcalloc(1, sizeof(*a));
	a->pool = dbpool_new(conninfo, pool_size, "mailquotad-admin", statements,
	                     sizeof(statements) / sizeof(statements[0]), limits);
	a->bulk_timeout_s = bulk_timeout_s;
	return a;
}

void admin_destroy(struct admin **ap)
{
	struct admin *a = *ap;
	if (a == NULL)
		return;
	dbpool_destroy(&a->pool);
	free(a);
	*ap = NULL;
}

void admin_result_free(struct admin_result *res)
{
	free(res->doc);
	res->doc = NULL;
}

/* Keep the document, and its "etag" member for the header. */
static void set_doc(struct admin_result *res, const char *doc)
{
	free(res->doc);
	res->doc = xstrdup(doc);
	res->etag[0] = '\0';
	json_t *j = json_loads(doc, 0, NULL);
	json_t *e = json_object_get(j, "etag");
	if (json_is_string(e) && str_copy(res->etag, json_string_value(e), sizeof(res->etag)) < 0) {
		/* the schema makes "<id>.<version>" of two bigints: anything longer is our bug */
		fprintf(stderr, "admin: an etag longer than ADMIN_ETAG_MAX: %.60s\n",
		        json_string_value(e));
		abort();
	}
	json_decref(j);
}

void admin_take_doc(const PGresult *r, struct admin_result *res)
{
	res->code = PQntuples(r) == 1 ? ADMIN_OK : ADMIN_NOT_FOUND;
	if (PQntuples(r) == 1)
		set_doc(res, PQgetvalue(r, 0, 0));
}

int admin_take_code_doc(const PGresult *r, struct admin_result *res, const char **error_r)
{
	if (PQntuples(r) != 1) {
		res->code = ADMIN_NOT_FOUND;
		return 0;
	}
	if (admin_code_parse(PQgetvalue(r, 0, 0), &res->code) < 0) {
		/* a schema migrated ahead of this daemon: answer, don't crash */
		char code[48];
		str_sanitize(code, sizeof(code), PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)),
		             40);
		log_error("event=admin_unknown_code code=\"%s\" note=\"is the schema newer than "
		          "this daemon?\"",
		          code);
		*error_r = "the database answered a code this daemon does not know";
		return -1;
	}
	if (!PQgetisnull(r, 0, 1))
		set_doc(res, PQgetvalue(r, 0, 1));
	return 0;
}

int admin_run(struct admin *a, const char *label, const char *sql, int n, const char *const *params,
              PGresult **res_r, struct admin_result *res, const char **error_r)
{
	*res_r = NULL;
	PGresult *r =
	        dbpool_run(a->pool, sql == NULL, sql != NULL ? sql : label, n, params, error_r);
	if (r == NULL)
		return -1; /* no connection (the pool logs the outage once), or no answer (logged)
		            */
	switch (db_classify(r)) {
	case DB_OK:
		*res_r = r;
		return 0;
	case DB_REFUSED: /* data exceptions and integrity violations: the values, not the database
	                  */
		if (res != NULL) {
			const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
			res->code = ADMIN_INVALID_VALUE;
			/* cut to ADMIN_MESSAGE_MAX on purpose, where a character ends */
			if (m == NULL)
				m = "refused";
			snprintf(res->message, sizeof(res->message), "%.*s",
			         (int)utf8_cut(m, strlen(m), sizeof(res->message) - 1), m);
		}
		PQclear(r);
		return 1;
	default:
		*error_r = db_error_text(NULL, r);
		log_warn("event=admin_query_failed statement=%s error=\"%s\"", label, *error_r);
		PQclear(r);
		return -1;
	}
}

/* Run a prepared statement whose answer is (code, doc), or one document (one_doc), into res:
   0 (res filled, ADMIN_INVALID_VALUE included), or -1 with *error_r. */
static int run_into(struct admin *a, const char *stmt, int n, const char *const *params,
                    bool one_doc, struct admin_result *res, const char **error_r)
{
	PGresult *r;
	int rc = admin_run(a, stmt, NULL, n, params, &r, res, error_r);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (one_doc)
		admin_take_doc(r, res);
	else
		rc = admin_take_code_doc(r, res, error_r);
	PQclear(r);
	return rc;
}

int admin_change(struct admin *a, enum resource_kind kind, enum admin_op op,
                 const struct resource_key *key, json_t *fields, const char *etag, int64_t token,
                 struct admin_result *res, const char **error_r)
{
	char tok[24];
	snprintf(tok, sizeof(tok), "%lld", (long long)token); /* an int64 fits */
	char *ftext = fields != NULL ? json_dumps(fields, JSON_COMPACT) : NULL;
	const char *params[6];
	int n = 0;
	const char *stmt;
	params[n++] = token > 0 ? tok : NULL;
	params[n++] = op_names[op];
	if (kind == RESOURCE_DOMAIN) {
		stmt = "domain_change";
		params[n++] = key->domain;
	} else {
		stmt = kind == RESOURCE_MAILBOX ? "mailbox_change" : "alias_change";
		params[n++] = key->catchall ? NULL : key->local;
		params[n++] = key->domain;
	}
	params[n++] = ftext;
	params[n++] = etag;
	int rc = run_into(a, stmt, n, params, false, res, error_r);
	free(ftext);
	if (kind <= RESOURCE_ALIAS) /* always: tokens change through admin_token.c */
		atomic_fetch_add_explicit(&a->changes[kind][rc < 0 ? ADMIN_CODES : res->code], 1,
		                          memory_order_relaxed);
	return rc;
}

void admin_change_counts(struct admin *a, uint64_t counts_r[RESOURCE_ALIAS + 1][ADMIN_CODES + 1])
{
	for (int k = 0; k <= RESOURCE_ALIAS; k++)
		for (int c = 0; c <= ADMIN_CODES; c++)
			counts_r[k][c] =
			        atomic_load_explicit(&a->changes[k][c], memory_order_relaxed);
}

static const char *const get_stmt[] = {
	[RESOURCE_DOMAIN] = "domain_get",
	[RESOURCE_MAILBOX] = "mailbox_get",
	[RESOURCE_ALIAS] = "alias_get",
	[RESOURCE_TOKEN] = "token_get",
};

int admin_get(struct admin *a, enum resource_kind kind, const struct resource_key *key,
              struct admin_result *res, const char **error_r)
{
	const char *params[1] = { kind == RESOURCE_DOMAIN ? key->domain : key->text };
	return run_into(a, get_stmt[kind], 1, params, true, res, error_r);
}

int admin_usage_set(struct admin *a, const char *address, uint64_t bytes, const uint64_t *messages,
                    const char *source, const char *measured_at, int64_t token,
                    struct admin_result *res, const char **error_r)
{
	char b[24], m[24], tok[24]; /* 64-bit numbers fit */
	snprintf(b, sizeof(b), "%llu", (unsigned long long)bytes);
	if (messages != NULL)
		snprintf(m, sizeof(m), "%llu", (unsigned long long)*messages);
	snprintf(tok, sizeof(tok), "%lld", (long long)token);
	const char *params[6] = { address,
		                  b,
		                  messages != NULL ? m : NULL,
		                  source,
		                  measured_at[0] != '\0' ? measured_at : NULL,
		                  token > 0 ? tok : NULL };
	return run_into(a, "usage_set", 6, params, true, res, error_r);
}
