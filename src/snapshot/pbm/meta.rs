//! PBM's metadata: the backup's `<name>.pbm.json`, a replica set's `metadata.json` (every 2.x)
//! and `meta.pbm` (2.8 and later). Field meanings and the source they come from are in
//! `shared/data/pbm/FORMAT.md`; what matters here:
//!
//! - `<name>.pbm.json` is Go `encoding/json` of PBM's `BackupMeta`: `type`, `status`,
//!   `compression`, `pbm_version`, `mongodb_version`, `first_write_ts`/`last_write_ts`
//!   (`{"T": secs, "I": inc}`; the backup is consistent at `last_write_ts`), `size`, and
//!   `replsets[]` with `name`, `backup_name` (the 1.x archive, or the 2.x `metadata.json`),
//!   `oplog_name` (a file before 2.4, a folder of chunks since) and their own times.
//! - `metadata.json` is a mongodump archive prelude in Extended JSON, each namespace with the
//!   CRC-64/XZ (stored as a signed int64) and uncompressed size of its data file.
//! - `meta.pbm` is one BSON document whose `specifications[]` carry the same CRCs and sizes;
//!   a time-series collection appears twice there (the view with 0/0, `system.buckets.<name>`
//!   with the data's).
//!
//! Unknown fields are ignored (PBM adds fields between releases); the fields a reader needs
//! are checked, and anything they would make us guess is an error naming the file.

use serde::Deserialize;

use super::super::metadata::{ExtJsonError, parse_extjson};

/// Largest metadata file read into memory (`.pbm.json`, `metadata.json`, `meta.pbm`): real
/// ones are a few KiB, a backup of 100,000 collections a few MiB.
pub const METADATA_LIMIT: u64 = 64 * 1024 * 1024;

/// A BSON timestamp as PBM writes it in JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct Ts {
    #[serde(rename = "T", default)]
    pub t: u32,
    #[serde(rename = "I", default)]
    pub i: u32,
}

impl Ts {
    pub fn is_zero(&self) -> bool {
        self.t == 0 && self.i == 0
    }
}

/// The fields of `BackupMeta` snapex uses.
#[derive(Debug, Clone, Deserialize)]
pub struct BackupMeta {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub compression: String,
    #[serde(default)]
    pub pbm_version: Option<String>,
    #[serde(default)]
    pub mongodb_version: Option<String>,
    #[serde(default)]
    pub size: Option<i64>,
    #[serde(default)]
    pub last_write_ts: Option<Ts>,
    #[serde(default)]
    pub replsets: Vec<ReplsetMeta>,
}

/// One replica set (or shard, or config server) of a backup.
#[derive(Debug, Clone, Deserialize)]
pub struct ReplsetMeta {
    #[serde(default)]
    pub name: String,
    /// The Go field `DumpName`: the 1.x archive, or the 2.x `metadata.json`.
    #[serde(rename = "backup_name", default)]
    pub dump_name: String,
    #[serde(default)]
    pub oplog_name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub first_write_ts: Option<Ts>,
    #[serde(default)]
    pub last_write_ts: Option<Ts>,
    #[serde(default)]
    pub pbm_version: Option<String>,
    #[serde(default)]
    pub mongo_version: Option<String>,
    #[serde(default)]
    pub size: Option<i64>,
}

/// A `major.minor` version, as `pbm/version` compares them; `None` when it does not parse.
pub fn major_minor(version: &str) -> Option<(u32, u32)> {
    let version = version.trim().trim_start_matches('v');
    let mut parts = version.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().unwrap_or(0);
    Some((major, minor))
}

/// One namespace of a replica set's 2.x dump, from `metadata.json`.
#[derive(Debug, Clone)]
pub struct Namespace {
    pub db: String,
    /// As listed: the user-visible name (a time-series collection's, not its buckets').
    pub collection: String,
    pub kind: String,
    /// The mongodump-style metadata, parsed; `None` when the string is empty.
    pub metadata: Option<bson::Document>,
    pub crc: i64,
    pub size: i64,
}

/// Why a replica set's `metadata.json` or `meta.pbm` cannot be used. The caller names the file.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error(transparent)]
    ExtJson(#[from] ExtJsonError),
    #[error("the file is empty")]
    Empty,
    #[error("invalid BSON: {0}")]
    Bson(#[source] Box<bson::error::Error>),
    /// A field the format requires is missing or has another type; `field` is its path.
    #[error("`{field}` is missing or not {expected}")]
    Field {
        field: String,
        expected: &'static str,
    },
    #[error("{field} ({namespace}): invalid metadata: {source}")]
    NamespaceMetadata {
        field: String,
        namespace: String,
        #[source]
        source: ExtJsonError,
    },
}

fn field(field: impl Into<String>, expected: &'static str) -> MetaError {
    MetaError::Field {
        field: field.into(),
        expected,
    }
}

/// Parses `metadata.json`: its `server_version` and namespaces.
pub fn parse_metadata_json(text: &[u8]) -> Result<(Option<String>, Vec<Namespace>), MetaError> {
    let doc = parse_extjson(text)?.ok_or(MetaError::Empty)?;
    let server_version = doc.get_str("server_version").ok().map(str::to_string);
    let list = doc
        .get_array("namespaces")
        .map_err(|_| field("namespaces", "an array"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let entry = item
            .as_document()
            .ok_or_else(|| field(format!("namespaces[{i}]"), "an object"))?;
        let text = |key: &str| -> Result<String, MetaError> {
            entry
                .get_str(key)
                .map(str::to_string)
                .map_err(|_| field(format!("namespaces[{i}].{key}"), "a string"))
        };
        let db = text("db")?;
        let collection = text("collection")?;
        let metadata_text = entry.get_str("metadata").unwrap_or("");
        let metadata = parse_extjson(metadata_text.as_bytes()).map_err(|source| {
            MetaError::NamespaceMetadata {
                field: format!("namespaces[{i}]"),
                namespace: format!("{db}.{collection}"),
                source,
            }
        })?;
        out.push(Namespace {
            kind: entry.get_str("type").unwrap_or("collection").to_string(),
            crc: integer(entry, "crc").ok_or_else(|| {
                field(
                    format!("namespaces[{i}].crc ({db}.{collection})"),
                    "an integer",
                )
            })?,
            size: integer(entry, "size").ok_or_else(|| {
                field(
                    format!("namespaces[{i}].size ({db}.{collection})"),
                    "an integer",
                )
            })?,
            db,
            collection,
            metadata,
        });
    }
    Ok((server_version, out))
}

fn integer(doc: &bson::Document, key: &str) -> Option<i64> {
    match doc.get(key)? {
        bson::Bson::Int64(n) => Some(*n),
        bson::Bson::Int32(n) => Some(i64::from(*n)),
        _ => None,
    }
}

/// What `meta.pbm` records of one data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub db: String,
    /// The collection part of the file name: a time-series collection's buckets are recorded
    /// under the collection's own name, as their file is (`archive.NSify`).
    pub file_collection: String,
    pub crc: i64,
    pub size: i64,
}

/// The data files `meta.pbm` records (entries without data, such as views, are left out).
pub fn parse_meta_pbm(bytes: &[u8]) -> Result<Vec<Recorded>, MetaError> {
    let doc = bson::Document::from_reader(bytes).map_err(|e| MetaError::Bson(Box::new(e)))?;
    let specs = doc
        .get_array("specifications")
        .map_err(|_| field("specifications", "an array"))?;
    let mut out = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let spec = spec
            .as_document()
            .ok_or_else(|| field(format!("specifications[{i}]"), "a document"))?;
        let db = spec
            .get_str("db")
            .map_err(|_| field(format!("specifications[{i}].db"), "a string"))?;
        let name = spec
            .get_str("name")
            .map_err(|_| field(format!("specifications[{i}].name"), "a string"))?;
        let crc = integer(spec, "crc").unwrap_or(0);
        let size = integer(spec, "size").unwrap_or(0);
        if size == 0 && crc == 0 {
            continue; // views, the time-series view entry, empty collections: no file
        }
        out.push(Recorded {
            db: db.to_string(),
            file_collection: file_collection(name).to_string(),
            crc,
            size,
        });
    }
    Ok(out)
}

/// The collection part of a data file's name: the `system.buckets.` prefix of a time-series
/// collection's buckets is removed (PBM's `archive.NSify`).
pub fn file_collection(name: &str) -> &str {
    name.strip_prefix("system.buckets.").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(major_minor("1.8.1"), Some((1, 8)));
        assert_eq!(major_minor("2.15.0"), Some((2, 15)));
        assert_eq!(major_minor("v2.4.0-rc1"), Some((2, 4)));
        assert_eq!(major_minor("2"), Some((2, 0)));
        assert_eq!(major_minor("x"), None);
    }

    #[test]
    fn metadata_json_gives_namespaces_with_crc_and_size() {
        let text = br#"{"server_version":"8.0.0","namespaces":[
            {"db":"db1","collection":"c1","metadata":"{\"indexes\":[]}","type":"collection",
             "crc":{"$numberLong":"-8605741467731821144"},"size":{"$numberLong":"59"}},
            {"db":"db1","collection":"v","metadata":"","type":"view","crc":{"$numberLong":"0"},"size":{"$numberLong":"0"}}]}"#;
        let (version, list) = parse_metadata_json(text).unwrap();
        assert_eq!(version.as_deref(), Some("8.0.0"));
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].crc, -8605741467731821144);
        assert_eq!(list[0].size, 59);
        assert!(list[1].metadata.is_none());
        assert!(parse_metadata_json(br#"{"namespaces":[{"db":"a"}]}"#).is_err());
        assert!(parse_metadata_json(b"{").is_err());
    }

    #[test]
    fn buckets_are_named_after_their_collection() {
        assert_eq!(file_collection("system.buckets.w"), "w");
        assert_eq!(file_collection("c"), "c");
    }
}

/// The metadata parsers take whatever a storage holds: no input makes them panic.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_metadata_json(&bytes);
            let _ = parse_meta_pbm(&bytes);
            let _ = serde_json::from_slice::<BackupMeta>(&bytes);
        }

        #[test]
        fn damaged_metadata_json_never_panics(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut text = br#"{"server_version":"8.0.0","namespaces":[{"db":"db1","collection":"c1","metadata":"{\"indexes\":[{\"v\":{\"$numberInt\":\"2\"},\"key\":{\"_id\":{\"$numberInt\":\"1\"}},\"name\":\"_id_\"}]}","type":"collection","crc":{"$numberLong":"-1"},"size":{"$numberLong":"59"}}]}"#.to_vec();
            for (at, value) in edits {
                let len = text.len();
                text[at % len] = value;
            }
            let _ = parse_metadata_json(&text);
        }

        #[test]
        fn damaged_meta_pbm_never_panics(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let doc = bson::doc! {"version": "2.15.0", "specifications": [
                {"db": "db1", "name": "system.buckets.w", "type": "collection", "crc": -5i64, "size": 49i64, "indexes": []},
                {"db": "db1", "name": "w", "type": "timeseries", "crc": 0i64, "size": 0i64},
            ]};
            let mut bytes = Vec::new();
            doc.to_writer(&mut bytes).unwrap();
            let parsed = parse_meta_pbm(&bytes).unwrap();
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(&parsed[0].file_collection, "w");
            for (at, value) in edits {
                let len = bytes.len();
                bytes[at % len] = value;
            }
            let _ = parse_meta_pbm(&bytes);
        }
    }
}
