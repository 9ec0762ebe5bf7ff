-- 004_dovecot_clone: a landing table for Dovecot's quota_clone plugin (dict-sql). Dovecot
-- writes each user's current usage (priv/quota/storage, priv/quota/messages) here whenever its
-- own quota changes; the trigger turns every write into a recalculation of the mailbox named by
-- the username (user@domain, compared as mailquota stores addresses), source 'dovecot'.
-- A username that is not a mailquota mailbox is kept here and otherwise ignored.

CREATE TABLE dovecot_quota_clone (
    username text PRIMARY KEY CHECK (length(username) BETWEEN 1 AND 254),
    bytes    bigint NOT NULL DEFAULT 0,
    messages bigint NOT NULL DEFAULT 0
);

CREATE FUNCTION mq_dovecot_clone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mailboxes m
        SET used_bytes = greatest(NEW.bytes, 0),
            used_messages = greatest(NEW.messages, 0),
            usage_source = 'dovecot',
            usage_set_at = now()
        FROM domains d
        WHERE d.id = m.domain_id
          AND m.local_part = lower(split_part(NEW.username, '@', 1))
          AND d.name = lower(split_part(NEW.username, '@', 2));
    RETURN NULL;
END $$;

CREATE TRIGGER dovecot_quota_clone_apply AFTER INSERT OR UPDATE ON dovecot_quota_clone
    FOR EACH ROW EXECUTE FUNCTION mq_dovecot_clone();
