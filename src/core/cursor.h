/*
 * cursor: the opaque cursors of keyset-paginated lists. A cursor is base64url (unpadded) of the
 * compact JSON array [sort, key, id]: the sort order it was made under and the last row's sort
 * key and id. Pure: no I/O, no globals; cursors come from clients and are untrusted.
 */
#ifndef MQ_CURSOR_H
#define MQ_CURSOR_H

#include <jansson.h>

#include "buf.h"

#define CURSOR_MAX 700 /* a cursor's length in characters; longer ones are refused unread */

/*
 * Append the cursor for (sort, key, id) to out. 0, or -1 when a string is not valid UTF-8 or
 * out's maximum would be exceeded (out may then hold part of the cursor). The result decodes
 * with cursor_decode() under the same sort when it is shorter than CURSOR_MAX.
 */
int cursor_encode(const char *sort, const char *key, const char *id, struct buf *out)
        __attribute__((warn_unused_result));

/*
 * Decode a NUL-terminated cursor made under sort order sort: 0 with *key_r and *id_r (strings
 * owned by *holder_r, which the caller releases with json_decref()), or -1, with nothing to
 * release and the outputs untouched, for anything cursor_encode() did not make under sort:
 * CURSOR_MAX characters or more, not base64url, not such a JSON array, another sort order.
 */
int cursor_decode(const char *cursor, const char *sort, json_t **holder_r, const char **key_r,
                  const char **id_r) __attribute__((warn_unused_result));

#endif
