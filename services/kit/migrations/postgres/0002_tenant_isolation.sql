-- The one definition of tenant isolation: rows of a table are visible and writable only in a
-- transaction whose app.current_organization_id (set by the kit's TenantTx) names their
-- organization. FORCE makes the table owner subject to it too. Service migrations call
--   SELECT ciq_enable_tenant_isolation('<table>');            -- column organization_id
--   SELECT ciq_enable_tenant_isolation('organizations', 'id');
CREATE FUNCTION ciq_enable_tenant_isolation(tenant_table regclass, tenant_column name DEFAULT 'organization_id')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s '
        'USING (%I = current_setting(''app.current_organization_id'', true)) '
        'WITH CHECK (%I = current_setting(''app.current_organization_id'', true))',
        tenant_table, tenant_column, tenant_column);
END
$$;
