//! The baseline of `scripts/bench`: snapex's own parallel gzip (same block size, same level,
//! same rayon pool on the same cores) over a JSON file, with no BSON decoding, encoding or
//! upload. The export's throughput divided by this one is the figure PERFORMANCE.md asks for.
//!
//! Usage: compress_alone FILE LEVEL → prints `{"bytes":…, "seconds":…, "compressedBytes":…}`.

use std::sync::mpsc;
use std::time::Instant;

use snapex::export::gzip;

const BLOCK_SIZE: usize = 1024 * 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args.next().ok_or("usage: compress_alone FILE LEVEL")?;
    let level: u32 = args.next().unwrap_or_else(|| "6".into()).parse()?;
    let data = std::fs::read(&file)?;
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let blocks: Vec<&[u8]> = data.chunks(BLOCK_SIZE).collect();
    let count = blocks.len();
    rayon::scope(|scope| {
        for (i, block) in blocks.iter().enumerate() {
            let dictionary: &[u8] = if i == 0 { &[] } else { blocks[i - 1] };
            let tx = tx.clone();
            scope.spawn(move |_| {
                let _ =
                    tx.send(gzip::compress_block(block, dictionary, level).map(|b| b.data.len()));
            });
        }
    });
    drop(tx);
    let mut compressed = 0usize;
    for result in rx.iter().take(count) {
        compressed += result?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"bytes\":{},\"seconds\":{seconds},\"compressedBytes\":{compressed}}}",
        data.len()
    );
    Ok(())
}
