-- Organization API keys (service accounts), one organization's rows each. The secret is kept
-- as its SHA-256 only (and its last four characters, as a hint); a key's
-- tokens carry `api-key:<id>:<generation>`, and a new generation retires the old tokens.
CREATE TABLE api_keys (
    id              TEXT   PRIMARY KEY,
    organization_id TEXT   NOT NULL,
    name            TEXT   NOT NULL,
    permissions     TEXT   NOT NULL,
    secret_hash     TEXT   NOT NULL,
    hint            TEXT   NOT NULL,
    creator_user_id TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    last_used_at    BIGINT,
    revoked_at      BIGINT,
    generation      BIGINT NOT NULL
);
CREATE INDEX api_keys_by_organization ON api_keys (organization_id, created_at, id);
CREATE INDEX api_keys_by_creator ON api_keys (creator_user_id, organization_id);
SELECT ciq_enable_tenant_isolation('api_keys');
