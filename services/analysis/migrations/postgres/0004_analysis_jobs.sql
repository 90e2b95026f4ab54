-- Instances as the analyses see them: the base URL for links to records (from the sync's
-- ingest header) and the last completed sync (from sync.completed), the data a job reads.
CREATE TABLE grc_instances (
    organization_id  TEXT   NOT NULL,
    instance_id      TEXT   NOT NULL,
    url              TEXT   NOT NULL,
    last_sync_run_id TEXT   NOT NULL,
    data_as_of       TEXT   NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (organization_id, instance_id)
);

-- Analysis jobs (queued in the kit's ciq_jobs as kind 'analysis'). The summary is an
-- encoded AnalysisSummary, parameters a JSON object of strings; data_as_of is ServiceNow's
-- time ('YYYY-MM-DD HH:MM:SS') up to which the sync that the job read went.
CREATE TABLE analysis_jobs (
    id                     TEXT   PRIMARY KEY,
    organization_id        TEXT   NOT NULL,
    instance_id            TEXT   NOT NULL,
    analysis_type          TEXT   NOT NULL,
    state                  TEXT   NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    progress_percent       BIGINT NOT NULL,
    parameters             TEXT   NOT NULL,
    summary                BYTEA  NOT NULL,
    error                  TEXT   NOT NULL,
    created_by             TEXT   NOT NULL,
    cancel_requested       BIGINT NOT NULL CHECK (cancel_requested IN (0, 1)),
    data_as_of_sync_run_id TEXT   NOT NULL,
    data_as_of             TEXT   NOT NULL,
    created_at             BIGINT NOT NULL,
    started_at             BIGINT,
    ended_at               BIGINT
);
CREATE INDEX analysis_jobs_recent ON analysis_jobs (organization_id, created_at, id);

-- A job's results in the order they are listed, each an encoded AnalysisResult.
CREATE TABLE analysis_results (
    organization_id TEXT   NOT NULL,
    job_id          TEXT   NOT NULL,
    position        BIGINT NOT NULL,
    result          BYTEA  NOT NULL,
    PRIMARY KEY (organization_id, job_id, position)
);

SELECT ciq_enable_tenant_isolation('grc_instances');
SELECT ciq_enable_tenant_isolation('analysis_jobs');
SELECT ciq_enable_tenant_isolation('analysis_results');
