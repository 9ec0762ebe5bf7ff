-- 006_bulk: imports. The admin change functions learn the op 'upsert' (create, or update what
-- exists), answering 'created', 'updated' or 'unchanged', so an import applies each row with
-- one call, audited like any other change.


CREATE OR REPLACE FUNCTION mq_admin_domain(p_token bigint, p_op text, p_name text, p_fields jsonb,
                                p_etag text, OUT code text, OUT doc jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    d domains%ROWTYPE;
    f jsonb := coalesce(p_fields, '{}');
    before jsonb;
    upsert boolean := p_op = 'upsert';
BEGIN
    IF upsert THEN
        p_op := CASE WHEN EXISTS (SELECT 1 FROM domains WHERE name = p_name)
                     THEN 'update' ELSE 'create' END;
    END IF;
    IF p_op = 'create' THEN
        INSERT INTO domains (name, pool_limit_bytes, default_storage_limit_bytes,
                             default_message_limit, default_max_message_size, max_message_size,
                             grace_percent)
            VALUES (p_name, (f->>'pool_limit_bytes')::bigint,
                    (f->>'default_storage_limit_bytes')::bigint,
                    (f->>'default_message_limit')::bigint,
                    (f->>'default_max_message_size')::bigint,
                    (f->>'max_message_size')::bigint, (f->>'grace_percent')::integer)
            ON CONFLICT (name) DO NOTHING
            RETURNING * INTO d;
        IF NOT FOUND THEN
            code := 'exists';
            RETURN;
        END IF;
        code := 'created';
        doc := mq_domain_doc(d);
        PERFORM mq_audit(p_token, 'domain.create', p_name, NULL, doc);
        RETURN;
    END IF;
    SELECT * INTO d FROM domains WHERE name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        code := 'not_found';
        RETURN;
    END IF;
    before := mq_domain_doc(d);
    IF p_etag IS NOT NULL AND mq_etag(d.id, d.version) <> p_etag THEN
        code := 'version_mismatch';
        doc := before;
        RETURN;
    END IF;
    IF p_op = 'delete' THEN
        DELETE FROM domains WHERE id = d.id;
        code := 'ok';
        PERFORM mq_audit(p_token, 'domain.delete', p_name, before, NULL);
        RETURN;
    END IF;
    UPDATE domains SET
        pool_limit_bytes = CASE WHEN f ? 'pool_limit_bytes'
            THEN (f->>'pool_limit_bytes')::bigint ELSE pool_limit_bytes END,
        default_storage_limit_bytes = CASE WHEN f ? 'default_storage_limit_bytes'
            THEN (f->>'default_storage_limit_bytes')::bigint
            ELSE default_storage_limit_bytes END,
        default_message_limit = CASE WHEN f ? 'default_message_limit'
            THEN (f->>'default_message_limit')::bigint ELSE default_message_limit END,
        default_max_message_size = CASE WHEN f ? 'default_max_message_size'
            THEN (f->>'default_max_message_size')::bigint ELSE default_max_message_size END,
        max_message_size = CASE WHEN f ? 'max_message_size'
            THEN (f->>'max_message_size')::bigint ELSE max_message_size END,
        grace_percent = CASE WHEN f ? 'grace_percent'
            THEN (f->>'grace_percent')::integer ELSE grace_percent END
        WHERE id = d.id RETURNING * INTO d;
    code := 'ok';
    doc := mq_domain_doc(d);
    IF doc IS DISTINCT FROM before THEN
        PERFORM mq_audit(p_token, 'domain.update', p_name, before, doc);
        IF upsert THEN code := 'updated'; END IF;
    ELSIF upsert THEN
        code := 'unchanged';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION mq_admin_mailbox(p_token bigint, p_op text, p_local text, p_domain text,
                                 p_fields jsonb, p_etag text, OUT code text, OUT doc jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    m mailboxes%ROWTYPE;
    dom bigint;
    f jsonb := coalesce(p_fields, '{}');
    before jsonb;
    addr text := p_local || '@' || p_domain;
    upsert boolean := p_op = 'upsert';
BEGIN
    IF upsert THEN
        p_op := CASE WHEN EXISTS (SELECT 1 FROM mailboxes WHERE address = addr)
                     THEN 'update' ELSE 'create' END;
    END IF;
    IF p_op = 'create' THEN
        SELECT id INTO dom FROM domains WHERE name = p_domain;
        IF NOT FOUND THEN
            code := 'unknown_domain';
            RETURN;
        END IF;
        INSERT INTO mailboxes (domain_id, local_part, storage_limit_bytes, message_limit,
                               max_message_size, grace_percent, enabled)
            VALUES (dom, p_local, (f->>'storage_limit_bytes')::bigint,
                    (f->>'message_limit')::bigint, (f->>'max_message_size')::bigint,
                    (f->>'grace_percent')::integer,
                    coalesce((f->>'enabled')::boolean, true))
            ON CONFLICT (domain_id, local_part) DO NOTHING
            RETURNING * INTO m;
        IF NOT FOUND THEN
            code := 'exists';
            RETURN;
        END IF;
        code := 'created';
        doc := mq_mailbox_doc(m);
        PERFORM mq_audit(p_token, 'mailbox.create', addr, NULL, doc);
        RETURN;
    END IF;
    SELECT * INTO m FROM mailboxes WHERE address = addr FOR UPDATE;
    IF NOT FOUND THEN
        code := 'not_found';
        RETURN;
    END IF;
    before := mq_mailbox_doc(m);
    IF p_etag IS NOT NULL AND mq_etag(m.id, m.version) <> p_etag THEN
        code := 'version_mismatch';
        doc := before;
        RETURN;
    END IF;
    IF p_op = 'delete' THEN
        DELETE FROM mailboxes WHERE id = m.id;
        code := 'ok';
        PERFORM mq_audit(p_token, 'mailbox.delete', addr, before, NULL);
        RETURN;
    END IF;
    UPDATE mailboxes SET
        storage_limit_bytes = CASE WHEN f ? 'storage_limit_bytes'
            THEN (f->>'storage_limit_bytes')::bigint ELSE storage_limit_bytes END,
        message_limit = CASE WHEN f ? 'message_limit'
            THEN (f->>'message_limit')::bigint ELSE message_limit END,
        max_message_size = CASE WHEN f ? 'max_message_size'
            THEN (f->>'max_message_size')::bigint ELSE max_message_size END,
        grace_percent = CASE WHEN f ? 'grace_percent'
            THEN (f->>'grace_percent')::integer ELSE grace_percent END,
        enabled = CASE WHEN f ? 'enabled' THEN (f->>'enabled')::boolean ELSE enabled END
        WHERE id = m.id RETURNING * INTO m;
    code := 'ok';
    doc := mq_mailbox_doc(m);
    IF m.version <> (before->>'version')::bigint THEN
        PERFORM mq_audit(p_token, 'mailbox.update', addr, before, doc);
        IF upsert THEN code := 'updated'; END IF;
    ELSIF upsert THEN
        code := 'unchanged';
    END IF;
END $$;

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
        INSERT INTO aliases (domain_id, local_part) VALUES (dom, p_local) RETURNING * INTO a;
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
