-- One default model per organization and kind (SetDefaultModel); the predictive analysis
-- uses the default control failure model.
ALTER TABLE ml_models ADD COLUMN is_default BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX ml_models_default ON ml_models (organization_id, kind) WHERE is_default = 1;
