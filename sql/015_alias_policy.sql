-- 015_alias_policy: an alias's own rule for several targets, overriding the installation's
-- alias_policy for that alias alone: 'any' (accepted unless every target refuses), 'all'
-- (refused if any target refuses), NULL (the installation's alias_policy). The daemons read it
-- into their view, so a change must notify them at once; it is part of the alias document, so
-- the admin function's document comparison versions and audits a change of it as of targets.

ALTER TABLE aliases ADD COLUMN policy text CHECK (policy IN ('any', 'all'));

-- the view reads the policy: a change of it notifies the daemons (derived columns still do not)
DROP TRIGGER aliases_notify_update ON aliases;
CREATE TRIGGER aliases_notify_update AFTER UPDATE ON aliases FOR EACH ROW
    WHEN ((OLD.domain_id, OLD.local_part, OLD.policy)
          IS DISTINCT FROM (NEW.domain_id, NEW.local_part, NEW.policy))
    EXECUTE FUNCTION mq_notify_row();

CREATE OR REPLACE FUNCTION mq_alias_doc(a aliases) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'address', a.address,
        'domain', (SELECT name FROM domains WHERE id = a.domain_id),
        'catch_all', a.local_part IS NULL,
        'targets', coalesce((SELECT jsonb_agg(m.address ORDER BY m.address)
                             FROM alias_targets t JOIN mailboxes m ON m.id = t.mailbox_id
                             WHERE t.alias_id = a.id), '[]'::jsonb),
        'policy', a.policy,
        'created_at', mq_ts(a.created_at),
        'updated_at', mq_ts(a.updated_at),
        'version', a.version,
        'etag', mq_etag(a.id, a.version))
$$;

-- sql/006's function (create, update, delete, upsert), which now also sets "policy" when the
-- fields name it: on create (absent: NULL), on update and upsert only when named, so an import
-- file written before this column leaves every alias's policy as it is.
CREATE OR REPLACE FUNCTION mq_admin_alias(p_token bigint, p_op text, p_local text, p_domain text,
                               p_fields jsonb, p_etag text, OUT code text, OUT doc jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    a aliases%ROWTYPE;
    dom bigint;
    f jsonb := coalesce(p_fields, '{}');
    before jsonb;
    addr text := coalesce(p_local, '') || '@' || p_domain;
    missing text;
    newset bigint[];
    upsert boolean := p_op = 'upsert';
BEGIN
    IF upsert THEN
        p_op := CASE WHEN EXISTS (SELECT 1 FROM aliases WHERE address = addr)
                     THEN 'update' ELSE 'create' END;
    END IF;
    -- every named target must be a mailbox
    SELECT t INTO missing
        FROM jsonb_array_elements_text(coalesce(f->'targets', '[]') ||
                                       coalesce(f->'add_targets', '[]')) t
        WHERE NOT EXISTS (SELECT 1 FROM mailboxes WHERE address = t)
        LIMIT 1;
    IF missing IS NOT NULL THEN
        code := 'unknown_target';
        doc := jsonb_build_object('target', missing);
        RETURN;
    END IF;
    IF p_op = 'create' THEN
        SELECT id INTO dom FROM domains WHERE name = p_domain;
        IF NOT FOUND THEN
            code := 'unknown_domain';
            RETURN;
        END IF;
        IF EXISTS (SELECT 1 FROM aliases WHERE address = addr) THEN
            code := 'exists';
            RETURN;
        END IF;
    ELSE
        SELECT * INTO a FROM aliases WHERE address = addr FOR UPDATE;
        IF NOT FOUND THEN
            code := 'not_found';
            RETURN;
        END IF;
        before := mq_alias_doc(a);
        IF p_etag IS NOT NULL AND mq_etag(a.id, a.version) <> p_etag THEN
            code := 'version_mismatch';
            doc := before;
            RETURN;
        END IF;
        IF p_op = 'delete' THEN
            DELETE FROM aliases WHERE id = a.id;
            code := 'ok';
            PERFORM mq_audit(p_token, 'alias.delete', addr, before, NULL);
            RETURN;
        END IF;
    END IF;
    -- the target set this change leaves
    SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') INTO newset FROM (
        SELECT m.id AS x FROM mailboxes m
            WHERE (f ? 'targets' AND m.address IN
                       (SELECT jsonb_array_elements_text(f->'targets')))
               OR m.address IN (SELECT jsonb_array_elements_text(
                                    coalesce(f->'add_targets', '[]')))
        UNION
        SELECT t.mailbox_id FROM alias_targets t
            WHERE a.id IS NOT NULL AND t.alias_id = a.id AND NOT f ? 'targets'
    ) s
    WHERE x NOT IN (SELECT m.id FROM mailboxes m WHERE m.address IN
                        (SELECT jsonb_array_elements_text(coalesce(f->'remove_targets', '[]'))));
    IF cardinality(newset) = 0 THEN
        code := 'no_targets';
        doc := before;
        RETURN;
    END IF;
    IF p_op = 'create' THEN
        INSERT INTO aliases (domain_id, local_part, policy)
            VALUES (dom, p_local, f->>'policy') RETURNING * INTO a;
    ELSIF f ? 'policy' THEN
        -- JSON null (and so ->>) is NULL: the installation's alias_policy
        UPDATE aliases SET policy = f->>'policy' WHERE id = a.id RETURNING * INTO a;
    END IF;
    DELETE FROM alias_targets WHERE alias_id = a.id AND mailbox_id <> ALL (newset);
    INSERT INTO alias_targets (alias_id, mailbox_id)
        SELECT a.id, unnest(newset) ON CONFLICT DO NOTHING;
    IF p_op = 'create' THEN
        code := 'created';
        doc := mq_alias_doc(a);
        PERFORM mq_audit(p_token, 'alias.create', addr, NULL, doc);
        RETURN;
    END IF;
    code := 'ok';
    doc := mq_alias_doc(a);
    IF doc - 'updated_at' - 'version' - 'etag' IS DISTINCT FROM
           before - 'updated_at' - 'version' - 'etag' THEN
        UPDATE aliases SET version = version + 1 WHERE id = a.id RETURNING * INTO a;
        doc := mq_alias_doc(a);
        PERFORM mq_audit(p_token, 'alias.update', addr, before, doc);
        IF upsert THEN code := 'updated'; END IF;
    ELSIF upsert THEN
        code := 'unchanged';
    END IF;
END $$;
