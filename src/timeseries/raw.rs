//! Just enough raw BSON for the decoder and the unpacker: the size of an element's value, an
//! iterator over a document's elements, and a writer that appends elements to a document.
//!
//! Only the *structure* is checked here (lengths within bounds, terminators, known types): that
//! is what stepping from one element to the next needs, and every decoded measurement goes
//! through the Extended JSON encoder afterwards, which validates the content (UTF-8, boolean
//! bytes, nested documents) completely. Nothing here recurses, so no input can exhaust the stack.

/// A structural problem in raw BSON, with a lowercase message and no trailing punctuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawError(pub &'static str);

/// Reads a little-endian i32 at `pos`.
#[inline]
pub(crate) fn read_i32(bytes: &[u8], pos: usize) -> Option<i32> {
    let chunk = bytes.get(pos..)?.first_chunk::<4>()?;
    Some(i32::from_le_bytes(*chunk))
}

/// The length of a BSON string value (int32 length, bytes, NUL) at the start of `bytes`.
fn string_len(bytes: &[u8]) -> Result<usize, RawError> {
    let len = read_i32(bytes, 0).ok_or(RawError("string length runs past the end"))?;
    if len < 1 {
        return Err(RawError("string has a negative or zero length"));
    }
    let total = 4usize + len as usize;
    match bytes.get(total - 1) {
        Some(0) => Ok(total),
        Some(_) => Err(RawError("string is not nul-terminated")),
        None => Err(RawError("string runs past the end")),
    }
}

/// The length of a cstring (bytes up to and including the NUL) at the start of `bytes`.
fn cstring_len(bytes: &[u8]) -> Result<usize, RawError> {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map(|i| i + 1)
        .ok_or(RawError("name or pattern is not nul-terminated"))
}

/// The length of an embedded document or array at the start of `bytes`.
pub(crate) fn document_len(bytes: &[u8]) -> Result<usize, RawError> {
    let len = read_i32(bytes, 0).ok_or(RawError("document length runs past the end"))?;
    if len < 5 {
        return Err(RawError("document length is smaller than 5"));
    }
    let len = len as usize;
    match bytes.get(len - 1) {
        Some(0) => Ok(len),
        Some(_) => Err(RawError("document does not end with a 0 byte")),
        None => Err(RawError("document runs past the end")),
    }
}

/// The size of the value of an element of type `ty` that starts at `bytes[0]`, checked against
/// `bytes.len()`.
pub(crate) fn value_len(ty: u8, bytes: &[u8]) -> Result<usize, RawError> {
    let fixed = |n: usize| {
        if bytes.len() >= n {
            Ok(n)
        } else {
            Err(RawError("value runs past the end"))
        }
    };
    match ty {
        0x01 | 0x09 | 0x11 | 0x12 => fixed(8),
        0x02 | 0x0D | 0x0E => string_len(bytes),
        0x03 | 0x04 => document_len(bytes),
        0x05 => {
            let len = read_i32(bytes, 0).ok_or(RawError("binary length runs past the end"))?;
            if len < 0 {
                return Err(RawError("binary has a negative length"));
            }
            fixed(5 + len as usize)
        }
        0x06 | 0x0A | 0x7F | 0xFF => Ok(0),
        0x07 => fixed(12),
        0x08 => fixed(1),
        0x0B => {
            let pattern = cstring_len(bytes)?;
            let options = cstring_len(&bytes[pattern..])?;
            Ok(pattern + options)
        }
        0x0C => {
            let namespace = string_len(bytes)?;
            fixed(namespace + 12)
        }
        0x0F => {
            // int32 total length, then a string and a document that fill it exactly.
            let len = read_i32(bytes, 0).ok_or(RawError("code with scope runs past the end"))?;
            if len < 14 {
                return Err(RawError("code with scope is too short"));
            }
            let total = fixed(len as usize)?;
            let inner = &bytes[4..total];
            let code = string_len(inner)?;
            let scope = document_len(&inner[code..])?;
            if 4 + code + scope != total {
                return Err(RawError("code with scope's parts do not fill its length"));
            }
            Ok(total)
        }
        0x10 => fixed(4),
        0x13 => fixed(16),
        _ => Err(RawError("unknown element type")),
    }
}

/// The name of a BSON type, for messages.
pub(crate) fn type_name(ty: u8) -> &'static str {
    match ty {
        0x01 => "double",
        0x02 => "string",
        0x03 => "object",
        0x04 => "array",
        0x05 => "binary",
        0x06 => "undefined",
        0x07 => "objectId",
        0x08 => "bool",
        0x09 => "date",
        0x0A => "null",
        0x0B => "regex",
        0x0C => "dbPointer",
        0x0D => "javascript",
        0x0E => "symbol",
        0x0F => "javascriptWithScope",
        0x10 => "int",
        0x11 => "timestamp",
        0x12 => "long",
        0x13 => "decimal",
        0x7F => "maxKey",
        0xFF => "minKey",
        _ => "unknown type",
    }
}

/// One element of a document: its type, name (without the NUL) and value bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawElement<'a> {
    pub ty: u8,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// The elements of one document, in order. Yields an error (once) for a malformed element.
pub(crate) struct Elements<'a> {
    doc: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Elements<'a> {
    /// `doc` is a whole document, length prefix and terminating 0 included; its length must
    /// equal `doc.len()` (check it with [`document_len`] first).
    pub(crate) fn new(doc: &'a [u8]) -> Self {
        Elements {
            doc,
            pos: 4,
            failed: false,
        }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<RawElement<'a>, RawError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        // The last byte is the document's terminator: elements live before it.
        let body_end = self.doc.len().saturating_sub(1);
        if self.pos >= body_end {
            return None;
        }
        let result = (|| {
            let body = &self.doc[..body_end];
            let ty = body[self.pos];
            if ty == 0 {
                return Err(RawError("0 byte before the end of the document"));
            }
            let key_start = self.pos + 1;
            let key_len = cstring_len(&body[key_start..])?;
            let value_start = key_start + key_len;
            let len = value_len(ty, &body[value_start..])?;
            self.pos = value_start + len;
            Ok(RawElement {
                ty,
                key: &body[key_start..value_start - 1],
                value: &body[value_start..value_start + len],
            })
        })();
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }
}

/// Appends a document to `out`: [`DocWriter::start`], elements, [`DocWriter::finish`].
pub(crate) struct DocWriter {
    start: usize,
}

impl DocWriter {
    pub(crate) fn start(out: &mut Vec<u8>) -> Self {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        DocWriter { start }
    }

    /// Appends one element. `key` must not contain a 0 byte (it comes from a cstring).
    #[inline]
    pub(crate) fn element(out: &mut Vec<u8>, ty: u8, key: &[u8], value: &[u8]) {
        out.push(ty);
        out.extend_from_slice(key);
        out.push(0);
        out.extend_from_slice(value);
    }

    /// Terminates the document and writes its length. Documents stay far below 2 GiB (the
    /// callers bound what they write), so the length always fits.
    pub(crate) fn finish(self, out: &mut Vec<u8>) {
        out.push(0);
        let len = (out.len() - self.start) as u32;
        out[self.start..self.start + 4].copy_from_slice(&len.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(value: bson::Document) -> Vec<u8> {
        value.to_vec().unwrap()
    }

    #[test]
    fn elements_of_every_type_are_stepped_over() {
        let bytes = doc(bson::doc! {
            "d": 1.5, "s": "x", "o": {"a": 1}, "a": [1, 2],
            "b": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2] },
            "u": bson::Bson::Undefined, "i": bson::oid::ObjectId::from_bytes([7; 12]), "t": true,
            "dt": bson::DateTime::from_millis(5), "n": bson::Bson::Null,
            "r": bson::Regex { pattern: "a".try_into().unwrap(), options: "i".try_into().unwrap() },
            "c": bson::Bson::JavaScriptCode("f()".into()),
            "i32": 3, "ts": bson::Timestamp { time: 1, increment: 2 }, "i64": 4i64,
            "max": bson::Bson::MaxKey, "min": bson::Bson::MinKey,
        });
        let keys: Vec<String> = Elements::new(&bytes)
            .map(|e| String::from_utf8(e.unwrap().key.to_vec()).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "d", "s", "o", "a", "b", "u", "i", "t", "dt", "n", "r", "c", "i32", "ts", "i64",
                "max", "min"
            ]
        );
    }

    #[test]
    fn malformed_elements_are_errors_not_panics() {
        let good = doc(bson::doc! {"s": "hello", "o": {"a": 1}});
        for cut in 5..good.len() {
            let mut bytes = good[..cut].to_vec();
            bytes.push(0);
            // Whatever the cut, iteration ends without a panic.
            let _ = Elements::new(&bytes).count();
        }
        let mut bad = good.clone();
        bad[4] = 0x42;
        assert!(Elements::new(&bad).any(|e| e.is_err()));
    }

    #[test]
    fn the_writer_builds_what_bson_reads() {
        let mut out = Vec::new();
        let w = DocWriter::start(&mut out);
        DocWriter::element(&mut out, 0x10, b"x", &7i32.to_le_bytes());
        w.finish(&mut out);
        let parsed = bson::Document::from_reader(out.as_slice()).unwrap();
        assert_eq!(parsed, bson::doc! {"x": 7});
    }
}
