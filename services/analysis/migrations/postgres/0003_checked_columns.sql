-- Typed views for the analyses, after checking the synced columns against ServiceNow's
-- documentation: a control's requirement is its `content`, a requirement's policy its
-- `document`, an entity's owner `owned_by`; controls carry their `weighting`; an indicator
-- result's control is its indicator's `item`; issue states are numeric (3 and 4 are closed).
-- New: policies, entities, indicators and the risk-control links. An issue is open unless
-- closed (complete or incomplete).
-- They run with the caller's rights (security_invoker), so row-level security applies.

DROP VIEW grc_controls;

DROP VIEW grc_requirements;

DROP VIEW grc_indicator_results;

DROP VIEW grc_issues;

CREATE VIEW grc_controls WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       fields::jsonb ->> 'number' AS number,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'state' AS state,
       fields::jsonb ->> 'status' AS status,
       fields::jsonb ->> 'frequency' AS frequency,
       CASE WHEN fields::jsonb ->> 'key_control' = 'true' THEN 1 ELSE 0 END::BIGINT AS key_control,
       NULLIF(fields::jsonb ->> 'weighting', '')::BIGINT AS weighting,
       NULLIF(fields::jsonb ->> 'content', '') AS requirement_sys_id,
       NULLIF(fields::jsonb ->> 'profile', '') AS entity_sys_id,
       NULLIF(fields::jsonb ->> 'owner', '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_compliance_control';

CREATE VIEW grc_requirements WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'reference' AS reference,
       fields::jsonb ->> 'category' AS category,
       fields::jsonb ->> 'description' AS description,
       CASE WHEN fields::jsonb ->> 'active' = 'true' THEN 1 ELSE 0 END::BIGINT AS active,
       NULLIF(fields::jsonb ->> 'document', '') AS policy_sys_id
FROM grc_records WHERE table_name = 'sn_compliance_policy_statement';

CREATE VIEW grc_policies WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'type' AS type,
       fields::jsonb ->> 'category' AS category,
       fields::jsonb ->> 'state' AS state,
       fields::jsonb ->> 'description' AS description,
       NULLIF(fields::jsonb ->> 'owner', '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_compliance_policy';

CREATE VIEW grc_entities WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'profile_class' AS profile_class,
       CASE WHEN fields::jsonb ->> 'active' = 'true' THEN 1 ELSE 0 END::BIGINT AS active,
       NULLIF(fields::jsonb ->> 'owned_by', '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_grc_profile';

CREATE VIEW grc_indicators WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       fields::jsonb ->> 'number' AS number,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'type' AS type,
       fields::jsonb ->> 'collection_frequency' AS collection_frequency,
       CASE WHEN fields::jsonb ->> 'active' = 'true' THEN 1 ELSE 0 END::BIGINT AS active,
       NULLIF(fields::jsonb ->> 'item', '') AS control_sys_id,
       NULLIF(fields::jsonb ->> 'owner', '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_grc_indicator';

CREATE VIEW grc_risk_controls WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       NULLIF(fields::jsonb ->> 'sn_risk_risk', '') AS risk_sys_id,
       NULLIF(fields::jsonb ->> 'sn_compliance_control', '') AS control_sys_id
FROM grc_records WHERE table_name = 'sn_risk_m2m_risk_control';

CREATE VIEW grc_issues WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on,
       fields::jsonb ->> 'number' AS number,
       fields::jsonb ->> 'short_description' AS short_description,
       fields::jsonb ->> 'state' AS state,
       CASE WHEN fields::jsonb ->> 'state' IN ('3', '4') THEN 0 ELSE 1 END::BIGINT AS is_open,
       NULLIF(fields::jsonb ->> 'priority', '')::BIGINT AS priority,
       NULLIF(fields::jsonb ->> 'opened_at', '') AS opened_at,
       NULLIF(fields::jsonb ->> 'closed_at', '') AS closed_at,
       NULLIF(fields::jsonb ->> 'due_date', '') AS due_date,
       NULLIF(fields::jsonb ->> 'item', '') AS control_sys_id,
       NULLIF(fields::jsonb ->> 'profile', '') AS entity_sys_id,
       NULLIF(fields::jsonb ->> 'assigned_to', '') AS assignee_sys_id
FROM grc_records WHERE table_name = 'sn_grc_issue';

CREATE VIEW grc_indicator_results WITH (security_invoker = true) AS
SELECT r.organization_id, r.instance_id, r.sys_id, r.updated_on,
       r.fields::jsonb ->> 'collection_date' AS collection_date,
       NULLIF(r.fields::jsonb ->> 'value', '')::DOUBLE PRECISION AS value,
       CASE WHEN r.fields::jsonb ->> 'passed' = 'true' THEN 1 ELSE 0 END::BIGINT AS passed,
       NULLIF(r.fields::jsonb ->> 'indicator', '') AS indicator_sys_id,
       NULLIF(i.fields::jsonb ->> 'item', '') AS control_sys_id
FROM grc_records r
LEFT JOIN grc_records i ON i.organization_id = r.organization_id AND i.instance_id = r.instance_id
    AND i.table_name = 'sn_grc_indicator' AND i.sys_id = r.fields::jsonb ->> 'indicator'
WHERE r.table_name = 'sn_grc_indicator_result';
