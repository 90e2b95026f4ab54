-- The search index's rows were found by insight id, a column FTS5 does not index, so each
-- insight update scanned the whole index: taking in a job of 100,000 findings held SQLite's
-- writer lock for minutes. Now each insight has a stable integer key (an INTEGER PRIMARY KEY
-- survives VACUUM, an implicit rowid does not) that is also its search row's rowid, and an
-- insight found again with the same wording leaves its search row alone.
CREATE TABLE insights_keyed (
    search_rowid    INTEGER          PRIMARY KEY,
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
    body            BLOB             NOT NULL,
    first_seen_at   BIGINT           NOT NULL,
    last_seen_at    BIGINT           NOT NULL,
    resolved_at     BIGINT,
    UNIQUE (organization_id, id)
);
INSERT INTO insights_keyed (organization_id, id, instance_id, category, finding, subject_sys_id, severity, status,
    analysis_job_id, score, title, summary, recommendations, body, first_seen_at, last_seen_at, resolved_at)
SELECT organization_id, id, instance_id, category, finding, subject_sys_id, severity, status,
    analysis_job_id, score, title, summary, recommendations, body, first_seen_at, last_seen_at, resolved_at
FROM insights;

DROP TRIGGER insights_search_insert;
DROP TRIGGER insights_search_update;
DROP TRIGGER insights_search_delete;
DROP TABLE insights_search;
DROP TABLE insights;
ALTER TABLE insights_keyed RENAME TO insights;
CREATE INDEX insights_of_instance ON insights (organization_id, instance_id, status, severity);

CREATE VIRTUAL TABLE insights_search USING fts5(
    title, summary, recommendations,
    organization_id UNINDEXED, insight_id UNINDEXED,
    tokenize = 'porter unicode61'
);
INSERT INTO insights_search (rowid, title, summary, recommendations, organization_id, insight_id)
SELECT search_rowid, title, summary, recommendations, organization_id, id FROM insights;

CREATE TRIGGER insights_search_insert AFTER INSERT ON insights BEGIN
    INSERT INTO insights_search (rowid, title, summary, recommendations, organization_id, insight_id)
    VALUES (new.search_rowid, new.title, new.summary, new.recommendations, new.organization_id, new.id);
END;
CREATE TRIGGER insights_search_update AFTER UPDATE OF title, summary, recommendations ON insights
WHEN old.title IS NOT new.title OR old.summary IS NOT new.summary OR old.recommendations IS NOT new.recommendations
BEGIN
    DELETE FROM insights_search WHERE rowid = old.search_rowid;
    INSERT INTO insights_search (rowid, title, summary, recommendations, organization_id, insight_id)
    VALUES (new.search_rowid, new.title, new.summary, new.recommendations, new.organization_id, new.id);
END;
CREATE TRIGGER insights_search_delete AFTER DELETE ON insights BEGIN
    DELETE FROM insights_search WHERE rowid = old.search_rowid;
END;
