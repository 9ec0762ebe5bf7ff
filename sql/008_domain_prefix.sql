-- 008_domain_prefix: the domain list's prefix filter compares bytewise (LIKE 'p%' in collation
-- "C", as for addresses in 007); this index makes it a range.
CREATE INDEX domains_name_c_idx ON domains (name COLLATE "C");
