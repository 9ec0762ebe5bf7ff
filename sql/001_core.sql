-- 001_core: domains, mailboxes, aliases and their limits.
-- Sizes are bytes (bigint, never negative); NULL limits inherit (mailbox -> domain default)
-- or mean "unlimited" (domain level).

CREATE TABLE domains (
    id                          bigserial PRIMARY KEY,
    name                        text NOT NULL UNIQUE
        CHECK (name = lower(name) AND length(name) BETWEEN 1 AND 255 AND name !~ '[\s@]'),
    pool_limit_bytes            bigint CHECK (pool_limit_bytes >= 0),
    default_storage_limit_bytes bigint CHECK (default_storage_limit_bytes >= 0),
    default_message_limit       bigint CHECK (default_message_limit >= 0),
    default_max_message_size    bigint CHECK (default_max_message_size >= 0),
    max_message_size            bigint CHECK (max_message_size >= 0),
    grace_percent               integer CHECK (grace_percent BETWEEN 0 AND 1000),
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mailboxes (
    id                  bigserial PRIMARY KEY,
    domain_id           bigint NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    local_part          text NOT NULL
        CHECK (length(local_part) BETWEEN 1 AND 64 AND local_part !~ '[\s@[:cntrl:]]'),
    storage_limit_bytes bigint CHECK (storage_limit_bytes >= 0),
    message_limit       bigint CHECK (message_limit >= 0),
    max_message_size    bigint CHECK (max_message_size >= 0),
    grace_percent       integer CHECK (grace_percent BETWEEN 0 AND 1000),
    used_bytes          bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    used_messages       bigint NOT NULL DEFAULT 0 CHECK (used_messages >= 0),
    enabled             boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain_id, local_part)
);

-- local_part NULL is the domain's catch-all (@domain); at most one per domain.
CREATE TABLE aliases (
    id          bigserial PRIMARY KEY,
    domain_id   bigint NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    local_part  text
        CHECK (local_part IS NULL OR
               (length(local_part) BETWEEN 1 AND 64 AND local_part !~ '[\s@[:cntrl:]]')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (domain_id, local_part)
);

CREATE TABLE alias_targets (
    alias_id   bigint NOT NULL REFERENCES aliases (id) ON DELETE CASCADE,
    mailbox_id bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    PRIMARY KEY (alias_id, mailbox_id)
);

CREATE INDEX alias_targets_mailbox_idx ON alias_targets (mailbox_id);

-- keep updated_at honest whatever writes the row
CREATE FUNCTION mq_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER domains_touch BEFORE UPDATE ON domains
    FOR EACH ROW EXECUTE FUNCTION mq_touch_updated_at();
CREATE TRIGGER mailboxes_touch BEFORE UPDATE ON mailboxes
    FOR EACH ROW EXECUTE FUNCTION mq_touch_updated_at();
CREATE TRIGGER aliases_touch BEFORE UPDATE ON aliases
    FOR EACH ROW EXECUTE FUNCTION mq_touch_updated_at();
