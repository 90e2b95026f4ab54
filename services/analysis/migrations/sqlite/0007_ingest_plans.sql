-- Each lookup of the ingest path gets exactly one index that fits it. A page's lookups (the
-- stored hashes of 500 sys_ids, the references of the changed records) filter on
-- (organization_id, instance_id, table_name, sys_id): the primary keys. The other indexes
-- also began with (organization_id, instance_id), and on freshly filled tables without
-- statistics the planner's cached generic plan picked them with only that prefix as the
-- index condition, scanning every row of the instance per page: a full sync went quadratic.
-- grc_records_kind served no query (the views filter on table_name); the reverse-reference
-- index now leads with target_table, which only reverse lookups constrain.
DROP INDEX grc_records_kind;
DROP INDEX grc_references_target;
CREATE INDEX grc_references_by_target ON grc_references (target_table, organization_id, instance_id, target_sys_id);
