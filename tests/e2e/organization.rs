//! The organization slice end to end, over gRPC, as a client uses it.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use complianceiq_proto::complianceiq::organization::v1::{
    CreateOrganizationRequest, DeleteOrganizationRequest, GetOrganizationRequest, Organization, OrganizationSettings,
    OrganizationState, Plan, UpdateOrganizationRequest,
};
use prost_types::FieldMask;
use tonic::Code;
use tonic::transport::Channel;

use crate::harness::{TestPlatform, violations};
use crate::people::authorized;
use crate::platform_tests;

platform_tests!(
    an_organization_lives_from_create_to_delete,
    bad_requests_name_their_fields_and_write_nothing,
    slugs_are_unique_across_tenants,
    updates_follow_the_field_mask,
    stale_etags_lose,
);

fn create(display_name: &str) -> CreateOrganizationRequest {
    CreateOrganizationRequest {
        organization: Some(Organization { display_name: display_name.into(), ..Default::default() }),
    }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() })
}

async fn client(platform: &TestPlatform) -> OrganizationServiceClient<Channel> {
    platform.organizations().await
}

async fn an_organization_lives_from_create_to_delete(platform: &TestPlatform) {
    let tenant = platform.tenant("Acme Corp").await;
    let created = tenant.organization.clone();
    assert_eq!(created.id.len(), 36, "a UUID id: {}", created.id);
    assert_eq!(created.display_name, "Acme Corp");
    assert_eq!(created.slug, "acme-corp");
    assert_eq!(created.state(), OrganizationState::Active);
    assert_eq!(created.plan(), Plan::Free);
    assert_eq!(created.etag, "r1");
    let settings = created.settings.clone().expect("settings");
    assert_eq!((settings.default_timezone.as_str(), settings.data_retention_days), ("UTC", 365));
    assert!(created.create_time.is_some() && created.create_time == created.update_time);
    assert!(created.delete_time.is_none());

    let mut client = client(platform).await;
    let get = |id: &str| authorized(GetOrganizationRequest { org_id: id.into() }, tenant.token());
    let fetched = client.get_organization(get(&created.id)).await.expect("get").into_inner();
    assert_eq!(fetched, created);

    let updated = client
        .update_organization(authorized(
            UpdateOrganizationRequest {
                org_id: created.id.clone(),
                organization: Some(Organization { display_name: "Acme Corporation".into(), ..Default::default() }),
                update_mask: mask(&["display_name"]),
            },
            tenant.token(),
        ))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.display_name, "Acme Corporation");
    assert_eq!(updated.slug, "acme-corp", "the slug is immutable");
    assert_eq!(updated.etag, "r2");
    let micros = |t: &Option<prost_types::Timestamp>| complianceiq_kit::time::from_timestamp(t.as_ref().unwrap());
    assert!(micros(&updated.update_time) > micros(&created.update_time));
    assert_eq!(updated.create_time, created.create_time);
    assert_eq!(client.get_organization(get(&created.id)).await.unwrap().into_inner(), updated);

    let delete =
        || authorized(DeleteOrganizationRequest { org_id: created.id.clone(), etag: String::new() }, tenant.token());
    client.delete_organization(delete()).await.expect("delete");
    // Gone: reads say NOT_FOUND until the deletion reaches the auth service, which then
    // revokes every session scoped to the organization.
    let mut revoked = false;
    for _ in 0..100 {
        let status = client.get_organization(get(&created.id)).await.unwrap_err();
        match status.code() {
            Code::NotFound => assert!(status.message().contains(&created.id)),
            Code::Unauthenticated if crate::harness::reason(&status) == "TOKEN_REVOKED" => {
                revoked = true;
                break;
            }
            other => panic!("unexpected {other:?}: {status:?}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(revoked, "sessions of a deleted organization end");

    // Soft delete: the row is kept (with its purge time) and its slug stays reserved.
    let kept = platform
        .stored_count(
            DatabaseGroup::Core,
            "SELECT COUNT(*) FROM organizations WHERE state = 'deleted' AND purge_at IS NOT NULL",
        )
        .await;
    assert_eq!(kept, 1);
}

async fn bad_requests_name_their_fields_and_write_nothing(platform: &TestPlatform) {
    let tenant = platform.tenant("Valid").await;
    let mut client = client(platform).await;
    let token = tenant.token();

    let missing = client
        .create_organization(authorized(CreateOrganizationRequest { organization: None }, token))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert_eq!(violations(&missing), [("organization".to_string(), "REQUIRED".to_string())]);

    let bad = client
        .create_organization(authorized(
            CreateOrganizationRequest {
                organization: Some(Organization {
                    display_name: "x".repeat(10_000),
                    slug: "-Nope-".into(),
                    settings: Some(OrganizationSettings {
                        default_timezone: "not a zone".into(),
                        data_retention_days: 100_000,
                        require_mfa: true,
                        allowed_email_domains: vec!["@@@".into()],
                        risk_appetite: Some(101),
                    }),
                    ..Default::default()
                }),
            },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&bad).into_iter().map(|(field, _)| field).collect();
    assert_eq!(
        fields,
        [
            "organization.display_name",
            "organization.slug",
            "organization.settings.default_timezone",
            "organization.settings.data_retention_days",
            "organization.settings.risk_appetite",
            "organization.settings.allowed_email_domains[0]",
        ]
    );
    assert!(bad.message().contains("organization.display_name has 10000 characters"), "{}", bad.message());

    for org_id in ["", "not-a-uuid", "0190A6E4-7B6C-7CC1-9E4A"] {
        let error = client
            .get_organization(authorized(GetOrganizationRequest { org_id: org_id.into() }, token))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument, "{org_id:?}");
        assert_eq!(violations(&error)[0].0, "org_id");
    }
    // Another organization's id is refused without revealing whether it exists.
    let unknown = uuid::Uuid::now_v7().to_string();
    let error = client
        .get_organization(authorized(GetOrganizationRequest { org_id: unknown.clone() }, token))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);

    let created = tenant.organization.clone();
    for (mask_paths, input, field) in [
        (vec!["nope"], Organization::default(), "update_mask"),
        (vec!["display_name"], Organization::default(), "organization.display_name"),
        (vec!["slug"], Organization { slug: "changed".into(), ..Default::default() }, "organization.slug"),
    ] {
        let error = client
            .update_organization(authorized(
                UpdateOrganizationRequest {
                    org_id: created.id.clone(),
                    organization: Some(input),
                    update_mask: mask(&mask_paths),
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument, "{mask_paths:?}");
        assert_eq!(violations(&error)[0].0, field);
    }
    let unchanged = client
        .get_organization(authorized(GetOrganizationRequest { org_id: created.id.clone() }, token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged, created);

    // Only the valid organization was written, with exactly one organization event.
    assert_eq!(platform.stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM organizations").await, 1);
    assert_eq!(
        platform
            .stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM ciq_outbox WHERE event_type LIKE 'organization.%'")
            .await,
        1
    );
}

async fn slugs_are_unique_across_tenants(platform: &TestPlatform) {
    let first = platform.tenant("Acme").await;
    assert_eq!(first.organization.slug, "acme");
    let other = platform.person("other@example.com").await;
    let mut client = client(platform).await;

    let taken = client
        .create_organization(authorized(
            CreateOrganizationRequest {
                organization: Some(Organization {
                    display_name: "Other".into(),
                    slug: "acme".into(),
                    ..Default::default()
                }),
            },
            other.token(),
        ))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    assert!(taken.message().contains("acme"));

    // A derived slug that is taken gets a random suffix instead of failing.
    let derived = client.create_organization(authorized(create("ACME"), other.token())).await.unwrap().into_inner();
    assert!(derived.slug.starts_with("acme-") && derived.slug.len() == 11, "{}", derived.slug);
    assert_ne!(derived.id, first.organization.id);
    assert_eq!(platform.stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM organizations").await, 2);
}

async fn updates_follow_the_field_mask(platform: &TestPlatform) {
    let tenant = platform.tenant("Masked").await;
    let mut client = client(platform).await;
    let update = |organization: Organization, paths: Option<&[&str]>| {
        authorized(
            UpdateOrganizationRequest {
                org_id: tenant.id().into(),
                organization: Some(organization),
                update_mask: paths.and_then(mask),
            },
            tenant.token(),
        )
    };

    // No mask: every populated field.
    let settings = OrganizationSettings {
        require_mfa: true,
        data_retention_days: 90,
        allowed_email_domains: vec!["Acme.com".into()],
        ..Default::default()
    };
    let updated = client
        .update_organization(update(Organization { settings: Some(settings), ..Default::default() }, None))
        .await
        .unwrap()
        .into_inner();
    let settings = updated.settings.clone().unwrap();
    assert!(settings.require_mfa);
    assert_eq!(settings.data_retention_days, 90);
    assert_eq!(settings.allowed_email_domains, ["acme.com"]);
    assert_eq!(settings.default_timezone, "UTC");
    assert_eq!(updated.display_name, "Masked");

    // An explicit path turns the flag off; the other settings stay.
    let updated = client
        .update_organization(update(Organization::default(), Some(&["settings.require_mfa"])))
        .await
        .unwrap()
        .into_inner();
    let settings = updated.settings.clone().unwrap();
    assert!(!settings.require_mfa);
    assert_eq!(settings.data_retention_days, 90);

    // Nothing changed: same etag, no new revision.
    let same = client
        .update_organization(update(Organization { display_name: "Masked".into(), ..Default::default() }, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.etag, updated.etag);
}

async fn stale_etags_lose(platform: &TestPlatform) {
    let tenant = platform.tenant("Versioned").await;
    let created = tenant.organization.clone();
    let mut client = client(platform).await;
    let rename = |name: &str| {
        authorized(
            UpdateOrganizationRequest {
                org_id: created.id.clone(),
                organization: Some(Organization {
                    display_name: name.into(),
                    etag: created.etag.clone(),
                    ..Default::default()
                }),
                update_mask: None,
            },
            tenant.token(),
        )
    };
    let renamed = client.update_organization(rename("First")).await.unwrap().into_inner();
    assert_eq!(client.update_organization(rename("Second")).await.unwrap_err().code(), Code::Aborted);
    let delete = client
        .delete_organization(authorized(
            DeleteOrganizationRequest { org_id: created.id.clone(), etag: created.etag.clone() },
            tenant.token(),
        ))
        .await
        .unwrap_err();
    assert_eq!(delete.code(), Code::Aborted);
    let current = client
        .get_organization(authorized(GetOrganizationRequest { org_id: created.id.clone() }, tenant.token()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current, renamed);
}
