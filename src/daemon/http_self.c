/*
 * http_self: GET /v1/self, what a self-scoped token's holder may know about their own mailbox:
 * limits, usage, what remains, percentages, the largest message it can receive now and which
 * limit decides that, the domain's pool, and the quota warnings in force (the highest threshold
 * of each resource that fired and has not been re-armed: PostgreSQL decides them, the view
 * carries them); raw numbers for programs and *_text forms for people. Answered from the view
 * like a check, never from the database. It must never answer
 * for any mailbox but the token's own, and never show another mailbox's figures: the domain's
 * total appears only with a pool limit, which refuses this user's mail when the total reaches
 * it (without a limit the total would only tell what the others hold).
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"
#include "jsonw.h"
#include "quota.h"
#include "sizetext.h"

/* used as a percentage of limit in tenths, rounded down; a zero limit is full at any use. */
static uint64_t percent_tenths(uint64_t used, uint64_t limit)
{
	if (limit == 0)
		return 1000;
	unsigned __int128 t = (unsigned __int128)used * 1000 / limit;
	return t > UINT64_MAX ? UINT64_MAX : (uint64_t)t;
}

/* A count or a size for people: "7.5 MiB" or "1200"; "unlimited" for an unset limit. */
static void put_text(struct jsonw *w, bool has, uint64_t v, bool bytes)
{
	struct size_text t;
	char num[24];
	if (!has)
		jsonw_string(w, "unlimited");
	else if (bytes)
		jsonw_string(w, size_text(v, &t));
	else
		jsonw_string(w, (snprintf(num, sizeof(num), "%llu", (unsigned long long)v), num));
}

static void put_u64_or_null(struct jsonw *w, bool has, uint64_t v)
{
	if (has)
		jsonw_u64(w, v);
	else
		jsonw_null(w);
}

/* {"limit", "used", "remaining", "percent", and their *_text}: one limited amount. */
static void put_amount(struct jsonw *w, struct quota_limit limit, uint64_t used, bool bytes)
{
	uint64_t left = limit.has ? quota_remaining(limit, used) : 0;
	jsonw_object(w);
	jsonw_key(w, "limit");
	put_u64_or_null(w, limit.has, limit.value);
	jsonw_key(w, "used");
	jsonw_u64(w, used);
	jsonw_key(w, "remaining");
	put_u64_or_null(w, limit.has, left);
	jsonw_key(w, "percent");
	if (limit.has)
		jsonw_tenths(w, percent_tenths(used, limit.value));
	else
		jsonw_null(w);
	jsonw_key(w, "limit_text");
	put_text(w, limit.has, limit.value, bytes);
	jsonw_key(w, "used_text");
	put_text(w, true, used, bytes);
	jsonw_key(w, "remaining_text");
	put_text(w, limit.has, left, bytes);
	jsonw_end_object(w);
}

/* Longest warning text: "Message count reached " + the digits of UINT_MAX + " % of its limit",
   with room to spare. */
#define WARNING_TEXT_MAX 64

/* A warning level as the document shows it: {"level": 90, "text": "Storage reached 90 % of its
   limit"}, or null when no warning is in force (level 0). what names the resource. */
static void put_warning(struct jsonw *w, unsigned level, const char *what)
{
	if (level == 0) {
		jsonw_null(w);
		return;
	}
	char text[WARNING_TEXT_MAX];
	int n = snprintf(text, sizeof(text), "%s reached %u %% of its limit", what, level);
	if (n < 0 || (size_t)n >= sizeof(text))
		abort(); /* what is one of ours and level has at most 10 digits: our bug */
	jsonw_object(w);
	jsonw_key(w, "level");
	jsonw_u64(w, level);
	jsonw_key(w, "text");
	jsonw_string(w, text);
	jsonw_end_object(w);
}

/* Which limit decides the largest message, in the words of the API. */
static const char *limited_by(enum quota_reason r)
{
	switch (r) {
	case QUOTA_REASON_MAILBOX_MAX_SIZE:
		return "mailbox";
	case QUOTA_REASON_DOMAIN_MAX_SIZE:
		return "domain";
	case QUOTA_REASON_SYSTEM_MAX_SIZE:
		return "system";
	case QUOTA_REASON_STORAGE:
		return "storage";
	case QUOTA_REASON_MESSAGES:
		return "messages";
	case QUOTA_REASON_DOMAIN_POOL:
		return "domain_pool";
	case QUOTA_REASON_NONE:
		break;
	}
	return NULL;
}

struct http_reply http_self_get(struct http_server *srv, struct MHD_Connection *conn,
                                struct http_request *req)
{
	(void)conn;
	struct store_mailbox mb;
	int rc = store_mailbox_by_id(srv->svc->store, req->tok.mailbox_id, &mb);
	if (rc < 0)
		return http_store_unavailable();
	if (rc > 0)
		return http_error(404, "not_found", "this token's mailbox no longer exists");
	struct store_status st;
	store_status(srv->svc->store, &st);
	struct quota_input in;
	service_input(srv->cfg, &mb, 0, &in);
	enum quota_reason by;
	struct quota_limit largest = quota_largest(&in, &by);
	/* as of: when the view last matched PostgreSQL */
	time_t asof = time(NULL) - (time_t)st.age_seconds;
	struct tm tm;
	char when[32];
	gmtime_r(&asof, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	const char *at = strchr(mb.address, '@');

	struct jsonw w;
	struct buf *text = http_text_begin(&w);
	jsonw_object(&w);
	jsonw_key(&w, "address");
	jsonw_string(&w, mb.address);
	jsonw_key(&w, "enabled");
	jsonw_bool(&w, mb.enabled);
	jsonw_key(&w, "storage");
	put_amount(&w, mb.storage, mb.used_bytes, true);
	jsonw_key(&w, "messages");
	put_amount(&w, mb.messages, mb.used_messages, false);
	jsonw_key(&w, "warnings");
	jsonw_object(&w);
	jsonw_key(&w, "storage");
	put_warning(&w, mb.warn_storage, "Storage");
	jsonw_key(&w, "messages");
	put_warning(&w, mb.warn_messages, "Message count");
	jsonw_end_object(&w);
	jsonw_key(&w, "max_message_size");
	jsonw_object(&w);
	jsonw_key(&w, "bytes");
	put_u64_or_null(&w, largest.has, largest.value);
	jsonw_key(&w, "text");
	put_text(&w, largest.has, largest.value, true);
	jsonw_key(&w, "limited_by");
	jsonw_string(&w, limited_by(by));
	jsonw_end_object(&w);
	jsonw_key(&w, "domain");
	jsonw_object(&w);
	jsonw_key(&w, "name");
	jsonw_string(&w, at != NULL ? at + 1 : "");
	jsonw_key(&w, "pool");
	if (mb.domain_pool.has)
		put_amount(&w, mb.domain_pool, mb.domain_used_bytes, true);
	else
		jsonw_null(&w);
	jsonw_end_object(&w);
	jsonw_key(&w, "grace_percent");
	jsonw_u64(&w, in.grace_percent);
	jsonw_key(&w, "as_of");
	jsonw_string(&w, when);
	jsonw_end_object(&w);
	return http_text_end(&w, text);
}
