/*
 * http_precheck: GET/POST /v1/precheck, for webmail and submission servers asking before a
 * message is sent whether each recipient could take it now. It answers only what an SMTP RCPT
 * with SIZE= to this host would reveal: accept, mailbox_full, too_big (with the size that
 * fits), or unknown — which covers unknown addresses, other domains, disabled mailboxes and
 * invalid text alike — and never a usage figure or a limit but the message size limit. Like
 * RCPT, varying the size finds where a message stops fitting. Every token is rate-limited
 * (precheck_rate per second, bursts of precheck_burst; a recipient costs one), so a precheck
 * token cannot sweep addresses or sizes faster than RCPTs could. Answers
 * come from the view, as checks do; it must never wait on the database.
 */
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"
#include "jsonw.h"
#include "quota.h"
#include "ratelimit.h"
#include "utf8.h"
#include "xalloc.h"

#define PRECHECK_BUCKETS 4096 /* tokens with a bucket at once; beyond, the stalest is reused */

struct precheck_limiter {
	pthread_mutex_t lock;
	struct {
		int64_t id; /* 0: free */
		struct rate_bucket bucket;
	} slots[PRECHECK_BUCKETS];
};

struct precheck_limiter *precheck_limiter_new(void)
{
	struct precheck_limiter *l = xcalloc(1, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	return l;
}

void precheck_limiter_free(struct precheck_limiter **lp)
{
	if (*lp == NULL)
		return;
	pthread_mutex_destroy(&(*lp)->lock);
	free(*lp);
	*lp = NULL;
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Take n from token id's bucket: 0, or -1 with the seconds to wait in *retry_r (at least 1). */
static int take(struct http_server *srv, int64_t id, uint64_t n, unsigned *retry_r)
{
	struct precheck_limiter *l = srv->precheck;
	uint64_t now = now_ms(), retry_ms = 0;
	size_t start = (size_t)((uint64_t)id * 0x9e3779b97f4a7c15ULL >> 52) % PRECHECK_BUCKETS;
	pthread_mutex_lock(&l->lock);
	/* the token's own slot or a free one on its probe path, else the stalest slot */
	size_t slot = start;
	for (size_t i = 0; i < PRECHECK_BUCKETS; i++) {
		size_t k = (start + i) % PRECHECK_BUCKETS;
		if (l->slots[k].id == id || l->slots[k].id == 0) {
			slot = k;
			break;
		}
		if (l->slots[k].bucket.last_ms < l->slots[slot].bucket.last_ms)
			slot = k;
	}
	if (l->slots[slot].id != id) { /* a free slot, or the stalest token's: a full bucket */
		l->slots[slot].id = id;
		memset(&l->slots[slot].bucket, 0, sizeof(l->slots[slot].bucket));
	}
	int rc = rate_take(&l->slots[slot].bucket, now, srv->cfg->precheck_rate,
	                   srv->cfg->precheck_burst, n, &retry_ms);
	pthread_mutex_unlock(&l->lock);
	if (rc == 0)
		return 0;
	/* whole seconds, rounded up, at least 1 (n <= burst here: retry_ms is finite) */
	uint64_t s = (retry_ms + 999) / 1000;
	*retry_r = s < 1 ? 1 : s > 3600 ? 3600 : (unsigned)s;
	return -1;
}

static struct http_reply too_fast(unsigned retry)
{
	struct http_reply r =
	        http_error(429, "rate_limited", "too many prechecks for this token; retry later");
	r.retry_after = retry;
	return r;
}

/* One recipient's answer into w; 503 when the view cannot answer, else 200. */
static unsigned precheck_one(struct http_server *srv, struct jsonw *w, const char *rcpt,
                             uint64_t size)
{
	static _Thread_local struct check_result res;
	const char *why, *status;
	struct quota_limit max = { false, 0 };
	if (!utf8_valid(rcpt, strlen(rcpt)) ||
	    service_check(srv->svc, rcpt, strlen(rcpt), size, &res, &why) < 0) {
		status = "unknown"; /* what RCPT would say of text that is no address of ours */
	} else {
		switch (res.verdict) {
		case QUOTA_ACCEPT:
			status = "accept";
			break;
		case QUOTA_OVER_QUOTA:
			status = "mailbox_full";
			break;
		case QUOTA_TOO_BIG_MAILBOX:
		case QUOTA_TOO_BIG_SYSTEM:
			status = "too_big";
			/* what RCPT would accept under the alias's policy: the largest of the
			   targets' size limits (any), the smallest (all) */
			max = service_size_limit(srv->cfg, &res);
			break;
		case QUOTA_TEMPFAIL:
			return 503;
		case QUOTA_UNKNOWN:
		default:
			status = "unknown";
			break;
		}
	}
	jsonw_object(w);
	jsonw_key(w, "recipient");
	jsonw_string(w, utf8_valid(rcpt, strlen(rcpt)) ? rcpt : "");
	jsonw_key(w, "status");
	jsonw_string(w, status);
	if (max.has) {
		jsonw_key(w, "max_message_size");
		jsonw_u64(w, max.value);
	}
	jsonw_end_object(w);
	return 200;
}

/* {"size": N, "results": [...]} for recipients rcpts[n]. */
static struct http_reply answer(struct http_server *srv, struct http_request *req,
                                const char *const *rcpts, size_t n, uint64_t size)
{
	unsigned retry;
	if (n > srv->cfg->precheck_burst)
		return http_error(413, "too_many_recipients",
		                  "more recipients than precheck_burst allows in one request");
	if (take(srv, req->tok.id, n, &retry) < 0)
		return too_fast(retry);
	struct jsonw w;
	struct buf *text = http_text_begin(&w);
	jsonw_object(&w);
	jsonw_key(&w, "size");
	jsonw_u64(&w, size);
	jsonw_key(&w, "results");
	jsonw_array(&w);
	for (size_t i = 0; i < n; i++) {
		if (precheck_one(srv, &w, rcpts[i], size) == 503) {
			buf_free(text);
			free(text);
			return http_store_unavailable();
		}
	}
	jsonw_end_array(&w);
	jsonw_end_object(&w);
	return http_text_end(&w, text);
}

struct http_reply http_precheck_get(struct http_server *srv, struct MHD_Connection *conn,
                                    struct http_request *req)
{
	const char *rcpt;
	uint64_t size;
	struct http_reply err;
	if (http_recipient_params(conn, &rcpt, &size, &err) < 0)
		return err;
	return answer(srv, req, &rcpt, 1, size);
}

struct http_reply http_precheck_post(struct http_server *srv, struct MHD_Connection *conn,
                                     struct http_request *req)
{
	json_t *doc, *rcpts, *val;
	struct http_reply r;
	uint64_t size;
	struct resource_error e;
	if (http_parse_body(conn, req, &doc, &r) < 0)
		return r;
	if (resource_check_request(doc, HTTP_BATCH_MAX, &rcpts, &size, &e) < 0) {
		r = e.problem == RESOURCE_TOO_MANY
		            ? http_error(413, "too_many_recipients", e.reason)
		            : http_error(400, e.code, e.reason);
		json_decref(doc);
		return r;
	}
	size_t n = json_array_size(rcpts), i;
	const char **list = xcalloc(n, sizeof(*list));
	json_array_foreach(rcpts, i, val) list[i] = json_string_value(val);
	r = answer(srv, req, list, n, size);
	free(list);
	json_decref(doc);
	return r;
}
