//! BSON → MongoDB Extended JSON v2, canonical or relaxed, written straight from the BSON bytes.
//!
//! This is the exporter's hot loop, so it does not build a document tree: [`write_document`]
//! walks the BSON bytes once, validating as it goes, and appends compact JSON (no whitespace,
//! fields in stored order) to the caller's buffer. No allocation happens per value; nesting is
//! tracked on an explicit stack (inline for the first levels, on the heap beyond), so a hostile
//! 16 MB document nested millions of levels deep costs memory proportional to its size and
//! never overflows the thread's stack.
//!
//! Validation is complete: the document length and terminators, every element's size against its
//! container, known element types, UTF-8 in strings and keys, boolean bytes, binary subtype 2's
//! inner length and code-with-scope's nested sizes. Any problem yields an [`EncodeError`] with the
//! byte offset, and the output buffer is left as it was.
//!
//! The text follows the Extended JSON v2 spec and agrees with every valid case of MongoDB's BSON
//! corpus; where the spec leaves a choice (double spelling, string escapes) it matches what the
//! MongoDB Go driver — and so `bsondump` — prints, so canonical output is byte-identical to
//! `bsondump`'s. Deliberate differences from the Go driver: keys and DBPointer namespaces are
//! escaped (the driver writes them raw, which can produce invalid JSON), and relaxed dates always
//! have three fractional digits when the milliseconds are non-zero, as the spec says (the driver
//! trims trailing zeros).

mod number;
mod text;

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;

/// The Extended JSON flavour to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Type-preserving: numbers and dates in `$numberInt`/`$numberLong`/`$numberDouble`/`$date`
    /// wrappers. Lossless; the export default.
    #[default]
    Canonical,
    /// Readable: int32, int64 and finite doubles as JSON numbers, dates between 1970 and 9999 as
    /// ISO-8601 strings.
    Relaxed,
}

impl Format {
    /// The lowercase name used in configuration and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Canonical => "canonical",
            Format::Relaxed => "relaxed",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error from parsing a [`Format`] name.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("unknown extended json format {0:?}, expected \"canonical\" or \"relaxed\"")]
pub struct ParseFormatError(pub String);

impl FromStr for Format {
    type Err = ParseFormatError;

    /// Accepts `canonical` and `relaxed`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("canonical") {
            Ok(Format::Canonical)
        } else if s.eq_ignore_ascii_case("relaxed") {
            Ok(Format::Relaxed)
        } else {
            Err(ParseFormatError(s.to_owned()))
        }
    }
}

/// A BSON document that cannot be encoded because it is malformed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("invalid BSON at byte {offset} of the document: {message}")]
pub struct EncodeError {
    /// Byte offset, from the start of the document, where the problem was found.
    pub offset: usize,
    /// What is wrong, lowercase, no trailing punctuation.
    pub message: String,
}

#[cold]
#[inline(never)]
fn invalid(offset: usize, message: impl Into<String>) -> EncodeError {
    EncodeError {
        offset,
        message: message.into(),
    }
}

/// Appends the Extended JSON of one BSON document (no trailing newline) to `out`. Validates the
/// whole document (lengths, terminators, UTF-8 strings and keys, known element types, sub-document
/// sizes, binary subtype lengths, etc.); on error `out` is truncated back to its original length.
pub fn write_document(doc: &[u8], format: Format, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let original_len = out.len();
    // Canonical JSON is about 1.45 × the BSON size on typical data: one reservation up front
    // avoids most regrowth.
    out.reserve(doc.len() + doc.len() / 2 + 16);
    let result = match format {
        Format::Canonical => encode::<true>(doc, out),
        Format::Relaxed => encode::<false>(doc, out),
    };
    if result.is_err() {
        out.truncate(original_len);
    }
    result
}

/// Convenience for metadata files: encode a bson::Document (serialize to bytes, then write_document).
pub fn write_bson_document(
    doc: &bson::Document,
    format: Format,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let bytes = doc
        .to_vec()
        .map_err(|e| invalid(0, format!("cannot serialize document: {e}")))?;
    write_document(&bytes, format, out)
}

/// Appends the Extended JSON of one BSON value (element type `tag`, value bytes `value` as they
/// follow the key in a document) to `out`: the text the value has inside [`write_document`]'s
/// output. Used where a value stands alone (the JSON columns of a Parquet export). The value is
/// wrapped in a one-field document and encoded by the same walker, so the text is identical and
/// validated the same way; on error `out` is left as it was.
pub fn write_value(
    tag: u8,
    value: &[u8],
    format: Format,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    // {len}{tag}"v\0"{value}\0 encodes as {"v":<value>}.
    let len = 4 + 1 + 2 + value.len() + 1;
    let len32 = i32::try_from(len).map_err(|_| invalid(0, "value too large"))?;
    let mut doc = Vec::with_capacity(len);
    doc.extend_from_slice(&len32.to_le_bytes());
    doc.push(tag);
    doc.extend_from_slice(b"v\0");
    doc.extend_from_slice(value);
    doc.push(0);
    let start = out.len();
    write_document(&doc, format, out)?;
    // Drop the `{"v":` prefix and the closing `}`.
    let prefix = br#"{"v":"#.len();
    if out.len() < start + prefix + 1 {
        out.truncate(start);
        return Err(invalid(0, "value did not encode"));
    }
    out.pop();
    out.drain(start..start + prefix);
    Ok(())
}

/// The string form of a Decimal128 in BSON byte order (`1.50`, `-0`, `1E+3`, `NaN`): the text
/// inside `{"$numberDecimal": …}`.
pub fn write_decimal128_text(bytes: &[u8; 16], out: &mut Vec<u8>) {
    number::write_decimal128(bytes, out);
}

/// What the innermost open container is, which decides how it is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Document,
    Array,
    /// The scope document of a code-with-scope value: closes its `$scope` and the wrapper.
    Scope,
}

/// An open container: the offset of its terminating NUL byte and its kind.
#[derive(Debug, Clone, Copy)]
struct Frame {
    end: u32,
    kind: Kind,
}

/// Stack of enclosing containers. Typical documents nest a few levels, which fit in the inline
/// array with no allocation; deeper ones spill to the heap. Depth is bounded by the document size
/// (every level costs at least 7 bytes of BSON), so the heap part is bounded too.
struct FrameStack {
    inline: [Frame; INLINE_FRAMES],
    len: usize,
    spill: Vec<Frame>,
}

const INLINE_FRAMES: usize = 32;

impl FrameStack {
    fn new() -> Self {
        FrameStack {
            inline: [Frame {
                end: 0,
                kind: Kind::Document,
            }; INLINE_FRAMES],
            len: 0,
            spill: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, frame: Frame) {
        if self.len < INLINE_FRAMES {
            self.inline[self.len] = frame;
            self.len += 1;
        } else {
            self.spill.push(frame);
        }
    }

    #[inline]
    fn pop(&mut self) -> Option<Frame> {
        if let Some(frame) = self.spill.pop() {
            return Some(frame);
        }
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(self.inline[self.len])
    }
}

/// Reads a little-endian i32 at `pos`, which must lie within `body`.
#[inline(always)]
fn read_i32(body: &[u8], pos: usize, what: &str) -> Result<i32, EncodeError> {
    match body.get(pos..).and_then(|rest| rest.first_chunk::<4>()) {
        Some(bytes) => Ok(i32::from_le_bytes(*bytes)),
        None => Err(truncated(pos, what)),
    }
}

#[inline(always)]
fn read_8(body: &[u8], pos: usize, what: &str) -> Result<[u8; 8], EncodeError> {
    match body.get(pos..).and_then(|rest| rest.first_chunk::<8>()) {
        Some(bytes) => Ok(*bytes),
        None => Err(truncated(pos, what)),
    }
}

#[cold]
#[inline(never)]
fn truncated(pos: usize, what: &str) -> EncodeError {
    invalid(pos, format!("{what} runs past the end of its document"))
}

#[cold]
#[inline(never)]
fn bad_utf8(pos: usize, what: &str) -> EncodeError {
    invalid(pos, format!("{what} is not valid UTF-8"))
}

/// Reads a BSON string (int32 length including the NUL, bytes, NUL) at `pos`; returns its bytes
/// and the offset after it.
#[inline(always)]
fn read_string<'a>(
    body: &'a [u8],
    pos: usize,
    what: &str,
) -> Result<(&'a [u8], usize), EncodeError> {
    let len = read_i32(body, pos, what)?;
    if len < 1 {
        return Err(invalid(pos, format!("{what} has invalid length {len}")));
    }
    let start = pos + 4;
    let end = start + len as usize;
    match body.get(start..end) {
        Some([bytes @ .., 0]) => Ok((bytes, end)),
        Some(_) => Err(invalid(end - 1, format!("{what} is not NUL-terminated"))),
        None => Err(truncated(pos, what)),
    }
}

/// Writes a JSON string for BSON string bytes found at `pos` (for error offsets).
#[inline(always)]
fn write_str(bytes: &[u8], pos: usize, what: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    text::write_string(bytes, out).map_err(|e| bad_utf8(pos + 4 + e.offset, what))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline(always)]
fn write_object_id(oid: &[u8], out: &mut Vec<u8>) {
    let mut hex = [0u8; 24];
    for (i, &b) in oid.iter().take(12).enumerate() {
        hex[2 * i] = HEX[(b >> 4) as usize];
        hex[2 * i + 1] = HEX[(b & 0xF) as usize];
    }
    out.extend_from_slice(br#"{"$oid":""#);
    out.extend_from_slice(&hex);
    out.extend_from_slice(br#""}"#);
}

fn write_binary(data: &[u8], subtype: u8, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.extend_from_slice(br#"{"$binary":{"base64":""#);
    let start = out.len();
    let encoded_len = data.len().div_ceil(3) * 4;
    out.resize(start + encoded_len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(data, &mut out[start..])
        .map_err(|e| invalid(0, format!("base64 encoding failed: {e}")))?;
    out.truncate(start + written);
    out.extend_from_slice(br#"","subType":""#);
    out.extend_from_slice(&[HEX[(subtype >> 4) as usize], HEX[(subtype & 0xF) as usize]]);
    out.extend_from_slice(br#""}}"#);
    Ok(())
}

/// Writes regex options sorted alphabetically, as the Extended JSON spec requires (the BSON spec
/// asks writers to store them sorted, but old or foreign writers may not have).
fn write_regex_options(
    options: &text::CString<'_>,
    pos: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let bytes = options.bytes;
    if bytes.windows(2).all(|w| w[0] <= w[1]) {
        return text::write_cstring(options, out)
            .map_err(|e| bad_utf8(pos + e.offset, "regex options"));
    }
    if bytes.is_ascii() {
        let mut sorted = bytes.to_vec();
        sorted.sort_unstable();
        return text::write_string(&sorted, out)
            .map_err(|e| bad_utf8(pos + e.offset, "regex options"));
    }
    let Ok(s) = std::str::from_utf8(bytes) else {
        return Err(bad_utf8(pos, "regex options"));
    };
    let mut chars: Vec<char> = s.chars().collect();
    chars.sort_unstable();
    let sorted: String = chars.into_iter().collect();
    text::write_string(sorted.as_bytes(), out)
        .map_err(|e| bad_utf8(pos + e.offset, "regex options"))
}

/// The encoder. `CANONICAL` is a const parameter so the per-value format branches vanish.
fn encode<const CANONICAL: bool>(doc: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let declared = read_i32(doc, 0, "document length")?;
    if declared < 5 {
        return Err(invalid(
            0,
            format!("document length {declared} is below the minimum of 5"),
        ));
    }
    if declared as usize != doc.len() {
        return Err(invalid(
            0,
            format!(
                "document length {declared} does not match its {} bytes",
                doc.len()
            ),
        ));
    }
    if doc[doc.len() - 1] != 0 {
        return Err(invalid(doc.len() - 1, "document is not NUL-terminated"));
    }

    out.push(b'{');
    let mut stack = FrameStack::new();
    // The innermost open container, kept in locals: `end` is the offset of its terminating NUL.
    let mut end = doc.len() - 1;
    let mut kind = Kind::Document;
    let mut pos = 4usize;

    loop {
        if pos == end {
            match kind {
                Kind::Document => out.push(b'}'),
                Kind::Array => out.push(b']'),
                Kind::Scope => out.extend_from_slice(b"}}"),
            }
            pos += 1;
            match stack.pop() {
                Some(parent) => {
                    end = parent.end as usize;
                    kind = parent.kind;
                    continue;
                }
                None => break,
            }
        }
        // Every value of this container lies strictly before its terminator.
        let body = &doc[..end];
        let element = pos;
        let tag = body[pos];
        if tag == 0 {
            return Err(invalid(
                pos,
                "end-of-document marker before the end given by the document length",
            ));
        }
        pos += 1;

        let Some(key) = text::scan_cstring(&body[pos..]) else {
            return Err(invalid(pos, "element key is not NUL-terminated"));
        };
        // A container's first element follows its opening bracket; all others need a comma.
        if !matches!(out.last(), Some(b'{' | b'[')) {
            out.push(b',');
        }
        if kind == Kind::Array {
            // Array keys should be "0", "1", …; like the corpus and bsondump we ignore them.
            text::check_cstring(&key).map_err(|e| bad_utf8(pos + e.offset, "element key"))?;
        } else {
            text::write_cstring(&key, out).map_err(|e| bad_utf8(pos + e.offset, "element key"))?;
            out.push(b':');
        }
        pos += key.bytes.len() + 1;

        match tag {
            // double
            0x01 => {
                let v = f64::from_le_bytes(read_8(body, pos, "double")?);
                number::write_double(v, CANONICAL, out);
                pos += 8;
            }
            // string
            0x02 => {
                let (s, next) = read_string(body, pos, "string")?;
                write_str(s, pos, "string", out)?;
                pos = next;
            }
            // embedded document, array
            0x03 | 0x04 => {
                let len = read_i32(body, pos, "embedded document")?;
                if len < 5 {
                    return Err(invalid(
                        pos,
                        format!("embedded document length {len} is below the minimum of 5"),
                    ));
                }
                let sub_end = pos + len as usize - 1;
                if sub_end >= end {
                    return Err(truncated(pos, "embedded document"));
                }
                if doc[sub_end] != 0 {
                    return Err(invalid(sub_end, "embedded document is not NUL-terminated"));
                }
                stack.push(Frame {
                    end: end as u32,
                    kind,
                });
                end = sub_end;
                if tag == 0x03 {
                    kind = Kind::Document;
                    out.push(b'{');
                } else {
                    kind = Kind::Array;
                    out.push(b'[');
                }
                pos += 4;
            }
            // binary
            0x05 => {
                let len = read_i32(body, pos, "binary")?;
                if len < 0 {
                    return Err(invalid(pos, format!("binary has negative length {len}")));
                }
                let data_start = pos + 5;
                let data_end = data_start + len as usize;
                let Some(data) = body.get(data_start..data_end) else {
                    return Err(truncated(pos, "binary"));
                };
                let subtype = body[pos + 4];
                let payload = if subtype == 0x02 {
                    // The old binary subtype repeats the length inside the payload.
                    let inner =
                        read_i32(data, 0, "binary subtype 2 inner length").map_err(|_| {
                            invalid(
                                data_start,
                                "binary subtype 2 is shorter than its inner length",
                            )
                        })?;
                    if i64::from(inner) != i64::from(len) - 4 {
                        return Err(invalid(
                            data_start,
                            format!(
                                "binary subtype 2 inner length {inner} does not match its outer length {len}"
                            ),
                        ));
                    }
                    &data[4..]
                } else {
                    data
                };
                write_binary(payload, subtype, out)?;
                pos = data_end;
            }
            // undefined (deprecated)
            0x06 => out.extend_from_slice(br#"{"$undefined":true}"#),
            // ObjectId
            0x07 => {
                let Some(oid) = body.get(pos..pos + 12) else {
                    return Err(truncated(pos, "objectid"));
                };
                write_object_id(oid, out);
                pos += 12;
            }
            // boolean
            0x08 => {
                match body.get(pos) {
                    Some(0) => out.extend_from_slice(b"false"),
                    Some(1) => out.extend_from_slice(b"true"),
                    Some(b) => return Err(invalid(pos, format!("boolean has invalid value {b}"))),
                    None => return Err(truncated(pos, "boolean")),
                }
                pos += 1;
            }
            // UTC datetime
            0x09 => {
                let ms = i64::from_le_bytes(read_8(body, pos, "datetime")?);
                number::write_date(ms, CANONICAL, out);
                pos += 8;
            }
            // null
            0x0A => out.extend_from_slice(b"null"),
            // regular expression
            0x0B => {
                let Some(pattern) = text::scan_cstring(&body[pos..]) else {
                    return Err(invalid(pos, "regex pattern is not NUL-terminated"));
                };
                out.extend_from_slice(br#"{"$regularExpression":{"pattern":"#);
                text::write_cstring(&pattern, out)
                    .map_err(|e| bad_utf8(pos + e.offset, "regex pattern"))?;
                pos += pattern.bytes.len() + 1;
                let Some(options) = text::scan_cstring(&body[pos..]) else {
                    return Err(invalid(pos, "regex options are not NUL-terminated"));
                };
                out.extend_from_slice(br#","options":"#);
                write_regex_options(&options, pos, out)?;
                out.extend_from_slice(b"}}");
                pos += options.bytes.len() + 1;
            }
            // DBPointer (deprecated)
            0x0C => {
                let (ns, next) = read_string(body, pos, "dbpointer namespace")?;
                let Some(oid) = body.get(next..next + 12) else {
                    return Err(truncated(next, "dbpointer objectid"));
                };
                out.extend_from_slice(br#"{"$dbPointer":{"$ref":"#);
                write_str(ns, pos, "dbpointer namespace", out)?;
                out.extend_from_slice(br#","$id":"#);
                write_object_id(oid, out);
                out.extend_from_slice(b"}}");
                pos = next + 12;
            }
            // JavaScript code
            0x0D => {
                let (s, next) = read_string(body, pos, "code")?;
                out.extend_from_slice(br#"{"$code":"#);
                write_str(s, pos, "code", out)?;
                out.push(b'}');
                pos = next;
            }
            // symbol (deprecated)
            0x0E => {
                let (s, next) = read_string(body, pos, "symbol")?;
                out.extend_from_slice(br#"{"$symbol":"#);
                write_str(s, pos, "symbol", out)?;
                out.push(b'}');
                pos = next;
            }
            // JavaScript code with scope (deprecated): int32 total, string, document
            0x0F => {
                let total = read_i32(body, pos, "code with scope")?;
                // total length + string length + NUL + empty document
                if total < 14 {
                    return Err(invalid(
                        pos,
                        format!("code with scope length {total} is below the minimum of 14"),
                    ));
                }
                let cws_end = pos + total as usize;
                let Some(cws) = body.get(..cws_end) else {
                    return Err(truncated(pos, "code with scope"));
                };
                let (code, scope_start) = read_string(cws, pos + 4, "code with scope code")?;
                let scope_len = read_i32(cws, scope_start, "code with scope scope")?;
                if scope_len < 5 || scope_start + scope_len as usize != cws_end {
                    return Err(invalid(
                        scope_start,
                        format!(
                            "code with scope scope length {scope_len} does not fill the value's length {total}"
                        ),
                    ));
                }
                if doc[cws_end - 1] != 0 {
                    return Err(invalid(
                        cws_end - 1,
                        "code with scope scope is not NUL-terminated",
                    ));
                }
                out.extend_from_slice(br#"{"$code":"#);
                write_str(code, pos + 4, "code with scope code", out)?;
                out.extend_from_slice(br#","$scope":{"#);
                stack.push(Frame {
                    end: end as u32,
                    kind,
                });
                end = cws_end - 1;
                kind = Kind::Scope;
                pos = scope_start + 4;
            }
            // int32
            0x10 => {
                let v = read_i32(body, pos, "int32")?;
                if CANONICAL {
                    out.extend_from_slice(br#"{"$numberInt":""#);
                    number::write_i64(i64::from(v), out);
                    out.extend_from_slice(br#""}"#);
                } else {
                    number::write_i64(i64::from(v), out);
                }
                pos += 4;
            }
            // timestamp: increment in the low 4 bytes, seconds in the high 4
            0x11 => {
                let raw = read_8(body, pos, "timestamp")?;
                let increment = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
                let seconds = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]);
                out.extend_from_slice(br#"{"$timestamp":{"t":"#);
                number::write_u32(seconds, out);
                out.extend_from_slice(br#","i":"#);
                number::write_u32(increment, out);
                out.extend_from_slice(b"}}");
                pos += 8;
            }
            // int64
            0x12 => {
                let v = i64::from_le_bytes(read_8(body, pos, "int64")?);
                if CANONICAL {
                    out.extend_from_slice(br#"{"$numberLong":""#);
                    number::write_i64(v, out);
                    out.extend_from_slice(br#""}"#);
                } else {
                    number::write_i64(v, out);
                }
                pos += 8;
            }
            // decimal128
            0x13 => {
                let Some(bytes) = body.get(pos..).and_then(|rest| rest.first_chunk::<16>()) else {
                    return Err(truncated(pos, "decimal128"));
                };
                out.extend_from_slice(br#"{"$numberDecimal":""#);
                number::write_decimal128(bytes, out);
                out.extend_from_slice(br#""}"#);
                pos += 16;
            }
            0x7F => out.extend_from_slice(br#"{"$maxKey":1}"#),
            0xFF => out.extend_from_slice(br#"{"$minKey":1}"#),
            other => {
                return Err(invalid(
                    element,
                    format!("unknown element type 0x{other:02x}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a BSON document from raw element bytes (type, key, value), adding length and NUL.
    fn doc(elements: &[u8]) -> Vec<u8> {
        let mut d = ((elements.len() + 5) as i32).to_le_bytes().to_vec();
        d.extend_from_slice(elements);
        d.push(0);
        d
    }

    fn element(tag: u8, key: &str, value: &[u8]) -> Vec<u8> {
        let mut e = vec![tag];
        e.extend_from_slice(key.as_bytes());
        e.push(0);
        e.extend_from_slice(value);
        e
    }

    fn string_value(s: &[u8]) -> Vec<u8> {
        let mut v = ((s.len() + 1) as i32).to_le_bytes().to_vec();
        v.extend_from_slice(s);
        v.push(0);
        v
    }

    fn encode(d: &[u8], format: Format) -> Result<String, EncodeError> {
        let mut out = Vec::new();
        write_document(d, format, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn format_parses_and_displays_its_names() {
        assert_eq!("canonical".parse::<Format>(), Ok(Format::Canonical));
        assert_eq!("relaxed".parse::<Format>(), Ok(Format::Relaxed));
        assert_eq!("Relaxed".parse::<Format>(), Ok(Format::Relaxed));
        assert!("legacy".parse::<Format>().is_err());
        assert_eq!(Format::Canonical.to_string(), "canonical");
        assert_eq!(Format::Relaxed.to_string(), "relaxed");
        assert_eq!(Format::default(), Format::Canonical);
    }

    #[test]
    fn numbers_differ_between_canonical_and_relaxed() {
        let mut e = element(0x10, "i", &7i32.to_le_bytes());
        e.extend(element(0x12, "l", &(-8i64).to_le_bytes()));
        e.extend(element(0x01, "d", &0.5f64.to_le_bytes()));
        e.extend(element(0x09, "t", &1_000i64.to_le_bytes()));
        let d = doc(&e);
        assert_eq!(
            encode(&d, Format::Canonical).unwrap(),
            r#"{"i":{"$numberInt":"7"},"l":{"$numberLong":"-8"},"d":{"$numberDouble":"0.5"},"t":{"$date":{"$numberLong":"1000"}}}"#
        );
        assert_eq!(
            encode(&d, Format::Relaxed).unwrap(),
            r#"{"i":7,"l":-8,"d":0.5,"t":{"$date":"1970-01-01T00:00:01Z"}}"#
        );
    }

    #[test]
    fn output_is_appended_and_restored_on_error() {
        let good = doc(&element(0x08, "b", &[1]));
        let bad = doc(&element(0x08, "b", &[2]));
        let mut out = b"{\"earlier\":1}\n".to_vec();
        write_document(&good, Format::Canonical, &mut out).unwrap();
        assert_eq!(out, b"{\"earlier\":1}\n{\"b\":true}");
        let before = out.clone();
        let err = write_document(&bad, Format::Canonical, &mut out).unwrap_err();
        assert_eq!(out, before);
        assert_eq!(err.offset, 7);
        assert_eq!(
            err.to_string(),
            "invalid BSON at byte 7 of the document: boolean has invalid value 2"
        );
    }

    #[test]
    fn keys_are_escaped_and_array_keys_ignored() {
        let mut array = element(0x10, "7", &1i32.to_le_bytes());
        array.extend(element(0x0A, "whatever", &[]));
        let mut e = element(0x04, "a\"\n\u{e9}", &doc(&array));
        e.extend(element(
            0x02,
            "s",
            &string_value("tab\there \u{2028}".as_bytes()),
        ));
        assert_eq!(
            encode(&doc(&e), Format::Relaxed).unwrap(),
            "{\"a\\\"\\n\u{e9}\":[1,null],\"s\":\"tab\\there \\u2028\"}"
        );
    }

    #[test]
    fn invalid_utf8_in_keys_and_strings_is_rejected_with_its_offset() {
        let mut e = vec![0x0A, b'k', 0xE9, 0];
        assert_eq!(encode(&doc(&e), Format::Canonical).unwrap_err().offset, 6);
        e = element(0x02, "s", &string_value(b"ok\xff"));
        let err = encode(&doc(&e), Format::Canonical).unwrap_err();
        assert_eq!(
            (err.offset, err.message.as_str()),
            (13, "string is not valid UTF-8")
        );
        // Array index keys are not written but are still checked.
        let inner = doc(&[0x0A, 0xFF, 0]);
        assert!(encode(&doc(&element(0x04, "a", &inner)), Format::Canonical).is_err());
    }

    #[test]
    fn regex_options_are_sorted() {
        let mut value = b"a/b\0".to_vec();
        value.extend_from_slice(b"xsmi\0");
        assert_eq!(
            encode(&doc(&element(0x0B, "r", &value)), Format::Canonical).unwrap(),
            r#"{"r":{"$regularExpression":{"pattern":"a/b","options":"imsx"}}}"#
        );
    }

    #[test]
    fn binary_subtype_2_drops_its_inner_length_and_checks_it() {
        let mut value = 6i32.to_le_bytes().to_vec();
        value.push(0x02);
        value.extend_from_slice(&2i32.to_le_bytes());
        value.extend_from_slice(&[0xFF, 0xFF]);
        assert_eq!(
            encode(&doc(&element(0x05, "x", &value)), Format::Canonical).unwrap(),
            r#"{"x":{"$binary":{"base64":"//8=","subType":"02"}}}"#
        );
        value[5] = 3;
        assert!(encode(&doc(&element(0x05, "x", &value)), Format::Canonical).is_err());
    }

    #[test]
    fn code_with_scope_nests_its_scope_document() {
        let scope = doc(&element(
            0x03,
            "inner",
            &doc(&element(0x10, "x", &1i32.to_le_bytes())),
        ));
        let code = string_value(b"f()");
        let mut value = ((4 + code.len() + scope.len()) as i32)
            .to_le_bytes()
            .to_vec();
        value.extend_from_slice(&code);
        value.extend_from_slice(&scope);
        let mut e = element(0x0F, "c", &value);
        e.extend(element(0x7F, "max", &[]));
        assert_eq!(
            encode(&doc(&e), Format::Relaxed).unwrap(),
            r#"{"c":{"$code":"f()","$scope":{"inner":{"x":1}}},"max":{"$maxKey":1}}"#
        );
    }

    #[test]
    fn every_element_type_has_its_wrapper() {
        let oid: Vec<u8> = (1..=12).collect();
        let mut e = element(0x07, "o", &oid);
        e.extend(element(0x06, "u", &[]));
        e.extend(element(0xFF, "min", &[]));
        e.extend(element(0x0D, "js", &string_value(b"1")));
        e.extend(element(0x0E, "sym", &string_value(b"s")));
        let mut ptr = string_value(b"db.c");
        ptr.extend_from_slice(&oid);
        e.extend(element(0x0C, "p", &ptr));
        let mut ts = 2u32.to_le_bytes().to_vec();
        ts.extend_from_slice(&1u32.to_le_bytes());
        e.extend(element(0x11, "ts", &ts));
        let mut dec = [0u8; 16];
        dec[0] = 5;
        dec[14] = 0x40;
        dec[15] = 0x30; // 5 × 10^0
        e.extend(element(0x13, "dec", &dec));
        assert_eq!(
            encode(&doc(&e), Format::Canonical).unwrap(),
            concat!(
                r#"{"o":{"$oid":"0102030405060708090a0b0c"},"u":{"$undefined":true},"min":{"$minKey":1},"#,
                r#""js":{"$code":"1"},"sym":{"$symbol":"s"},"#,
                r#""p":{"$dbPointer":{"$ref":"db.c","$id":{"$oid":"0102030405060708090a0b0c"}}},"#,
                r#""ts":{"$timestamp":{"t":1,"i":2}},"dec":{"$numberDecimal":"5"}}"#
            )
        );
    }

    #[test]
    fn a_value_alone_has_the_text_it_has_inside_a_document() {
        let mut out = Vec::new();
        write_value(0x10, &7i32.to_le_bytes(), Format::Canonical, &mut out).unwrap();
        assert_eq!(out, br#"{"$numberInt":"7"}"#);
        out.clear();
        write_value(0x02, &string_value(b"a\"b"), Format::Canonical, &mut out).unwrap();
        assert_eq!(out, br#""a\"b""#);
        out.clear();
        write_value(0x0A, &[], Format::Relaxed, &mut out).unwrap();
        assert_eq!(out, b"null");
        // A value whose string length is wrong is refused and writes nothing.
        out.clear();
        assert!(write_value(0x02, &[9, 0, 0, 0, b'a', 0], Format::Canonical, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn write_bson_document_encodes_a_document_value() {
        let d = bson::doc! { "name": "_id_", "key": { "_id": 1 }, "v": 2i64 };
        let mut out = Vec::new();
        write_bson_document(&d, Format::Canonical, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"name":"_id_","key":{"_id":{"$numberInt":"1"}},"v":{"$numberLong":"2"}}"#
        );
    }

    /// A 16 MB document nested as deep as BSON allows (7 bytes per level) must encode on a small
    /// thread stack: nesting is tracked on the heap, not by recursion.
    #[test]
    fn hostile_deep_nesting_does_not_overflow_the_stack() {
        const LEVELS: usize = (16 * 1024 * 1024 - 5) / 7;
        let total = 5 + 7 * LEVELS;
        let mut d = Vec::with_capacity(total);
        // Level i: type 0x03, empty key, length of the rest, ..., terminator.
        d.extend_from_slice(&(total as i32).to_le_bytes());
        for level in 0..LEVELS {
            d.push(0x03);
            d.push(0);
            let sub_len = 5 + 7 * (LEVELS - 1 - level);
            d.extend_from_slice(&(sub_len as i32).to_le_bytes());
        }
        d.extend(std::iter::repeat_n(0u8, LEVELS + 1));
        assert_eq!(d.len(), total);
        let handle = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                let mut out = Vec::new();
                write_document(&d, Format::Canonical, &mut out).map(|()| out)
            })
            .unwrap();
        let out = handle.join().unwrap().unwrap();
        assert_eq!(out.len(), 1 + LEVELS * r#""":{"#.len() + LEVELS + 1);
        assert!(out.starts_with(br#"{"":{"":{"#));
        // The innermost `{` is followed only by the closing braces of every level.
        let tail = &out[out.len() - (LEVELS + 2)..];
        assert_eq!(tail[0], b'{');
        assert!(tail[1..].iter().all(|&b| b == b'}'));
        assert_eq!(out.iter().filter(|&&b| b == b'{').count(), LEVELS + 1);
    }
}
