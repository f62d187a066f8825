//! Behavioural tests of the public journal API against real files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oxtail_journal::{Journal, Options, RecoveryReport, Rejected, Replay, SeqRange};

/// What a recovery delivered to the replay callback.
#[derive(Debug, Default, PartialEq, Eq)]
struct Replayed {
    snapshot: Option<(u64, Vec<u8>)>,
    records: Vec<(u64, Vec<u8>)>,
}

fn try_open(dir: &Path, opts: Options) -> io::Result<(Journal, RecoveryReport, Replayed)> {
    let mut out = Replayed::default();
    let (journal, report) = Journal::open(dir, opts, |item| {
        match item {
            Replay::Snapshot { seq, bytes } => {
                assert!(out.snapshot.is_none(), "second snapshot delivered");
                assert!(out.records.is_empty(), "snapshot delivered after records");
                out.snapshot = Some((seq, bytes.to_vec()));
            }
            Replay::Record { seq, payload } => out.records.push((seq, payload.to_vec())),
        }
        Ok(())
    })?;
    Ok((journal, report, out))
}

fn open_with(dir: &Path, opts: Options) -> (Journal, RecoveryReport, Replayed) {
    try_open(dir, opts).expect("open journal")
}

fn open(dir: &Path) -> (Journal, RecoveryReport, Replayed) {
    open_with(dir, Options::default())
}

fn small_segments(max: u64) -> Options {
    Options {
        segment_max_bytes: max,
        ..Options::default()
    }
}

/// A deterministic payload of varying length (0..=60 bytes) for `seq`.
fn payload(seq: u64) -> Vec<u8> {
    let mut p = format!("#{seq}:").into_bytes();
    let extra = (seq * 7919 % 50) as usize;
    p.extend((0..extra).map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8)));
    p
}

fn expected(seqs: impl IntoIterator<Item = u64>) -> Vec<(u64, Vec<u8>)> {
    seqs.into_iter().map(|s| (s, payload(s))).collect()
}

/// Appends `payload(seq)` for every seq in `seqs`, checking the assigned seq.
fn append_range(journal: &mut Journal, seqs: impl IntoIterator<Item = u64>) {
    for seq in seqs {
        assert_eq!(journal.append(&payload(seq)).expect("append"), seq);
    }
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("journal-{first_seq:020}.log"))
}

fn snapshot_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("snapshot-{seq:020}.snap"))
}

/// Sorted names of the files in `dir` starting with `prefix`.
fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

fn segment_names(dir: &Path) -> Vec<String> {
    files_with_prefix(dir, "journal-")
}

fn segments_total_len(dir: &Path) -> u64 {
    segment_names(dir)
        .iter()
        .map(|n| fs::metadata(dir.join(n)).unwrap().len())
        .sum()
}

/// Copies the journal files of `from` into `to` (not the lock file).
fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "LOCK" && entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Every file in `dir` with its contents, for "nothing changed" checks.
fn dir_contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 1 << bit;
    fs::write(path, bytes).unwrap();
}

const SEGMENT_HEADER: u64 = 8;
const RECORD_HEADER: u64 = 16;

#[test]
fn append_sync_reopen_replays_everything_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested").join("journal");
    let n = 500;
    {
        let (mut j, report, replayed) = open(&dir);
        assert_eq!(report.last_seq, 0);
        assert_eq!(report.snapshot_seq, None);
        assert_eq!(replayed, Replayed::default());
        append_range(&mut j, 1..=n);
        j.append(b"").map(|seq| assert_eq!(seq, n + 1)).unwrap();
        j.sync().unwrap();
        assert_eq!(j.last_seq(), n + 1);
        assert_eq!(j.disk_bytes(), segments_total_len(&dir));
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let (j, report, replayed) = open(&dir);
    let mut want = expected(1..=n);
    want.push((n + 1, Vec::new()));
    assert_eq!(replayed.records, want);
    assert_eq!(replayed.snapshot, None);
    assert_eq!(report.records_replayed, n + 1);
    assert_eq!(report.last_seq, n + 1);
    assert_eq!(report.truncated, None);
    assert_eq!(j.last_seq(), n + 1);
    let record_bytes: u64 = want
        .iter()
        .map(|(_, p)| RECORD_HEADER + p.len() as u64)
        .sum();
    assert_eq!(j.bytes_since_snapshot(), record_bytes);
    assert_eq!(j.disk_bytes(), SEGMENT_HEADER + record_bytes);
    assert_eq!(j.disk_bytes(), segments_total_len(&dir));
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let seg = segment_path(&src, 1);
    let (start, end) = {
        let (mut j, _, _) = open(&src);
        append_range(&mut j, 1..=19);
        let start = fs::metadata(&seg).unwrap().len();
        j.append(&payload(20)).unwrap();
        j.sync().unwrap();
        (start, fs::metadata(&seg).unwrap().len())
    };
    assert_eq!(end - start, RECORD_HEADER + payload(20).len() as u64);

    for cut in start..end {
        let dir = tmp.path().join(format!("cut-{cut}"));
        fs::create_dir(&dir).unwrap();
        copy_dir(&src, &dir);
        let seg = segment_path(&dir, 1);
        fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();

        let (mut j, report, replayed) = open(&dir);
        assert_eq!(replayed.records, expected(1..=19), "cut at {cut}");
        assert_eq!(report.last_seq, 19);
        assert_eq!(report.records_replayed, 19);
        if cut == start {
            // The file ends cleanly after record 19: nothing to cut.
            assert_eq!(report.truncated, None);
        } else {
            let t = report.truncated.expect("truncation reported");
            assert_eq!(t.segment, seg);
            assert_eq!(t.offset, start);
            assert_eq!(t.bytes_cut, cut - start);
            assert!(t.reason.contains("torn"), "reason: {}", t.reason);
        }
        assert_eq!(fs::metadata(&seg).unwrap().len(), start);

        assert_eq!(j.append(b"second twenty").unwrap(), 20);
        j.sync().unwrap();
        drop(j);
        let (_, report, replayed) = open(&dir);
        let mut want = expected(1..=19);
        want.push((20, b"second twenty".to_vec()));
        assert_eq!(replayed.records, want, "cut at {cut}");
        assert_eq!(report.truncated, None);
        assert_eq!(report.last_seq, 20);
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// Writes 50 records with 30-byte payloads, so record `k` starts at
/// `8 + (k - 1) * 46`.
fn fixed_size_journal(dir: &Path, opts: Options) {
    let (mut j, _, _) = open_with(dir, opts);
    for seq in 1..=50u64 {
        j.append(&fixed_payload(seq)).unwrap();
    }
    j.sync().unwrap();
}

fn fixed_payload(seq: u64) -> Vec<u8> {
    format!("{seq:0>30}").into_bytes()
}

const FIXED_RECORD: u64 = RECORD_HEADER + 30;

/// Files in the journal's quarantine directory, sorted.
fn quarantine_files(dir: &Path) -> Vec<String> {
    let q = dir.join("quarantine");
    if !q.exists() {
        return Vec::new();
    }
    files_with_prefix(&q, "")
}

#[test]
fn bit_flip_in_a_middle_record_sets_only_that_record_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let record_25 = SEGMENT_HEADER + 24 * FIXED_RECORD;
    // Flip bits in the length, checksum, seq and payload of record 25.
    for (case, (offset_in_record, bit)) in
        [(0, 0), (3, 7), (5, 2), (8, 0), (15, 6), (16, 3), (45, 7)]
            .into_iter()
            .enumerate()
    {
        let dir = tmp.path().join(format!("case-{case}"));
        fixed_size_journal(&dir, Options::default());
        let seg = segment_path(&dir, 1);
        let total = fs::metadata(&seg).unwrap().len();
        let original = fs::read(&seg).unwrap();
        flip_bit(&seg, record_25 + offset_in_record, bit);
        let damaged = fs::read(&seg).unwrap();

        let (mut j, report, replayed) = open(&dir);
        let want: Vec<_> = (1..=50)
            .filter(|&s| s != 25)
            .map(|s| (s, fixed_payload(s)))
            .collect();
        assert_eq!(replayed.records, want, "case {case}");
        assert_eq!(report.truncated, None, "case {case}");
        assert_eq!(
            report.missing,
            vec![SeqRange {
                first: 25,
                last: 25
            }]
        );
        assert_eq!(report.quarantined.len(), 1, "case {case}");
        let q = &report.quarantined[0];
        assert_eq!(
            (q.offset, q.len),
            (record_25, FIXED_RECORD),
            "case {case}: {}",
            q.reason
        );
        // The damaged bytes are kept, the segment holds everything else.
        let saved = fs::read(q.saved_to.as_ref().unwrap()).unwrap();
        let span = record_25 as usize..(record_25 + FIXED_RECORD) as usize;
        assert_eq!(saved, damaged[span.clone()]);
        let mut without = original.clone();
        without.drain(span);
        assert_eq!(fs::read(&seg).unwrap(), without);
        assert_eq!(fs::metadata(&seg).unwrap().len(), total - FIXED_RECORD);
        assert_eq!(report.last_seq, 50);
        assert_eq!(j.append(b"after").unwrap(), 51);
        j.sync().unwrap();
        drop(j);
        // Repaired: a second open sets nothing aside (the gap stays known).
        let (_, report, replayed) = open(&dir);
        assert!(report.quarantined.is_empty(), "case {case}");
        assert_eq!(
            report.missing,
            vec![SeqRange {
                first: 25,
                last: 25
            }]
        );
        assert_eq!(replayed.records.len(), 50);
    }
}

#[test]
fn bit_flip_in_a_middle_segment_keeps_later_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 46-byte records, at most 10 per 470-byte segment.
    fixed_size_journal(dir, small_segments(470));
    let names = segment_names(dir);
    assert_eq!(names.len(), 5, "{names:?}");
    let seg_21 = segment_path(dir, 21);
    // Record 25 is the fifth in segment 21.
    let offset = SEGMENT_HEADER + 4 * FIXED_RECORD;
    flip_bit(&seg_21, offset + 20, 1);

    let (mut j, report, replayed) = open_with(dir, small_segments(470));
    let want: Vec<_> = (1..=50)
        .filter(|&s| s != 25)
        .map(|s| (s, fixed_payload(s)))
        .collect();
    assert_eq!(replayed.records, want);
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.quarantined[0].source, seg_21);
    assert!(
        report.quarantined[0].reason.contains("checksum"),
        "{:?}",
        report.quarantined
    );
    assert_eq!(
        report.missing,
        vec![SeqRange {
            first: 25,
            last: 25
        }]
    );
    assert_eq!(segment_names(dir), names);
    assert_eq!(j.disk_bytes(), segments_total_len(dir));
    assert_eq!(j.append(b"x").unwrap(), 51);
}

#[test]
fn damaged_segment_header_is_recovered_by_scanning() {
    let tmp = tempfile::tempdir().unwrap();
    // Every byte of the header: magic and version (including a version
    // turned into 0, 2 and something huge).
    let mut cases: Vec<(u64, u8)> = (0..8).map(|at| (at, 0x01)).collect();
    cases.extend([(4, 0x03), (7, 0x80)]);
    for (case, (at, mask)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("case-{case}"));
        fixed_size_journal(&dir, Options::default());
        let seg = segment_path(&dir, 1);
        let mut bytes = fs::read(&seg).unwrap();
        bytes[at as usize] ^= mask;
        fs::write(&seg, &bytes).unwrap();
        let (_, report, replayed) = try_open(&dir, Options::default())
            .unwrap_or_else(|e| panic!("case {case} (byte {at}): {e}"));
        let want: Vec<_> = (1..=50).map(|s| (s, fixed_payload(s))).collect();
        assert_eq!(replayed.records, want, "case {case}");
        assert!(report.missing.is_empty(), "case {case}");
        assert_eq!(report.quarantined.len(), 1, "case {case}");
        assert_eq!(
            (report.quarantined[0].offset, report.quarantined[0].len),
            (0, 8)
        );
        assert!(
            report.quarantined[0].reason.contains("header"),
            "{:?}",
            report.quarantined
        );
        assert_eq!(
            &fs::read(&seg).unwrap()[..8],
            b"OXJL\x01\x00\x00\x00",
            "case {case}"
        );
    }
}

#[test]
fn records_out_of_order_are_set_aside_and_gaps_reported() {
    let tmp = tempfile::tempdir().unwrap();
    // Donor journal: 50 fixed-size records whose bytes we splice elsewhere.
    let donor = tmp.path().join("donor");
    fixed_size_journal(&donor, Options::default());
    let donor_bytes = fs::read(segment_path(&donor, 1)).unwrap();
    let record = |seq: u64| {
        let start = (SEGMENT_HEADER + (seq - 1) * FIXED_RECORD) as usize;
        donor_bytes[start..start + FIXED_RECORD as usize].to_vec()
    };
    let seq0 = {
        // Record 1 re-encoded as seq 0 with a correct checksum.
        let mut r = record(1);
        r[8..16].copy_from_slice(&0u64.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&r[8..16]), &r[16..]);
        r[4..8].copy_from_slice(&crc.to_le_bytes());
        r
    };
    // After records 1..=5: (what follows, seqs replayed, missing, set aside).
    type Case = (Vec<u8>, Vec<u64>, Vec<SeqRange>, usize);
    let cases: Vec<Case> = vec![
        // A skipped seq: 7 is replayed, 6 reported missing, then 6 is out of order.
        (
            [record(7), record(6), record(8)].concat(),
            vec![1, 2, 3, 4, 5, 7, 8],
            vec![SeqRange { first: 6, last: 6 }],
            1,
        ),
        // A repeated seq is set aside, the records after it kept.
        (
            [record(5), record(6)].concat(),
            (1..=6).collect(),
            vec![],
            1,
        ),
        // Seq 0 is never valid.
        ([seq0, record(6)].concat(), (1..=6).collect(), vec![], 1),
    ];
    for (case, (tail, seqs, missing, aside)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("case-{case}"));
        fs::create_dir(&dir).unwrap();
        let seg = segment_path(&dir, 1);
        let mut bytes = donor_bytes[..(SEGMENT_HEADER + 5 * FIXED_RECORD) as usize].to_vec();
        bytes.extend(tail);
        fs::write(&seg, bytes).unwrap();

        let (mut j, report, replayed) = open(&dir);
        let want: Vec<_> = seqs.iter().map(|&s| (s, fixed_payload(s))).collect();
        assert_eq!(replayed.records, want, "case {case}");
        assert_eq!(report.missing, missing, "case {case}");
        assert_eq!(report.quarantined.len(), aside, "case {case}");
        assert!(
            report.quarantined[0].reason.contains("out of order"),
            "{:?}",
            report.quarantined
        );
        assert_eq!(report.truncated, None);
        let last = *seqs.last().unwrap();
        assert_eq!(j.append(b"next").unwrap(), last + 1);
    }
}

#[test]
fn undecodable_records_and_snapshots_rejected_by_the_caller_are_set_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let (mut j, _, _) = open(dir);
        append_range(&mut j, 1..=10);
        j.snapshot(b"state@10").unwrap();
        append_range(&mut j, 11..=20);
        j.snapshot(b"bad state@20").unwrap();
        append_range(&mut j, 21..=30);
        j.sync().unwrap();
    }
    let reject = |item: Replay<'_>| -> io::Result<()> {
        match item {
            Replay::Snapshot { bytes, .. } if bytes.starts_with(b"bad") => {
                Err(Rejected("not a state".into()).into())
            }
            Replay::Record {
                seq: 15 | 16 | 27, ..
            } => Err(Rejected("not commands".into()).into()),
            _ => Ok(()),
        }
    };
    // verify reports exactly what open will do, and changes nothing.
    let before = dir_contents(dir);
    let checked = oxtail_journal::verify(dir, reject).unwrap();
    assert_eq!(dir_contents(dir), before);
    assert!(checked.quarantined.iter().all(|q| q.saved_to.is_none()));

    let mut seqs = Vec::new();
    let mut snapshot = None;
    let (_, report) = Journal::open(dir, Options::default(), |item| {
        reject(item)?;
        match item {
            Replay::Snapshot { bytes, .. } => snapshot = Some(bytes.to_vec()),
            Replay::Record { seq, .. } => seqs.push(seq),
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(snapshot.as_deref(), Some(&b"state@10"[..]));
    let want: Vec<u64> = (11..=30).filter(|s| ![15, 16, 27].contains(s)).collect();
    assert_eq!(seqs, want);
    assert_eq!(
        report.missing,
        vec![
            SeqRange {
                first: 15,
                last: 16
            },
            SeqRange {
                first: 27,
                last: 27
            }
        ]
    );
    assert_eq!(report.quarantined.len(), 4, "{:?}", report.quarantined);
    assert_eq!(report.last_seq, 30);
    assert_eq!(checked.missing, report.missing);
    assert_eq!(checked.quarantined.len(), report.quarantined.len());
    assert!(quarantine_files(dir).contains(&format!("snapshot-{:020}.snap", 20)));
    assert!(!snapshot_path(dir, 20).exists());
}

#[test]
fn snapshot_compacts_and_keeps_the_previous_generation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let opts = small_segments(400);
    let first_gen = {
        let (mut j, _, _) = open_with(dir, opts.clone());
        append_range(&mut j, 1..=30);
        let first_gen = segment_names(dir);
        assert!(
            first_gen.len() > 1,
            "want several segments before compaction"
        );
        assert!(j.bytes_since_snapshot() > 0);
        j.snapshot(b"state@30").unwrap();
        assert_eq!(j.bytes_since_snapshot(), 0);
        assert_eq!(j.last_seq(), 30);
        // No previous generation yet: every segment stays.
        let mut want = first_gen.clone();
        want.push(format!("journal-{:020}.log", 31));
        assert_eq!(segment_names(dir), want);
        assert_eq!(j.disk_bytes(), segments_total_len(dir));
        append_range(&mut j, 31..=40);
        j.snapshot(b"state@40").unwrap();
        // Snapshot 30 is now the previous generation: segments it covers go.
        assert_eq!(
            files_with_prefix(dir, "snapshot-"),
            vec![
                format!("snapshot-{:020}.snap", 30),
                format!("snapshot-{:020}.snap", 40)
            ]
        );
        assert!(segment_names(dir)
            .iter()
            .all(|n| n.as_str() >= "journal-00000000000000000031.log"));
        assert_eq!(j.disk_bytes(), segments_total_len(dir));
        append_range(&mut j, 41..=45);
        j.sync().unwrap();
        first_gen
    };
    assert!(!first_gen.is_empty());
    let (j, report, replayed) = open_with(dir, opts.clone());
    assert_eq!(replayed.snapshot, Some((40, b"state@40".to_vec())));
    assert_eq!(replayed.records, expected(41..=45));
    assert_eq!(report.records_replayed, 5);
    assert_eq!(report.last_seq, 45);
    assert_eq!(report.truncated, None);
    let bytes: u64 = (41..=45)
        .map(|s| RECORD_HEADER + payload(s).len() as u64)
        .sum();
    assert_eq!(j.bytes_since_snapshot(), bytes);
    assert_eq!(j.disk_bytes(), segments_total_len(dir));
    drop(j);

    // Damage the newest snapshot every way: the previous generation plus
    // the segments after it still give every record.
    for (case, damage) in ["flip", "truncate", "delete"].into_iter().enumerate() {
        let d = tmp.path().join(format!("damaged-{case}"));
        fs::create_dir(&d).unwrap();
        copy_dir(dir, &d);
        let snap = snapshot_path(&d, 40);
        match damage {
            "flip" => flip_bit(&snap, 30, 2),
            "truncate" => fs::write(&snap, &fs::read(&snap).unwrap()[..20]).unwrap(),
            _ => fs::remove_file(&snap).unwrap(),
        }
        let (_, report, replayed) = open_with(&d, opts.clone());
        assert_eq!(
            replayed.snapshot,
            Some((30, b"state@30".to_vec())),
            "{damage}"
        );
        assert_eq!(replayed.records, expected(31..=45), "{damage}");
        assert!(report.missing.is_empty(), "{damage}: {:?}", report.missing);
        assert_eq!(
            report.quarantined.len(),
            usize::from(damage != "delete"),
            "{damage}"
        );
    }
}

#[test]
fn snapshot_without_new_records_and_at_seq_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let (mut j, _, _) = open(dir);
        j.snapshot(b"empty").unwrap();
        j.snapshot(b"still empty").unwrap();
        assert_eq!(
            files_with_prefix(dir, "snapshot-"),
            vec![format!("snapshot-{:020}.snap", 0)]
        );
        assert_eq!(segment_names(dir), vec![format!("journal-{:020}.log", 1)]);
        append_range(&mut j, 1..=3);
        j.snapshot(b"three").unwrap();
        j.snapshot(b"three again").unwrap();
        // Snapshot 0 is the previous generation; it covers no segment.
        assert_eq!(
            files_with_prefix(dir, "snapshot-"),
            vec![
                format!("snapshot-{:020}.snap", 0),
                format!("snapshot-{:020}.snap", 3)
            ]
        );
        assert_eq!(
            segment_names(dir),
            vec![
                format!("journal-{:020}.log", 1),
                format!("journal-{:020}.log", 4)
            ]
        );
    }
    let (mut j, report, replayed) = open(dir);
    assert_eq!(replayed.snapshot, Some((3, b"three again".to_vec())));
    assert!(replayed.records.is_empty());
    assert_eq!(report.last_seq, 3);
    assert_eq!(j.append(b"four").unwrap(), 4);
}

/// Snapshot 10 + records 11..=20, snapshot 20 + records 21..=25.
/// `keep_old_segment` = whether the segment holding 11..=20 is still there
/// (older builds deleted it at compaction).
fn two_snapshots(dir: &Path, keep_old_segment: bool) {
    let (mut j, _, _) = open(dir);
    append_range(&mut j, 1..=10);
    j.snapshot(b"state@10").unwrap();
    append_range(&mut j, 11..=20);
    j.snapshot(b"state@20").unwrap();
    append_range(&mut j, 21..=25);
    j.sync().unwrap();
    drop(j);
    if !keep_old_segment {
        fs::remove_file(segment_path(dir, 11)).unwrap();
    }
}

#[test]
fn newest_snapshot_is_used_when_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    two_snapshots(dir, true);
    let (_, report, replayed) = open(dir);
    assert_eq!(replayed.snapshot, Some((20, b"state@20".to_vec())));
    assert_eq!(replayed.records, expected(21..=25));
    assert_eq!(report.truncated, None);
    // Open deletes nothing: the previous generation stays.
    assert_eq!(
        files_with_prefix(dir, "snapshot-"),
        vec![
            format!("snapshot-{:020}.snap", 10),
            format!("snapshot-{:020}.snap", 20)
        ]
    );
    assert_eq!(
        segment_names(dir),
        vec![
            format!("journal-{:020}.log", 11),
            format!("journal-{:020}.log", 21)
        ]
    );
}

#[test]
fn corrupt_newest_snapshot_falls_back_to_the_older_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    two_snapshots(dir, true);
    let snap_20 = snapshot_path(dir, 20);
    let len = fs::metadata(&snap_20).unwrap().len();
    flip_bit(&snap_20, len - 1, 0);

    let (mut j, report, replayed) = open(dir);
    assert_eq!(replayed.snapshot, Some((10, b"state@10".to_vec())));
    assert_eq!(replayed.records, expected(11..=25));
    assert_eq!(report.snapshot_seq, Some(10));
    assert_eq!(report.records_replayed, 15);
    assert_eq!(report.truncated, None);
    assert_eq!(report.last_seq, 25);
    assert!(report.missing.is_empty());
    // The damaged snapshot is moved aside, not deleted.
    assert_eq!(report.quarantined.len(), 1);
    assert!(!snap_20.exists());
    assert_eq!(
        quarantine_files(dir),
        vec![format!("snapshot-{:020}.snap", 20)]
    );
    // The next snapshot keeps the good generation it fell back to.
    j.snapshot(b"state@25").unwrap();
    assert_eq!(
        files_with_prefix(dir, "snapshot-"),
        vec![
            format!("snapshot-{:020}.snap", 10),
            format!("snapshot-{:020}.snap", 25)
        ]
    );
    assert_eq!(
        quarantine_files(dir),
        vec![format!("snapshot-{:020}.snap", 20)]
    );
}

#[test]
fn corrupt_newest_snapshot_with_compacted_segments_recovers_what_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    two_snapshots(dir, false);
    let snap_20 = snapshot_path(dir, 20);
    flip_bit(&snap_20, 30, 4);
    let seg_21 = segment_path(dir, 21);

    let (mut j, report, replayed) = open(dir);
    assert_eq!(replayed.snapshot, Some((10, b"state@10".to_vec())));
    // The records after the gap are kept and replayed; the gap is reported.
    assert_eq!(replayed.records, expected(21..=25));
    assert_eq!(
        report.missing,
        vec![SeqRange {
            first: 11,
            last: 20
        }]
    );
    assert_eq!(report.last_seq, 25);
    assert_eq!(report.truncated, None);
    assert!(seg_21.exists());
    assert_eq!(j.append(b"twenty-six").unwrap(), 26);
    j.sync().unwrap();
    drop(j);
    let (_, _, replayed) = open(dir);
    let mut want = expected(21..=25);
    want.push((26, b"twenty-six".to_vec()));
    assert_eq!(replayed.records, want);
}

#[test]
fn every_snapshot_lost_still_replays_the_segments_that_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    two_snapshots(dir, false);
    fs::remove_file(snapshot_path(dir, 10)).unwrap();
    fs::remove_file(snapshot_path(dir, 20)).unwrap();
    let (_, report, replayed) = open(dir);
    assert_eq!(replayed.snapshot, None);
    // Segment 1 was compacted away long ago; 21..=25 are still there.
    assert_eq!(replayed.records, expected(21..=25));
    assert_eq!(report.missing, vec![SeqRange { first: 1, last: 20 }]);
}

#[test]
fn rollover_splits_segments_and_replays_across_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let max = 256;
    {
        let (mut j, _, _) = open_with(dir, small_segments(max));
        append_range(&mut j, 1..=100);
        j.sync().unwrap();
        assert_eq!(j.disk_bytes(), segments_total_len(dir));
    }
    let names = segment_names(dir);
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        let bytes = fs::read(dir.join(name)).unwrap();
        assert!(bytes.len() as u64 <= max, "{name} is {} bytes", bytes.len());
        // The name is the seq of the segment's first record.
        let first_seq = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
        assert_eq!(name, &format!("journal-{first_seq:020}.log"));
    }

    let (mut j, report, replayed) = open_with(dir, small_segments(max));
    assert_eq!(replayed.records, expected(1..=100));
    assert_eq!(report.truncated, None);
    assert_eq!(j.disk_bytes(), segments_total_len(dir));
    append_range(&mut j, 101..=120);
    j.sync().unwrap();
    drop(j);
    let (_, _, replayed) = open_with(dir, Options::default());
    assert_eq!(replayed.records, expected(1..=120));
}

#[test]
fn oversized_record_gets_its_own_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut j, _, _) = open_with(dir, small_segments(100));
    j.append(b"small").unwrap();
    j.append(&[7; 300]).unwrap();
    j.append(b"small again").unwrap();
    j.sync().unwrap();
    drop(j);
    assert_eq!(segment_names(dir).len(), 3);
    let (_, _, replayed) = open(dir);
    assert_eq!(replayed.records[1], (2, vec![7; 300]));
}

#[test]
fn injected_storage_full_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let seg = segment_path(dir, 1);
    // 86-byte records: 11 fit in 1000 bytes, leaving 54 bytes of "space".
    let opts = Options {
        fail_appends_after_bytes: Some(1000),
        ..Options::default()
    };
    let record = [0xab; 70];
    let (mut j, _, _) = open_with(dir, opts);
    for seq in 1..=11 {
        assert_eq!(j.append(&record).unwrap(), seq);
    }
    j.sync().unwrap();
    let len_before = fs::metadata(&seg).unwrap().len();
    let disk_before = j.disk_bytes();
    let since_before = j.bytes_since_snapshot();

    let err = j.append(&record).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert!(
        err.to_string()
            .contains("no space left on device (injected)"),
        "{err}"
    );
    assert_eq!(fs::metadata(&seg).unwrap().len(), len_before);
    assert_eq!(j.last_seq(), 11);
    assert_eq!(j.disk_bytes(), disk_before);
    assert_eq!(j.bytes_since_snapshot(), since_before);

    // Still full, even for a record that would fit in the remaining 54 bytes.
    for payload in [&b"tiny"[..], &b""[..], &record[..]] {
        let err = j.append(payload).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(fs::metadata(&seg).unwrap().len(), len_before);
        assert_eq!(j.last_seq(), 11);
    }
    j.sync().unwrap();
    drop(j);

    let (mut j, report, replayed) = open(dir);
    assert_eq!(replayed.records.len(), 11);
    assert!(replayed.records.iter().all(|(_, p)| p[..] == record[..]));
    assert_eq!(report.truncated, None);
    assert_eq!(j.append(b"twelve").unwrap(), 12);
}

#[test]
fn payload_over_the_limit_is_invalid_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut j, _, _) = open(tmp.path());
    j.append(b"one").unwrap();
    let big = vec![0; oxtail_journal::MAX_PAYLOAD_BYTES + 1];
    let err = j.append(&big).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(j.last_seq(), 1);
    assert_eq!(j.disk_bytes(), SEGMENT_HEADER + RECORD_HEADER + 3);
    assert_eq!(j.append(b"two").unwrap(), 2);
}

fn set_version(path: &Path, at: u64, version: u32) {
    let mut bytes = fs::read(path).unwrap();
    let at = at as usize;
    bytes[at..at + 4].copy_from_slice(&version.to_le_bytes());
    fs::write(path, bytes).unwrap();
}

#[test]
fn newer_segment_version_is_invalid_data_not_truncation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let (mut j, _, _) = open_with(dir, small_segments(200));
        append_range(&mut j, 1..=30);
        j.sync().unwrap();
    }
    let names = segment_names(dir);
    assert!(names.len() >= 3);
    // Damage in an early segment must not cause the newer one to be touched.
    flip_bit(&dir.join(&names[0]), 30, 0);
    // A segment a newer oxtail wrote: version 2, records in another encoding.
    let newer = dir.join(&names[2]);
    let mut bytes = b"OXJL\x02\x00\x00\x00".to_vec();
    bytes.extend(b"{\"v2 record\": \"length-free encoding\"}\n".repeat(3));
    fs::write(&newer, bytes).unwrap();
    let before = dir_contents(dir);

    let err = try_open(dir, small_segments(200)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let msg = err.to_string();
    assert!(msg.contains("version 2"), "{msg}");
    assert!(msg.contains("newer oxtail"), "{msg}");
    assert!(msg.contains(&names[2]), "{msg}");
    assert_eq!(dir_contents(dir), before);
    let err = oxtail_journal::verify(dir, |_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("newer oxtail"), "{err}");
}

#[test]
fn a_damaged_version_field_is_damage_not_a_newer_format() {
    let tmp = tempfile::tempdir().unwrap();
    for (case, version) in [0u32, 2, 7, 0x0100_0001].into_iter().enumerate() {
        let dir = tmp.path().join(format!("case-{case}"));
        {
            let (mut j, _, _) = open(&dir);
            append_range(&mut j, 1..=5);
            j.snapshot(b"state").unwrap();
            append_range(&mut j, 6..=9);
            j.sync().unwrap();
        }
        set_version(&snapshot_path(&dir, 5), 4, version);
        set_version(&segment_path(&dir, 6), 4, version);
        let (_, report, replayed) =
            try_open(&dir, Options::default()).unwrap_or_else(|e| panic!("version {version}: {e}"));
        assert_eq!(
            replayed.snapshot,
            Some((5, b"state".to_vec())),
            "version {version}"
        );
        assert_eq!(replayed.records, expected(6..=9), "version {version}");
        assert!(report.missing.is_empty());
    }
}

#[test]
fn newer_snapshot_version_is_invalid_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let (mut j, _, _) = open(dir);
        append_range(&mut j, 1..=5);
        j.snapshot(b"state").unwrap();
        append_range(&mut j, 6..=7);
        j.sync().unwrap();
    }
    // Version 7 and a body that is not a version-1 snapshot.
    let snap = snapshot_path(dir, 5);
    set_version(&snap, 4, 7);
    let mut bytes = fs::read(&snap).unwrap();
    bytes.extend(b"v7 trailer");
    fs::write(&snap, bytes).unwrap();
    let before = dir_contents(dir);
    let err = try_open(dir, Options::default()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("version 7"), "{err}");
    assert!(err.to_string().contains("newer oxtail"), "{err}");
    assert_eq!(dir_contents(dir), before);
}

#[test]
fn empty_and_header_only_segments_are_fine() {
    let tmp = tempfile::tempdir().unwrap();
    for (case, contents) in [(0, &b""[..]), (1, &b"OXJL\x01\x00\x00\x00"[..])] {
        let dir = tmp.path().join(format!("case-{case}"));
        fs::create_dir(&dir).unwrap();
        fs::write(segment_path(&dir, 1), contents).unwrap();
        let (mut j, report, replayed) = open(&dir);
        assert_eq!(replayed, Replayed::default());
        assert_eq!(report.truncated, None, "case {case}");
        assert_eq!(report.last_seq, 0);
        assert_eq!(j.append(b"first").unwrap(), 1);
        j.sync().unwrap();
        drop(j);
        let (_, _, replayed) = open(&dir);
        assert_eq!(replayed.records, vec![(1, b"first".to_vec())]);
    }
}

#[test]
fn unknown_files_are_ignored_and_temp_snapshots_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let (mut j, _, _) = open(dir);
        append_range(&mut j, 1..=3);
        j.sync().unwrap();
    }
    fs::write(dir.join("notes.txt"), b"hello").unwrap();
    fs::write(dir.join("journal-7.log"), b"garbage").unwrap();
    fs::create_dir(dir.join(format!("journal-{:020}.log", 9))).unwrap();
    let temp = dir.join(format!("snapshot-{:020}.snap.tmp", 3));
    fs::write(&temp, b"half a snapshot").unwrap();

    let (_, report, replayed) = open(dir);
    assert_eq!(replayed.records, expected(1..=3));
    assert_eq!(report.truncated, None);
    assert!(dir.join("notes.txt").exists());
    assert!(dir.join("journal-7.log").exists());
    assert!(!temp.exists());
}

#[test]
fn second_open_of_the_same_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_j, _, _) = open(tmp.path());
    let err = try_open(tmp.path(), Options::default()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn replay_callback_error_is_returned_and_nothing_is_modified() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let (mut j, _, _) = open(dir);
        append_range(&mut j, 1..=10);
        j.sync().unwrap();
    }
    // A torn tail that a successful open would cut.
    let seg = segment_path(dir, 1);
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let before = dir_contents(dir);
    let err = Journal::open(dir, Options::default(), |item| match item {
        Replay::Record { seq: 5, .. } => Err(io::Error::other("state machine says no")),
        _ => Ok(()),
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "state machine says no");
    assert_eq!(dir_contents(dir), before);
}

/// xorshift64*: a tiny deterministic PRNG for the fuzz-style test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

#[test]
fn arbitrary_damage_never_panics_and_keeps_every_intact_record() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for trial in 0..300 {
        let dir = tmp.path().join(format!("trial-{trial}"));
        let opts = small_segments(120 + rng.below(400));
        {
            let (mut j, _, _) = open_with(&dir, opts.clone());
            let n = 1 + rng.below(40);
            let snap_at = rng.below(n + 1);
            for seq in 1..=n {
                j.append(&payload(seq)).unwrap();
                if seq == snap_at {
                    j.snapshot(format!("state@{seq}").as_bytes()).unwrap();
                }
            }
            j.sync().unwrap();
        }
        let files: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap() != "LOCK")
            .collect();
        for _ in 0..1 + rng.below(3) {
            let path = &files[rng.below(files.len() as u64) as usize];
            let Ok(mut bytes) = fs::read(path) else {
                continue;
            };
            match rng.below(5) {
                0 | 1 if !bytes.is_empty() => {
                    let at = rng.below(bytes.len() as u64) as usize;
                    bytes[at] ^= 1 + rng.below(255) as u8;
                }
                2 => bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize),
                3 => bytes.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
                _ => {
                    let _ = fs::remove_file(path);
                    continue;
                }
            }
            fs::write(path, bytes).unwrap();
        }

        match try_open(&dir, opts.clone()) {
            Ok((mut j, report, replayed)) => {
                let first = match &replayed.snapshot {
                    Some((seq, bytes)) => {
                        assert_eq!(bytes, format!("state@{seq}").as_bytes(), "trial {trial}");
                        seq + 1
                    }
                    None => 1,
                };
                // Every record replayed is intact, in strictly increasing
                // order, after the snapshot; every seq skipped is reported.
                let mut expect = first;
                let mut gaps = Vec::new();
                for (seq, p) in &replayed.records {
                    assert_eq!(p, &payload(*seq), "trial {trial}");
                    assert!(*seq >= expect, "trial {trial}: {seq} after {}", expect - 1);
                    if *seq > expect {
                        gaps.push(SeqRange {
                            first: expect,
                            last: seq - 1,
                        });
                    }
                    expect = seq + 1;
                }
                assert!(
                    gaps.iter().all(|g| report.missing.contains(g)),
                    "trial {trial}: {gaps:?} vs {:?}",
                    report.missing
                );
                let last = replayed.records.last().map_or(first - 1, |r| r.0);
                assert_eq!(report.last_seq, last, "trial {trial}");
                let next = j.append(b"after damage").unwrap();
                assert_eq!(next, report.last_seq + 1);
                j.sync().unwrap();
                drop(j);
                let (_, report2, replayed2) = open_with(&dir, opts);
                assert_eq!(report2.truncated, None, "trial {trial}");
                assert!(
                    report2.quarantined.is_empty(),
                    "trial {trial}: {:?}",
                    report2.quarantined
                );
                assert_eq!(replayed2.snapshot, replayed.snapshot, "trial {trial}");
                let mut want = replayed.records;
                want.push((next, b"after damage".to_vec()));
                assert_eq!(replayed2.records, want, "trial {trial}");
            }
            // Only a damaged version field may refuse to open.
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "trial {trial}: {e}"),
        }
    }
}

/// Found by the fuzzer (`fuzz/seeds/journal/damaged_newer_segment`): a
/// damaged later segment stays newest, so recovery opens a fresh segment at
/// `last_seq + 1`; a second open must reuse that slot instead of failing to
/// create a file that already exists. The input is the fuzz target's layout:
/// `flags | n | len u16 | segment 1 (len bytes) | journal-<n>.log`.
#[test]
fn reopening_beside_a_damaged_newer_segment_starts() {
    let data = include_bytes!("damaged_newer_segment.bin");
    let n = data[1] as u64;
    let len = u16::from_le_bytes([data[2], data[3]]) as usize;
    let (first, second) = data[4..].split_at(len);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("journal-00000000000000000001.log"), first).unwrap();
    fs::write(dir.join(format!("journal-{n:020}.log")), second).unwrap();
    let (j, first_report, first_replay) = open(dir);
    drop(j);
    for round in 0..3 {
        let (mut j, report, replayed) = try_open(dir, Options::default())
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        assert_eq!(
            &replayed.records[..first_replay.records.len()],
            &first_replay.records[..],
            "round {round}"
        );
        let next = j.append(b"after").unwrap();
        assert_eq!(next, report.last_seq + 1, "round {round}");
        j.sync().unwrap();
    }
    assert!(first_report.last_seq < n);
}

/// Issue 12: a snapshot written by another thread while the owner keeps
/// appending. The records up to the ticket's seq are in closed segments the
/// writer can read with `verify`; later appends land after it; a reopen
/// replays the snapshot, then exactly the later records.
#[test]
fn a_snapshot_written_off_thread_while_appending() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let (mut j, _, _) = open(&dir);
    append_range(&mut j, 1..=40);
    let ticket = j.begin_snapshot().unwrap();
    assert_eq!(ticket.seq(), 40);
    let before = j.bytes_since_snapshot();
    let writer = std::thread::spawn(move || {
        // Build "the state as of 40" from the files, as the daemon does.
        let mut seen = Vec::new();
        oxtail_journal::verify(ticket.dir(), |r| {
            if let Replay::Record { seq, payload } = r {
                if seq <= ticket.seq() {
                    seen.push((seq, payload.to_vec()));
                }
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, expected(1..=40));
        ticket.write(b"state@40").unwrap();
        ticket
    });
    // The owner keeps appending meanwhile.
    append_range(&mut j, 41..=60);
    j.sync().unwrap();
    let ticket = writer.join().unwrap();
    j.finish_snapshot(ticket);
    assert!(j.bytes_since_snapshot() < before);
    append_range(&mut j, 61..=62);
    j.sync().unwrap();
    drop(j);
    let (_j, report, got) = open(&dir);
    assert_eq!(got.snapshot, Some((40, b"state@40".to_vec())));
    assert_eq!(got.records, expected(41..=62));
    assert!(!report.found_damage());
}

/// A ticket finished after a newer snapshot changes nothing; a dropped
/// ticket (abandoned snapshot) loses nothing.
#[test]
fn stale_and_abandoned_snapshot_tickets_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let (mut j, _, _) = open(&dir);
    append_range(&mut j, 1..=10);
    let stale = j.begin_snapshot().unwrap();
    stale.write(b"state@10").unwrap();
    append_range(&mut j, 11..=20);
    j.snapshot(b"state@20").unwrap();
    j.finish_snapshot(stale);
    append_range(&mut j, 21..=25);
    let abandoned = j.begin_snapshot().unwrap();
    drop(abandoned);
    append_range(&mut j, 26..=30);
    j.sync().unwrap();
    drop(j);
    let (_j, _, got) = open(&dir);
    assert_eq!(got.snapshot, Some((20, b"state@20".to_vec())));
    assert_eq!(got.records, expected(21..=30));
}
