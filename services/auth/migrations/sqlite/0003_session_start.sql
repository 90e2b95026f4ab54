-- When the login that began a session happened: a session ends 30 days after it, however
-- often it is refreshed. Rows from before this column have NULL (their created_at is used).
ALTER TABLE refresh_tokens ADD COLUMN session_started_at BIGINT;
