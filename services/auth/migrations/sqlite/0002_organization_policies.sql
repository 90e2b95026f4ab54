-- The auth service's copy of each organization's sign-in policy, kept from
-- organization.created/updated events: tokens scoped to an organization that requires a
-- second factor are issued only to people who have one.
CREATE TABLE organization_policies (
    organization_id TEXT   PRIMARY KEY,
    require_mfa     BIGINT NOT NULL CHECK (require_mfa IN (0, 1)),
    version         BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
