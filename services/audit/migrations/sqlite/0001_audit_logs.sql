-- The audit trail: one hash chain per organization (see the PostgreSQL migration).
CREATE TABLE audit_logs (
    organization_id TEXT   NOT NULL,
    sequence        BIGINT NOT NULL CHECK (sequence > 0),
    id              TEXT   NOT NULL,
    event_id        TEXT   NOT NULL,
    action          TEXT   NOT NULL,
    resource_type   TEXT   NOT NULL,
    resource_id     TEXT   NOT NULL,
    actor_user_id   TEXT   NOT NULL,
    outcome         BIGINT NOT NULL,
    event_time      BIGINT NOT NULL,
    body            BLOB   NOT NULL,
    previous_hash   TEXT   NOT NULL,
    hash            TEXT   NOT NULL,
    search_text     TEXT   NOT NULL,
    PRIMARY KEY (organization_id, sequence),
    UNIQUE (organization_id, id),
    UNIQUE (organization_id, event_id)
);
CREATE INDEX audit_logs_by_actor ON audit_logs (organization_id, actor_user_id, sequence);
CREATE INDEX audit_logs_by_resource ON audit_logs (organization_id, resource_type, resource_id, sequence);
CREATE INDEX audit_logs_by_time ON audit_logs (organization_id, event_time);

CREATE VIRTUAL TABLE audit_logs_search USING fts5(
    search_text, organization_id UNINDEXED, sequence UNINDEXED, tokenize = 'unicode61'
);
CREATE TRIGGER audit_logs_search_insert AFTER INSERT ON audit_logs BEGIN
    INSERT INTO audit_logs_search (search_text, organization_id, sequence)
    VALUES (new.search_text, new.organization_id, new.sequence);
END;

CREATE TRIGGER audit_logs_append_only_update BEFORE UPDATE ON audit_logs BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_logs_append_only_delete BEFORE DELETE ON audit_logs BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only: DELETE refused');
END;
