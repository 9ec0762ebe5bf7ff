-- 012_usage_load: recalculations (absolute usage) of many mailboxes in one call, for
-- POST /v1/usage/recalculations and `mailquota usage load` (a whole `doveadm quota get -A`).
--
-- mq_usage_recalc_batch() does for each item what PUT /v1/mailboxes/{address}/usage does for
-- one (admin.c's "usage_set"): used_bytes and used_messages set (an omitted one kept),
-- usage_source and usage_set_at set (usage_set_at = the item's measured_at, else now()), so that
-- delta reports that happened before it are superseded (mq_apply_usage, sql/003). Items that
-- name one mailbox apply in array order, as as many single PUTs would: the last item that
-- gives a figure sets it. Unlike the single PUT it is set-based: one UPDATE for the whole batch
-- (statement-level triggers on mailboxes run once per batch, not once per item).
--
-- Locks: every named mailbox row is locked first, in id order, and nothing else is locked
-- before them. mq_apply_usage_batch() (sql/009) takes its key locks and then its mailbox rows
-- in id order too, so a recalculation batch and a report batch never wait for each other in a
-- cycle: no deadlock between them.
--
-- Audit: one audit_log row per mailbox whose figures changed (action 'usage.load', object its
-- address), before/after holding only the usage part of a mailbox document
-- ({"usage": {"bytes", "messages", "source", "set_at"}}): a daily load of 100,000 mailboxes
-- writes rows for the ones that moved, about 300 bytes each, instead of two whole documents
-- for every mailbox. A mailbox whose figures did not change gets no audit row; its
-- usage.source and usage.set_at in its document still show the load.

CREATE FUNCTION mq_usage_recalc_batch(p_addresses text[], p_bytes bigint[], p_messages bigint[],
                                      p_measured timestamptz[], p_source text, p_token bigint)
RETURNS TABLE (ord bigint, status text, changed boolean, used_bytes bigint,
               used_messages bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n integer := cardinality(p_addresses);
BEGIN
    IF n IS NULL OR cardinality(p_bytes) IS DISTINCT FROM n
       OR cardinality(p_messages) IS DISTINCT FROM n
       OR cardinality(p_measured) IS DISTINCT FROM n THEN
        RAISE EXCEPTION 'mq_usage_recalc_batch: the four arrays must have one length';
    END IF;
    IF array_position(p_addresses, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'mq_usage_recalc_batch: an address is NULL';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_bytes) b WHERE b < 0)
       OR EXISTS (SELECT 1 FROM unnest(p_messages) m WHERE m < 0) THEN
        RAISE EXCEPTION 'mq_usage_recalc_batch: a negative figure';
    END IF;
    -- 1. every named mailbox, in id order, before anything is written
    PERFORM 1 FROM mailboxes m WHERE m.address = ANY (p_addresses) ORDER BY m.id FOR UPDATE;
    -- 2. one statement: what each mailbox comes to, the update, the audit rows, the answers
    RETURN QUERY
    WITH item AS (
        -- unnest in step, never arr[i]: an element of a text array, or of one with NULLs, is
        -- found by walking the array from its start
        SELECT i.ord, i.address, i.bytes, i.messages, i.measured
        FROM unnest(p_addresses, p_bytes, p_messages, p_measured) WITH ORDINALITY
             AS i (address, bytes, messages, measured, ord)
    ), want AS (
        -- the items of one mailbox in order: the last figure given wins, as does the last
        -- item's measured_at (NULL: now)
        SELECT m.id, m.address, m.used_bytes AS old_bytes, m.used_messages AS old_messages,
               m.usage_source AS old_source, m.usage_set_at AS old_set_at,
               coalesce((array_agg(i.bytes ORDER BY i.ord DESC)
                         FILTER (WHERE i.bytes IS NOT NULL))[1], m.used_bytes) AS bytes,
               coalesce((array_agg(i.messages ORDER BY i.ord DESC)
                         FILTER (WHERE i.messages IS NOT NULL))[1], m.used_messages) AS messages,
               coalesce((array_agg(i.measured ORDER BY i.ord DESC))[1], now()) AS measured
        FROM item i JOIN mailboxes m ON m.address = i.address
        GROUP BY m.id
    ), upd AS (
        UPDATE mailboxes m SET used_bytes = w.bytes, used_messages = w.messages,
                               usage_source = p_source, usage_set_at = w.measured
            FROM want w WHERE m.id = w.id
    ), aud AS (
        INSERT INTO audit_log (token_id, action, object, before, after)
            SELECT p_token, 'usage.load', w.address,
                   jsonb_build_object('usage', jsonb_build_object(
                       'bytes', w.old_bytes, 'messages', w.old_messages,
                       'source', w.old_source, 'set_at', mq_ts(w.old_set_at))),
                   jsonb_build_object('usage', jsonb_build_object(
                       'bytes', w.bytes, 'messages', w.messages,
                       'source', p_source, 'set_at', mq_ts(w.measured)))
            FROM want w
            WHERE (w.bytes, w.messages) IS DISTINCT FROM (w.old_bytes, w.old_messages)
            ORDER BY w.id
    )
    SELECT i.ord, CASE WHEN w.id IS NULL THEN 'unknown_mailbox' ELSE 'applied' END,
           w.id IS NOT NULL
               AND (w.bytes, w.messages) IS DISTINCT FROM (w.old_bytes, w.old_messages),
           w.bytes, w.messages
    FROM item i LEFT JOIN want w ON w.address = i.address
    ORDER BY i.ord;
END $$;
