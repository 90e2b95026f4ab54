-- Sync runs: a durable job per synchronization, its progress checkpointed after every page
-- (per table: the keyset cursor reached, counts, done), so a run resumes where it stopped.
CREATE TABLE sync_runs (
    id               TEXT   PRIMARY KEY,
    organization_id  TEXT   NOT NULL,
    instance_id      TEXT   NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    mode             TEXT   NOT NULL CHECK (mode IN ('full', 'incremental')),
    state            TEXT   NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    tables           TEXT   NOT NULL,
    progress         TEXT   NOT NULL,
    triggered_by     TEXT   NOT NULL,
    error            TEXT   NOT NULL,
    cancel_requested BIGINT NOT NULL CHECK (cancel_requested IN (0, 1)),
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    ended_at         BIGINT
);
CREATE INDEX sync_runs_history ON sync_runs (organization_id, instance_id, created_at, id);

-- Where the last successful sync of each table ended (the next incremental starts there).
CREATE TABLE sync_watermarks (
    organization_id TEXT   NOT NULL,
    instance_id     TEXT   NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    table_name      TEXT   NOT NULL,
    updated_on      TEXT   NOT NULL,
    sys_id          TEXT   NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, instance_id, table_name)
);

-- Runs waiting for or held by a worker: ids and lease times only, read across tenants.
CREATE TABLE sync_queue (
    run_id          TEXT   PRIMARY KEY,
    organization_id TEXT   NOT NULL,
    lease_until     BIGINT NOT NULL
);
CREATE INDEX sync_queue_due ON sync_queue (lease_until);

