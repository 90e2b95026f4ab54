-- Risk scores as numbers only when they are numbers. Risk Management may hold scores,
-- impact and likelihood as references to risk criteria (a sys_id) instead, which CAST would
-- turn into 0 without a word. Non-numeric values are NULL; numbers may be decimal.

DROP VIEW grc_risks;

CREATE VIEW grc_risks AS
SELECT organization_id, instance_id, sys_id, updated_on,
       json_extract(fields, '$.number') AS number,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.state') AS state,
       json_extract(fields, '$.category') AS category,
       CASE WHEN json_extract(fields, '$.inherent_likelihood') GLOB '[0-9]*'
                 AND json_extract(fields, '$.inherent_likelihood') NOT GLOB '*[^0-9.]*'
            THEN CAST(json_extract(fields, '$.inherent_likelihood') AS REAL) END AS inherent_likelihood,
       CASE WHEN json_extract(fields, '$.inherent_impact') GLOB '[0-9]*'
                 AND json_extract(fields, '$.inherent_impact') NOT GLOB '*[^0-9.]*'
            THEN CAST(json_extract(fields, '$.inherent_impact') AS REAL) END AS inherent_impact,
       CASE WHEN json_extract(fields, '$.inherent_score') GLOB '[0-9]*'
                 AND json_extract(fields, '$.inherent_score') NOT GLOB '*[^0-9.]*'
            THEN CAST(json_extract(fields, '$.inherent_score') AS REAL) END AS inherent_score,
       CASE WHEN json_extract(fields, '$.residual_likelihood') GLOB '[0-9]*'
                 AND json_extract(fields, '$.residual_likelihood') NOT GLOB '*[^0-9.]*'
            THEN CAST(json_extract(fields, '$.residual_likelihood') AS REAL) END AS residual_likelihood,
       CASE WHEN json_extract(fields, '$.residual_impact') GLOB '[0-9]*'
                 AND json_extract(fields, '$.residual_impact') NOT GLOB '*[^0-9.]*'
            THEN CAST(json_extract(fields, '$.residual_impact') AS REAL) END AS residual_impact,
       CASE WHEN json_extract(fields, '$.residual_score') GLOB '[0-9]*'
                 AND json_extract(fields, '$.residual_score') NOT GLOB '*[^0-9.]*'
            THEN CAST(json_extract(fields, '$.residual_score') AS REAL) END AS residual_score,
       NULLIF(json_extract(fields, '$.statement'), '') AS risk_statement_sys_id,
       NULLIF(json_extract(fields, '$.profile'), '') AS entity_sys_id,
       NULLIF(json_extract(fields, '$.owner'), '') AS owner_sys_id
FROM grc_records WHERE table_name = 'sn_risk_risk';
