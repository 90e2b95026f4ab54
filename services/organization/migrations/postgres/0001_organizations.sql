CREATE TABLE organizations (
    id                    TEXT    PRIMARY KEY,
    display_name          TEXT    NOT NULL,
    slug                  TEXT    NOT NULL,
    state                 TEXT    NOT NULL CHECK (state IN ('active', 'suspended', 'deleted')),
    plan                  TEXT    NOT NULL,
    default_timezone      TEXT    NOT NULL,
    data_retention_days   BIGINT  NOT NULL,
    require_mfa           BIGINT  NOT NULL CHECK (require_mfa IN (0, 1)),
    allowed_email_domains TEXT    NOT NULL,
    revision              BIGINT  NOT NULL,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL,
    deleted_at            BIGINT,
    purge_at              BIGINT
);
-- Slugs are global handles; a deleted organization keeps its slug until it is purged.
CREATE UNIQUE INDEX organizations_slug ON organizations (slug);

-- The organization row is its own tenant: visible only inside a transaction scoped to it.
SELECT ciq_enable_tenant_isolation('organizations', 'id');
