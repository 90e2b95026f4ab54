-- Custom reports (the definition is the Report message's own fields, protobuf-encoded) and
-- their runs, rendered by jobs (kinds 'report_schedule' and 'report_run' in the kit's
-- ciq_jobs) into object storage under object_key.
CREATE TABLE dashboard_reports (
    organization_id TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    definition      BYTEA  NOT NULL,
    created_by      TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    next_run_at     BIGINT,
    PRIMARY KEY (organization_id, id)
);

CREATE TABLE dashboard_report_runs (
    organization_id TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    report_id       TEXT   NOT NULL,
    run_trigger     BIGINT NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('pending', 'ready', 'failed')),
    format          BIGINT NOT NULL,
    object_key      TEXT   NOT NULL,
    file_name       TEXT   NOT NULL,
    content_type    TEXT   NOT NULL,
    size_bytes      BIGINT NOT NULL,
    rendered        BIGINT NOT NULL,
    -- Recipients mailed so far, one per line.
    delivered_to    TEXT   NOT NULL,
    error           TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    ended_at        BIGINT,
    PRIMARY KEY (organization_id, id)
);
CREATE INDEX dashboard_report_runs_of_report ON dashboard_report_runs (organization_id, report_id, id);

SELECT ciq_enable_tenant_isolation('dashboard_reports');
SELECT ciq_enable_tenant_isolation('dashboard_report_runs');
