-- Insights: each finding of an analysis job, kept under a stable id (finding kind + subject
-- record of an instance), open while the latest analysis of its category finds it.
-- severity is the common.v1.Severity number (for "at or above"); body is the encoded Insight
-- (metrics, records, attributes); title, summary and recommendations are also columns for
-- full-text search.
CREATE TABLE insights (
    organization_id TEXT             NOT NULL,
    id              TEXT             NOT NULL,
    instance_id     TEXT             NOT NULL,
    category        BIGINT           NOT NULL,
    finding         TEXT             NOT NULL,
    subject_sys_id  TEXT             NOT NULL,
    severity        BIGINT           NOT NULL,
    status          TEXT             NOT NULL CHECK (status IN ('open', 'resolved')),
    analysis_job_id TEXT             NOT NULL,
    score           DOUBLE PRECISION NOT NULL,
    title           TEXT             NOT NULL,
    summary         TEXT             NOT NULL,
    recommendations TEXT             NOT NULL,
    body            BYTEA            NOT NULL,
    first_seen_at   BIGINT           NOT NULL,
    last_seen_at    BIGINT           NOT NULL,
    resolved_at     BIGINT,
    search          TSVECTOR GENERATED ALWAYS AS (
        to_tsvector('english', title || ' ' || summary || ' ' || recommendations)
    ) STORED,
    PRIMARY KEY (organization_id, id)
);
CREATE INDEX insights_of_instance ON insights (organization_id, instance_id, status, severity);
CREATE INDEX insights_search ON insights USING GIN (search);

-- One entry per analysis job the insights were updated from: its headline score and
-- metrics (a JSON object of numbers), the posture after it, and the open insights by
-- severity (a JSON object). applied is 0 for a job that ended before one of its category
-- already applied: it is history, but it changes nothing.
CREATE TABLE insight_snapshots (
    organization_id  TEXT             NOT NULL,
    analysis_job_id  TEXT             NOT NULL,
    instance_id      TEXT             NOT NULL,
    analysis_type    TEXT             NOT NULL,
    score            DOUBLE PRECISION NOT NULL,
    posture_score    DOUBLE PRECISION NOT NULL,
    metrics          TEXT             NOT NULL,
    open_by_severity TEXT             NOT NULL,
    applied          BIGINT           NOT NULL CHECK (applied IN (0, 1)),
    created_at       BIGINT           NOT NULL,
    PRIMARY KEY (organization_id, analysis_job_id)
);
CREATE INDEX insight_snapshots_recent ON insight_snapshots (organization_id, instance_id, created_at);

-- What each applied job did to each insight it touched, with the insight's score then (none
-- when resolved).
CREATE TABLE insight_changes (
    organization_id TEXT   NOT NULL,
    analysis_job_id TEXT   NOT NULL,
    insight_id      TEXT   NOT NULL,
    instance_id     TEXT   NOT NULL,
    change          TEXT   NOT NULL CHECK (change IN ('new', 'persisting', 'resolved')),
    score           DOUBLE PRECISION,
    at              BIGINT NOT NULL,
    PRIMARY KEY (organization_id, analysis_job_id, insight_id)
);
CREATE INDEX insight_changes_over_time ON insight_changes (organization_id, instance_id, at);

-- Saved reports: a named snapshot (an encoded Insight) that outlives the insight.
CREATE TABLE saved_reports (
    organization_id TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    insight_id      TEXT   NOT NULL,
    name            TEXT   NOT NULL,
    notes           TEXT   NOT NULL,
    snapshot        BYTEA  NOT NULL,
    created_by      TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, id),
    UNIQUE (organization_id, name)
);
CREATE INDEX saved_reports_recent ON saved_reports (organization_id, created_at, id);

SELECT ciq_enable_tenant_isolation('insights');
SELECT ciq_enable_tenant_isolation('insight_snapshots');
SELECT ciq_enable_tenant_isolation('insight_changes');
SELECT ciq_enable_tenant_isolation('saved_reports');
