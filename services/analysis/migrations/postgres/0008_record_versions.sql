-- Point-in-time reads: an analysis reads the records as they stood when its sync run
-- completed, so a job queued before a later sync, or replayed on a past sync, computes on
-- exactly that data. grc_records keeps each record's current version and when it became
-- current (valid_from, the ingest's clock in microseconds); a version a sync replaces or
-- deletes moves to grc_record_history with the time it stopped being current (valid_to).
-- Only changes add history, so a sync of unchanged records writes none. grc_sync_points
-- holds, per sync run, the ingest time through which its data was stored. A record as of
-- point T: valid_from <= T < valid_to; current versions have valid_to = i64::MAX.
-- The views run with the caller's rights (security_invoker): row-level security applies.

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
    -- Never the current versions' bound, so reads of current versions skip this table
    -- (PostgreSQL's constraint exclusion of UNION ALL branches).
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

SELECT ciq_enable_tenant_isolation('grc_record_history');

SELECT ciq_enable_tenant_isolation('grc_sync_points');

CREATE VIEW grc_record_versions WITH (security_invoker = true) AS
SELECT organization_id, instance_id, table_name, sys_id, updated_on, fields, valid_from,
       CAST(9223372036854775807 AS BIGINT) AS valid_to
FROM grc_records
UNION ALL
SELECT organization_id, instance_id, table_name, sys_id, updated_on, fields, valid_from, valid_to
FROM grc_record_history;

CREATE VIEW grc_control_versions WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
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
FROM grc_record_versions WHERE table_name = 'sn_compliance_control';

CREATE VIEW grc_requirement_versions WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'reference' AS reference,
       fields::jsonb ->> 'category' AS category,
       fields::jsonb ->> 'description' AS description,
       CASE WHEN fields::jsonb ->> 'active' = 'true' THEN 1 ELSE 0 END::BIGINT AS active,
       NULLIF(fields::jsonb ->> 'document', '') AS policy_sys_id
FROM grc_record_versions WHERE table_name = 'sn_compliance_policy_statement';

CREATE VIEW grc_policy_versions WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'type' AS type,
       fields::jsonb ->> 'category' AS category,
       fields::jsonb ->> 'state' AS state,
       fields::jsonb ->> 'description' AS description,
       NULLIF(fields::jsonb ->> 'owner', '') AS owner_sys_id
FROM grc_record_versions WHERE table_name = 'sn_compliance_policy';

CREATE VIEW grc_entity_versions WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'profile_class' AS profile_class,
       CASE WHEN fields::jsonb ->> 'active' = 'true' THEN 1 ELSE 0 END::BIGINT AS active,
       NULLIF(fields::jsonb ->> 'owned_by', '') AS owner_sys_id
FROM grc_record_versions WHERE table_name = 'sn_grc_profile';

CREATE VIEW grc_indicator_versions WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       fields::jsonb ->> 'number' AS number,
       fields::jsonb ->> 'name' AS name,
       fields::jsonb ->> 'type' AS type,
       fields::jsonb ->> 'collection_frequency' AS collection_frequency,
       CASE WHEN fields::jsonb ->> 'active' = 'true' THEN 1 ELSE 0 END::BIGINT AS active,
       NULLIF(fields::jsonb ->> 'item', '') AS control_sys_id,
       NULLIF(fields::jsonb ->> 'owner', '') AS owner_sys_id
FROM grc_record_versions WHERE table_name = 'sn_grc_indicator';

CREATE VIEW grc_risk_control_versions WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       NULLIF(fields::jsonb ->> 'sn_risk_risk', '') AS risk_sys_id,
       NULLIF(fields::jsonb ->> 'sn_compliance_control', '') AS control_sys_id
FROM grc_record_versions WHERE table_name = 'sn_risk_m2m_risk_control';

CREATE VIEW grc_issue_versions WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
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
FROM grc_record_versions WHERE table_name = 'sn_grc_issue';

CREATE VIEW grc_risk_versions WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
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
FROM grc_record_versions WHERE table_name = 'sn_risk_risk';

CREATE VIEW grc_indicator_result_versions WITH (security_invoker = true) AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       fields::jsonb ->> 'collection_date' AS collection_date,
       NULLIF(fields::jsonb ->> 'value', '')::DOUBLE PRECISION AS value,
       CASE WHEN fields::jsonb ->> 'passed' = 'true' THEN 1 ELSE 0 END::BIGINT AS passed,
       NULLIF(fields::jsonb ->> 'indicator', '') AS indicator_sys_id
FROM grc_record_versions WHERE table_name = 'sn_grc_indicator_result';

-- The current versions, under the names the views had before.

CREATE VIEW grc_controls WITH (security_invoker = true) AS
SELECT * FROM grc_control_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_requirements WITH (security_invoker = true) AS
SELECT * FROM grc_requirement_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_policies WITH (security_invoker = true) AS
SELECT * FROM grc_policy_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_entities WITH (security_invoker = true) AS
SELECT * FROM grc_entity_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_indicators WITH (security_invoker = true) AS
SELECT * FROM grc_indicator_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_risk_controls WITH (security_invoker = true) AS
SELECT * FROM grc_risk_control_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_issues WITH (security_invoker = true) AS
SELECT * FROM grc_issue_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_risks WITH (security_invoker = true) AS
SELECT * FROM grc_risk_versions WHERE valid_to = 9223372036854775807;

CREATE VIEW grc_indicator_results WITH (security_invoker = true) AS
SELECT r.*, i.control_sys_id
FROM grc_indicator_result_versions r
LEFT JOIN grc_indicators i ON i.organization_id = r.organization_id AND i.instance_id = r.instance_id
    AND i.sys_id = r.indicator_sys_id
WHERE r.valid_to = 9223372036854775807;
