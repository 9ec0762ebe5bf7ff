-- 013_warnings: quota warnings, detected where usage changes (here, in PostgreSQL) and kept in
-- an outbox until a daemon has delivered them.
--
-- Each mailbox carries, per resource (storage, messages), its warning level: the highest
-- threshold that fired and has not been re-armed (0: none). Whenever a mailbox's usage or
-- effective limit changes (a usage report, a recalculation, Dovecot's quota_clone, a new limit
-- on the mailbox or a new domain default), mq_mailbox_warn() computes the new level with
-- mq_warn_step(): a level is re-armed once usage falls below it by more than the hysteresis,
-- and a threshold fires when usage reaches it while it is not armed-and-fired already. The level
-- only ever rises by firing, so "the level rose" is the event; an AFTER trigger writes it to
-- warning_events with one warning_deliveries row per delivery channel enabled at that moment.
-- The row lock every usage change already takes on its mailbox makes this exactly once, across
-- any number of daemons and restarts.
--
-- Daemons deliver: each claims one due delivery with FOR UPDATE SKIP LOCKED and holds the row
-- lock while it sends, then records the outcome in the same transaction, so two daemons never
-- send one delivery at once; a daemon that dies mid-send releases the lock with its connection,
-- and the next attempt carries the same event id (receivers deduplicate on it).
--
-- Threshold changes apply to each mailbox at its next usage or limit change (re-evaluating a
-- million mailboxes at once would hold a million row locks); limit changes apply at once.

-- ---- settings ----

CREATE FUNCTION mq_warn_thresholds_ok(t smallint[]) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT cardinality(t) BETWEEN 0 AND 10
       AND array_position(t, NULL) IS NULL
       AND NOT EXISTS (SELECT 1 FROM unnest(t) WITH ORDINALITY a (v, i)
                       WHERE v NOT BETWEEN 1 AND 1000 OR (i > 1 AND v <= t[i - 1]))
$$;

-- one row: the installation's thresholds (percent of the effective limit, ascending),
-- hysteresis (points) and the channels new events are delivered on
CREATE TABLE warning_settings (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    thresholds smallint[] NOT NULL DEFAULT '{80,90,100}' CHECK (mq_warn_thresholds_ok(thresholds)),
    hysteresis smallint NOT NULL DEFAULT 5 CHECK (hysteresis BETWEEN 0 AND 50),
    channels   text[] NOT NULL DEFAULT '{}'
        CHECK (channels <@ ARRAY['webhook', 'mail'] AND array_position(channels, NULL) IS NULL),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO warning_settings DEFAULT VALUES;

-- a domain's own thresholds and hysteresis; NULL (or no row) inherits the installation's
CREATE TABLE domain_warning_settings (
    domain_id  bigint PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    thresholds smallint[] CHECK (thresholds IS NULL OR mq_warn_thresholds_ok(thresholds)),
    hysteresis smallint CHECK (hysteresis BETWEEN 0 AND 50),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- ---- levels on mailboxes ----

-- the effective message limit, derived like the effective storage limit (005)
ALTER TABLE mailboxes
    ADD COLUMN effective_message_limit bigint,
    ADD COLUMN warn_storage smallint NOT NULL DEFAULT 0,
    ADD COLUMN warn_messages smallint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION mq_mailbox_derive() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d domains%ROWTYPE;
BEGIN
    SELECT * INTO d FROM domains WHERE id = NEW.domain_id;
    NEW.address := NEW.local_part || '@' || d.name;
    NEW.effective_storage_limit_bytes :=
        coalesce(NEW.storage_limit_bytes, d.default_storage_limit_bytes);
    NEW.effective_message_limit := coalesce(NEW.message_limit, d.default_message_limit);
    RETURN NEW;
END $$;
DROP TRIGGER mailboxes_derive ON mailboxes;
CREATE TRIGGER mailboxes_derive BEFORE INSERT OR UPDATE OF domain_id, local_part,
    storage_limit_bytes, message_limit ON mailboxes FOR EACH ROW EXECUTE FUNCTION mq_mailbox_derive();

CREATE OR REPLACE FUNCTION mq_domain_propagate() RETURNS trigger LANGUAGE plpgsql AS $$
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
    IF NEW.default_message_limit IS DISTINCT FROM OLD.default_message_limit THEN
        UPDATE mailboxes SET effective_message_limit = NEW.default_message_limit
            WHERE domain_id = NEW.id AND message_limit IS NULL;
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER domains_propagate ON domains;
CREATE TRIGGER domains_propagate AFTER UPDATE OF name, default_storage_limit_bytes,
    default_message_limit ON domains FOR EACH ROW EXECUTE FUNCTION mq_domain_propagate();

-- Usage as a percentage of a limit: NULL when there is no limit; a limit of 0 is 0 % while
-- nothing is stored and beyond every threshold once anything is.
CREATE FUNCTION mq_warn_percent(used bigint, lim bigint) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN lim IS NULL THEN NULL
                WHEN lim = 0 THEN CASE WHEN used > 0 THEN 'Infinity'::numeric ELSE 0 END
                ELSE used::numeric * 100 / lim END
$$;

-- The next level from level at percent p: the highest threshold not yet re-armed (p stays
-- at or above it minus the hysteresis), or the highest threshold p has reached, whichever is
-- higher. It exceeds level exactly when a threshold fires. (PL/pgSQL over the ascending array:
-- it runs in every usage report's UPDATE, and the same rule as two SQL subqueries cost reports
-- 38 % of their throughput, this about 10 %: bench/report_triggers, docs/warnings.md.)
CREATE FUNCTION mq_warn_step(p numeric, level smallint, thresholds smallint[], hyst smallint)
RETURNS smallint LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t smallint;
    keep smallint := 0;
    up smallint := 0;
BEGIN
    IF p IS NULL THEN
        RETURN 0;
    END IF;
    FOREACH t IN ARRAY thresholds LOOP
        IF p >= t THEN
            up := t;
        ELSIF t <= level AND p >= t - hyst THEN
            keep := t;
        END IF;
    END LOOP;
    RETURN greatest(up, keep);
END $$;

-- The backfill: effective message limits, and the levels the default settings give today's
-- usage, so that a mailbox over a threshold already neither shows no warning until its next
-- change nor fires a stale one then. None of this is an edit: updated_at stays, and the
-- daemons (not yet reading the levels) need no notification per mailbox.
ALTER TABLE mailboxes DISABLE TRIGGER mailboxes_touch;
UPDATE mailboxes m
    SET effective_message_limit = coalesce(m.message_limit, d.default_message_limit),
        warn_storage = mq_warn_step(mq_warn_percent(m.used_bytes, m.effective_storage_limit_bytes),
                                    0::smallint, '{80,90,100}', 5::smallint),
        warn_messages = mq_warn_step(mq_warn_percent(m.used_messages,
                                                     coalesce(m.message_limit,
                                                              d.default_message_limit)),
                                     0::smallint, '{80,90,100}', 5::smallint)
    FROM domains d
    WHERE d.id = m.domain_id;
ALTER TABLE mailboxes ENABLE TRIGGER mailboxes_touch;

-- BEFORE INSERT OR UPDATE: the levels follow usage and limits; nothing else may set them.
CREATE FUNCTION mq_mailbox_warn() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    thr smallint[];
    hy smallint;
    os smallint := 0;
    om smallint := 0;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        os := OLD.warn_storage;
        om := OLD.warn_messages;
        IF (OLD.used_bytes, OLD.used_messages, OLD.effective_storage_limit_bytes,
            OLD.effective_message_limit)
           IS NOT DISTINCT FROM
           (NEW.used_bytes, NEW.used_messages, NEW.effective_storage_limit_bytes,
            NEW.effective_message_limit) THEN
            NEW.warn_storage := os;
            NEW.warn_messages := om;
            RETURN NEW;
        END IF;
    END IF;
    IF NEW.effective_storage_limit_bytes IS NULL AND NEW.effective_message_limit IS NULL THEN
        NEW.warn_storage := 0;
        NEW.warn_messages := 0;
        RETURN NEW;
    END IF;
    SELECT coalesce(dw.thresholds, g.thresholds), coalesce(dw.hysteresis, g.hysteresis)
        INTO thr, hy
        FROM warning_settings g
        LEFT JOIN domain_warning_settings dw ON dw.domain_id = NEW.domain_id;
    NEW.warn_storage := mq_warn_step(mq_warn_percent(NEW.used_bytes,
                                                     NEW.effective_storage_limit_bytes),
                                     os, thr, hy);
    NEW.warn_messages := mq_warn_step(mq_warn_percent(NEW.used_messages,
                                                      NEW.effective_message_limit),
                                      om, thr, hy);
    RETURN NEW;
END $$;
-- named so that it runs after mailboxes_derive (BEFORE triggers run in name order)
CREATE TRIGGER mailboxes_warn BEFORE INSERT OR UPDATE ON mailboxes
    FOR EACH ROW EXECUTE FUNCTION mq_mailbox_warn();

-- ---- the outbox ----

CREATE TABLE warning_events (
    id          bigserial PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    mailbox_id  bigint REFERENCES mailboxes (id) ON DELETE SET NULL,
    address     text COLLATE "C" NOT NULL,   -- as it was when the warning fired
    resource    text NOT NULL CHECK (resource IN ('storage', 'messages')),
    threshold   smallint NOT NULL,
    percent     numeric,                     -- NULL: the limit is 0
    used        bigint NOT NULL,
    limit_value bigint NOT NULL,
    cause       text NOT NULL CHECK (cause IN ('created', 'usage', 'recalculation', 'limit')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX warning_events_mailbox_idx ON warning_events (mailbox_id); -- ON DELETE SET NULL
CREATE INDEX warning_events_address_idx ON warning_events (address, id);  -- ?mailbox=
CREATE INDEX warning_events_created_idx ON warning_events (created_at);

CREATE TABLE warning_deliveries (
    event_id   bigint NOT NULL REFERENCES warning_events (id) ON DELETE CASCADE,
    channel    text NOT NULL CHECK (channel IN ('webhook', 'mail')),
    state      text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    tries      integer NOT NULL DEFAULT 0,
    next_at    timestamptz NOT NULL DEFAULT now(),
    last_error text CHECK (length(last_error) <= 500),
    done_at    timestamptz,
    PRIMARY KEY (event_id, channel)
);
CREATE INDEX warning_deliveries_due_idx ON warning_deliveries (channel, next_at)
    WHERE state = 'pending';
CREATE INDEX warning_deliveries_open_idx ON warning_deliveries (event_id, state)
    WHERE state <> 'delivered';                                           -- ?state=

-- AFTER INSERT OR UPDATE, when a level rose: the event, its deliveries and a wake-up for the
-- daemons (channel mailquota_warnings; the payload carries nothing).
CREATE FUNCTION mq_mailbox_warn_fire() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ch text[];
    cause text;
    ev bigint;
    v record;
    n integer := 0;
    os smallint := 0;
    om smallint := 0;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        os := OLD.warn_storage;
        om := OLD.warn_messages;
    END IF;
    SELECT channels INTO ch FROM warning_settings;
    cause := CASE WHEN TG_OP = 'INSERT' THEN 'created'
                  WHEN (OLD.effective_storage_limit_bytes, OLD.effective_message_limit)
                       IS DISTINCT FROM
                       (NEW.effective_storage_limit_bytes, NEW.effective_message_limit)
                      THEN 'limit'
                  WHEN OLD.usage_set_at IS DISTINCT FROM NEW.usage_set_at THEN 'recalculation'
                  ELSE 'usage' END;
    FOR v IN SELECT * FROM (VALUES
                 ('storage', NEW.warn_storage, os, NEW.used_bytes,
                  NEW.effective_storage_limit_bytes),
                 ('messages', NEW.warn_messages, om, NEW.used_messages,
                  NEW.effective_message_limit)) r (resource, level, old, used, lim)
             WHERE r.level > r.old LOOP
        INSERT INTO warning_events (mailbox_id, address, resource, threshold, percent, used,
                                    limit_value, cause)
            VALUES (NEW.id, NEW.address, v.resource, v.level,
                    nullif(round(mq_warn_percent(v.used, v.lim), 1), 'Infinity'),
                    v.used, v.lim, cause)
            RETURNING id INTO ev;
        INSERT INTO warning_deliveries (event_id, channel) SELECT ev, c FROM unnest(ch) c;
        n := n + 1;
    END LOOP;
    IF n > 0 AND cardinality(ch) > 0 THEN
        PERFORM pg_notify('mailquota_warnings', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER mailboxes_warn_fire AFTER INSERT ON mailboxes FOR EACH ROW
    WHEN (NEW.warn_storage > 0 OR NEW.warn_messages > 0)
    EXECUTE FUNCTION mq_mailbox_warn_fire();
CREATE TRIGGER mailboxes_warn_fire_update AFTER UPDATE ON mailboxes FOR EACH ROW
    WHEN (NEW.warn_storage > OLD.warn_storage OR NEW.warn_messages > OLD.warn_messages)
    EXECUTE FUNCTION mq_mailbox_warn_fire();

-- daemons keep the levels in their view (GET /v1/self): a change of level notifies them too
DROP TRIGGER mailboxes_notify_update ON mailboxes;
CREATE TRIGGER mailboxes_notify_update AFTER UPDATE ON mailboxes FOR EACH ROW
    WHEN ((OLD.domain_id, OLD.local_part, OLD.storage_limit_bytes, OLD.message_limit,
           OLD.max_message_size, OLD.grace_percent, OLD.used_bytes, OLD.used_messages,
           OLD.enabled, OLD.warn_storage, OLD.warn_messages)
          IS DISTINCT FROM
          (NEW.domain_id, NEW.local_part, NEW.storage_limit_bytes, NEW.message_limit,
           NEW.max_message_size, NEW.grace_percent, NEW.used_bytes, NEW.used_messages,
           NEW.enabled, NEW.warn_storage, NEW.warn_messages))
    EXECUTE FUNCTION mq_notify_row();

-- ---- documents ----

-- what the API shows of an event, and (without deliveries) the body a webhook receives
CREATE FUNCTION mq_warning_payload(e warning_events) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', e.event_id,
        'type', 'quota.warning',
        'mailbox', e.address,
        'resource', e.resource,
        'threshold', e.threshold,
        'percent', e.percent,
        'used', e.used,
        'limit', e.limit_value,
        'cause', e.cause,
        'created_at', mq_ts(e.created_at))
$$;

CREATE FUNCTION mq_warning_doc(e warning_events) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT mq_warning_payload(e) || jsonb_build_object(
        'seq', e.id,
        'deliveries', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                    'channel', d.channel,
                                    'state', d.state,
                                    'tries', d.tries,
                                    'next_attempt_at', CASE WHEN d.state = 'pending'
                                                            THEN mq_ts(d.next_at) END,
                                    'last_error', d.last_error,
                                    'done_at', mq_ts(d.done_at)) ORDER BY d.channel)
                                FROM warning_deliveries d WHERE d.event_id = e.id),
                               '[]'::jsonb))
$$;

CREATE OR REPLACE FUNCTION mq_mailbox_doc(m mailboxes) RETURNS jsonb LANGUAGE sql STABLE AS $$
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
            'message_limit', m.effective_message_limit,
            'max_message_size', coalesce(m.max_message_size, d.default_max_message_size)),
        'usage', jsonb_build_object(
            'bytes', m.used_bytes,
            'messages', m.used_messages,
            'percent', CASE WHEN m.usage_ratio < 0 OR m.usage_ratio = 'Infinity' THEN NULL
                            ELSE round((m.usage_ratio * 100)::numeric, 2) END,
            'over_quota', coalesce(m.used_bytes > m.effective_storage_limit_bytes, false),
            'source', m.usage_source,
            'set_at', mq_ts(m.usage_set_at)),
        'warnings', jsonb_build_object(
            'storage', nullif(m.warn_storage, 0),
            'messages', nullif(m.warn_messages, 0)),
        'created_at', mq_ts(m.created_at),
        'updated_at', mq_ts(m.updated_at),
        'version', m.version,
        'etag', mq_etag(m.id, m.version))
    FROM domains d WHERE d.id = m.domain_id
$$;

-- The settings as the API shows them: the installation's, and each domain that has its own.
CREATE FUNCTION mq_warning_settings_doc() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'thresholds', to_jsonb(g.thresholds),
        'hysteresis', g.hysteresis,
        'channels', to_jsonb(g.channels),
        'updated_at', mq_ts(g.updated_at),
        'domains', coalesce((SELECT jsonb_object_agg(d.name, jsonb_build_object(
                                 'thresholds', to_jsonb(s.thresholds),
                                 'hysteresis', s.hysteresis))
                             FROM domain_warning_settings s JOIN domains d ON d.id = s.domain_id),
                            '{}'::jsonb))
    FROM warning_settings g
$$;

-- Change the settings (fields already validated by the caller): a JSON object with any of
-- thresholds, hysteresis, channels, and domains: {name: {thresholds, hysteresis} | null}
-- (null: the domain inherits again). Returns 'ok' and the new document, or 'unknown_domain'.
CREATE FUNCTION mq_warning_settings_set(p_token bigint, p_fields jsonb,
                                        OUT code text, OUT doc jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    before jsonb := mq_warning_settings_doc();
    dn text;
    dv jsonb;
    did bigint;
BEGIN
    UPDATE warning_settings SET
        thresholds = CASE WHEN p_fields ? 'thresholds'
            THEN ARRAY(SELECT v::smallint FROM jsonb_array_elements_text(p_fields->'thresholds')
                  WITH ORDINALITY a (v, i) ORDER BY i)
            ELSE thresholds END,
        hysteresis = CASE WHEN p_fields ? 'hysteresis'
            THEN (p_fields->>'hysteresis')::smallint ELSE hysteresis END,
        channels = CASE WHEN p_fields ? 'channels'
            THEN ARRAY(SELECT v FROM jsonb_array_elements_text(p_fields->'channels')
                  WITH ORDINALITY a (v, i) ORDER BY i) ELSE channels END,
        updated_at = now();
    FOR dn, dv IN SELECT key, value FROM jsonb_each(coalesce(p_fields->'domains', '{}')) LOOP
        SELECT id INTO did FROM domains WHERE name = dn;
        IF NOT FOUND THEN
            code := 'unknown_domain';
            doc := jsonb_build_object('domain', dn);
            RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = 'unknown_domain';
        END IF;
        IF jsonb_typeof(dv) = 'null' THEN
            DELETE FROM domain_warning_settings WHERE domain_id = did;
        ELSE
            INSERT INTO domain_warning_settings (domain_id, thresholds, hysteresis)
                VALUES (did,
                        CASE WHEN jsonb_typeof(dv->'thresholds') = 'array' THEN
                            ARRAY(SELECT v::smallint FROM jsonb_array_elements_text(dv->'thresholds')
                                  WITH ORDINALITY a (v, i) ORDER BY i)
                        END,
                        (dv->>'hysteresis')::smallint)
                ON CONFLICT (domain_id) DO UPDATE
                    SET thresholds = EXCLUDED.thresholds, hysteresis = EXCLUDED.hysteresis,
                        updated_at = now();
        END IF;
    END LOOP;
    code := 'ok';
    doc := mq_warning_settings_doc();
    PERFORM mq_audit(p_token, 'warnings.settings', 'warnings', before, doc);
EXCEPTION WHEN no_data_found THEN
    -- the unknown domain is answered, nothing of this call stays
    code := 'unknown_domain';
    doc := jsonb_build_object('domain', dn);
END $$;
