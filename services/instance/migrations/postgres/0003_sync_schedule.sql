-- When each instance is next due for a scheduled sync (NULL: never, its interval is 0).
ALTER TABLE instance_schedule ADD COLUMN next_sync_at BIGINT;
CREATE INDEX instance_schedule_sync_due ON instance_schedule (next_sync_at);
