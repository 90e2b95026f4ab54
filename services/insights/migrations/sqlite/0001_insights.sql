-- Insights: each finding of an analysis job, kept under a stable id (finding kind + subject
-- record of an instance), open while the latest analysis of its category finds it.
-- severity is the common.v1.Severity number (for "at or above"); body is the encoded Insight
-- (metrics, records, attributes); title, summary and recommendations are also columns for
-- full-text search (FTS5 here, kept by triggers; PostgreSQL uses a generated tsvector).
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
    body            BLOB            NOT NULL,
    first_seen_at   BIGINT           NOT NULL,
    last_seen_at    BIGINT           NOT NULL,
    resolved_at     BIGINT,
    PRIMARY KEY (organization_id, id)
);
CREATE INDEX insights_of_instance ON insights (organization_id, instance_id, status, severity);

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
    snapshot        BLOB  NOT NULL,
    created_by      TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, id),
    UNIQUE (organization_id, name)
);
CREATE INDEX saved_reports_recent ON saved_reports (organization_id, created_at, id);

CREATE VIRTUAL TABLE insights_search USING fts5(
    title, summary, recommendations,
    organization_id UNINDEXED, insight_id UNINDEXED,
    tokenize = 'porter unicode61'
);
CREATE TRIGGER insights_search_insert AFTER INSERT ON insights BEGIN
    INSERT INTO insights_search (title, summary, recommendations, organization_id, insight_id)
    VALUES (new.title, new.summary, new.recommendations, new.organization_id, new.id);
END;
CREATE TRIGGER insights_search_update AFTER UPDATE OF title, summary, recommendations ON insights BEGIN
    DELETE FROM insights_search WHERE organization_id = old.organization_id AND insight_id = old.id;
    INSERT INTO insights_search (title, summary, recommendations, organization_id, insight_id)
    VALUES (new.title, new.summary, new.recommendations, new.organization_id, new.id);
END;
CREATE TRIGGER insights_search_delete AFTER DELETE ON insights BEGIN
    DELETE FROM insights_search WHERE organization_id = old.organization_id AND insight_id = old.id;
END;
