/*
 * http_stats: GET /v1/stats, the installation's totals for dashboards and monitoring: domains,
 * mailboxes (enabled, disabled, over quota), aliases, bytes and messages stored, the domain
 * usage deltas not folded yet, and the top domains by bytes, all read in one snapshot
 * (admin_stats()). Its only parameter is top=N (0..ADMIN_STATS_TOP_MAX, default
 * STATS_TOP_DEFAULT); any other, a repeated or malformed one is refused with 400 before the
 * database is asked.
 */
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "http_internal.h"
#include "strnum.h"
#include "xalloc.h"

#define STATS_TOP_DEFAULT 10
_Static_assert(ADMIN_STATS_TOP_MAX == 100, "the message below names the maximum");
#define STATS_TEXT_MAX (64 * 1024) /* counts, and ADMIN_STATS_TOP_MAX domains of ~300 bytes */

/* top= from the query string into *top_r: 0, or -1 with the 400 reply. */
static int stats_params(struct MHD_Connection *conn, unsigned *top_r, struct http_reply *err_r)
{
	struct http_query q;
	http_query_collect(conn, &q);
	if (q.too_many || q.too_long) {
		*err_r = http_error(400, "invalid_parameter",
		                    q.too_many ? "too many query parameters"
		                               : "a query parameter value is too long");
		return -1;
	}
	*top_r = STATS_TOP_DEFAULT;
	for (size_t i = 0; i < q.n; i++) {
		const char *name = q.p[i].name, *v = q.p[i].value;
		uint64_t u;
		const char *why = NULL;
		if (strcmp(name, "top") != 0)
			why = "is not a parameter of this endpoint";
		else if (i > 0)
			why = "is given twice"; /* the only parameter: any earlier one was top too
			                         */
		else if (strnum_u64(v, strlen(v), ADMIN_STATS_TOP_MAX, &u) < 0)
			why = "must be an integer from 0 to 100";
		if (why != NULL) {
			*err_r = http_query_error(name, why);
			return -1;
		}
		*top_r = (unsigned)u;
	}
	return 0;
}

struct http_reply http_stats(struct http_server *srv, struct MHD_Connection *conn,
                             struct http_request *req)
{
	(void)req;
	unsigned top;
	struct http_reply r;
	if (stats_params(conn, &top, &r) < 0)
		return r;
	struct buf *out = xmalloc(sizeof(*out));
	buf_init(out, STATS_TEXT_MAX);
	const char *error;
	if (admin_stats(srv->admin, top, out, &error) < 0) {
		buf_free(out);
		free(out);
		return http_admin_unavailable(error);
	}
	return http_reply_text(200, out);
}
