/*
 * admin_token: API tokens in the database: issuing (the secret is made here, only its SHA-256
 * is stored), revoking and reading, each through sql/005_admin.sql with its audit record. It
 * must never store or log a token's secret text, and never hand it out unless the token was
 * created.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "admin_internal.h"
#include "db.h"
#include "log.h"

int admin_token_issue(struct admin *a, json_t *fields, int64_t creator, char *text_r,
                      struct admin_result *res, const char **error_r)
{
	PGresult *r;
	int rc = admin_run(a, "token_next", NULL, 0, NULL, &r, res, error_r);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	int64_t id = db_get_i64(r, 0, 0);
	PQclear(r);
	uint8_t hash[TOKEN_HASH_LEN];
	if (token_generate(id, text_r, TOKEN_TEXT_MAX, hash) < 0) {
		log_error("event=token_random_failed");
		*error_r = "no random bytes for a token";
		return -1;
	}
	char hex[2 * TOKEN_HASH_LEN + 1], ids[24], cre[24]; /* 64-bit numbers fit */
	for (size_t i = 0; i < TOKEN_HASH_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", hash[i]);
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	snprintf(cre, sizeof(cre), "%lld", (long long)creator);
	json_t *mb = json_object_get(fields, "mailbox"),
	       *exp = json_object_get(fields, "expires_at");
	const char *params[7] = {
		creator > 0 ? cre : NULL,
		ids,
		json_string_value(json_object_get(fields, "name")),
		json_string_value(json_object_get(fields, "scope")),
		json_is_string(mb) ? json_string_value(mb) : NULL,
		hex,
		json_is_string(exp) ? json_string_value(exp) : NULL,
	};
	rc = admin_run(a, "token_create", NULL, 7, params, &r, res, error_r);
	if (rc == 0) {
		rc = admin_take_code_doc(r, res, error_r);
		PQclear(r);
	}
	if (rc != 0 || res->code != ADMIN_CREATED)
		explicit_bzero(text_r, TOKEN_TEXT_MAX);
	return rc < 0 ? -1 : 0;
}

int admin_token_revoke(struct admin *a, int64_t id, int64_t actor, struct admin_result *res,
                       const char **error_r)
{
	char ids[24], act[24]; /* 64-bit numbers fit */
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	snprintf(act, sizeof(act), "%lld", (long long)actor);
	const char *params[2] = { actor > 0 ? act : NULL, ids };
	PGresult *r;
	int rc = admin_run(a, "token_revoke", NULL, 2, params, &r, res, error_r);
	if (rc == 0) {
		rc = admin_take_code_doc(r, res, error_r);
		PQclear(r);
	}
	return rc < 0 ? -1 : 0;
}

int admin_token_get(struct admin *a, int64_t id, struct admin_result *res, const char **error_r)
{
	char ids[24]; /* a 64-bit number fits */
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	const char *params[1] = { ids };
	PGresult *r;
	int rc = admin_run(a, "token_get", NULL, 1, params, &r, res, error_r);
	if (rc == 0) {
		admin_take_doc(r, res);
		PQclear(r);
	}
	return rc < 0 ? -1 : 0;
}
