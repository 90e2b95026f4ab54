-- Widgets: the row holds the current version; each version's definition (the Widget
-- message's own fields, protobuf-encoded) is kept in widget_versions; deployments are the
-- history of what was written into which instance, with ServiceNow's sys_id.
CREATE TABLE widgets (
    organization_id TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    name            TEXT   NOT NULL,
    version         BIGINT NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('draft', 'deployed', 'deploy_failed')),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, id),
    UNIQUE (organization_id, name)
);

CREATE TABLE widget_versions (
    organization_id TEXT   NOT NULL,
    widget_id       TEXT   NOT NULL,
    version         BIGINT NOT NULL,
    definition      BYTEA  NOT NULL,
    created_by      TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, widget_id, version)
);

CREATE TABLE widget_deployments (
    organization_id TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    widget_id       TEXT   NOT NULL,
    widget_version  BIGINT NOT NULL,
    instance_id     TEXT   NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('succeeded', 'failed')),
    action          TEXT   NOT NULL,
    sys_id          TEXT   NOT NULL,
    error           TEXT   NOT NULL,
    deployed_by     TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, id)
);
CREATE INDEX widget_deployments_of_widget ON widget_deployments (organization_id, widget_id, id);

CREATE TABLE widget_templates (
    organization_id TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    name            TEXT   NOT NULL,
    definition      BYTEA  NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, id),
    UNIQUE (organization_id, name)
);

SELECT ciq_enable_tenant_isolation('widgets');
SELECT ciq_enable_tenant_isolation('widget_versions');
SELECT ciq_enable_tenant_isolation('widget_deployments');
SELECT ciq_enable_tenant_isolation('widget_templates');
