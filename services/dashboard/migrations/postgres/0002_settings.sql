-- Each organization's risk appetite, from organization.created and organization.updated
-- (the newest event wins); an organization without a row has the default, 50.
CREATE TABLE dashboard_settings (
    organization_id TEXT   NOT NULL,
    risk_appetite   BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id)
);

SELECT ciq_enable_tenant_isolation('dashboard_settings');
