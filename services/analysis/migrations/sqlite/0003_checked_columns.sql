-- Typed views for the analyses, after checking the synced columns against ServiceNow's
-- documentation: a control's requirement is its `content`, a requirement's policy its
-- `document`, an entity's owner `owned_by`; controls carry their `weighting`; an indicator
-- result's control is its indicator's `item`; issue states are numeric (3 and 4 are closed).
-- New: policies, entities, indicators and the risk-control links. An issue is open unless
-- closed (complete or incomplete).

DROP VIEW grc_controls;

DROP VIEW grc_requirements;

DROP VIEW grc_indicator_results;

DROP VIEW grc_issues;

CREATE VIEW grc_controls AS
SELECT organization_id, instance_id, sys_id, updated_on,
       json_extract(fields, '$.number') AS number,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.state') AS state,
       json_extract(fields, '$.status') AS status,
       json_extract(fields, '$.frequency') AS frequency,
       CASE WHEN json_extract(fields, '$.key_control') = 'true' THEN 1 ELSE 0 END AS key_control,
       CAST(NULLIF(json_extract(fields, '$.weighting'), '') AS INTEGER) AS weighting,
       NULLIF(json_extract(fields, '$.content'), '') AS requirement_sys_id,
       NULLIF(json_extract(fields, '$.profile'), '') AS entity_sys_id,
       NULLIF(json_extract(fields, '$.owner'), '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_compliance_control';

CREATE VIEW grc_requirements AS
SELECT organization_id, instance_id, sys_id, updated_on,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.reference') AS reference,
       json_extract(fields, '$.category') AS category,
       json_extract(fields, '$.description') AS description,
       CASE WHEN json_extract(fields, '$.active') = 'true' THEN 1 ELSE 0 END AS active,
       NULLIF(json_extract(fields, '$.document'), '') AS policy_sys_id
FROM grc_records WHERE table_name = 'sn_compliance_policy_statement';

CREATE VIEW grc_policies AS
SELECT organization_id, instance_id, sys_id, updated_on,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.type') AS type,
       json_extract(fields, '$.category') AS category,
       json_extract(fields, '$.state') AS state,
       json_extract(fields, '$.description') AS description,
       NULLIF(json_extract(fields, '$.owner'), '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_compliance_policy';

CREATE VIEW grc_entities AS
SELECT organization_id, instance_id, sys_id, updated_on,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.profile_class') AS profile_class,
       CASE WHEN json_extract(fields, '$.active') = 'true' THEN 1 ELSE 0 END AS active,
       NULLIF(json_extract(fields, '$.owned_by'), '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_grc_profile';

CREATE VIEW grc_indicators AS
SELECT organization_id, instance_id, sys_id, updated_on,
       json_extract(fields, '$.number') AS number,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.type') AS type,
       json_extract(fields, '$.collection_frequency') AS collection_frequency,
       CASE WHEN json_extract(fields, '$.active') = 'true' THEN 1 ELSE 0 END AS active,
       NULLIF(json_extract(fields, '$.item'), '') AS control_sys_id,
       NULLIF(json_extract(fields, '$.owner'), '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_grc_indicator';

CREATE VIEW grc_risk_controls AS
SELECT organization_id, instance_id, sys_id, updated_on,
       NULLIF(json_extract(fields, '$.sn_risk_risk'), '') AS risk_sys_id,
       NULLIF(json_extract(fields, '$.sn_compliance_control'), '') AS control_sys_id
FROM grc_records WHERE table_name = 'sn_risk_m2m_risk_control';

CREATE VIEW grc_issues AS
SELECT organization_id, instance_id, sys_id, updated_on,
       json_extract(fields, '$.number') AS number,
       json_extract(fields, '$.short_description') AS short_description,
       json_extract(fields, '$.state') AS state,
       CASE WHEN json_extract(fields, '$.state') IN ('3', '4') THEN 0 ELSE 1 END AS is_open,
       CAST(NULLIF(json_extract(fields, '$.priority'), '') AS INTEGER) AS priority,
       NULLIF(json_extract(fields, '$.opened_at'), '') AS opened_at,
       NULLIF(json_extract(fields, '$.closed_at'), '') AS closed_at,
       NULLIF(json_extract(fields, '$.due_date'), '') AS due_date,
       NULLIF(json_extract(fields, '$.item'), '') AS control_sys_id,
       NULLIF(json_extract(fields, '$.profile'), '') AS entity_sys_id,
       NULLIF(json_extract(fields, '$.assigned_to'), '') AS assignee_sys_id
FROM grc_records WHERE table_name = 'sn_grc_issue';

CREATE VIEW grc_indicator_results AS
SELECT r.organization_id, r.instance_id, r.sys_id, r.updated_on,
       json_extract(r.fields, '$.collection_date') AS collection_date,
       CAST(NULLIF(json_extract(r.fields, '$.value'), '') AS REAL) AS value,
       CASE WHEN json_extract(r.fields, '$.passed') = 'true' THEN 1 ELSE 0 END AS passed,
       NULLIF(json_extract(r.fields, '$.indicator'), '') AS indicator_sys_id,
       NULLIF(json_extract(i.fields, '$.item'), '') AS control_sys_id
FROM grc_records r
LEFT JOIN grc_records i ON i.organization_id = r.organization_id AND i.instance_id = r.instance_id
    AND i.table_name = 'sn_grc_indicator' AND i.sys_id = json_extract(r.fields, '$.indicator')
WHERE r.table_name = 'sn_grc_indicator_result';
