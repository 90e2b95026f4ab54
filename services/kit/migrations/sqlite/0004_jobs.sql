-- Durable jobs of every kind (sync runs, analyses, exports ...): ids, leases and attempts only,
-- read across tenants by the workers. Each kind keeps its state and progress in its own
-- tenant table. A job is due when lease_until <= now: never claimed, given back at shutdown,
-- waiting for its retry, or held by a worker that stopped checkpointing.
CREATE TABLE ciq_jobs (
    kind            TEXT   NOT NULL,
    job_id          TEXT   NOT NULL,
    organization_id TEXT   NOT NULL,
    lease_until     BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    PRIMARY KEY (kind, job_id)
);
CREATE INDEX ciq_jobs_due ON ciq_jobs (kind, lease_until);
