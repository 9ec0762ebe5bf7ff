/*
 * http_warnings: the warning settings over HTTP (GET and PATCH /v1/warnings/settings). A
 * change is checked whole by warning_settings_check() before the database sees it, and the
 * database applies it whole or not at all.
 */
#include <stdlib.h>

#include "admin.h"
#include "http_internal.h"
#include "warning.h"

/* The answer for a settings call that came to rc and res. */
static struct http_reply settings_reply(int rc, struct admin_result *res, const char *error)
{
	struct http_reply r;
	if (rc < 0) {
		r = http_admin_unavailable(error);
	} else if (res->code == ADMIN_OK && res->doc != NULL) {
		r = http_reply_raw(200, res->doc);
		res->doc = NULL;
	} else if (res->code == ADMIN_UNKNOWN_DOMAIN) {
		r = http_error_field(422, "unknown_domain", "domains",
		                     "a domain named in domains does not exist");
	} else if (res->code == ADMIN_INVALID_VALUE) {
		r = http_error(400, "invalid_value", res->message);
	} else {
		r = http_admin_unavailable("unexpected answer to a settings change");
	}
	admin_result_free(res);
	return r;
}

struct http_reply http_warning_settings_get(struct http_server *srv, struct MHD_Connection *conn,
                                            struct http_request *req)
{
	(void)conn, (void)req;
	struct admin_result res = { 0 };
	const char *error;
	int rc = admin_warning_settings(srv->admin, NULL, 0, &res, &error);
	return settings_reply(rc, &res, error);
}

struct http_reply http_warning_settings_patch(struct http_server *srv, struct MHD_Connection *conn,
                                              struct http_request *req)
{
	struct http_reply r;
	json_t *body, *fields;
	if (http_parse_body(conn, req, &body, &r) < 0)
		return r;
	const char *field, *why;
	int rc = warning_settings_check(body, &srv->cfg->address_rules, &fields, &field, &why);
	if (rc < 0) {
		r = http_error_field(400, "invalid_field", field, why);
		json_decref(body);
		return r;
	}
	json_decref(body);
	struct admin_result res = { 0 };
	const char *error;
	rc = admin_warning_settings(srv->admin, fields, req->tok.id, &res, &error);
	json_decref(fields);
	return settings_reply(rc, &res, error);
}
