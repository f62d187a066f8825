//! Fuzzes journal recovery (`oxtail_journal::Journal::open`): a journal
//! directory holding fuzzed segment (and snapshot) bytes.
//!
//! Input layout (so seeds can be real journals):
//! `flags: u8 | n: u8 | len: u16 LE | first file: len bytes | second file: rest`
//! * the first file is `journal-00000000000000000001.log`;
//! * the second, when `flags & 1`, is `snapshot-<n>.snap`; else, when
//!   `flags & 2`, `journal-<n>.log`; else it is dropped;
//! * `flags & 4` re-seals the first file's record checksums first.
//!
//! Properties: `open` never panics; it replays records in increasing seq
//! order after the snapshot it replayed, reporting every gap damage left as
//! missing; the report agrees with what it replayed; and a journal it opened
//! accepts an append, after which a second open replays exactly the same
//! records plus that one and neither cuts nor sets aside anything.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtail_journal::{Journal, Options, Replay};
use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // tmpfs when there is one: recovery fsyncs, and this runs per input.
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("oxtail-fuzz-journal-{}", std::process::id()))
    })
}

/// Replayed records (seq, payload), the snapshot seq replayed, the report.
type Replayed = (
    Vec<(u64, Vec<u8>)>,
    Option<u64>,
    oxtail_journal::RecoveryReport,
);

fn replay(dir: &std::path::Path) -> std::io::Result<Replayed> {
    let mut records = Vec::new();
    let mut snap = None;
    let (journal, report) = Journal::open(dir, Options::default(), |r| {
        match r {
            Replay::Snapshot { seq, .. } => {
                assert!(records.is_empty(), "the snapshot comes first");
                assert!(snap.is_none(), "at most one snapshot");
                snap = Some(seq);
            }
            Replay::Record { seq, payload } => records.push((seq, payload.to_vec())),
        }
        Ok(())
    })?;
    drop(journal);
    Ok((records, snap, report))
}

/// Recomputes `crc = crc32c(seq LE ++ payload)` of each whole record after
/// the 8-byte segment header (record: `len u32 | crc u32 | seq u64 | payload`).
fn reseal(seg: &mut [u8]) {
    let mut off = 8;
    while off + 16 <= seg.len() {
        let len = u32::from_le_bytes(seg[off..off + 4].try_into().unwrap()) as usize;
        let end = off + 16 + len;
        if end > seg.len() {
            break;
        }
        let mut crc = crc32c::crc32c(&seg[off + 8..off + 16]);
        crc = crc32c::crc32c_append(crc, &seg[off + 16..end]);
        seg[off + 4..off + 8].copy_from_slice(&crc.to_le_bytes());
        off = end;
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let flags = data[0];
    let n = data[1] as u64;
    let len = u16::from_le_bytes([data[2], data[3]]) as usize;
    let body = &data[4..];
    let (first, second) = body.split_at(len.min(body.len()));

    // flags & 4: re-seal every record's checksum, so mutations reach the
    // length, sequence and snapshot logic behind the CRC check.
    let mut first = first.to_vec();
    if flags & 4 != 0 {
        reseal(&mut first);
    }

    let dir = scratch();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("journal-00000000000000000001.log"), &first).unwrap();
    if flags & 1 != 0 {
        std::fs::write(dir.join(format!("snapshot-{n:020}.snap")), second).unwrap();
    } else if flags & 2 != 0 {
        std::fs::write(dir.join(format!("journal-{n:020}.log")), second).unwrap();
    }

    let (records, snap, report) = match replay(dir) {
        Ok(x) => x,
        // Unknown format versions and I/O errors are clean errors.
        Err(_) => return,
    };
    // Records come in strictly increasing seq order after the snapshot;
    // damage may leave gaps (the journal never throws a later valid record
    // away), and every gap is reported missing.
    let start = snap.unwrap_or(0);
    let mut expect = start + 1;
    for (seq, _) in &records {
        assert!(*seq >= expect, "records increase after the snapshot");
        if *seq > expect {
            let gap = oxtail_journal::SeqRange {
                first: expect,
                last: seq - 1,
            };
            assert!(report.missing.contains(&gap), "gap {gap:?} is reported");
        }
        expect = seq + 1;
    }
    assert_eq!(report.snapshot_seq, snap);
    assert_eq!(report.records_replayed, records.len() as u64);
    assert_eq!(report.last_seq, records.last().map_or(start, |r| r.0));

    // The recovered journal is healthy: append, then a clean second open
    // (unless damage left it at the end of the sequence space, where an
    // append is refused cleanly).
    if report.last_seq >= u64::MAX - 1 {
        let (mut j, _) = Journal::open(dir, Options::default(), |_| Ok(())).expect("reopen");
        assert!(j.append(b"x").is_err(), "no seq past the space");
        return;
    }
    {
        let (mut j, _) = Journal::open(dir, Options::default(), |_| Ok(())).expect("reopen");
        let seq = j
            .append(b"fuzz-after-recovery")
            .expect("append after recovery");
        assert_eq!(seq, report.last_seq + 1);
        j.sync().expect("sync after recovery");
    }
    let (again, snap2, report2) = replay(dir).expect("second open");
    assert_eq!(snap2, snap, "the same snapshot");
    assert!(
        report2.truncated.is_none() && report2.quarantined.is_empty(),
        "a recovered journal needs no second cut: {report2:?}"
    );
    assert_eq!(&again[..records.len()], &records[..], "the same records");
    assert_eq!(again.len(), records.len() + 1);
    assert_eq!(again.last().unwrap().1, b"fuzz-after-recovery");
    let _ = std::fs::remove_dir_all(dir);
});
