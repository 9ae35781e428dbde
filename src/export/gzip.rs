//! Parallel gzip that still produces ONE gzip member per file, the way pigz does.
//!
//! Compression is the floor of an export's cost (PERFORMANCE.md), so it must run on every core
//! even for one collection. A file's JSON is cut into blocks; each block is deflated on its own
//! thread with [`FlushCompress::Sync`], primed with the last 32 KiB of the previous block as the
//! dictionary, so the concatenation of the blocks is one valid deflate stream that compresses
//! almost exactly as well as a serial one. The file's CRC-32 is combined from the blocks' CRCs.
//!
//! Rejected alternative: one gzip member per block (concatenated members). Every reader we
//! checked accepts them in principle, but tools have a history of reading only the first
//! member (old `GZIPInputStream` with `available()`, some Spark/Hadoop codecs), and a data
//! team's reader must never silently lose data. A single member is what `gzip` itself writes.
//!
//! Written by hand because no maintained crate offers this on top of zlib-rs: `gzp` does the
//! same with its own thread pool and writer API, which cannot share our rayon pool or
//! backpressure. The benchmark `benches/gzip.rs` compares it with `flate2::GzEncoder` alone.

use std::cell::RefCell;

use flate2::{Compress, Compression, FlushCompress};

/// Size of the deflate window, and so of the useful dictionary.
pub const DICTIONARY_SIZE: usize = 32 * 1024;

/// gzip header: magic, CM=deflate, no flags, MTIME=0 (reproducible output), XFL=0, OS=unknown.
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// One block of a file, deflated and byte-aligned, with the CRC of its uncompressed bytes.
pub struct CompressedBlock {
    pub data: Vec<u8>,
    pub crc: crc32fast::Hasher,
    pub uncompressed_len: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    #[error("gzip compression failed")]
    Compress(#[source] flate2::CompressError),
    /// The thread's compressor vanished between setting it and using it: a bug, not a panic.
    #[error("gzip compressor state lost (a bug)")]
    StateLost,
}

thread_local! {
    // A deflate state is ~300 KiB; reusing one per thread avoids allocating it per block.
    static COMPRESSOR: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
}

/// Deflates `input` as a non-final part of a deflate stream. `dictionary` is the uncompressed
/// data that precedes `input` in the same file (only its last 32 KiB are used; empty for the
/// first block).
pub fn compress_block(
    input: &[u8],
    dictionary: &[u8],
    level: u32,
) -> Result<CompressedBlock, GzipError> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compress = match slot.as_mut() {
            Some((l, c)) if *l == level => {
                c.reset();
                c
            }
            _ => {
                *slot = Some((level, Compress::new(Compression::new(level), false)));
                match slot.as_mut() {
                    Some((_, c)) => c,
                    None => return Err(GzipError::StateLost),
                }
            }
        };
        if !dictionary.is_empty() {
            let start = dictionary.len().saturating_sub(DICTIONARY_SIZE);
            compress
                .set_dictionary(&dictionary[start..])
                .map_err(GzipError::Compress)?;
        }
        let mut out = Vec::with_capacity(input.len() / 4 + 1024);
        let start_in = compress.total_in();
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64 * 1024));
            }
            let consumed = (compress.total_in() - start_in) as usize;
            compress
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .map_err(GzipError::Compress)?;
            let consumed = (compress.total_in() - start_in) as usize;
            // A sync flush is complete once all input is taken and deflate stopped with
            // output space left over (zlib's documented contract for Z_SYNC_FLUSH).
            if consumed == input.len() && out.len() < out.capacity() {
                break;
            }
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(input);
        Ok(CompressedBlock {
            data: out,
            crc,
            uncompressed_len: input.len() as u64,
        })
    })
}

/// The end of a gzip member: an empty final deflate block, then CRC-32 and ISIZE.
pub fn trailer(crc: &crc32fast::Hasher, uncompressed_len: u64) -> [u8; 10] {
    let crc = crc.clone().finalize();
    let mut t = [0u8; 10];
    // BFINAL=1, BTYPE=01 (fixed Huffman), then end-of-block: the two bytes zlib emits for Z_FINISH
    // on an empty input after a sync flush.
    t[0] = 0x03;
    t[1] = 0x00;
    t[2..6].copy_from_slice(&crc.to_le_bytes());
    t[6..10].copy_from_slice(&(uncompressed_len as u32).to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip_in_blocks(data: &[u8], block: usize, level: u32) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        let mut crc = crc32fast::Hasher::new();
        let mut prev: &[u8] = &[];
        for chunk in data.chunks(block) {
            let b = compress_block(chunk, prev, level).unwrap();
            out.extend_from_slice(&b.data);
            crc.combine(&b.crc);
            prev = chunk;
        }
        out.extend_from_slice(&trailer(&crc, data.len() as u64));
        out
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        let mut i = 0u64;
        while v.len() < len {
            v.extend_from_slice(
                format!(
                    "{{\"_id\":{{\"$numberLong\":\"{i}\"}},\"v\":\"x{}\"}}\n",
                    i * 7919 % 1000
                )
                .as_bytes(),
            );
            i += 1;
        }
        v.truncate(len);
        v
    }

    #[test]
    fn blocks_form_one_gzip_member_that_decodes_to_the_input() {
        for level in [0, 1, 6, 9] {
            let data = sample(300_000);
            let gz = gzip_in_blocks(&data, 50_000, level);
            // GzDecoder (not MultiGz) reads exactly one member: proves it is a single member.
            let mut d = flate2::read::GzDecoder::new(&gz[..]);
            let mut back = Vec::new();
            d.read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "level {level}");
        }
    }

    #[test]
    fn dictionary_keeps_the_ratio_of_serial_compression() {
        let data = sample(1_000_000);
        let blocked = gzip_in_blocks(&data, 64 * 1024, 6);
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        std::io::Write::write_all(&mut serial, &data).unwrap();
        let serial = serial.finish().unwrap();
        assert!(
            (blocked.len() as f64) < serial.len() as f64 * 1.02,
            "blocked {} vs serial {}",
            blocked.len(),
            serial.len()
        );
    }

    #[test]
    fn empty_and_tiny_inputs_decode() {
        for data in [&b""[..], b"x", b"{}\n"] {
            let gz = gzip_in_blocks(data, 10, 6);
            let mut d = flate2::read::GzDecoder::new(&gz[..]);
            let mut back = Vec::new();
            d.read_to_end(&mut back).unwrap();
            assert_eq!(back, data);
        }
    }
}
