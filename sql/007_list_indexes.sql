-- 007_list_indexes: the last list filters get indexes of their own.
--  * Addresses compare bytewise (collation "C"): sorting and keyset pages are the same on every
--    server whatever its locale, and a prefix filter (LIKE 'p%') becomes an index range.
--  * Disabled mailboxes are few: a partial index finds them without a scan.

ALTER TABLE mailboxes ALTER COLUMN address TYPE text COLLATE "C";
ALTER TABLE aliases ALTER COLUMN address TYPE text COLLATE "C";
CREATE INDEX mailboxes_disabled_idx ON mailboxes (address) WHERE NOT enabled;
