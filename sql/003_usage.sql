-- 003_usage: usage reports with idempotency keys (usage_ledger), and recalculations
-- (absolute usage with its source and time). Pool usage per domain is never stored: it is the
-- sum over the domain's mailboxes, kept in each daemon's memory, so no domain row is a hot spot.

ALTER TABLE mailboxes
    ADD COLUMN usage_set_at timestamptz,
    ADD COLUMN usage_source text CHECK (usage_source IS NULL OR length(usage_source) BETWEEN 1 AND 100);

CREATE TABLE usage_ledger (
    idempotency_key text PRIMARY KEY
        CHECK (length(idempotency_key) BETWEEN 1 AND 200 AND idempotency_key ~ '^[!-~]+$'),
    mailbox_id      bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    bytes_delta     bigint NOT NULL,
    messages_delta  bigint NOT NULL,
    occurred_at     timestamptz,
    status          text NOT NULL CHECK (status IN ('applied', 'superseded')),
    clamped         boolean NOT NULL,
    used_bytes      bigint NOT NULL,   -- the mailbox's usage right after this report
    used_messages   bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_ledger_created_idx ON usage_ledger (created_at);
CREATE INDEX usage_ledger_mailbox_idx ON usage_ledger (mailbox_id);

-- Apply one report exactly once. The mailbox row is locked first, so concurrent reports to one
-- mailbox serialise and none is lost; a repeated key returns the original outcome (or
-- 'conflict' when the same key comes with different content); a report that happened before
-- the mailbox's last recalculation is recorded but not applied ('superseded'), since the
-- recalculation already counted it. Usage stays within 0 .. 2^63-1 ('clamped').
CREATE FUNCTION mq_apply_usage(p_key text, p_mailbox bigint, p_bytes bigint, p_messages bigint,
                               p_occurred timestamptz,
                               OUT status text, OUT clamped boolean, OUT duplicate boolean,
                               OUT used_bytes bigint, OUT used_messages bigint)
LANGUAGE plpgsql AS $$
DECLARE
    l usage_ledger%ROWTYPE;
    ub bigint;
    um bigint;
    set_at timestamptz;
    nb numeric;
    nm numeric;
BEGIN
    SELECT mb.used_bytes, mb.used_messages, mb.usage_set_at INTO ub, um, set_at
        FROM mailboxes mb WHERE mb.id = p_mailbox FOR UPDATE;
    IF NOT FOUND THEN
        status := 'unknown_mailbox';
        RETURN;
    END IF;
    SELECT * INTO l FROM usage_ledger WHERE idempotency_key = p_key;
    IF FOUND THEN
        duplicate := true;
        IF l.mailbox_id <> p_mailbox OR l.bytes_delta <> p_bytes OR l.messages_delta <> p_messages
        THEN
            status := 'conflict';
        ELSE
            status := l.status;
            clamped := l.clamped;
            used_bytes := l.used_bytes;
            used_messages := l.used_messages;
        END IF;
        RETURN;
    END IF;
    duplicate := false;
    clamped := false;
    IF p_occurred IS NOT NULL AND set_at IS NOT NULL AND p_occurred <= set_at THEN
        status := 'superseded';
        used_bytes := ub;
        used_messages := um;
    ELSE
        status := 'applied';
        nb := ub::numeric + p_bytes;
        nm := um::numeric + p_messages;
        IF nb < 0 OR nm < 0 OR nb > 9223372036854775807 OR nm > 9223372036854775807 THEN
            clamped := true;
        END IF;
        used_bytes := least(greatest(nb, 0), 9223372036854775807);
        used_messages := least(greatest(nm, 0), 9223372036854775807);
        UPDATE mailboxes SET used_bytes = mq_apply_usage.used_bytes,
                             used_messages = mq_apply_usage.used_messages
            WHERE id = p_mailbox;
    END IF;
    -- a concurrent transaction with the same key waits here and then fails on the primary key;
    -- the caller's retry finds this row and gets the original outcome
    INSERT INTO usage_ledger (idempotency_key, mailbox_id, bytes_delta, messages_delta,
                              occurred_at, status, clamped, used_bytes, used_messages)
        VALUES (p_key, p_mailbox, p_bytes, p_messages, p_occurred, status, clamped,
                used_bytes, used_messages);
END $$;
