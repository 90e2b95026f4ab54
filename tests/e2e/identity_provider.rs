//! A real OpenID Connect provider for tests, on 127.0.0.1: discovery, JWKS, an authorization
//! endpoint that signs in whoever the test says is at the keyboard, and a token endpoint that
//! checks the client's secret and PKCE, issues RS256 ID tokens, and honours refresh tokens
//! until the person is disabled. Knobs make it misbehave the ways an attacker or a broken
//! provider would. A SAML identity provider that answers the platform's AuthnRequests with
//! signed responses, with its own knobs. Also a DNS server answering TXT questions, for
//! domain verification.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use complianceiq_auth::KeyRing;
use ring::rand::SystemRandom;
use ring::signature::RSA_PKCS1_SHA256;

pub const CLIENT_ID: &str = "complianceiq-test";
pub const CLIENT_SECRET: &str = "provider-client-secret";

/// The person signed in at the provider.
#[derive(Clone, Debug)]
pub struct ProviderUser {
    pub subject: String,
    pub email: String,
    pub name: String,
    pub groups: Vec<String>,
    pub email_verified: bool,
}

/// How the provider misbehaves.
#[derive(Clone, Debug, Default)]
pub struct Misbehaviour {
    /// ID tokens name this audience instead of the client.
    pub audience: Option<String>,
    /// ID tokens are signed with a key the JWKS does not publish, under the published kid.
    pub forged_signature: bool,
    /// ID tokens carry this nonce instead of the one asked for.
    pub nonce: Option<String>,
}

struct Grant {
    user: ProviderUser,
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

#[derive(Default)]
struct Inner {
    at_keyboard: Option<ProviderUser>,
    codes: HashMap<String, Grant>,
    refresh_tokens: HashMap<String, ProviderUser>,
    disabled: Vec<String>,
    misbehaviour: Misbehaviour,
    refreshes: usize,
    discoveries: usize,
}

pub struct OidcProvider {
    pub issuer: String,
    keys: KeyRing,
    foreign: KeyRing,
    inner: Mutex<Inner>,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn random() -> String {
    URL_SAFE_NO_PAD.encode(complianceiq_kit::crypto::random_bytes(24))
}

impl OidcProvider {
    pub async fn start() -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let dir = std::env::temp_dir().join(format!("ciq-idp-{}", random()));
        KeyRing::generate_into(&dir.join("keys")).unwrap();
        KeyRing::generate_into(&dir.join("foreign")).unwrap();
        let provider = Arc::new(Self {
            issuer: format!("http://{address}/realms/test"),
            keys: KeyRing::load(&dir.join("keys")).unwrap(),
            foreign: KeyRing::load(&dir.join("foreign")).unwrap(),
            inner: Mutex::new(Inner::default()),
            _dir: tempdir::Dir(dir),
        });
        let app = axum::Router::new()
            .route("/realms/test/.well-known/openid-configuration", get(discovery))
            .route("/realms/test/jwks", get(jwks))
            .route("/realms/test/authorize", get(authorize))
            .route("/realms/test/token", post(token))
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        provider
    }

    /// Who the next authorization signs in.
    pub fn sign_in_as(&self, user: ProviderUser) {
        self.inner.lock().unwrap().at_keyboard = Some(user);
    }

    /// The person can no longer sign in or refresh.
    pub fn disable(&self, email: &str) {
        self.inner.lock().unwrap().disabled.push(email.to_string());
    }

    pub fn misbehave(&self, misbehaviour: Misbehaviour) {
        self.inner.lock().unwrap().misbehaviour = misbehaviour;
    }

    /// Refresh grants asked for so far.
    pub fn refreshes(&self) -> usize {
        self.inner.lock().unwrap().refreshes
    }

    /// Discovery documents fetched so far.
    pub fn discoveries(&self) -> usize {
        self.inner.lock().unwrap().discoveries
    }

    fn id_token(&self, user: &ProviderUser, nonce: &str) -> String {
        let misbehaviour = self.inner.lock().unwrap().misbehaviour.clone();
        let now = complianceiq_kit::auth::verifier::now_seconds();
        let claims = serde_json::json!({
            "iss": self.issuer,
            "sub": user.subject,
            "aud": misbehaviour.audience.unwrap_or_else(|| CLIENT_ID.into()),
            "exp": now + 300,
            "iat": now,
            "nonce": misbehaviour.nonce.unwrap_or_else(|| nonce.into()),
            "email": user.email,
            "email_verified": user.email_verified,
            "name": user.name,
            "groups": user.groups,
        });
        let published = self.keys.active();
        let signer = if misbehaviour.forged_signature { self.foreign.active() } else { published };
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": published.id});
        let encode = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
        let input = format!("{}.{}", encode(&header), encode(&claims));
        let mut signature = vec![0; signer.pair.public().modulus_len()];
        signer.pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn tokens(&self, user: &ProviderUser, nonce: &str) -> serde_json::Value {
        let refresh = random();
        self.inner.lock().unwrap().refresh_tokens.insert(refresh.clone(), user.clone());
        serde_json::json!({
            "access_token": random(),
            "token_type": "Bearer",
            "expires_in": 300,
            "refresh_token": refresh,
            "id_token": self.id_token(user, nonce),
        })
    }
}

async fn discovery(State(provider): State<Arc<OidcProvider>>) -> Response {
    provider.inner.lock().unwrap().discoveries += 1;
    let issuer = &provider.issuer;
    axum::Json(serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

async fn jwks(State(provider): State<Arc<OidcProvider>>) -> Response {
    let key = provider.keys.active();
    axum::Json(serde_json::json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": key.id,
        "n": key.public.n_base64(), "e": key.public.e_base64(),
    }]}))
    .into_response()
}

async fn authorize(
    State(provider): State<Arc<OidcProvider>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| query.get(name).cloned().unwrap_or_default();
    if field("client_id") != CLIENT_ID || field("response_type") != "code" || field("code_challenge_method") != "S256" {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let redirect_uri = field("redirect_uri");
    let mut inner = provider.inner.lock().unwrap();
    let Some(user) = inner.at_keyboard.clone() else {
        return Redirect::to(&format!("{redirect_uri}?error=login_required&state={}", field("state"))).into_response();
    };
    if inner.disabled.contains(&user.email) {
        return Redirect::to(&format!(
            "{redirect_uri}?error=access_denied&error_description=user+disabled&state={}",
            field("state")
        ))
        .into_response();
    }
    let code = random();
    inner.codes.insert(
        code.clone(),
        Grant { user, nonce: field("nonce"), challenge: field("code_challenge"), redirect_uri: redirect_uri.clone() },
    );
    let state: String = url::form_urlencoded::byte_serialize(field("state").as_bytes()).collect();
    Redirect::to(&format!("{redirect_uri}?code={code}&state={state}")).into_response()
}

fn token_error(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"error": error}))).into_response()
}

async fn token(
    State(provider): State<Arc<OidcProvider>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let expected = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": "invalid_client"}))).into_response();
    }
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    match field("grant_type").as_str() {
        "authorization_code" => {
            // A code is good once.
            let Some(grant) = provider.inner.lock().unwrap().codes.remove(&field("code")) else {
                return token_error("invalid_grant");
            };
            let verifier = field("code_verifier");
            let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()));
            if challenge != grant.challenge || field("redirect_uri") != grant.redirect_uri {
                return token_error("invalid_grant");
            }
            axum::Json(provider.tokens(&grant.user, &grant.nonce)).into_response()
        }
        "refresh_token" => {
            let user = {
                let mut inner = provider.inner.lock().unwrap();
                inner.refreshes += 1;
                let user = inner.refresh_tokens.remove(&field("refresh_token"));
                match user {
                    Some(user) if !inner.disabled.contains(&user.email) => user,
                    _ => return token_error("invalid_grant"),
                }
            };
            let mut tokens = provider.tokens(&user, "");
            tokens.as_object_mut().unwrap().remove("id_token");
            axum::Json(tokens).into_response()
        }
        _ => token_error("unsupported_grant_type"),
    }
}

/// A DNS server on 127.0.0.1 answering TXT questions from a table the tests fill; one per
/// test process, started before the platform (its address goes into the configuration).
pub struct TestDns {
    pub address: SocketAddr,
    records: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl TestDns {
    pub fn get() -> &'static TestDns {
        static DNS: OnceLock<TestDns> = OnceLock::new();
        DNS.get_or_init(|| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let address = socket.local_addr().unwrap();
            let records: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
            let table = records.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 512];
                while let Ok((length, peer)) = socket.recv_from(&mut buffer) {
                    if let Some(answer) = answer(&buffer[..length], &table.lock().unwrap()) {
                        let _ = socket.send_to(&answer, peer);
                    }
                }
            });
            TestDns { address, records }
        })
    }

    pub fn publish_txt(&self, name: &str, value: &str) {
        self.records.lock().unwrap().entry(name.to_lowercase()).or_default().push(value.to_string());
    }
}

/// The answer to a one-question query: its TXT records (with a compression pointer to the
/// question's name), or NXDOMAIN.
fn answer(query: &[u8], table: &HashMap<String, Vec<String>>) -> Option<Vec<u8>> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let length = *query.get(at)? as usize;
        at += 1;
        if length == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + length)?).to_lowercase());
        at += length;
    }
    let question_end = at + 4;
    let name = labels.join(".");
    let mut response = query.get(..question_end)?.to_vec();
    response[2] = 0x81;
    let records = table.get(&name);
    response[3] = if records.is_some() { 0x80 } else { 0x83 };
    response[6] = 0;
    response[7] = records.map(|r| r.len() as u8).unwrap_or(0);
    for record in records.into_iter().flatten() {
        response.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60]);
        let data: Vec<u8> = std::iter::once(record.len() as u8).chain(record.bytes()).collect();
        response.extend_from_slice(&(data.len() as u16).to_be_bytes());
        response.extend_from_slice(&data);
    }
    Some(response)
}

/// How the SAML provider misbehaves.
#[derive(Clone, Debug, Default)]
pub struct SamlMisbehaviour {
    /// The assertion names this audience instead of the service provider's entity id.
    pub audience: Option<String>,
    /// Signed with a key the metadata does not publish (its own certificate in KeyInfo).
    pub forged_signature: bool,
    /// The email is changed after signing (a tampered assertion).
    pub tampered_email: Option<String>,
    /// No signature at all.
    pub unsigned: bool,
    /// The assertion's validity ended this long ago.
    pub expired_seconds_ago: Option<i64>,
    /// The assertion restricts no audience (any service provider would take it).
    pub unrestricted: bool,
    /// The provider's session (SessionNotOnOrAfter) ends this many seconds after sign-in
    /// (unset: eight hours).
    pub session_seconds: Option<i64>,
}

/// A real SAML 2.0 identity provider for tests: it reads the AuthnRequest the platform sends
/// the browser with (HTTP-Redirect: deflated, base64), and answers with a Response whose
/// assertion it signs with xmlsec (RSA-SHA256), for the browser to post to the assertion
/// consumer service. No network: the browser's trip to the provider is this call.
pub struct SamlProvider {
    pub entity_id: String,
    sso_url: String,
    key: Vec<u8>,
    certificate: samael::crypto::CertificateDer,
    foreign_key: Vec<u8>,
    foreign_certificate: samael::crypto::CertificateDer,
}

/// What the provider's auto-submitting form posts to the assertion consumer service.
pub struct SamlPost {
    pub acs_url: url::Url,
    pub saml_response: String,
    pub relay_state: String,
}

impl SamlPost {
    /// The form body a browser posts.
    pub fn form(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLResponse", &self.saml_response)
            .append_pair("RelayState", &self.relay_state)
            .finish()
    }
}

fn key_pair(name: &str) -> (Vec<u8>, samael::crypto::CertificateDer) {
    use samael::idp::{CertificateParams, IdentityProvider, KeyType, Rsa};
    let provider = IdentityProvider::generate_new(KeyType::Rsa(Rsa::Rsa2048)).unwrap();
    let params = CertificateParams { common_name: name, issuer_name: name, days_until_expiration: 30 };
    let certificate = provider.create_certificate(&params).unwrap();
    (provider.export_private_key_der().unwrap(), certificate)
}

impl SamlProvider {
    /// A provider with a fresh signing key (and a foreign one to forge with).
    pub fn start() -> Self {
        let (key, certificate) = key_pair("Test SAML IdP");
        let (foreign_key, foreign_certificate) = key_pair("Test SAML IdP");
        let host = &complianceiq_kit::crypto::sha256_hex(random().as_bytes())[..12];
        let entity_id = format!("https://idp-{host}.example.test/saml");
        Self { sso_url: format!("{entity_id}/sso"), entity_id, key, certificate, foreign_key, foreign_certificate }
    }

    /// A new signing key, as providers rotate them; responses are signed with it from now on.
    pub fn rotate_key(&mut self) {
        (self.key, self.certificate) = key_pair("Test SAML IdP");
    }

    /// Serves the provider's metadata over HTTP, as providers publish it; `published` holds
    /// the document (the test updates it after a rotation). Returns the URL.
    pub async fn publish(published: Arc<Mutex<String>>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/saml/metadata",
            get(move || {
                let document = published.lock().unwrap().clone();
                async move { ([(axum::http::header::CONTENT_TYPE, "application/samlmetadata+xml")], document) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}/saml/metadata")
    }

    /// The metadata an admin pastes into the platform.
    pub fn metadata(&self) -> String {
        let certificate = STANDARD.encode(self.certificate.der_data());
        format!(
            r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:X509Data><ds:X509Certificate>{certificate}</ds:X509Certificate></ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{sso}"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#,
            entity = self.entity_id,
            sso = self.sso_url,
        )
    }

    /// Reads the AuthnRequest in `at_provider` (where StartSso sent the browser), signs `user`
    /// in, and returns what the provider's form posts back.
    pub fn respond(&self, at_provider: &url::Url, user: &ProviderUser, knobs: &SamlMisbehaviour) -> SamlPost {
        use samael::attribute::{Attribute, AttributeValue};
        use samael::crypto::CryptoProvider;
        use samael::schema::{
            Assertion, AttributeStatement, AudienceRestriction, AuthnContext, AuthnContextClassRef, AuthnRequest,
            AuthnStatement, Conditions, Issuer, Response, Status, StatusCode, Subject, SubjectConfirmation,
            SubjectConfirmationData, SubjectNameID,
        };
        use samael::signature::{DigestAlgorithm, Signature};
        use samael::traits::ToXml;
        use std::io::Read;

        assert!(at_provider.as_str().starts_with(&self.sso_url), "sent to the provider: {at_provider}");
        let query: HashMap<String, String> = at_provider.query_pairs().into_owned().collect();
        let deflated = STANDARD.decode(&query["SAMLRequest"]).unwrap();
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(deflated.as_slice()).read_to_string(&mut xml).unwrap();
        let request: AuthnRequest = xml.parse().unwrap();
        let acs_url = request.assertion_consumer_service_url.clone().expect("the request names its ACS");
        let audience = knobs
            .audience
            .clone()
            .unwrap_or_else(|| request.issuer.as_ref().and_then(|issuer| issuer.value.clone()).unwrap());
        let now = chrono::Utc::now();
        let valid_until = match knobs.expired_seconds_ago {
            Some(seconds) => now - chrono::Duration::seconds(seconds),
            None => now + chrono::Duration::minutes(5),
        };
        let issuer = Issuer { value: Some(self.entity_id.clone()), ..Issuer::default() };
        let (key, certificate) = if knobs.forged_signature {
            (&self.foreign_key, &self.foreign_certificate)
        } else {
            (&self.key, &self.certificate)
        };
        let assertion_id = format!("_a{}", random());
        let attribute = |name: &str, values: &[String]| Attribute {
            friendly_name: None,
            name: Some(name.into()),
            name_format: Some("urn:oasis:names:tc:SAML:2.0:attrname-format:basic".into()),
            values: values
                .iter()
                .map(|value| AttributeValue { attribute_type: Some("xs:string".into()), value: Some(value.clone()) })
                .collect(),
        };
        let mut signature = Signature::template(&assertion_id, certificate);
        for reference in &mut signature.signed_info.reference {
            reference.digest_method.algorithm = DigestAlgorithm::Sha256;
        }
        let assertion = Assertion {
            id: assertion_id,
            issue_instant: now,
            version: "2.0".into(),
            issuer: issuer.clone(),
            signature: (!knobs.unsigned).then_some(signature),
            subject: Some(Subject {
                name_id: Some(SubjectNameID {
                    format: Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".into()),
                    value: user.email.clone(),
                }),
                subject_confirmations: Some(vec![SubjectConfirmation {
                    method: Some("urn:oasis:names:tc:SAML:2.0:cm:bearer".into()),
                    name_id: None,
                    subject_confirmation_data: Some(SubjectConfirmationData {
                        not_before: None,
                        not_on_or_after: Some(valid_until),
                        recipient: Some(acs_url.clone()),
                        in_response_to: Some(request.id.clone()),
                        address: None,
                        content: None,
                    }),
                }]),
            }),
            conditions: Some(Conditions {
                not_before: Some(now - chrono::Duration::seconds(30)),
                not_on_or_after: Some(valid_until),
                audience_restrictions: (!knobs.unrestricted)
                    .then(|| vec![AudienceRestriction { audience: vec![audience] }]),
                one_time_use: None,
                proxy_restriction: None,
            }),
            authn_statements: Some(vec![AuthnStatement {
                authn_instant: Some(now),
                session_index: Some(format!("_s{}", random())),
                session_not_on_or_after: Some(
                    now + chrono::Duration::seconds(knobs.session_seconds.unwrap_or(8 * 3600)),
                ),
                subject_locality: None,
                authn_context: Some(AuthnContext {
                    value: Some(AuthnContextClassRef {
                        value: Some("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport".into()),
                    }),
                }),
            }]),
            attribute_statements: Some(vec![AttributeStatement {
                attributes: vec![
                    attribute("email", std::slice::from_ref(&user.email)),
                    attribute("displayName", std::slice::from_ref(&user.name)),
                    attribute("groups", &user.groups),
                ],
            }]),
        };
        let response = Response {
            id: format!("_r{}", random()),
            in_response_to: Some(request.id.clone()),
            version: "2.0".into(),
            issue_instant: now,
            destination: Some(acs_url.clone()),
            consent: None,
            issuer: Some(issuer),
            signature: None,
            status: Some(Status {
                status_code: StatusCode { value: Some("urn:oasis:names:tc:SAML:2.0:status:Success".into()) },
                status_message: None,
                status_detail: None,
            }),
            encrypted_assertion: None,
            assertion: Some(assertion),
        };
        let mut xml = response.to_string().unwrap();
        if !knobs.unsigned {
            xml = samael::crypto::Crypto::sign_xml(xml.as_bytes(), key).unwrap();
        }
        if let Some(email) = &knobs.tampered_email {
            xml = xml.replace(&user.email, email);
        }
        SamlPost {
            acs_url: url::Url::parse(&acs_url).unwrap(),
            saml_response: STANDARD.encode(xml),
            relay_state: query.get("RelayState").cloned().unwrap_or_default(),
        }
    }
}
