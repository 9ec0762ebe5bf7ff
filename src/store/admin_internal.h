/*
 * admin_internal: what the files of the admin module share (admin.c, admin_token.c,
 * admin_list.c, admin_bulk.c): the object, the one way a statement is run, and how its rows
 * become a struct admin_result. Not for other modules.
 */
#ifndef MQ_ADMIN_INTERNAL_H
#define MQ_ADMIN_INTERNAL_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdint.h>

#include "admin.h"

struct dbpool;

struct admin {
	struct dbpool *pool;
	unsigned bulk_timeout_s; /* imports and export fetches; 0: the statement timeout */
	/* admin_change() calls by kind (domain, mailbox, alias) and outcome (a code, or
	   ADMIN_CODES: failed); relaxed atomics, counts only */
	_Atomic uint64_t changes[RESOURCE_ALIAS + 1][ADMIN_CODES + 1];
};

/* How long an import statement or an export fetch may take. */
unsigned admin_bulk_timeout_ms(const struct admin *a);

/* "BEGIN ..." followed by the bulk statement timeout for this transaction only. */
struct admin_begin {
	char sql[160];
};
struct admin_begin admin_bulk_begin(const struct admin *a, const char *begin);

/*
 * Run one statement on a pooled connection (dbpool_run(): retried only if it was never sent):
 * the prepared statement named label when sql is NULL, else the SQL text sql (label names it in
 * the log). Returns 0 with *res_r (PQclear it); 1 when the database refused the values (class
 * 22 or 23), with res->code ADMIN_INVALID_VALUE and its reason in res->message when res is not
 * NULL; or -1 with *error_r (logged).
 */
int admin_run(struct admin *a, const char *label, const char *sql, int n, const char *const *params,
              PGresult **res_r, struct admin_result *res, const char **error_r)
        __attribute__((warn_unused_result));

/* A one-document result into res: ADMIN_OK with the document, or ADMIN_NOT_FOUND. */
void admin_take_doc(const PGresult *r, struct admin_result *res);
/* A (code, doc) result of a change function into res: 0, or -1 with *error_r (logged) for a
   code this build does not know (a schema migrated ahead of the daemon). */
int admin_take_code_doc(const PGresult *r, struct admin_result *res, const char **error_r)
        __attribute__((warn_unused_result));
/* The code a change function answered (text): 0, or -1 for a text no code has. */
int admin_code_parse(const char *text, enum admin_code *code_r) __attribute__((warn_unused_result));

#endif
