//! Measures append throughput (group commit of 1000 records per sync) and
//! recovery (replay) time of the journal.
//!
//! Usage: `cargo run --release -p oxtail-journal --example replay_bench [RECORDS] [DIR]`
//! (defaults: 1,000,000 records, ~100-byte payloads, in a fresh temp dir
//! under `$TMPDIR`). Replay reads files the page cache most likely still
//! holds, so it measures CPU cost (parsing + CRC), not cold-disk reads.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use oxtail_journal::{Journal, Options, Replay};

const SYNC_EVERY: u64 = 1000;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let records: u64 = match args.next() {
        Some(n) => n.parse()?,
        None => 1_000_000,
    };
    let temp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map_or_else(|| temp.path().join("journal"), PathBuf::from);

    // ~100-byte payloads that differ per record.
    let mut payload = [0x5au8; 108];

    let (mut journal, _) = Journal::open(&dir, Options::default(), |_| Ok(()))?;
    let start = Instant::now();
    for i in 0..records {
        payload[..8].copy_from_slice(&i.to_le_bytes());
        let len = 92 + (i % 17) as usize; // 92..=108 bytes, mean ~100
        journal.append(&payload[..len])?;
        if (i + 1) % SYNC_EVERY == 0 {
            journal.sync()?;
        }
    }
    journal.sync()?;
    let append_secs = start.elapsed().as_secs_f64();
    let disk_bytes = journal.disk_bytes();
    drop(journal);

    let start = Instant::now();
    let mut replayed = 0u64;
    let mut payload_bytes = 0u64;
    let (journal, report) = Journal::open(&dir, Options::default(), |item| {
        if let Replay::Record { payload, .. } = item {
            replayed += 1;
            payload_bytes += payload.len() as u64;
        }
        Ok(())
    })?;
    let replay_secs = start.elapsed().as_secs_f64();
    assert_eq!(replayed, records, "replay lost records");
    assert_eq!(report.last_seq, records);
    drop(journal);

    let mib = disk_bytes as f64 / (1024.0 * 1024.0);
    println!("records:      {records} (~100-byte payloads, sync every {SYNC_EVERY})");
    println!("journal size: {mib:.1} MiB on disk, {payload_bytes} payload bytes");
    println!(
        "append+sync:  {append_secs:.3} s = {:.0} records/s, {:.1} MiB/s ({} fdatasyncs)",
        records as f64 / append_secs,
        mib / append_secs,
        records.div_ceil(SYNC_EVERY),
    );
    println!(
        "open/replay:  {replay_secs:.3} s = {:.0} records/s, {:.1} MiB/s",
        records as f64 / replay_secs,
        mib / replay_secs,
    );
    Ok(())
}
