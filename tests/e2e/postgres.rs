//! PostgreSQL specifics: row-level security really isolates tenants, and services refuse
//! to connect in a way that would bypass it.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::db::Database;
use sqlx::{AnyConnection, Connection, Row};

use crate::harness::{APPLICATION_ROLE, TestPlatform};
use crate::server_tests;

server_tests!(
    rows_are_invisible_without_the_tenant_setting,
    every_tenant_table_forces_row_level_security,
    services_refuse_a_role_that_bypasses_row_level_security,
    services_refuse_a_role_that_owns_its_tables,
    typed_views_keep_row_level_security,
    the_application_role_refreshes_record_statistics_only_through_the_owners_function,
);

/// The record tables analysed at least once.
async fn analysed_tables(connection: &mut AnyConnection) -> i64 {
    let query = "SELECT COUNT(*) FROM pg_stat_user_tables WHERE relname IN ('grc_records', 'grc_references') \
                 AND last_analyze IS NOT NULL";
    sqlx::query(query).fetch_one(connection).await.unwrap().try_get(0).unwrap()
}

/// Ingest refreshes the planner's statistics while a sync fills the record tables; the
/// application role cannot ANALYZE tables it does not own, so it calls the owner's function.
async fn the_application_role_refreshes_record_statistics_only_through_the_owners_function(platform: &TestPlatform) {
    let mut app = AnyConnection::connect(&platform.app_database_url(DatabaseGroup::Analysis)).await.unwrap();
    // ANALYZE by a non-owner skips the table with a warning: nothing is analysed.
    sqlx::query("ANALYZE grc_records").execute(&mut app).await.unwrap();
    assert_eq!(analysed_tables(&mut app).await, 0, "the application role does not own the tables");
    let refreshed: bool =
        sqlx::query("SELECT ciq_refresh_grc_statistics()").fetch_one(&mut app).await.unwrap().try_get(0).unwrap();
    assert!(refreshed);
    // The statistics view is updated when the session reports; a new transaction reads it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while analysed_tables(&mut app).await < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the function analysed both tables");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.close().await.unwrap();
}

/// The analysis store's typed views run with the caller's rights: a tenant sees its rows only.
async fn typed_views_keep_row_level_security(platform: &TestPlatform) {
    let tenant = uuid::Uuid::now_v7().to_string();
    let mut owner = AnyConnection::connect(&platform.owner_database_url(DatabaseGroup::Analysis)).await.unwrap();
    sqlx::query(
        "INSERT INTO grc_records (organization_id, instance_id, table_name, sys_id, kind, updated_on, fields, content_hash, \
         first_synced_at, synced_at) VALUES ($1, $2, 'sn_risk_risk', $3, 'risk', '2026-01-01 00:00:00', \
         '{\"inherent_score\":\"12\"}', 'h', 0, 0)",
    )
    .bind(&tenant)
    .bind(uuid::Uuid::now_v7().to_string())
    .bind("0123456789abcdef0123456789abcdef")
    .execute(&mut owner)
    .await
    .unwrap();
    // Every view, the version views over current and past records included, runs with the
    // caller's rights: one that ran with its owner's would skip row-level security.
    let definer_views: Vec<String> = sqlx::query(
        "SELECT relname::TEXT FROM pg_class WHERE relkind = 'v' AND relnamespace = 'public'::regnamespace \
         AND NOT COALESCE(reloptions @> ARRAY['security_invoker=true'], false)",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get(0))
    .collect();
    assert!(definer_views.is_empty(), "views without security_invoker: {definer_views:?}");
    owner.close().await.unwrap();
    let mut app = AnyConnection::connect(&platform.app_database_url(DatabaseGroup::Analysis)).await.unwrap();
    for (setting, expected) in [(uuid::Uuid::now_v7().to_string(), 0i64), (tenant.clone(), 1)] {
        let mut tx = app.begin().await.unwrap();
        sqlx::query("SELECT set_config('app.current_organization_id', $1, true)")
            .bind(&setting)
            .execute(&mut *tx)
            .await
            .unwrap();
        let seen: i64 = sqlx::query("SELECT COUNT(*) FROM grc_risks WHERE inherent_score = 12")
            .fetch_one(&mut *tx)
            .await
            .unwrap()
            .get(0);
        assert_eq!(seen, expected, "tenant {setting}");
        tx.rollback().await.unwrap();
    }
    app.close().await.unwrap();
}

async fn count_as_application(connection: &mut AnyConnection, tenant: Option<&str>) -> i64 {
    let mut tx = connection.begin().await.unwrap();
    if let Some(tenant) = tenant {
        sqlx::query("SELECT set_config('app.current_organization_id', $1, true)")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let count: i64 = sqlx::query("SELECT COUNT(*) FROM organizations").fetch_one(&mut *tx).await.unwrap().get(0);
    tx.rollback().await.unwrap();
    count
}

async fn rows_are_invisible_without_the_tenant_setting(platform: &TestPlatform) {
    let mut ids = Vec::new();
    for name in ["Tenant One", "Tenant Two"] {
        ids.push(platform.tenant(name).await.organization.id);
    }
    assert_eq!(platform.stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM organizations").await, 2);

    let url = platform.app_database_url(DatabaseGroup::Core);
    assert!(url.contains(APPLICATION_ROLE), "services connect as {APPLICATION_ROLE}: {url}");
    let mut connection = AnyConnection::connect(&url).await.expect("the application role connects");
    assert_eq!(count_as_application(&mut connection, None).await, 0, "no tenant set: nothing visible");
    assert_eq!(count_as_application(&mut connection, Some(&ids[0])).await, 1, "tenant one sees itself only");
    assert_eq!(count_as_application(&mut connection, Some(&ids[1])).await, 1, "tenant two sees itself only");
    let stranger = uuid::Uuid::now_v7().to_string();
    assert_eq!(count_as_application(&mut connection, Some(&stranger)).await, 0);

    // Writing another tenant's row is refused by the policy's WITH CHECK.
    let mut tx = connection.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.current_organization_id', $1, true)")
        .bind(&ids[0])
        .execute(&mut *tx)
        .await
        .unwrap();
    let moved = sqlx::query("UPDATE organizations SET display_name = 'hijacked' WHERE id = $1")
        .bind(&ids[1])
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 0);
    let forged = sqlx::query(
        "INSERT INTO organizations (id, display_name, slug, state, plan, default_timezone, data_retention_days, \
         require_mfa, allowed_email_domains, revision, created_at, updated_at) \
         VALUES ($1, 'forged', 'forged', 'active', 'free', 'UTC', 365, 0, '', 1, 0, 0)",
    )
    .bind(&stranger)
    .execute(&mut *tx)
    .await;
    assert!(forged.is_err(), "inserting a row of another tenant violates the policy");
    tx.rollback().await.unwrap();
    connection.close().await.unwrap();
}

async fn every_tenant_table_forces_row_level_security(platform: &TestPlatform) {
    sqlx::any::install_default_drivers();
    for group in DatabaseGroup::ALL {
        let mut connection = AnyConnection::connect(&platform.owner_database_url(group)).await.unwrap();
        // A tenant table is one with an organization_id column, or the organizations table.
        // Exempt: the outbox (read by the relay only) and the auth service's per-person tables
        // (sessions, its copies of memberships and of sign-in policies), read by user across organizations, and the
        // instance service's schedule and sync queue, and the webhook service's list of
        // organizations with webhooks (ids only), and single sign-on's verified domains (a sign-in
        // is routed by its email before any organization is known) and sessions (found by their
        // refresh token's family) (docs/architecture.md, "Data").
        let rows = sqlx::query(
            "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r' AND (c.relname = 'organizations' OR EXISTS ( \
               SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped)) \
               AND c.relname NOT IN ('ciq_outbox', 'refresh_tokens', 'account_memberships', 'organization_policies', 'instance_schedule', 'ciq_jobs', 'ciq_retention', 'webhook_organizations', 'audit_plans', 'sso_domains', 'sso_sessions')",
        )
        .fetch_all(&mut connection)
        .await
        .unwrap();
        for row in rows {
            let (table, enabled, forced): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
            assert!(
                enabled && forced,
                "{table} in the {} database must enable and force row-level security",
                group.name()
            );
        }
        connection.close().await.unwrap();
    }
}

async fn services_refuse_a_role_that_bypasses_row_level_security(platform: &TestPlatform) {
    let owner_url = platform.owner_database_url(DatabaseGroup::Core);
    let database = Database::connect(DatabaseGroup::Core, &owner_url, 1).await.unwrap();
    let refused = database.ensure_row_level_security_applies(false).await.unwrap_err();
    assert!(refused.to_string().contains("bypasses row-level security"), "{refused}");
    database.ensure_row_level_security_applies(true).await.expect("allowed explicitly");
    database.close().await;

    let application =
        Database::connect(DatabaseGroup::Core, &platform.app_database_url(DatabaseGroup::Core), 1).await.unwrap();
    application.ensure_row_level_security_applies(false).await.expect("the application role is bound by RLS");
    application.close().await;
}

/// Lower finding: an application role that owns its tables can switch row-level security
/// off, so services refuse to run as one.
async fn services_refuse_a_role_that_owns_its_tables(platform: &TestPlatform) {
    let owner_url = platform.owner_database_url(DatabaseGroup::Core);
    let role = format!("ciq_owner_{}", crate::harness::unique_suffix());
    let mut admin = AnyConnection::connect(&owner_url).await.unwrap();
    for statement in [
        format!("CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS"),
        format!("GRANT CREATE, USAGE ON SCHEMA public TO {role}"),
        format!("CREATE TABLE {role}_notes (id BIGINT)"),
        format!("ALTER TABLE {role}_notes OWNER TO {role}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut admin).await.unwrap();
    }
    let mut url = url::Url::parse(&owner_url).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(None).unwrap();
    let owning = Database::connect(DatabaseGroup::Core, url.as_str(), 1).await.unwrap();
    let refused = owning.ensure_row_level_security_applies(false).await.unwrap_err();
    assert!(refused.to_string().contains("owns tables"), "{refused}");
    owning.close().await;
    for statement in [
        format!("DROP TABLE {role}_notes"),
        format!("REVOKE ALL ON SCHEMA public FROM {role}"),
        format!("DROP ROLE {role}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut admin).await.unwrap();
    }
    admin.close().await.ok();
}
