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

use crate::error::ApiError;

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

    /// A presigned GET URL valid for `ttl`, where the store signs links itself (S3); `None`
    /// for a local directory, whose files the platform serves through signed links of its own.
    pub async fn presigned_get(&self, key: &str, ttl: Duration) -> Result<Option<String>, ApiError> {
        let Some(s3) = &self.s3 else { return Ok(None) };
        let url = s3.signed_url(http::Method::GET, &self.path(key)?, ttl).await.map_err(unavailable)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_directory_keeps_replaces_and_forgets_files() {
        let dir = std::env::temp_dir().join(format!("ciq-objects-{}", uuid::Uuid::new_v4()));
        let objects = Objects::from_url(&format!("file://{}", dir.display())).unwrap();
        objects.put("exports/org/a.csv", b"one".to_vec()).await.unwrap();
        objects.put("exports/org/a.csv", b"two".to_vec()).await.unwrap();
        assert_eq!(objects.get("exports/org/a.csv").await.unwrap().as_deref(), Some(&b"two"[..]));
        assert!(dir.join("exports/org/a.csv").is_file());
        assert_eq!(objects.presigned_get("exports/org/a.csv", Duration::from_secs(60)).await.unwrap(), None);
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
        let url = objects.presigned_get("exports/org/a.pdf", Duration::from_secs(900)).await.unwrap().unwrap();
        assert!(url.contains("/ciq/exports/org/a.pdf?"), "{url}");
        assert!(url.contains("X-Amz-Expires=900") && url.contains("X-Amz-Signature="), "{url}");
    }
}
