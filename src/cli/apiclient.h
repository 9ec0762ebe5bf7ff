/*
 * apiclient: the mailquota command's side of the HTTP API (libcurl). One client per process,
 * one connection kept alive across calls. Bodies and answers are JSON; nothing here knows the
 * routes beyond building their paths.
 */
#ifndef MQ_APICLIENT_H
#define MQ_APICLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define APICLIENT_RESPONSE_MAX (64 * 1024 * 1024) /* a larger answer is an error */
#define APICLIENT_URL_MAX      (1024 * 1024)      /* base URL, path and query of one request */
#define APICLIENT_TIMEOUT_SEC  60

struct api_client;

struct api_response {
	long status;   /* HTTP status */
	json_t *doc;   /* the parsed body (owned), or NULL for none or non-JSON */
	char etag[64]; /* ETag without quotes, or "" */
	char retry_after[16];
};

/* A client for base_url ("http://127.0.0.1:8080") sending token (may be NULL). Never fails. */
struct api_client *api_client_new(const char *base_url, const char *token);
void api_client_free(struct api_client **cp);

/*
 * Send method path (already escaped: see api_escape) with body (NULL: none) and an If-Match
 * ETag (NULL: none). Returns 0 with *r filled (any HTTP status), or -1 when no answer came
 * (connection refused, timeout...) with static text in *error_r (and *r empty).
 */
int api_call(struct api_client *c, const char *method, const char *path, json_t *body,
             const char *if_match, struct api_response *r, const char **error_r)
        __attribute__((warn_unused_result));
void api_response_free(struct api_response *r);

/*
 * The same with a raw body (data[len] of content_type, or none) and, when out is not NULL, the
 * answer's body copied to out as it arrives (r->doc stays NULL for a 2xx answer then). With
 * progress, a bar of the upload is drawn on standard error.
 */
int api_call_raw(struct api_client *c, const char *method, const char *path,
                 const char *content_type, const char *data, size_t len, FILE *out, bool progress,
                 struct api_response *r, const char **error_r) __attribute__((warn_unused_result));

/*
 * s percent-encoded for a path segment or query value by libcurl (every octet but the
 * unreserved A-Z a-z 0-9 - . _ ~ becomes %XX, the one safe set the daemon decodes too).
 * malloc'd: the caller frees it. Never fails (s is a command-line argument, far below the
 * INT_MAX octets libcurl takes; running out of memory aborts).
 */
char *api_escape(struct api_client *c, const char *s);

#endif
