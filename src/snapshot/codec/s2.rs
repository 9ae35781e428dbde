//! A streaming decoder of S2 streams (klauspost/compress `s2`, PBM's default compression).
//!
//! Why our own: S2 is Snappy's framing format with a stream identifier of its own (`S2sTwO`)
//! and an extended block format (repeat copies and blocks up to 4 MiB), so the `snap` crate
//! refuses it. The one Rust implementation on crates.io is young, single-maintainer, and
//! allocates uninitialised buffers with `unsafe` in its decoder; a decoder of ~200 lines of
//! safe Rust that we fuzz ourselves is the smaller risk for hostile input. It is checked
//! against PBM's real `.s2` files (every chunk's CRC-32C and PBM's own CRC-64 and size per
//! collection) and, in property tests, against that crate's Go-compatible encoder.
//!
//! The format (klauspost/compress `s2/README.md`, `s2/reader.go`, `s2/decode_other.go`):
//! - chunks of `type: u8, length: u24 LE`; the first is the stream identifier `0xff` with the
//!   body `S2sTwO` (or Snappy's `sNaPpY`, whose blocks S2 decodes too), which may repeat;
//! - `0x00` compressed data: masked CRC-32C of the decoded data (u32 LE), then one block;
//!   `0x01` uncompressed data: the masked CRC, then the data; `0x80..=0xfe` are skipped
//!   (padding, the seek index); `0x02..=0x7f` are reserved and refused;
//! - a block is the decoded length (uvarint) followed by Snappy's literal and copy tags, plus
//!   S2's *repeat*: a 1-byte-offset copy whose offset is 0 reuses the previous offset, with a
//!   length of up to 3 extra bytes.
//!
//! Memory is bounded: a decoded block is at most [`MAX_BLOCK`] bytes and a chunk at most
//! [`MAX_CHUNK`], whatever a hostile header claims, and both buffers are reused.

use std::io::{self, Read};

/// The largest decoded block S2 writes (and its reader accepts).
pub const MAX_BLOCK: usize = 4 << 20;
/// The largest chunk body: a compressed 4 MiB block at its worst (S2's `MaxEncodedLen`,
/// rounded up) plus the checksum. Snappy-framed blocks are at most 64 KiB.
pub const MAX_CHUNK: usize = MAX_BLOCK + MAX_BLOCK / 6 + 64;
const MAX_SNAPPY_BLOCK: usize = 64 << 10;

const CRC32C: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

fn corrupt(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// The masked CRC-32C of the framing format.
fn masked_crc(data: &[u8]) -> u32 {
    let c = CRC32C.checksum(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// Decodes an S2 (or Snappy-framed) stream read from `inner`.
pub struct Reader<R> {
    inner: R,
    /// The current decoded block; `decoded[position..]` is not handed out yet.
    decoded: Vec<u8>,
    position: usize,
    /// The current chunk body.
    chunk: Vec<u8>,
    /// A stream identifier has been read.
    started: bool,
    /// The last identifier was Snappy's (blocks limited to 64 KiB).
    snappy: bool,
    /// A decode failed: the stream is unusable from here on.
    failed: bool,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            decoded: Vec::new(),
            position: 0,
            chunk: Vec::new(),
            started: false,
            snappy: false,
            failed: false,
        }
    }

    /// Reads the next chunk header; `None` at a clean end (between chunks).
    fn header(&mut self) -> io::Result<Option<(u8, usize)>> {
        let mut header = [0u8; 4];
        let got = read_full(&mut self.inner, &mut header)?;
        match got {
            0 => Ok(None),
            4 => Ok(Some((
                header[0],
                usize::from(header[1]) | usize::from(header[2]) << 8 | usize::from(header[3]) << 16,
            ))),
            n => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("s2 stream ends inside a chunk header ({n} of 4 bytes)"),
            )),
        }
    }

    fn body(&mut self, length: usize) -> io::Result<()> {
        self.chunk.clear();
        // `take` + `read_to_end` grows the buffer only as bytes arrive: a header that claims
        // more than the stream holds allocates nothing extra.
        (&mut self.inner)
            .take(length as u64)
            .read_to_end(&mut self.chunk)?;
        if self.chunk.len() < length {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "s2 stream ends inside a chunk ({} of {length} bytes)",
                    self.chunk.len()
                ),
            ));
        }
        Ok(())
    }

    /// Reads chunks until one yields data; `false` at the end of the stream.
    fn next_block(&mut self) -> io::Result<bool> {
        loop {
            let Some((kind, length)) = self.header()? else {
                return Ok(false);
            };
            if !self.started && kind != 0xff {
                return Err(corrupt("s2 stream does not start with a stream identifier"));
            }
            match kind {
                0xff => {
                    if length != 6 {
                        return Err(corrupt(format!(
                            "s2 stream identifier of {length} bytes (expected 6)"
                        )));
                    }
                    self.body(6)?;
                    self.snappy = match &self.chunk[..] {
                        b"S2sTwO" => false,
                        b"sNaPpY" => true,
                        _ => return Err(corrupt("unknown s2 stream identifier")),
                    };
                    self.started = true;
                }
                0x00 | 0x01 => {
                    if !(4..=MAX_CHUNK).contains(&length) {
                        return Err(corrupt(format!("s2 chunk of {length} bytes")));
                    }
                    self.body(length)?;
                    let expected = u32::from_le_bytes([
                        self.chunk[0],
                        self.chunk[1],
                        self.chunk[2],
                        self.chunk[3],
                    ]);
                    let limit = if self.snappy {
                        MAX_SNAPPY_BLOCK
                    } else {
                        MAX_BLOCK
                    };
                    self.decoded.clear();
                    self.position = 0;
                    if kind == 0x00 {
                        decode_block(&self.chunk[4..], &mut self.decoded, limit)?;
                    } else {
                        if length - 4 > limit {
                            return Err(corrupt(format!(
                                "s2 uncompressed chunk of {} bytes (limit {limit})",
                                length - 4
                            )));
                        }
                        self.decoded.extend_from_slice(&self.chunk[4..]);
                    }
                    if masked_crc(&self.decoded) != expected {
                        return Err(corrupt("s2 chunk checksum mismatch"));
                    }
                    if !self.decoded.is_empty() {
                        return Ok(true);
                    }
                }
                0x02..=0x7f => {
                    return Err(corrupt(format!("reserved s2 chunk type {kind:#04x}")));
                }
                // Padding, the seek index and other skippable chunks.
                _ => {
                    let skipped =
                        io::copy(&mut (&mut self.inner).take(length as u64), &mut io::sink())?;
                    if skipped < length as u64 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "s2 stream ends inside a skippable chunk",
                        ));
                    }
                }
            }
        }
    }
}

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(corrupt("s2 stream already failed"));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.position == self.decoded.len() {
            match self.next_block() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    self.failed = e.kind() != io::ErrorKind::Interrupted;
                    return Err(e);
                }
            }
        }
        let n = buf.len().min(self.decoded.len() - self.position);
        buf[..n].copy_from_slice(&self.decoded[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// Reads until `buf` is full or the stream ends; how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Decodes one S2 block from `src` into `dst` (empty on entry), refusing a decoded length
/// above `limit`.
pub fn decode_block(src: &[u8], dst: &mut Vec<u8>, limit: usize) -> io::Result<()> {
    let (length, mut s) = uvarint(src).ok_or_else(|| corrupt("invalid s2 block length"))?;
    if length > limit as u64 {
        return Err(corrupt(format!(
            "s2 block of {length} bytes (limit {limit})"
        )));
    }
    let length = length as usize;
    // The whole block at once (at most `limit`, checked above), written by position: cheaper
    // than growing a vector by every few-byte copy.
    dst.clear();
    dst.resize(length, 0);
    let mut d = 0usize;
    let bad = || corrupt("invalid s2 block");
    // Offset of the last copy, for S2's repeat; 0 until a copy sets it.
    let mut offset = 0usize;
    while s < src.len() {
        let tag = src[s];
        let copy_length;
        match tag & 0x03 {
            0x00 => {
                // Literal: length - 1 in the tag, or in 1 to 4 following bytes.
                let x = usize::from(tag >> 2);
                let (literal, header) = if x < 60 {
                    (x, 1)
                } else {
                    let extra = x - 59;
                    let bytes = src.get(s + 1..s + 1 + extra).ok_or_else(bad)?;
                    let value = bytes
                        .iter()
                        .rev()
                        .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
                    (value, 1 + extra)
                };
                let literal = literal.checked_add(1).ok_or_else(bad)?;
                s += header;
                if literal > length - d || literal > src.len() - s {
                    return Err(bad());
                }
                dst[d..d + literal].copy_from_slice(&src[s..s + literal]);
                d += literal;
                s += literal;
                continue;
            }
            0x01 => {
                // Copy with a 1-byte offset; offset 0 is S2's repeat of the last offset.
                let low = *src.get(s + 1).ok_or_else(bad)?;
                s += 2;
                let code = usize::from(tag >> 2) & 0x07;
                let this_offset = (usize::from(tag) & 0xe0) << 3 | usize::from(low);
                if this_offset == 0 {
                    let base = match code {
                        5 => {
                            let b = *src.get(s).ok_or_else(bad)?;
                            s += 1;
                            usize::from(b) + 4
                        }
                        6 => {
                            let b = src.get(s..s + 2).ok_or_else(bad)?;
                            s += 2;
                            (usize::from(b[0]) | usize::from(b[1]) << 8) + (1 << 8)
                        }
                        7 => {
                            let b = src.get(s..s + 3).ok_or_else(bad)?;
                            s += 3;
                            (usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16)
                                + (1 << 16)
                        }
                        other => other,
                    };
                    copy_length = base + 4;
                } else {
                    offset = this_offset;
                    copy_length = code + 4;
                }
            }
            0x02 => {
                let b = src.get(s + 1..s + 3).ok_or_else(bad)?;
                s += 3;
                copy_length = 1 + usize::from(tag >> 2);
                offset = usize::from(b[0]) | usize::from(b[1]) << 8;
            }
            _ => {
                let b = src.get(s + 1..s + 5).ok_or_else(bad)?;
                s += 5;
                copy_length = 1 + usize::from(tag >> 2);
                offset = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
            }
        }
        if offset == 0 || offset > d || copy_length > length - d {
            return Err(bad());
        }
        let start = d - offset;
        if copy_length <= 16 {
            // Short copies are most of them: byte by byte, which is also right when the copy
            // overlaps its own output.
            for k in 0..copy_length {
                dst[d + k] = dst[start + k];
            }
        } else if offset >= copy_length {
            dst.copy_within(start..start + copy_length, d);
        } else {
            // An overlapping copy repeats the last `offset` bytes: copy whole periods, each
            // round doubling what is available.
            let mut done = 0;
            while done < copy_length {
                let n = (copy_length - done).min(offset + done);
                dst.copy_within(start..start + n, d + done);
                done += n;
            }
        }
        d += copy_length;
    }
    if d != length {
        dst.truncate(d);
        return Err(corrupt(format!(
            "s2 block decodes to {d} bytes, its header says {length}"
        )));
    }
    Ok(())
}

/// A uvarint of at most 5 bytes (32 bits), and how many bytes it took.
fn uvarint(src: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in src.iter().take(5).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (value <= u64::from(u32::MAX)).then_some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn s2(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = minlz::Writer::new(&mut out);
            w.write_all(data).unwrap();
            w.flush().unwrap();
        }
        out
    }

    fn decode(stream: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Reader::new(stream).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn repeats_and_overlapping_copies_decode() {
        // A hand-made block: literal "abcd", copy offset 4 length 8 (overlapping), then a
        // repeat (offset 0 → 4) of length 4 + 4, so "abcd" x 5.
        let mut block = vec![20u8];
        block.push((3 << 2) as u8); // literal of 4
        block.extend(b"abcd");
        block.extend([0x01 | (4 << 2), 4]); // copy1: length 8, offset 4
        block.extend([0x01, 0]); // repeat: length 4
        block.extend([0x01 | (4 << 2), 0]); // repeat: code 4 → length 8 ... exceeds: trimmed below
        let mut out = Vec::new();
        // 4 + 8 + 4 = 16 < 20, + 8 = 24 > 20: must fail.
        assert!(decode_block(&block, &mut out, MAX_BLOCK).is_err());
        block[0] = 24;
        out.clear();
        decode_block(&block, &mut out, MAX_BLOCK).unwrap();
        assert_eq!(out, b"abcd".repeat(6));
        // A repeat before any copy has no offset to repeat.
        let mut out = Vec::new();
        assert!(decode_block(&[8, 0x01, 0], &mut out, MAX_BLOCK).is_err());
    }

    #[test]
    fn streams_from_the_go_compatible_encoder_decode() {
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("{{\"i\":{},\"k\":\"key{}\"}}", i, i % 97).into_bytes())
            .collect();
        assert_eq!(decode(&s2(&text)).unwrap(), text);
        assert_eq!(decode(&s2(b"")).unwrap(), b"");
        let mut two = s2(b"one ");
        two.extend(s2(b"two"));
        assert_eq!(decode(&two).unwrap(), b"one two");
    }

    #[test]
    fn snappy_framed_streams_decode_too() {
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        w.write_all(&b"snappy blocks are s2 blocks ".repeat(5000))
            .unwrap();
        let stream = w.into_inner().unwrap();
        assert_eq!(
            decode(&stream).unwrap(),
            b"snappy blocks are s2 blocks ".repeat(5000)
        );
    }

    #[test]
    fn hostile_headers_allocate_nothing_large() {
        // A chunk that claims 16 MiB with 3 bytes behind it.
        let mut stream = b"\xff\x06\x00\x00S2sTwO".to_vec();
        stream.extend([0x00, 0xff, 0xff, 0xff, 1, 2, 3]);
        assert!(decode(&stream).is_err());
        // A block that claims 4 GiB.
        let mut out = Vec::new();
        assert!(decode_block(&[0xff, 0xff, 0xff, 0xff, 0x0f], &mut out, MAX_BLOCK).is_err());
        assert!(out.capacity() < 1024);
    }

    #[test]
    fn checksums_and_structure_are_checked() {
        let good = s2(&b"checked data ".repeat(1000));
        let mut bad_crc = good.clone();
        bad_crc[10] ^= 1; // the first chunk's CRC
        assert!(decode(&bad_crc).is_err());
        assert!(decode(b"\x00\x01\x00\x00x").is_err(), "no identifier");
        let mut reserved = b"\xff\x06\x00\x00S2sTwO".to_vec();
        reserved.extend([0x02, 0, 0, 0]);
        assert!(decode(&reserved).is_err());
        let mut skippable = b"\xff\x06\x00\x00S2sTwO".to_vec();
        skippable.extend([0xfe, 2, 0, 0, 9, 9]);
        assert_eq!(decode(&skippable).unwrap(), b"");
    }
}

/// Our decoder against an independent Go-compatible encoder, and against hostile blocks.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Data with runs and repeated phrases, so the encoder emits copies and S2 repeats.
    fn compressible() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 1..40),
                (any::<u8>(), 1usize..3000).prop_map(|(b, n)| vec![b; n]),
                (0usize..8, 1usize..50)
                    .prop_map(|(k, n)| format!("phrase-{k} ").repeat(n).into_bytes()),
            ],
            0..60,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn what_the_go_compatible_encoder_writes_decodes_back(data in compressible()) {
            let stream = tests::s2(&data);
            let mut out = Vec::new();
            Reader::new(&stream[..]).read_to_end(&mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(out, data);
        }

        #[test]
        fn random_blocks_never_panic_nor_exceed_their_limit(
            src in proptest::collection::vec(any::<u8>(), 0..300),
            limit in 0usize..70_000,
        ) {
            let mut out = Vec::new();
            if decode_block(&src, &mut out, limit).is_ok() {
                prop_assert!(out.len() <= limit);
            }
            prop_assert!(out.len() <= limit);
        }
    }
}
