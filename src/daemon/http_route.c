/*
 * http_route: the HTTP API's route table and what is decided from it before any body byte is
 * read: which route a request names (404, 405 with Allow), whether its bearer token is valid
 * (401) and its scope admits the route (403), and whether an announced body fits the route's
 * limit (413). Every property of a route is a column of its row: adding an endpoint means
 * adding a row. It must never read a body for a request it refuses, and never tell an unknown
 * token from a wrong secret in what it answers.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bulk.h"
#include "http.h"
#include "http_internal.h"
#include "http_recalc.h"
#include "log.h"
#include "resource.h"
#include "strnum.h"

/* Scopes as bits: which tokens a route accepts. */
#define S_ADMIN (1u << TOKEN_ADMIN)
#define S_READ  (1u << TOKEN_READ)
#define S_USAGE (1u << TOKEN_USAGE)
#define S_SELF  (1u << TOKEN_SELF) /* the handler checks the mailbox is the token's own */
#define S_PRE   (1u << TOKEN_PRECHECK)
#define S_MET   (1u << TOKEN_METRICS)
#define S_NONE  0u /* no token needed */
#define S_ANY   (S_ADMIN | S_READ | S_USAGE | S_SELF)

/* Each body a route may take: its limit, and the answer to a larger one. */
static const struct {
	size_t max;
	const char *too_large;
} bodies[] = {
	[HTTP_NO_BODY] = { 0, "this endpoint takes no body" },
	[HTTP_JSON_BODY] = { HTTP_BODY_MAX, "request body exceeds 512 KiB" },
	[HTTP_BULK_BODY] = { BULK_BODY_MAX, "an import exceeds 32 MiB: split it" },
};

#define D    RESOURCE_DOMAIN
#define M    RESOURCE_MAILBOX
#define A    RESOURCE_ALIAS
#define T    RESOURCE_TOKEN
#define W    HTTP_ON_WORKER
#define C    HTTP_ON_CONN
#define NONE HTTP_NO_BODY
#define JSON HTTP_JSON_BODY
#define BULK HTTP_BULK_BODY
static const struct http_route routes[] = {
	{ "GET", "/v1/health", http_health, S_NONE, 0, NONE, C },
	/* the one route metrics_listen serves (there without a token: http_metrics.c) */
	{ "GET", "/metrics", http_metrics, S_ADMIN | S_MET, 0, NONE, C },
	{ "GET", "/v1/self", http_self_get, S_SELF, 0, NONE, C },
	{ "GET", "/v1/precheck", http_precheck_get, S_ADMIN | S_PRE, 0, NONE, C },
	{ "POST", "/v1/precheck", http_precheck_post, S_ADMIN | S_PRE, 0, JSON, C },
	{ "GET", "/self", http_page, S_NONE, HTTP_PAGE_HTML, NONE, C },
	{ "GET", "/self.js", http_page, S_NONE, HTTP_PAGE_JS, NONE, C },
	{ "GET", "/self.css", http_page, S_NONE, HTTP_PAGE_CSS, NONE, C },
	{ "GET", "/v1/check", http_check_get, S_ANY, 0, NONE, C },
	{ "POST", "/v1/check", http_check_post, S_ANY, 0, JSON, C },
	{ "POST", "/v1/usage", http_usage_post, S_ADMIN | S_USAGE, 0, JSON, W },
	{ "POST", "/v1/usage/recalculations", http_recalc_post, S_ADMIN | S_USAGE, 0, JSON, W },
	{ "GET", "/v1/mailboxes/{}/usage", http_usage_get, S_ANY, 0, NONE, C },
	{ "PUT", "/v1/mailboxes/{}/usage", http_admin_usage_put, S_ADMIN | S_USAGE, M, JSON, W },
	{ "GET", "/v1/domains", http_admin_list, S_ADMIN | S_READ, D, NONE, W },
	{ "POST", "/v1/domains", http_admin_create, S_ADMIN, D, JSON, W },
	{ "GET", "/v1/domains/{}", http_admin_get, S_ADMIN | S_READ, D, NONE, W },
	{ "PATCH", "/v1/domains/{}", http_admin_update, S_ADMIN, D, JSON, W },
	{ "DELETE", "/v1/domains/{}", http_admin_delete, S_ADMIN, D, NONE, W },
	{ "GET", "/v1/mailboxes", http_admin_list, S_ADMIN | S_READ, M, NONE, W },
	{ "POST", "/v1/mailboxes", http_admin_create, S_ADMIN, M, JSON, W },
	{ "GET", "/v1/mailboxes/{}", http_admin_get, S_ADMIN | S_READ | S_SELF, M, NONE, W },
	{ "PATCH", "/v1/mailboxes/{}", http_admin_update, S_ADMIN, M, JSON, W },
	{ "DELETE", "/v1/mailboxes/{}", http_admin_delete, S_ADMIN, M, NONE, W },
	{ "GET", "/v1/aliases", http_admin_list, S_ADMIN | S_READ, A, NONE, W },
	{ "POST", "/v1/aliases", http_admin_create, S_ADMIN, A, JSON, W },
	{ "GET", "/v1/aliases/{}", http_admin_get, S_ADMIN | S_READ, A, NONE, W },
	{ "PATCH", "/v1/aliases/{}", http_admin_update, S_ADMIN, A, JSON, W },
	{ "DELETE", "/v1/aliases/{}", http_admin_delete, S_ADMIN, A, NONE, W },
	{ "GET", "/v1/tokens", http_admin_list, S_ADMIN, T, NONE, W },
	{ "POST", "/v1/tokens", http_admin_create, S_ADMIN, T, JSON, W },
	{ "GET", "/v1/tokens/{}", http_admin_get, S_ADMIN, T, NONE, W },
	{ "DELETE", "/v1/tokens/{}", http_admin_delete, S_ADMIN, T, NONE, W },
	{ "GET", "/v1/audit", http_admin_audit, S_ADMIN | S_READ, 0, NONE, W },
	{ "GET", "/v1/stats", http_stats, S_ADMIN | S_READ, 0, NONE, W },
	{ "GET", "/v1/warnings", http_admin_warnings, S_ADMIN | S_READ, 0, NONE, W },
	{ "GET", "/v1/warnings/settings", http_warning_settings_get, S_ADMIN | S_READ, 0, NONE, W },
	{ "PATCH", "/v1/warnings/settings", http_warning_settings_patch, S_ADMIN, 0, JSON, W },
	{ "GET", "/v1/export", http_admin_export, S_ADMIN | S_READ, 0, NONE, W },
	{ "POST", "/v1/import", http_admin_import, S_ADMIN, 0, BULK, W },
};
#undef D
#undef M
#undef A
#undef T
#undef W
#undef C
#undef NONE
#undef JSON
#undef BULK

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

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

/* Append method to the comma-separated list in allow[size] (sized for every method). */
static void allow_add(char *allow, size_t size, const char *method)
{
	size_t ml = strlen(allow);
	snprintf(allow + ml, size - ml, "%s%s", ml ? ", " : "", method);
}

/* What a connection of metrics_listen may ask for: /metrics, nothing else. */
#define METRICS_PATH "/metrics"

int http_route_find(const char *method, const char *url, struct http_request *req,
                    struct http_reply *err_r)
{
	const char *pattern = req->metrics_only && strcmp(url, METRICS_PATH) != 0
	                              ? NULL
	                              : best_pattern(url, req->param, sizeof(req->param));
	if (pattern == NULL) {
		*err_r = http_error(404, "not_found", "no such endpoint");
		return -1;
	}
	if (strstr(pattern, "{}") != NULL && req->param[0] == '\0') {
		*err_r = http_error(
		        400, "invalid_parameter",
		        "a path segment is longer than 1024 bytes (HTTP_PARAM_VALUE_MAX)");
		return -1;
	}
	for (size_t i = 0; i < NROUTES; i++) {
		if (strcmp(routes[i].path, pattern) != 0)
			continue;
		if (strcmp(routes[i].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
			req->route = &routes[i];
			req->arg = routes[i].arg;
			return 0;
		}
		allow_add(req->allow, sizeof(req->allow), routes[i].method);
	}
	*err_r = http_error(405, "method_not_allowed", "method not allowed for this endpoint");
	err_r->allow = req->allow;
	return -1;
}

struct http_reply http_route_preflight(const char *url, struct http_request *req)
{
	const char *pattern = req->metrics_only && strcmp(url, METRICS_PATH) != 0
	                              ? NULL
	                              : best_pattern(url, req->param, sizeof(req->param));
	if (pattern == NULL)
		return http_error(404, "not_found", "no such endpoint");
	for (size_t i = 0; i < NROUTES; i++)
		if (strcmp(routes[i].path, pattern) == 0)
			allow_add(req->allow, sizeof(req->allow), routes[i].method);
	struct http_reply r = http_reply_empty(204);
	r.allow = req->allow;
	return r;
}

static struct http_reply unauthorized(void)
{
	struct http_reply r = http_error(401, "unauthorized", "a valid bearer token is required");
	r.www_authenticate = true;
	return r;
}

/* A failed authentication is logged at notice with the client's address, at most one line
   per AUTH_LOG_EVERY_SEC: a client guessing tokens must not be able to flood the log. */
#define AUTH_LOG_EVERY_SEC 1
static struct log_rate auth_log_rate;

static void log_auth_failed(struct MHD_Connection *conn, const char *why, int64_t id)
{
	unsigned long suppressed;
	if (!log_enabled(LOG_LEVEL_NOTICE) ||
	    !log_rate_allow(&auth_log_rate, AUTH_LOG_EVERY_SEC, &suppressed))
		return;
	char addr[INET6_ADDRSTRLEN] = "-";
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;
	if (sa != NULL && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr,
		          sizeof(addr));
	else if (sa != NULL && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		          addr, sizeof(addr));
	log_notice("http event=auth_failed client_address=%s reason=%s token_id=%lld "
	           "suppressed=%lu",
	           addr, why, (long long)id, suppressed);
}

/*
 * Authenticate the request's bearer token against the view. Every failure looks the same to
 * the caller (401, one message, about the same time: a hash is compared even for an unknown
 * id); the reason goes to the log only (notice, log_auth_failed()). The one exception is a token
 * presented whole and right but past its expiry: "token_expired" tells its holder nothing they did
 * not know, and lets a self-check page say why the link stopped working.
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
		log_auth_failed(conn, "expired", id);
		*err_r = unauthorized();
		json_object_set_new(err_r->body.json, "error", json_string("token_expired"));
		json_object_set_new(err_r->body.json, "message",
		                    json_string("this token has expired; ask for a new one"));
		return -1;
	}
	req->authenticated = true;
	req->tok = tok;
	return 0;
fail:
	log_auth_failed(conn, why, id);
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

int http_route_admit(struct http_server *srv, struct MHD_Connection *conn, struct http_request *req,
                     struct http_reply *err_r)
{
	const struct http_route *rt = req->route;
	/* metrics_listen is trusted by where it is bound (docs/metrics.md): no token there */
	if (rt->scopes != S_NONE && !req->metrics_only) {
		if (authenticate(srv, conn, req, err_r) < 0)
			return -1;
		if ((rt->scopes & (1u << req->tok.scope)) == 0) {
			*err_r = http_forbidden();
			return -1;
		}
	}
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
	uint64_t clen;
	if (cl != NULL && strnum_u64(cl, strlen(cl), UINT64_MAX, &clen) == 0 &&
	    clen > bodies[rt->body].max) {
		*err_r = http_route_too_large(req);
		return -1;
	}
	buf_init(&req->body, bodies[rt->body].max);
	return 0;
}

struct http_reply http_route_too_large(const struct http_request *req)
{
	/* no route: a preflight, which takes no body */
	enum http_body_limit b = req->route != NULL ? req->route->body : HTTP_NO_BODY;
	return http_error(413, "body_too_large", bodies[b].too_large);
}
