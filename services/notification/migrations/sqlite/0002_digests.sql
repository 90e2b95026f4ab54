-- Daily digests: a person's email for some topics is gathered into one mail a day at their
-- digest time (`digest_time`, HH:MM in their time zone; empty: 08:00). Such deliveries are
-- marked `digest` (1) and wait for the person's digest job instead of a job of their own.
ALTER TABLE notification_preferences ADD COLUMN digest_time TEXT NOT NULL DEFAULT '';
ALTER TABLE notification_deliveries ADD COLUMN digest BIGINT NOT NULL DEFAULT 0;
CREATE INDEX notification_deliveries_digest ON notification_deliveries (organization_id, digest, state);
