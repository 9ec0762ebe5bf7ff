/* store_admin: the SQL behind the administrative commands (domains, mailboxes, aliases, limits,
   usage). Used by the mailquota CLI until the admin HTTP API exists. */
#ifndef MQ_STORE_ADMIN_H
#define MQ_STORE_ADMIN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "address.h"

#define ADMIN_ERROR_MAX 512

enum admin_object { ADMIN_DOMAIN, ADMIN_MAILBOX };

/*
 * Settable fields, by the names admins type ("storage=1G"). Each maps to one column of a fixed
 * table; a value of "none" stores NULL (inherit / unlimited). Returns the list for help text.
 */
const char *admin_field_names(enum admin_object obj);

/*
 * Each operation returns 0, or -1 with a message in err[ADMIN_ERROR_MAX]. Operations that name
 * a field list take "name=value" strings; they run in one transaction, all or nothing.
 */
int admin_domain_add(PGconn *conn, const char *domain, char **fields, int nfields, char *err)
        __attribute__((warn_unused_result));
int admin_domain_set(PGconn *conn, const char *domain, char **fields, int nfields, char *err)
        __attribute__((warn_unused_result));
int admin_domain_delete(PGconn *conn, const char *domain, char *err)
        __attribute__((warn_unused_result));
int admin_domain_list(PGconn *conn, FILE *out, char *err) __attribute__((warn_unused_result));

int admin_mailbox_add(PGconn *conn, const struct address *addr, char **fields, int nfields,
                      char *err) __attribute__((warn_unused_result));
int admin_mailbox_set(PGconn *conn, const struct address *addr, char **fields, int nfields,
                      char *err) __attribute__((warn_unused_result));
int admin_mailbox_delete(PGconn *conn, const struct address *addr, char *err)
        __attribute__((warn_unused_result));
/* domain NULL: every domain. */
int admin_mailbox_list(PGconn *conn, const char *domain, FILE *out, char *err)
        __attribute__((warn_unused_result));
/* An alias address is local@domain, or @domain for the catch-all (local == NULL). Targets are
   existing mailboxes. add creates the alias or adds targets to it. */
int admin_alias_add(PGconn *conn, const char *local, const char *domain,
                    const struct address *targets, int ntargets, char *err)
        __attribute__((warn_unused_result));
int admin_alias_delete(PGconn *conn, const char *local, const char *domain, char *err)
        __attribute__((warn_unused_result));
int admin_alias_list(PGconn *conn, const char *domain, FILE *out, char *err)
        __attribute__((warn_unused_result));

#endif
