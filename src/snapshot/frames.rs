//! Splits a byte stream into length-checked BSON documents (and, for archives, the
//! `0xFFFFFFFF` block terminators), without copying documents that fit in the read buffer.
//!
//! The reader owns one buffer of [`READ_BUFFER_BYTES`]; a document is handed out as a slice
//! of it. Only a document larger than the buffer makes it grow, and never past
//! [`MAX_DOCUMENT_BYTES`], so memory is bounded whatever the size of the input.

use std::io::{ErrorKind, Read};

use super::{MAX_DOCUMENT_BYTES, MIN_DOCUMENT_BYTES, READ_BUFFER_BYTES, SourceError};

/// The archive format's block terminator, read as a little-endian length.
const TERMINATOR: u32 = 0xFFFF_FFFF;

/// One item of the stream.
pub(crate) enum Frame<'a> {
    /// A whole document (length prefix included) and its offset in the stream.
    Document { bytes: &'a [u8], offset: u64 },
    /// An archive terminator at this offset (only when terminators are allowed).
    Terminator { offset: u64 },
    /// The stream ended cleanly between two frames.
    End { offset: u64 },
}

/// A [`SourceError::Corrupt`] for `object` at `offset`.
pub(crate) fn corrupt(object: &str, offset: u64, message: impl Into<String>) -> SourceError {
    SourceError::Corrupt {
        object: object.to_string(),
        offset,
        message: message.into(),
    }
}

pub(crate) struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Stream offset of `buf[start]`.
    offset: u64,
    eof: bool,
    object: String,
    allow_terminators: bool,
}

impl<R: Read> FrameReader<R> {
    /// A reader of plain BSON documents (a `.bson` file): `0xFFFFFFFF` is an invalid length.
    pub(crate) fn documents(inner: R, object: String) -> Self {
        Self::new(inner, object, false)
    }

    /// A reader of archive frames: documents and terminators.
    pub(crate) fn archive(inner: R, object: String) -> Self {
        Self::new(inner, object, true)
    }

    fn new(inner: R, object: String, allow_terminators: bool) -> Self {
        FrameReader {
            inner,
            buf: vec![0; READ_BUFFER_BYTES],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            object,
            allow_terminators,
        }
    }

    /// The object name used in errors.
    pub(crate) fn object(&self) -> &str {
        &self.object
    }

    pub(crate) fn corrupt(&self, offset: u64, message: impl Into<String>) -> SourceError {
        corrupt(&self.object, offset, message)
    }

    /// Reads exactly `N` bytes (the archive magic number); `None` when the stream is shorter.
    pub(crate) fn read_array<const N: usize>(&mut self) -> Result<Option<[u8; N]>, SourceError> {
        if self.fill(N)? < N {
            return Ok(None);
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.start..self.start + N]);
        self.consume(N);
        Ok(Some(out))
    }

    /// The next frame. A stream that ends inside a frame, a length outside the accepted range
    /// and a document whose last byte is not 0 are [`SourceError::Corrupt`].
    pub(crate) fn next_frame(&mut self) -> Result<Frame<'_>, SourceError> {
        let offset = self.offset;
        let available = self.fill(4)?;
        if available == 0 {
            return Ok(Frame::End { offset });
        }
        if available < 4 {
            return Err(self.corrupt(
                offset,
                format!("stream ends inside a document length ({available} of 4 bytes)"),
            ));
        }
        let prefix = &self.buf[self.start..self.start + 4];
        let raw = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if raw == TERMINATOR && self.allow_terminators {
            self.consume(4);
            return Ok(Frame::Terminator { offset });
        }
        let length = raw as i32;
        if length < MIN_DOCUMENT_BYTES as i32 || length as usize > MAX_DOCUMENT_BYTES {
            return Err(self.corrupt(
                offset,
                format!(
                    "invalid document length {length} (expected {MIN_DOCUMENT_BYTES} to \
                     {MAX_DOCUMENT_BYTES} bytes)"
                ),
            ));
        }
        let length = length as usize;
        let available = self.fill(length)?;
        if available < length {
            return Err(self.corrupt(
                offset,
                format!(
                    "truncated document: its length is {length} bytes but the stream ends after \
                     {available}"
                ),
            ));
        }
        let start = self.start;
        if self.buf[start + length - 1] != 0 {
            return Err(self.corrupt(
                offset,
                format!("document of {length} bytes does not end with a 0 byte"),
            ));
        }
        self.consume(length);
        Ok(Frame::Document {
            bytes: &self.buf[start..start + length],
            offset,
        })
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    /// Makes at least `want` unread bytes available unless the stream ends first; returns how
    /// many are available.
    fn fill(&mut self, want: usize) -> Result<usize, SourceError> {
        if self.end - self.start >= want || self.eof {
            return Ok(self.end - self.start);
        }
        if self.buf.len() - self.start < want {
            // Move the unread tail to the front; grow only for a document larger than the
            // buffer (`want` is bounded by MAX_DOCUMENT_BYTES by the caller).
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
        }
        while self.end - self.start < want {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(e)),
            }
        }
        Ok(self.end - self.start)
    }

    /// Decompression failures (invalid or truncated gzip data) are corruption at the current
    /// offset; anything else is an I/O error of the object.
    fn read_error(&self, e: std::io::Error) -> SourceError {
        match e.kind() {
            ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof => {
                SourceError::Corrupt {
                    object: self.object.clone(),
                    offset: self.offset + (self.end - self.start) as u64,
                    message: format!("invalid compressed data: {e}"),
                }
            }
            _ => SourceError::Io {
                object: self.object.clone(),
                source: e,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(payload: &[u8]) -> Vec<u8> {
        // {"a": <string payload>}
        let mut body = vec![0x02, b'a', 0];
        body.extend_from_slice(&((payload.len() + 1) as i32).to_le_bytes());
        body.extend_from_slice(payload);
        body.push(0);
        let mut out = ((body.len() + 5) as i32).to_le_bytes().to_vec();
        out.extend_from_slice(&body);
        out.push(0);
        out
    }

    fn collect(bytes: &[u8], archive: bool) -> Result<Vec<(u64, usize)>, SourceError> {
        let mut r = FrameReader::new(bytes, "obj".into(), archive);
        let mut out = Vec::new();
        loop {
            match r.next_frame()? {
                Frame::Document { bytes, offset } => out.push((offset, bytes.len())),
                Frame::Terminator { offset } => out.push((offset, 0)),
                Frame::End { .. } => return Ok(out),
            }
        }
    }

    #[test]
    fn documents_are_split_with_their_offsets() {
        let mut s = doc(b"x");
        s.extend(doc(b"hello"));
        let frames = collect(&s, false).unwrap();
        assert_eq!(frames, vec![(0, 14), (14, 18)]);
    }

    #[test]
    fn a_document_larger_than_the_buffer_grows_it() {
        let big = vec![b'z'; READ_BUFFER_BYTES * 2];
        let mut s = doc(b"a");
        s.extend(doc(&big));
        s.extend(doc(b"b"));
        let frames = collect(&s, false).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1].1, big.len() + 13);
    }

    #[test]
    fn truncation_is_corrupt_with_the_document_offset() {
        let mut s = doc(b"abc");
        s.extend(doc(b"defgh"));
        s.truncate(s.len() - 3);
        match collect(&s, false) {
            Err(SourceError::Corrupt {
                offset, message, ..
            }) => {
                assert_eq!(offset, 16);
                assert!(message.contains("truncated"), "{message}");
            }
            other => panic!("expected corrupt, got {other:?}"),
        }
        match collect(&s[..18], false) {
            Err(SourceError::Corrupt {
                offset, message, ..
            }) => {
                assert_eq!(offset, 16);
                assert!(message.contains("length"), "{message}");
            }
            other => panic!("expected corrupt, got {other:?}"),
        }
    }

    #[test]
    fn bad_lengths_and_missing_trailing_zero_are_corrupt() {
        let mut s = doc(b"abc");
        let last = s.len() - 1;
        s[last] = 7;
        assert!(matches!(
            collect(&s, false),
            Err(SourceError::Corrupt { offset: 0, .. })
        ));
        for len in [0i32, 4, -1, (MAX_DOCUMENT_BYTES + 1) as i32] {
            let mut s = len.to_le_bytes().to_vec();
            s.extend([0u8; 16]);
            assert!(
                matches!(
                    collect(&s, false),
                    Err(SourceError::Corrupt { offset: 0, .. })
                ),
                "length {len}"
            );
        }
    }

    #[test]
    fn terminators_only_in_archive_mode() {
        let mut s = doc(b"a");
        s.extend([0xFF; 4]);
        assert_eq!(collect(&s, true).unwrap(), vec![(0, 14), (14, 0)]);
        assert!(collect(&s, false).is_err());
    }
}
