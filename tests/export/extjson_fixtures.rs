//! The Extended JSON encoder against real mongodump/bsondump fixtures (`../shared/data/mongodump/`)
//! and against random and mutated bytes.
//!
//! `.bson` fixture files are concatenated BSON documents; the tests split them by each document's
//! int32 length prefix themselves, as a snapshot reader would, and hand every piece (including a
//! truncated last piece) to the encoder.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::Value;
use snapex::extjson::{Format, write_document};

use crate::support;

fn fixture(path: &str) -> Vec<u8> {
    let full = support::mongo_tools().join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

/// Splits a BSON stream by length prefixes. The last piece may be truncated or garbage: it is
/// returned as is (everything that is left) so the encoder gets to reject it.
fn split_documents(stream: &[u8]) -> Vec<&[u8]> {
    let mut docs = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let rest = &stream[pos..];
        let len = rest
            .first_chunk::<4>()
            .map(|b| i32::from_le_bytes(*b))
            .unwrap_or(0);
        if len < 5 || len as usize > rest.len() {
            docs.push(rest);
            break;
        }
        docs.push(&rest[..len as usize]);
        pos += len as usize;
    }
    docs
}

fn encode(doc: &[u8], format: Format) -> Result<String, snapex::extjson::EncodeError> {
    let mut out = Vec::new();
    write_document(doc, format, &mut out)?;
    Ok(String::from_utf8(out).expect("output is UTF-8"))
}

/// Parsed and re-serialized with key order kept (serde_json `preserve_order`).
fn normalize(text: &str) -> String {
    let value: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not valid JSON ({e}): {text}"));
    serde_json::to_string(&value).unwrap()
}

fn sample_json_lines() -> Vec<String> {
    String::from_utf8(fixture("bsondump/testdata/sample.json"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn sample_bson_gives_exactly_the_bytes_bsondump_prints() {
    let expected = fixture("bsondump/testdata/sample.json");
    let stream = fixture("bsondump/testdata/sample.bson");
    let mut out = Vec::new();
    for doc in split_documents(&stream) {
        write_document(doc, Format::Canonical, &mut out).unwrap();
        out.push(b'\n');
    }
    assert_eq!(
        String::from_utf8(out).unwrap(),
        String::from_utf8(expected).unwrap()
    );
}

#[test]
fn sample_bson_relaxed_has_plain_numbers() {
    let stream = fixture("bsondump/testdata/sample.bson");
    let first = split_documents(&stream)[0];
    assert_eq!(
        encode(first, Format::Relaxed).unwrap(),
        r#"{"_id":{"$oid":"546651e74bf6e4cb017c5312"},"a":1.0,"b":"I am a string","c":{"$timestamp":{"t":1415991783,"i":1}},"d":{"$binary":{"base64":"VEVTVCBUM1NU","subType":"00"}}}"#
    );
}

#[test]
fn import_collection_oplog_entry_matches_its_json() {
    let stream = fixture("mongodump/testdata/importCollection.bson");
    let docs = split_documents(&stream);
    assert_eq!(docs.len(), 1);
    let expected = String::from_utf8(fixture("mongodump/testdata/importCollection.json")).unwrap();
    let ours = encode(docs[0], Format::Canonical).unwrap();
    assert_eq!(normalize(&ours), normalize(expected.trim_end()));
}

/// bad_cstring and bad_type are sample.bson with one byte changed in the first document: that
/// document must fail and the other three must still encode to sample.json's lines.
#[test]
fn corrupted_first_document_fails_and_the_rest_still_encode() {
    let lines = sample_json_lines();
    for (file, bad_byte) in [
        ("bsondump/testdata/bad_cstring.bson", 34),
        ("bsondump/testdata/bad_type.bson", 21),
    ] {
        let stream = fixture(file);
        let docs = split_documents(&stream);
        assert_eq!(docs.len(), 4, "{file}");
        let err = encode(docs[0], Format::Canonical).expect_err(file);
        assert!(
            err.offset >= bad_byte,
            "{file}: error reported at byte {} before the corrupted byte {bad_byte}: {err}",
            err.offset
        );
        for (doc, line) in docs[1..].iter().zip(&lines[1..]) {
            assert_eq!(&encode(doc, Format::Canonical).unwrap(), line, "{file}");
        }
    }
    let stream = fixture("bsondump/testdata/bad_type.bson");
    let err = encode(split_documents(&stream)[0], Format::Canonical).unwrap_err();
    assert_eq!(
        err.offset, 21,
        "bad_type: the element with type 0xaa starts at byte 21"
    );
    assert!(err.message.contains("0xaa"), "{err}");
}

#[test]
fn truncated_and_trailing_bytes_fail_only_the_last_piece() {
    let lines = sample_json_lines();

    // partial_file: two whole documents, then 13 bytes of a third that claims 48.
    let stream = fixture("bsondump/testdata/partial_file.bson");
    let docs = split_documents(&stream);
    assert_eq!(docs.len(), 3);
    for (doc, line) in docs[..2].iter().zip(&lines) {
        assert_eq!(&encode(doc, Format::Canonical).unwrap(), line);
    }
    encode(docs[2], Format::Canonical).expect_err("truncated document accepted");

    // invalid_field_name: four whole documents (the second one's `_id` renamed to the dotted key
    // `a.d`, which BSON allows and we pass through), then one stray byte.
    let stream = fixture("bsondump/testdata/invalid_field_name.bson");
    let docs = split_documents(&stream);
    assert_eq!(docs.len(), 5);
    for (i, (doc, line)) in docs[..4].iter().zip(&lines).enumerate() {
        let expected = if i == 1 {
            line.replacen(r#""_id""#, r#""a.d""#, 1)
        } else {
            line.clone()
        };
        assert_eq!(encode(doc, Format::Canonical).unwrap(), expected);
    }
    assert_eq!(docs[4].len(), 1);
    encode(docs[4], Format::Canonical).expect_err("a single stray byte accepted");
}

#[test]
fn random_bytes_are_rejected() {
    let stream = fixture("bsondump/testdata/random_bytes.bson");
    let docs = split_documents(&stream);
    assert_eq!(
        docs.len(),
        1,
        "the first length prefix already exceeds the file"
    );
    let err = encode(docs[0], Format::Canonical).unwrap_err();
    assert_eq!(err.offset, 0, "{err}");
}

#[test]
fn deep_nested_500_levels_encode_without_recursion() {
    let stream = fixture("bsondump/testdata/deep_nested.bson");
    let docs = split_documents(&stream);
    assert_eq!(docs.len(), 1);
    let mut inner = String::from("{}");
    for _ in 0..499 {
        inner = format!(r#"{{"sub":{inner}}}"#);
    }
    let expected = format!(r#"{{"_id":{{"$oid":"54820787e553fb61dfb6293f"}},"sub":{inner}}}"#);
    // Run on a thread with a small stack: the encoder must not recurse per level.
    let doc = docs[0].to_vec();
    let ours = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || encode(&doc, Format::Relaxed).unwrap())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(ours, expected);
}

fn bson_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            bson_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "bson") {
            found.push(path);
        }
    }
}

/// Every document of every well-formed `.bson` fixture (oplogs, time-series buckets, users,
/// indexes…) encodes in both formats to valid JSON, and relaxed differs from canonical only where
/// it should.
#[test]
fn every_well_formed_fixture_document_encodes_to_valid_json() {
    let malformed = [
        "bad_cstring.bson",
        "bad_type.bson",
        "partial_file.bson",
        "random_bytes.bson",
        "invalid_field_name.bson",
        "deep_nested.bson", // valid, but deeper than serde_json parses; covered above
    ];
    let mut files = Vec::new();
    bson_files(&support::mongo_tools(), &mut files);
    files.sort();
    let mut documents = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        if malformed.contains(&name.as_ref()) {
            continue;
        }
        let stream = std::fs::read(file).unwrap();
        for doc in split_documents(&stream) {
            for format in [Format::Canonical, Format::Relaxed] {
                let json = encode(doc, format)
                    .unwrap_or_else(|e| panic!("{}: {format}: {e}", file.display()));
                let value: Value = serde_json::from_str(&json).unwrap_or_else(|e| {
                    panic!("{}: {format}: invalid JSON ({e}): {json}", file.display())
                });
                assert!(value.is_object());
            }
            documents += 1;
        }
    }
    assert!(documents > 1000, "only {documents} fixture documents found");
}

/// Real documents (every type the fixtures have), as mutation seeds for the property tests.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(load_seeds)
}

fn load_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for file in [
        "bsondump/testdata/sample.bson",
        "bsondump/testdata/all_types.bson",
        "bsondump/testdata/all_in_one_doc.bson",
        "mongodump/testdata/importCollection.bson",
    ] {
        let stream = fixture(file);
        seeds.extend(split_documents(&stream).into_iter().map(<[u8]>::to_vec));
    }
    seeds
}

/// The property: no panic; either an error with the output untouched, or valid JSON appended.
fn encode_is_total(doc: &[u8]) -> Result<(), TestCaseError> {
    for format in [Format::Canonical, Format::Relaxed] {
        let mut out = b"prefix".to_vec();
        match write_document(doc, format, &mut out) {
            Ok(()) => {
                let json = std::str::from_utf8(&out[6..])
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                // serde_json stops at 128 levels; random input rarely nests that deep, and a
                // recursion-limit error is not a syntax error in our output.
                if let Err(e) = serde_json::from_str::<Value>(json) {
                    prop_assert!(
                        e.to_string().contains("recursion limit"),
                        "invalid JSON ({e}): {json}"
                    );
                }
            }
            Err(e) => {
                prop_assert_eq!(&out[..], b"prefix");
                prop_assert!(e.offset <= doc.len());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        encode_is_total(&bytes)?;
    }

    /// Random bytes behind a matching length prefix and terminator, so the walker gets past the
    /// envelope checks and into the elements.
    #[test]
    fn random_bodies_in_a_valid_envelope_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut doc = ((body.len() + 5) as i32).to_le_bytes().to_vec();
        doc.extend_from_slice(&body);
        doc.push(0);
        encode_is_total(&doc)?;
    }

    #[test]
    fn mutated_real_documents_never_panic(
        seed in 0usize..1000,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let seeds = seeds();
        let mut doc = seeds[seed % seeds.len()].clone();
        for (at, byte) in edits {
            let at = at % doc.len();
            doc[at] = byte;
        }
        if let Some(cut) = cut {
            doc.truncate(cut % (doc.len() + 1));
        }
        encode_is_total(&doc)?;
    }
}
