//! The HTTP side of authentication: the [`Principal`] extractor every handler takes first, and
//! the one place where `auth`'s decisions become Atlas's answers.
//!
//! `crate::auth` decides (who is calling, whether a role suffices) and knows nothing of HTTP;
//! this file reads the request for it (method, request target, `Authorization`) and renders
//! its typed errors:
//! - [`Denied::Unauthenticated`] → 401 `UNAUTHORIZED` with the Digest challenge in
//!   `WWW-Authenticate` (`stale=true` when only the nonce was too old);
//! - [`Denied::Forbidden`] → 403 `USER_UNAUTHORIZED`;
//! - [`Denied::GroupNotFound`] / [`Denied::OrgNotFound`] → 404 `GROUP_NOT_FOUND` /
//!   `ORG_NOT_FOUND` ([`group_not_found`], [`org_not_found`]), the same answer as for a
//!   project or organization that does not exist;
//! - the other [`AuthError`]s (key creation, OAuth clients, failures) as below.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};

use super::error::ApiError;
use crate::auth::{AuthError, AuthService, Denied, Principal, Refused};

/// Answer for a project the caller has no role in, the same whether it exists or not, so that
/// a key of one project learns nothing about another.
pub fn group_not_found(group_id: &str) -> ApiError {
    ApiError::not_found(
        "GROUP_NOT_FOUND",
        format!("No group with ID {group_id} exists."),
    )
    .with_parameters([group_id.to_string()])
}

/// Answer for an organization the caller does not belong to.
pub fn org_not_found(org_id: &str) -> ApiError {
    ApiError::not_found(
        "ORG_NOT_FOUND",
        format!("No organization with ID {org_id} exists."),
    )
    .with_parameters([org_id.to_string()])
}

/// The `detail` of a 401, as Atlas words it.
fn unauthenticated_detail(reason: Refused) -> &'static str {
    match reason {
        Refused::Credentials => "You are not authorized for this resource.",
        Refused::Token => "Invalid or expired access token.",
        Refused::StaleNonce => "The digest nonce has expired.",
        Refused::ReplayedNonce => "The digest nonce count was already used.",
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Unauthenticated { reason, challenge } => {
                let error = ApiError::unauthorized(unauthenticated_detail(reason));
                match HeaderValue::from_str(&challenge) {
                    Ok(value) => error.with_header(header::WWW_AUTHENTICATE, value),
                    // The challenge is built from base64url, hex and fixed text, so this
                    // does not happen; a 401 without it still refuses the request.
                    Err(_) => error,
                }
            }
            Denied::Forbidden { role } => ApiError::forbidden(format!(
                "Current user is not authorized to perform this action: the {} role is required.",
                role.display_name()
            )),
            Denied::GroupNotFound { group_id } => group_not_found(&group_id),
            Denied::OrgNotFound { org_id } => org_not_found(&org_id),
        }
    }
}

/// Maps authentication and administrative failures (for handlers that create keys) to API
/// errors; store and key failures are logged and hidden behind a 500.
impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Denied(denied) => denied.into(),
            AuthError::OrgNotFound(id) => org_not_found(&id),
            AuthError::ProjectNotFound(id) => group_not_found(&id),
            AuthError::InvalidClient => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Invalid client credentials.",
            ),
            e @ (AuthError::ProjectNotInOrg { .. }
            | AuthError::RoleLevel { .. }
            | AuthError::NoRole) => ApiError::bad_request("INVALID_ROLE", e.to_string()),
            AuthError::Store(e) => e.into(),
            other => ApiError::internal(crate::errors::chain(&other)),
        }
    }
}

/// The request target as the client sent it in the request line (path and query), which a
/// Digest `uri` must name.
fn request_target(parts: &Parts) -> &str {
    parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
}

impl<S> FromRequestParts<S> for Principal
where
    AuthService: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Authenticate once per request: a second Digest check would see its own nonce count
        // as a replay.
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let auth = AuthService::from_ref(state);
        // A header that is not visible ASCII counts as no credentials, like a missing one.
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = auth
            .authenticate(parts.method.as_str(), request_target(parts), authorization)
            .await?;
        // Behind the edge (`api::app`), each authenticated request takes from its principal's
        // bucket: 429 when it is empty.
        if let Some(gate) = parts.extensions.get::<super::edge::RateGate>() {
            gate.admit(&principal)?;
        }
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn header<'a>(e: &'a ApiError, name: &header::HeaderName) -> Option<&'a str> {
        e.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    #[test]
    fn forbidden_and_not_found_answer_as_atlas() {
        let e = ApiError::from(Denied::Forbidden {
            role: Role::GroupBackupManager,
        });
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert_eq!(e.error_code, "USER_UNAUTHORIZED");
        assert_eq!(
            e.detail,
            "Current user is not authorized to perform this action: the Project Backup Manager \
             role is required."
        );
        let e = ApiError::from(Denied::GroupNotFound {
            group_id: "p3".into(),
        });
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.error_code, "GROUP_NOT_FOUND");
        assert_eq!(e.detail, "No group with ID p3 exists.");
        assert_eq!(e.parameters, [serde_json::json!("p3")]);
        let e = ApiError::from(Denied::OrgNotFound {
            org_id: "other".into(),
        });
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.error_code, "ORG_NOT_FOUND");
        assert_eq!(e.detail, "No organization with ID other exists.");
        assert_eq!(e.parameters, [serde_json::json!("other")]);
    }

    #[test]
    fn unauthenticated_answers_401_with_the_challenge() {
        let e = ApiError::from(AuthError::Denied(Denied::Unauthenticated {
            reason: Refused::StaleNonce,
            challenge: "Digest realm=\"MMS Public API\", stale=true".into(),
        }));
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert_eq!(e.error_code, "UNAUTHORIZED");
        assert_eq!(e.detail, "The digest nonce has expired.");
        assert_eq!(
            header(&e, &header::WWW_AUTHENTICATE),
            Some("Digest realm=\"MMS Public API\", stale=true")
        );
    }
}
