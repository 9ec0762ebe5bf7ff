-- 014_dovecot_userdb: what Dovecot's userdb reads, so that IMAP QUOTA, LMTP's own quota check
-- and mailquota's RCPT answer follow the same limits (contrib/dovecot/dovecot-sql.conf.ext).
-- One row per mailbox, its effective limits in Dovecot's syntax, sizes with an explicit unit
-- (B) so that no default unit is assumed:
--  * quota_rule: '*:storage=<bytes>B:messages=<n>'; no limit is Dovecot's 0 (unlimited); a
--    limit of 0 (nothing may be stored) becomes 1 byte / 1 message, since Dovecot reads 0 as
--    "no limit".
--  * quota_grace: the mailbox's grace, else the domain's, as '<n>%'; NULL (Dovecot's own
--    quota_grace setting applies) when neither has one: the daemon-wide grace_percent lives in
--    mailquota.conf, not here, so set Dovecot's quota_grace to the same value.
--  * quota_max_mail_size: the smaller of the mailbox's max message size (its own, else the
--    domain default) and the domain's, at least 1 byte (Dovecot's 0 is "no limit"); NULL when
--    neither limits it (the daemon-wide message_size_limit, like grace, is mailquota.conf's).
-- home, uid, gid and the mail location are the admin's (the user_query adds them).

CREATE VIEW dovecot_userdb AS
SELECT m.address AS "user",
       d.name AS domain,
       m.local_part,
       m.enabled,
       '*:storage=' || CASE WHEN m.effective_storage_limit_bytes IS NULL THEN 0
                            ELSE greatest(m.effective_storage_limit_bytes, 1) END
           || 'B:messages=' || CASE WHEN m.effective_message_limit IS NULL THEN 0
                                    ELSE greatest(m.effective_message_limit, 1) END
           AS quota_rule,
       coalesce(m.grace_percent, d.grace_percent) || '%' AS quota_grace,
       CASE WHEN x.max_size IS NOT NULL THEN greatest(x.max_size, 1) || 'B' END
           AS quota_max_mail_size
FROM mailboxes m
JOIN domains d ON d.id = m.domain_id
CROSS JOIN LATERAL (SELECT least(coalesce(m.max_message_size, d.default_max_message_size),
                                 d.max_message_size) AS max_size) x;
