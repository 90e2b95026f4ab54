-- An indicator result's value is a number only when it is one. ServiceNow can hold text such
-- as "n/a" there, which CAST turned into 0 without a word: a false reading that anomaly
-- detection flagged. Non-numeric values are NULL, like empty ones. (Views that read this one
-- resolve it when they are queried, so it can be replaced alone.)
DROP VIEW grc_indicator_result_versions;

CREATE VIEW grc_indicator_result_versions AS
SELECT organization_id, instance_id, sys_id, updated_on, valid_from, valid_to,
       json_extract(fields, '$.collection_date') AS collection_date,
       CASE WHEN trim(json_extract(fields, '$.value')) GLOB '*[0-9]*'
                 AND trim(json_extract(fields, '$.value')) NOT GLOB '*[^0-9.eE+-]*'
            THEN CAST(trim(json_extract(fields, '$.value')) AS REAL) END AS value,
       CASE WHEN json_extract(fields, '$.passed') = 'true' THEN 1 ELSE 0 END AS passed,
       NULLIF(json_extract(fields, '$.indicator'), '') AS indicator_sys_id
FROM grc_record_versions WHERE table_name = 'sn_grc_indicator_result';
