//! Compression of snapshot files: which codec a stream uses, and a streaming decoder for each.
//!
//! Codecs and the crates behind them (each chosen for a streaming, bounded-memory decoder that
//! checks the format's own checksums):
//!
//! | codec | stream | decoder |
//! | --- | --- | --- |
//! | gzip (and PBM's pgzip) | RFC 1952, multi-member | `flate2` (zlib-rs), already used for `--gzip` dumps |
//! | zstd | Zstandard frames, concatenated | `zstd` (the reference libzstd), window capped at 2^27 bytes |
//! | lz4 | LZ4 frame format, concatenated frames | `lz4_flex` (safe Rust, `checked-decode`), blocks ≤ 4 MiB |
//! | snappy | Snappy framing format (`sNaPpY`), CRC-32C per chunk | `snap` |
//! | s2 | S2 stream (`S2sTwO`): Snappy framing with S2 blocks | our own [`s2`] decoder (see there why) |
//!
//! **Detection: the bytes decide.** Every stream's first [`SNIFF_BYTES`] bytes are compared
//! with the magic numbers below. Four of them cannot begin anything else snapex reads, so they
//! are decisive everywhere: read as a BSON length, `28 b5 2f fd` (zstd) is negative and
//! `04 22 4d 18` (lz4) is 407 MB, beyond the 16 MiB document limit; `ff 06 00 00` (the
//! Snappy/S2 stream identifier) would be a 1,791-byte document whose first element type is
//! `s` or `S`, and no BSON type has that code; and none of them is the archive magic
//! `6d e2 99 81`. gzip's `1f 8b 08` *is* a possible start of a plain `.bson` file (a first
//! document of exactly 559,903 bytes), so gzip is recognised by its magic in archives and in
//! files whose name says compressed, and by the name (`.gz`) in directory dumps, as before.
//! A name whose compression suffix (`.gz`, `.zst`, `.zstd`, `.lz4`, `.snappy`, `.sz`, `.s2`)
//! disagrees with the bytes is an error naming both: a file that is not what its name says is
//! damaged or mislabelled, and guessing would hide it.
//!
//! **Errors.** A decoder's complaint (bad magic, checksum mismatch, truncation) surfaces as an
//! [`std::io::ErrorKind::InvalidData`] error whose message names the codec and the compressed
//! byte count read so far; the frame reader turns it into [`super::SourceError::Corrupt`] at
//! the decompressed offset. An error of the underlying object read (disk, network) is passed
//! through unchanged, so it stays an I/O error and keeps its cause.
//!
//! **Where it runs.** Decoders are blocking [`Read`]ers: sources only use them inside
//! `spawn_blocking` (reads, archive preludes) or on small metadata files in `spawn_blocking`,
//! never on a runtime worker thread.

pub mod s2;

use std::fmt;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;

use super::SourceError;
use super::objects::{self, object_name};
use crate::storage::Location;

/// How many leading bytes [`sniff`] looks at (the Snappy/S2 stream identifier is the longest).
pub const SNIFF_BYTES: usize = 10;

/// zstd's decoder window limit, as a power of two: 128 MiB, the reference decoder's default
/// (what `zstd -d` accepts without `--long`). A frame that asks for more is refused rather
/// than allowed to allocate it.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// A compression codec of a snapshot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    None,
    Gzip,
    Zstd,
    Lz4,
    Snappy,
    S2,
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b, 0x08];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const LZ4_MAGIC: &[u8] = &[0x04, 0x22, 0x4d, 0x18];
const SNAPPY_MAGIC: &[u8] = b"\xff\x06\x00\x00sNaPpY";
const S2_MAGIC: &[u8] = b"\xff\x06\x00\x00S2sTwO";

impl Codec {
    /// Every codec, for tests and benchmarks.
    pub const ALL: [Codec; 6] = [
        Codec::None,
        Codec::Gzip,
        Codec::Zstd,
        Codec::Lz4,
        Codec::Snappy,
        Codec::S2,
    ];

    /// The lowercase name, as PBM spells it in its metadata (`none`, `gzip`, …).
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
            Codec::Snappy => "snappy",
            Codec::S2 => "s2",
        }
    }

    /// The codec PBM's `compression` field names; `pgzip` writes ordinary gzip.
    pub fn from_pbm(name: &str) -> Option<Codec> {
        Some(match name {
            "none" | "" => Codec::None,
            "gzip" | "pgzip" => Codec::Gzip,
            "zstd" => Codec::Zstd,
            "lz4" => Codec::Lz4,
            "snappy" => Codec::Snappy,
            "s2" => Codec::S2,
            _ => return None,
        })
    }

    /// The file suffix PBM gives this codec (`pbm/compress/compress.go`), and the one snapex
    /// expects on compressed dump files.
    pub fn suffix(self) -> &'static str {
        match self {
            Codec::None => "",
            Codec::Gzip => ".gz",
            Codec::Zstd => ".zst",
            Codec::Lz4 => ".lz4",
            Codec::Snappy => ".snappy",
            Codec::S2 => ".s2",
        }
    }

    /// Splits a compression suffix off a file name: `c.bson.zst` → (`c.bson`, zstd). Also the
    /// common alternative spellings `.zstd` and `.sz` (snappy framing).
    pub fn strip_suffix(name: &str) -> (&str, Codec) {
        const SUFFIXES: [(&str, Codec); 7] = [
            (".gz", Codec::Gzip),
            (".zst", Codec::Zstd),
            (".zstd", Codec::Zstd),
            (".lz4", Codec::Lz4),
            (".snappy", Codec::Snappy),
            (".sz", Codec::Snappy),
            (".s2", Codec::S2),
        ];
        for (suffix, codec) in SUFFIXES {
            if let Some(base) = name.strip_suffix(suffix) {
                return (base, codec);
            }
        }
        (name, Codec::None)
    }
}

/// The compressed codec whose magic number `prefix` starts with (`None` for anything else).
/// `gzip` says whether the gzip magic counts (see the module docs for when it does not).
pub fn sniff(prefix: &[u8], gzip: bool) -> Option<Codec> {
    let table = [
        (ZSTD_MAGIC, Codec::Zstd),
        (LZ4_MAGIC, Codec::Lz4),
        (SNAPPY_MAGIC, Codec::Snappy),
        (S2_MAGIC, Codec::S2),
        (GZIP_MAGIC, Codec::Gzip),
    ];
    table
        .into_iter()
        .filter(|(_, c)| gzip || *c != Codec::Gzip)
        .find(|(magic, _)| prefix.starts_with(magic))
        .map(|(_, c)| c)
}

/// What a caller knows about a stream before looking at its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The bytes decide: a magic number makes it compressed, anything else is plain.
    /// `gzip`: whether the gzip magic counts (not for a plain-named `.bson`).
    Sniff { gzip: bool },
    /// The name or the backup's metadata says this codec; the bytes must agree (an empty
    /// stream is accepted as empty for every codec).
    Known(Codec),
}

/// Why a stream cannot be decoded as expected (before any data is decoded).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{expected} data expected, but the stream starts with {found}")]
    Mismatch {
        expected: Codec,
        found: &'static str,
    },
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn describe(prefix: &[u8]) -> &'static str {
    match sniff(prefix, true) {
        Some(Codec::Gzip) => "the gzip magic number",
        Some(Codec::Zstd) => "the zstd magic number",
        Some(Codec::Lz4) => "the lz4 frame magic number",
        Some(Codec::Snappy) => "the snappy stream identifier",
        Some(Codec::S2) => "the s2 stream identifier",
        _ => "no compression magic number",
    }
}

/// Looks at the first bytes of `raw`, decides the codec by `expect`, and returns it with a
/// reader of the decoded stream (the peeked bytes included).
pub fn open(
    raw: Box<dyn Read + Send>,
    expect: Expect,
) -> Result<(Codec, Box<dyn Read + Send>), CodecError> {
    let tap = Tap::new(raw);
    let state = tap.state.clone();
    let mut stream = Pushback::new(tap);
    let prefix = stream.peek(SNIFF_BYTES)?.to_vec();
    let codec = match expect {
        Expect::Sniff { gzip } => sniff(&prefix, gzip).unwrap_or(Codec::None),
        Expect::Known(codec) => {
            let found = sniff(&prefix, true);
            let agrees = match codec {
                _ if prefix.is_empty() => true,
                // A plain file may start with anything but a decisive magic number.
                Codec::None => !matches!(found, Some(c) if c != Codec::Gzip),
                other => found == Some(other),
            };
            if !agrees {
                return Err(CodecError::Mismatch {
                    expected: codec,
                    found: describe(&prefix),
                });
            }
            codec
        }
    };
    if prefix.is_empty() {
        // An empty object holds no stream at all, which decoders would call truncated.
        return Ok((codec, Box::new(io::empty())));
    }
    Ok((codec, decoder(codec, stream, state)))
}

/// Opens the object `rel` of `location` (blocking: call it off the runtime's worker threads)
/// and decodes it as `expect` says. A codec that disagrees with the bytes is
/// [`SourceError::Corrupt`] at offset 0.
pub(crate) fn open_object(
    location: &Location,
    rel: &str,
    expect: Expect,
    handle: &Handle,
) -> Result<(Codec, Box<dyn Read + Send>), SourceError> {
    let raw = objects::open_blocking(location, rel, false, handle)?;
    open_stream(raw, expect, &object_name(location, rel))
}

/// [`open`] with its errors as [`SourceError`]s naming `object` (a codec that disagrees with
/// the bytes is corruption at offset 0).
pub(crate) fn open_stream(
    raw: Box<dyn Read + Send>,
    expect: Expect,
    object: &str,
) -> Result<(Codec, Box<dyn Read + Send>), SourceError> {
    open(raw, expect).map_err(|e| {
        let object = object.to_string();
        match e {
            CodecError::Mismatch { .. } => SourceError::Corrupt {
                object,
                offset: 0,
                message: e.to_string(),
            },
            CodecError::Io(source) => SourceError::Io { object, source },
        }
    })
}

/// Decodes a whole small object (metadata) already in memory, refusing more than `limit`
/// decoded bytes. Blocking: CPU work.
pub(crate) fn decode_small(
    object: &str,
    raw: Vec<u8>,
    codec: Codec,
    limit: u64,
) -> Result<Vec<u8>, SourceError> {
    if codec == Codec::None {
        return Ok(raw);
    }
    let (_, reader) = open(Box::new(io::Cursor::new(raw)), Expect::Known(codec)).map_err(|e| {
        SourceError::Corrupt {
            object: object.to_string(),
            offset: 0,
            message: e.to_string(),
        }
    })?;
    let mut out = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| SourceError::Corrupt {
            object: object.to_string(),
            offset: out.len() as u64,
            message: e.to_string(),
        })?;
    if out.len() as u64 > limit {
        return Err(SourceError::Invalid {
            object: object.to_string(),
            message: format!("decompresses to more than {limit} bytes"),
        });
    }
    Ok(out)
}

/// Read size of the buffer under the decoders that read in small pieces (chunk headers).
const DECODER_INPUT_BUFFER: usize = 256 * 1024;

fn decoder(
    codec: Codec,
    stream: Pushback<Tap<Box<dyn Read + Send>>>,
    state: Arc<TapState>,
) -> Box<dyn Read + Send> {
    let inner: Box<dyn Read + Send> = match codec {
        // Nothing to decode: the frame reader sees the object's own errors directly.
        Codec::None => return Box::new(stream),
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(super::READ_BUFFER_BYTES, stream),
        )),
        Codec::Zstd => match zstd::stream::read::Decoder::new(stream) {
            Ok(mut d) => match d.window_log_max(ZSTD_WINDOW_LOG_MAX) {
                Ok(()) => Box::new(d),
                Err(e) => Box::new(Failed(Some(e))),
            },
            Err(e) => Box::new(Failed(Some(e))),
        },
        Codec::Lz4 => Box::new(Lz4Frames::new(Pushback::new(io::BufReader::with_capacity(
            DECODER_INPUT_BUFFER,
            stream,
        )))),
        Codec::Snappy => Box::new(snap::read::FrameDecoder::new(io::BufReader::with_capacity(
            DECODER_INPUT_BUFFER,
            stream,
        ))),
        Codec::S2 => Box::new(s2::Reader::new(io::BufReader::with_capacity(
            DECODER_INPUT_BUFFER,
            stream,
        ))),
    };
    Box::new(Decoded {
        codec,
        inner,
        state,
    })
}

/// A reader that fails with the error it was made with (a decoder that could not be set up).
struct Failed(Option<io::Error>);

impl Read for Failed {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| io::Error::other("decoder setup failed")))
    }
}

/// What the raw object reader saw: bytes consumed, and the first error it returned.
struct TapState {
    consumed: AtomicU64,
    failure: Mutex<Option<io::Error>>,
}

/// Wraps the raw object reader so that [`Decoded`] can tell the object's own errors (kept
/// as they are) from the decoder's (the data is bad).
struct Tap<R> {
    inner: R,
    state: Arc<TapState>,
}

impl<R> Tap<R> {
    fn new(inner: R) -> Self {
        Tap {
            inner,
            state: Arc::new(TapState {
                consumed: AtomicU64::new(0),
                failure: Mutex::new(None),
            }),
        }
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.state.consumed.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                // The decoder gets a copy; the original (with its cause) waits for `Decoded`.
                let copy = io::Error::new(e.kind(), e.to_string());
                let mut slot = self.state.failure.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert(e);
                Err(copy)
            }
        }
    }
}

/// The decoded stream: decoder errors become `InvalidData` naming the codec and the
/// compressed position; errors of the object read come back unchanged.
struct Decoded {
    codec: Codec,
    inner: Box<dyn Read + Send>,
    state: Arc<TapState>,
}

/// A decoder's complaint, with where in the compressed object it was.
#[derive(Debug, thiserror::Error)]
#[error("invalid {codec} data (after {consumed} compressed bytes): {source}")]
pub struct DecodeError {
    pub codec: Codec,
    pub consumed: u64,
    #[source]
    pub source: io::Error,
}

impl Read for Decoded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let raw = self
                    .state
                    .failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                if let Some(raw) = raw {
                    return Err(raw);
                }
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    DecodeError {
                        codec: self.codec,
                        consumed: self.state.consumed.load(Ordering::Relaxed),
                        source: e,
                    },
                ))
            }
        }
    }
}

/// A reader with a few bytes pushed back in front of it (the peeked magic number, or the
/// first bytes of a following lz4 frame).
struct Pushback<R> {
    pending: Vec<u8>,
    position: usize,
    inner: R,
}

impl<R: Read> Pushback<R> {
    fn new(inner: R) -> Self {
        Pushback {
            pending: Vec::new(),
            position: 0,
            inner,
        }
    }

    /// Makes up to `n` bytes available without consuming them (fewer only at the end).
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.position > 0 {
            self.pending.drain(..self.position);
            self.position = 0;
        }
        let mut chunk = [0u8; 16];
        while self.pending.len() < n {
            let want = (n - self.pending.len()).min(chunk.len());
            match self.inner.read(&mut chunk[..want]) {
                Ok(0) => break,
                Ok(got) => self.pending.extend_from_slice(&chunk[..got]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(&self.pending[..self.pending.len().min(n)])
    }
}

impl<R: Read> Read for Pushback<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.position < self.pending.len() {
            let n = buf.len().min(self.pending.len() - self.position);
            buf[..n].copy_from_slice(&self.pending[self.position..self.position + n]);
            self.position += n;
            if self.position == self.pending.len() {
                self.pending.clear();
                self.position = 0;
            }
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// The LZ4 frame format allows frames back to back (`cat a.lz4 b.lz4`), but `lz4_flex`'s
/// decoder ends at the first frame's end mark: without this, a second frame, or garbage after
/// the first, would be silently ignored. Each frame must also start with a complete header
/// (`lz4_flex` treats a stream cut inside one as a clean end).
struct Lz4Frames<R: Read> {
    decoder: Option<lz4_flex::frame::FrameDecoder<Pushback<R>>>,
    /// The next frame's header has not been checked yet (only before the first frame: later
    /// ones are checked when the previous one ends).
    unchecked: bool,
}

/// Magic number and the smallest frame descriptor (FLG, BD, HC).
const LZ4_MIN_HEADER: usize = 7;

impl<R: Read> Lz4Frames<R> {
    fn new(inner: Pushback<R>) -> Self {
        Lz4Frames {
            decoder: Some(lz4_flex::frame::FrameDecoder::new(inner)),
            unchecked: true,
        }
    }

    /// Checks the next frame's header is there; `false` at the clean end of the stream.
    fn next_frame(inner: &mut Pushback<R>) -> io::Result<bool> {
        let head = inner.peek(LZ4_MIN_HEADER)?;
        match head.len() {
            0 => Ok(false),
            n if n < LZ4_MIN_HEADER => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream ends inside an lz4 frame header",
            )),
            _ if !head.starts_with(LZ4_MAGIC) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "data after the end of the lz4 frame is not another lz4 frame",
            )),
            _ => Ok(true),
        }
    }
}

impl<R: Read> Read for Lz4Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            if self.unchecked {
                self.unchecked = false;
                if !Self::next_frame(decoder.get_mut())? {
                    self.decoder = None;
                    return Ok(0);
                }
            }
            match decoder.read(buf)? {
                0 => {
                    // End of this frame: another may follow.
                    let Some(done) = self.decoder.take() else {
                        return Ok(0);
                    };
                    let mut inner = done.into_inner();
                    if !Self::next_frame(&mut inner)? {
                        return Ok(0);
                    }
                    self.decoder = Some(lz4_flex::frame::FrameDecoder::new(inner));
                }
                n => return Ok(n),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(data: &[u8], expect: Expect) -> io::Result<(Codec, Vec<u8>)> {
        let (codec, mut r) = open(Box::new(io::Cursor::new(data.to_vec())), expect)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok((codec, out))
    }

    pub(crate) fn compress(codec: Codec, data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        match codec {
            Codec::None => data.to_vec(),
            Codec::Gzip => {
                let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                w.write_all(data).unwrap();
                w.finish().unwrap()
            }
            Codec::Zstd => {
                // With the content checksum, as PBM's zstd writer (klauspost) does by default.
                let mut w = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
                w.include_checksum(true).unwrap();
                w.write_all(data).unwrap();
                w.finish().unwrap()
            }
            Codec::Lz4 => {
                let mut w = lz4_flex::frame::FrameEncoder::new(Vec::new());
                w.write_all(data).unwrap();
                w.finish().unwrap()
            }
            Codec::Snappy => {
                let mut w = snap::write::FrameEncoder::new(Vec::new());
                w.write_all(data).unwrap();
                w.into_inner().unwrap()
            }
            Codec::S2 => s2::tests::s2(data),
        }
    }

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips_and_is_sniffed() {
        let data = sample();
        for codec in Codec::ALL {
            let packed = compress(codec, &data);
            let (found, out) = decode_all(&packed, Expect::Sniff { gzip: true }).unwrap();
            assert_eq!(found, codec);
            assert_eq!(out, data, "{codec}");
            let (found, out) = decode_all(&packed, Expect::Known(codec)).unwrap();
            assert_eq!(found, codec);
            assert_eq!(out, data, "{codec}");
        }
    }

    #[test]
    fn gzip_is_sniffed_only_when_allowed() {
        let packed = compress(Codec::Gzip, b"hello");
        assert_eq!(sniff(&packed, true), Some(Codec::Gzip));
        assert_eq!(sniff(&packed, false), None);
        for codec in [Codec::Zstd, Codec::Lz4, Codec::Snappy, Codec::S2] {
            assert_eq!(sniff(&compress(codec, b"hello"), false), Some(codec));
        }
    }

    #[test]
    fn a_known_codec_must_match_the_bytes() {
        let zst = compress(Codec::Zstd, b"hello");
        let err = open(Box::new(io::Cursor::new(zst)), Expect::Known(Codec::S2))
            .err()
            .unwrap();
        assert!(err.to_string().contains("s2 data expected"), "{err}");
        assert!(err.to_string().contains("zstd"), "{err}");
        let snappy = compress(Codec::Snappy, b"hello");
        assert!(
            open(
                Box::new(io::Cursor::new(snappy)),
                Expect::Known(Codec::None)
            )
            .is_err()
        );
        // An empty file is an empty stream whatever the codec.
        for codec in Codec::ALL {
            assert_eq!(decode_all(b"", Expect::Known(codec)).unwrap().1, b"");
        }
    }

    #[test]
    fn concatenated_streams_decode_whole() {
        for codec in [
            Codec::Gzip,
            Codec::Zstd,
            Codec::Lz4,
            Codec::Snappy,
            Codec::S2,
        ] {
            let mut packed = compress(codec, b"first ");
            packed.extend(compress(codec, b"second"));
            let (_, out) = decode_all(&packed, Expect::Known(codec)).unwrap();
            assert_eq!(out, b"first second", "{codec}");
        }
    }

    #[test]
    fn garbage_after_an_lz4_frame_is_an_error() {
        let mut packed = compress(Codec::Lz4, b"data");
        packed.extend(b"trailing garbage");
        let err = decode_all(&packed, Expect::Known(Codec::Lz4)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let mut packed = compress(Codec::Lz4, b"data");
        packed.extend(LZ4_MAGIC);
        assert!(decode_all(&packed, Expect::Known(Codec::Lz4)).is_err());
        assert!(decode_all(LZ4_MAGIC, Expect::Known(Codec::Lz4)).is_err());
    }

    #[test]
    fn damage_is_invalid_data_and_names_the_codec() {
        let data = sample();
        for codec in [
            Codec::Gzip,
            Codec::Zstd,
            Codec::Lz4,
            Codec::Snappy,
            Codec::S2,
        ] {
            let packed = compress(codec, &data);
            // A flipped byte in the middle, and a cut.
            let mut flipped = packed.clone();
            let mid = flipped.len() / 2;
            flipped[mid] ^= 0x55;
            let cut = &packed[..packed.len() * 2 / 3];
            for bad in [&flipped[..], cut] {
                match decode_all(bad, Expect::Known(codec)) {
                    Err(e) => {
                        assert!(
                            matches!(
                                e.kind(),
                                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                            ),
                            "{codec}: {e:?}"
                        );
                        assert!(e.to_string().contains(codec.name()), "{codec}: {e}");
                    }
                    Ok((_, out)) => panic!("{codec}: damage not detected ({} bytes)", out.len()),
                }
            }
        }
    }

    #[test]
    fn errors_of_the_object_read_are_kept() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "network went away",
                ))
            }
        }
        let packed = compress(Codec::Zstd, &sample());
        let raw: Box<dyn Read + Send> =
            Box::new(io::Cursor::new(packed[..64].to_vec()).chain(Broken));
        let (_, mut r) = open(raw, Expect::Known(Codec::Zstd)).unwrap();
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    }

    #[test]
    fn suffixes_and_pbm_names() {
        assert_eq!(Codec::strip_suffix("c.bson.zst"), ("c.bson", Codec::Zstd));
        assert_eq!(Codec::strip_suffix("c.bson.sz"), ("c.bson", Codec::Snappy));
        assert_eq!(Codec::strip_suffix("c.bson"), ("c.bson", Codec::None));
        assert_eq!(Codec::from_pbm("pgzip"), Some(Codec::Gzip));
        assert_eq!(Codec::from_pbm("brotli"), None);
        for codec in Codec::ALL {
            assert_eq!(Codec::from_pbm(codec.name()), Some(codec));
            assert_eq!(
                Codec::strip_suffix(&format!("x{}", codec.suffix())),
                ("x", codec)
            );
        }
    }
}

/// Fuzzing the decoders the way the BSON decoder is fuzzed (`tests/export/extjson_fixtures.rs`):
/// whatever the bytes, no panic and bounded output, and damage to a valid stream is an error
/// or, where the format has no checksum over it, a different output — never a hang.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// More than any of these inputs can legitimately expand to; reading stops there.
    const OUTPUT_CAP: u64 = 64 << 20;

    fn drain(data: Vec<u8>, expect: Expect) -> io::Result<u64> {
        let (_, r) = open(Box::new(io::Cursor::new(data)), expect).map_err(io::Error::other)?;
        io::copy(&mut r.take(OUTPUT_CAP), &mut io::sink())
    }

    fn magic(codec: Codec) -> &'static [u8] {
        match codec {
            Codec::Gzip => GZIP_MAGIC,
            Codec::Zstd => ZSTD_MAGIC,
            Codec::Lz4 => LZ4_MAGIC,
            Codec::Snappy => SNAPPY_MAGIC,
            Codec::S2 => S2_MAGIC,
            Codec::None => b"",
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_behind_every_magic_never_panic(
            which in 0usize..6,
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let codec = Codec::ALL[which];
            let mut data = magic(codec).to_vec();
            data.extend(body);
            let _ = drain(data.clone(), Expect::Sniff { gzip: true });
            let _ = drain(data, Expect::Known(codec));
        }

        #[test]
        fn damaged_valid_streams_never_panic(
            which in 1usize..6,
            payload in proptest::collection::vec(0u8..4, 0..20_000),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let codec = Codec::ALL[which];
            let mut data = tests::compress(codec, &payload);
            for (at, value) in edits {
                let len = data.len();
                data[at % len] = value;
            }
            if let Some(cut) = cut {
                let keep = cut % (data.len() + 1);
                data.truncate(keep);
            }
            if let Ok(n) = drain(data, Expect::Known(codec)) {
                prop_assert!(n <= OUTPUT_CAP);
            }
        }
    }
}
