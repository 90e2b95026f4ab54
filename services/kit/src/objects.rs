//! Object storage for rendered files: a local directory in development (`file://`), S3 or an
//! S3-compatible store in production (`s3://bucket/prefix`). Keys are relative paths such as
//! `exports/<organization>/<id>.pdf`; callers put organization ids in them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::crypto::constant_time_eq;
use crate::error::ApiError;
use crate::secrets::SecretBox;
use crate::time;

/// A configured store.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// Set on S3, which can sign download links itself.
    s3: Option<Arc<AmazonS3>>,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects").field("store", &self.store.to_string()).field("prefix", &self.prefix).finish()
    }
}

impl Objects {
    /// The store at `url` (see `StorageConfig`). A local directory is created when missing.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("object store URL {url:?}: {e}"))?;
        match parsed.scheme() {
            "file" => {
                let dir =
                    parsed.to_file_path().map_err(|()| format!("object store URL {url:?} is not a local path"))?;
                std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
                let store = LocalFileSystem::new_with_prefix(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                Ok(Self { store: Arc::new(store), prefix: String::new(), s3: None })
            }
            "s3" => {
                crate::crypto::install_tls_crypto_provider();
                let s3 = AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| format!("object store {url:?}: {e}"))?;
                let s3 = Arc::new(s3);
                let prefix = parsed.path().trim_matches('/').to_string();
                Ok(Self { store: s3.clone(), prefix, s3: Some(s3) })
            }
            other => Err(format!("object store URL {url:?}: unsupported scheme {other:?} (use file:// or s3://)")),
        }
    }

    fn path(&self, key: &str) -> Result<Path, ApiError> {
        let full = if self.prefix.is_empty() { key.to_string() } else { format!("{}/{key}", self.prefix) };
        Path::parse(&full).map_err(|e| ApiError::internal(format!("object key {key:?}: {e}")))
    }

    /// Stores `bytes` under `key`, replacing what was there.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ApiError> {
        let path = self.path(key)?;
        self.store.put(&path, PutPayload::from(bytes)).await.map_err(unavailable)?;
        Ok(())
    }

    /// The bytes under `key`; `None` when there are none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, ApiError> {
        let path = self.path(key)?;
        match self.store.get(&path).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(unavailable)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Removes `key` (nothing when it is absent).
    pub async fn delete(&self, key: &str) -> Result<(), ApiError> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Whether the store signs links itself (S3), so uploads bypass the platform.
    pub fn signs_links(&self) -> bool {
        self.s3.is_some()
    }

    /// A presigned GET URL valid for `ttl`, where the store signs links itself (S3); `None`
    /// for a local directory, whose files the platform serves through signed links of its own.
    pub async fn presigned_get(&self, key: &str, ttl: Duration) -> Result<Option<String>, ApiError> {
        self.presigned(http::Method::GET, key, ttl).await
    }

    /// Like [`Objects::presigned_get`], a URL that takes the file at `key` by PUT.
    pub async fn presigned_put(&self, key: &str, ttl: Duration) -> Result<Option<String>, ApiError> {
        self.presigned(http::Method::PUT, key, ttl).await
    }

    async fn presigned(&self, method: http::Method, key: &str, ttl: Duration) -> Result<Option<String>, ApiError> {
        let Some(s3) = &self.s3 else { return Ok(None) };
        let url = s3.signed_url(method, &self.path(key)?, ttl).await.map_err(unavailable)?;
        Ok(Some(url.to_string()))
    }
}

fn unavailable(error: object_store::Error) -> ApiError {
    ApiError::Unavailable {
        reason: "OBJECT_STORE",
        message: "object storage is unavailable; try again".into(),
        retry_after: Some(Duration::from_secs(5)),
    }
    .log_cause(&error)
}

/// A file as a download RPC's answer: the edge sends the body raw, and turns the
/// `content-disposition` metadata into the header, so browsers save it under `file_name`.
pub fn attachment(
    body: complianceiq_proto::google::api::HttpBody,
    file_name: &str,
) -> tonic::Response<complianceiq_proto::google::api::HttpBody> {
    let mut response = tonic::Response::new(body);
    if let Ok(value) = format!("attachment; filename=\"{file_name}\"").parse() {
        response.metadata_mut().insert("content-disposition", value);
    }
    response
}

/// One signed download link's parts, as its route receives them.
#[derive(Clone, Debug, Default)]
pub struct LinkParts {
    pub organization_id: String,
    /// The file's record (an export, a report).
    pub id: String,
    /// Seconds since the epoch.
    pub expires: i64,
    pub signature: String,
}

/// Download (and upload) links that expire. On S3 they are the bucket's presigned URLs; with
/// a local directory they lead to the platform's own download (or upload) route, signed with a key derived from
/// the encryption keys: the signature and expiry are the link's authorization, so a link can
/// be handed to a browser or a mail recipient without a token.
#[derive(Clone)]
pub struct SignedLinks {
    pub secrets: Arc<SecretBox>,
    pub public_url: String,
    pub ttl: Duration,
    /// The download (or upload) route, `{id}` standing for the record, e.g.
    /// `/api/v1/insights/exports/{id}/download`; it is also what a signature covers besides
    /// the parts, so a link cannot be moved to another kind of file.
    pub route: &'static str,
}

impl SignedLinks {
    fn message(&self, organization: &str, id: &str, expires: i64) -> String {
        format!("{}\u{1f}{organization}\u{1f}{id}\u{1f}{expires}", self.route)
    }

    /// A link to the download route valid until `expires` (seconds since the epoch).
    pub fn sign(&self, organization: &str, id: &str, expires: i64) -> String {
        let signature = self.secrets.keyed_hash(self.message(organization, id, expires).as_bytes(), "download-link");
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("organization_id", organization)
            .append_pair("expires", &expires.to_string())
            .append_pair("signature", &signature)
            .finish();
        format!("{}{}?{query}", self.public_url.trim_end_matches('/'), self.route.replace("{id}", id))
    }

    /// Checks a link's signature (under any configured key) and its expiry at `now` (seconds).
    pub fn verify(&self, link: &LinkParts, now: i64) -> Result<(), ApiError> {
        let message = self.message(&link.organization_id, &link.id, link.expires);
        let valid = self
            .secrets
            .keyed_hashes(message.as_bytes(), "download-link")
            .iter()
            .any(|expected| constant_time_eq(expected.as_bytes(), link.signature.as_bytes()));
        if !valid {
            return Err(ApiError::PermissionDenied {
                reason: "LINK_INVALID",
                message: "this link is not one the platform signed".into(),
            });
        }
        if link.expires <= now {
            return Err(ApiError::PermissionDenied {
                reason: "LINK_EXPIRED",
                message: "this link has expired; reading the file's record again hands out a new one".into(),
            });
        }
        Ok(())
    }

    /// Checks a download request's link parts (the record's id under the field `id_field`,
    /// its organization, the expiry and the signature) now: the record's id and organization.
    pub fn open(&self, id_field: &str, link: LinkParts) -> Result<(String, crate::ids::OrganizationId), ApiError> {
        let mut violations = crate::error::FieldViolations::default();
        let id = violations.uuid(id_field, &link.id);
        let organization = violations.uuid("organization_id", &link.organization_id);
        if link.signature.is_empty() {
            violations.required("signature");
        }
        violations.check()?;
        self.verify(&link, time::now_micros() / 1_000_000)?;
        Ok((id, crate::ids::OrganizationId::from_stored(&organization)?))
    }

    /// A fresh link to the file at `key` of record `id`, and when it expires (seconds).
    pub async fn link(
        &self,
        objects: &Objects,
        key: &str,
        organization: &str,
        id: &str,
    ) -> Result<(String, i64), ApiError> {
        let presigned = objects.presigned_get(key, self.ttl).await?;
        Ok(self.presigned_or_signed(presigned, organization, id))
    }

    /// A fresh link that takes the file at `key` of record `id` by PUT (the route is then an
    /// upload route), and when it expires (seconds).
    pub async fn upload_link(
        &self,
        objects: &Objects,
        key: &str,
        organization: &str,
        id: &str,
    ) -> Result<(String, i64), ApiError> {
        let presigned = objects.presigned_put(key, self.ttl).await?;
        Ok(self.presigned_or_signed(presigned, organization, id))
    }

    fn presigned_or_signed(&self, presigned: Option<String>, organization: &str, id: &str) -> (String, i64) {
        let expires =
            (time::now_micros() / 1_000_000).saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX));
        let uri = presigned.unwrap_or_else(|| self.sign(organization, id, expires));
        (uri, expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> SignedLinks {
        let secrets = SecretBox::from_config(&format!("k1:{}=", "A".repeat(43))).expect("a key");
        SignedLinks {
            secrets: Arc::new(secrets),
            public_url: "http://localhost:8080/".into(),
            ttl: Duration::from_secs(900),
            route: "/api/v1/insights/exports/{id}/download",
        }
    }

    fn parts_of(link: &str) -> LinkParts {
        let url = url::Url::parse(link).unwrap();
        let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        LinkParts {
            id: url.path_segments().unwrap().nth(4).unwrap().to_string(),
            organization_id: query["organization_id"].clone(),
            expires: query["expires"].parse().unwrap(),
            signature: query["signature"].clone(),
        }
    }

    #[test]
    fn a_signed_link_opens_its_file_until_it_expires_and_nothing_else() {
        let links = links();
        let link = links.sign("org", "exp", 1_000);
        assert!(
            link.starts_with(
                "http://localhost:8080/api/v1/insights/exports/exp/download?organization_id=org&expires=1000&signature="
            ),
            "{link}"
        );
        let parts = parts_of(&link);
        links.verify(&parts, 999).unwrap();
        let expired = links.verify(&parts, 1_000).unwrap_err();
        assert!(matches!(expired, ApiError::PermissionDenied { reason: "LINK_EXPIRED", .. }));
        let elsewhere = SignedLinks { route: "/api/v1/audit/reports/{id}/download", ..links.clone() };
        assert!(elsewhere.verify(&parts, 0).is_err(), "a link does not open another kind of file");
        for forged in [
            LinkParts { expires: 2_000, ..parts.clone() },
            LinkParts { id: "other".into(), ..parts.clone() },
            LinkParts { organization_id: "another".into(), ..parts.clone() },
            LinkParts { signature: "k1:x:00".into(), ..parts.clone() },
        ] {
            assert!(matches!(links.verify(&forged, 0), Err(ApiError::PermissionDenied { reason: "LINK_INVALID", .. })));
        }
    }

    #[tokio::test]
    async fn a_local_directory_keeps_replaces_and_forgets_files() {
        let dir = std::env::temp_dir().join(format!("ciq-objects-{}", uuid::Uuid::new_v4()));
        let objects = Objects::from_url(&format!("file://{}", dir.display())).unwrap();
        objects.put("exports/org/a.csv", b"one".to_vec()).await.unwrap();
        objects.put("exports/org/a.csv", b"two".to_vec()).await.unwrap();
        assert_eq!(objects.get("exports/org/a.csv").await.unwrap().as_deref(), Some(&b"two"[..]));
        assert!(dir.join("exports/org/a.csv").is_file());
        assert_eq!(objects.presigned_get("exports/org/a.csv", Duration::from_secs(60)).await.unwrap(), None);
        assert_eq!(objects.presigned_put("exports/org/a.csv", Duration::from_secs(60)).await.unwrap(), None);
        assert!(!objects.signs_links(), "the platform's own routes serve a local directory");
        objects.delete("exports/org/a.csv").await.unwrap();
        objects.delete("exports/org/a.csv").await.unwrap();
        assert_eq!(objects.get("exports/org/a.csv").await.unwrap(), None);
        assert!(Objects::from_url("ftp://example.com/x").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn s3_links_are_presigned_by_the_store() {
        // Signing needs no network: the link carries the signature of the configured keys.
        crate::crypto::install_tls_crypto_provider();
        let s3 = AmazonS3Builder::new()
            .with_bucket_name("exports")
            .with_region("eu-west-1")
            .with_access_key_id("AKIDEXAMPLE")
            .with_secret_access_key("secret")
            .build()
            .unwrap();
        let s3 = Arc::new(s3);
        let objects = Objects { store: s3.clone(), prefix: "ciq".into(), s3: Some(s3) };
        assert!(objects.signs_links());
        let url = objects.presigned_get("exports/org/a.pdf", Duration::from_secs(900)).await.unwrap().unwrap();
        assert!(url.contains("/ciq/exports/org/a.pdf?"), "{url}");
        assert!(url.contains("X-Amz-Expires=900") && url.contains("X-Amz-Signature="), "{url}");

        // An upload link is the store's too, signed for PUT: the same key's download link
        // carries another signature, so neither works as the other.
        let signature = |link: &str| link.split("X-Amz-Signature=").nth(1).unwrap_or_default().to_string();
        let get = objects.presigned_get("documents/org/d", Duration::from_secs(900)).await.unwrap().unwrap();
        let (put, expires) = links().upload_link(&objects, "documents/org/d", "org", "d").await.unwrap();
        assert!(put.contains("/ciq/documents/org/d?") && put.contains("X-Amz-Signature="), "{put}");
        assert!(!put.contains("/api/v1/"), "not the platform's own route: {put}");
        assert_ne!(signature(&put), signature(&get));
        assert!(expires > time::now_micros() / 1_000_000);
    }
}
