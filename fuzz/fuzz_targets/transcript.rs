//! Fuzzes the transcript reader behind `read_session`
//! (`oxtail_daemon::transcript::read_turns`): the fuzzed bytes are a Claude
//! Code transcript or Codex rollout file, read backwards line by line.
//!
//! Input layout: `opts: u8 | opts2: u8 | file bytes` —
//! limit = 1 + (opts & 31); max_bytes = [64, 512, 4096, 24 KiB][opts >> 5 & 3];
//! include_tool_results = opts2 & 1; tail_scan = [100 B, 4 KiB, 70 KiB, 4 MiB][opts2 >> 1 & 3].
//!
//! Properties: no panic and no error on any content (only I/O errors may
//! fail); at most `limit` turns; their sizes add up to at most `max_bytes`
//! (a turn cut to fit counts its text only: its tool summaries and timestamp
//! are kept whole, a known deviation from `ReadOpts::max_bytes`'s doc); no
//! more bytes scanned than the file holds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtail_daemon::transcript::{read_turns, ReadOpts};
use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!(
            "oxtail-fuzz-transcript-{}.jsonl",
            std::process::id()
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (o1, o2) = (data[0], data[1]);
    let opts = ReadOpts {
        limit: 1 + (o1 & 31) as usize,
        max_bytes: [64, 512, 4096, 24 * 1024][(o1 >> 5 & 3) as usize],
        include_tool_results: o2 & 1 != 0,
        tail_scan: [100, 4096, 70 * 1024, 4 << 20][(o2 >> 1 & 3) as usize],
    };
    let path = scratch();
    std::fs::write(path, &data[2..]).unwrap();
    let r = read_turns(path, &opts).expect("content never makes read_turns fail");
    assert!(
        r.turns.len() <= opts.limit,
        "{} turns > limit {}",
        r.turns.len(),
        opts.limit
    );
    // Known deviation (reported to the transcript owner): a turn cut to fit
    // (`truncated`) has its text cut, but its tool summaries and timestamp
    // are kept whole, so only its text is held to the budget here.
    let used: usize = r
        .turns
        .iter()
        .map(|t| if t.truncated { t.text.len() } else { t.size() })
        .sum();
    assert!(
        used <= opts.max_bytes,
        "{used} bytes of turns > max_bytes {} (limit {}): {:?}",
        opts.max_bytes,
        opts.limit,
        r.turns
            .iter()
            .map(|t| (
                t.role,
                t.text.len(),
                t.tool_calls.iter().map(|c| c.len() + 1).sum::<usize>(),
                t.timestamp.as_ref().map_or(0, String::len),
                t.truncated
            ))
            .collect::<Vec<_>>()
    );
    assert!(
        r.bytes_scanned <= (data.len() - 2) as u64,
        "scanned more than the file"
    );
});
