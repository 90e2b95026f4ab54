-- Risk scores as numbers only when they are numbers. Risk Management may hold scores,
-- impact and likelihood as references to risk criteria (a sys_id) instead: a cast of every
-- value failed every query of the view then. Non-numeric values are NULL; numbers may be
-- decimal.

DROP VIEW grc_risks;

CREATE VIEW grc_risks WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       fields::jsonb ->> 'number' AS number,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'state' AS state,
       fields::jsonb ->> 'category' AS category,
       CASE WHEN fields::jsonb ->> 'inherent_likelihood' ~ '^-?[0-9]+(\.[0-9]+)?$'
            THEN (fields::jsonb ->> 'inherent_likelihood')::DOUBLE PRECISION END AS inherent_likelihood,
       CASE WHEN fields::jsonb ->> 'inherent_impact' ~ '^-?[0-9]+(\.[0-9]+)?$'
            THEN (fields::jsonb ->> 'inherent_impact')::DOUBLE PRECISION END AS inherent_impact,
       CASE WHEN fields::jsonb ->> 'inherent_score' ~ '^-?[0-9]+(\.[0-9]+)?$'
            THEN (fields::jsonb ->> 'inherent_score')::DOUBLE PRECISION END AS inherent_score,
       CASE WHEN fields::jsonb ->> 'residual_likelihood' ~ '^-?[0-9]+(\.[0-9]+)?$'
            THEN (fields::jsonb ->> 'residual_likelihood')::DOUBLE PRECISION END AS residual_likelihood,
       CASE WHEN fields::jsonb ->> 'residual_impact' ~ '^-?[0-9]+(\.[0-9]+)?$'
            THEN (fields::jsonb ->> 'residual_impact')::DOUBLE PRECISION END AS residual_impact,
       CASE WHEN fields::jsonb ->> 'residual_score' ~ '^-?[0-9]+(\.[0-9]+)?$'
            THEN (fields::jsonb ->> 'residual_score')::DOUBLE PRECISION END AS residual_score,
       NULLIF(fields::jsonb ->> 'statement', '') AS risk_statement_sys_id,
       NULLIF(fields::jsonb ->> 'profile', '') AS entity_sys_id,
       NULLIF(fields::jsonb ->> 'owner', '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_risk_risk';
