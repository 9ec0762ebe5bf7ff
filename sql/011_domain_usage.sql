-- 011_domain_usage: each domain's usage (bytes, messages, mailboxes, over-quota mailboxes) kept
-- current without a hot row, for domain documents, domain lists sorted and filtered by usage,
-- and GET /v1/stats.
--
-- Why deltas: usage reports are the hot write path (mq_apply_usage locks one mailbox row).
-- Keeping a running total on one row per domain would make every report of a domain update,
-- and so lock, that row until its transaction ends: the reports of a domain's thousands of
-- mailboxes would queue behind each other. Instead triggers on mailboxes append what changed
-- to domain_usage_delta (an insert locks no shared row), and mq_fold_domain_usage(), run every
-- few seconds by the daemons (one at a time: an advisory lock), moves it into domain_usage.
-- Every read is exact all the same: the folded row plus the deltas not folded yet (an index on
-- domain_id finds them), read in one snapshot, so a fold that commits meanwhile changes nothing
-- a reader sees. docs/design.md has the measurements.
--
-- What the figures are:
--  * bytes, messages: the sums of the domain's mailboxes' used_bytes and used_messages
--    (enabled or not); bytes is the pool usage that checks compare with pool_limit_bytes.
--  * mailboxes: how many the domain has.
--  * over_quota: how many of them have usage.over_quota true in their document
--    (used_bytes above the effective storage limit; grace and message counts aside): exactly
--    the mailboxes GET /v1/mailboxes?domain=D&over_quota=true lists.
--  * the pool ratio: bytes / pool_limit_bytes; -1 without a pool limit, Infinity for a zero
--    limit with bytes used (as mailboxes.usage_ratio): sorts and filters by pool use.
-- Sums are numeric (no overflow whatever the mailboxes hold); documents show them saturated at
-- 2^63-1.

-- ---- the folded figures: one row per domain, written only by the fold (and the rebuild) ----

CREATE TABLE domain_usage (
    domain_id   bigint PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    pool_limit_bytes bigint,    -- a copy of domains.pool_limit_bytes, for pool_ratio's index
    bytes       numeric NOT NULL DEFAULT 0,
    messages    numeric NOT NULL DEFAULT 0,
    mailboxes   bigint NOT NULL DEFAULT 0,
    over_quota  bigint NOT NULL DEFAULT 0,
    folded_at   timestamptz NOT NULL DEFAULT now(),
    pool_ratio  float8 NOT NULL GENERATED ALWAYS AS (
        CASE WHEN pool_limit_bytes IS NULL THEN -1
             WHEN pool_limit_bytes = 0 THEN CASE WHEN bytes > 0 THEN 'Infinity'::float8 ELSE 0 END
             ELSE (bytes / pool_limit_bytes)::float8 END) STORED
);

-- ---- what changed since: appended by the trigger below, removed by the fold ----

CREATE TABLE domain_usage_delta (
    domain_id   bigint NOT NULL,  -- no foreign key: a domain's own deletion writes deltas too
    d_bytes     numeric NOT NULL,
    d_messages  numeric NOT NULL,
    d_mailboxes bigint NOT NULL,
    d_over_quota bigint NOT NULL
);
CREATE INDEX domain_usage_delta_domain_idx ON domain_usage_delta (domain_id);
-- rows come and go every few seconds: vacuum by count, not by a fraction of a table that is
-- nearly empty whenever autovacuum looks
ALTER TABLE domain_usage_delta SET (autovacuum_vacuum_scale_factor = 0,
                                    autovacuum_vacuum_threshold = 10000,
                                    autovacuum_vacuum_insert_scale_factor = 0,
                                    autovacuum_vacuum_insert_threshold = 10000);

-- What a change to mailboxes did to its domains' figures. A usage report updates one row: a
-- row trigger, called only when a figure moved (WHEN), appends one row (7 % of a report's cost
-- in the database; a statement trigger with transition tables cost twice that). Inserts and
-- deletes come in bulk (a domain's deletion with 100,000 mailboxes): statement triggers with
-- transition tables append one row per domain and statement.
CREATE FUNCTION mq_mailbox_usage_delta() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_over integer := (OLD.used_bytes > OLD.effective_storage_limit_bytes)::integer;
    now_over integer := (NEW.used_bytes > NEW.effective_storage_limit_bytes)::integer;
BEGIN
    IF OLD.domain_id = NEW.domain_id THEN
        INSERT INTO domain_usage_delta VALUES (NEW.domain_id, NEW.used_bytes - OLD.used_bytes,
            NEW.used_messages - OLD.used_messages, 0, coalesce(now_over, 0) - coalesce(was_over, 0));
    ELSE
        INSERT INTO domain_usage_delta VALUES
            (OLD.domain_id, -OLD.used_bytes, -OLD.used_messages, -1, -coalesce(was_over, 0)),
            (NEW.domain_id, NEW.used_bytes, NEW.used_messages, 1, coalesce(now_over, 0));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER mailboxes_usage_update AFTER UPDATE ON mailboxes FOR EACH ROW
    WHEN ((OLD.domain_id, OLD.used_bytes, OLD.used_messages,
           coalesce(OLD.used_bytes > OLD.effective_storage_limit_bytes, false))
          IS DISTINCT FROM
          (NEW.domain_id, NEW.used_bytes, NEW.used_messages,
           coalesce(NEW.used_bytes > NEW.effective_storage_limit_bytes, false)))
    EXECUTE FUNCTION mq_mailbox_usage_delta();

CREATE FUNCTION mq_mailboxes_usage_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO domain_usage_delta
            SELECT n.domain_id, sum(n.used_bytes), sum(n.used_messages), count(*),
                   count(*) FILTER (WHERE n.used_bytes > n.effective_storage_limit_bytes)
            FROM new_rows n GROUP BY n.domain_id;
    ELSE
        INSERT INTO domain_usage_delta
            SELECT o.domain_id, -sum(o.used_bytes), -sum(o.used_messages), -count(*),
                   -count(*) FILTER (WHERE o.used_bytes > o.effective_storage_limit_bytes)
            FROM old_rows o GROUP BY o.domain_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER mailboxes_usage_insert AFTER INSERT ON mailboxes
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mq_mailboxes_usage_delta();
CREATE TRIGGER mailboxes_usage_delete AFTER DELETE ON mailboxes
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mq_mailboxes_usage_delta();

-- every domain has its row from the start (sorting by usage then walks one index); its pool
-- limit is copied along
CREATE FUNCTION mq_domain_usage_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO domain_usage (domain_id, pool_limit_bytes) VALUES (NEW.id, NEW.pool_limit_bytes);
    ELSE
        UPDATE domain_usage SET pool_limit_bytes = NEW.pool_limit_bytes WHERE domain_id = NEW.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER domains_usage_insert AFTER INSERT ON domains
    FOR EACH ROW EXECUTE FUNCTION mq_domain_usage_row();
CREATE TRIGGER domains_usage_pool AFTER UPDATE OF pool_limit_bytes ON domains FOR EACH ROW
    WHEN (OLD.pool_limit_bytes IS DISTINCT FROM NEW.pool_limit_bytes)
    EXECUTE FUNCTION mq_domain_usage_row();

-- ---- folding ----

-- Move up to p_max deltas into domain_usage, in one transaction: returns how many were folded
-- (p_max: call again), or -1 when another session is folding now (nothing to do here). Deltas
-- of deleted domains are dropped. Readers see the figures before or after, never a mix; writers
-- never wait for it (it locks only domain_usage rows, which no writer but an admin's change of
-- a pool limit touches, and it skips a row such a change holds).
CREATE FUNCTION mq_fold_domain_usage(p_max integer DEFAULT 50000) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    -- pg_advisory_xact_lock(fold_space, 0): the two-integer form, apart from the migration
    -- lock (one bigint) and the usage keys ('mquk', sql/009). 'mqdu' in ASCII.
    fold_space CONSTANT integer := 1836147829;
    n bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(fold_space, 0) THEN
        RETURN -1;
    END IF;
    -- Only domains whose row can be taken now: a row held by an admin's change (a pool limit,
    -- perhaps in a long import that changes several domains in its own order) is skipped, and
    -- its deltas wait for the next fold, so the fold never waits for, nor deadlocks with, a
    -- writer. Deltas of deleted domains (no row any more) are dropped.
    WITH batch AS (
        SELECT ctid, domain_id FROM domain_usage_delta LIMIT p_max
    ), held AS (
        SELECT du.domain_id FROM domain_usage du
            WHERE du.domain_id IN (SELECT domain_id FROM batch)
            FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM domain_usage_delta
            WHERE ctid = ANY (ARRAY(
                SELECT b.ctid FROM batch b
                WHERE b.domain_id IN (SELECT domain_id FROM held)
                   OR NOT EXISTS (SELECT 1 FROM domains d WHERE d.id = b.domain_id)))
            RETURNING *
    ), s AS (
        SELECT domain_id, sum(d_bytes) AS b, sum(d_messages) AS m, sum(d_mailboxes) AS c,
               sum(d_over_quota) AS o, count(*) AS k
        FROM gone GROUP BY domain_id
    ), u AS (
        UPDATE domain_usage du SET bytes = du.bytes + s.b, messages = du.messages + s.m,
                                   mailboxes = du.mailboxes + s.c,
                                   over_quota = du.over_quota + s.o, folded_at = now()
            FROM s WHERE du.domain_id = s.domain_id AND (s.b, s.m, s.c, s.o) <> (0, 0, 0, 0)
    )
    SELECT coalesce(sum(k), 0) INTO n FROM s;
    RETURN n;
END $$;

-- Recompute every domain's figures from the mailboxes (the migration's backfill; a repair after
-- writes that bypass triggers, such as TRUNCATE or session_replication_role = replica).
-- Writers to mailboxes wait meanwhile.
CREATE FUNCTION mq_rebuild_domain_usage() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE mailboxes IN SHARE MODE;
    LOCK TABLE domain_usage_delta IN EXCLUSIVE MODE;
    DELETE FROM domain_usage_delta;
    INSERT INTO domain_usage (domain_id, pool_limit_bytes)
        SELECT id, pool_limit_bytes FROM domains ON CONFLICT (domain_id) DO NOTHING;
    UPDATE domain_usage du SET bytes = coalesce(s.b, 0), messages = coalesce(s.m, 0),
                               mailboxes = coalesce(s.c, 0), over_quota = coalesce(s.o, 0),
                               pool_limit_bytes = d.pool_limit_bytes, folded_at = now()
        FROM domains d
        LEFT JOIN (SELECT domain_id, sum(used_bytes) AS b, sum(used_messages) AS m,
                          count(*) AS c,
                          count(*) FILTER (WHERE used_bytes > effective_storage_limit_bytes) AS o
                   FROM mailboxes GROUP BY domain_id) s ON s.domain_id = d.id
        WHERE du.domain_id = d.id;
END $$;
SELECT mq_rebuild_domain_usage();

-- ---- reading: the folded row plus what is not folded yet ----

-- The domains with deltas not folded yet, with their figures now.
CREATE VIEW domain_usage_pending AS
    SELECT u.domain_id, u.pool_limit_bytes, u.bytes + p.b AS bytes, u.messages + p.m AS messages,
           u.mailboxes + p.c AS mailboxes, u.over_quota + p.o AS over_quota,
           CASE WHEN u.pool_limit_bytes IS NULL THEN -1
                WHEN u.pool_limit_bytes = 0
                    THEN CASE WHEN u.bytes + p.b > 0 THEN 'Infinity'::float8 ELSE 0 END
                ELSE ((u.bytes + p.b) / u.pool_limit_bytes)::float8 END AS pool_ratio
    FROM domain_usage u
    JOIN (SELECT domain_id, sum(d_bytes) AS b, sum(d_messages) AS m,
                 sum(d_mailboxes)::bigint AS c, sum(d_over_quota)::bigint AS o
          FROM domain_usage_delta GROUP BY domain_id) p ON p.domain_id = u.domain_id;

-- Every domain's figures now: those without pending deltas straight from domain_usage (a page
-- sorted by a figure walks that figure's index: admin_list.c spells this union out, with the
-- page's order and limit inside its first half), the few others summed. Read it within one
-- statement (or one snapshot).
CREATE VIEW domain_usage_now AS
    SELECT u.domain_id, u.pool_limit_bytes, u.bytes, u.messages, u.mailboxes, u.over_quota,
           u.pool_ratio
    FROM domain_usage u
    WHERE NOT EXISTS (SELECT 1 FROM domain_usage_delta x WHERE x.domain_id = u.domain_id)
    UNION ALL
    SELECT * FROM domain_usage_pending;

-- a sum as a document shows it: saturated at 2^63-1, the API's largest integer
CREATE FUNCTION mq_sat(n numeric) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT least(n, 9223372036854775807)::bigint
$$;

-- A domain's usage object from its figures and pool limit (inlined where it is called).
-- pool_percent: bytes as a percentage of the pool limit, two decimals; null without a pool
-- limit (and for a zero limit with bytes used, as a mailbox's percent). pool_remaining_bytes:
-- what the pool still takes (0 when full); null without a pool limit.
CREATE FUNCTION mq_domain_usage_json(pool bigint, bytes numeric, messages numeric,
                                     mailboxes bigint, over_quota bigint)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'bytes', mq_sat(bytes),
        'messages', mq_sat(messages),
        'mailboxes', mailboxes,
        'over_quota', over_quota,
        'pool_percent', CASE WHEN pool IS NULL OR (pool = 0 AND bytes > 0) THEN NULL
                             WHEN pool = 0 THEN 0.00
                             ELSE round(bytes * 100 / pool, 2) END,
        'pool_remaining_bytes', CASE WHEN pool IS NOT NULL
                                     THEN mq_sat(greatest(pool - bytes, 0)) END)
$$;

-- A domain's document from its row and its figures (a list reads the figures of a whole page
-- at once from domain_usage and domain_usage_pending, and this function is inlined there).
CREATE FUNCTION mq_domain_doc_with(d domains, bytes numeric, messages numeric, mailboxes bigint,
                                   over_quota bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'name', d.name,
        'pool_limit_bytes', d.pool_limit_bytes,
        'default_storage_limit_bytes', d.default_storage_limit_bytes,
        'default_message_limit', d.default_message_limit,
        'default_max_message_size', d.default_max_message_size,
        'max_message_size', d.max_message_size,
        'grace_percent', d.grace_percent,
        'usage', mq_domain_usage_json(d.pool_limit_bytes, bytes, messages, mailboxes, over_quota),
        'created_at', mq_ts(d.created_at),
        'updated_at', mq_ts(d.updated_at),
        'version', d.version,
        'etag', mq_etag(d.id, d.version))
$$;

-- One domain's document, its figures read now. (A domain without its domain_usage row, which
-- only writes with triggers off can leave, shows what its deltas say, from 0, until
-- mq_rebuild_domain_usage() runs.)
CREATE OR REPLACE FUNCTION mq_domain_doc(d domains) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT mq_domain_doc_with(d, coalesce(u.bytes, 0) + coalesce(sum(x.d_bytes), 0),
                              coalesce(u.messages, 0) + coalesce(sum(x.d_messages), 0),
                              (coalesce(u.mailboxes, 0) + coalesce(sum(x.d_mailboxes), 0))::bigint,
                              (coalesce(u.over_quota, 0) + coalesce(sum(x.d_over_quota), 0))::bigint)
    FROM (SELECT d.id) k
    LEFT JOIN domain_usage u ON u.domain_id = k.id
    LEFT JOIN domain_usage_delta x ON x.domain_id = k.id
    GROUP BY k.id, u.domain_id
$$;

-- A domain's document now holds usage, which deliveries change at any moment (and which each
-- statement of a function reads afresh): whether an admin change changed the domain is told by
-- its version (bumped by exactly the columns an admin edits, sql/005), no longer by comparing
-- the documents before and after. Otherwise as in sql/006.
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
    IF d.version <> (before->>'version')::bigint THEN
        PERFORM mq_audit(p_token, 'domain.update', p_name, before, doc);
        IF upsert THEN code := 'updated'; END IF;
    ELSIF upsert THEN
        code := 'unchanged';
    END IF;
END $$;

-- ---- indexes behind the domain list's usage orders and filters ----

CREATE INDEX domain_usage_bytes_idx ON domain_usage (bytes, domain_id);
CREATE INDEX domain_usage_messages_idx ON domain_usage (messages, domain_id);
CREATE INDEX domain_usage_mailboxes_idx ON domain_usage (mailboxes, domain_id);
CREATE INDEX domain_usage_over_quota_idx ON domain_usage (over_quota, domain_id);
CREATE INDEX domain_usage_pool_idx ON domain_usage (pool_ratio, domain_id);
