-- 010_precheck_scope: tokens of scope 'precheck' (webmail and submission servers asking, before
-- sending, whether recipients could take a message now: GET/POST /v1/precheck).
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scope_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scope_check
    CHECK (scope IN ('admin', 'read', 'usage', 'self', 'precheck'));
