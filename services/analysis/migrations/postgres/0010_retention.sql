-- Each organization's retention of analysis data in days (its data_retention_days setting),
-- from organization.created and organization.updated. Which organizations to sweep is
-- routing data, not a tenant's data (like the instance module's schedule): the periodic sweep
-- lists it without a tenant, then purges each organization in its own tenant transaction.
CREATE TABLE analysis_retention (
    organization_id TEXT   PRIMARY KEY,
    retention_days  BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
