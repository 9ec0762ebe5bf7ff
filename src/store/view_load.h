/* view_load: the view's row readers: rows of one kind read with COPY into an index. Used only by
   view.c. */
#ifndef MQ_VIEW_LOAD_H
#define MQ_VIEW_LOAD_H

#include <libpq-fe.h>

#include "vindex.h"

/*
 * Read the rows of kind into vi with "COPY (SELECT ...) TO STDOUT": every row (ids NULL), or the
 * rows whose ids are in ids ("12,15,40": numbers the caller formatted, never outside input).
 * Tokens: only those not revoked. Rows found are put into vi, replacing what it holds under
 * their ids. Runs in whatever transaction conn is in. Returns 0, or -1 with the reason logged
 * (the database failed, or a row did not parse: then the result is still read to its end so the
 * connection stays usable, and vi holds an unspecified part of the rows).
 */
int view_load_rows(PGconn *conn, enum vindex_kind kind, const char *ids, struct vindex *vi)
        __attribute__((warn_unused_result));

#endif
