/*
 * http_recalc: POST /v1/usage/recalculations[?dry_run=true]. The body (recalc.h) is checked as
 * a whole (400, or 413 past RECALC_ITEMS_MAX items), then each item by itself: an item that is
 * malformed (invalid_item) or names no valid address (invalid_address) is answered for itself
 * and the rest go to usage_recalc() in one transaction, which answers each unknown mailbox
 * (unknown_mailbox). Results come back one per item in request order, with counts. It must never
 * pass an item to the database that recalc.c and resource_key_parse() have not accepted, and
 * never answer 200 for a batch that was not committed (or, in a dry run, rolled back whole).
 */
#include "http_recalc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "jsonw.h"
#include "log.h"
#include "recalc.h"
#include "resource.h"
#include "usage.h"
#include "xalloc.h"

_Static_assert(RECALC_BODY_MAX == HTTP_BODY_MAX, "the route's body limit is recalc.h's");

static const char *const params[] = { "dry_run", NULL };

/* ?dry_run=true|false, and nothing else: 0 with *dry_run_r, or -1 with the reply. */
static int recalc_query(struct MHD_Connection *conn, bool *dry_run_r, struct http_reply *err_r)
{
	struct http_query q;
	http_query_collect(conn, &q);
	*dry_run_r = false;
	for (size_t i = 0; i < q.n; i++) {
		int yes = 0;
		bool known = false;
		for (size_t k = 0; params[k] != NULL; k++)
			known |= strcmp(params[k], q.p[i].name) == 0;
		if (!known || q.too_many || q.too_long) {
			*err_r = http_query_error(q.p[i].name, "is not a parameter here");
			return -1;
		}
		if (!http_query_bool(q.p[i].value, &yes)) {
			*err_r = http_query_error(q.p[i].name, "must be true or false");
			return -1;
		}
		*dry_run_r = yes == 1;
	}
	return 0;
}

/* What became of one item before the database: accepted (slot in the batch), or its error. */
struct verdict {
	const char *error; /* NULL: accepted */
	const char *field; /* with error: the member at fault, "" for none */
	const char *message;
	size_t slot; /* accepted: its index in the batch sent */
};

static void write_usage(struct jsonw *w, const struct usage_recalc_result *res)
{
	jsonw_key(w, "usage");
	jsonw_object(w);
	jsonw_key(w, "bytes");
	jsonw_u64(w, res->used_bytes);
	jsonw_key(w, "messages");
	jsonw_u64(w, res->used_messages);
	jsonw_end_object(w);
}

/* One result object: the item's mailbox (normalised when it was, else as given, else none),
   then its outcome. */
static void write_result(struct jsonw *w, json_t *item, const struct verdict *v,
                         const struct resource_key *key, const struct usage_recalc_result *res)
{
	jsonw_object(w);
	const char *given = json_string_value(json_object_get(item, "mailbox"));
	if (v->error == NULL || key->text[0] != '\0' || given != NULL) {
		jsonw_key(w, "mailbox");
		jsonw_string(w, key->text[0] != '\0' ? key->text : given);
	}
	const char *error = v->error, *message = v->message;
	if (error == NULL && res->status == USAGE_RECALC_UNKNOWN_MAILBOX) {
		error = "unknown_mailbox";
		message = "no such mailbox";
	}
	if (error != NULL) {
		jsonw_key(w, "error");
		jsonw_string(w, error);
		if (v->field != NULL && v->field[0] != '\0') {
			jsonw_key(w, "field");
			jsonw_string(w, v->field);
		}
		jsonw_key(w, "message");
		jsonw_string(w, message);
	} else {
		jsonw_key(w, "status");
		jsonw_string(w, "applied");
		jsonw_key(w, "changed");
		jsonw_bool(w, res->changed);
		write_usage(w, res);
	}
	jsonw_end_object(w);
}

/* The counts and the results, in request order. */
static struct http_reply answer(const struct recalc_batch *b, bool dry_run, const struct verdict *v,
                                const struct resource_key *keys,
                                const struct usage_recalc_result *res, size_t *applied_r,
                                size_t *changed_r)
{
	size_t n = json_array_size(b->items), applied = 0, changed = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].error != NULL || res[v[i].slot].status != USAGE_RECALC_APPLIED)
			continue;
		applied++;
		changed += res[v[i].slot].changed;
	}
	struct jsonw w;
	struct buf *text = http_text_begin(&w);
	jsonw_object(&w);
	jsonw_key(&w, "dry_run");
	jsonw_bool(&w, dry_run);
	jsonw_key(&w, "applied");
	jsonw_u64(&w, applied);
	jsonw_key(&w, "changed");
	jsonw_u64(&w, changed);
	jsonw_key(&w, "failed");
	jsonw_u64(&w, n - applied);
	jsonw_key(&w, "results");
	jsonw_array(&w);
	for (size_t i = 0; i < n; i++)
		write_result(&w, json_array_get(b->items, i), &v[i], &keys[i],
		             v[i].error == NULL ? &res[v[i].slot] : NULL);
	jsonw_end_array(&w);
	jsonw_end_object(&w);
	*applied_r = applied;
	*changed_r = changed;
	return http_text_end(&w, text);
}

struct http_reply http_recalc_post(struct http_server *srv, struct MHD_Connection *conn,
                                   struct http_request *req)
{
	bool dry_run;
	json_t *doc;
	struct http_reply r;
	if (recalc_query(conn, &dry_run, &r) < 0 || http_parse_body(conn, req, &doc, &r) < 0)
		return r;
	struct recalc_batch b;
	enum recalc_problem problem;
	const char *field, *why;
	if (recalc_check_batch(doc, &b, &problem, &field, &why) < 0) {
		r = problem == RECALC_TOO_MANY ? http_error(413, "too_many_items", why)
		    : problem == RECALC_INVALID_FIELD
		            ? http_error_field(400, "invalid_field", field, why)
		            : http_error(400, "invalid_body", why);
		json_decref(doc);
		return r;
	}
	size_t n = json_array_size(b.items), ntodo = 0;
	struct verdict *v = xcalloc(n, sizeof(*v));
	struct resource_key *keys = xcalloc(n, sizeof(*keys));
	struct usage_recalc *todo = xcalloc(n, sizeof(*todo));
	struct usage_recalc_result *res = xcalloc(n, sizeof(*res));
	for (size_t i = 0; i < n; i++) {
		struct recalc_item it;
		if (recalc_check_item(json_array_get(b.items, i), &it, &v[i].field, &v[i].message) <
		    0) {
			v[i].error = "invalid_item";
			continue;
		}
		if (resource_key_parse(RESOURCE_MAILBOX, it.mailbox, &srv->cfg->address_rules,
		                       &keys[i], &v[i].message) < 0) {
			keys[i].text[0] = '\0';
			v[i].error = "invalid_address";
			v[i].field = "mailbox";
			continue;
		}
		todo[ntodo] = (struct usage_recalc){
			.address = keys[i].text,
			.has_bytes = it.has_bytes,
			.has_messages = it.has_messages,
			.bytes = it.bytes,
			.messages = it.messages,
			.measured_at = it.measured_at != NULL ? it.measured_at : b.measured_at,
		};
		v[i].slot = ntodo++;
	}
	if (ntodo > 0 &&
	    usage_recalc(srv->usage, todo, ntodo, b.source, req->tok.id, dry_run, res, &why) < 0) {
		r = http_db_unavailable(why);
		goto out;
	}
	size_t applied, changed;
	r = answer(&b, dry_run, v, keys, res, &applied, &changed);
	log_info("http event=usage_recalculated token_id=%lld items=%zu applied=%zu changed=%zu "
	         "failed=%zu dry_run=%s",
	         (long long)req->tok.id, n, applied, changed, n - applied,
	         dry_run ? "true" : "false");
out:
	free(v);
	free(keys);
	free(todo);
	free(res);
	json_decref(doc);
	return r;
}
