//! The user service's own surface: profiles, preferences, listing with filters and pages.

use complianceiq_proto::complianceiq::user::v1::{
    GetCurrentUserRequest, ListRolesRequest, ListUsersRequest, UpdateCurrentUserRequest, User, UserPreferences,
    UserState,
};
use prost_types::FieldMask;
use tonic::Code;

use crate::harness::{TestPlatform, violations};
use crate::people::authorized;
use crate::platform_tests;

platform_tests!(profiles_are_edited_by_their_owner_with_validation, users_are_listed_with_filters_and_pages);

async fn profiles_are_edited_by_their_owner_with_validation(platform: &TestPlatform) {
    let tenant = platform.tenant("Profiles").await;
    let mut users = platform.users().await;
    let me = users.get_current_user(authorized(GetCurrentUserRequest {}, tenant.token())).await.unwrap().into_inner();
    assert_eq!(me.full_name, format!("Test {}", tenant.admin.email), "the name given at registration");
    assert_eq!((me.email.as_str(), me.state()), (tenant.admin.email.as_str(), UserState::Active));
    assert_eq!(me.permissions.len(), complianceiq_proto::PERMISSIONS.len());

    let update = |user: User, paths: Option<&[&str]>| {
        authorized(
            UpdateCurrentUserRequest {
                user: Some(user),
                update_mask: paths.map(|paths| FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() }),
            },
            tenant.token(),
        )
    };
    let bad = users
        .update_current_user(update(
            User {
                phone_number: "12345".into(),
                avatar_uri: "ftp://x".into(),
                preferences: Some(UserPreferences {
                    theme: "neon".into(),
                    timezone: "mars".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&bad).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["user.phone_number", "user.avatar_uri", "user.preferences.timezone", "user.preferences.theme"]);
    let unchanged =
        users.get_current_user(authorized(GetCurrentUserRequest {}, tenant.token())).await.unwrap().into_inner();
    assert_eq!(unchanged, me, "nothing half-written");

    let updated = users
        .update_current_user(update(
            User {
                full_name: "Ada Admin".into(),
                job_title: "CISO".into(),
                phone_number: "+4915112345678".into(),
                preferences: Some(UserPreferences {
                    timezone: "Europe/Berlin".into(),
                    locale: "de-DE".into(),
                    theme: "dark".into(),
                    weekly_digest: true,
                    ..Default::default()
                }),
                ..Default::default()
            },
            None,
        ))
        .await
        .expect("update")
        .into_inner();
    assert_eq!((updated.full_name.as_str(), updated.job_title.as_str()), ("Ada Admin", "CISO"));
    let preferences = updated.preferences.clone().unwrap();
    assert_eq!(
        (preferences.timezone.as_str(), preferences.theme.as_str(), preferences.weekly_digest),
        ("Europe/Berlin", "dark", true)
    );

    // An explicit mask turns the digest off and leaves the rest; unknown paths are refused.
    let masked = users
        .update_current_user(update(User::default(), Some(&["preferences.weekly_digest"])))
        .await
        .unwrap()
        .into_inner();
    assert!(!masked.preferences.clone().unwrap().weekly_digest);
    assert_eq!(masked.full_name, "Ada Admin");
    let unknown = users.update_current_user(update(User::default(), Some(&["salary"]))).await.unwrap_err();
    assert_eq!(violations(&unknown), [("update_mask".to_string(), "UNKNOWN_FIELD".to_string())]);
    let missing = users
        .update_current_user(authorized(UpdateCurrentUserRequest { user: None, update_mask: None }, tenant.token()))
        .await
        .unwrap_err();
    assert_eq!(violations(&missing), [("user".to_string(), "REQUIRED".to_string())]);
}

async fn users_are_listed_with_filters_and_pages(platform: &TestPlatform) {
    let tenant = platform.tenant("Listing").await;
    let mut users = platform.users().await;
    let roles =
        users.list_roles(authorized(ListRolesRequest::default(), tenant.token())).await.unwrap().into_inner().roles;
    let viewer = roles.iter().find(|r| r.name == "Viewer").unwrap().id.clone();
    for name in ["carol", "bob"] {
        platform.member(&tenant, &format!("{name}@listing.example.com"), &[viewer.clone()]).await;
    }

    let list = |request: ListUsersRequest| authorized(request, tenant.token());
    let all = users.list_users(list(ListUsersRequest::default())).await.unwrap().into_inner();
    let emails: Vec<&str> = all.users.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(
        emails,
        ["admin@listing.example.com", "bob@listing.example.com", "carol@listing.example.com"],
        "ordered by email"
    );
    assert_eq!(all.total_size, 3);

    let viewers = users
        .list_users(list(ListUsersRequest { role_id: viewer.clone(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(viewers.users.len(), 2);
    assert!(viewers.users.iter().all(|u| u.role_ids == [viewer.clone()]));
    let found = users
        .list_users(list(ListUsersRequest { query: "CAROL".into(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(), ["carol@listing.example.com"]);

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = users
            .list_users(list(ListUsersRequest { page_size: 2, page_token: token, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert!(page.users.len() <= 2);
        seen.extend(page.users.into_iter().map(|u| u.email));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, emails);

    let bad = users
        .list_users(list(ListUsersRequest {
            page_size: -1,
            role_id: "x".into(),
            page_token: "garbage".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}
