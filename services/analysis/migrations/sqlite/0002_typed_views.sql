-- Typed views over the synced records, one per kind of GRC record, for the analyses: scores
-- and counts as integers, flags as 0/1, references as the referenced sys_id (join on
-- grc_records by table and sys_id), ServiceNow date-times as their sortable text.
CREATE VIEW grc_controls AS
SELECT organization_id, instance_id, sys_id, updated_on,
       json_extract(fields, '$.number') AS number,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.state') AS state,
       json_extract(fields, '$.status') AS status,
       json_extract(fields, '$.frequency') AS frequency,
       CASE WHEN json_extract(fields, '$.key_control') = 'true' THEN 1 ELSE 0 END AS key_control,
       NULLIF(json_extract(fields, '$.statement'), '') AS requirement_sys_id,
       NULLIF(json_extract(fields, '$.profile'), '') AS entity_sys_id,
       NULLIF(json_extract(fields, '$.owner'), '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_compliance_control';

CREATE VIEW grc_requirements AS
SELECT organization_id, instance_id, sys_id, updated_on,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.reference') AS reference,
       json_extract(fields, '$.category') AS category,
       NULLIF(json_extract(fields, '$.policy'), '') AS policy_sys_id
FROM grc_records WHERE table_name = 'sn_compliance_policy_statement';

CREATE VIEW grc_risks AS
SELECT organization_id, instance_id, sys_id, updated_on,
       json_extract(fields, '$.number') AS number,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.state') AS state,
       json_extract(fields, '$.category') AS category,
       CAST(NULLIF(json_extract(fields, '$.inherent_likelihood'), '') AS INTEGER) AS inherent_likelihood,
       CAST(NULLIF(json_extract(fields, '$.inherent_impact'), '') AS INTEGER) AS inherent_impact,
       CAST(NULLIF(json_extract(fields, '$.inherent_score'), '') AS INTEGER) AS inherent_score,
       CAST(NULLIF(json_extract(fields, '$.residual_likelihood'), '') AS INTEGER) AS residual_likelihood,
       CAST(NULLIF(json_extract(fields, '$.residual_impact'), '') AS INTEGER) AS residual_impact,
       CAST(NULLIF(json_extract(fields, '$.residual_score'), '') AS INTEGER) AS residual_score,
       NULLIF(json_extract(fields, '$.statement'), '') AS risk_statement_sys_id,
       NULLIF(json_extract(fields, '$.profile'), '') AS entity_sys_id,
       NULLIF(json_extract(fields, '$.owner'), '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_risk_risk';

CREATE VIEW grc_indicator_results AS
SELECT organization_id, instance_id, sys_id, updated_on,
       json_extract(fields, '$.collection_date') AS collection_date,
       CAST(NULLIF(json_extract(fields, '$.value'), '') AS REAL) AS value,
       CASE WHEN json_extract(fields, '$.passed') = 'true' THEN 1 ELSE 0 END AS passed,
       NULLIF(json_extract(fields, '$.indicator'), '') AS indicator_sys_id,
       NULLIF(json_extract(fields, '$.item'), '') AS control_sys_id
FROM grc_records WHERE table_name = 'sn_grc_indicator_result';

CREATE VIEW grc_issues AS
SELECT organization_id, instance_id, sys_id, updated_on,
       json_extract(fields, '$.number') AS number,
       json_extract(fields, '$.short_description') AS short_description,
       json_extract(fields, '$.state') AS state,
       CAST(NULLIF(json_extract(fields, '$.priority'), '') AS INTEGER) AS priority,
       NULLIF(json_extract(fields, '$.opened_at'), '') AS opened_at,
       NULLIF(json_extract(fields, '$.closed_at'), '') AS closed_at,
       NULLIF(json_extract(fields, '$.item'), '') AS control_sys_id,
       NULLIF(json_extract(fields, '$.assigned_to'), '') AS assignee_sys_id
FROM grc_records WHERE table_name = 'sn_grc_issue';
