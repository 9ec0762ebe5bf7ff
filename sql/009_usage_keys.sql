-- 009_usage_keys: a batch of usage reports is applied by one call, mq_apply_usage_batch(), which
-- takes its locks in one global order: first the batch's idempotency keys (one transaction-level
-- advisory lock per key, in hash order), then its mailboxes (row locks, in id order, taken by
-- mq_apply_usage). Two batches then never wait for each other in a cycle: no deadlock.
--
-- Why: mq_apply_usage (003) locks the mailbox, looks the key up, then inserts it. When two
-- batches sent one key for two different mailboxes, both missed the key, and the second INSERT
-- waited for the first transaction's uncommitted row while holding its own mailbox: it then
-- failed on the primary key when the first committed (and its whole batch with it), or
-- deadlocked when the first wanted that mailbox. Now the second batch waits for the key before
-- it holds any mailbox, and once the first commits, its lookup (a new snapshot per statement in
-- READ COMMITTED, the daemon's isolation level) finds the committed ledger row: that report is
-- answered as a retry ('conflict', or the original outcome with duplicate) and the batch's other
-- reports are applied. This holds between writers that all come through here: mq_apply_usage
-- stays callable for daemons of earlier versions during an upgrade, and their batches can still
-- fail that way until they are replaced.

CREATE FUNCTION mq_apply_usage_batch(p_keys text[], p_mailboxes bigint[], p_bytes bigint[],
                                     p_messages bigint[], p_occurred timestamptz[])
RETURNS TABLE (ord bigint, status text, clamped boolean, duplicate boolean,
               used_bytes bigint, used_messages bigint)
LANGUAGE plpgsql AS $$
DECLARE
    -- Key locks are pg_advisory_xact_lock(key_space, hashtext(key)), the two-integer form: its
    -- key space is apart from the single-bigint one of the migration lock (src/migrate.c), so
    -- the two cannot collide (pg_locks shows them with objsubid 2 and 1). The constant is
    -- 'mquk' in ASCII. Two keys with one hash share a lock, which only makes them wait for each
    -- other.
    key_space CONSTANT integer := 1836152171;
    n integer := cardinality(p_keys);
    h integer;
    i integer;
BEGIN
    IF n IS NULL OR cardinality(p_mailboxes) IS DISTINCT FROM n
       OR cardinality(p_bytes) IS DISTINCT FROM n OR cardinality(p_messages) IS DISTINCT FROM n
       OR cardinality(p_occurred) IS DISTINCT FROM n THEN
        RAISE EXCEPTION 'mq_apply_usage_batch: the five arrays must have one length';
    END IF;
    IF array_position(p_keys, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'mq_apply_usage_batch: a key is NULL';
    END IF;
    -- 1. every key, before any mailbox; each lock is held until the transaction ends
    FOR h IN SELECT DISTINCT hashtext(k) FROM unnest(p_keys) k ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(key_space, h);
    END LOOP;
    -- 2. the reports in mailbox order (then array order), whatever order the caller sent them
    -- in. A key that occurs twice in the batch is counted at its first occurrence in this order;
    -- the later ones find its ledger row and are answered as its retries.
    FOR i IN SELECT s FROM generate_subscripts(p_keys, 1) s ORDER BY p_mailboxes[s], s LOOP
        SELECT a.status, a.clamped, a.duplicate, a.used_bytes, a.used_messages
            INTO status, clamped, duplicate, used_bytes, used_messages
            FROM mq_apply_usage(p_keys[i], p_mailboxes[i], p_bytes[i], p_messages[i],
                                p_occurred[i]) a;
        ord := i;
        RETURN NEXT;
    END LOOP;
END $$;
