-- Platform staff's directory of organizations: names, states, plans and the last sync only,
-- without row-level security, so staff can find an organization without reading any tenant's
-- data (their reads of one go through a transaction scoped to it). Written in the transaction
-- that writes the organization row it mirrors.
CREATE TABLE organization_directory (
    id           TEXT   PRIMARY KEY,
    display_name TEXT   NOT NULL,
    slug         TEXT   NOT NULL,
    state        TEXT   NOT NULL,
    plan         TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    last_sync_at BIGINT
);
CREATE INDEX organization_directory_newest ON organization_directory (created_at DESC, id DESC);
-- Existing organizations (the migration runs as the admin user, which row-level security
-- does not restrict when it is a superuser, as deployments run it).
INSERT INTO organization_directory (id, display_name, slug, state, plan, created_at, updated_at)
SELECT id, display_name, slug, state, plan, created_at, updated_at FROM organizations;
