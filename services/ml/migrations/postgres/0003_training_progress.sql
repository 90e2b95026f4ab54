-- A training's progress and a person's request to stop it (CancelTraining), read by the job
-- between fits; a stopped training ends 'cancelled'.
ALTER TABLE ml_models ADD COLUMN progress_percent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ml_models ADD COLUMN cancel_requested BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ml_models DROP CONSTRAINT ml_models_state_check;
ALTER TABLE ml_models ADD CONSTRAINT ml_models_state_check
    CHECK (state IN ('training', 'ready', 'failed', 'archived', 'cancelled'));
