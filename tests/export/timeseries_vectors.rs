//! The BSONColumn decoder and the bucket unpacker against the vectors of
//! `../shared/data/timeseries/` (transcribed from the server's unit tests and jstests; see its
//! README for where each comes from and its caveats).
//!
//! - `bsoncolumn-unit.json`: every case decodes to exactly its elements — byte for byte against
//!   `elements_bson_hex` where the file has it, else as canonical Extended JSON (doubles compared
//!   by value, as the README asks); every `invalid` input is rejected; the `fuzzer` binaries
//!   decode or fail without a panic.
//! - `bsoncolumn-jstests.json`: every valid column decodes (to its stated values where the test
//!   states them, to `control.count` elements where it sits in a bucket), every invalid one is
//!   rejected, every bucket unpacks to `control.count` measurements, and the buckets with expected
//!   measurements unpack to exactly those, in the server's field order.
//!
//! Failures are collected and reported together, so one run shows every vector that disagrees.

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{Map, Value};
use snapex::extjson::{Format, write_document};
use snapex::timeseries::column::ColumnError;
use snapex::timeseries::{Column, Element, TimeseriesOptions, UnpackError, Unpacker};

fn data_dir() -> PathBuf {
    let base = match std::env::var_os("SNAPEX_SHARED_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
            if beside.exists() {
                beside
            } else {
                PathBuf::from("/work/shared/data")
            }
        }
    };
    base.join("timeseries")
}

fn load(name: &str) -> Value {
    let path = data_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&replace_lone_surrogates(&text)).expect("vector file is JSON")
}

/// The generator wrote strings that are not UTF-8 with Python's `surrogateescape` (a byte 0x80
/// becomes `\udc80`), which no JSON parser accepts. Those cases carry their exact bytes in
/// `elements_bson_hex`, which is what they are compared by; here the lone surrogates only need
/// to parse, so they become U+FFFD.
fn replace_lone_surrogates(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let escape_at = |i: usize| -> Option<u16> {
        let digits = bytes.get(i + 2..i + 6)?;
        (bytes.get(i) == Some(&b'\\') && bytes.get(i + 1) == Some(&b'u'))
            .then(|| u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok())
            .flatten()
    };
    let mut i = 0;
    let mut last = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'\\') {
            i += 2;
            continue;
        }
        match escape_at(i) {
            Some(0xD800..=0xDBFF) if matches!(escape_at(i + 6), Some(0xDC00..=0xDFFF)) => i += 12,
            Some(0xD800..=0xDFFF) => {
                out.push_str(&text[last..i]);
                out.push_str("\\ufffd");
                i += 6;
                last = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[last..]);
    out
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

type Decoded = Vec<Option<(u8, Vec<u8>)>>;

fn decode(bytes: &[u8]) -> Result<Decoded, ColumnError> {
    let mut column = Column::new(bytes)?;
    let mut out = Vec::new();
    while let Some(element) = column.next_element()? {
        out.push(match element {
            Element::Missing => None,
            Element::Value { ty, value } => Some((ty, value.to_vec())),
        });
    }
    Ok(out)
}

/// `{"v": value}` in canonical Extended JSON, `{}` for a missing element.
fn element_json(element: &Option<(u8, Vec<u8>)>) -> Value {
    let mut doc = Vec::new();
    let body_len = element.as_ref().map_or(0, |(_, v)| 3 + v.len());
    doc.extend_from_slice(&((body_len + 5) as i32).to_le_bytes());
    if let Some((ty, value)) = element {
        doc.push(*ty);
        doc.extend_from_slice(b"v\0");
        doc.extend_from_slice(value);
    }
    doc.push(0);
    let mut out = Vec::new();
    write_document(&doc, Format::Canonical, &mut out).expect("decoded element encodes");
    serde_json::from_slice(&out).expect("encoder writes JSON")
}

/// Doubles spelled canonically (the vectors use Python's `repr`, we the Go driver's digits).
fn normalize(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            if let (1, Some(Value::String(s))) = (map.len(), map.get("$numberDouble")) {
                let spelled = match s.parse::<f64>() {
                    Ok(f) if f.is_finite() => format!("{:#x}", f.to_bits()),
                    _ => s.clone(),
                };
                let mut out = Map::new();
                out.insert("$numberDouble".into(), Value::String(spelled));
                return Value::Object(out);
            }
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// Serialized, so that key order counts (serde_json's ordered maps compare as sets).
fn text(value: &Value) -> String {
    serde_json::to_string(&normalize(value)).unwrap()
}

fn report(what: &str, failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} {what} disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{total} {what}: all agree");
}

#[test]
fn every_valid_unit_case_decodes_to_exactly_its_elements() {
    let unit = load("bsoncolumn-unit.json");
    let cases = unit["cases"].as_array().expect("cases");
    assert!(cases.len() >= 253, "expected the 253 cases of the README");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let bytes = hex(case["bson_column_hex"].as_str().expect("hex"));
        let decoded = match decode(&bytes) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: rejected: {e}"));
                continue;
            }
        };
        let count = case["count"].as_u64().expect("count") as usize;
        if decoded.len() != count {
            failures.push(format!(
                "{name}: {} elements, expected {count}",
                decoded.len()
            ));
            continue;
        }
        if let Some(expected) = case["elements_bson_hex"].as_array() {
            for (i, (got, want)) in decoded.iter().zip(expected).enumerate() {
                let got = got.as_ref().map(|(ty, v)| {
                    let mut b = vec![*ty];
                    b.extend_from_slice(v);
                    hex::encode(b)
                });
                if got.as_deref() != want.as_str() {
                    failures.push(format!("{name}[{i}]: got {got:?}, expected {want}"));
                    break;
                }
            }
        } else {
            let expected = case["elements"].as_array().expect("elements");
            for (i, (got, want)) in decoded.iter().zip(expected).enumerate() {
                let got = element_json(got);
                if text(&got) != text(want) {
                    failures.push(format!("{name}[{i}]: got {got}, expected {want}"));
                    break;
                }
            }
        }
    }
    report("unit cases", &failures, cases.len());
}

#[test]
fn every_invalid_unit_input_is_rejected() {
    let unit = load("bsoncolumn-unit.json");
    let invalid = unit["invalid"].as_array().expect("invalid");
    assert!(invalid.len() >= 32);
    let mut failures = Vec::new();
    for case in invalid {
        let name = case["name"].as_str().unwrap_or("?");
        let bytes = hex(case["bson_column_hex"].as_str().expect("hex"));
        if let Ok(decoded) = decode(&bytes) {
            failures.push(format!(
                "{name}: accepted ({} elements); {}",
                decoded.len(),
                case["why"]
            ));
        }
    }
    report("invalid unit inputs", &failures, invalid.len());
}

#[test]
fn fuzzer_binaries_decode_or_fail_without_a_panic() {
    let unit = load("bsoncolumn-unit.json");
    let fuzzer = unit["fuzzer"].as_array().expect("fuzzer");
    let (mut ok, mut rejected) = (0, 0);
    for case in fuzzer {
        let bytes = hex(case["bson_column_hex"].as_str().expect("hex"));
        match decode(&bytes) {
            Ok(_) => ok += 1,
            Err(_) => rejected += 1,
        }
    }
    assert_eq!(ok + rejected, fuzzer.len());
    eprintln!("fuzzer binaries: {ok} decode, {rejected} rejected");
}

#[test]
fn jstests_columns_decode_to_their_stated_values_and_invalid_ones_fail() {
    let js = load("bsoncolumn-jstests.json");
    let columns = js["columns"].as_array().expect("columns");
    let mut failures = Vec::new();
    let (mut valid, mut with_values, mut with_count) = (0, 0, 0);
    for (i, column) in columns.iter().enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(column["base64"].as_str().expect("base64"))
            .expect("base64");
        let field = &column["occurrences"][0]["field"];
        let name = format!("column {i} ({field})");
        let result = decode(&bytes);
        if column["valid"] != Value::Bool(true) {
            if let Ok(d) = result {
                failures.push(format!(
                    "{name}: invalid but accepted ({} elements)",
                    d.len()
                ));
            }
            continue;
        }
        valid += 1;
        let decoded = match result {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: rejected: {e}"));
                continue;
            }
        };
        if let Some(expected) = column["expected"].as_array() {
            with_values += 1;
            let got: Vec<Value> = decoded.iter().map(element_json).collect();
            let (got_text, want_text): (Vec<_>, Vec<_>) = (
                got.iter().map(text).collect(),
                expected.iter().map(text).collect(),
            );
            if got_text != want_text {
                failures.push(format!("{name}: got {got:?}, expected {expected:?}"));
            }
        }
        if let Some(count) = number(&column["control"]["count"]) {
            with_count += 1;
            if decoded.len() as f64 != count {
                failures.push(format!(
                    "{name}: {} elements, control.count {count}",
                    decoded.len()
                ));
            }
        }
    }
    assert!(
        valid >= 65 && with_values >= 24,
        "{valid} valid, {with_values} with values"
    );
    eprintln!(
        "{valid} valid columns, {with_values} with stated values, {with_count} with control.count"
    );
    report("jstests columns", &failures, columns.len());
}

/// A number written as JSON or as canonical Extended JSON (`{"$numberInt": "2"}`).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Object(map) if map.len() == 1 => map.values().next()?.as_str()?.parse().ok(),
        _ => None,
    }
}

/// The time field of a vector bucket: the tests name it `t`, `ts`, `time`, `my_time` or `date`.
fn time_field(bucket: &Value) -> String {
    let data = bucket["data"].as_object().expect("data");
    ["t", "ts", "time", "my_time", "date"]
        .into_iter()
        .find(|k| data.contains_key(*k))
        .expect("a known time field")
        .to_string()
}

/// The bucket's BSON, from its canonical Extended JSON.
fn bucket_bytes(bucket: &Value) -> Vec<u8> {
    let doc: bson::Document = bson::Document::try_from(bucket.as_object().unwrap().clone())
        .expect("bucket extended json parses");
    doc.to_vec().unwrap()
}

fn unpack(options: TimeseriesOptions, bucket: &[u8]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let mut unpacker = Unpacker::new(options);
    unpacker
        .unpack(bucket, |m| {
            let mut json = Vec::new();
            write_document(m, Format::Canonical, &mut json).map_err(|e| e.to_string())?;
            out.push(serde_json::from_slice(&json).unwrap());
            Ok::<(), String>(())
        })
        .map_err(|e| match e {
            UnpackError::Bucket(e) => e.to_string(),
            UnpackError::Emit(e) => e,
        })?;
    Ok(out)
}

#[test]
fn every_vector_bucket_unpacks_to_control_count_measurements() {
    let js = load("bsoncolumn-jstests.json");
    let buckets = js["buckets"].as_array().expect("buckets");
    assert!(buckets.len() >= 27);
    let mut failures = Vec::new();
    for b in buckets {
        let id = b["id"].as_str().unwrap_or("?");
        let bucket = &b["bucket"];
        let meta = bucket.get("meta").map(|_| "m".to_string());
        let options = TimeseriesOptions::new(time_field(bucket), meta);
        let count = number(&bucket["control"]["count"]).expect("control.count");
        match unpack(options, &bucket_bytes(bucket)) {
            Ok(m) if m.len() as f64 == count => {}
            Ok(m) => failures.push(format!(
                "{id}: {} measurements, control.count {count}",
                m.len()
            )),
            Err(e) => failures.push(format!("{id}: {e}")),
        }
    }
    report("vector buckets", &failures, buckets.len());
}

#[test]
fn version_2_and_3_buckets_unpack_to_their_expected_measurements() {
    let js = load("bsoncolumn-jstests.json");
    let buckets = js["buckets"].as_array().expect("buckets");
    let mut failures = Vec::new();
    let mut checked = 0;
    for b in buckets {
        let Some(expected) = b["expected_measurements"].as_array() else {
            continue;
        };
        checked += 1;
        let id = b["id"].as_str().unwrap_or("?");
        let bucket = &b["bucket"];
        let time = time_field(bucket);
        // The meta field is the expected measurement's field that is not a data field.
        let data = bucket["data"].as_object().unwrap();
        let meta = expected[0]
            .as_object()
            .unwrap()
            .keys()
            .find(|k| !data.contains_key(*k))
            .cloned();
        assert_eq!(meta.is_some(), bucket.get("meta").is_some(), "{id}");
        let got = match unpack(TimeseriesOptions::new(time, meta), &bucket_bytes(bucket)) {
            Ok(got) => got,
            Err(e) => {
                failures.push(format!("{id}: {e}"));
                continue;
            }
        };
        // Exact, field order included: time field, meta field, then data in bucket order.
        let got_text: Vec<_> = got.iter().map(text).collect();
        let want_text: Vec<_> = expected.iter().map(text).collect();
        if got_text != want_text {
            failures.push(format!("{id}: got {got_text:?}, expected {want_text:?}"));
        }
    }
    assert!(
        checked >= 10,
        "the README promises 10 buckets with expected measurements"
    );
    report("buckets with expected measurements", &failures, checked);
}

/// Decodes `bytes` to the end or the first error; a panic fails the property. Every element must
/// stay within a bound linear in the input: the decoder never grows memory out of proportion.
fn decode_bounded(bytes: &[u8]) {
    let Ok(column) = Column::new(bytes) else {
        return;
    };
    let mut column = column.with_limit(100_000);
    while let Ok(Some(element)) = column.next_element() {
        if let Element::Value { value, .. } = element {
            assert!(
                value.len() <= 16 * bytes.len() + 64,
                "a {}-byte element from {} bytes of input",
                value.len(),
                bytes.len()
            );
        }
    }
}

fn unit_columns() -> &'static [Vec<u8>] {
    static COLUMNS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| {
        let unit = load("bsoncolumn-unit.json");
        ["cases", "invalid", "fuzzer"]
            .iter()
            .flat_map(|k| unit[*k].as_array().cloned().unwrap_or_default())
            .map(|c| hex(c["bson_column_hex"].as_str().expect("hex")))
            .collect()
    })
}

fn vector_buckets() -> &'static [Vec<u8>] {
    static BUCKETS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    BUCKETS.get_or_init(|| {
        let js = load("bsoncolumn-jstests.json");
        js["buckets"]
            .as_array()
            .expect("buckets")
            .iter()
            .map(|b| bucket_bytes(&b["bucket"]))
            .collect()
    })
}

mod properties {
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;

    fn mutate(base: &[u8], flips: &[(Index, u8)], cut: Option<Index>) -> Vec<u8> {
        let mut bytes = base.to_vec();
        if bytes.is_empty() {
            return bytes;
        }
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 3000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            decode_bounded(&bytes);
        }

        #[test]
        fn mutated_vector_columns_never_panic(
            which in any::<Index>(),
            flips in proptest::collection::vec((any::<Index>(), any::<u8>()), 1..6),
            cut in proptest::option::of(any::<Index>()),
        ) {
            let columns = unit_columns();
            let base = &columns[which.index(columns.len())];
            decode_bounded(&mutate(base, &flips, cut));
        }

        #[test]
        fn mutated_buckets_never_panic(
            which in any::<Index>(),
            flips in proptest::collection::vec((any::<Index>(), any::<u8>()), 1..6),
            cut in proptest::option::of(any::<Index>()),
        ) {
            let buckets = vector_buckets();
            let bytes = mutate(&buckets[which.index(buckets.len())], &flips, cut);
            for time in ["t", "ts", "time", "my_time", "date"] {
                let mut unpacker = Unpacker::new(TimeseriesOptions::new(time, Some("m".into())));
                let _ = unpacker.check(&bytes);
            }
        }
    }
}

/// The version-2 and -3 vector buckets that state their measurements, each written as the only
/// bucket of a time-series collection of a directory dump (as mongodump writes one), exported
/// with the export engine, and read back from the data files: exactly the stated measurements.
#[tokio::test]
async fn vector_buckets_export_to_their_expected_measurements() {
    use std::io::Read;
    use std::sync::Arc;

    let js = load("bsoncolumn-jstests.json");
    let scratch = tempfile::tempdir().unwrap();
    let db = scratch.path().join("dump/vectors");
    std::fs::create_dir_all(&db).unwrap();
    let mut expected = Vec::new();
    for b in js["buckets"].as_array().expect("buckets") {
        let Some(measurements) = b["expected_measurements"].as_array() else {
            continue;
        };
        let name = format!("c_{}", b["id"].as_str().unwrap().replace('.', "_"));
        let bucket = &b["bucket"];
        let data = bucket["data"].as_object().unwrap();
        let meta = measurements[0]
            .as_object()
            .unwrap()
            .keys()
            .find(|k| !data.contains_key(*k))
            .cloned();
        let mut timeseries =
            serde_json::json!({"timeField": time_field(bucket), "granularity": "seconds"});
        if let Some(meta) = &meta {
            timeseries["metaField"] = Value::String(meta.clone());
        }
        let metadata = serde_json::json!({
            "options": {"timeseries": timeseries}, "indexes": [],
            "collectionName": name, "type": "timeseries",
        });
        std::fs::write(
            db.join(format!("{name}.metadata.json")),
            metadata.to_string(),
        )
        .unwrap();
        std::fs::write(
            db.join(format!("system.buckets.{name}.bson")),
            bucket_bytes(bucket),
        )
        .unwrap();
        expected.push((name, measurements.clone()));
    }
    assert!(expected.len() >= 10);

    let location = snapex::storage::open(
        scratch.path().join("dump").to_str().unwrap(),
        &snapex::storage::StorageOptions::default(),
    )
    .unwrap();
    let source = Arc::new(
        snapex::snapshot::SnapshotSource::open(location)
            .await
            .unwrap(),
    );
    let out = scratch.path().join("bucket");
    let bucket = snapex::storage::open(out.to_str().unwrap(), &Default::default()).unwrap();
    let target = snapex::export::ExportTarget {
        bucket,
        prefix: "x".into(),
    };
    let summary = snapex::export::run_export(
        vec![("rs0".into(), source)],
        &target,
        &Default::default(),
        &Default::default(),
        Arc::new(snapex::export::NoProgress),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(summary.replica_sets[0].buckets, expected.len() as u64);

    let mut failures = Vec::new();
    for (name, measurements) in &expected {
        let file = out.join(format!("x/vectors/{name}/rs0.0.json.gz"));
        let mut json = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap())
            .read_to_string(&mut json)
            .unwrap();
        let got: Vec<String> = json
            .lines()
            .map(|l| text(&serde_json::from_str(l).unwrap()))
            .collect();
        let want: Vec<String> = measurements.iter().map(text).collect();
        if got != want {
            failures.push(format!("{name}: got {got:?}, expected {want:?}"));
        }
    }
    report("exported vector buckets", &failures, expected.len());
}
