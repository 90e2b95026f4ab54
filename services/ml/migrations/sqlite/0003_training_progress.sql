-- A training's progress and a person's request to stop it (CancelTraining), read by the job
-- between fits; a stopped training ends 'cancelled'. SQLite cannot alter a CHECK, so the
-- table is rebuilt with the new state and columns.
CREATE TABLE ml_models_rebuilt (
    organization_id   TEXT   NOT NULL,
    id                TEXT   NOT NULL,
    name              TEXT   NOT NULL,
    version           BIGINT NOT NULL,
    kind              BIGINT NOT NULL,
    state             TEXT   NOT NULL
        CHECK (state IN ('training', 'ready', 'failed', 'archived', 'cancelled')),
    instance_id       TEXT   NOT NULL,
    parameters        TEXT   NOT NULL,
    metrics           TEXT   NOT NULL,
    features          TEXT   NOT NULL,
    training_examples BIGINT NOT NULL,
    artifact_key      TEXT   NOT NULL,
    data_as_of        TEXT   NOT NULL,
    code_version      TEXT   NOT NULL,
    error             TEXT   NOT NULL,
    created_by        TEXT   NOT NULL,
    created_at        BIGINT NOT NULL,
    trained_at        BIGINT,
    is_default        BIGINT NOT NULL DEFAULT 0,
    progress_percent  BIGINT NOT NULL DEFAULT 0,
    cancel_requested  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, id),
    UNIQUE (organization_id, name, version)
);
INSERT INTO ml_models_rebuilt (
    organization_id, id, name, version, kind, state, instance_id, parameters, metrics, features,
    training_examples, artifact_key, data_as_of, code_version, error, created_by, created_at,
    trained_at, is_default)
SELECT organization_id, id, name, version, kind, state, instance_id, parameters, metrics, features,
    training_examples, artifact_key, data_as_of, code_version, error, created_by, created_at,
    trained_at, is_default
FROM ml_models;
DROP TABLE ml_models;
ALTER TABLE ml_models_rebuilt RENAME TO ml_models;
CREATE INDEX ml_models_of_instance ON ml_models (organization_id, instance_id);
CREATE UNIQUE INDEX ml_models_default ON ml_models (organization_id, kind) WHERE is_default = 1;
