//! The BSON corpus (MongoDB specifications, `../shared/data/bson-corpus/`) against our encoder.
//!
//! For every `valid` case: canonical BSON (and degenerate and converted BSON when present) encoded
//! as canonical Extended JSON must equal `canonical_extjson`, and as relaxed must equal
//! `relaxed_extjson`. Comparison is on parsed JSON with key order significant (both sides are
//! re-serialized with serde_json's `preserve_order`), which normalizes whitespace, escapes and
//! number spelling, as the corpus README asks. Cases without `relaxed_extjson` are compared with
//! the canonical text relaxed by the spec's conversion table at the JSON level (an oracle that does
//! not share code with the encoder). Every `decodeErrors` case must be rejected, in both formats,
//! leaving the output buffer untouched.
//!
//! Byte-exactness: the corpus text is also minified (whitespace outside strings removed) and
//! compared byte for byte; every case that differs must differ only for a documented reason (the
//! corpus writes non-ASCII characters as `\uXXXX` escapes where we write UTF-8, or spells a number
//! differently than the Go driver does).

use std::path::PathBuf;

use serde_json::Value;
use snapex::extjson::{Format, write_document};

use crate::support;

fn corpus_dir() -> PathBuf {
    support::shared_data().join("bson-corpus")
}

fn load_corpus() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("corpus file is readable");
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                serde_json::from_str(&text).expect("corpus file is JSON"),
            )
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// Parsed and re-serialized: whitespace, escapes and number spelling normalized, key order kept.
fn normalize(text: &str) -> String {
    let value: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not valid JSON ({e}): {text}"));
    serde_json::to_string(&value).unwrap()
}

fn encode(bson: &[u8], format: Format) -> String {
    let mut out = Vec::new();
    write_document(bson, format, &mut out)
        .unwrap_or_else(|e| panic!("valid BSON rejected in {format}: {e}"));
    String::from_utf8(out).expect("output is UTF-8")
}

/// Removes whitespace outside JSON strings.
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// The spec's canonical → relaxed conversion, applied to parsed JSON.
fn relax(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(relax).collect()),
        Value::Object(map) => {
            if map.len() == 1 {
                let (key, inner) = map.iter().next().unwrap();
                match (key.as_str(), inner) {
                    ("$numberInt" | "$numberLong", Value::String(s)) => {
                        return Value::Number(s.parse::<i64>().expect("integer").into());
                    }
                    ("$numberDouble", Value::String(s)) => {
                        let v: f64 = s.parse().expect("double");
                        if v.is_finite() {
                            return Value::from(v);
                        }
                    }
                    ("$date", Value::Object(date)) => {
                        if let Some(Value::String(ms)) = date.get("$numberLong") {
                            let ms: i64 = ms.parse().expect("millis");
                            if (0..=253_402_300_799_999).contains(&ms) {
                                let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
                                let iso = if ms % 1000 == 0 {
                                    t.format("%Y-%m-%dT%H:%M:%SZ")
                                } else {
                                    t.format("%Y-%m-%dT%H:%M:%S%.3fZ")
                                };
                                return serde_json::json!({ "$date": iso.to_string() });
                            }
                        }
                        // Dates outside 1970..=9999 stay canonical.
                        return Value::Object(map);
                    }
                    _ => {}
                }
            }
            Value::Object(map.into_iter().map(|(k, v)| (k, relax(v))).collect())
        }
        other => other,
    }
}

/// The corpus text with its `\uXXXX` escapes of non-ASCII characters replaced by the characters
/// themselves, which is how we (and bsondump) write them.
fn with_utf8_instead_of_escapes(corpus: &str) -> String {
    let chars: Vec<char> = corpus.chars().collect();
    let mut out = String::with_capacity(corpus.len());
    let mut i = 0;
    let hex4 = |at: usize| -> Option<u32> {
        let digits: String = chars.get(at..at + 4)?.iter().collect();
        u32::from_str_radix(&digits, 16).ok()
    };
    while i < chars.len() {
        if chars[i] == '\\' {
            if chars.get(i + 1) == Some(&'u')
                && let Some(unit) = hex4(i + 2)
            {
                if (0xD800..0xDC00).contains(&unit)
                    && chars.get(i + 6) == Some(&'\\')
                    && let Some(low) = hex4(i + 8)
                {
                    let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    out.push(char::from_u32(c).unwrap());
                    i += 12;
                    continue;
                }
                if unit >= 0x80 && unit != 0x2028 && unit != 0x2029 {
                    out.push(char::from_u32(unit).unwrap());
                    i += 6;
                    continue;
                }
            }
            out.push(chars[i]);
            if let Some(&next) = chars.get(i + 1) {
                out.push(next);
            }
            i += 2;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Why a case's text may legitimately differ from the corpus's byte for byte: only in how
/// non-ASCII characters are written.
fn textual_difference_is_explained(ours: &str, corpus: &str) -> bool {
    ours == with_utf8_instead_of_escapes(corpus)
}

#[derive(Default)]
struct Tally {
    valid: usize,
    conversions: usize,
    byte_exact: usize,
    explained: Vec<String>,
    decode_errors: usize,
}

fn check(
    tally: &mut Tally,
    label: &str,
    bson: &[u8],
    canonical: &str,
    relaxed: Option<&str>,
    exact: bool,
) {
    let ours = encode(bson, Format::Canonical);
    assert_eq!(
        normalize(&ours),
        normalize(canonical),
        "{label}: canonical output differs\n ours:   {ours}\n corpus: {canonical}"
    );
    let expected_relaxed = match relaxed {
        Some(text) => normalize(text),
        None => serde_json::to_string(&relax(serde_json::from_str(canonical).unwrap())).unwrap(),
    };
    let ours_relaxed = encode(bson, Format::Relaxed);
    assert_eq!(
        normalize(&ours_relaxed),
        expected_relaxed,
        "{label}: relaxed output differs\n ours:   {ours_relaxed}\n corpus: {relaxed:?}"
    );
    if exact {
        for (ours, corpus) in [(ours, Some(canonical)), (ours_relaxed, relaxed)] {
            let Some(corpus) = corpus else { continue };
            let corpus = minify(corpus);
            if ours == corpus {
                tally.byte_exact += 1;
            } else {
                assert!(
                    textual_difference_is_explained(&ours, &corpus),
                    "{label}: unexplained textual difference\n ours:   {ours}\n corpus: {corpus}"
                );
                tally
                    .explained
                    .push(format!("{label}: {ours}  vs  {corpus}"));
            }
        }
    }
}

#[test]
fn every_valid_case_encodes_to_the_corpus_extended_json_and_every_decode_error_is_rejected() {
    let mut tally = Tally::default();
    for (file, suite) in load_corpus() {
        for case in suite["valid"].as_array().into_iter().flatten() {
            let label = format!("{file}: {}", case["description"].as_str().unwrap());
            let canonical = case["canonical_extjson"].as_str().unwrap();
            let relaxed = case["relaxed_extjson"].as_str();
            let cb = hex(case["canonical_bson"].as_str().unwrap());
            check(&mut tally, &label, &cb, canonical, relaxed, true);
            if let Some(db) = case["degenerate_bson"].as_str() {
                check(
                    &mut tally,
                    &format!("{label} (degenerate bson)"),
                    &hex(db),
                    canonical,
                    relaxed,
                    false,
                );
            }
            if let (Some(b), Some(j)) = (
                case["converted_bson"].as_str(),
                case["converted_extjson"].as_str(),
            ) {
                check(
                    &mut tally,
                    &format!("{label} (converted)"),
                    &hex(b),
                    j,
                    None,
                    false,
                );
                tally.conversions += 1;
            }
            tally.valid += 1;
        }
        for case in suite["decodeErrors"].as_array().into_iter().flatten() {
            let label = format!("{file}: {}", case["description"].as_str().unwrap());
            let bson = hex(case["bson"].as_str().unwrap());
            for format in [Format::Canonical, Format::Relaxed] {
                let mut out = b"previous line\n".to_vec();
                let result = write_document(&bson, format, &mut out);
                let err = result.expect_err(&format!("{label}: invalid BSON accepted in {format}"));
                assert!(
                    err.offset <= bson.len(),
                    "{label}: error offset {} out of range",
                    err.offset
                );
                assert_eq!(
                    out, b"previous line\n",
                    "{label}: output not restored after error"
                );
            }
            tally.decode_errors += 1;
        }
    }
    // The corpus README's totals: nothing may be skipped silently.
    assert_eq!(tally.valid, 728, "valid cases run");
    assert_eq!(tally.decode_errors, 75, "decode error cases run");
    assert!(tally.conversions > 0);
    eprintln!(
        "bson corpus: {} valid, {} conversions, {} decode errors; {} outputs byte-identical to the corpus text, {} differ only by \\u escapes:",
        tally.valid,
        tally.conversions,
        tally.decode_errors,
        tally.byte_exact,
        tally.explained.len()
    );
    for line in &tally.explained {
        eprintln!("  {line}");
    }
}

#[test]
fn truncating_any_valid_case_is_rejected() {
    // Every strict prefix of a valid document is invalid BSON (its length field no longer
    // matches); this checks that the encoder never reads past what it was given.
    let mut checked = 0;
    for (_, suite) in load_corpus() {
        for case in suite["valid"].as_array().into_iter().flatten() {
            let cb = hex(case["canonical_bson"].as_str().unwrap());
            for cut in 0..cb.len() {
                let mut out = Vec::new();
                assert!(write_document(&cb[..cut], Format::Canonical, &mut out).is_err());
                assert!(out.is_empty());
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000);
}
