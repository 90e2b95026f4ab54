-- Exports of insights, rendered by jobs (kind 'insight_export' in the kit's ciq_jobs) into
-- object storage under object_key. The file stays until the export is deleted with its
-- instance's insights; links to it expire (they are signed when asked for, not stored).
CREATE TABLE insight_exports (
    organization_id TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    insight_id      TEXT   NOT NULL,
    instance_id     TEXT   NOT NULL,
    format          BIGINT NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('pending', 'ready', 'failed')),
    object_key      TEXT   NOT NULL,
    file_name       TEXT   NOT NULL,
    content_type    TEXT   NOT NULL,
    size_bytes      BIGINT NOT NULL,
    error           TEXT   NOT NULL,
    created_by      TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    ended_at        BIGINT,
    PRIMARY KEY (organization_id, id)
);
CREATE INDEX insight_exports_of_instance ON insight_exports (organization_id, instance_id);
