//! JSON string output: escaping and UTF-8 validation of BSON strings, keys, and cstrings.
//!
//! One pass over the bytes: plain ASCII is copied in runs, the few bytes JSON requires escaping are
//! escaped, and the first non-ASCII byte triggers a single UTF-8 validation of the rest of the
//! string (std's validator has an ASCII fast path, so this costs little). The escapes are the ones
//! the MongoDB Go driver (and so `bsondump`) writes: `\"`, `\\`, `\b \f \n \r \t`, other control
//! characters as `\u00xx`, and U+2028/U+2029 as `\u2028`/`\u2029` so the output is also safe to
//! embed in JavaScript. Everything else, including DEL and non-ASCII text, is written as is.

/// Byte classes: `PLAIN` is copied as is, `ESCAPE` needs a JSON escape, `HIGH` is part of a
/// multi-byte UTF-8 sequence.
const PLAIN: u8 = 0;
const ESCAPE: u8 = 1;
const HIGH: u8 = 2;

static CLASS: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if i < 0x20 || i == b'"' as usize || i == b'\\' as usize {
            ESCAPE
        } else if i >= 0x80 {
            HIGH
        } else {
            PLAIN
        };
        i += 1;
    }
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Marks (high bit set) the bytes of `w` that are not `PLAIN`. Bytes above the first marked one
/// may be marked falsely (borrows propagate upwards), so only the lowest mark is reliable.
#[inline(always)]
fn special_mask(w: u64) -> u64 {
    // Special: high bit set, below 0x20, '"' or '\\'. The below-0x20 test never marks a byte
    // with its high bit set (`!w` clears it), and those are marked by `w & HI` anyway.
    let high = w & HI;
    let control = w.wrapping_sub(0x20 * LO) & !w & HI;
    let q = w ^ (b'"' as u64 * LO);
    let quote = q.wrapping_sub(LO) & !q & HI;
    let b = w ^ (b'\\' as u64 * LO);
    let backslash = b.wrapping_sub(LO) & !b & HI;
    high | control | quote | backslash
}

/// Offset of the first non-`PLAIN` byte of `s` at or after `i`, or `s.len()`.
#[inline(always)]
fn skip_plain(s: &[u8], mut i: usize) -> usize {
    // Eight bytes at a time while possible: most text is plain ASCII.
    while let Some(chunk) = s.get(i..).and_then(|rest| rest.first_chunk::<8>()) {
        let mask = special_mask(u64::from_le_bytes(*chunk));
        if mask != 0 {
            return i + (mask.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = s.get(i) {
        if CLASS[b as usize] != PLAIN {
            break;
        }
        i += 1;
    }
    i
}

/// Error from [`write_escaped`]: the bytes are not valid UTF-8 from this offset on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InvalidUtf8 {
    pub offset: usize,
}

/// Writes `s` as a quoted JSON string.
#[inline]
pub(super) fn write_string(s: &[u8], out: &mut Vec<u8>) -> Result<(), InvalidUtf8> {
    out.push(b'"');
    write_escaped(s, out)?;
    out.push(b'"');
    Ok(())
}

/// Writes the JSON-escaped contents of `s` (no quotes).
pub(super) fn write_escaped(s: &[u8], out: &mut Vec<u8>) -> Result<(), InvalidUtf8> {
    let mut start = 0;
    let mut i = 0;
    let mut validated = false;
    while i < s.len() {
        i = skip_plain(s, i);
        let Some(&b) = s.get(i) else { break };
        match CLASS[b as usize] {
            PLAIN => i += 1,
            ESCAPE => {
                out.extend_from_slice(&s[start..i]);
                write_escape(b, out);
                i += 1;
                start = i;
            }
            _ => {
                if !validated {
                    // Validate everything from the first non-ASCII byte once; later bytes only
                    // need the U+2028/U+2029 check.
                    if let Err(e) = std::str::from_utf8(&s[i..]) {
                        return Err(InvalidUtf8 {
                            offset: i + e.valid_up_to(),
                        });
                    }
                    validated = true;
                }
                // U+2028 is E2 80 A8, U+2029 is E2 80 A9.
                if let (0xE2, Some(&[0x80, last @ (0xA8 | 0xA9)])) = (b, s.get(i + 1..i + 3)) {
                    out.extend_from_slice(&s[start..i]);
                    out.extend_from_slice(if last == 0xA8 { b"\\u2028" } else { b"\\u2029" });
                    i += 3;
                    start = i;
                    continue;
                }
                i += 1;
            }
        }
    }
    out.extend_from_slice(&s[start..]);
    Ok(())
}

#[cold]
fn write_escape(b: u8, out: &mut Vec<u8>) {
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0C => b'f',
        _ => 0,
    };
    if short != 0 {
        out.extend_from_slice(&[b'\\', short]);
    } else {
        out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(b >> 4) as usize],
            HEX[(b & 0xF) as usize],
        ]);
    }
}

/// Result of scanning a cstring (a NUL-terminated BSON key or regex part).
pub(super) struct CString<'a> {
    /// The bytes before the NUL.
    pub bytes: &'a [u8],
    /// True when every byte is plain ASCII that needs no escaping (so it can be copied as is).
    pub plain: bool,
}

/// Finds the cstring starting at `data[0]`; `None` when no NUL is found in `data`.
#[inline]
pub(super) fn scan_cstring(data: &[u8]) -> Option<CString<'_>> {
    // Keys are usually plain ASCII: one pass finds the NUL (a control byte, so not plain) and
    // classifies the key.
    let i = skip_plain(data, 0);
    match data.get(i) {
        Some(0) => Some(CString {
            bytes: &data[..i],
            plain: true,
        }),
        Some(_) => {
            let nul = i + data[i..].iter().position(|&b| b == 0)?;
            Some(CString {
                bytes: &data[..nul],
                plain: false,
            })
        }
        None => None,
    }
}

/// Writes a cstring found by [`scan_cstring`] as a quoted JSON string.
#[inline]
pub(super) fn write_cstring(c: &CString<'_>, out: &mut Vec<u8>) -> Result<(), InvalidUtf8> {
    if c.plain {
        out.push(b'"');
        out.extend_from_slice(c.bytes);
        out.push(b'"');
        Ok(())
    } else {
        write_string(c.bytes, out)
    }
}

/// Checks that a cstring that is not written (an array index key) is valid UTF-8.
#[inline]
pub(super) fn check_cstring(c: &CString<'_>) -> Result<(), InvalidUtf8> {
    if c.plain {
        return Ok(());
    }
    std::str::from_utf8(c.bytes)
        .map(|_| ())
        .map_err(|e| InvalidUtf8 {
            offset: e.valid_up_to(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &[u8]) -> Result<String, InvalidUtf8> {
        let mut out = Vec::new();
        write_string(s, &mut out)?;
        Ok(String::from_utf8(out).expect("escaper must produce UTF-8"))
    }

    #[test]
    fn plain_ascii_is_copied() {
        assert_eq!(
            escaped(b"hello world, 0123456789").unwrap(),
            "\"hello world, 0123456789\""
        );
        assert_eq!(escaped(b"").unwrap(), "\"\"");
    }

    #[test]
    fn json_metacharacters_are_escaped_like_the_go_driver() {
        assert_eq!(escaped(b"a\"b\\c").unwrap(), r#""a\"b\\c""#);
        assert_eq!(
            escaped(b"\x00\x01\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f").unwrap(),
            "\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\x7f\""
        );
        // Escapes found after a long plain run (exercises the 8-byte skip).
        assert_eq!(
            escaped(b"0123456789abcdef\"").unwrap(),
            "\"0123456789abcdef\\\"\""
        );
    }

    #[test]
    fn non_ascii_text_is_kept_and_line_separators_are_escaped() {
        assert_eq!(escaped("é☆😀".as_bytes()).unwrap(), "\"é☆😀\"");
        assert_eq!(
            escaped("a\u{2028}b\u{2029}c\u{2027}".as_bytes()).unwrap(),
            "\"a\\u2028b\\u2029c\u{2027}\""
        );
    }

    #[test]
    fn invalid_utf8_is_rejected_with_its_offset() {
        assert_eq!(escaped(b"abc\xe9"), Err(InvalidUtf8 { offset: 3 }));
        assert_eq!(
            escaped(b"\xc3\xa9\xed\xa0\x80"),
            Err(InvalidUtf8 { offset: 2 })
        ); // surrogate
        assert_eq!(escaped(b"\xc0\xaf"), Err(InvalidUtf8 { offset: 0 })); // overlong
        assert_eq!(escaped(b"0123456789\xff"), Err(InvalidUtf8 { offset: 10 }));
    }

    #[test]
    fn cstrings_are_found_and_classified() {
        let c = scan_cstring(b"key\0rest").unwrap();
        assert_eq!((c.bytes, c.plain), (&b"key"[..], true));
        let c = scan_cstring(b"k\"y\0").unwrap();
        assert_eq!((c.bytes, c.plain), (&b"k\"y"[..], false));
        let c = scan_cstring(b"\0").unwrap();
        assert_eq!((c.bytes, c.plain), (&b""[..], true));
        assert!(scan_cstring(b"no terminator").is_none());
        assert!(scan_cstring(b"no\"terminator").is_none());
    }
}
