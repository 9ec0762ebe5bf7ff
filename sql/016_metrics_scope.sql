-- 016_metrics_scope: tokens of scope 'metrics' (a Prometheus server scraping GET /metrics; they
-- reach nothing else). See docs/metrics.md.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scope_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scope_check
    CHECK (scope IN ('admin', 'read', 'usage', 'self', 'precheck', 'metrics'));
