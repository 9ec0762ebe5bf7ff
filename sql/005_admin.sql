-- 005_admin: what the admin API needs.
--  * a version per domain, mailbox and alias, bumped only by changes to what an admin edits
--    (never by usage), behind the API's ETag / If-Match;
--  * stored addresses, effective storage limits and a usage ratio on mailboxes, so that lists
--    can be filtered and sorted through indexes on a million mailboxes;
--  * api_tokens (only a SHA-256 of each token is stored) and the audit_log;
--  * one function per admin change, which validates references, checks the version, writes
--    the audit record and returns the new document, all in one round trip.

-- ---- versions ----

-- updated_at moves only when something changed (a no-op admin change is no change)
CREATE OR REPLACE FUNCTION mq_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

ALTER TABLE domains ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE mailboxes ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE aliases ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION mq_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END $$;

CREATE TRIGGER domains_version BEFORE UPDATE ON domains FOR EACH ROW
    WHEN ((OLD.name, OLD.pool_limit_bytes, OLD.default_storage_limit_bytes,
           OLD.default_message_limit, OLD.default_max_message_size, OLD.max_message_size,
           OLD.grace_percent)
          IS DISTINCT FROM
          (NEW.name, NEW.pool_limit_bytes, NEW.default_storage_limit_bytes,
           NEW.default_message_limit, NEW.default_max_message_size, NEW.max_message_size,
           NEW.grace_percent))
    EXECUTE FUNCTION mq_bump_version();
CREATE TRIGGER mailboxes_version BEFORE UPDATE ON mailboxes FOR EACH ROW
    WHEN ((OLD.domain_id, OLD.local_part, OLD.storage_limit_bytes, OLD.message_limit,
           OLD.max_message_size, OLD.grace_percent, OLD.enabled)
          IS DISTINCT FROM
          (NEW.domain_id, NEW.local_part, NEW.storage_limit_bytes, NEW.message_limit,
           NEW.max_message_size, NEW.grace_percent, NEW.enabled))
    EXECUTE FUNCTION mq_bump_version();
-- alias targets live in alias_targets: the admin functions bump an alias's version themselves

-- ---- derived mailbox columns ----

ALTER TABLE mailboxes
    ADD COLUMN address text,
    ADD COLUMN effective_storage_limit_bytes bigint;
UPDATE mailboxes m SET address = m.local_part || '@' || d.name,
                       effective_storage_limit_bytes =
                           coalesce(m.storage_limit_bytes, d.default_storage_limit_bytes)
    FROM domains d WHERE d.id = m.domain_id;
ALTER TABLE mailboxes ALTER COLUMN address SET NOT NULL;
-- used / effective limit; -1 when unlimited (so that it sorts and pages without NULLs)
ALTER TABLE mailboxes ADD COLUMN usage_ratio float8 NOT NULL GENERATED ALWAYS AS (
    CASE WHEN effective_storage_limit_bytes IS NULL THEN -1
         WHEN effective_storage_limit_bytes = 0
             THEN CASE WHEN used_bytes > 0 THEN 'Infinity'::float8 ELSE 0 END
         ELSE used_bytes::float8 / effective_storage_limit_bytes END) STORED;

ALTER TABLE aliases ADD COLUMN address text;
UPDATE aliases a SET address = coalesce(a.local_part, '') || '@' || d.name
    FROM domains d WHERE d.id = a.domain_id;
ALTER TABLE aliases ALTER COLUMN address SET NOT NULL;

CREATE FUNCTION mq_mailbox_derive() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d domains%ROWTYPE;
BEGIN
    SELECT * INTO d FROM domains WHERE id = NEW.domain_id;
    NEW.address := NEW.local_part || '@' || d.name;
    NEW.effective_storage_limit_bytes :=
        coalesce(NEW.storage_limit_bytes, d.default_storage_limit_bytes);
    RETURN NEW;
END $$;
CREATE TRIGGER mailboxes_derive BEFORE INSERT OR UPDATE OF domain_id, local_part,
    storage_limit_bytes ON mailboxes FOR EACH ROW EXECUTE FUNCTION mq_mailbox_derive();

CREATE FUNCTION mq_alias_derive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.address := coalesce(NEW.local_part, '') || '@' ||
                   (SELECT name FROM domains WHERE id = NEW.domain_id);
    RETURN NEW;
END $$;
CREATE TRIGGER aliases_derive BEFORE INSERT OR UPDATE OF domain_id, local_part ON aliases
    FOR EACH ROW EXECUTE FUNCTION mq_alias_derive();

-- a domain's renaming or new default reaches its mailboxes' derived columns
CREATE FUNCTION mq_domain_propagate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name IS DISTINCT FROM OLD.name THEN
        UPDATE mailboxes SET address = local_part || '@' || NEW.name WHERE domain_id = NEW.id;
        UPDATE aliases SET address = coalesce(local_part, '') || '@' || NEW.name
            WHERE domain_id = NEW.id;
    END IF;
    IF NEW.default_storage_limit_bytes IS DISTINCT FROM OLD.default_storage_limit_bytes THEN
        UPDATE mailboxes SET effective_storage_limit_bytes = NEW.default_storage_limit_bytes
            WHERE domain_id = NEW.id AND storage_limit_bytes IS NULL;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER domains_propagate AFTER UPDATE OF name, default_storage_limit_bytes ON domains
    FOR EACH ROW EXECUTE FUNCTION mq_domain_propagate();

-- Daemons read none of the derived columns: changing only those must not notify them (a new
-- domain default would otherwise send one notification per mailbox; the domain's own
-- notification already tells the daemons).
DROP TRIGGER mailboxes_notify_update ON mailboxes;
CREATE TRIGGER mailboxes_notify_update AFTER UPDATE ON mailboxes FOR EACH ROW
    WHEN ((OLD.domain_id, OLD.local_part, OLD.storage_limit_bytes, OLD.message_limit,
           OLD.max_message_size, OLD.grace_percent, OLD.used_bytes, OLD.used_messages,
           OLD.enabled)
          IS DISTINCT FROM
          (NEW.domain_id, NEW.local_part, NEW.storage_limit_bytes, NEW.message_limit,
           NEW.max_message_size, NEW.grace_percent, NEW.used_bytes, NEW.used_messages,
           NEW.enabled))
    EXECUTE FUNCTION mq_notify_row();
DROP TRIGGER aliases_notify_update ON aliases;
CREATE TRIGGER aliases_notify_update AFTER UPDATE ON aliases FOR EACH ROW
    WHEN ((OLD.domain_id, OLD.local_part) IS DISTINCT FROM (NEW.domain_id, NEW.local_part))
    EXECUTE FUNCTION mq_notify_row();

-- ---- indexes behind every list filter and sort order the API offers ----

CREATE UNIQUE INDEX mailboxes_address_idx ON mailboxes (address);
CREATE INDEX mailboxes_domain_address_idx ON mailboxes (domain_id, address);
CREATE INDEX mailboxes_usage_idx ON mailboxes (usage_ratio, id);
CREATE INDEX mailboxes_updated_idx ON mailboxes (updated_at, id);
CREATE INDEX domains_updated_idx ON domains (updated_at, id);
CREATE UNIQUE INDEX aliases_address_idx ON aliases (address);
CREATE INDEX aliases_domain_address_idx ON aliases (domain_id, address);
CREATE INDEX aliases_updated_idx ON aliases (updated_at, id);

-- ---- tokens and audit ----

CREATE TABLE api_tokens (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]'),
    scope       text NOT NULL CHECK (scope IN ('admin', 'read', 'usage', 'self')),
    mailbox_id  bigint REFERENCES mailboxes (id) ON DELETE CASCADE,
    secret_hash bytea NOT NULL CHECK (length(secret_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  bigint,  -- the token that created it; NULL: created with database access
    expires_at  timestamptz,
    revoked_at  timestamptz,
    CHECK ((scope = 'self') = (mailbox_id IS NOT NULL))
);

CREATE OR REPLACE FUNCTION mq_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := CASE TG_TABLE_NAME WHEN 'domains' THEN 'd' WHEN 'mailboxes' THEN 'm'
                                    WHEN 'api_tokens' THEN 't' ELSE 'a' END;
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('mailquota', kind || ' ' || OLD.id);
    ELSE
        PERFORM pg_notify('mailquota', kind || ' ' || NEW.id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER api_tokens_notify AFTER INSERT OR UPDATE OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION mq_notify_row();

CREATE TABLE audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    token_id bigint,     -- NULL: a change made with database access (bootstrap, migrations)
    action   text NOT NULL,
    object   text NOT NULL,
    before   jsonb,
    after    jsonb
);
CREATE INDEX audit_log_object_idx ON audit_log (object, id);
CREATE INDEX audit_log_token_idx ON audit_log (token_id, id);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- ---- documents: what the API shows of each object ----

CREATE FUNCTION mq_ts(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- The ETag of an object: its id (never reused) and version, so that a deleted and re-created
-- object never matches an old ETag.
CREATE FUNCTION mq_etag(id bigint, version bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT id || '.' || version
$$;

CREATE FUNCTION mq_domain_doc(d domains) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'name', d.name,
        'pool_limit_bytes', d.pool_limit_bytes,
        'default_storage_limit_bytes', d.default_storage_limit_bytes,
        'default_message_limit', d.default_message_limit,
        'default_max_message_size', d.default_max_message_size,
        'max_message_size', d.max_message_size,
        'grace_percent', d.grace_percent,
        'created_at', mq_ts(d.created_at),
        'updated_at', mq_ts(d.updated_at),
        'version', d.version,
        'etag', mq_etag(d.id, d.version))
$$;

CREATE FUNCTION mq_mailbox_doc(m mailboxes) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'address', m.address,
        'domain', d.name,
        'storage_limit_bytes', m.storage_limit_bytes,
        'message_limit', m.message_limit,
        'max_message_size', m.max_message_size,
        'grace_percent', m.grace_percent,
        'enabled', m.enabled,
        'effective', jsonb_build_object(
            'storage_limit_bytes', m.effective_storage_limit_bytes,
            'message_limit', coalesce(m.message_limit, d.default_message_limit),
            'max_message_size', coalesce(m.max_message_size, d.default_max_message_size)),
        'usage', jsonb_build_object(
            'bytes', m.used_bytes,
            'messages', m.used_messages,
            'percent', CASE WHEN m.usage_ratio < 0 OR m.usage_ratio = 'Infinity' THEN NULL
                            ELSE round((m.usage_ratio * 100)::numeric, 2) END,
            'over_quota', coalesce(m.used_bytes > m.effective_storage_limit_bytes, false),
            'source', m.usage_source,
            'set_at', mq_ts(m.usage_set_at)),
        'created_at', mq_ts(m.created_at),
        'updated_at', mq_ts(m.updated_at),
        'version', m.version,
        'etag', mq_etag(m.id, m.version))
    FROM domains d WHERE d.id = m.domain_id
$$;

CREATE FUNCTION mq_alias_doc(a aliases) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'address', a.address,
        'domain', (SELECT name FROM domains WHERE id = a.domain_id),
        'catch_all', a.local_part IS NULL,
        'targets', coalesce((SELECT jsonb_agg(m.address ORDER BY m.address)
                             FROM alias_targets t JOIN mailboxes m ON m.id = t.mailbox_id
                             WHERE t.alias_id = a.id), '[]'::jsonb),
        'created_at', mq_ts(a.created_at),
        'updated_at', mq_ts(a.updated_at),
        'version', a.version,
        'etag', mq_etag(a.id, a.version))
$$;

CREATE FUNCTION mq_token_doc(t api_tokens) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', t.id,
        'name', t.name,
        'scope', t.scope,
        'mailbox', (SELECT address FROM mailboxes WHERE id = t.mailbox_id),
        'created_at', mq_ts(t.created_at),
        'created_by', t.created_by,
        'expires_at', mq_ts(t.expires_at),
        'revoked_at', mq_ts(t.revoked_at))
$$;

CREATE FUNCTION mq_audit(p_token bigint, p_action text, p_object text, p_before jsonb,
                         p_after jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO audit_log (token_id, action, object, before, after)
        VALUES (p_token, p_action, p_object, p_before, p_after)
$$;

-- ---- admin changes ----
-- Each takes the acting token (NULL: database access), the object's key, the fields to set as
-- a JSON object already validated by the caller (names and types; NULL values mean "inherit"
-- or "unlimited"), and the version the caller last saw (NULL: do not check). It returns a
-- code ('ok', 'created', 'not_found', 'exists', 'version_mismatch', 'unknown_domain',
-- 'unknown_target', 'no_targets') and the object's document (the current one on a mismatch).

CREATE FUNCTION mq_admin_domain(p_token bigint, p_op text, p_name text, p_fields jsonb,
                                p_etag text, OUT code text, OUT doc jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    d domains%ROWTYPE;
    f jsonb := coalesce(p_fields, '{}');
    before jsonb;
BEGIN
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
    END IF;
END $$;

CREATE FUNCTION mq_admin_mailbox(p_token bigint, p_op text, p_local text, p_domain text,
                                 p_fields jsonb, p_etag text, OUT code text, OUT doc jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    m mailboxes%ROWTYPE;
    dom bigint;
    f jsonb := coalesce(p_fields, '{}');
    before jsonb;
    addr text := p_local || '@' || p_domain;
BEGIN
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
    END IF;
END $$;

-- Alias fields: targets (replace), add_targets, remove_targets: arrays of mailbox addresses.
-- p_local NULL is the catch-all. An alias never ends up without targets ('no_targets').
CREATE FUNCTION mq_admin_alias(p_token bigint, p_op text, p_local text, p_domain text,
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
BEGIN
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
    END IF;
END $$;

-- Tokens: created with the SHA-256 of the whole token text (the caller made the secret);
-- revoking sets revoked_at. The secret itself is never stored.
CREATE FUNCTION mq_admin_token_create(p_token bigint, p_id bigint, p_name text, p_scope text,
                                      p_mailbox text, p_hash bytea, p_expires timestamptz,
                                      OUT code text, OUT doc jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    t api_tokens%ROWTYPE;
    mb bigint;
BEGIN
    IF p_mailbox IS NOT NULL THEN
        SELECT id INTO mb FROM mailboxes WHERE address = p_mailbox;
        IF NOT FOUND THEN
            code := 'unknown_mailbox';
            RETURN;
        END IF;
    END IF;
    INSERT INTO api_tokens (id, name, scope, mailbox_id, secret_hash, created_by, expires_at)
        VALUES (p_id, p_name, p_scope, mb, p_hash, p_token, p_expires) RETURNING * INTO t;
    code := 'created';
    doc := mq_token_doc(t);
    PERFORM mq_audit(p_token, 'token.create', 'token:' || t.id, NULL, doc);
END $$;

-- The id of a new token, before its row exists: the token text embeds it.
CREATE FUNCTION mq_token_next_id() RETURNS bigint LANGUAGE sql AS $$
    SELECT nextval(pg_get_serial_sequence('api_tokens', 'id'))
$$;

CREATE FUNCTION mq_admin_token_revoke(p_token bigint, p_id bigint, OUT code text, OUT doc jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    t api_tokens%ROWTYPE;
    before jsonb;
BEGIN
    SELECT * INTO t FROM api_tokens WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        code := 'not_found';
        RETURN;
    END IF;
    before := mq_token_doc(t);
    code := 'ok';
    IF t.revoked_at IS NULL THEN
        UPDATE api_tokens SET revoked_at = now() WHERE id = p_id RETURNING * INTO t;
        PERFORM mq_audit(p_token, 'token.revoke', 'token:' || t.id, before, mq_token_doc(t));
    END IF;
    doc := mq_token_doc(t);
END $$;
