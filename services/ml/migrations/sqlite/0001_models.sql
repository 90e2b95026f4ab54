-- The model registry: versions per organization and name, trained by jobs (kind 'ml_train'
-- in the kit's ciq_jobs). The artifact (the fitted model, JSON) lives in object storage
-- under artifact_key; metadata says what trained it and how it scored on held-out data.
CREATE TABLE ml_models (
    organization_id   TEXT   NOT NULL,
    id                TEXT   NOT NULL,
    name              TEXT   NOT NULL,
    version           BIGINT NOT NULL,
    kind              BIGINT NOT NULL,
    state             TEXT   NOT NULL CHECK (state IN ('training', 'ready', 'failed', 'archived')),
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
    PRIMARY KEY (organization_id, id),
    UNIQUE (organization_id, name, version)
);
CREATE INDEX ml_models_of_instance ON ml_models (organization_id, instance_id);
