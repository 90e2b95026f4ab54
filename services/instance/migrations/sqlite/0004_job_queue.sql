-- Sync runs move to the kit's job queue (ciq_jobs), which every kind of job shares.
INSERT INTO ciq_jobs (kind, job_id, organization_id, lease_until, attempts)
    SELECT 'sync', run_id, organization_id, lease_until, 0 FROM sync_queue;
DROP TABLE sync_queue;
