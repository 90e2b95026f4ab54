//! Real users for tests: registered through the auth service, verified through the link in
//! the dev mailbox, logged in, and scoped to an organization they created, exactly as a
//! client would do it.

use std::path::PathBuf;
use std::time::Duration;

use complianceiq_proto::complianceiq::auth::v1::auth_service_client::AuthServiceClient;
use complianceiq_proto::complianceiq::auth::v1::{
    LoginRequest, RefreshRequest, RegisterRequest, TokenPair, VerifyEmailRequest, login_response,
};
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use complianceiq_proto::complianceiq::organization::v1::{
    AcceptInvitationRequest, AddMemberRequest, CreateOrganizationRequest, Member, Organization,
};
use complianceiq_proto::complianceiq::user::v1::user_service_client::UserServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::harness::TestPlatform;

/// A password that satisfies the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// A request carrying an access token.
pub fn authorized<T>(message: T, access_token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {access_token}").parse().expect("header"));
    request
}

/// A registered, verified person with their current tokens.
#[derive(Clone, Debug)]
pub struct Person {
    pub email: String,
    pub user_id: String,
    pub tokens: TokenPair,
}

impl Person {
    /// The current access token.
    pub fn token(&self) -> &str {
        &self.tokens.access_token
    }
}

/// A person who created an organization, with tokens scoped to it.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub admin: Person,
    pub organization: Organization,
}

impl Tenant {
    /// The admin's access token, scoped to the organization.
    pub fn token(&self) -> &str {
        self.admin.token()
    }

    /// The organization id.
    pub fn id(&self) -> &str {
        &self.organization.id
    }
}

/// Undoes quoted-printable soft line breaks and escapes (RFC 2045), as mail bodies use them.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'=')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TestPlatform {
    /// A client of the auth service.
    pub async fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel("auth").await)
    }

    /// A client of the user service.
    pub async fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.channel("user").await)
    }

    fn mailbox(&self) -> PathBuf {
        self.config.data_dir.join("mailbox")
    }

    /// The token from the newest mail to `to` whose subject contains `subject` (see
    /// [`token_from_mailbox`]).
    pub async fn token_from_mail(&self, to: &str, subject: &str) -> String {
        token_from_mailbox(&self.mailbox(), to, subject).await
    }

    /// Registers `email`, verifies it from the mailbox and logs in (a token with no organization).
    pub async fn person(&self, email: &str) -> Person {
        let mut auth = self.auth().await;
        let registered = auth
            .register(RegisterRequest {
                email: email.into(),
                password: PASSWORD.into(),
                full_name: format!("Test {email}"),
            })
            .await
            .unwrap_or_else(|status| panic!("registering {email}: {status:?}"))
            .into_inner();
        let user_id = registered.account.expect("account").id;
        let token = self.token_from_mail(email, "Verify your email").await;
        auth.verify_email(VerifyEmailRequest { token }).await.expect("verifying the email");
        let login = auth
            .login(LoginRequest { email: email.into(), password: PASSWORD.into(), organization_id: String::new() })
            .await
            .expect("login")
            .into_inner();
        let Some(login_response::Result::Tokens(tokens)) = login.result else { panic!("expected tokens") };
        Person { email: email.into(), user_id, tokens }
    }

    /// Exchanges the person's refresh token for one scoped to `organization`, waiting (up to
    /// ten seconds) for their membership to reach the auth service.
    pub async fn switch(&self, person: &mut Person, organization: &str) {
        let mut auth = self.auth().await;
        for _ in 0..200 {
            let request = RefreshRequest {
                refresh_token: person.tokens.refresh_token.clone(),
                organization_id: organization.into(),
            };
            match auth.refresh(request).await {
                Ok(tokens) => {
                    person.tokens = tokens.into_inner();
                    return;
                }
                Err(status) if status.code() == Code::PermissionDenied => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(status) => panic!("switching {} to {organization}: {status:?}", person.email),
            }
        }
        panic!("{} never became a member of {organization}", person.email);
    }

    /// Refreshes until the token carries `permission` (role changes travel by event).
    pub async fn refresh_until(&self, person: &mut Person, check: impl Fn(&TokenPair) -> bool) {
        let mut auth = self.auth().await;
        for _ in 0..200 {
            let request =
                RefreshRequest { refresh_token: person.tokens.refresh_token.clone(), organization_id: String::new() };
            person.tokens = auth.refresh(request).await.expect("refresh").into_inner();
            if check(&person.tokens) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the token of {} never reached the expected state", person.email);
    }

    /// A new person who created an organization named `name`, scoped to it as its admin.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let slug: String = name.to_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let mut admin = self.person(&format!("admin@{slug}.example.com")).await;
        let organization = OrganizationServiceClient::new(self.channel("organization").await)
            .create_organization(authorized(
                CreateOrganizationRequest {
                    organization: Some(Organization { display_name: name.into(), ..Default::default() }),
                },
                admin.token(),
            ))
            .await
            .unwrap_or_else(|status| panic!("creating {name}: {status:?}"))
            .into_inner();
        self.switch(&mut admin, &organization.id).await;
        Tenant { admin, organization }
    }
}

impl TestPlatform {
    /// Invites `email` into the tenant with `role_ids`, then registers that person, accepts the
    /// invitation from the mail and switches their token to the organization.
    pub async fn member(&self, tenant: &Tenant, email: &str, role_ids: &[String]) -> (Person, Member) {
        let mut organizations = OrganizationServiceClient::new(self.channel("organization").await);
        organizations
            .add_member(authorized(
                AddMemberRequest {
                    org_id: tenant.id().into(),
                    email: email.into(),
                    role_ids: role_ids.to_vec(),
                    team_ids: vec![],
                },
                tenant.token(),
            ))
            .await
            .unwrap_or_else(|status| panic!("inviting {email}: {status:?}"));
        let invitation = self.token_from_mail(email, "You are invited").await;
        let mut person = self.person(email).await;
        let member = organizations
            .accept_invitation(authorized(AcceptInvitationRequest { token: invitation }, person.token()))
            .await
            .unwrap_or_else(|status| panic!("accepting for {email}: {status:?}"))
            .into_inner();
        self.switch(&mut person, tenant.id()).await;
        (person, member)
    }
}

/// The claims of an access token, decoded without verification (the server verified it).
pub fn claims(access_token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = access_token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The token from the newest mail in `mailbox` (the development mail directory) to `to`
/// whose subject contains `subject`, waiting up to ten seconds for it (mail is sent after
/// the response). Each mail is read once.
pub async fn token_from_mailbox(mailbox: &std::path::Path, to: &str, subject: &str) -> String {
    let text = mail_from_mailbox(mailbox, to, subject).await;
    text.lines()
        .find_map(|line| line.strip_prefix("Token: "))
        .unwrap_or_else(|| panic!("no token line in the mail to {to} about {subject:?}"))
        .trim()
        .to_string()
}

/// The text of the newest unread mail to `to` about `subject` (as for [`token_from_mailbox`]).
pub async fn mail_from_mailbox(mailbox: &std::path::Path, to: &str, subject: &str) -> String {
    for _ in 0..100 {
        let mut found: Vec<PathBuf> = std::fs::read_dir(mailbox)
            .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default();
        found.sort();
        for path in found.iter().rev() {
            let raw = std::fs::read_to_string(path).unwrap_or_default();
            let text = decode_quoted_printable(&raw);
            if path.extension().is_none_or(|ext| ext != "eml")
                || !text.contains(&format!("To: {to}"))
                || !text.contains(subject)
            {
                continue;
            }
            std::fs::rename(path, path.with_extension("read")).expect("marking the mail read");
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no mail to {to} about {subject:?} within 10 s");
}
