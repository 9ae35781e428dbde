//! Collection metadata (`<coll>.metadata.json`, the archive prelude's `metadata` strings),
//! `prelude.json`, collection kinds and mongodump's file-name escaping.

use bson::Document;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::{CollectionInfo, CollectionKind, SourceError};

/// Parses Extended JSON text (canonical, relaxed, and the legacy `{"$binary": …, "$type": …}`
/// form older mongodump versions wrote) into a document.
///
/// `Ok(None)` for an empty or whitespace-only text: it carries no metadata at all, which the
/// callers treat as "no metadata" (see [`super::directory`] for why).
pub(crate) fn parse_extjson(text: &[u8]) -> Result<Option<Document>, ExtJsonError> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(text).map_err(ExtJsonError::Json)?;
    let Value::Object(map) = value else {
        return Err(ExtJsonError::NotAnObject);
    };
    let map = upgrade_legacy(map);
    Document::try_from(map)
        .map(Some)
        .map_err(|e| ExtJsonError::ExtendedJson(Box::new(e)))
}

/// Why a metadata text is not an Extended JSON document. The callers wrap it into a
/// [`SourceError`] that names the object it came from.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExtJsonError {
    #[error("invalid json: {0}")]
    Json(#[source] serde_json::Error),
    #[error("expected a json object")]
    NotAnObject,
    #[error("invalid extended json: {0}")]
    ExtendedJson(#[source] Box<bson::error::Error>),
}

/// Rewrites legacy `{"$binary": "<base64>", "$type": "<hex>"}` objects (Extended JSON v1) into
/// the v2 shape the `bson` crate parses. Only objects with exactly these two string members
/// are touched: `$type` alone is also a query operator that can appear in index filters.
fn upgrade_legacy(map: Map<String, Value>) -> Map<String, Value> {
    if map.len() == 2
        && let (Some(Value::String(b64)), Some(Value::String(subtype))) =
            (map.get("$binary"), map.get("$type"))
    {
        let mut body = Map::new();
        body.insert("base64".into(), Value::String(b64.clone()));
        body.insert("subType".into(), Value::String(subtype.clone()));
        let mut out = Map::new();
        out.insert("$binary".into(), Value::Object(body));
        return out;
    }
    map.into_iter()
        .map(|(k, v)| (k, upgrade_value(v)))
        .collect()
}

fn upgrade_value(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(upgrade_legacy(map)),
        Value::Array(items) => Value::Array(items.into_iter().map(upgrade_value).collect()),
        other => other,
    }
}

/// The server version recorded in `prelude.json` (`{"ServerVersion": "7.0.16", …}`);
/// `None` when absent, empty or `"unknown"`.
pub(crate) fn prelude_server_version(text: &[u8]) -> Result<Option<String>, serde_json::Error> {
    let value: Value = serde_json::from_slice(text)?;
    Ok(value
        .get("ServerVersion")
        .and_then(Value::as_str)
        .and_then(known_version))
}

pub(crate) fn known_version(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty() && !v.eq_ignore_ascii_case("unknown")).then(|| v.to_string())
}

/// The prefix of a time-series collection's buckets namespace.
pub(crate) const BUCKETS_PREFIX: &str = "system.buckets.";

/// Why buckets without their collection's metadata are not exported.
pub const ORPHAN_BUCKETS_REASON: &str = "time-series buckets without their collection's metadata: \
    without timeField they cannot be unpacked into measurements";

/// Decides what a namespace is. Names decide first (the time-series buckets `system.buckets.*`,
/// [`CollectionKind::OrphanBuckets`] until [`link_buckets`] finds their collection; other
/// `system.*` than `system.js`; the oplog pseudo-namespace with an empty database), then the
/// metadata's `type` (also given by the archive prelude) and options.
pub(crate) fn kind_of(
    db: &str,
    name: &str,
    metadata: Option<&Document>,
    type_hint: Option<&str>,
) -> CollectionKind {
    if !db.is_empty() && name.starts_with(BUCKETS_PREFIX) {
        return CollectionKind::OrphanBuckets;
    }
    if db.is_empty() || (name.starts_with("system.") && name != "system.js") {
        return CollectionKind::System;
    }
    let declared = metadata
        .and_then(|m| m.get_str("type").ok())
        .or(type_hint)
        .unwrap_or("");
    let options = metadata.and_then(|m| m.get_document("options").ok());
    let has_option = |key: &str| options.is_some_and(|o| o.contains_key(key));
    if declared == "view" || has_option("viewOn") {
        CollectionKind::View
    } else if declared == "timeseries" || has_option("timeseries") {
        CollectionKind::Timeseries
    } else {
        CollectionKind::Collection
    }
}

/// Gives every time-series collection its buckets: a listed `system.buckets.<name>` of the same
/// database becomes the collection's source (its object and size) and leaves the list, so the
/// buckets are read once, as the time-series collection's documents. Buckets whose collection
/// is not listed stay, as [`CollectionKind::OrphanBuckets`].
///
/// A time-series collection whose own data file has documents *and* a buckets file would be
/// read twice over or lose one of them: that is [`SourceError::Invalid`]. An empty own file
/// (0 bytes) is no conflict. (Archives name one object for everything, so they never conflict:
/// their reader maps both namespaces to the collection.)
pub(crate) fn link_buckets(collections: &mut Vec<CollectionInfo>) -> Result<(), SourceError> {
    let mut linked = Vec::new();
    for (index, buckets) in collections.iter().enumerate() {
        if buckets.kind != CollectionKind::OrphanBuckets {
            continue;
        }
        let Some(name) = buckets.name.strip_prefix(BUCKETS_PREFIX) else {
            continue;
        };
        let owner = collections.iter().position(|c| {
            c.kind == CollectionKind::Timeseries && c.db == buckets.db && c.name == name
        });
        if let Some(owner) = owner {
            linked.push((owner, index));
        }
    }
    for &(owner, index) in &linked {
        let (source_object, bson_bytes) = (
            collections[index].source_object.clone(),
            collections[index].bson_bytes,
        );
        let collection = &mut collections[owner];
        let own_data = collection.source_object.ends_with(".bson")
            || collection.source_object.ends_with(".bson.gz");
        if own_data && collection.bson_bytes != Some(0) && collection.source_object != source_object
        {
            return Err(SourceError::Invalid {
                object: collection.source_object.clone(),
                message: format!(
                    "time-series collection {} has documents here and buckets in {source_object}",
                    collection.namespace()
                ),
            });
        }
        if collection.source_object != source_object {
            collection.source_object = source_object;
            collection.bson_bytes = bson_bytes;
        } else if let (Some(a), Some(b)) = (collection.bson_bytes, bson_bytes) {
            collection.bson_bytes = Some(a + b);
        }
    }
    let mut index = 0;
    collections.retain(|_| {
        let keep = !linked.iter().any(|&(_, i)| i == index);
        index += 1;
        keep
    });
    Ok(())
}

/// Undoes mongodump's file-name escaping (Go's `url.PathEscape`: `caf%C3%A9s` → `cafés`).
/// A name that does not decode to UTF-8 is kept as it is.
pub(crate) fn unescape_name(name: &str) -> String {
    match percent_decode_str(name).decode_utf8() {
        Ok(decoded) => decoded.into_owned(),
        Err(_) => name.to_string(),
    }
}

/// The collection name for a dump file's base name. mongodump shortens names that would make
/// file names too long and marks the cut with `$` and a hash (`%24` in the file name); the
/// metadata's `collectionName` then holds the real name. `$` cannot occur in a real
/// collection name, so its presence is the signal.
pub(crate) fn collection_name(file_base: &str, metadata: Option<&Document>) -> String {
    let decoded = unescape_name(file_base);
    if decoded.contains('$')
        && let Some(Ok(full)) = metadata.map(|m| m.get_str("collectionName"))
    {
        return full.to_string();
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::Bson;

    #[test]
    fn canonical_relaxed_and_legacy_metadata_parse() {
        let doc = parse_extjson(
            br#"{"options":{"size":{"$numberLong":"10"},"capped":true},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"}],"uuid":"0536e9fd3d204b1e8e711a834ba704a6","x":{"$binary":"AAE=","$type":"00"}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            doc.get_document("options")
                .unwrap()
                .get_i64("size")
                .unwrap(),
            10
        );
        let ix = doc.get_array("indexes").unwrap();
        assert_eq!(ix.len(), 1);
        match doc.get("x") {
            Some(Bson::Binary(b)) => assert_eq!(b.bytes, vec![0, 1]),
            other => panic!("expected binary, got {other:?}"),
        }
        // Key order is preserved (the metadata.json we write keeps it).
        let keys: Vec<_> = doc.keys().cloned().collect();
        assert_eq!(keys, ["options", "indexes", "uuid", "x"]);
    }

    #[test]
    fn empty_metadata_is_none_and_garbage_is_an_error() {
        assert_eq!(parse_extjson(b"").unwrap(), None);
        assert_eq!(parse_extjson(b"  \n").unwrap(), None);
        assert!(parse_extjson(b"{").is_err());
        assert!(parse_extjson(b"[1]").is_err());
        assert!(parse_extjson(br#"{"a":{"$numberInt":"x"}}"#).is_err());
    }

    #[test]
    fn query_operators_are_not_mistaken_for_legacy_types() {
        let doc = parse_extjson(br#"{"f":{"$type":"string"},"r":{"$regex":"^a"}}"#)
            .unwrap()
            .unwrap();
        assert!(doc.get_document("f").unwrap().contains_key("$type"));
        assert!(doc.get_document("r").unwrap().contains_key("$regex"));
    }

    #[test]
    fn kinds_follow_names_then_metadata() {
        let view = bson::doc! {"options": {"viewOn": "a", "pipeline": []}};
        let ts = bson::doc! {"options": {"timeseries": {"timeField": "t"}}};
        assert_eq!(kind_of("d", "c", None, None), CollectionKind::Collection);
        assert_eq!(
            kind_of("d", "system.js", None, None),
            CollectionKind::Collection
        );
        assert_eq!(
            kind_of("d", "system.views", None, None),
            CollectionKind::System
        );
        assert_eq!(
            kind_of("d", "system.buckets.x", Some(&ts), None),
            CollectionKind::OrphanBuckets
        );
        assert_eq!(kind_of("", "oplog", None, None), CollectionKind::System);
        assert_eq!(kind_of("d", "v", Some(&view), None), CollectionKind::View);
        assert_eq!(kind_of("d", "v", None, Some("view")), CollectionKind::View);
        assert_eq!(
            kind_of("d", "t", Some(&ts), None),
            CollectionKind::Timeseries
        );
        let typed = bson::doc! {"type": "timeseries"};
        assert_eq!(
            kind_of("d", "t", Some(&typed), None),
            CollectionKind::Timeseries
        );
    }

    fn listed(name: &str, kind: CollectionKind, object: &str, bytes: u64) -> CollectionInfo {
        CollectionInfo {
            db: "d".into(),
            name: name.into(),
            kind,
            metadata: None,
            source_object: object.into(),
            bson_bytes: Some(bytes),
        }
    }

    #[test]
    fn time_series_collections_take_their_buckets_file() {
        let mut list = vec![
            listed(
                "system.buckets.orphan",
                CollectionKind::OrphanBuckets,
                "d/system.buckets.orphan.bson",
                9,
            ),
            listed(
                "system.buckets.t",
                CollectionKind::OrphanBuckets,
                "d/system.buckets.t.bson",
                7,
            ),
            listed("t", CollectionKind::Timeseries, "d/t.metadata.json", 0),
        ];
        link_buckets(&mut list).unwrap();
        let got: Vec<_> = list
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.kind,
                    c.source_object.as_str(),
                    c.bson_bytes,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "system.buckets.orphan",
                    CollectionKind::OrphanBuckets,
                    "d/system.buckets.orphan.bson",
                    Some(9)
                ),
                (
                    "t",
                    CollectionKind::Timeseries,
                    "d/system.buckets.t.bson",
                    Some(7)
                ),
            ]
        );
        // Documents in both files: refused, naming the collection.
        let mut both = vec![
            listed(
                "system.buckets.t",
                CollectionKind::OrphanBuckets,
                "d/system.buckets.t.bson",
                7,
            ),
            listed("t", CollectionKind::Timeseries, "d/t.bson", 3),
        ];
        let e = link_buckets(&mut both).unwrap_err();
        assert!(e.to_string().contains("d.t"), "{e}");
    }

    #[test]
    fn names_are_unescaped_and_truncated_names_come_from_metadata() {
        assert_eq!(unescape_name("caf%C3%A9s"), "cafés");
        assert_eq!(unescape_name("a%2Fb"), "a/b");
        assert_eq!(unescape_name("bad%FF"), "bad%FF");
        let meta = bson::doc! {"collectionName": "long-real-name"};
        assert_eq!(
            collection_name("long%24hash", Some(&meta)),
            "long-real-name"
        );
        assert_eq!(collection_name("long%24hash", None), "long$hash");
        assert_eq!(collection_name("plain", Some(&meta)), "plain");
    }

    #[test]
    fn prelude_versions() {
        let v = prelude_server_version(br#"{"ServerVersion":"7.0.16","ToolVersion":""}"#);
        assert_eq!(v.unwrap().as_deref(), Some("7.0.16"));
        let v = prelude_server_version(br#"{"ServerVersion":"unknown","ToolVersion":""}"#);
        assert_eq!(v.unwrap(), None);
        assert!(prelude_server_version(b"nope").is_err());
    }
}
