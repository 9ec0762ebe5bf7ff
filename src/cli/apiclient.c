/*
 * apiclient: HTTP calls for the mailquota command through libcurl. It must never print the
 * token, follow redirects (a token must not travel to another host), or buffer more than
 * APICLIENT_RESPONSE_MAX of an answer.
 */
#include "apiclient.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "xalloc.h"

struct api_client {
	CURL *curl;
	char *base;
	char *auth; /* "Authorization: Bearer ..." or NULL */
};

struct api_client *api_client_new(const char *base_url, const char *token)
{
	struct api_client *c = xcalloc(1, sizeof(*c));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c->curl = curl_easy_init();
	if (c->curl == NULL)
		abort();
	size_t n = strlen(base_url);
	c->base = xstrdup(base_url);
	if (n > 0 && c->base[n - 1] == '/')
		c->base[n - 1] = '\0';
	if (token != NULL && token[0] != '\0') {
		size_t len = strlen(token) + 32;
		c->auth = xmalloc(len);
		snprintf(c->auth, len, "Authorization: Bearer %s", token);
	}
	return c;
}

void api_client_free(struct api_client **cp)
{
	struct api_client *c = *cp;
	if (c == NULL)
		return;
	curl_easy_cleanup(c->curl);
	free(c->base);
	if (c->auth != NULL) {
		explicit_bzero(c->auth, strlen(c->auth));
		free(c->auth);
	}
	free(c);
	curl_global_cleanup();
	*cp = NULL;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct api_response *r = ud;
	size_t n = size * nmemb;
	char line[256];
	size_t m = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
	memcpy(line, data, m);
	line[m] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strncasecmp(line, "ETag:", 5) == 0) {
		const char *v = line + 5 + strspn(line + 5, " ");
		size_t vl = strlen(v);
		if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"' && vl - 2 < sizeof(r->etag)) {
			memcpy(r->etag, v + 1, vl - 2);
			r->etag[vl - 2] = '\0';
		}
	} else if (strncasecmp(line, "Retry-After:", 12) == 0) {
		/* a value too long for any delay we send is not ours: keep none */
		if (str_copy(r->retry_after, line + 12 + strspn(line + 12, " "),
		             sizeof(r->retry_after)) < 0)
			r->retry_after[0] = '\0';
	}
	return n;
}

/* Where an answer's body goes: a bounded buffer, or straight to a file for a 2xx answer. */
struct sink {
	struct buf *in;
	FILE *out;
	CURL *k;
};

static size_t on_sink(char *data, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb;
	long status = 0;
	curl_easy_getinfo(s->k, CURLINFO_RESPONSE_CODE, &status);
	if (s->out != NULL && status >= 200 && status < 300)
		return fwrite(data, 1, n, s->out) == n ? n : 0;
	return buf_append(s->in, data, n) < 0 ? 0 : n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	(void)ud;
	(void)dltotal;
	(void)dlnow;
	if (ultotal <= 0)
		return 0;
	int width = 40, done = (int)(ulnow * width / ultotal);
	fprintf(stderr, "\rsending  [%.*s%*s] %3d%%", done,
	        "########################################", width - done, "",
	        (int)(ulnow * 100 / ultotal));
	if (ulnow == ultotal)
		fprintf(stderr, "\rsent: %lld bytes; the server is applying them...%20s",
		        (long long)ultotal, "");
	return 0;
}

static int perform(struct api_client *c, const char *method, const char *path,
                   const char *content_type, const char *data, size_t len, const char *if_match,
                   FILE *out, bool progress, struct api_response *r, const char **error_r)
{
	memset(r, 0, sizeof(*r));
	struct buf url, in;
	buf_init(&url, APICLIENT_URL_MAX);
	if (buf_printf(&url, "%s%s", c->base, path) < 0) {
		*error_r = "the request's URL is longer than 1 MiB";
		buf_free(&url);
		return -1;
	}
	buf_init(&in, APICLIENT_RESPONSE_MAX);
	struct curl_slist *h = NULL;
	char ct[128];
	if (c->auth != NULL)
		h = curl_slist_append(h, c->auth);
	if (content_type != NULL) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
		h = curl_slist_append(h, ct);
	}
	char im[96];
	if (if_match != NULL) {
		snprintf(im, sizeof(im), "If-Match: \"%s\"", if_match);
		h = curl_slist_append(h, im);
	}
	h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
	CURL *k = c->curl;
	curl_easy_reset(k);
	struct sink sk = { &in, out, k };
	curl_easy_setopt(k, CURLOPT_URL, url.data);
	curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
	if (data != NULL) {
		curl_easy_setopt(k, CURLOPT_POSTFIELDS, data);
		curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_sink);
	curl_easy_setopt(k, CURLOPT_WRITEDATA, &sk);
	curl_easy_setopt(k, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(k, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(k, CURLOPT_FOLLOWLOCATION, 0L);
	/* bulk calls may take long: no overall timeout, but give up on a stalled transfer */
	bool bulk = out != NULL || progress || len > 4 * 1024 * 1024;
	curl_easy_setopt(k, CURLOPT_TIMEOUT, bulk ? 0L : (long)APICLIENT_TIMEOUT_SEC);
	curl_easy_setopt(k, CURLOPT_LOW_SPEED_LIMIT, 1L); /* and a stalled one after 10 minutes */
	curl_easy_setopt(k, CURLOPT_LOW_SPEED_TIME, 600L);
	curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k, CURLOPT_USERAGENT, "mailquota");
	if (progress) {
		curl_easy_setopt(k, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(k, CURLOPT_XFERINFOFUNCTION, on_progress);
	}
	CURLcode rc = curl_easy_perform(k);
	if (progress)
		fprintf(stderr, "\r%80s\r", "");
	curl_slist_free_all(h);
	buf_free(&url);
	if (rc != CURLE_OK) {
		*error_r = rc == CURLE_WRITE_ERROR ? "cannot store the answer (over 64 MiB, or "
		                                     "standard output failed)"
		                                   : curl_easy_strerror(rc);
		buf_free(&in);
		return -1;
	}
	curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &r->status);
	if (in.len > 0)
		r->doc = json_loadb(in.data, in.len, 0, NULL);
	buf_free(&in);
	return 0;
}

int api_call_raw(struct api_client *c, const char *method, const char *path,
                 const char *content_type, const char *data, size_t len, FILE *out, bool progress,
                 struct api_response *r, const char **error_r)
{
	return perform(c, method, path, content_type, data, len, NULL, out, progress, r, error_r);
}

int api_call(struct api_client *c, const char *method, const char *path, json_t *body,
             const char *if_match, struct api_response *r, const char **error_r)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	if (body != NULL && text == NULL) {
		memset(r, 0, sizeof(*r));
		*error_r = "cannot encode the request body";
		return -1;
	}
	int rc = perform(c, method, path, text != NULL ? "application/json" : NULL, text,
	                 text != NULL ? strlen(text) : 0, if_match, NULL, false, r, error_r);
	free(text);
	return rc;
}

void api_response_free(struct api_response *r)
{
	json_decref(r->doc);
	r->doc = NULL;
}

char *api_escape(struct api_client *c, const char *s)
{
	size_t len = strlen(s);
	if (len > INT_MAX)
		abort(); /* arguments are bounded by the kernel's ARG_MAX, far below */
	char *e = curl_easy_escape(c->curl, s, (int)len);
	if (e == NULL)
		abort(); /* libcurl's only failure here is running out of memory */
	char *out = xstrdup(e);
	curl_free(e);
	return out;
}
