//! Who made a request and what it may do: the [`Principal`] with its [`Grant`]s, and
//! [`Denied`], the typed answer when it may not.
//!
//! The rules live here, the HTTP answer does not: `api::auth` renders each [`Denied`] as
//! Atlas does (401 with a Digest challenge, 403 `USER_UNAUTHORIZED`, 404 `GROUP_NOT_FOUND` /
//! `ORG_NOT_FOUND`), so that any front end gets the same decisions.

use std::fmt;

use serde::Serialize;

use super::roles::Role;

/// A role held by a key or service account: on its organization (`group_id: None`) or on one
/// project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    pub role: Role,
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    ApiKey { public_key: String },
    ServiceAccount { client_id: String },
}

/// An authenticated caller and what it may do. API handlers take it as an extractor (first,
/// before any body extractor, so that an unauthenticated request gets 401 and not a body
/// error); the extractor is `api::auth`'s.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The id of the API key or service account.
    pub id: String,
    pub kind: PrincipalKind,
    /// The organization the key or service account belongs to.
    pub org_id: String,
    pub grants: Vec<Grant>,
    /// Projects of `org_id`, loaded only when an organization role reaches into projects.
    org_projects: Vec<String>,
}

/// Why a request was not authenticated. Each reason has its own text for the client; all of
/// them answer with a new Digest challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No credentials, or credentials that do not check out: malformed, an unknown key, a
    /// wrong response, realm, opaque or uri, an unsupported qop or algorithm, a bad nonce
    /// count. One reason for all of them, so that the answer tells a guesser nothing; the
    /// debug log says which it was.
    Credentials,
    /// A bearer token that is unknown or expired.
    Token,
    /// Right Digest credentials on a nonce past its lifetime: the challenge says `stale=true`,
    /// so the client retries with the new nonce without asking for the password again.
    StaleNonce,
    /// A Digest nonce count already used: a replayed request.
    ReplayedNonce,
}

impl Refused {
    /// Whether the challenge should say `stale=true`.
    pub fn is_stale(self) -> bool {
        self == Refused::StaleNonce
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::Credentials => "no valid credentials",
            Refused::Token => "invalid or expired access token",
            Refused::StaleNonce => "digest nonce expired",
            Refused::ReplayedNonce => "digest nonce count already used",
        })
    }
}

/// A request that may not do what it asks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No, wrong or expired credentials. `challenge` is the `WWW-Authenticate` value to send
    /// back: it carries a fresh nonce, which only the [`AuthService`](super::AuthService)
    /// holding the deployment key can sign, so it is made when the request is refused.
    #[error("not authenticated: {reason}")]
    Unauthenticated { reason: Refused, challenge: String },
    /// The caller sees the project or organization but lacks `role` there.
    #[error("the {role} role is required")]
    Forbidden { role: Role },
    /// The caller holds no role in the project, the same answer whether it exists or not, so
    /// that a key of one project learns nothing about another.
    #[error("project {group_id} not found")]
    GroupNotFound { group_id: String },
    /// The caller does not belong to the organization.
    #[error("organization {org_id} not found")]
    OrgNotFound { org_id: String },
}

impl Principal {
    pub(super) fn new(
        id: String,
        kind: PrincipalKind,
        org_id: String,
        grants: Vec<Grant>,
        org_projects: Vec<String>,
    ) -> Self {
        Principal {
            id,
            kind,
            org_id,
            grants,
            org_projects,
        }
    }

    /// The project roles the caller holds on `group_id`, org roles that reach it included.
    pub fn group_roles(&self, group_id: &str) -> Vec<Role> {
        let mut roles: Vec<Role> = self
            .grants
            .iter()
            .filter(|g| g.group_id.as_deref() == Some(group_id))
            .map(|g| g.role)
            .collect();
        if self.org_projects.iter().any(|p| p == group_id) {
            roles.extend(
                self.grants
                    .iter()
                    .filter(|g| g.group_id.is_none())
                    .filter_map(|g| g.role.project_role_in_org()),
            );
        }
        roles
    }

    /// Whether the caller holds `role` (or a role that implies it) on `group_id`.
    pub fn has_group_role(&self, group_id: &str, role: Role) -> bool {
        self.group_roles(group_id).iter().any(|r| r.implies(role))
    }

    /// Ok when the caller holds `role` on the project. No role at all there (another
    /// project, or one that does not exist) → [`Denied::GroupNotFound`]; a weaker role →
    /// [`Denied::Forbidden`].
    pub fn require_group(&self, group_id: &str, role: Role) -> Result<(), Denied> {
        let roles = self.group_roles(group_id);
        if roles.is_empty() {
            return Err(Denied::GroupNotFound {
                group_id: group_id.to_string(),
            });
        }
        if roles.iter().any(|r| r.implies(role)) {
            Ok(())
        } else {
            Err(Denied::Forbidden { role })
        }
    }

    /// Ok when the caller holds the organization role `role` on `org_id`. Another
    /// organization → [`Denied::OrgNotFound`]; its own organization without the role (a
    /// project key, for instance) → [`Denied::Forbidden`].
    pub fn require_org(&self, org_id: &str, role: Role) -> Result<(), Denied> {
        if org_id != self.org_id {
            return Err(Denied::OrgNotFound {
                org_id: org_id.to_string(),
            });
        }
        let ok = self
            .grants
            .iter()
            .filter(|g| g.group_id.is_none())
            .any(|g| g.role.implies(role));
        if ok {
            Ok(())
        } else {
            Err(Denied::Forbidden { role })
        }
    }

    /// Reading the organization itself (`GET /orgs/{id}`, `GET /orgs`): every key of the
    /// organization is a member of it, project keys included — in Atlas a project's key belongs
    /// to its organization too — while organization routes that act (`require_org`) still need
    /// an organization role.
    pub fn require_org_member(&self, org_id: &str) -> Result<(), Denied> {
        if org_id != self.org_id {
            return Err(Denied::OrgNotFound {
                org_id: org_id.to_string(),
            });
        }
        if self.grants.is_empty() {
            return Err(Denied::Forbidden {
                role: Role::OrgMember,
            });
        }
        Ok(())
    }

    /// The projects the caller can see at all (for listings such as `GET /groups`).
    pub fn visible_group_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .grants
            .iter()
            .filter_map(|g| g.group_id.clone())
            .collect();
        if self
            .grants
            .iter()
            .any(|g| g.group_id.is_none() && g.role.project_role_in_org().is_some())
        {
            ids.extend(self.org_projects.iter().cloned());
        }
        ids.sort();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(grants: Vec<Grant>, org_projects: &[&str]) -> Principal {
        Principal::new(
            "k".into(),
            PrincipalKind::ApiKey {
                public_key: "abcdefgh".into(),
            },
            "org".into(),
            grants,
            org_projects.iter().map(|s| s.to_string()).collect(),
        )
    }

    fn org_grant(role: Role) -> Grant {
        Grant {
            group_id: None,
            role,
        }
    }

    fn forbidden(role: Role) -> Denied {
        Denied::Forbidden { role }
    }

    fn group_not_found(group_id: &str) -> Denied {
        Denied::GroupNotFound {
            group_id: group_id.into(),
        }
    }

    // What each `Denied` looks like over HTTP (403, 404 GROUP_NOT_FOUND …) is checked in
    // `api::auth`.
    #[test]
    fn org_read_only_reads_every_project_of_its_org_and_writes_none() {
        let p = principal(vec![org_grant(Role::OrgReadOnly)], &["p1", "p2"]);
        assert!(p.require_group("p1", Role::GroupReadOnly).is_ok());
        assert!(p.require_group("p2", Role::GroupReadOnly).is_ok());
        assert_eq!(
            p.require_group("p1", Role::GroupBackupManager),
            Err(forbidden(Role::GroupBackupManager))
        );
        assert_eq!(
            p.require_group("p3", Role::GroupReadOnly),
            Err(group_not_found("p3"))
        );
        assert_eq!(p.visible_group_ids(), ["p1", "p2"]);
        assert!(p.require_org("org", Role::OrgMember).is_ok());
        assert_eq!(
            p.require_org("org", Role::OrgOwner),
            Err(forbidden(Role::OrgOwner))
        );
        assert_eq!(
            p.require_org("other", Role::OrgMember),
            Err(Denied::OrgNotFound {
                org_id: "other".into()
            })
        );
    }

    #[test]
    fn org_member_sees_no_project_and_project_roles_stay_in_their_project() {
        let member = principal(vec![org_grant(Role::OrgMember)], &["p1"]);
        assert_eq!(
            member.require_group("p1", Role::GroupReadOnly),
            Err(group_not_found("p1"))
        );
        assert!(member.visible_group_ids().is_empty());
        let operator = principal(
            vec![Grant {
                group_id: Some("p1".into()),
                role: Role::GroupBackupExportOperator,
            }],
            &[],
        );
        assert!(
            operator
                .require_group("p1", Role::GroupBackupExportOperator)
                .is_ok()
        );
        assert!(operator.require_group("p1", Role::GroupReadOnly).is_ok());
        assert_eq!(
            operator.require_group("p1", Role::GroupBackupManager),
            Err(forbidden(Role::GroupBackupManager))
        );
        assert_eq!(
            operator.require_group("p2", Role::GroupReadOnly),
            Err(group_not_found("p2"))
        );
        // A project key has no organization role, but is a member of its organization.
        assert_eq!(
            operator.require_org("org", Role::OrgMember),
            Err(forbidden(Role::OrgMember))
        );
        assert!(operator.require_org_member("org").is_ok());
        assert!(matches!(
            operator.require_org_member("other"),
            Err(Denied::OrgNotFound { .. })
        ));
        assert_eq!(operator.visible_group_ids(), ["p1"]);
    }
}
