//! The closed value sets of the domain (PRODUCT.md §1), as enums rather than strings: a cloud
//! provider, a snapshot's status, type and frequency. Each has exactly one spelling — the one
//! Atlas uses on the wire, which is also what the store keeps in its text columns — so that
//! `as_str`, `parse`, `Display` and serde always agree.

use serde::{Deserialize, Serialize};

/// Declares a string enum: variants with their wire spelling, `as_str`, `parse`, `ALL`,
/// `Display` and serde through the same spelling.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire (and stored) spelling.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value spelled exactly `text`, if any.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Every spelling, for "expected one of …" messages.
            pub fn spellings() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }
        }

        // By hand, not derived: the derive does not see `rename` through this macro's
        // literal and would document the Rust variant names instead of the wire spellings.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// Where an export bucket (or an access role's store) lives.
    CloudProvider {
        Aws = "AWS",
        Azure = "AZURE",
        Gcp = "GCP",
        /// The snapex extension: a directory under the operator's bucket root.
        Filesystem = "FILESYSTEM",
    }
}

string_enum! {
    /// A snapshot's `status`.
    SnapshotStatus {
        Queued = "queued",
        InProgress = "inProgress",
        Completed = "completed",
        Failed = "failed",
    }
}

string_enum! {
    /// A snapshot's `snapshotType`.
    SnapshotType {
        OnDemand = "onDemand",
        Scheduled = "scheduled",
        Fallback = "fallback",
    }
}

string_enum! {
    /// A snapshot's `frequencyType`, a policy item's, and the auto-export policy's. Declared
    /// most frequent first: the order of the retention rule and of rendered policy items.
    FrequencyType {
        OnDemand = "ondemand",
        Hourly = "hourly",
        Daily = "daily",
        Weekly = "weekly",
        Monthly = "monthly",
        Yearly = "yearly",
    }
}

string_enum! {
    /// A policy item's `retentionUnit` as stored (lowercase, as Atlas returns it).
    RetentionUnit {
        Days = "days",
        Weeks = "weeks",
        Months = "months",
        Years = "years",
    }
}

impl RetentionUnit {
    /// The unit spelled `text` in any case (the snapshot PATCH accepts `DAYS` as Atlas does).
    pub fn parse_any_case(text: &str) -> Option<RetentionUnit> {
        RetentionUnit::parse(&text.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_spelling_and_serde() {
        for p in CloudProvider::ALL {
            assert_eq!(CloudProvider::parse(p.as_str()), Some(*p));
            assert_eq!(
                serde_json::to_value(p).unwrap(),
                serde_json::json!(p.as_str())
            );
        }
        for f in FrequencyType::ALL {
            let back: FrequencyType =
                serde_json::from_value(serde_json::json!(f.as_str())).unwrap();
            assert_eq!(back, *f);
        }
        assert_eq!(
            SnapshotType::parse("onDemand"),
            Some(SnapshotType::OnDemand)
        );
        assert_eq!(SnapshotStatus::parse("Completed"), None);
        assert_eq!(
            RetentionUnit::parse_any_case("WEEKS"),
            Some(RetentionUnit::Weeks)
        );
        assert_eq!(RetentionUnit::parse("WEEKS"), None);
    }
}
