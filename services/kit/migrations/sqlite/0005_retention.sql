-- Each organization's data_retention_days (from organization.created and .updated), per
-- database: which organizations to sweep is routing data, not a tenant's data (like
-- ciq_jobs), so the periodic sweep lists it without a tenant, then runs each module's purge
-- in that organization's own tenant transaction (crate::retention).
CREATE TABLE ciq_retention (
    organization_id TEXT   PRIMARY KEY,
    retention_days  BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
