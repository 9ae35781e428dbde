//! Namespace filters: which collections of a snapshot an export writes, in mongorestore's
//! `--nsInclude`/`--nsExclude` wildcard syntax.
//!
//! A pattern is `<database>.<collection>`, matched against the whole namespace `db.coll`:
//! - `*` matches any run of characters, none included, dots included (as in mongorestore, where
//!   `*` becomes `.*`): `db.*` is every collection of `db`, `*.users` every `users` collection,
//!   and also `db.archive.users`, since a collection name may itself hold dots;
//! - `\*` is a literal `*` and `\\` a literal `\`; every other character stands for itself;
//! - the database part is what comes before the first `.` (a database name cannot hold a dot),
//!   so `db.a.b` names the collection `a.b` of `db`.
//!
//! Include, then exclude: with no include pattern every collection is included; a collection
//! is exported when it matches an include pattern (or there is none) and no exclude pattern.
//! A time-series collection is matched by its own name, never by `system.buckets.<name>`.
//!
//! The filter is applied before any document is read ([`NamespaceFilter::apply`]): a
//! collection left out becomes [`CollectionKind::Excluded`], which no reader visits — a
//! directory dump never opens its file, a PBM backup never reads its namespace file, and an
//! archive (one stream, interleaved) passes over its blocks without decoding them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::snapshot::{CollectionKind, SnapshotSource};

/// At most this many patterns per list: a filter is a handful of names, not a catalog.
pub const MAX_PATTERNS: usize = 100;
/// The longest pattern accepted (a namespace is at most 255 bytes; escapes and wildcards
/// leave room).
pub const MAX_PATTERN_BYTES: usize = 1024;

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("namespace pattern {pattern:?}: {problem}")]
pub struct PatternError {
    pub pattern: String,
    pub problem: &'static str,
}

/// One parsed wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    /// The pattern as literal runs separated by `*` (escapes resolved): `a*b*` is
    /// `["a", "b", ""]`.
    pieces: Vec<String>,
}

#[derive(Clone, Copy)]
enum Token {
    Char(char),
    Star,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let error = |problem| PatternError {
            pattern: text.to_string(),
            problem,
        };
        if text.is_empty() {
            return Err(error("is empty"));
        }
        if text.len() > MAX_PATTERN_BYTES {
            return Err(error("is longer than 1024 bytes"));
        }
        let mut tokens = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped @ ('*' | '\\')) => tokens.push(Token::Char(escaped)),
                    Some(_) => return Err(error("has a \\ that escapes neither * nor \\")),
                    None => return Err(error("ends with a lone \\")),
                },
                '*' => tokens.push(Token::Star),
                c if c.is_control() => return Err(error("has a control character")),
                c => tokens.push(Token::Char(c)),
            }
        }
        // The database part: up to the first literal dot.
        let Some(dot) = tokens.iter().position(|t| matches!(t, Token::Char('.'))) else {
            return Err(error(
                "is not <database>.<collection> (use db.* for a whole database)",
            ));
        };
        if dot == 0 {
            return Err(error("has an empty database part"));
        }
        if dot + 1 == tokens.len() {
            return Err(error("has an empty collection part"));
        }
        if tokens[..dot]
            .iter()
            .any(|t| matches!(t, Token::Char('/' | '\\' | ' ' | '"' | '$')))
        {
            return Err(error(
                "has a character no database name holds (/ \\ space \" $)",
            ));
        }
        let mut pieces = vec![String::new()];
        for token in tokens {
            match token {
                Token::Star => pieces.push(String::new()),
                Token::Char(c) => {
                    if let Some(last) = pieces.last_mut() {
                        last.push(c);
                    }
                }
            }
        }
        Ok(Pattern {
            text: text.to_string(),
            pieces,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the namespace `db.coll` matches the whole pattern.
    pub fn matches(&self, namespace: &str) -> bool {
        let Some((first, rest)) = self.pieces.split_first() else {
            return false;
        };
        let Some(mut remaining) = namespace.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            // No `*`: the literal must be the whole namespace.
            return remaining.is_empty();
        };
        // Each middle piece at its leftmost place leaves the most room for the rest (the
        // classic greedy glob match, linear in the namespace for `*`-only patterns).
        for piece in middle {
            match remaining.find(piece.as_str()) {
                Some(at) => remaining = &remaining[at + piece.len()..],
                None => return false,
            }
        }
        remaining.ends_with(last.as_str())
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Pattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Which collections an export writes. The default includes everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceFilter {
    #[serde(default)]
    pub include: Vec<Pattern>,
    #[serde(default)]
    pub exclude: Vec<Pattern>,
}

impl NamespaceFilter {
    /// Parses both lists, refusing the first bad pattern (and lists over [`MAX_PATTERNS`]).
    pub fn parse(include: &[String], exclude: &[String]) -> Result<NamespaceFilter, PatternError> {
        let list = |patterns: &[String]| {
            if patterns.len() > MAX_PATTERNS {
                return Err(PatternError {
                    pattern: patterns[MAX_PATTERNS].clone(),
                    problem: "is past the 100 patterns a list may hold",
                });
            }
            patterns.iter().map(|p| Pattern::parse(p)).collect()
        };
        Ok(NamespaceFilter {
            include: list(include)?,
            exclude: list(exclude)?,
        })
    }

    /// Whether the filter lets everything through (nothing to record in the manifest).
    pub fn is_everything(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Include, then exclude: see the module docs.
    pub fn allows(&self, namespace: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.matches(namespace)))
            && !self.exclude.iter().any(|p| p.matches(namespace))
    }

    /// The source with every collection the filter leaves out marked
    /// [`CollectionKind::Excluded`] (so no reader visits it); the same source when the filter
    /// lets everything through.
    pub fn apply(&self, source: Arc<SnapshotSource>) -> Arc<SnapshotSource> {
        if self.is_everything() {
            return source;
        }
        let mut collections = source.collections.clone();
        for collection in &mut collections {
            let filtered = matches!(
                collection.kind,
                CollectionKind::Collection
                    | CollectionKind::Timeseries
                    | CollectionKind::OrphanBuckets
            );
            if filtered && !self.allows(&collection.namespace()) {
                collection.kind = CollectionKind::Excluded;
            }
        }
        Arc::new(SnapshotSource {
            location: source.location.clone(),
            format: source.format,
            collections,
            info: source.info.clone(),
            pbm: source.pbm.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> NamespaceFilter {
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        NamespaceFilter::parse(&owned(include), &owned(exclude)).unwrap()
    }

    #[test]
    fn a_star_matches_any_run_of_characters_dots_included() {
        let f = filter(&["db.*"], &[]);
        assert!(f.allows("db.users"));
        assert!(f.allows("db.a.b"));
        assert!(!f.allows("dbx.users"));
        assert!(!f.allows("other.users"));
        let f = filter(&["*.users"], &[]);
        assert!(f.allows("db.users"));
        assert!(f.allows("db.archive.users"));
        assert!(!f.allows("db.users2"));
        let f = filter(&["d*.u*s"], &[]);
        assert!(f.allows("db.users"));
        assert!(f.allows("d.us"));
        assert!(!f.allows("db.user"));
    }

    #[test]
    fn a_pattern_without_a_star_is_one_namespace_and_dots_in_collection_names_are_literal() {
        let f = filter(&["db.a.b"], &[]);
        assert!(f.allows("db.a.b"));
        assert!(!f.allows("db.a"));
        assert!(!f.allows("db.a.bc"));
    }

    #[test]
    fn include_is_applied_before_exclude() {
        let f = filter(&["db.*"], &["db.secret*"]);
        assert!(f.allows("db.users"));
        assert!(!f.allows("db.secrets"));
        assert!(!f.allows("other.users"));
        let f = filter(&[], &["*.logs"]);
        assert!(f.allows("db.users"));
        assert!(!f.allows("db.logs"));
    }

    #[test]
    fn an_escaped_star_is_literal() {
        let f = filter(&["db.a\\*"], &[]);
        assert!(f.allows("db.a*"));
        assert!(!f.allows("db.ab"));
    }

    #[test]
    fn bad_patterns_are_refused_naming_the_pattern() {
        for bad in [
            "", "db", ".coll", "db.", "a b.c", "db.x\\y", "db.x\\", "d$b.c",
        ] {
            let error = Pattern::parse(bad).expect_err(bad);
            assert_eq!(error.pattern, bad);
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("db.c{i}")).collect();
        let error = NamespaceFilter::parse(&many, &[]).unwrap_err();
        assert_eq!(error.pattern, format!("db.c{MAX_PATTERNS}"));
    }

    #[test]
    fn a_filter_serializes_as_the_patterns_written() {
        let f = filter(&["db.*"], &["db.a\\*"]);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"include": ["db.*"], "exclude": ["db.a\\*"]})
        );
        let back: NamespaceFilter = serde_json::from_value(json).unwrap();
        assert_eq!(back, f);
    }
}
