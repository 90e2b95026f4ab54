-- Email templates an organization keeps instead of the platform's (`notification`, `digest`).
CREATE TABLE notification_templates (
    organization_id TEXT   NOT NULL,
    name            TEXT   NOT NULL,
    subject         TEXT   NOT NULL,
    text            TEXT   NOT NULL,
    html            TEXT   NOT NULL,
    updated_by      TEXT   NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, name)
);
SELECT ciq_enable_tenant_isolation('notification_templates');
