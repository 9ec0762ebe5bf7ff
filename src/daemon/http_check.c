/*
 * http_check: the HTTP handlers that answer from the in-memory view (checks, health, a
 * mailbox's usage) and the usage report writer. Checks and reads never touch the database and
 * run on the threads that serve connections; POST /v1/usage runs on a worker (see the route
 * table in http_route.c). It must never answer a check from anything but service_check().
 */
#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http_internal.h"
#include "jsonw.h"
#include "metrics.h"
#include "reply.h"
#include "resource.h"
#include "strnum.h"
#include "usage.h"
#include "utf8.h"
#include "xalloc.h"

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

static void write_result(const struct http_server *srv, struct jsonw *w, const char *rcpt,
                         uint64_t size, const struct check_result *res)
{
	const struct reply_set *replies = &srv->cfg->replies;
	struct reply_line line;
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
	/* what each front end would answer: the policy socket's action, the MTA's SMTP line */
	write_str(w, "action", reply_policy_action(replies, res->verdict));
	write_str(w, "smtp_reply", reply_smtp(replies, res->verdict, &line));
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
		/* the rule that decided: the alias's own policy, else alias_policy */
		write_str(w, "alias_policy", service_policy_name(res->policy));
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
	uint64_t t0 = metrics_now();
	if (!utf8_valid(rcpt, strlen(rcpt)) ||
	    service_check(srv->svc, rcpt, strlen(rcpt), size, &res, why_r) < 0) {
		metrics_check(METRICS_HTTP, NULL, t0);
		if (!utf8_valid(rcpt, strlen(rcpt)))
			*why_r = "address is not valid UTF-8";
		return req->authenticated && req->tok.scope == TOKEN_SELF ? 403 : 400;
	}
	metrics_check(METRICS_HTTP, &res, t0);
	if (res.verdict == QUOTA_TEMPFAIL)
		return 503;
	/* a self token may ask about its own mailbox only, and learns nothing of others */
	if (req->authenticated && req->tok.scope == TOKEN_SELF &&
	    (res.match != STORE_MATCH_MAILBOX || res.decider < 0 ||
	     res.targets[res.decider].mailbox.id != req->tok.mailbox_id))
		return 403;
	write_result(srv, w, rcpt, size, &res);
	return 200;
}

struct buf *http_text_begin(struct jsonw *w)
{
	struct buf *text = xmalloc(sizeof(*text));
	buf_init(text, HTTP_RESPONSE_MAX);
	jsonw_init(w, text);
	return text;
}

struct http_reply http_text_end(struct jsonw *w, struct buf *text)
{
	if (jsonw_finish(w) < 0) {
		buf_free(text);
		free(text);
		return http_error(500, "internal", "response too large");
	}
	return http_reply_text(200, text);
}

int http_recipient_params(struct MHD_Connection *conn, const char **rcpt_r, uint64_t *size_r,
                          struct http_reply *err_r)
{
	const char *rcpt = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "recipient");
	const char *size_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "size");
	*size_r = 0;
	if (rcpt == NULL || rcpt[0] == '\0') {
		*err_r = http_error(400, "missing_parameter", "recipient is required");
		return -1;
	}
	if (strlen(rcpt) > HTTP_PARAM_VALUE_MAX) {
		*err_r = http_error(400, "invalid_address", "recipient is too long");
		return -1;
	}
	if (size_s != NULL && strnum_u64(size_s, strlen(size_s), INT64_MAX, size_r) < 0) {
		*err_r = http_error(400, "invalid_parameter",
		                    "size must be a non-negative integer of at most 2^63-1");
		return -1;
	}
	*rcpt_r = rcpt;
	return 0;
}

struct http_reply http_check_get(struct http_server *srv, struct MHD_Connection *conn,
                                 struct http_request *req)
{
	const char *rcpt;
	uint64_t size;
	struct http_reply err;
	if (http_recipient_params(conn, &rcpt, &size, &err) < 0)
		return err;
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
		       : status == 400 ? http_error(400, "invalid_address", why)
		       : status == 503 ? http_store_unavailable()
		                       : http_error(500, "internal", "response too large");
	}
	return http_reply_text(200, out);
}

struct http_reply http_check_post(struct http_server *srv, struct MHD_Connection *conn,
                                  struct http_request *req)
{
	json_t *doc;
	struct http_reply err;
	if (http_parse_body(conn, req, &doc, &err) < 0)
		return err;
	struct http_reply r;
	json_t *rcpts, *val;
	uint64_t size;
	struct resource_error e;
	if (resource_check_request(doc, HTTP_BATCH_MAX, &rcpts, &size, &e) < 0) {
		r = e.problem == RESOURCE_TOO_MANY
		            ? http_error(413, "too_many_recipients", e.reason)
		            : http_error(400, e.code, e.reason);
		goto out;
	}
	size_t i;
	struct jsonw w;
	struct buf *text = http_text_begin(&w);
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
	r = http_text_end(&w, text);
out:
	json_decref(doc);
	return r;
}

struct http_reply http_health(struct http_server *srv, struct MHD_Connection *conn,
                              struct http_request *req)
{
	(void)conn;
	(void)req;
	struct store_status st;
	store_status(srv->svc->store, &st);
	/* serving from a loaded view is fine even with the database away: degraded, not down;
	   past view_max_age its refusals turn into tempfails: stale */
	bool stale = st.loaded && st.age_seconds >= (double)srv->cfg->view_max_age;
	const char *status = !st.loaded ? "unavailable"
	                     : stale    ? "stale"
	                     : st.db_up ? "ok"
	                                : "degraded";
	return http_reply_json(
	        st.loaded ? 200 : 503,
	        json_pack("{s:s, s:s, s:{s:b, s:f, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:f}}",
	                  "status", status, "database", st.db_up ? "up" : "down", "view", "loaded",
	                  st.loaded, "age_seconds", st.age_seconds, "max_age_seconds",
	                  (json_int_t)srv->cfg->view_max_age, "stale", stale, "domains",
	                  (json_int_t)st.domains, "mailboxes", (json_int_t)st.mailboxes, "aliases",
	                  (json_int_t)st.aliases, "full_loads", (json_int_t)st.full_loads,
	                  "notifications", (json_int_t)st.notifications, "last_load_seconds",
	                  st.last_load_seconds));
}

/* ---- usage ---- */

static const char *const resolve_codes[] = {
	[SERVICE_INVALID_ADDRESS] = "invalid_address",
	[SERVICE_UNKNOWN_RECIPIENT] = "unknown_recipient",
	[SERVICE_AMBIGUOUS_RECIPIENT] = "ambiguous_recipient",
	[SERVICE_NOT_A_MAILBOX] = "not_a_mailbox",
	[SERVICE_STORE_UNAVAILABLE] = "store_unavailable",
};

struct http_reply http_usage_post(struct http_server *srv, struct MHD_Connection *conn,
                                  struct http_request *req)
{
	json_t *doc, *reps;
	struct http_reply r;
	if (http_parse_body(conn, req, &doc, &r) < 0)
		return r;
	reps = json_object_get(doc, "reports");
	if (json_object_size(doc) != 1 || !json_is_array(reps) || json_array_size(reps) == 0) {
		json_decref(doc);
		return http_error(400, "invalid_body",
		                  "the body must be {\"reports\": [...]} with at least one report");
	}
	size_t n = json_array_size(reps);
	if (n > USAGE_BATCH_MAX) {
		json_decref(doc);
		return http_error(413, "too_many_reports", "at most 1000 reports per request");
	}
	struct usage_report *todo = xcalloc(n, sizeof(*todo));
	struct usage_result *res = xcalloc(n, sizeof(*res));
	const char **errs = xcalloc(n, sizeof(*errs)), **whys = xcalloc(n, sizeof(*whys));
	char(*mbox)[ADDRESS_MAX + 1] = xcalloc(n, sizeof(*mbox));
	size_t *slot = xcalloc(n, sizeof(*slot));
	size_t ntodo = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *rep = json_array_get(reps, i);
		struct resource_report rr;
		const char *bad;
		if (resource_check_report(rep, &rr, &bad) < 0) {
			char msg[200];
			snprintf(msg, sizeof(msg), "report %zu: %s", i, bad);
			r = http_error(400, "invalid_report", msg);
			goto out;
		}
		struct store_mailbox mb;
		enum service_resolve_error e;
		if (service_resolve_mailbox(srv->svc, rr.address, strlen(rr.address), rr.exact, &mb,
		                            &e, &whys[i]) < 0) {
			if (e == SERVICE_STORE_UNAVAILABLE) {
				r = http_store_unavailable();
				goto out;
			}
			errs[i] = resolve_codes[e];
			continue;
		}
		struct usage_report *u = &todo[ntodo];
		u->mailbox_id = mb.id;
		u->bytes = rr.bytes;
		u->messages = rr.messages;
		/* resource_check_report() bounds both; a refusal here keeps that promise checked */
		if (str_copy(u->key, rr.key, sizeof(u->key)) < 0 ||
		    str_copy(u->occurred_at, rr.occurred_at != NULL ? rr.occurred_at : "",
		             sizeof(u->occurred_at)) < 0) {
			char msg[200];
			snprintf(msg, sizeof(msg), "report %zu: key or occurred_at is too long", i);
			r = http_error(400, "invalid_report", msg);
			goto out;
		}
		_Static_assert(sizeof(mbox[i]) == sizeof(mb.address), "mailbox address size");
		memcpy(mbox[i], mb.address, sizeof(mbox[i]));
		slot[i] = ntodo++;
	}
	const char *why;
	static struct usage_result none;
	struct usage_result *results = ntodo > 0 ? res : &none;
	if (ntodo > 0 && usage_apply(srv->usage, todo, ntodo, results, &why) < 0) {
		r = http_db_unavailable(why);
		goto out;
	}
	static const char *const statuses[] = { "applied", "superseded", "conflict",
		                                "unknown_recipient" };
	struct jsonw w;
	struct buf *text = http_text_begin(&w);
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
	r = http_text_end(&w, text);
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
		*err_r = http_error(400, "invalid_address", why);
		break;
	default:
		*err_r = http_error(404, "not_found", "no such mailbox");
		break;
	}
	return -1;
}

struct http_reply http_usage_get(struct http_server *srv, struct MHD_Connection *conn,
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
	struct buf *text = http_text_begin(&w);
	write_mailbox(&w, &mb, NULL);
	return http_text_end(&w, text);
}
