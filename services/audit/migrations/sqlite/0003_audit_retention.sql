-- Retention with signed checkpoints (see the PostgreSQL migration).
CREATE TABLE audit_plans (
    organization_id TEXT   PRIMARY KEY,
    plan            TEXT   NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE audit_checkpoints (
    organization_id  TEXT   NOT NULL,
    through_sequence BIGINT NOT NULL,
    hash             TEXT   NOT NULL,
    pruned           BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    signature        TEXT   NOT NULL,
    PRIMARY KEY (organization_id, through_sequence)
);
CREATE TRIGGER audit_checkpoints_append_only_update BEFORE UPDATE ON audit_checkpoints BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_checkpoints_append_only_delete BEFORE DELETE ON audit_checkpoints BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused');
END;

-- An entry may be deleted only once a checkpoint covers it.
DROP TRIGGER audit_logs_append_only_delete;
CREATE TRIGGER audit_logs_append_only_delete BEFORE DELETE ON audit_logs
WHEN NOT EXISTS (
    SELECT 1 FROM audit_checkpoints
    WHERE organization_id = OLD.organization_id AND through_sequence >= OLD.sequence
)
BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only: DELETE refused');
END;
CREATE TRIGGER audit_logs_search_delete AFTER DELETE ON audit_logs BEGIN
    DELETE FROM audit_logs_search WHERE organization_id = old.organization_id AND sequence = old.sequence;
END;
