//! SAML 2.0 with `samael`: the provider's metadata, service-provider initiated sign-in
//! (HTTP-Redirect out, HTTP-POST back) and the response's checks. The signature is verified by
//! libxmlsec1 against the certificate in the provider's metadata, and only what it signed is
//! read (the signature wrapping defence); then the issuer, the destination, InResponseTo,
//! the bearer confirmation's recipient and window, the conditions' window and the audience.
//! What samael leaves to its caller is checked here: a response must restrict its audience,
//! must carry a NotOnOrAfter, and its assertion id is used once (see `AuthApi::finish_saml`).

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use complianceiq_kit::error::ApiError;
use samael::crypto::AllowedSignatureAlgorithm;
use samael::metadata::{EntityDescriptor, HTTP_POST_BINDING, HTTP_REDIRECT_BINDING, IndexedEndpoint, SpSsoDescriptor};
use samael::schema::{Assertion, AuthnRequest, Issuer};
use samael::service_provider::{Error as SamlError, ServiceProvider};
use samael::traits::ToXml;

use super::VouchedPerson;

/// The largest metadata document an admin may store.
pub const MAX_METADATA_BYTES: usize = 200_000;
/// The largest `SAMLResponse` the assertion consumer service reads (base64).
pub const MAX_RESPONSE_BYTES: usize = 500_000;
/// A response or assertion issued longer ago than this is refused.
const MAX_ISSUE_DELAY_SECONDS: i64 = 300;
/// Clocks of the provider and the platform may differ this much.
const MAX_CLOCK_SKEW_SECONDS: i64 = 60;

const EMAIL_ATTRIBUTES: [&str; 3] =
    ["email", "mail", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"];
const NAME_ATTRIBUTES: [&str; 3] =
    ["name", "displayName", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"];
const EMAIL_NAME_ID: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// An identity provider read from its metadata.
pub struct IdentityProvider {
    pub entity_id: String,
    pub sso_url: url::Url,
    descriptor: EntityDescriptor,
}

/// This organization's service provider: its entity id (also the metadata URL, and the
/// audience a response must name) and its assertion consumer service.
pub struct ServiceProviderUrls {
    pub entity_id: String,
    pub acs_url: String,
}

fn invalid_response(message: impl Into<String>) -> ApiError {
    ApiError::PermissionDenied { reason: "SAML_RESPONSE_INVALID", message: message.into() }
}

impl IdentityProvider {
    /// Reads the metadata an admin pasted; says what is missing in terms they can act on.
    pub fn from_metadata(xml: &str) -> Result<Self, String> {
        let descriptor: EntityDescriptor =
            xml.parse().map_err(|error| format!("not SAML metadata (an EntityDescriptor): {error}"))?;
        let entity_id = descriptor.entity_id.clone().filter(|id| !id.trim().is_empty());
        let entity_id = entity_id.ok_or("the metadata names no entityID")?;
        let idp = descriptor
            .idp_sso_descriptors
            .as_ref()
            .and_then(|descriptors| descriptors.first())
            .ok_or("the metadata has no IDPSSODescriptor: is it a service provider's?")?;
        let sso_url = idp
            .single_sign_on_services
            .iter()
            .find(|service| service.binding == HTTP_REDIRECT_BINDING)
            .ok_or("the provider offers no SingleSignOnService with the HTTP-Redirect binding")?;
        let sso_url = url::Url::parse(&sso_url.location)
            .map_err(|_| format!("the SingleSignOnService location {:?} is not a URL", sso_url.location))?;
        if !matches!(sso_url.scheme(), "https" | "http") {
            return Err("the SingleSignOnService location must be an http(s) URL".into());
        }
        let provider = ServiceProvider { idp_metadata: descriptor.clone(), ..ServiceProvider::default() };
        match provider.idp_signing_certs() {
            Ok(Some(certificates)) if !certificates.is_empty() => {}
            Ok(_) => {
                return Err("the metadata has no signing certificate (KeyDescriptor with an X509Certificate)".into());
            }
            Err(error) => return Err(format!("the metadata's signing certificate cannot be read: {error}")),
        }
        Ok(Self { entity_id, sso_url, descriptor })
    }

    fn service_provider(&self, urls: &ServiceProviderUrls) -> ServiceProvider {
        ServiceProvider {
            entity_id: Some(urls.entity_id.clone()),
            metadata_url: Some(urls.entity_id.clone()),
            acs_url: Some(urls.acs_url.clone()),
            idp_metadata: self.descriptor.clone(),
            max_issue_delay: chrono::Duration::seconds(MAX_ISSUE_DELAY_SECONDS),
            max_clock_skew: chrono::Duration::seconds(MAX_CLOCK_SKEW_SECONDS),
            // RSA and ECDSA with SHA-2 only: no SHA-1, no algorithm the metadata did not imply.
            allowed_signature_algorithms: Some(vec![
                AllowedSignatureAlgorithm::RsaSha256,
                AllowedSignatureAlgorithm::RsaSha512,
                AllowedSignatureAlgorithm::EcdsaSha256,
            ]),
            ..ServiceProvider::default()
        }
    }

    /// The URL that sends the browser to the provider with an AuthnRequest (HTTP-Redirect).
    pub fn authn_request_url(
        &self,
        urls: &ServiceProviderUrls,
        request_id: &str,
        relay_state: &str,
        email: Option<&str>,
    ) -> Result<url::Url, ApiError> {
        let request = AuthnRequest {
            id: request_id.to_string(),
            issue_instant: Utc::now(),
            version: "2.0".into(),
            destination: Some(self.sso_url.to_string()),
            assertion_consumer_service_url: Some(urls.acs_url.clone()),
            protocol_binding: Some(HTTP_POST_BINDING.into()),
            issuer: Some(Issuer { value: Some(urls.entity_id.clone()), ..Issuer::default() }),
            ..AuthnRequest::default()
        };
        let mut url = request
            .redirect(relay_state)
            .map_err(|error| ApiError::internal(format!("SAML AuthnRequest: {error}")))?
            .ok_or_else(|| ApiError::internal("SAML AuthnRequest without destination"))?;
        if let Some(email) = email {
            // Not part of the binding, but understood by common providers (and harmless).
            url.query_pairs_mut().append_pair("login_hint", email);
        }
        Ok(url)
    }

    /// Verifies a posted `SAMLResponse` (base64) answering `request_id` and reads the person.
    /// Returns them with the assertion's id and when it stops being valid (for replay checks).
    pub fn verify(
        &self,
        urls: &ServiceProviderUrls,
        saml_response: &str,
        request_id: &str,
        groups_attribute: &str,
    ) -> Result<VerifiedAssertion, Refusal> {
        let xml = base64::engine::general_purpose::STANDARD
            .decode(saml_response.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| Refusal::from(invalid_response("SAMLResponse is not base64-encoded XML")))?;
        let assertion = self.service_provider(urls).parse_xml_response(&xml, Some(&[request_id])).map_err(|error| {
            Refusal { signature: matches!(error, SamlError::FailedToValidateSignature), error: refusal(error) }
        })?;
        Ok(read_assertion(assertion, &urls.entity_id, groups_attribute)?)
    }
}

/// Why a response was refused, and whether it was its signature (the provider may have a new
/// certificate).
pub struct Refusal {
    pub error: ApiError,
    pub signature: bool,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self { error, signature: false }
    }
}

/// Why a response was refused, in the admin's terms (samael's own words name expected request
/// ids and internals).
fn refusal(error: SamlError) -> ApiError {
    let message = match &error {
        SamlError::FailedToValidateSignature => {
            "the response is not signed with the identity provider's certificate, or was changed after signing".into()
        }
        SamlError::AssertionConditionAudienceRestrictionFailed { .. } => {
            "the assertion is meant for another service (its Audience is not this organization's entity id)".into()
        }
        SamlError::AssertionExpired { .. }
        | SamlError::ResponseExpired { .. }
        | SamlError::AssertionConditionExpired { .. }
        | SamlError::AssertionSubjectConfirmationExpired { .. } => {
            "the assertion has expired; sign in again (if this repeats, compare the provider's clock)".into()
        }
        SamlError::AssertionConditionExpiredBefore { .. }
        | SamlError::AssertionSubjectConfirmationExpiredBefore { .. } => {
            "the assertion is not valid yet; compare the identity provider's clock".into()
        }
        SamlError::AssertionInResponseToInvalid { .. } | SamlError::ResponseInResponseToInvalid { .. } => {
            "the response does not answer this sign-in's request".into()
        }
        SamlError::AssertionRecipientMismatch { .. } | SamlError::DestinationValidationError { .. } => {
            "the response is addressed to another assertion consumer service".into()
        }
        SamlError::AssertionIssuerMismatch { .. } | SamlError::ResponseIssuerMismatch { .. } => {
            "the response was issued by another identity provider".into()
        }
        SamlError::ResponseBadStatusCode { code } => {
            format!("the identity provider did not sign the person in ({})", code.rsplit(':').next().unwrap_or(code))
        }
        SamlError::EncryptedAssertionsNotYetSupported | SamlError::MissingPrivateKeySP => {
            "encrypted assertions are not supported; configure the provider to sign, not encrypt".into()
        }
        other => format!("the response cannot be used: {other}"),
    };
    invalid_response(message)
}

/// What a verified assertion says.
pub struct VerifiedAssertion {
    pub id: String,
    /// Until when the assertion could be presented (its replay must be refused until then).
    pub not_on_or_after: DateTime<Utc>,
    /// When the provider wants the session re-authenticated, if it said.
    pub session_not_on_or_after: Option<DateTime<Utc>>,
    pub person: VouchedPerson,
}

fn read_assertion(assertion: Assertion, audience: &str, groups_attribute: &str) -> Result<VerifiedAssertion, ApiError> {
    // samael accepts an assertion without an audience restriction; such an assertion could be
    // replayed to any service provider of the same identity provider.
    let conditions = assertion.conditions.as_ref();
    let restricted =
        conditions.and_then(|conditions| conditions.audience_restrictions.as_ref()).is_some_and(|restrictions| {
            !restrictions.is_empty()
                && restrictions.iter().all(|restriction| restriction.audience.iter().any(|a| a == audience))
        });
    if !restricted {
        return Err(invalid_response(format!("the assertion is not restricted to this service provider ({audience})")));
    }
    let subject = assertion.subject.as_ref();
    let confirmation_end = subject
        .and_then(|subject| subject.subject_confirmations.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|confirmation| confirmation.subject_confirmation_data.as_ref()?.not_on_or_after)
        .max();
    let not_on_or_after = conditions
        .and_then(|conditions| conditions.not_on_or_after)
        .into_iter()
        .chain(confirmation_end)
        .min()
        .ok_or_else(|| invalid_response("the assertion has no NotOnOrAfter"))?;
    let attributes: Vec<&samael::attribute::Attribute> =
        assertion.attribute_statements.iter().flatten().flat_map(|statement| statement.attributes.iter()).collect();
    let values = |names: &[&str]| -> Vec<String> {
        attributes
            .iter()
            .filter(|attribute| {
                names.iter().any(|name| {
                    attribute.name.as_deref() == Some(*name) || attribute.friendly_name.as_deref() == Some(*name)
                })
            })
            .flat_map(|attribute| attribute.values.iter().filter_map(|value| value.value.clone()))
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
            .collect()
    };
    let name_id = subject.and_then(|subject| subject.name_id.as_ref());
    let email = values(&EMAIL_ATTRIBUTES)
        .into_iter()
        .next()
        .or_else(|| name_id.filter(|id| id.format.as_deref() == Some(EMAIL_NAME_ID)).map(|id| id.value.trim().into()))
        .ok_or_else(|| invalid_response("the assertion carries no email (an `email` attribute or an email NameID)"))?;
    if !email.contains('@') || email.len() > 254 {
        return Err(invalid_response("the assertion's email is not an address"));
    }
    let subject_id = name_id.map(|id| id.value.trim().to_string()).filter(|id| !id.is_empty()).unwrap_or(email.clone());
    let session_not_on_or_after =
        assertion.authn_statements.iter().flatten().filter_map(|statement| statement.session_not_on_or_after).min();
    if session_not_on_or_after.is_some_and(|end| end <= Utc::now()) {
        return Err(invalid_response("the identity provider's session for this sign-in has already ended"));
    }
    Ok(VerifiedAssertion {
        id: assertion.id.clone(),
        not_on_or_after,
        session_not_on_or_after,
        person: VouchedPerson {
            subject: subject_id,
            email: email.to_lowercase(),
            name: values(&NAME_ATTRIBUTES).into_iter().next().unwrap_or_default(),
            groups: values(&[groups_attribute]),
            refresh_token: None,
            expires_in: None,
        },
    })
}

/// The service provider metadata an organization gives its identity provider: signed
/// assertions wanted, unsigned requests, one HTTP-POST assertion consumer service (sign-out
/// is the platform's own, so no logout service).
pub fn service_provider_metadata(urls: &ServiceProviderUrls) -> Result<String, ApiError> {
    let descriptor = EntityDescriptor {
        entity_id: Some(urls.entity_id.clone()),
        valid_until: Some(Utc::now() + chrono::Duration::days(7)),
        sp_sso_descriptors: Some(vec![SpSsoDescriptor {
            protocol_support_enumeration: Some("urn:oasis:names:tc:SAML:2.0:protocol".into()),
            authn_requests_signed: Some(false),
            want_assertions_signed: Some(true),
            name_id_formats: Some(vec![EMAIL_NAME_ID.into()]),
            assertion_consumer_services: vec![IndexedEndpoint {
                binding: HTTP_POST_BINDING.into(),
                location: urls.acs_url.clone(),
                response_location: None,
                index: 0,
                is_default: Some(true),
            }],
            ..SpSsoDescriptor::default()
        }]),
        ..EntityDescriptor::default()
    };
    descriptor.to_string().map_err(|error| ApiError::internal(format!("SAML metadata: {error}")))
}

/// How long until `instant`, at least a second (a cache entry needs a lifetime).
pub fn until(instant: DateTime<Utc>) -> Duration {
    let seconds = (instant - Utc::now()).num_seconds() + MAX_CLOCK_SKEW_SECONDS;
    Duration::from_secs(seconds.max(1) as u64)
}

#[cfg(test)]
mod tests {
    use samael::attribute::{Attribute, AttributeValue};
    use samael::schema::{
        AttributeStatement, AudienceRestriction, Conditions, Subject, SubjectConfirmation, SubjectConfirmationData,
        SubjectNameID,
    };

    use super::*;

    const AUDIENCE: &str = "https://ciq.example/api/v1/auth/sso/saml/org/metadata";

    fn attribute(name: &str, friendly: Option<&str>, values: &[&str]) -> Attribute {
        Attribute {
            friendly_name: friendly.map(str::to_string),
            name: Some(name.into()),
            name_format: None,
            values: values
                .iter()
                .map(|value| AttributeValue { attribute_type: None, value: Some(value.to_string()) })
                .collect(),
        }
    }

    fn assertion(name_id: SubjectNameID, attributes: Vec<Attribute>) -> Assertion {
        let now = Utc::now();
        Assertion {
            id: "_a1".into(),
            issue_instant: now,
            version: "2.0".into(),
            issuer: Issuer { value: Some("https://idp.example".into()), ..Issuer::default() },
            signature: None,
            subject: Some(Subject {
                name_id: Some(name_id),
                subject_confirmations: Some(vec![SubjectConfirmation {
                    method: Some("urn:oasis:names:tc:SAML:2.0:cm:bearer".into()),
                    name_id: None,
                    subject_confirmation_data: Some(SubjectConfirmationData {
                        not_before: None,
                        not_on_or_after: Some(now + chrono::Duration::minutes(3)),
                        recipient: None,
                        in_response_to: None,
                        address: None,
                        content: None,
                    }),
                }]),
            }),
            conditions: Some(Conditions {
                not_before: None,
                not_on_or_after: Some(now + chrono::Duration::minutes(5)),
                audience_restrictions: Some(vec![AudienceRestriction { audience: vec![AUDIENCE.into()] }]),
                one_time_use: None,
                proxy_restriction: None,
            }),
            authn_statements: None,
            attribute_statements: Some(vec![AttributeStatement { attributes }]),
        }
    }

    fn email_name_id(value: &str) -> SubjectNameID {
        SubjectNameID { format: Some(EMAIL_NAME_ID.into()), value: value.into() }
    }

    #[test]
    fn the_person_is_read_from_attributes_or_an_email_name_id() {
        let read = read_assertion(
            assertion(
                SubjectNameID { format: None, value: "opaque-7".into() },
                vec![
                    attribute("mail", None, &["Pat@Example.COM "]),
                    attribute("urn:oid:1.3.6.1.4.1.5923.1.5.1.1", Some("memberOf"), &["auditors", " ", "admins"]),
                ],
            ),
            AUDIENCE,
            "memberOf",
        )
        .unwrap();
        assert_eq!((read.person.email.as_str(), read.person.subject.as_str()), ("pat@example.com", "opaque-7"));
        assert_eq!(read.person.groups, ["auditors", "admins"], "by friendly name, blanks dropped");
        // The earlier of the conditions' and the confirmation's ends bounds a replay.
        assert!(read.not_on_or_after < Utc::now() + chrono::Duration::minutes(4));

        let read = read_assertion(assertion(email_name_id("sam@example.com"), vec![]), AUDIENCE, "groups").unwrap();
        assert_eq!(read.person.email, "sam@example.com");
        let unnamed = read_assertion(
            assertion(SubjectNameID { format: None, value: "sam@example.com".into() }, vec![]),
            AUDIENCE,
            "groups",
        );
        assert!(unnamed.is_err(), "a NameID not declared an email is not taken for one");
    }

    #[test]
    fn an_assertion_for_anyone_or_forever_is_refused() {
        let mut open = assertion(email_name_id("sam@example.com"), vec![]);
        open.conditions.as_mut().unwrap().audience_restrictions = None;
        let refused = read_assertion(open, AUDIENCE, "groups").err().unwrap();
        assert!(refused.to_string().contains("not restricted"), "{refused}");

        // Every restriction must include this service (they are ANDed).
        let mut shared = assertion(email_name_id("sam@example.com"), vec![]);
        shared
            .conditions
            .as_mut()
            .unwrap()
            .audience_restrictions
            .as_mut()
            .unwrap()
            .push(AudienceRestriction { audience: vec!["https://someone.else".into()] });
        assert!(read_assertion(shared, AUDIENCE, "groups").is_err());

        let mut endless = assertion(email_name_id("sam@example.com"), vec![]);
        endless.conditions.as_mut().unwrap().not_on_or_after = None;
        let confirmation = endless.subject.as_mut().unwrap().subject_confirmations.as_mut().unwrap();
        confirmation[0].subject_confirmation_data.as_mut().unwrap().not_on_or_after = None;
        let refused = read_assertion(endless, AUDIENCE, "groups").err().unwrap();
        assert!(refused.to_string().contains("NotOnOrAfter"), "{refused}");
    }

    #[test]
    fn a_provider_session_that_already_ended_signs_nobody_in() {
        let mut ended = assertion(email_name_id("sam@example.com"), vec![]);
        ended.authn_statements = Some(vec![samael::schema::AuthnStatement {
            authn_instant: Some(Utc::now() - chrono::Duration::hours(9)),
            session_index: None,
            session_not_on_or_after: Some(Utc::now() - chrono::Duration::hours(1)),
            subject_locality: None,
            authn_context: None,
        }]);
        let refused = read_assertion(ended, AUDIENCE, "groups").err().unwrap();
        assert!(refused.to_string().contains("already ended"), "{refused}");
    }

    #[test]
    fn the_replay_window_is_at_least_a_second() {
        assert_eq!(until(Utc::now() - chrono::Duration::hours(1)), Duration::from_secs(1));
        assert!(until(Utc::now() + chrono::Duration::minutes(5)) > Duration::from_secs(300));
    }
}
