-- Typed views over the synced records, one per kind of GRC record, for the analyses: scores
-- and counts as integers, flags as 0/1, references as the referenced sys_id (join on
-- grc_records by table and sys_id), ServiceNow date-times as their sortable text. They run
-- with the caller's rights (security_invoker), so row-level security still applies.
CREATE VIEW grc_controls WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       fields::jsonb ->> 'number' AS number,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'state' AS state,
       fields::jsonb ->> 'status' AS status,
       fields::jsonb ->> 'frequency' AS frequency,
       CASE WHEN fields::jsonb ->> 'key_control' = 'true' THEN 1 ELSE 0 END::BIGINT AS key_control,
       NULLIF(fields::jsonb ->> 'statement', '') AS requirement_sys_id,
       NULLIF(fields::jsonb ->> 'profile', '') AS entity_sys_id,
       NULLIF(fields::jsonb ->> 'owner', '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_compliance_control';

CREATE VIEW grc_requirements WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'reference' AS reference,
       fields::jsonb ->> 'category' AS category,
       NULLIF(fields::jsonb ->> 'policy', '') AS policy_sys_id
FROM grc_records WHERE table_name = 'sn_compliance_policy_statement';

CREATE VIEW grc_risks WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       fields::jsonb ->> 'number' AS number,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'state' AS state,
       fields::jsonb ->> 'category' AS category,
       NULLIF(fields::jsonb ->> 'inherent_likelihood', '')::BIGINT AS inherent_likelihood,
       NULLIF(fields::jsonb ->> 'inherent_impact', '')::BIGINT AS inherent_impact,
       NULLIF(fields::jsonb ->> 'inherent_score', '')::BIGINT AS inherent_score,
       NULLIF(fields::jsonb ->> 'residual_likelihood', '')::BIGINT AS residual_likelihood,
       NULLIF(fields::jsonb ->> 'residual_impact', '')::BIGINT AS residual_impact,
       NULLIF(fields::jsonb ->> 'residual_score', '')::BIGINT AS residual_score,
       NULLIF(fields::jsonb ->> 'statement', '') AS risk_statement_sys_id,
       NULLIF(fields::jsonb ->> 'profile', '') AS entity_sys_id,
       NULLIF(fields::jsonb ->> 'owner', '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_risk_risk';

CREATE VIEW grc_indicator_results WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       fields::jsonb ->> 'collection_date' AS collection_date,
       NULLIF(fields::jsonb ->> 'value', '')::DOUBLE PRECISION AS value,
       CASE WHEN fields::jsonb ->> 'passed' = 'true' THEN 1 ELSE 0 END::BIGINT AS passed,
       NULLIF(fields::jsonb ->> 'indicator', '') AS indicator_sys_id,
       NULLIF(fields::jsonb ->> 'item', '') AS control_sys_id
FROM grc_records WHERE table_name = 'sn_grc_indicator_result';

CREATE VIEW grc_issues WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       fields::jsonb ->> 'number' AS number,
       fields::jsonb ->> 'short_description' AS short_description,
       fields::jsonb ->> 'state' AS state,
       NULLIF(fields::jsonb ->> 'priority', '')::BIGINT AS priority,
       NULLIF(fields::jsonb ->> 'opened_at', '') AS opened_at,
       NULLIF(fields::jsonb ->> 'closed_at', '') AS closed_at,
       NULLIF(fields::jsonb ->> 'item', '') AS control_sys_id,
       NULLIF(fields::jsonb ->> 'assigned_to', '') AS assignee_sys_id
FROM grc_records WHERE table_name = 'sn_grc_issue';
