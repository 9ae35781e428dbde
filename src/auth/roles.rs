//! Atlas roles and what each one implies.
//!
//! Names are Atlas's API role names. The spec's `x-rolesRequirements` ask for *Project Read
//! Only* (`GROUP_READ_ONLY`), *Project Backup Manager* (`GROUP_BACKUP_MANAGER`), *Project Backup
//! Export Operator* and *Project Backup Creator* (Atlas publishes no API name for these two: we
//! use `GROUP_BACKUP_EXPORT_OPERATOR` and `GROUP_BACKUP_CREATOR`), *Project Owner*
//! (`GROUP_OWNER`) and *Organization Owner* (`ORG_OWNER`).
//!
//! Implications, as Atlas documents them:
//! - `GROUP_OWNER` ⇒ every project role;
//! - `GROUP_BACKUP_MANAGER` ⇒ export operator, backup creator, read only;
//! - `GROUP_BACKUP_EXPORT_OPERATOR`, `GROUP_BACKUP_CREATOR` ⇒ read only;
//! - `ORG_OWNER` ⇒ every organization role, and `GROUP_OWNER` in every project of the org;
//! - `ORG_READ_ONLY` ⇒ `ORG_MEMBER`, and `GROUP_READ_ONLY` in every project of the org;
//! - `ORG_GROUP_CREATOR` ⇒ `ORG_MEMBER`; `ORG_MEMBER` alone grants nothing in projects.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    OrgOwner,
    OrgGroupCreator,
    OrgReadOnly,
    OrgMember,
    GroupOwner,
    GroupBackupManager,
    GroupBackupExportOperator,
    GroupBackupCreator,
    GroupReadOnly,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected one of {ROLE_NAMES})")]
pub struct UnknownRole(pub String);

const ROLE_NAMES: &str = "ORG_OWNER, ORG_GROUP_CREATOR, ORG_READ_ONLY, ORG_MEMBER, GROUP_OWNER, \
     GROUP_BACKUP_MANAGER, GROUP_BACKUP_EXPORT_OPERATOR, GROUP_BACKUP_CREATOR, GROUP_READ_ONLY";

impl Role {
    pub const ALL: [Role; 9] = [
        Role::OrgOwner,
        Role::OrgGroupCreator,
        Role::OrgReadOnly,
        Role::OrgMember,
        Role::GroupOwner,
        Role::GroupBackupManager,
        Role::GroupBackupExportOperator,
        Role::GroupBackupCreator,
        Role::GroupReadOnly,
    ];

    /// The Atlas API name (`GROUP_READ_ONLY`), as stored and as given to the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::OrgOwner => "ORG_OWNER",
            Role::OrgGroupCreator => "ORG_GROUP_CREATOR",
            Role::OrgReadOnly => "ORG_READ_ONLY",
            Role::OrgMember => "ORG_MEMBER",
            Role::GroupOwner => "GROUP_OWNER",
            Role::GroupBackupManager => "GROUP_BACKUP_MANAGER",
            Role::GroupBackupExportOperator => "GROUP_BACKUP_EXPORT_OPERATOR",
            Role::GroupBackupCreator => "GROUP_BACKUP_CREATOR",
            Role::GroupReadOnly => "GROUP_READ_ONLY",
        }
    }

    /// The name the Atlas documentation and `x-rolesRequirements` use.
    pub fn display_name(self) -> &'static str {
        match self {
            Role::OrgOwner => "Organization Owner",
            Role::OrgGroupCreator => "Organization Project Creator",
            Role::OrgReadOnly => "Organization Read Only",
            Role::OrgMember => "Organization Member",
            Role::GroupOwner => "Project Owner",
            Role::GroupBackupManager => "Project Backup Manager",
            Role::GroupBackupExportOperator => "Project Backup Export Operator",
            Role::GroupBackupCreator => "Project Backup Creator",
            Role::GroupReadOnly => "Project Read Only",
        }
    }

    /// Roles held at the organization level (the others are project roles).
    pub fn is_org_role(self) -> bool {
        matches!(
            self,
            Role::OrgOwner | Role::OrgGroupCreator | Role::OrgReadOnly | Role::OrgMember
        )
    }

    /// Does holding `self` (at the same level) grant `required`?
    pub fn implies(self, required: Role) -> bool {
        if self == required {
            return true;
        }
        match self {
            Role::OrgOwner => required.is_org_role(),
            Role::OrgGroupCreator | Role::OrgReadOnly => required == Role::OrgMember,
            Role::OrgMember => false,
            Role::GroupOwner => !required.is_org_role(),
            Role::GroupBackupManager => matches!(
                required,
                Role::GroupBackupExportOperator | Role::GroupBackupCreator | Role::GroupReadOnly
            ),
            Role::GroupBackupExportOperator | Role::GroupBackupCreator => {
                required == Role::GroupReadOnly
            }
            Role::GroupReadOnly => false,
        }
    }

    /// The project role an organization role confers on every project of that organization.
    pub fn project_role_in_org(self) -> Option<Role> {
        match self {
            Role::OrgOwner => Some(Role::GroupOwner),
            Role::OrgReadOnly => Some(Role::GroupReadOnly),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    /// Accepts the API name in any case, and the documentation name ("Project Read Only").
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Role::ALL
            .into_iter()
            .find(|r| {
                r.as_str().eq_ignore_ascii_case(t) || r.display_name().eq_ignore_ascii_case(t)
            })
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(r.display_name().parse::<Role>().unwrap(), r);
        }
        assert_eq!(
            "group_read_only".parse::<Role>().unwrap(),
            Role::GroupReadOnly
        );
        assert!("GROUP_ADMIN".parse::<Role>().is_err());
    }

    #[test]
    fn implication_order_matches_atlas() {
        use Role::*;
        assert!(GroupOwner.implies(GroupBackupManager));
        assert!(GroupOwner.implies(GroupReadOnly));
        assert!(!GroupOwner.implies(OrgMember));
        assert!(GroupBackupManager.implies(GroupBackupExportOperator));
        assert!(GroupBackupManager.implies(GroupBackupCreator));
        assert!(GroupBackupManager.implies(GroupReadOnly));
        assert!(!GroupBackupManager.implies(GroupOwner));
        assert!(GroupBackupExportOperator.implies(GroupReadOnly));
        assert!(!GroupBackupExportOperator.implies(GroupBackupManager));
        assert!(!GroupBackupCreator.implies(GroupBackupExportOperator));
        assert!(!GroupReadOnly.implies(GroupBackupCreator));
        assert!(OrgOwner.implies(OrgReadOnly));
        assert!(
            !OrgOwner.implies(GroupReadOnly),
            "org roles reach projects via project_role_in_org"
        );
        assert_eq!(OrgOwner.project_role_in_org(), Some(GroupOwner));
        assert_eq!(OrgReadOnly.project_role_in_org(), Some(GroupReadOnly));
        assert_eq!(OrgMember.project_role_in_org(), None);
        assert!(!OrgMember.implies(OrgReadOnly));
    }
}
