/*
 * store_admin: administrative writes and listings over SQL for the CLI. Every change runs in one
 * transaction and either fully happens or leaves the database as it was. Column names come only
 * from the constant field table below, never from the command line; values go as parameters.
 */
#include "store_admin.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "strnum.h"

enum field_type { F_SIZE, F_COUNT, F_PERCENT, F_BOOL };

struct field {
	enum admin_object obj;
	const char *name;
	const char *column;
	enum field_type type;
};

static const struct field fields[] = {
	{ ADMIN_DOMAIN, "pool", "pool_limit_bytes", F_SIZE },
	{ ADMIN_DOMAIN, "storage", "default_storage_limit_bytes", F_SIZE },
	{ ADMIN_DOMAIN, "messages", "default_message_limit", F_COUNT },
	{ ADMIN_DOMAIN, "mailbox-max-size", "default_max_message_size", F_SIZE },
	{ ADMIN_DOMAIN, "max-size", "max_message_size", F_SIZE },
	{ ADMIN_DOMAIN, "grace", "grace_percent", F_PERCENT },
	{ ADMIN_MAILBOX, "storage", "storage_limit_bytes", F_SIZE },
	{ ADMIN_MAILBOX, "messages", "message_limit", F_COUNT },
	{ ADMIN_MAILBOX, "max-size", "max_message_size", F_SIZE },
	{ ADMIN_MAILBOX, "grace", "grace_percent", F_PERCENT },
	{ ADMIN_MAILBOX, "enabled", "enabled", F_BOOL },
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static void seterr(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(char *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, ADMIN_ERROR_MAX, fmt, ap);
	va_end(ap);
}

const char *admin_field_names(enum admin_object obj)
{
	return obj == ADMIN_DOMAIN ? "pool, storage, messages, mailbox-max-size, max-size, grace"
	                           : "storage, messages, max-size, grace, enabled";
}

/* Run a statement; 0 with *res_r (caller clears) or -1 with err. */
static int run(PGconn *conn, const char *sql, int n, const char *const *params, PGresult **res_r,
               char *err)
{
	PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (state != NULL && strcmp(state, "23505") == 0)
			seterr(err, "it already exists");
		else if (state != NULL && strcmp(state, "23514") == 0)
			seterr(err, "a value breaks a constraint: %s",
			       PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME)
			               ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME)
			               : "check");
		else {
			const char *m = PQresultErrorMessage(r);
			seterr(err, "%.*s", (int)strcspn(m, "\n"), m);
		}
		PQclear(r);
		return -1;
	}
	if (res_r != NULL)
		*res_r = r;
	else
		PQclear(r);
	return 0;
}

static int begin(PGconn *conn, char *err)
{
	return run(conn, "BEGIN", 0, NULL, NULL, err);
}

static int finish(PGconn *conn, int rc, char *err)
{
	if (rc < 0) {
		PQclear(PQexec(conn, "ROLLBACK"));
		return -1;
	}
	return run(conn, "COMMIT", 0, NULL, NULL, err);
}

/* Parse "name=value" for obj into a column and a parameter (NULL for "none"). */
static int parse_field(enum admin_object obj, const char *nv, const struct field **f_r, char *value,
                       size_t vsize, bool *is_null_r, char *err)
{
	const char *eq = strchr(nv, '=');
	if (eq == NULL) {
		seterr(err, "\"%s\": want name=value (names: %s)", nv, admin_field_names(obj));
		return -1;
	}
	size_t nlen = (size_t)(eq - nv);
	const char *v = eq + 1;
	const struct field *f = NULL;
	for (size_t i = 0; i < NFIELDS; i++)
		if (fields[i].obj == obj && strlen(fields[i].name) == nlen &&
		    memcmp(fields[i].name, nv, nlen) == 0)
			f = &fields[i];
	if (f == NULL) {
		seterr(err, "unknown field \"%.*s\" (names: %s)", (int)nlen, nv,
		       admin_field_names(obj));
		return -1;
	}
	*f_r = f;
	*is_null_r = false;
	uint64_t n;
	if (f->type != F_BOOL && (strcmp(v, "none") == 0 || strcmp(v, "inherit") == 0)) {
		*is_null_r = true;
		return 0;
	}
	switch (f->type) {
	case F_SIZE:
		if (strnum_size(v, INT64_MAX, &n) < 0) {
			seterr(err, "%s: \"%s\" is not a size (bytes or K/M/G/T, or none)", f->name,
			       v);
			return -1;
		}
		break;
	case F_COUNT:
		if (strnum_u64(v, strlen(v), INT64_MAX, &n) < 0) {
			seterr(err, "%s: \"%s\" is not a count (or none)", f->name, v);
			return -1;
		}
		break;
	case F_PERCENT:
		if (strnum_u64(v, strlen(v), 1000, &n) < 0) {
			seterr(err, "%s: \"%s\" is not a percentage 0..1000 (or none)", f->name, v);
			return -1;
		}
		break;
	case F_BOOL:
		if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0) {
			seterr(err, "%s: \"%s\" is not yes or no", f->name, v);
			return -1;
		}
		snprintf(value, vsize, "%s", strcmp(v, "yes") == 0 ? "true" : "false");
		return 0;
	}
	snprintf(value, vsize, "%llu", (unsigned long long)n);
	return 0;
}

/* Apply fields to one row; key params are (domain) or (domain, local). Inside a transaction. */
static int set_fields(PGconn *conn, enum admin_object obj, const char *domain, const char *local,
                      char **fv, int nfields, char *err)
{
	for (int i = 0; i < nfields; i++) {
		const struct field *f;
		char value[32];
		bool is_null;
		if (parse_field(obj, fv[i], &f, value, sizeof(value), &is_null, err) < 0)
			return -1;
		char sql[256];
		if (obj == ADMIN_DOMAIN)
			snprintf(sql, sizeof(sql), "UPDATE domains SET %s = $1 WHERE name = $2",
			         f->column);
		else
			snprintf(sql, sizeof(sql),
			         "UPDATE mailboxes SET %s = $1 WHERE local_part = $3 AND"
			         " domain_id = (SELECT id FROM domains WHERE name = $2)",
			         f->column);
		const char *params[3] = { is_null ? NULL : value, domain, local };
		PGresult *r;
		if (run(conn, sql, obj == ADMIN_DOMAIN ? 2 : 3, params, &r, err) < 0)
			return -1;
		bool found = strcmp(PQcmdTuples(r), "1") == 0;
		PQclear(r);
		if (!found) {
			if (obj == ADMIN_DOMAIN)
				seterr(err, "no domain %s", domain);
			else
				seterr(err, "no mailbox %s@%s", local, domain);
			return -1;
		}
	}
	return 0;
}

int admin_domain_add(PGconn *conn, const char *domain, char **fv, int nfields, char *err)
{
	const char *params[1] = { domain };
	if (begin(conn, err) < 0)
		return -1;
	int rc = run(conn, "INSERT INTO domains (name) VALUES ($1)", 1, params, NULL, err);
	if (rc == 0)
		rc = set_fields(conn, ADMIN_DOMAIN, domain, NULL, fv, nfields, err);
	return finish(conn, rc, err);
}

int admin_domain_set(PGconn *conn, const char *domain, char **fv, int nfields, char *err)
{
	if (begin(conn, err) < 0)
		return -1;
	return finish(conn, set_fields(conn, ADMIN_DOMAIN, domain, NULL, fv, nfields, err), err);
}

static int delete_one(PGconn *conn, const char *sql, int n, const char *const *params,
                      const char *what, char *err)
{
	PGresult *r;
	if (run(conn, sql, n, params, &r, err) < 0)
		return -1;
	bool found = strcmp(PQcmdTuples(r), "0") != 0;
	PQclear(r);
	if (!found) {
		seterr(err, "no %s", what);
		return -1;
	}
	return 0;
}

int admin_domain_delete(PGconn *conn, const char *domain, char *err)
{
	const char *params[1] = { domain };
	char what[300];
	snprintf(what, sizeof(what), "domain %s", domain);
	return delete_one(conn, "DELETE FROM domains WHERE name = $1", 1, params, what, err);
}

static int print_table(PGconn *conn, const char *sql, int n, const char *const *params, FILE *out,
                       char *err)
{
	PGresult *r;
	if (run(conn, sql, n, params, &r, err) < 0)
		return -1;
	int rows = PQntuples(r), cols = PQnfields(r);
	size_t width[32] = { 0 };
	if (cols > 32)
		cols = 32;
	for (int c = 0; c < cols; c++) {
		width[c] = strlen(PQfname(r, c));
		for (int i = 0; i < rows; i++)
			if ((size_t)PQgetlength(r, i, c) > width[c])
				width[c] = (size_t)PQgetlength(r, i, c);
	}
	for (int c = 0; c < cols; c++)
		fprintf(out, "%-*s%s", (int)width[c], PQfname(r, c), c + 1 < cols ? "  " : "\n");
	for (int i = 0; i < rows; i++)
		for (int c = 0; c < cols; c++)
			fprintf(out, "%-*s%s", (int)width[c], PQgetvalue(r, i, c),
			        c + 1 < cols ? "  " : "\n");
	PQclear(r);
	return 0;
}

static const char sql_domain_list[] =
        "SELECT d.name AS domain,"
        " coalesce(d.pool_limit_bytes::text, '-') AS pool,"
        " coalesce(sum(m.used_bytes), 0)::text AS pool_used,"
        " coalesce(d.default_storage_limit_bytes::text, '-') AS storage,"
        " coalesce(d.default_message_limit::text, '-') AS messages,"
        " coalesce(d.default_max_message_size::text, '-') AS mailbox_max_size,"
        " coalesce(d.max_message_size::text, '-') AS max_size,"
        " coalesce(d.grace_percent::text, '-') AS grace,"
        " count(m.id) AS mailboxes"
        " FROM domains d LEFT JOIN mailboxes m ON m.domain_id = d.id"
        " GROUP BY d.id ORDER BY d.name";

int admin_domain_list(PGconn *conn, FILE *out, char *err)
{
	return print_table(conn, sql_domain_list, 0, NULL, out, err);
}

int admin_mailbox_add(PGconn *conn, const struct address *addr, char **fv, int nfields, char *err)
{
	const char *params[2] = { addr->domain, addr->local };
	if (begin(conn, err) < 0)
		return -1;
	PGresult *r;
	int rc = run(conn,
	             "INSERT INTO mailboxes (domain_id, local_part)"
	             " SELECT id, $2 FROM domains WHERE name = $1",
	             2, params, &r, err);
	if (rc == 0) {
		if (strcmp(PQcmdTuples(r), "1") != 0) {
			seterr(err, "no domain %s (add it first)", addr->domain);
			rc = -1;
		}
		PQclear(r);
	}
	if (rc == 0)
		rc = set_fields(conn, ADMIN_MAILBOX, addr->domain, addr->local, fv, nfields, err);
	return finish(conn, rc, err);
}

int admin_mailbox_set(PGconn *conn, const struct address *addr, char **fv, int nfields, char *err)
{
	if (begin(conn, err) < 0)
		return -1;
	return finish(conn,
	              set_fields(conn, ADMIN_MAILBOX, addr->domain, addr->local, fv, nfields, err),
	              err);
}

int admin_mailbox_delete(PGconn *conn, const struct address *addr, char *err)
{
	const char *params[2] = { addr->domain, addr->local };
	char what[400];
	snprintf(what, sizeof(what), "mailbox %s@%s", addr->local, addr->domain);
	return delete_one(conn,
	                  "DELETE FROM mailboxes WHERE local_part = $2 AND"
	                  " domain_id = (SELECT id FROM domains WHERE name = $1)",
	                  2, params, what, err);
}

static const char sql_mailbox_list[] =
        "SELECT m.local_part || '@' || d.name AS mailbox,"
        " m.used_bytes AS used,"
        " coalesce(m.storage_limit_bytes::text, '-') AS storage,"
        " m.used_messages AS msgs,"
        " coalesce(m.message_limit::text, '-') AS messages,"
        " coalesce(m.max_message_size::text, '-') AS max_size,"
        " coalesce(m.grace_percent::text, '-') AS grace,"
        " CASE WHEN m.enabled THEN 'yes' ELSE 'no' END AS enabled"
        " FROM mailboxes m JOIN domains d ON d.id = m.domain_id"
        " WHERE $1::text IS NULL OR d.name = $1 ORDER BY d.name, m.local_part";

int admin_mailbox_list(PGconn *conn, const char *domain, FILE *out, char *err)
{
	const char *params[1] = { domain };
	return print_table(conn, sql_mailbox_list, 1, params, out, err);
}

int admin_alias_add(PGconn *conn, const char *local, const char *domain,
                    const struct address *targets, int ntargets, char *err)
{
	const char *params[2] = { domain, local };
	PGresult *r;
	if (begin(conn, err) < 0)
		return -1;
	int rc = run(conn,
	             "INSERT INTO aliases (domain_id, local_part)"
	             " SELECT id, $2 FROM domains WHERE name = $1"
	             " ON CONFLICT (domain_id, local_part) DO UPDATE SET updated_at = now()"
	             " RETURNING id",
	             2, params, &r, err);
	char id[24] = "";
	if (rc == 0) {
		if (PQntuples(r) != 1) {
			seterr(err, "no domain %s (add it first)", domain);
			rc = -1;
		} else {
			snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
		}
		PQclear(r);
	}
	for (int i = 0; rc == 0 && i < ntargets; i++) {
		const char *tp[3] = { id, targets[i].domain, targets[i].local };
		PGresult *t;
		rc = run(conn,
		         "INSERT INTO alias_targets (alias_id, mailbox_id)"
		         " SELECT $1, m.id FROM mailboxes m JOIN domains d ON d.id = m.domain_id"
		         " WHERE d.name = $2 AND m.local_part = $3"
		         " ON CONFLICT DO NOTHING",
		         3, tp, &t, err);
		if (rc == 0) {
			/* distinguish "already a target" from "no such mailbox" */
			bool inserted = strcmp(PQcmdTuples(t), "1") == 0;
			PQclear(t);
			if (!inserted) {
				PGresult *e;
				rc = run(conn,
				         "SELECT 1 FROM mailboxes m JOIN domains d ON"
				         " d.id = m.domain_id WHERE d.name = $2 AND"
				         " m.local_part = $3 AND $1::bigint IS NOT NULL",
				         3, tp, &e, err);
				if (rc == 0) {
					if (PQntuples(e) == 0) {
						seterr(err,
						       "target %s@%s is not a mailbox (aliases "
						       "point"
						       " at mailboxes)",
						       targets[i].local, targets[i].domain);
						rc = -1;
					}
					PQclear(e);
				}
			}
		}
	}
	return finish(conn, rc, err);
}

int admin_alias_delete(PGconn *conn, const char *local, const char *domain, char *err)
{
	const char *params[2] = { domain, local };
	char what[400];
	snprintf(what, sizeof(what), "alias %s@%s", local ? local : "", domain);
	return delete_one(conn,
	                  "DELETE FROM aliases WHERE local_part IS NOT DISTINCT FROM $2 AND"
	                  " domain_id = (SELECT id FROM domains WHERE name = $1)",
	                  2, params, what, err);
}

int admin_alias_list(PGconn *conn, const char *domain, FILE *out, char *err)
{
	const char *params[1] = { domain };
	return print_table(conn,
	                   "SELECT coalesce(a.local_part, '') || '@' || d.name AS alias,"
	                   " coalesce(string_agg(m.local_part || '@' || md.name, ', '"
	                   "  ORDER BY md.name, m.local_part), '-') AS targets"
	                   " FROM aliases a JOIN domains d ON d.id = a.domain_id"
	                   " LEFT JOIN alias_targets t ON t.alias_id = a.id"
	                   " LEFT JOIN mailboxes m ON m.id = t.mailbox_id"
	                   " LEFT JOIN domains md ON md.id = m.domain_id"
	                   " WHERE $1::text IS NULL OR d.name = $1"
	                   " GROUP BY a.id, d.name ORDER BY d.name, a.local_part NULLS FIRST",
	                   1, params, out, err);
}
