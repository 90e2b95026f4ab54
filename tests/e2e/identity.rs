//! The life of a user through the auth service, as a client lives it.

use std::time::Duration;

use complianceiq_auth::totp;
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::error::detail;
use complianceiq_proto::complianceiq::auth::v1::{
    EnableMfaRequest, ForgotPasswordRequest, GetJwksRequest, LoginRequest, LoginResponse, LogoutRequest,
    RefreshRequest, RegisterRequest, ResetPasswordRequest, TokenPair, VerifyEmailRequest, VerifyMfaRequest,
    login_response,
};
use complianceiq_proto::complianceiq::user::v1::GetCurrentUserRequest;
use complianceiq_proto::google::rpc::{ErrorInfo, RetryInfo};
use tonic::Code;

use crate::harness::{TestPlatform, violations};
use crate::people::{PASSWORD, authorized, claims};
use crate::platform_tests;

platform_tests!(
    a_user_lives_from_registration_to_logout,
    a_forgotten_password_is_reset_through_the_mailbox,
    repeated_failed_logins_are_throttled,
    rotated_keys_keep_verifying_until_their_tokens_expire,
    bad_registrations_name_their_fields_and_write_nothing,
);

fn reason(status: &tonic::Status) -> String {
    detail::<ErrorInfo>(status, "google.rpc.ErrorInfo").map(|info| info.reason).unwrap_or_default()
}

pub(crate) fn login(email: &str, password: &str) -> LoginRequest {
    LoginRequest { email: email.into(), password: password.into(), organization_id: String::new() }
}

fn tokens(response: LoginResponse) -> TokenPair {
    match response.result {
        Some(login_response::Result::Tokens(tokens)) => tokens,
        other => panic!("expected tokens, got {other:?}"),
    }
}

pub fn decode_base32(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0, Vec::new());
    for c in text.bytes() {
        let value = alphabet.iter().position(|&a| a == c).expect("base32") as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    out
}

fn now_seconds() -> i64 {
    complianceiq_kit::auth::verifier::now_seconds()
}

async fn a_user_lives_from_registration_to_logout(platform: &TestPlatform) {
    let mut auth = platform.auth().await;
    let email = "ada@example.com";
    let registered = auth
        .register(RegisterRequest {
            email: " Ada@Example.com ".into(),
            password: PASSWORD.into(),
            full_name: "Ada Lovelace".into(),
        })
        .await
        .expect("register")
        .into_inner();
    assert!(registered.email_verification_required);
    let account = registered.account.expect("account");
    assert_eq!(account.email, email, "emails are normalized");
    assert!(!account.email_verified);

    // Not verified yet: login says so (and sends a fresh link).
    let unverified = auth.login(login(email, PASSWORD)).await.unwrap_err();
    assert_eq!((unverified.code(), reason(&unverified).as_str()), (Code::FailedPrecondition, "EMAIL_NOT_VERIFIED"));

    let token = platform.token_from_mail(email, "Verify your email").await;
    let verified = auth.verify_email(VerifyEmailRequest { token: token.clone() }).await.expect("verify").into_inner();
    assert!(verified.email_verified);
    let again = auth.verify_email(VerifyEmailRequest { token }).await.unwrap_err();
    assert_eq!(violations(&again), [("token".to_string(), "INVALID_OR_EXPIRED".to_string())], "single use");

    // Login: an unscoped token with exactly the design's claims plus jti.
    let first = tokens(auth.login(login(email, PASSWORD)).await.expect("login").into_inner());
    let claimed = claims(&first.access_token);
    let mut keys: Vec<&str> = claimed.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["email", "exp", "iat", "iss", "jti", "organization_id", "permissions", "roles", "user_id"]);
    assert_eq!(claimed["iss"], "complianceiq-auth-service");
    assert_eq!(claimed["exp"].as_i64().unwrap() - claimed["iat"].as_i64().unwrap(), 900);
    assert_eq!(claimed["user_id"], account.id);
    assert!(claimed["organization_id"].is_null());
    assert_eq!((first.token_type.as_str(), first.expires_in, first.refresh_expires_in), ("Bearer", 900, 604_800));

    // MFA: a wrong password is refused, then the provisioning URI, then a code confirms it.
    let wrong = auth
        .enable_mfa(authorized(EnableMfaRequest { password: "not the password".into() }, &first.access_token))
        .await
        .unwrap_err();
    assert_eq!(violations(&wrong), [("password".to_string(), "INCORRECT".to_string())]);
    let enrollment = auth
        .enable_mfa(authorized(EnableMfaRequest { password: PASSWORD.into() }, &first.access_token))
        .await
        .expect("enable MFA")
        .into_inner();
    assert!(enrollment.provisioning_uri.starts_with("otpauth://totp/ComplianceIQ:ada@example.com?secret="));
    assert!(enrollment.provisioning_uri.contains("&issuer=ComplianceIQ&algorithm=SHA1&digits=6&period=30"));
    let secret = decode_base32(&enrollment.secret);
    assert_eq!(secret.len(), 20);
    let code = totp::code_at(&secret, now_seconds() / 30);
    let confirmed = auth
        .verify_mfa(authorized(
            VerifyMfaRequest { challenge_token: String::new(), code: code.clone() },
            &first.access_token,
        ))
        .await
        .expect("confirm MFA")
        .into_inner();
    assert!(confirmed.mfa_enabled);
    assert_eq!(confirmed.recovery_codes.len(), 10);

    // Login now asks for the second factor; the code just used does not work twice.
    let challenge = match auth.login(login(email, PASSWORD)).await.expect("login").into_inner().result {
        Some(login_response::Result::MfaChallenge(challenge)) => challenge,
        other => panic!("expected an MFA challenge, got {other:?}"),
    };
    let replayed = auth
        .verify_mfa(VerifyMfaRequest { challenge_token: challenge.challenge_token.clone(), code })
        .await
        .unwrap_err();
    assert_eq!((replayed.code(), reason(&replayed).as_str()), (Code::Unauthenticated, "MFA_CODE_INVALID"));
    let wrong = auth
        .verify_mfa(VerifyMfaRequest { challenge_token: challenge.challenge_token.clone(), code: "000000".into() })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    // A code of the next time step (within the allowed drift) completes the login.
    let next_code = totp::code_at(&secret, now_seconds() / 30 + 1);
    let second = auth
        .verify_mfa(VerifyMfaRequest { challenge_token: challenge.challenge_token.clone(), code: next_code })
        .await
        .expect("TOTP login")
        .into_inner()
        .tokens
        .expect("tokens");
    let used = auth
        .verify_mfa(VerifyMfaRequest { challenge_token: challenge.challenge_token, code: "123456".into() })
        .await
        .unwrap_err();
    assert_eq!(reason(&used), "MFA_CHALLENGE_INVALID", "a challenge completes once");

    // A recovery code also completes a login, once.
    let recovery = confirmed.recovery_codes[0].clone();
    for attempt in 0..2 {
        let challenge = match auth.login(login(email, PASSWORD)).await.unwrap().into_inner().result {
            Some(login_response::Result::MfaChallenge(challenge)) => challenge,
            other => panic!("expected an MFA challenge, got {other:?}"),
        };
        let result = auth
            .verify_mfa(VerifyMfaRequest { challenge_token: challenge.challenge_token, code: recovery.to_lowercase() })
            .await;
        assert_eq!(result.is_ok(), attempt == 0, "recovery codes are single use");
    }

    // Refresh rotates the refresh token; presenting the old one again ends the session.
    let rotated = auth
        .refresh(RefreshRequest { refresh_token: second.refresh_token.clone(), organization_id: String::new() })
        .await
        .expect("refresh")
        .into_inner();
    assert_ne!(rotated.refresh_token, second.refresh_token);
    let mut users = platform.users().await;
    let alerts_before = platform
        .stored_count(DatabaseGroup::Auth, "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'security.alert'")
        .await;
    assert_eq!(alerts_before, 3, "each wrong second-factor code is a (low) security event");
    let reuse = auth
        .refresh(RefreshRequest { refresh_token: second.refresh_token.clone(), organization_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!((reuse.code(), reason(&reuse).as_str()), (Code::Unauthenticated, "REFRESH_TOKEN_REUSED"));
    let family_gone = auth
        .refresh(RefreshRequest { refresh_token: rotated.refresh_token.clone(), organization_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(reason(&family_gone), "REFRESH_TOKEN_REVOKED", "the whole family is revoked");
    let access_gone =
        users.get_current_user(authorized(GetCurrentUserRequest {}, &rotated.access_token)).await.unwrap_err();
    assert_eq!((access_gone.code(), reason(&access_gone).as_str()), (Code::Unauthenticated, "TOKEN_REVOKED"));
    let alerts = platform
        .stored_count(DatabaseGroup::Auth, "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'security.alert'")
        .await;
    assert_eq!(alerts, alerts_before + 1, "the reuse is a security event");

    // Logout revokes the session and the access token at once.
    let challenge = match auth.login(login(email, PASSWORD)).await.unwrap().into_inner().result {
        Some(login_response::Result::MfaChallenge(challenge)) => challenge,
        other => panic!("{other:?}"),
    };
    let session = auth
        .verify_mfa(VerifyMfaRequest {
            challenge_token: challenge.challenge_token,
            code: confirmed.recovery_codes[1].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tokens
        .unwrap();
    let logout = auth
        .logout(authorized(
            LogoutRequest { refresh_token: session.refresh_token.clone(), all_sessions: false },
            &session.access_token,
        ))
        .await
        .expect("logout")
        .into_inner();
    assert_eq!(logout.revoked_sessions, 1);
    let after = auth
        .refresh(RefreshRequest { refresh_token: session.refresh_token, organization_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::Unauthenticated);
    let revoked = auth
        .logout(authorized(LogoutRequest { refresh_token: String::new(), all_sessions: true }, &session.access_token))
        .await
        .unwrap_err();
    assert_eq!(reason(&revoked), "TOKEN_REVOKED");
}

async fn a_forgotten_password_is_reset_through_the_mailbox(platform: &TestPlatform) {
    let person = platform.person("grace@example.com").await;
    let mut auth = platform.auth().await;

    // The answer is the same whether or not the email exists; only a real account gets mail.
    auth.forgot_password(ForgotPasswordRequest { email: "nobody@example.com".into() }).await.expect("unknown email");
    auth.forgot_password(ForgotPasswordRequest { email: person.email.clone() }).await.expect("known email");
    let token = platform.token_from_mail(&person.email, "Reset your ComplianceIQ password").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mail_for_nobody = std::fs::read_dir(platform.config.data_dir.join("mailbox"))
        .unwrap()
        .flatten()
        .any(|entry| entry.file_name().to_string_lossy().contains("nobody"));
    assert!(!mail_for_nobody);

    // A weak password is refused and the token stays usable.
    let weak = auth
        .reset_password(ResetPasswordRequest { token: token.clone(), new_password: "short".into() })
        .await
        .unwrap_err();
    assert_eq!(violations(&weak), [("new_password".to_string(), "TOO_SHORT".to_string())]);
    let new_password = "a much better passphrase 42";
    auth.reset_password(ResetPasswordRequest { token: token.clone(), new_password: new_password.into() })
        .await
        .expect("reset");
    let reused =
        auth.reset_password(ResetPasswordRequest { token, new_password: new_password.into() }).await.unwrap_err();
    assert_eq!(violations(&reused)[0].1, "INVALID_OR_EXPIRED");

    // The old password and the old sessions are gone; the new password works.
    assert_eq!(auth.login(login(&person.email, PASSWORD)).await.unwrap_err().code(), Code::Unauthenticated);
    let old_session = auth
        .refresh(RefreshRequest { refresh_token: person.tokens.refresh_token.clone(), organization_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(reason(&old_session), "REFRESH_TOKEN_REVOKED");
    let mut users = platform.users().await;
    let old_access = users.get_current_user(authorized(GetCurrentUserRequest {}, person.token())).await.unwrap_err();
    assert_eq!(old_access.code(), Code::Unauthenticated);
    tokens(auth.login(login(&person.email, new_password)).await.expect("new password").into_inner());
}

async fn repeated_failed_logins_are_throttled(platform: &TestPlatform) {
    let person = platform.person("eve@example.com").await;
    let mut auth = platform.auth().await;
    for _ in 0..4 {
        let wrong = auth.login(login(&person.email, "guessing the password")).await.unwrap_err();
        assert_eq!((wrong.code(), reason(&wrong).as_str()), (Code::Unauthenticated, "INVALID_CREDENTIALS"));
    }
    let fifth = auth.login(login(&person.email, "guessing the password")).await.unwrap_err();
    assert_eq!(fifth.code(), Code::Unauthenticated);
    // Locked: even the right password waits, and the error says for how long.
    let locked = auth.login(login(&person.email, PASSWORD)).await.unwrap_err();
    assert_eq!((locked.code(), reason(&locked).as_str()), (Code::ResourceExhausted, "TOO_MANY_FAILED_LOGINS"));
    let retry = detail::<RetryInfo>(&locked, "google.rpc.RetryInfo").expect("retry info").retry_delay.unwrap();
    assert!((800..=900).contains(&retry.seconds), "{retry:?}");
    // An unknown email gets the same answer as a wrong password, and is throttled the same way.
    let unknown = auth.login(login("nobody@example.com", PASSWORD)).await.unwrap_err();
    assert_eq!((unknown.code(), unknown.message()), (Code::Unauthenticated, "the email or password is wrong"));
    let alerts = platform
        .stored_count(DatabaseGroup::Auth, "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'security.alert'")
        .await;
    assert_eq!(alerts, 4 + 1, "each failure of the known account, then the lock, is a security event");
}

async fn rotated_keys_keep_verifying_until_their_tokens_expire(platform: &TestPlatform) {
    let tenant = platform.tenant("Rotating").await;
    let mut auth = platform.auth().await;
    let before = auth.get_jwks(GetJwksRequest {}).await.unwrap().into_inner().keys;
    assert_eq!(before.len(), 1);
    let key = &before[0];
    assert_eq!(
        (key.kty.as_str(), key.alg.as_str(), key.r#use.as_str(), key.e.as_str()),
        ("RSA", "RS256", "sig", "AQAB")
    );
    let old_kid = key.kid.clone();
    let header = |token: &str| {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    assert_eq!(header(tenant.token())["kid"], old_kid.as_str());

    let new_kid = complianceiq_auth::KeyRing::generate_into(&platform.config.jwt_keys_dir()).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = auth.get_jwks(GetJwksRequest {}).await.unwrap().into_inner().keys;
    let kids: Vec<&str> = after.iter().map(|key| key.kid.as_str()).collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()], "the new key is published; the old one still is");

    // The new key signs once it has been published for two seconds (every verifier can have
    // fetched it by then).
    let mut admin = tenant.admin.clone();
    let old_token = admin.tokens.access_token.clone();
    platform.refresh_until(&mut admin, |tokens| header(&tokens.access_token)["kid"] == new_kid.as_str()).await;
    let mut users = platform.users().await;
    users.get_current_user(authorized(GetCurrentUserRequest {}, &old_token)).await.expect("the old key still verifies");
    users.get_current_user(authorized(GetCurrentUserRequest {}, admin.token())).await.expect("the new key verifies");
}

async fn bad_registrations_name_their_fields_and_write_nothing(platform: &TestPlatform) {
    let mut auth = platform.auth().await;
    let cases = [
        (RegisterRequest::default(), vec![("email", "REQUIRED"), ("password", "REQUIRED"), ("full_name", "REQUIRED")]),
        (
            RegisterRequest {
                email: "not an email".into(),
                password: "password1234".into(),
                full_name: "x".repeat(201),
            },
            vec![("email", "INVALID_FORMAT"), ("password", "TOO_COMMON"), ("full_name", "TOO_LONG")],
        ),
        (
            RegisterRequest {
                email: format!("{}@example.com", "a".repeat(300)),
                password: "x".repeat(5000),
                full_name: "Ok".into(),
            },
            vec![("email", "INVALID_FORMAT"), ("password", "TOO_LONG")],
        ),
        (
            RegisterRequest {
                email: "bob@example.com".into(),
                password: "my name is bob, really".into(),
                full_name: "Bob".into(),
            },
            vec![("password", "CONTAINS_EMAIL")],
        ),
    ];
    for (request, expected) in cases {
        let error = auth.register(request).await.unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
        let expected: Vec<(String, String)> =
            expected.into_iter().map(|(f, r)| (f.to_string(), r.to_string())).collect();
        assert_eq!(violations(&error), expected);
    }
    let login_error = auth
        .login(LoginRequest { email: "x".into(), password: String::new(), organization_id: "nope".into() })
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&login_error).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["email", "password", "organization_id"]);
    assert_eq!(platform.stored_count(DatabaseGroup::Auth, "SELECT COUNT(*) FROM accounts").await, 0);
    assert_eq!(platform.stored_count(DatabaseGroup::Auth, "SELECT COUNT(*) FROM ciq_outbox").await, 0);

    // A second registration of the same email answers as the first did, so it reveals
    // nothing; it changes nothing, and the owner is told by mail.
    let person = platform.person("dup@example.com").await;
    let dup = auth
        .register(RegisterRequest { email: person.email.clone(), password: PASSWORD.into(), full_name: "Again".into() })
        .await
        .expect("the same answer as for a new email")
        .into_inner();
    assert!(dup.email_verification_required);
    assert_ne!(dup.account.as_ref().unwrap().id, person.user_id, "not the real account's id");
    assert_eq!(platform.stored_count(DatabaseGroup::Auth, "SELECT COUNT(*) FROM accounts").await, 1);
    let mailbox = platform.config.data_dir.join("mailbox");
    let warning = crate::people::mail_from_mailbox(&mailbox, &person.email, "Someone tried to register").await;
    assert!(warning.contains("/forgot-password"), "{warning}");
}
