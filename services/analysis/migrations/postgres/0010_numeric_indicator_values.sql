-- An indicator result's value is a number only when it is one. ServiceNow can hold text such
-- as "n/a" there, which the cast refused (every read of the view's values failed, so anomaly
-- detection failed for the whole instance). Non-numeric values are NULL, like empty ones; the
-- pattern bounds the digits so that no accepted text overflows a double.
CREATE OR REPLACE VIEW grc_indicator_result_versions WITH (security_invoker = true) AS
SELECT r.organization_id, r.instance_id, r.sys_id, r.updated_on, r.valid_from, r.valid_to,
       f."collection_date" AS collection_date,
       CASE WHEN f."value" ~ '^\s*[-+]?([0-9]{1,200}(\.[0-9]{0,20})?|\.[0-9]{1,20})([eE][-+]?[0-9]{1,2})?\s*$'
            THEN f."value"::DOUBLE PRECISION END AS value,
       CASE WHEN f."passed" = 'true' THEN 1 ELSE 0 END::BIGINT AS passed,
       NULLIF(f."indicator", '') AS indicator_sys_id
FROM grc_record_versions r, jsonb_to_record(r.fields::jsonb) AS f("collection_date" TEXT, "value" TEXT, "passed" TEXT, "indicator" TEXT)
WHERE r.table_name = 'sn_grc_indicator_result';
