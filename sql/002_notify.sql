-- 002_notify: every change a daemon's in-memory view must see sends a small NOTIFY on channel
-- "mailquota" with the payload "<kind> <id>": d = domain, m = mailbox, a = alias (alias_targets
-- changes name their alias). Daemons re-read the row by id, so the payload never carries data
-- and a lost or duplicated notification cannot corrupt the view (the periodic sweep and the
-- resync after a reconnect catch anything lost). PostgreSQL folds identical notifications of one
-- transaction into one.

CREATE FUNCTION mq_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := CASE TG_TABLE_NAME WHEN 'domains' THEN 'd' WHEN 'mailboxes' THEN 'm' ELSE 'a' END;
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('mailquota', kind || ' ' || OLD.id);
    ELSE
        PERFORM pg_notify('mailquota', kind || ' ' || NEW.id);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION mq_notify_alias_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM pg_notify('mailquota', 'a ' || OLD.alias_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('mailquota', 'a ' || NEW.alias_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER domains_notify AFTER INSERT OR DELETE ON domains
    FOR EACH ROW EXECUTE FUNCTION mq_notify_row();
CREATE TRIGGER domains_notify_update AFTER UPDATE ON domains
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION mq_notify_row();
CREATE TRIGGER mailboxes_notify AFTER INSERT OR DELETE ON mailboxes
    FOR EACH ROW EXECUTE FUNCTION mq_notify_row();
CREATE TRIGGER mailboxes_notify_update AFTER UPDATE ON mailboxes
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION mq_notify_row();
CREATE TRIGGER aliases_notify AFTER INSERT OR DELETE ON aliases
    FOR EACH ROW EXECUTE FUNCTION mq_notify_row();
CREATE TRIGGER aliases_notify_update AFTER UPDATE ON aliases
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION mq_notify_row();
CREATE TRIGGER alias_targets_notify AFTER INSERT OR UPDATE OR DELETE ON alias_targets
    FOR EACH ROW EXECUTE FUNCTION mq_notify_alias_target();
