//! Read-only half of recovery: listing the directory, choosing the snapshot
//! and walking the segment chain. Nothing in this module modifies files; it
//! produces a [`Plan`] that [`crate::Journal::open`] applies afterwards (and
//! that [`crate::verify`] only reports), so an error from the replay callback
//! leaves the directory untouched.
//!
//! The walk never gives up on a segment: after damaged bytes it probes every
//! later byte offset for the next record that verifies (checksum, plausible
//! length and seq), sets the bytes in between aside, and goes on. Only a torn
//! record at the very end of the newest segment (a crash mid-append, never
//! acknowledged) is simply cut.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::format::{
    self, FileKind, RecordStep, SegmentFormat, SegmentHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::{ctx, Replay, SeqRange};

/// A segment file found in the directory.
#[derive(Debug, Clone)]
pub(crate) struct SegmentFile {
    /// Sequence number of its first record, from the file name.
    pub first_seq: u64,
    pub path: PathBuf,
}

/// A snapshot file found in the directory.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotFile {
    /// Sequence number of the last record it covers, from the file name.
    pub seq: u64,
    pub path: PathBuf,
}

/// The journal's files in a directory; everything else is ignored.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Sorted by `first_seq`.
    pub segments: Vec<SegmentFile>,
    /// Sorted by `seq`.
    pub snapshots: Vec<SnapshotFile>,
    /// Uncommitted temp files (an interrupted snapshot or segment repair).
    pub temps: Vec<PathBuf>,
}

/// Lists the journal files in `dir` (regular files with names this crate
/// creates; everything else, including symlinks and the quarantine
/// directory, is ignored).
pub(crate) fn list_dir(dir: &Path) -> io::Result<Listing> {
    let mut listing = Listing::default();
    let entries =
        fs::read_dir(dir).map_err(|e| ctx(e, format_args!("listing {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| ctx(e, format_args!("listing {}", dir.display())))?;
        let Some(kind) = entry.file_name().to_str().and_then(format::classify) else {
            continue;
        };
        let is_file = entry
            .file_type()
            .map_err(|e| ctx(e, format_args!("inspecting {}", entry.path().display())))?
            .is_file();
        if !is_file {
            continue;
        }
        let path = entry.path();
        match kind {
            FileKind::Segment(first_seq) => listing.segments.push(SegmentFile { first_seq, path }),
            FileKind::Snapshot(seq) => listing.snapshots.push(SnapshotFile { seq, path }),
            FileKind::SnapshotTemp(_) | FileKind::SegmentTemp(_) => listing.temps.push(path),
        }
    }
    listing.segments.sort_by_key(|s| s.first_seq);
    listing.snapshots.sort_by_key(|s| s.seq);
    Ok(listing)
}

fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| ctx(e, format_args!("reading {}", path.display())))?;
    Ok(buf)
}

/// Fails with `InvalidData` if a segment was written by a newer oxtail: its
/// header names a version above [`format::FORMAT_VERSION`] and its first
/// record does not parse as the current format. A header whose version
/// field is merely damaged (version 0, or records that still parse) is
/// repaired by the scan instead. Run before anything is modified.
pub(crate) fn check_segment_versions(segments: &[SegmentFile]) -> io::Result<()> {
    let mut prefix = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    for seg in segments {
        prefix.clear();
        File::open(&seg.path)
            .and_then(|f| f.take(SEGMENT_HEADER_LEN).read_to_end(&mut prefix))
            .map_err(|e| ctx(e, format_args!("reading {}", seg.path.display())))?;
        let SegmentHeader::UnknownVersion(version) = format::parse_segment_header(&prefix) else {
            continue;
        };
        if version < format::FORMAT_VERSION {
            continue; // 0: never written by anyone, so damage
        }
        let buf = read_file(&seg.path)?;
        let body = &buf[SEGMENT_HEADER_LEN as usize..];
        let parses = body.is_empty()
            || matches!(
                SegmentFormat::CURRENT.decode_record(body),
                RecordStep::Record { .. }
            );
        if !parses {
            return Err(format::newer_version(
                &format!("journal segment {}", seg.path.display()),
                version,
            ));
        }
    }
    Ok(())
}

/// Whether an error returned by the replay callback is a [`crate::Rejected`].
pub(crate) fn rejection(e: &io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::Rejected>())
        .map(|r| r.0.clone())
}

/// A run of damaged bytes in a segment, to be set aside.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub start: u64,
    pub end: u64,
    pub reason: String,
}

/// The repairs one segment needs.
#[derive(Debug, Clone)]
pub(crate) struct SegmentRepair {
    /// Index into [`Listing::segments`].
    pub index: usize,
    /// Damaged byte ranges to quarantine and remove, in file order. A span
    /// starting at 0 covers (part of) the header: the file gets a fresh one.
    pub spans: Vec<Span>,
    /// A torn final record: keep the bytes before this offset, drop the rest
    /// without quarantining it (it was never acknowledged).
    pub torn: Option<(u64, String)>,
    /// Length of the file as found.
    pub file_len: u64,
}

/// The segment new records could be appended to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainEnd {
    /// Index into [`Listing::segments`].
    pub index: usize,
    /// Length in bytes after the planned repairs.
    pub len: u64,
    /// Its format; `None` for an empty (0-byte) file.
    pub format: Option<SegmentFormat>,
    /// Seq of the last record it holds after repairs, if any.
    pub last_record: Option<u64>,
}

/// A snapshot that failed its checks (or that the caller rejected).
#[derive(Debug, Clone)]
pub(crate) struct BadSnapshot {
    /// Index into [`Listing::snapshots`].
    pub index: usize,
    pub reason: String,
}

/// Everything recovery found, before anything is modified.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The snapshot replayed: (index into [`Listing::snapshots`], seq).
    pub snapshot: Option<(usize, u64)>,
    /// Snapshots newer than the one replayed that are damaged.
    pub bad_snapshots: Vec<BadSnapshot>,
    /// Segments before this index were not needed (the snapshot covers them).
    pub start: usize,
    pub repairs: Vec<SegmentRepair>,
    pub missing: Vec<SeqRange>,
    /// Seq of the last record replayed, or the snapshot's seq.
    pub last_seq: u64,
    pub end: Option<ChainEnd>,
    pub records_replayed: u64,
    /// Encoded bytes (header + payload) of the records replayed.
    pub bytes_replayed: u64,
}

/// Appends `first..=last` to `missing`, merging with the previous range.
fn add_missing(missing: &mut Vec<SeqRange>, first: u64, last: u64) {
    if first > last {
        return;
    }
    if let Some(prev) = missing.last_mut() {
        if prev.last.checked_add(1) == Some(first) {
            prev.last = last;
            return;
        }
    }
    missing.push(SeqRange { first, last });
}

/// Reads the directory's snapshots and segments, calling `f` with the
/// snapshot to start from and every record after it. Read-only.
pub(crate) fn plan<F>(listing: &Listing, f: &mut F) -> io::Result<Plan>
where
    F: FnMut(Replay<'_>) -> io::Result<()>,
{
    check_segment_versions(&listing.segments)?;
    let mut bad_snapshots = Vec::new();
    let mut snapshot = None;
    for (index, snap) in listing.snapshots.iter().enumerate().rev() {
        let file = read_file(&snap.path)?;
        let verdict = format::decode_snapshot(&file, snap.seq)
            .map_err(|e| ctx(e, format_args!("{}", snap.path.display())))?;
        let reason = match verdict {
            Ok(state) => match f(Replay::Snapshot {
                seq: snap.seq,
                bytes: &file[state],
            }) {
                Ok(()) => {
                    snapshot = Some((index, snap.seq));
                    break;
                }
                Err(e) => match rejection(&e) {
                    Some(why) => format!("its state does not decode: {why}"),
                    None => return Err(e),
                },
            },
            Err(reason) => reason,
        };
        tracing::warn!(
            snapshot = %snap.path.display(),
            %reason,
            "journal: damaged snapshot; falling back to the previous generation"
        );
        bad_snapshots.push(BadSnapshot { index, reason });
    }
    let snap_seq = snapshot.map_or(0, |(_, seq)| seq);
    let mut plan = Plan {
        snapshot,
        bad_snapshots,
        start: 0,
        repairs: Vec::new(),
        missing: Vec::new(),
        last_seq: snap_seq,
        end: None,
        records_replayed: 0,
        bytes_replayed: 0,
    };
    let needed = snap_seq.saturating_add(1);
    // The chain starts at the last segment whose first record is not after
    // the first record recovery needs; anything older is covered.
    plan.start = listing
        .segments
        .iter()
        .rposition(|s| s.first_seq <= needed)
        .unwrap_or(0);
    let mut cursor = needed;
    let last_index = listing.segments.len().saturating_sub(1);
    for (index, seg) in listing.segments.iter().enumerate().skip(plan.start) {
        let buf = read_file(&seg.path)?;
        let walk = SegmentWalk {
            index,
            name_seq: seg.first_seq,
            newest: index == last_index,
            snap_seq,
        };
        walk.run(&buf, &mut cursor, &mut plan, f)?;
    }
    plan.last_seq = snap_seq.max(cursor - 1);
    Ok(plan)
}

/// Walks one segment file.
struct SegmentWalk {
    index: usize,
    /// The seq its name says its first record has.
    name_seq: u64,
    /// Whether this is the newest segment (where a torn tail is expected).
    newest: bool,
    snap_seq: u64,
}

impl SegmentWalk {
    fn run<F>(&self, buf: &[u8], cursor: &mut u64, plan: &mut Plan, f: &mut F) -> io::Result<()>
    where
        F: FnMut(Replay<'_>) -> io::Result<()>,
    {
        let file_len = buf.len() as u64;
        let mut repair = SegmentRepair {
            index: self.index,
            spans: Vec::new(),
            torn: None,
            file_len,
        };
        let header_len = SEGMENT_HEADER_LEN as usize;
        // Damage being skipped: where it started, why, and whether the first
        // bad record was merely cut short.
        let mut bad: Option<(usize, String, bool)> = None;
        let format = match format::parse_segment_header(buf) {
            SegmentHeader::Empty => {
                plan.end = Some(ChainEnd {
                    index: self.index,
                    len: 0,
                    format: None,
                    last_record: None,
                });
                return Ok(());
            }
            SegmentHeader::Valid(format) => format,
            SegmentHeader::Damaged(reason) => {
                bad = Some((0, format!("damaged segment header: {reason}"), false));
                SegmentFormat::CURRENT
            }
            SegmentHeader::UnknownVersion(version) => {
                // check_segment_versions let it through: the records parse.
                bad = Some((
                    0,
                    format!(
                        "damaged segment header: format version {version} is unknown, but the records are version {}",
                        format::FORMAT_VERSION
                    ),
                    false,
                ));
                SegmentFormat::CURRENT
            }
        };
        let mut pos = header_len.min(buf.len());
        let mut kept_len = SEGMENT_HEADER_LEN;
        // The lowest seq a record at `pos` may plausibly have.
        let mut floor = self.name_seq.min(*cursor);
        let mut last_record = None;
        loop {
            if let Some((start, reason, torn)) = bad.take() {
                // Saturating: a damaged name or record can put these near
                // u64::MAX.
                let ceiling = floor
                    .max(*cursor)
                    .max(self.name_seq)
                    .saturating_add((buf.len() - pos) as u64 / RECORD_HEADER_LEN)
                    .saturating_add(1);
                let next = (pos..buf.len())
                    .find(|&q| format.probe_record(&buf[q..], floor, ceiling).is_some());
                match next {
                    Some(q) => {
                        repair.spans.push(Span {
                            start: start as u64,
                            end: q as u64,
                            reason,
                        });
                        pos = q;
                    }
                    None if self.newest && torn && start >= header_len => {
                        repair.torn = Some((start as u64, reason));
                        break;
                    }
                    None => {
                        repair.spans.push(Span {
                            start: start as u64,
                            end: file_len,
                            reason,
                        });
                        break;
                    }
                }
            }
            if pos >= buf.len() {
                break;
            }
            match format.decode_record(&buf[pos..]) {
                RecordStep::Bad(reason) => bad = Some((pos, reason, false)),
                RecordStep::Torn(reason) => bad = Some((pos, reason, true)),
                RecordStep::Record {
                    seq,
                    payload,
                    encoded_len,
                } => {
                    let end = pos + encoded_len;
                    if seq == u64::MAX {
                        bad = Some((pos, "sequence number space exhausted".into(), false));
                    } else if seq <= self.snap_seq && seq > 0 {
                        // Covered by the snapshot: kept on disk, not replayed.
                        kept_len += encoded_len as u64;
                        last_record = Some(seq);
                        floor = seq + 1;
                        pos = end;
                    } else if seq < *cursor {
                        repair.spans.push(Span {
                            start: pos as u64,
                            end: end as u64,
                            reason: format!(
                                "record out of order: seq {seq} after seq {}",
                                *cursor - 1
                            ),
                        });
                        pos = end;
                    } else {
                        add_missing(&mut plan.missing, *cursor, seq - 1);
                        match f(Replay::Record { seq, payload }) {
                            Ok(()) => {
                                kept_len += encoded_len as u64;
                                last_record = Some(seq);
                                plan.records_replayed += 1;
                                plan.bytes_replayed += encoded_len as u64;
                            }
                            Err(e) => match rejection(&e) {
                                Some(why) => {
                                    repair.spans.push(Span {
                                        start: pos as u64,
                                        end: end as u64,
                                        reason: format!("record seq {seq} does not decode: {why}"),
                                    });
                                    add_missing(&mut plan.missing, seq, seq);
                                }
                                None => return Err(e),
                            },
                        }
                        *cursor = seq + 1;
                        floor = seq + 1;
                        pos = end;
                    }
                }
            }
            // `bad` set above: resume the search one byte further on.
            if bad.is_some() {
                pos += 1;
            }
        }
        let len = if repair.spans.is_empty() {
            repair.torn.as_ref().map_or(file_len, |(at, _)| *at)
        } else {
            kept_len
        };
        plan.end = Some(ChainEnd {
            index: self.index,
            len,
            format: Some(format),
            last_record,
        });
        if !repair.spans.is_empty() || repair.torn.is_some() {
            plan.repairs.push(repair);
        }
        Ok(())
    }
}
