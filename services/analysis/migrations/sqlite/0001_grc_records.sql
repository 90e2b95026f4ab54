-- GRC records synced from ServiceNow, per organization and instance: one row per record
-- with its fields (text, references as the referenced sys_id) as JSON, and a hash of them
-- so a record received again unchanged is recognised.
CREATE TABLE grc_records (
    organization_id TEXT   NOT NULL,
    instance_id     TEXT   NOT NULL,
    table_name      TEXT   NOT NULL,
    sys_id          TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    updated_on      TEXT   NOT NULL,
    fields          TEXT   NOT NULL,
    content_hash    TEXT   NOT NULL,
    first_synced_at BIGINT NOT NULL,
    synced_at       BIGINT NOT NULL,
    PRIMARY KEY (organization_id, instance_id, table_name, sys_id)
);
CREATE INDEX grc_records_kind ON grc_records (organization_id, instance_id, kind);

-- References between records, resolved at ingest to the referenced table: a reference is
-- resolved when that record is stored (joined on table and sys_id).
CREATE TABLE grc_references (
    organization_id TEXT NOT NULL,
    instance_id     TEXT NOT NULL,
    table_name      TEXT NOT NULL,
    sys_id          TEXT NOT NULL,
    field           TEXT NOT NULL,
    target_table    TEXT NOT NULL,
    target_sys_id   TEXT NOT NULL,
    PRIMARY KEY (organization_id, instance_id, table_name, sys_id, field)
);
CREATE INDEX grc_references_target ON grc_references (organization_id, instance_id, target_table, target_sys_id);

