-- Retention: entries older than the organization's plan keeps them are removed from the
-- start of its chain, and a checkpoint signed with a key derived from the encryption keys
-- keeps the hash of the last one removed, so the rest still verifies from there.

-- Each organization's plan (organization.created, subscription.changed; the newest wins).
-- Ids and plan names only, read across organizations by the sweep: no row-level security.
CREATE TABLE audit_plans (
    organization_id TEXT   PRIMARY KEY,
    plan            TEXT   NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE audit_checkpoints (
    organization_id  TEXT   NOT NULL,
    -- The last entry removed, its hash, and how many went with it.
    through_sequence BIGINT NOT NULL,
    hash             TEXT   NOT NULL,
    pruned           BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    signature        TEXT   NOT NULL,
    PRIMARY KEY (organization_id, through_sequence)
);
SELECT ciq_enable_tenant_isolation('audit_checkpoints');
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- An entry may be deleted only once a checkpoint covers it; nothing may be changed.
CREATE FUNCTION audit_logs_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM audit_checkpoints c
        WHERE c.organization_id = OLD.organization_id AND c.through_sequence >= OLD.sequence
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER audit_logs_append_only ON audit_logs;
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_guard();

-- The application role holds no DELETE on audit_logs; retention removes through this, and
-- the guard above still refuses whatever no checkpoint covers.
CREATE FUNCTION audit_prune(organization TEXT, through BIGINT) RETURNS BIGINT
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    removed BIGINT;
BEGIN
    DELETE FROM audit_logs WHERE organization_id = organization AND sequence <= through;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END
$$;
