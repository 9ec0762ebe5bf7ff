/*
 * admin_warnings: the warning settings as the admin API reads and changes them
 * (sql/013_warnings.sql: mq_warning_settings_doc, mq_warning_settings_set). A change is one
 * call, audited in its transaction. Values travel as parameters.
 */
#include <stdio.h>
#include <stdlib.h>

#include "admin.h"
#include "admin_internal.h"

int admin_warning_settings(struct admin *a, json_t *fields, int64_t token, struct admin_result *res,
                           const char **error_r)
{
	PGresult *r;
	int rc;
	if (fields == NULL) {
		rc = admin_run(a, "warning_settings_get", "SELECT mq_warning_settings_doc()", 0,
		               NULL, &r, res, error_r);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
		admin_take_doc(r, res);
		PQclear(r);
		return 0;
	}
	char *text = json_dumps(fields, JSON_COMPACT);
	char tok[24];
	snprintf(tok, sizeof(tok), "%lld", (long long)token);
	const char *params[2] = { token > 0 ? tok : NULL, text };
	rc = admin_run(a, "warning_settings_set",
	               "SELECT code, doc FROM mq_warning_settings_set($1, $2::jsonb)", 2, params,
	               &r, res, error_r);
	free(text);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	rc = admin_take_code_doc(r, res, error_r);
	PQclear(r);
	return rc;
}
