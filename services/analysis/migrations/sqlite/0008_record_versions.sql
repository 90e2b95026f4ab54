-- Point-in-time reads: an analysis reads the records as they stood when its sync run
-- completed, so a job queued before a later sync, or replayed on a past sync, computes on
-- exactly that data. grc_records keeps each record's current version and when it became
-- current (valid_from, the ingest's clock in microseconds); a version a sync replaces or
-- deletes moves to grc_record_history with the time it stopped being current (valid_to).
-- Only changes add history, so a sync of unchanged records writes none. grc_sync_points
-- holds, per sync run, the ingest time through which its data was stored. A record as of
-- point T: valid_from <= T < valid_to; current versions have valid_to = i64::MAX.

DROP VIEW grc_controls;

DROP VIEW grc_requirements;

DROP VIEW grc_policies;

DROP VIEW grc_entities;

DROP VIEW grc_indicators;

DROP VIEW grc_risk_controls;

DROP VIEW grc_issues;

DROP VIEW grc_risks;

DROP VIEW grc_indicator_results;

ALTER TABLE grc_records ADD COLUMN valid_from BIGINT NOT NULL DEFAULT 0;

CREATE TABLE grc_record_history (
    organization_id TEXT   NOT NULL,
    instance_id     TEXT   NOT NULL,
    table_name      TEXT   NOT NULL,
    sys_id          TEXT   NOT NULL,
    updated_on      TEXT   NOT NULL,
    fields          TEXT   NOT NULL,
    valid_from      BIGINT NOT NULL,
    -- Never the current versions' bound.
    valid_to        BIGINT NOT NULL CHECK (valid_to < 9223372036854775807),
    PRIMARY KEY (organization_id, instance_id, table_name, sys_id, valid_from)
);

CREATE TABLE grc_sync_points (
    organization_id TEXT   NOT NULL,
    instance_id     TEXT   NOT NULL,
    sync_run_id     TEXT   NOT NULL,
    -- Ingest time (microseconds) through which the run's records were stored.
    stored_through  BIGINT NOT NULL,
    -- ServiceNow time the run's data reaches ('YYYY-MM-DD HH:MM:SS'); set when it completed.
    data_as_of      TEXT   NOT NULL DEFAULT '',
    completed_at    BIGINT,
    PRIMARY KEY (organization_id, instance_id, sync_run_id)
);

CREATE VIEW grc_record_versions AS
SELECT organization_id, instance_id, table_name, sys_id, updated_on, fields, valid_from,
       CAST(9223372036854775807 AS BIGINT) AS valid_to
FROM grc_records
UNION ALL
SELECT organization_id, instance_id, table_name, sys_id, updated_on, fields, valid_from, valid_to
FROM grc_record_history;

CREATE VIEW grc_control_versions AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
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
FROM grc_record_versions WHERE table_name = 'sn_compliance_control';

CREATE VIEW grc_requirement_versions AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.reference') AS reference,
       json_extract(fields, '$.category') AS category,
       json_extract(fields, '$.description') AS description,
       CASE WHEN json_extract(fields, '$.active') = 'true' THEN 1 ELSE 0 END AS active,
       NULLIF(json_extract(fields, '$.document'), '') AS policy_sys_id
FROM grc_record_versions WHERE table_name = 'sn_compliance_policy_statement';

CREATE VIEW grc_policy_versions AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.type') AS type,
       json_extract(fields, '$.category') AS category,
       json_extract(fields, '$.state') AS state,
       json_extract(fields, '$.description') AS description,
       NULLIF(json_extract(fields, '$.owner'), '') AS owner_sys_id
FROM grc_record_versions WHERE table_name = 'sn_compliance_policy';

CREATE VIEW grc_entity_versions AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.profile_class') AS profile_class,
       CASE WHEN json_extract(fields, '$.active') = 'true' THEN 1 ELSE 0 END AS active,
       NULLIF(json_extract(fields, '$.owned_by'), '') AS owner_sys_id
FROM grc_record_versions WHERE table_name = 'sn_grc_profile';

CREATE VIEW grc_indicator_versions AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       json_extract(fields, '$.number') AS number,
       json_extract(fields, '$.name') AS name,
       json_extract(fields, '$.type') AS type,
       json_extract(fields, '$.collection_frequency') AS collection_frequency,
       CASE WHEN json_extract(fields, '$.active') = 'true' THEN 1 ELSE 0 END AS active,
       NULLIF(json_extract(fields, '$.item'), '') AS control_sys_id,
       NULLIF(json_extract(fields, '$.owner'), '') AS owner_sys_id
FROM grc_record_versions WHERE table_name = 'sn_grc_indicator';

CREATE VIEW grc_risk_control_versions AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       NULLIF(json_extract(fields, '$.sn_risk_risk'), '') AS risk_sys_id,
       NULLIF(json_extract(fields, '$.sn_compliance_control'), '') AS control_sys_id
FROM grc_record_versions WHERE table_name = 'sn_risk_m2m_risk_control';

CREATE VIEW grc_issue_versions AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
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
FROM grc_record_versions WHERE table_name = 'sn_grc_issue';

CREATE VIEW grc_risk_versions AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
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
FROM grc_record_versions WHERE table_name = 'sn_risk_risk';

CREATE VIEW grc_indicator_result_versions AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       json_extract(fields, '$.collection_date') AS collection_date,
       CAST(NULLIF(json_extract(fields, '$.value'), '') AS REAL) AS value,
       CASE WHEN json_extract(fields, '$.passed') = 'true' THEN 1 ELSE 0 END AS passed,
       NULLIF(json_extract(fields, '$.indicator'), '') AS indicator_sys_id
FROM grc_record_versions WHERE table_name = 'sn_grc_indicator_result';

-- The current versions, under the names the views had before.

CREATE VIEW grc_controls AS
SELECT * FROM grc_control_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_requirements AS
SELECT * FROM grc_requirement_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_policies AS
SELECT * FROM grc_policy_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_entities AS
SELECT * FROM grc_entity_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_indicators AS
SELECT * FROM grc_indicator_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_risk_controls AS
SELECT * FROM grc_risk_control_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_issues AS
SELECT * FROM grc_issue_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_risks AS
SELECT * FROM grc_risk_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_indicator_results AS
SELECT r.*, i.control_sys_id
FROM grc_indicator_result_versions r
LEFT JOIN grc_indicators i ON i.organization_id = r.organization_id AND i.instance_id = r.instance_id
    AND i.sys_id = r.indicator_sys_id
WHERE r.valid_to = 9223372036854775807;
