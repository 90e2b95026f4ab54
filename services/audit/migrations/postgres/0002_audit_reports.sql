-- Audit reports: a period of the trail rendered to a file (CSV, PDF or JSON) by a job
-- (kind `audit-report`); the file lives in object storage under `object_key`. The chain
-- position and hash of the last entry, and whether the trail verified, are kept with it.
CREATE TABLE audit_reports (
    organization_id    TEXT    NOT NULL,
    id                 TEXT    NOT NULL,
    title              TEXT    NOT NULL,
    period_start       BIGINT  NOT NULL,
    period_end         BIGINT  NOT NULL,
    format             BIGINT  NOT NULL,
    include_security   BIGINT  NOT NULL,
    include_compliance BIGINT  NOT NULL,
    state              TEXT    NOT NULL,
    object_key         TEXT    NOT NULL,
    file_name          TEXT    NOT NULL,
    content_type       TEXT    NOT NULL DEFAULT '',
    size_bytes         BIGINT  NOT NULL DEFAULT 0,
    entry_count        BIGINT  NOT NULL DEFAULT 0,
    first_sequence     BIGINT  NOT NULL DEFAULT 0,
    last_sequence      BIGINT  NOT NULL DEFAULT 0,
    last_hash          TEXT    NOT NULL DEFAULT '',
    trail_intact       BIGINT  NOT NULL DEFAULT 0,
    error              TEXT    NOT NULL DEFAULT '',
    created_by         TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL,
    ended_at           BIGINT,
    PRIMARY KEY (organization_id, id)
);

SELECT ciq_enable_tenant_isolation('audit_reports');
