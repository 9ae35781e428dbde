//! Multipart uploads left open under a prefix: listed and aborted where the store can say which
//! are in progress (S3's ListMultipartUploads, GCS's XML-API "list multipart uploads", the same
//! request and answer), so that an export that stopped (a crash, a
//! lost lease) or a retried CreateMultipartUpload whose first attempt succeeded late leaves no
//! upload — and no billed parts — behind.
//!
//! Why list rather than record each upload id as it starts: the one orphan a journal cannot
//! catch is the upload created by an attempt whose answer never arrived (object_store retried
//! it and handed back the second upload's id), and listing finds that one too. object_store
//! has no list of uploads, so the request is made here, signed with its own SigV4 signer and
//! the store's own credentials (on GCS: the store's own bearer token). Azure has no such state to clean (uncommitted blocks expire on
//! their own); `file://` staging files are found on disk (`crate::export` recovery).

use std::sync::Arc;

use object_store::MultipartId;
use object_store::aws::{AmazonS3, AwsAuthorizer};
use object_store::client::HttpRequestBody;
use object_store::gcp::GoogleCloudStorage;
use object_store::multipart::MultipartStore;
use object_store::path::Path;

/// A store that can list and abort the multipart uploads in progress under a prefix.
#[async_trait::async_trait]
pub trait PendingUploads: Send + Sync {
    /// The uploads in progress whose key starts with `prefix` (a key prefix, `/` added by the
    /// caller where a directory is meant): their keys and ids.
    async fn list(&self, prefix: &Path) -> Result<Vec<(Path, MultipartId)>, UploadsError>;
    async fn abort(&self, key: &Path, id: &MultipartId) -> Result<(), UploadsError>;
}

#[derive(Debug, thiserror::Error)]
pub enum UploadsError {
    #[error("listing multipart uploads of {url}")]
    List {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("listing multipart uploads of {url}: status {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("aborting multipart upload {id} of {key}")]
    Abort {
        key: String,
        id: String,
        #[source]
        source: object_store::Error,
    },
}

/// [`PendingUploads`] of one S3 bucket.
pub struct S3Uploads {
    pub(super) store: Arc<AmazonS3>,
    /// `https://s3.<region>.amazonaws.com/<bucket>` or `<endpoint>/<bucket>` (path style), no
    /// `/` at the end: where ListMultipartUploads goes.
    pub(super) bucket_url: String,
    pub(super) region: String,
    pub(super) http: reqwest::Client,
}

/// How many pages of uploads one listing follows at most: a prefix with more than 100,000 open
/// uploads is not an export's.
const MAX_PAGES: usize = 100;

impl S3Uploads {
    async fn page(
        &self,
        prefix: &str,
        markers: Option<&(String, String)>,
    ) -> Result<String, UploadsError> {
        let mut url =
            url::Url::parse(&format!("{}/", self.bucket_url)).map_err(|e| UploadsError::List {
                url: self.bucket_url.clone(),
                source: Box::new(e),
            })?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("uploads", "");
            query.append_pair("prefix", prefix);
            if let Some((key, id)) = markers {
                query.append_pair("key-marker", key);
                query.append_pair("upload-id-marker", id);
            }
        }
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| UploadsError::List {
            url: self.bucket_url.clone(),
            source,
        };
        let credential = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(|e| failed(Box::new(e)))?;
        let mut request: object_store::client::HttpRequest = http::Request::builder()
            .method(http::Method::GET)
            .uri(url.as_str())
            .body(HttpRequestBody::empty())
            .map_err(|e| failed(Box::new(e)))?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| failed(Box::new(e)))?;
        let mut call = self.http.get(url.as_str());
        for (name, value) in request.headers() {
            call = call.header(name.as_str(), value.as_bytes());
        }
        let response = call.send().await.map_err(|e| failed(Box::new(e)))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| failed(Box::new(e)))?;
        if !status.is_success() {
            return Err(UploadsError::Status {
                url: self.bucket_url.clone(),
                status: status.as_u16(),
                body,
            });
        }
        Ok(body)
    }
}

#[async_trait::async_trait]
impl PendingUploads for S3Uploads {
    async fn list(&self, prefix: &Path) -> Result<Vec<(Path, MultipartId)>, UploadsError> {
        let mut found = Vec::new();
        let mut markers = None;
        for _ in 0..MAX_PAGES {
            let body = self.page(prefix.as_ref(), markers.as_ref()).await?;
            match read_page(&body, &mut found) {
                Some(next) => markers = Some(next),
                None => break,
            }
        }
        Ok(found)
    }

    async fn abort(&self, key: &Path, id: &MultipartId) -> Result<(), UploadsError> {
        self.store
            .abort_multipart(key, id)
            .await
            .map_err(|source| UploadsError::Abort {
                key: key.to_string(),
                id: id.clone(),
                source,
            })
    }
}

/// Adds the uploads of one ListMultipartUploads answer to `found`; the markers of the next page
/// when the answer is truncated.
fn read_page(body: &str, found: &mut Vec<(Path, MultipartId)>) -> Option<(String, String)> {
    for upload in elements(body, "Upload") {
        if let (Some(key), Some(id)) = (
            elements(upload, "Key").first(),
            elements(upload, "UploadId").first(),
        ) {
            let key = unescape(key);
            let key = Path::parse(&key).unwrap_or_else(|_| Path::from(key.as_str()));
            found.push((key, unescape(id)));
        }
    }
    let truncated = elements(body, "IsTruncated")
        .first()
        .is_some_and(|v| *v == "true");
    let key = elements(body, "NextKeyMarker").first().map(|s| unescape(s));
    let id = elements(body, "NextUploadIdMarker")
        .first()
        .map(|s| unescape(s));
    match (truncated, key, id) {
        (true, Some(key), Some(id)) => Some((key, id)),
        _ => None,
    }
}

/// [`PendingUploads`] of one GCS bucket, through the XML API.
pub struct GcsUploads {
    pub(super) store: Arc<GoogleCloudStorage>,
    /// `<base URL>/<bucket>`, no `/` at the end: where the listing goes (the store's own
    /// endpoint).
    pub(super) bucket_url: String,
    pub(super) http: reqwest::Client,
}

impl GcsUploads {
    async fn page(
        &self,
        prefix: &str,
        markers: Option<&(String, String)>,
    ) -> Result<String, UploadsError> {
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| UploadsError::List {
            url: self.bucket_url.clone(),
            source,
        };
        let mut url = url::Url::parse(&self.bucket_url).map_err(|e| failed(Box::new(e)))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("uploads", "");
            query.append_pair("prefix", prefix);
            if let Some((key, id)) = markers {
                query.append_pair("key-marker", key);
                query.append_pair("upload-id-marker", id);
            }
        }
        let credential = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(|e| failed(Box::new(e)))?;
        let mut call = self.http.get(url.as_str());
        // Empty when the key disables OAuth (emulators): then no header, as object_store does.
        if !credential.bearer.is_empty() {
            call = call.bearer_auth(&credential.bearer);
        }
        let response = call.send().await.map_err(|e| failed(Box::new(e)))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| failed(Box::new(e)))?;
        if !status.is_success() {
            return Err(UploadsError::Status {
                url: self.bucket_url.clone(),
                status: status.as_u16(),
                body,
            });
        }
        Ok(body)
    }
}

#[async_trait::async_trait]
impl PendingUploads for GcsUploads {
    async fn list(&self, prefix: &Path) -> Result<Vec<(Path, MultipartId)>, UploadsError> {
        let mut found = Vec::new();
        let mut markers = None;
        for _ in 0..MAX_PAGES {
            let body = self.page(prefix.as_ref(), markers.as_ref()).await?;
            match read_page(&body, &mut found) {
                Some(next) => markers = Some(next),
                None => break,
            }
        }
        Ok(found)
    }

    async fn abort(&self, key: &Path, id: &MultipartId) -> Result<(), UploadsError> {
        self.store
            .abort_multipart(key, id)
            .await
            .map_err(|source| UploadsError::Abort {
                key: key.to_string(),
                id: id.clone(),
                source,
            })
    }
}

/// The text of every `<tag>` element of `xml` (S3's list answers have no attributes on these
/// and no nesting of the same tag).
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v))
        .collect()
}

/// The five XML entities; S3 escapes nothing else in keys.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_answers_are_read_with_their_escapes() {
        let xml = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>\
            <Upload><Key>a/b&amp;c.json.gz</Key><UploadId>id-1</UploadId></Upload>\
            <Upload><Key>a/d</Key><UploadId>id-2</UploadId></Upload></ListMultipartUploadsResult>";
        let uploads: Vec<(String, String)> = elements(xml, "Upload")
            .into_iter()
            .map(|u| {
                (
                    unescape(elements(u, "Key")[0]),
                    unescape(elements(u, "UploadId")[0]),
                )
            })
            .collect();
        assert_eq!(
            uploads,
            [
                ("a/b&c.json.gz".to_string(), "id-1".to_string()),
                ("a/d".to_string(), "id-2".to_string())
            ]
        );
    }
}
