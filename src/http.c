/*
 * http: routes HTTP requests to handlers through one table, decodes JSON strictly and answers
 * JSON. Every error is {"error": code, "message": text} with a 4xx/5xx status. It must never
 * buffer more than HTTP_BODY_MAX of a body, never crash or hang on malformed input, and never
 * queue a response on libmicrohttpd's first callback (that would cost keep-alive).
 */
#include "http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "buf.h"
#include "bulk.h"
#include "http_internal.h"
#include "jsonw.h"
#include "log.h"
#include "resource.h"
#include "strnum.h"
#include "usage.h"
#include "xalloc.h"

/* Scopes as bits: which tokens a route accepts. */
#define S_ADMIN (1u << TOKEN_ADMIN)
#define S_READ  (1u << TOKEN_READ)
#define S_USAGE (1u << TOKEN_USAGE)
#define S_SELF  (1u << TOKEN_SELF) /* the handler checks the mailbox is the token's own */
#define S_NONE  0u                 /* no token needed */
#define S_ANY   (S_ADMIN | S_READ | S_USAGE | S_SELF)

struct route {
	const char *method;
	const char *path;
	http_handler handler;
	unsigned scopes;
	int arg;
};

static struct http_reply handle_check_get(struct http_server *, struct MHD_Connection *,
                                          struct http_request *);
static struct http_reply handle_check_post(struct http_server *, struct MHD_Connection *,
                                           struct http_request *);
static struct http_reply handle_health(struct http_server *, struct MHD_Connection *,
                                       struct http_request *);
static struct http_reply handle_usage_post(struct http_server *, struct MHD_Connection *,
                                           struct http_request *);
static struct http_reply handle_usage_get(struct http_server *, struct MHD_Connection *,
                                          struct http_request *);

#define D RESOURCE_DOMAIN
#define M RESOURCE_MAILBOX
#define A RESOURCE_ALIAS
#define T RESOURCE_TOKEN
static const struct route routes[] = {
	{ "GET", "/v1/health", handle_health, S_NONE, 0 },
	{ "GET", "/v1/check", handle_check_get, S_ANY, 0 },
	{ "POST", "/v1/check", handle_check_post, S_ANY, 0 },
	{ "POST", "/v1/usage", handle_usage_post, S_ADMIN | S_USAGE, 0 },
	{ "GET", "/v1/mailboxes/{}/usage", handle_usage_get, S_ANY, 0 },
	{ "PUT", "/v1/mailboxes/{}/usage", http_admin_usage_put, S_ADMIN | S_USAGE, 0 },
	{ "GET", "/v1/domains", http_admin_list, S_ADMIN | S_READ, D },
	{ "POST", "/v1/domains", http_admin_create, S_ADMIN, D },
	{ "GET", "/v1/domains/{}", http_admin_get, S_ADMIN | S_READ, D },
	{ "PATCH", "/v1/domains/{}", http_admin_update, S_ADMIN, D },
	{ "DELETE", "/v1/domains/{}", http_admin_delete, S_ADMIN, D },
	{ "GET", "/v1/mailboxes", http_admin_list, S_ADMIN | S_READ, M },
	{ "POST", "/v1/mailboxes", http_admin_create, S_ADMIN, M },
	{ "GET", "/v1/mailboxes/{}", http_admin_get, S_ADMIN | S_READ | S_SELF, M },
	{ "PATCH", "/v1/mailboxes/{}", http_admin_update, S_ADMIN, M },
	{ "DELETE", "/v1/mailboxes/{}", http_admin_delete, S_ADMIN, M },
	{ "GET", "/v1/aliases", http_admin_list, S_ADMIN | S_READ, A },
	{ "POST", "/v1/aliases", http_admin_create, S_ADMIN, A },
	{ "GET", "/v1/aliases/{}", http_admin_get, S_ADMIN | S_READ, A },
	{ "PATCH", "/v1/aliases/{}", http_admin_update, S_ADMIN, A },
	{ "DELETE", "/v1/aliases/{}", http_admin_delete, S_ADMIN, A },
	{ "GET", "/v1/tokens", http_admin_list, S_ADMIN, T },
	{ "POST", "/v1/tokens", http_admin_create, S_ADMIN, T },
	{ "GET", "/v1/tokens/{}", http_admin_get, S_ADMIN, T },
	{ "DELETE", "/v1/tokens/{}", http_admin_delete, S_ADMIN, T },
	{ "GET", "/v1/audit", http_admin_audit, S_ADMIN | S_READ, 0 },
	{ "GET", "/v1/export", http_admin_export, S_ADMIN | S_READ, 0 },
	{ "POST", "/v1/import", http_admin_import, S_ADMIN, 0 },
};
#undef D
#undef M
#undef A
#undef T

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

struct http_reply http_error(unsigned status, const char *code, const char *message)
{
	struct http_reply r = {
		.status = status, .body = json_pack("{s:s, s:s}", "error", code, "message", message)
	};
	return r;
}

struct http_reply http_error_field(unsigned status, const char *code, const char *field,
                                   const char *message)
{
	struct http_reply r = { .status = status,
		                .body = json_pack("{s:s, s:s, s:s}", "error", code, "field", field,
		                                  "message", message) };
	return r;
}

struct http_reply http_forbidden(void)
{
	return http_error(403, "forbidden", "this token's scope does not allow this request");
}

#define error_reply http_error

/* Members: each takes a key literal (see jsonw_key). Limits are null when unset. */
#define write_limit(w, key, l)           (jsonw_key(w, key), put_limit(w, l))
#define write_remaining(w, key, l, used) (jsonw_key(w, key), put_remaining(w, l, used))
#define write_u64(w, key, v)             (jsonw_key(w, key), jsonw_u64(w, v))
#define write_str(w, key, v)             (jsonw_key(w, key), jsonw_string(w, v))

static void put_limit(struct jsonw *w, struct quota_limit l)
{
	if (l.has)
		jsonw_u64(w, l.value);
	else
		jsonw_null(w);
}

static void put_remaining(struct jsonw *w, struct quota_limit l, uint64_t used)
{
	if (l.has)
		jsonw_u64(w, quota_remaining(l, used));
	else
		jsonw_null(w);
}

/* A mailbox with its limits and usage; with its verdict when t is a check's target. */
static void write_mailbox(struct jsonw *w, const struct store_mailbox *m,
                          const struct service_target *t)
{
	jsonw_object(w);
	write_str(w, "address", m->address);
	if (t != NULL) {
		write_str(w, "verdict", quota_verdict_name(t->result.verdict));
		write_str(w, "reason", quota_reason_name(t->result.reason));
	}
	jsonw_key(w, "limits");
	jsonw_object(w);
	write_limit(w, "storage_bytes", m->storage);
	write_limit(w, "messages", m->messages);
	write_limit(w, "max_message_size", m->max_size);
	jsonw_end_object(w);
	jsonw_key(w, "usage");
	jsonw_object(w);
	write_u64(w, "bytes", m->used_bytes);
	write_u64(w, "messages", m->used_messages);
	jsonw_end_object(w);
	jsonw_key(w, "remaining");
	jsonw_object(w);
	write_remaining(w, "bytes", m->storage, m->used_bytes);
	write_remaining(w, "messages", m->messages, m->used_messages);
	jsonw_end_object(w);
	jsonw_key(w, "domain");
	jsonw_object(w);
	write_limit(w, "pool_limit_bytes", m->domain_pool);
	write_u64(w, "pool_used_bytes", m->domain_used_bytes);
	write_remaining(w, "pool_remaining_bytes", m->domain_pool, m->domain_used_bytes);
	write_limit(w, "max_message_size", m->domain_max_size);
	jsonw_end_object(w);
	jsonw_end_object(w);
}

static void write_target(struct jsonw *w, const struct service_target *t)
{
	write_mailbox(w, &t->mailbox, t);
}

static void write_result(struct jsonw *w, const char *rcpt, uint64_t size,
                         const struct check_result *res)
{
	char line[REPLY_MAX + 32];
	char addr[ADDRESS_LOCAL_MAX + ADDRESS_DOMAIN_MAX + 2];
	size_t ll = strlen(res->address.local), dl = strlen(res->address.domain);
	memcpy(addr, res->address.local, ll); /* both parts are bounded by address.h's limits */
	addr[ll] = '@';
	memcpy(addr + ll + 1, res->address.domain, dl + 1);
	jsonw_object(w);
	write_str(w, "recipient", rcpt);
	write_str(w, "address", addr);
	write_u64(w, "size", size);
	write_str(w, "verdict", quota_verdict_name(res->verdict));
	write_str(w, "reason", quota_reason_name(res->reason));
	write_str(w, "action", res->action);
	write_str(w, "smtp_reply", reply_smtp_line(res->action, line, sizeof(line)));
	write_str(w, "match", service_match_name(res->match));
	jsonw_key(w, "mailbox");
	if (res->decider >= 0)
		write_target(w, &res->targets[res->decider]);
	else
		jsonw_null(w);
	if (res->match == STORE_MATCH_ALIAS || res->match == STORE_MATCH_CATCHALL) {
		jsonw_key(w, "targets");
		jsonw_array(w);
		for (unsigned i = 0; i < res->ntargets; i++)
			write_target(w, &res->targets[i]);
		jsonw_end_array(w);
		jsonw_key(w, "targets_truncated");
		jsonw_bool(w, res->truncated);
	}
	jsonw_end_object(w);
}

/*
 * Run one check and write its JSON object; *why_r is set for an invalid address (400, nothing
 * written), 503 means the store cannot answer and 403 that a token bound to one mailbox asked
 * about another address (nothing written). Else 200.
 */
static unsigned check_one(struct http_server *srv, const struct http_request *req, struct jsonw *w,
                          const char *rcpt, uint64_t size, const char **why_r)
{
	static _Thread_local struct check_result res;
	if (!utf8_valid(rcpt, strlen(rcpt)) ||
	    service_check(srv->svc, rcpt, strlen(rcpt), size, &res, why_r) < 0) {
		if (!utf8_valid(rcpt, strlen(rcpt)))
			*why_r = "address is not valid UTF-8";
		return req->authenticated && req->tok.scope == TOKEN_SELF ? 403 : 400;
	}
	if (res.verdict == QUOTA_TEMPFAIL)
		return 503;
	/* a self token may ask about its own mailbox only, and learns nothing of others */
	if (req->authenticated && req->tok.scope == TOKEN_SELF &&
	    (res.match != STORE_MATCH_MAILBOX || res.decider < 0 ||
	     res.targets[res.decider].mailbox.id != req->tok.mailbox_id))
		return 403;
	write_result(w, rcpt, size, &res);
	return 200;
}

static struct http_reply text_reply(unsigned status, struct buf *text)
{
	struct http_reply r = { .status = status, .text = text };
	return r;
}

/* Start a streamed JSON response body. */
static struct buf *text_begin(struct jsonw *w)
{
	struct buf *text = xmalloc(sizeof(*text));
	buf_init(text, HTTP_RESPONSE_MAX);
	jsonw_init(w, text);
	return text;
}

/* 200 with the written body, or 500 (body freed) if it outgrew HTTP_RESPONSE_MAX. */
static struct http_reply text_end(struct jsonw *w, struct buf *text)
{
	if (jsonw_finish(w) < 0) {
		buf_free(text);
		free(text);
		return error_reply(500, "internal", "response too large");
	}
	return text_reply(200, text);
}

struct http_reply http_store_unavailable(void)
{
	struct http_reply r = error_reply(503, "store_unavailable",
	                                  "quota data is temporarily unavailable; retry later");
	r.retry_after = HTTP_RETRY_AFTER;
	return r;
}

static struct http_reply handle_check_get(struct http_server *srv, struct MHD_Connection *conn,
                                          struct http_request *req)
{
	(void)req;
	const char *rcpt = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "recipient");
	const char *size_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "size");
	uint64_t size = 0;
	if (rcpt == NULL || rcpt[0] == '\0')
		return error_reply(400, "missing_parameter", "recipient is required");
	if (strlen(rcpt) > HTTP_PARAM_VALUE_MAX)
		return error_reply(400, "invalid_address", "recipient is too long");
	if (size_s != NULL && strnum_u64(size_s, strlen(size_s), INT64_MAX, &size) < 0)
		return error_reply(400, "invalid_parameter",
		                   "size must be a non-negative integer of at most 2^63-1");
	struct buf *out = xmalloc(sizeof(*out));
	struct jsonw w;
	const char *why;
	buf_init(out, HTTP_RESPONSE_MAX);
	jsonw_init(&w, out);
	unsigned status = check_one(srv, req, &w, rcpt, size, &why);
	if (status != 200 || jsonw_finish(&w) < 0) {
		buf_free(out);
		free(out);
		return status == 403   ? http_forbidden()
		       : status == 400 ? error_reply(400, "invalid_address", why)
		       : status == 503 ? http_store_unavailable()
		                       : error_reply(500, "internal", "response too large");
	}
	return text_reply(200, out);
}

/* Decode a JSON object body (Content-Type checked, duplicate keys refused); 0 with *doc_r
   (caller decrefs), or -1 with the error reply. */
int http_parse_body(struct MHD_Connection *conn, struct http_request *req, json_t **doc_r,
                    struct http_reply *err_r)
{
	const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
	if (ctype != NULL && strncasecmp(ctype, "application/json", 16) != 0) {
		*err_r = error_reply(415, "unsupported_media_type",
		                     "the body must be application/json");
		return -1;
	}
	json_error_t jerr;
	json_t *doc = json_loadb(req->body.data != NULL ? req->body.data : "", req->body.len,
	                         JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		char msg[256];
		snprintf(msg, sizeof(msg), "invalid JSON at line %d column %d: %s", jerr.line,
		         jerr.column, jerr.text);
		*err_r = error_reply(400, "invalid_json", msg);
		return -1;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		*err_r = error_reply(400, "invalid_body", "the body must be a JSON object");
		return -1;
	}
	*doc_r = doc;
	return 0;
}

static struct http_reply handle_check_post(struct http_server *srv, struct MHD_Connection *conn,
                                           struct http_request *req)
{
	json_t *doc;
	struct http_reply err;
	if (http_parse_body(conn, req, &doc, &err) < 0)
		return err;
	struct http_reply r;
	const char *key;
	json_t *val;
	json_t *rcpts = NULL, *size_j = NULL;
	json_object_foreach(doc, key, val)
	{
		if (strcmp(key, "recipients") == 0)
			rcpts = val;
		else if (strcmp(key, "size") == 0)
			size_j = val;
		else {
			r = error_reply(400, "unknown_field",
			                "unknown field; allowed: recipients, size");
			goto out;
		}
	}
	uint64_t size = 0;
	if (size_j != NULL) {
		if (!json_is_integer(size_j) || json_integer_value(size_j) < 0) {
			r = error_reply(400, "invalid_field",
			                "size must be a non-negative integer");
			goto out;
		}
		size = (uint64_t)json_integer_value(size_j);
	}
	if (!json_is_array(rcpts) || json_array_size(rcpts) == 0) {
		r = error_reply(400, "invalid_field",
		                "recipients must be a non-empty array of strings");
		goto out;
	}
	if (json_array_size(rcpts) > HTTP_BATCH_MAX) {
		r = error_reply(413, "too_many_recipients",
		                "at most 1000 recipients per request (HTTP_BATCH_MAX)");
		goto out;
	}
	size_t i;
	json_array_foreach(rcpts, i, val)
	{
		if (!json_is_string(val)) {
			r = error_reply(400, "invalid_field", "every recipient must be a string");
			goto out;
		}
	}
	struct jsonw w;
	struct buf *text = text_begin(&w);
	jsonw_object(&w);
	write_u64(&w, "size", size);
	jsonw_key(&w, "results");
	jsonw_array(&w);
	json_array_foreach(rcpts, i, val)
	{
		const char *rcpt = json_string_value(val), *why;
		unsigned status = check_one(srv, req, &w, rcpt, size, &why);
		if (status == 503 || status == 403) {
			buf_free(text);
			free(text);
			r = status == 503 ? http_store_unavailable() : http_forbidden();
			goto out;
		}
		if (status == 400) {
			jsonw_object(&w);
			write_str(&w, "recipient", rcpt);
			write_str(&w, "error", "invalid_address");
			write_str(&w, "message", why);
			jsonw_end_object(&w);
		}
	}
	jsonw_end_array(&w);
	jsonw_end_object(&w);
	r = text_end(&w, text);
out:
	json_decref(doc);
	return r;
}

static struct http_reply handle_health(struct http_server *srv, struct MHD_Connection *conn,
                                       struct http_request *req)
{
	(void)conn;
	(void)req;
	struct store_status st;
	store_status(srv->svc->store, &st);
	/* serving from a loaded view is fine even with the database away: degraded, not down */
	const char *status = !st.loaded ? "unavailable" : st.db_up ? "ok" : "degraded";
	struct http_reply r = {
		.status = st.loaded ? 200 : 503,
		.body = json_pack(
		        "{s:s, s:s, s:{s:b, s:f, s:I, s:I, s:I, s:I, s:I, s:f}}", "status", status,
		        "database", st.db_up ? "up" : "down", "view", "loaded", st.loaded,
		        "age_seconds", st.age_seconds, "domains", (json_int_t)st.domains,
		        "mailboxes", (json_int_t)st.mailboxes, "aliases", (json_int_t)st.aliases,
		        "full_loads", (json_int_t)st.full_loads, "notifications",
		        (json_int_t)st.notifications, "last_load_seconds", st.last_load_seconds),
	};
	return r;
}

/* ---- usage ---- */

static const char *const resolve_codes[] = {
	[SERVICE_INVALID_ADDRESS] = "invalid_address",
	[SERVICE_UNKNOWN_RECIPIENT] = "unknown_recipient",
	[SERVICE_AMBIGUOUS_RECIPIENT] = "ambiguous_recipient",
	[SERVICE_NOT_A_MAILBOX] = "not_a_mailbox",
	[SERVICE_STORE_UNAVAILABLE] = "store_unavailable",
};

struct http_reply http_db_unavailable(const char *why)
{
	struct http_reply r = error_reply(503, "database_unavailable", why);
	r.retry_after = HTTP_RETRY_AFTER;
	return r;
}

/* A signed integer field within +-2^62; 0 when absent and optional. */
static int get_delta(json_t *obj, const char *name, bool required, int64_t *out)
{
	json_t *v = json_object_get(obj, name);
	if (v == NULL) {
		*out = 0;
		return required ? -1 : 0;
	}
	if (!json_is_integer(v))
		return -1;
	json_int_t x = json_integer_value(v);
	if (x > USAGE_DELTA_LIMIT || x < -USAGE_DELTA_LIMIT)
		return -1;
	*out = (int64_t)x;
	return 0;
}

/* Validation of one report object; the message names the first problem. */
static const char *check_report(json_t *rep, const char **addr_r, bool *exact_r)
{
	const char *key;
	json_t *val;
	if (!json_is_object(rep))
		return "each report must be an object";
	json_object_foreach(rep, key, val)
	{
		if (strcmp(key, "recipient") != 0 && strcmp(key, "mailbox") != 0 &&
		    strcmp(key, "bytes") != 0 && strcmp(key, "messages") != 0 &&
		    strcmp(key, "key") != 0 && strcmp(key, "occurred_at") != 0)
			return "unknown field (allowed: recipient or mailbox, bytes, messages, "
			       "key, "
			       "occurred_at)";
	}
	json_t *rc = json_object_get(rep, "recipient"), *mb = json_object_get(rep, "mailbox");
	if ((rc == NULL) == (mb == NULL))
		return "give exactly one of recipient and mailbox";
	if (!json_is_string(rc != NULL ? rc : mb))
		return "recipient/mailbox must be a string";
	*addr_r = json_string_value(rc != NULL ? rc : mb);
	*exact_r = mb != NULL;
	json_t *k = json_object_get(rep, "key");
	if (!json_is_string(k) || !usage_key_valid(json_string_value(k)))
		return "key must be 1 to 200 printable ASCII characters without spaces";
	json_t *t = json_object_get(rep, "occurred_at");
	if (t != NULL && (!json_is_string(t) || !usage_time_valid(json_string_value(t))))
		return "occurred_at must be an RFC 3339 time such as 2026-11-22T10:00:00Z";
	return NULL;
}

static struct http_reply handle_usage_post(struct http_server *srv, struct MHD_Connection *conn,
                                           struct http_request *req)
{
	json_t *doc, *reps;
	struct http_reply r;
	if (http_parse_body(conn, req, &doc, &r) < 0)
		return r;
	reps = json_object_get(doc, "reports");
	if (json_object_size(doc) != 1 || !json_is_array(reps) || json_array_size(reps) == 0) {
		json_decref(doc);
		return error_reply(
		        400, "invalid_body",
		        "the body must be {\"reports\": [...]} with at least one report");
	}
	size_t n = json_array_size(reps);
	if (n > USAGE_BATCH_MAX) {
		json_decref(doc);
		return error_reply(413, "too_many_reports", "at most 1000 reports per request");
	}
	struct usage_report *todo = xcalloc(n, sizeof(*todo));
	struct usage_result *res = xcalloc(n, sizeof(*res));
	const char **errs = xcalloc(n, sizeof(*errs)), **whys = xcalloc(n, sizeof(*whys));
	char(*mbox)[ADDRESS_MAX + 1] = xcalloc(n, sizeof(*mbox));
	size_t *slot = xcalloc(n, sizeof(*slot));
	size_t ntodo = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *rep = json_array_get(reps, i);
		const char *addr, *bad;
		bool exact;
		int64_t bytes, msgs;
		if ((bad = check_report(rep, &addr, &exact)) == NULL &&
		    (get_delta(rep, "bytes", true, &bytes) < 0 ||
		     get_delta(rep, "messages", false, &msgs) < 0))
			bad = "bytes (required) and messages must be integers within +-2^62";
		if (bad != NULL) {
			char msg[200];
			snprintf(msg, sizeof(msg), "report %zu: %s", i, bad);
			r = error_reply(400, "invalid_report", msg);
			goto out;
		}
		struct store_mailbox mb;
		enum service_resolve_error e;
		if (service_resolve_mailbox(srv->svc, addr, strlen(addr), exact, &mb, &e,
		                            &whys[i]) < 0) {
			if (e == SERVICE_STORE_UNAVAILABLE) {
				r = http_store_unavailable();
				goto out;
			}
			errs[i] = resolve_codes[e];
			continue;
		}
		struct usage_report *u = &todo[ntodo];
		u->mailbox_id = mb.id;
		u->bytes = bytes;
		u->messages = msgs;
		(void)!str_copy(u->key, json_string_value(json_object_get(rep, "key")),
		                sizeof(u->key)); /* validated length */
		json_t *t = json_object_get(rep, "occurred_at");
		(void)!str_copy(u->occurred_at, t ? json_string_value(t) : "",
		                sizeof(u->occurred_at));
		(void)!str_copy(mbox[i], mb.address, sizeof(mbox[i]));
		slot[i] = ntodo++;
	}
	const char *why;
	static struct usage_result none;
	struct usage_result *results = ntodo > 0 ? res : &none;
	if (ntodo > 0 && usage_apply(srv->svc->usage, todo, ntodo, results, &why) < 0) {
		r = http_db_unavailable(why);
		goto out;
	}
	static const char *const statuses[] = { "applied", "superseded", "conflict",
		                                "unknown_recipient" };
	struct jsonw w;
	struct buf *text = text_begin(&w);
	jsonw_object(&w);
	jsonw_key(&w, "results");
	jsonw_array(&w);
	for (size_t i = 0; i < n; i++) {
		json_t *rep = json_array_get(reps, i);
		jsonw_object(&w);
		write_str(&w, "key", json_string_value(json_object_get(rep, "key")));
		if (errs[i] != NULL) {
			write_str(&w, "error", errs[i]);
			write_str(&w, "message", whys[i]);
		} else {
			const struct usage_result *u = &res[slot[i]];
			write_str(&w, "mailbox", mbox[i]);
			if (u->status == USAGE_CONFLICT || u->status == USAGE_UNKNOWN_MAILBOX) {
				write_str(&w, "error",
				          u->status == USAGE_CONFLICT ? "key_conflict"
				                                      : "unknown_recipient");
				write_str(&w, "message",
				          u->status == USAGE_CONFLICT
				                  ? "this key was used before with other"
				                    " content"
				                  : "the mailbox no longer exists");
			} else {
				write_str(&w, "status", statuses[u->status]);
				jsonw_key(&w, "duplicate");
				jsonw_bool(&w, u->duplicate);
				jsonw_key(&w, "clamped");
				jsonw_bool(&w, u->clamped);
				jsonw_key(&w, "usage");
				jsonw_object(&w);
				write_u64(&w, "bytes", u->used_bytes);
				write_u64(&w, "messages", u->used_messages);
				jsonw_end_object(&w);
			}
		}
		jsonw_end_object(&w);
	}
	jsonw_end_array(&w);
	jsonw_end_object(&w);
	r = text_end(&w, text);
out:
	free(todo);
	free(res);
	free(errs);
	free(whys);
	free(mbox);
	free(slot);
	json_decref(doc);
	return r;
}

/* The mailbox named by the route's {} segment, or an error reply. */
static int path_mailbox(struct http_server *srv, struct http_request *req, struct store_mailbox *mb,
                        struct http_reply *err_r)
{
	enum service_resolve_error e;
	const char *why;
	if (service_resolve_mailbox(srv->svc, req->param, strlen(req->param), true, mb, &e, &why) ==
	    0)
		return 0;
	switch (e) {
	case SERVICE_STORE_UNAVAILABLE:
		*err_r = http_store_unavailable();
		break;
	case SERVICE_INVALID_ADDRESS:
		*err_r = error_reply(400, "invalid_address", why);
		break;
	default:
		*err_r = error_reply(404, "not_found", "no such mailbox");
		break;
	}
	return -1;
}

static struct http_reply handle_usage_get(struct http_server *srv, struct MHD_Connection *conn,
                                          struct http_request *req)
{
	(void)conn;
	struct store_mailbox mb;
	struct http_reply r;
	if (!http_self_allows(srv, req, req->param))
		return http_forbidden();
	if (path_mailbox(srv, req, &mb, &r) < 0)
		return r;
	struct jsonw w;
	struct buf *text = text_begin(&w);
	write_mailbox(&w, &mb, NULL);
	return text_end(&w, text);
}

/*
 * Does url match pattern, where "{}" stands for one non-empty part (copied to param)? The part
 * runs to the pattern's literal tail, so it may hold '/' (a local part may). *score_r is the
 * pattern's literal length: among several matching patterns the most specific one wins.
 */
static bool route_match(const char *pattern, const char *url, char *param, size_t size,
                        size_t *score_r)
{
	const char *hole = strstr(pattern, "{}");
	*score_r = strlen(pattern);
	if (hole == NULL)
		return strcmp(pattern, url) == 0;
	size_t pre = (size_t)(hole - pattern), ulen = strlen(url);
	const char *post = hole + 2;
	size_t postlen = strlen(post);
	*score_r -= 2;
	if (ulen < pre + postlen + 1 || strncmp(url, pattern, pre) != 0 ||
	    strcmp(url + ulen - postlen, post) != 0)
		return false;
	size_t seglen = ulen - pre - postlen;
	if (seglen >= size) {
		param[0] = '\0'; /* matched, but too long to use: the caller answers 400 */
		return true;
	}
	memcpy(param, url + pre, seglen);
	param[seglen] = '\0';
	return true;
}

/* The most specific pattern matching url; NULL if none. */
static const char *best_pattern(const char *url, char *param, size_t size)
{
	const char *best = NULL;
	size_t best_score = 0, score;
	for (size_t i = 0; i < NROUTES; i++)
		if (route_match(routes[i].path, url, param, size, &score) &&
		    (best == NULL || score > best_score)) {
			best = routes[i].path;
			best_score = score;
		}
	if (best != NULL)
		(void)route_match(best, url, param, size, &score);
	return best;
}

static struct http_reply unauthorized(void)
{
	struct http_reply r = error_reply(401, "unauthorized", "a valid bearer token is required");
	r.www_authenticate = true;
	return r;
}

/*
 * Authenticate the request's bearer token against the view. Every failure looks the same to
 * the caller (401, one message, about the same time: a hash is compared even for an unknown
 * id); the reason goes to the debug log only.
 */
static int authenticate(struct http_server *srv, struct MHD_Connection *conn,
                        struct http_request *req, struct http_reply *err_r)
{
	static const uint8_t dummy[TOKEN_HASH_LEN];
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	const char *why = NULL;
	int64_t id = 0;
	struct store_token tok;
	uint8_t hash[TOKEN_HASH_LEN];
	if (h == NULL) {
		why = "missing";
		goto fail;
	}
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		why = "not_bearer";
		goto fail;
	}
	h += 7;
	h += strspn(h, " ");
	size_t len = strnlen(h, TOKEN_TEXT_MAX + 1);
	if (len > TOKEN_TEXT_MAX || token_parse(h, len, &id) < 0) {
		why = "malformed";
		goto fail;
	}
	token_hash(h, len, hash);
	int rc = store_token(srv->svc->store, id, &tok);
	if (rc < 0) {
		*err_r = http_store_unavailable();
		return -1;
	}
	bool match = token_hash_equal(hash, rc == 0 ? tok.hash : dummy);
	if (rc != 0 || !match) {
		why = rc != 0 ? "unknown_or_revoked" : "wrong_secret";
		goto fail;
	}
	if (tok.expires != 0 && (int64_t)time(NULL) >= tok.expires) {
		why = "expired";
		goto fail;
	}
	req->authenticated = true;
	req->tok = tok;
	return 0;
fail:
	log_debug("http event=auth_failed reason=%s token_id=%lld", why, (long long)id);
	*err_r = unauthorized();
	return -1;
}

bool http_self_allows(struct http_server *srv, struct http_request *req, const char *address)
{
	if (!req->authenticated || req->tok.scope != TOKEN_SELF)
		return true;
	struct store_mailbox mb;
	enum service_resolve_error e;
	const char *why;
	return service_resolve_mailbox(srv->svc, address, strlen(address), true, &mb, &e, &why) ==
	               0 &&
	       mb.id == req->tok.mailbox_id;
}

static struct http_reply dispatch(struct http_server *srv, struct MHD_Connection *conn,
                                  const char *method, const char *url, struct http_request *req)
{
	const char *pattern = best_pattern(url, req->param, sizeof(req->param));
	if (pattern == NULL)
		return error_reply(404, "not_found", "no such endpoint");
	if (strstr(pattern, "{}") != NULL && req->param[0] == '\0')
		return error_reply(
		        400, "invalid_parameter",
		        "a path segment is longer than 1024 bytes (HTTP_PARAM_VALUE_MAX)");
	const struct route *rt = NULL;
	for (size_t i = 0; i < NROUTES; i++) {
		if (strcmp(routes[i].path, pattern) != 0)
			continue;
		if (strcmp(routes[i].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
			rt = &routes[i];
			break;
		}
		size_t ml = strlen(req->allow);
		snprintf(req->allow + ml, sizeof(req->allow) - ml, "%s%s", ml ? ", " : "",
		         routes[i].method);
	}
	if (rt == NULL) {
		struct http_reply r = error_reply(405, "method_not_allowed",
		                                  "method not allowed for this endpoint");
		r.allow = req->allow;
		return r;
	}
	if (rt->scopes != S_NONE) {
		struct http_reply err;
		if (authenticate(srv, conn, req, &err) < 0)
			return err;
		if ((rt->scopes & (1u << req->tok.scope)) == 0)
			return http_forbidden();
	}
	req->arg = rt->arg;
	return rt->handler(srv, conn, req);
}

/* The request's Origin if http_cors_origins allows it, else NULL. */
static const char *cors_origin(struct http_server *srv, struct MHD_Connection *conn)
{
	const char *o = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	const char *list = srv->cfg->http_cors_origins;
	if (o == NULL || list[0] == '\0')
		return NULL;
	size_t olen = strlen(o);
	for (const char *p = list; *p != '\0';) {
		size_t n = strcspn(p, " ,\t");
		if ((n == 1 && p[0] == '*') || (n == olen && strncasecmp(p, o, n) == 0))
			return o;
		p += n;
		p += strspn(p, " ,\t");
	}
	return NULL;
}

/* A CORS preflight: the methods the path allows, with the headers a dashboard sends. */
static struct http_reply preflight(struct http_server *srv, struct MHD_Connection *conn,
                                   const char *url, struct http_request *req)
{
	(void)srv;
	(void)conn;
	const char *pattern = best_pattern(url, req->param, sizeof(req->param));
	if (pattern == NULL)
		return error_reply(404, "not_found", "no such endpoint");
	for (size_t i = 0; i < NROUTES; i++) {
		if (strcmp(routes[i].path, pattern) != 0)
			continue;
		size_t ml = strlen(req->allow);
		snprintf(req->allow + ml, sizeof(req->allow) - ml, "%s%s", ml ? ", " : "",
		         routes[i].method);
	}
	struct http_reply r = { .status = 204, .allow = req->allow };
	return r;
}

static enum MHD_Result send_reply(struct http_server *srv, struct MHD_Connection *conn,
                                  struct http_reply *r, bool is_preflight)
{
	char *text = NULL;
	size_t len = 0;
	struct MHD_Response *resp = r->stream;
	if (resp != NULL) {
		MHD_add_response_header(resp, "Content-Type", r->content_type);
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	} else if (r->status == 204 || r->status == 304) {
		json_decref(r->body);
		free(r->raw);
		text = NULL;
		len = 0;
	} else if (r->text != NULL) {
		/* hand the buffer's storage to MHD: a trailing newline for readable curl output */
		(void)!buf_append(r->text, "\n", 1); /* at the limit the JSON goes without it */
		len = r->text->len;
		text = r->text->data;
		free(r->text);
		r->text = NULL;
	} else {
		text = r->raw != NULL    ? r->raw
		       : r->body != NULL ? json_dumps(r->body, JSON_COMPACT)
		                         : NULL;
		json_decref(r->body);
		if (text == NULL) {
			text = xstrdup(
			        "{\"error\":\"internal\",\"message\":\"cannot encode response\"}");
			r->status = 500;
		}
		len = strlen(text);
		/* a trailing newline makes curl output readable; JSON parsers ignore it */
		text = xrealloc(text, len + 2);
		text[len++] = '\n';
		text[len] = '\0';
	}
	if (resp == NULL)
		resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		free(r->location);
		return MHD_NO;
	}
	if (len > 0) {
		MHD_add_response_header(resp, "Content-Type", "application/json");
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	}
	if (r->allow != NULL && !is_preflight)
		MHD_add_response_header(resp, "Allow", r->allow);
	if (r->retry_after != 0) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%u", r->retry_after);
		MHD_add_response_header(resp, "Retry-After", ra);
	}
	if (r->etag[0] != '\0') {
		char et[sizeof(r->etag) + 2];
		snprintf(et, sizeof(et), "\"%s\"", r->etag);
		MHD_add_response_header(resp, "ETag", et);
	}
	if (r->location != NULL) {
		MHD_add_response_header(resp, "Location", r->location);
		free(r->location);
		r->location = NULL;
	}
	if (r->www_authenticate)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"mailquota\"");
	const char *origin = cors_origin(srv, conn);
	if (origin != NULL) {
		MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
		MHD_add_response_header(resp, "Vary", "Origin");
		if (is_preflight) {
			MHD_add_response_header(resp, "Access-Control-Allow-Methods",
			                        r->allow != NULL ? r->allow : "");
			MHD_add_response_header(resp, "Access-Control-Allow-Headers",
			                        "Authorization, Content-Type, If-Match, "
			                        "If-None-Match");
			MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
		} else {
			MHD_add_response_header(resp, "Access-Control-Expose-Headers",
			                        "ETag, Location, Retry-After");
		}
	}
	enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
	struct http_server *srv = cls;
	struct http_request *req = *req_cls;
	(void)version;
	if (req == NULL) {
		req = xcalloc(1, sizeof(*req));
		/* imports may be large; every other body is small */
		size_t limit = strcmp(url, "/v1/import") == 0 ? BULK_BODY_MAX : HTTP_BODY_MAX;
		buf_init(&req->body, limit);
		*req_cls = req;
		const char *cl =
		        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		uint64_t clen;
		if (cl != NULL && strnum_u64(cl, strlen(cl), UINT64_MAX, &clen) == 0 &&
		    clen > limit) {
			/* refuse before reading the body; this closes the connection, as it
			   should for a body we will not read */
			struct http_reply r = error_reply(
			        413, "body_too_large",
			        limit == HTTP_BODY_MAX ? "request body exceeds 512 KiB"
			                               : "an import exceeds 32 MiB: split it");
			req->answered = true;
			return send_reply(srv, conn, &r, false);
		}
		return MHD_YES; /* otherwise never answer on the first call: keep-alive */
	}
	if (*upload_data_size != 0) {
		if (!req->too_large && buf_append(&req->body, upload_data, *upload_data_size) < 0) {
			req->too_large = true;
			buf_free(&req->body);
		}
		if (req->too_large) {
			/* a chunked body with no announced length: discard it to answer 413 at its
			   end, but close the connection outright past HTTP_DRAIN_MAX */
			req->drained += *upload_data_size;
			if (req->drained > HTTP_DRAIN_MAX)
				return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->answered)
		return MHD_YES;
	req->answered = true;
	struct http_reply r;
	bool is_preflight = strcmp(method, "OPTIONS") == 0;
	if (req->too_large)
		r = error_reply(413, "body_too_large", "request body exceeds 512 KiB");
	else if (is_preflight)
		r = preflight(srv, conn, url, req);
	else
		r = dispatch(srv, conn, method, url, req);
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char u[128];
		log_debug("http method=%s url=\"%s\" status=%u token=%lld", method,
		          str_sanitize(u, sizeof(u), url, strlen(url), 100), r.status,
		          req->authenticated ? (long long)req->tok.id : 0LL);
	}
	return send_reply(srv, conn, &r, is_preflight);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct http_request *req = *req_cls;
	if (req == NULL)
		return;
	buf_free(&req->body);
	free(req);
	*req_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_info("event=http_library_message message=\"%s\"", msg);
}

struct http_server *http_server_start(const struct config *cfg, const struct service *svc,
                                      char *err, size_t errsize)
{
	char *host, *port;
	struct addrinfo hints, *ai = NULL;
	if (config_split_hostport(cfg->http_listen, &host, &port) < 0) {
		snprintf(err, errsize, "http_listen: bad address %s", cfg->http_listen);
		return NULL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int gai = getaddrinfo(host, port, &hints, &ai);
	free(host);
	free(port);
	if (gai != 0) {
		snprintf(err, errsize, "http_listen %s: %s", cfg->http_listen, gai_strerror(gai));
		return NULL;
	}
	struct http_server *srv = xcalloc(1, sizeof(*srv));
	srv->cfg = cfg;
	srv->svc = svc;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* the pool option is given only for more than one thread: MHD warns about 0 and 1 */
	struct MHD_OptionItem pool[] = {
		{ MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)cfg->http_threads, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	if (cfg->http_threads <= 1)
		pool[0].option = MHD_OPTION_END;
	/* the logger goes first so that even option warnings reach our log */
	srv->mhd = MHD_start_daemon(
	        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
	        (unsigned)cfg->http_max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
	        (unsigned)cfg->http_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	        (size_t)HTTP_MEMORY_LIMIT, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
	        MHD_OPTION_ARRAY, pool, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (srv->mhd == NULL) {
		snprintf(err, errsize, "cannot start HTTP server on %s (address in use?)",
		         cfg->http_listen);
		free(srv);
		return NULL;
	}
	return srv;
}

void http_server_stop(struct http_server **srvp)
{
	struct http_server *srv = *srvp;
	if (srv == NULL)
		return;
	MHD_stop_daemon(srv->mhd);
	free(srv);
	*srvp = NULL;
}
