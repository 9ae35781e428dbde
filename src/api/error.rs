//! The one API error type: every failure the HTTP layer reports becomes Atlas's error body
//! `{detail, error, errorCode, parameters, reason, badRequestDetail?}` with
//! `Content-Type: application/json` and an `X-Error-Code` header, as the recorded Atlas
//! responses show. 5xx details are logged, never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One invalid field of a request body, with its JSON path (`export.frequencyType`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct BadRequestDetail {
    pub fields: Vec<FieldViolation>,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_code: String,
    pub detail: String,
    pub parameters: Vec<serde_json::Value>,
    pub bad_request_detail: Option<BadRequestDetail>,
    /// Extra response headers (`WWW-Authenticate` on a 401, for instance).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_code: &str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            error_code: error_code.to_string(),
            detail: detail.into(),
            parameters: Vec::new(),
            bad_request_detail: None,
            headers: Vec::new(),
        }
    }

    pub fn with_parameters(
        mut self,
        parameters: impl IntoIterator<Item = impl Into<serde_json::Value>>,
    ) -> Self {
        self.parameters = parameters.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn with_field(mut self, field: impl Into<String>, description: impl Into<String>) -> Self {
        self.bad_request_detail
            .get_or_insert_with(|| BadRequestDetail { fields: Vec::new() })
            .fields
            .push(FieldViolation {
                field: field.into(),
                description: description.into(),
            });
        self
    }

    pub fn bad_request(error_code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error_code, detail)
    }

    pub fn not_found(error_code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error_code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "USER_UNAUTHORIZED", detail)
    }

    /// An unexpected failure: the cause is logged here and the client only learns that the
    /// server failed, so no internal detail (paths, SQL, credentials) ever leaks.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNEXPECTED_ERROR",
            "Unexpected error.",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.error_code,
            self.detail
        )
    }
}

impl std::error::Error for ApiError {}

/// Atlas's error body, as every error answer carries it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApiError)]
pub struct ErrorBody<'a> {
    /// What went wrong, for a person.
    detail: &'a str,
    /// The HTTP status.
    error: u16,
    /// What went wrong, for a program (`EXPORT_BUCKET_PERMISSION_CHECK_FAILED`).
    error_code: &'a str,
    /// The values `detail` names.
    #[schema(value_type = Vec<Value>)]
    parameters: &'a [serde_json::Value],
    /// The status's reason phrase.
    reason: &'a str,
    /// The invalid fields of a request body or query, each with its JSON path.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    bad_request_detail: Option<&'a BadRequestDetail>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            detail: &self.detail,
            error: self.status.as_u16(),
            error_code: &self.error_code,
            parameters: &self.parameters,
            reason: self.status.canonical_reason().unwrap_or(""),
            bad_request_detail: self.bad_request_detail.as_ref(),
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(code) = HeaderValue::from_str(&self.error_code) {
            headers.insert("x-error-code", code);
        }
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

// ---------------------------------------------------------------------------------------------
// The service errors as Atlas errors: the one place where a rule's refusal gets its status,
// `errorCode`, message and `parameters` (PRODUCT.md §4, §5). Unexpected failures (the store,
// a corrupt record) are logged with their whole chain and answered 500 without detail.

use crate::service::Invalid;
use crate::service::access_roles::AccessRoleError;
use crate::service::buckets::BucketError;
use crate::service::export_jobs::ExportJobError;
use crate::service::schedules::ScheduleError;
use crate::service::snapshots::SnapshotError;
use crate::store::StoreError;

use crate::errors::chain as error_chain;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(error_chain(&e))
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        match e {
            Invalid::Attribute { field, description } => ApiError::bad_request(
                "INVALID_ATTRIBUTE",
                format!("Invalid attribute {field} specified: {description}."),
            )
            .with_parameters([field.clone()])
            .with_field(field, description),
            Invalid::Enum {
                field,
                value,
                allowed,
            } => {
                let description = format!("expected one of {allowed}");
                ApiError::bad_request(
                    "INVALID_ENUM_VALUE",
                    format!(
                        "An invalid enumeration value {value} was specified for {field}: {description}."
                    ),
                )
                .with_parameters([value, field.clone()])
                .with_field(field, description)
            }
            Invalid::Id { field, value } => ApiError::bad_request(
                "INVALID_PATH_PARAMETER",
                format!("Invalid {field} {value}: expected a 24-hexadecimal character string."),
            )
            .with_parameters([field.clone(), value])
            .with_field(field, "expected a 24-hexadecimal character string"),
            Invalid::Missing { field, why } => ApiError::bad_request(
                "MISSING_ATTRIBUTE",
                format!("The required attribute {field} was not specified: {why}."),
            )
            .with_parameters([field.clone()])
            .with_field(field, format!("required {why}")),
        }
    }
}

fn bucket_not_found(bucket_id: String) -> ApiError {
    ApiError::not_found(
        "EXPORT_BUCKET_NOT_FOUND",
        format!("No export bucket with ID {bucket_id} exists."),
    )
    .with_parameters([bucket_id])
}

fn snapshot_not_found(snapshot_id: String, cluster_name: String) -> ApiError {
    ApiError::not_found(
        "SNAPSHOT_NOT_FOUND",
        format!("No snapshot with ID {snapshot_id} exists in cluster {cluster_name}."),
    )
    .with_parameters([snapshot_id, cluster_name])
}

/// A stored access role the operator's rules no longer let the project use (its key or
/// endpoint was accepted before a rule refused it, or the environment grant was withdrawn): the
/// client's to fix, so 400 with the rule, never a 500. `None` for the server's own failures.
fn role_refusal(e: &AccessRoleError) -> Option<ApiError> {
    match e {
        AccessRoleError::EnvironmentNotAllowed { role_id }
        | AccessRoleError::EndpointNotAllowed { role_id }
        | AccessRoleError::KeyNotAllowed { role_id, .. } => Some(
            ApiError::bad_request("ACCESS_ROLE_NOT_ALLOWED", format!("{}.", error_chain(e)))
                .with_parameters([role_id.clone()]),
        ),
        _ => None,
    }
}

impl From<crate::service::catalog::CatalogError> for ApiError {
    fn from(e: crate::service::catalog::CatalogError) -> Self {
        use crate::service::catalog::CatalogError;
        match e {
            CatalogError::Store(e) => e.into(),
            CatalogError::Schedule(e) => e.into(),
            // Listing a location is the watcher's business; a GET never reaches these.
            other => ApiError::internal(&other),
        }
    }
}

impl From<AccessRoleError> for ApiError {
    fn from(e: AccessRoleError) -> Self {
        match e {
            AccessRoleError::Invalid(invalid) => invalid.into(),
            other => {
                role_refusal(&other).unwrap_or_else(|| ApiError::internal(error_chain(&other)))
            }
        }
    }
}

impl From<BucketError> for ApiError {
    fn from(e: BucketError) -> Self {
        match e {
            BucketError::Invalid(invalid) => invalid.into(),
            BucketError::RoleNotFound { role_id, group_id } => ApiError::not_found(
                "CLOUD_PROVIDER_ACCESS_ROLE_NOT_FOUND",
                format!("No access role with ID {role_id} exists in group {group_id}."),
            )
            .with_parameters([role_id, group_id]),
            BucketError::NotFound { bucket_id } => bucket_not_found(bucket_id),
            BucketError::PermissionCheckFailed {
                bucket_name,
                source,
            } => ApiError::bad_request(
                "EXPORT_BUCKET_PERMISSION_CHECK_FAILED",
                format!(
                    "Cannot write {} to bucket {bucket_name}: {}.",
                    crate::export::PERMISSION_CHECK_FILE,
                    error_chain(&source)
                ),
            )
            .with_parameters([bucket_name]),
            BucketError::InUse { bucket_id } => ApiError::bad_request(
                "EXPORT_BUCKET_DELETE_FAILED",
                format!(
                    "Export bucket {bucket_id} is used by an active export job or an auto-export policy."
                ),
            )
            .with_parameters([bucket_id]),
            BucketError::Store(e) => e.into(),
        }
    }
}

impl From<ExportJobError> for ApiError {
    fn from(e: ExportJobError) -> Self {
        match e {
            ExportJobError::Invalid(invalid) => invalid.into(),
            ExportJobError::SnapshotNotFound {
                snapshot_id,
                cluster_name,
            } => snapshot_not_found(snapshot_id, cluster_name),
            ExportJobError::BucketNotFound { bucket_id } => bucket_not_found(bucket_id),
            ExportJobError::FallbackSnapshot { snapshot_id } => ApiError::bad_request(
                "CANNOT_EXPORT_FALLBACK_SNAPSHOT",
                format!("Snapshot {snapshot_id} is a fallback snapshot and cannot be exported."),
            )
            .with_parameters([snapshot_id]),
            ExportJobError::IncompleteSnapshot {
                snapshot_id,
                status,
            } => ApiError::bad_request(
                "CANNOT_EXPORT_INCOMPLETE_SNAPSHOT",
                format!("Snapshot {snapshot_id} is {status}, not completed."),
            )
            .with_parameters([snapshot_id]),
            ExportJobError::AlreadyActive { snapshot_id } => ApiError::new(
                StatusCode::CONFLICT,
                "SNAPSHOT_EXPORT_ALREADY_ACTIVE",
                format!(
                    "Snapshot {snapshot_id} already has an export job that is queued or in progress."
                ),
            )
            .with_parameters([snapshot_id]),
            ExportJobError::JobNotFound { job_id } => ApiError::not_found(
                "EXPORT_JOB_NOT_FOUND",
                format!("No export job with ID {job_id} exists."),
            )
            .with_parameters([job_id]),
            ExportJobError::Schedule(e) => e.into(),
            ExportJobError::Store(e) => e.into(),
        }
    }
}

impl From<SnapshotError> for ApiError {
    fn from(e: SnapshotError) -> Self {
        match e {
            SnapshotError::Invalid(invalid) => invalid.into(),
            SnapshotError::SourceNotAllowed { field } => ApiError::bad_request(
                "SNAPSHOT_SOURCE_NOT_ALLOWED",
                "The snapshot source is not allowed for this project.",
            )
            .with_parameters([field.clone()])
            .with_field(field, "not a source this project may read"),
            SnapshotError::PartUrl { field, source } => {
                Invalid::attribute(field, source.to_string()).into()
            }
            SnapshotError::SourceUnreadable {
                replica_set,
                url,
                field,
                source,
            } => {
                let cause = source.to_string();
                ApiError::bad_request(
                    "SNAPSHOT_SOURCE_UNREADABLE",
                    format!("Cannot read the snapshot part of replica set {replica_set}: {cause}."),
                )
                .with_parameters([replica_set, url])
                .with_field(field, cause)
            }
            SnapshotError::NotFound {
                snapshot_id,
                cluster_name,
            } => snapshot_not_found(snapshot_id, cluster_name),
            SnapshotError::DoNotDelete { snapshot_id } => ApiError::bad_request(
                "SNAPSHOT_DO_NOT_DELETE",
                format!("Snapshot {snapshot_id} is protected by doNotDelete."),
            )
            .with_parameters([snapshot_id]),
            SnapshotError::Schedule(e) => e.into(),
            SnapshotError::PartRole { field, source } => match role_refusal(&source) {
                Some(refusal) => refusal.with_field(field, error_chain(&source)),
                None => ApiError::internal(error_chain(&SnapshotError::PartRole { field, source })),
            },
            other @ (SnapshotError::Task(_) | SnapshotError::Store(_)) => {
                ApiError::internal(error_chain(&other))
            }
        }
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Invalid(invalid) => invalid.into(),
            ScheduleError::BucketNotFound { bucket_id, field } => bucket_not_found(bucket_id)
                .with_field(field, "no export bucket with this id in the project"),
            other => ApiError::internal(error_chain(&other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored role that a rule refuses at use is the project's to fix: 400 naming the role,
    /// for the role itself and for a snapshot part read with it; the server's own failures
    /// (a role that cannot be unsealed) stay 500 without their cause.
    #[test]
    fn a_role_the_rules_refuse_at_use_is_a_400_not_a_500() {
        let refused = || AccessRoleError::KeyNotAllowed {
            role_id: "r1".into(),
            why: "must be the service-account key's JSON object",
        };
        let direct = ApiError::from(refused());
        assert_eq!(direct.status, StatusCode::BAD_REQUEST);
        assert_eq!(direct.error_code, "ACCESS_ROLE_NOT_ALLOWED");
        assert!(direct.detail.contains("r1"), "{}", direct.detail);
        let part = ApiError::from(SnapshotError::PartRole {
            field: "parts[0].roleId".into(),
            source: refused(),
        });
        assert_eq!(part.status, StatusCode::BAD_REQUEST);
        assert_eq!(part.error_code, "ACCESS_ROLE_NOT_ALLOWED");
        assert!(part.bad_request_detail.is_some());
        let own = ApiError::from(AccessRoleError::EnvironmentNotAllowed {
            role_id: "r2".into(),
        });
        assert_eq!(own.status, StatusCode::BAD_REQUEST);
        let corrupt = ApiError::from(AccessRoleError::Corrupt {
            role_id: "r3".into(),
            source: serde_json::from_str::<serde_json::Value>("{").unwrap_err(),
        });
        assert_eq!(corrupt.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
