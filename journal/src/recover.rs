//! Read-only half of recovery: listing the directory, choosing the snapshot
//! and walking the segment chain. Nothing in this module modifies files; the
//! caller applies the outcome ([`Scan::cut`] etc.) afterwards, so an error
//! from the replay callback leaves the directory untouched.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::format::{self, FileKind, RecordStep, SegmentFormat, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::{ctx, Replay};

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
    /// Uncommitted snapshot temp files (garbage from an interrupted snapshot).
    pub temps: Vec<PathBuf>,
}

/// Lists the journal files in `dir` (regular files with names this crate
/// creates; everything else, including symlinks, is ignored).
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
            FileKind::SnapshotTemp(_) => listing.temps.push(path),
        }
    }
    listing.segments.sort_by_key(|s| s.first_seq);
    listing.snapshots.sort_by_key(|s| s.seq);
    Ok(listing)
}

/// Fails with `InvalidData` if any segment header names a format version
/// this build cannot read. Run before anything is truncated or deleted, so
/// that files written by a newer daemon are never mistaken for corruption.
pub(crate) fn check_segment_versions(segments: &[SegmentFile]) -> io::Result<()> {
    let mut prefix = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    for seg in segments {
        prefix.clear();
        File::open(&seg.path)
            .and_then(|f| f.take(SEGMENT_HEADER_LEN).read_to_end(&mut prefix))
            .map_err(|e| ctx(e, format_args!("reading {}", seg.path.display())))?;
        format::parse_segment_header(&prefix)
            .map_err(|e| ctx(e, format_args!("{}", seg.path.display())))?;
    }
    Ok(())
}

/// The snapshot recovery starts from.
pub(crate) struct LoadedSnapshot {
    pub seq: u64,
    /// Index into [`Listing::snapshots`].
    pub index: usize,
    /// The whole file; the state is `file[state]`.
    pub file: Vec<u8>,
    pub state: std::ops::Range<usize>,
}

/// Loads the newest snapshot that passes its checks, logging each newer one
/// skipped. Errors on I/O failure or on a snapshot of an unknown version.
pub(crate) fn newest_valid_snapshot(
    snapshots: &[SnapshotFile],
) -> io::Result<Option<LoadedSnapshot>> {
    for (index, snap) in snapshots.iter().enumerate().rev() {
        let file = fs::read(&snap.path)
            .map_err(|e| ctx(e, format_args!("reading {}", snap.path.display())))?;
        match format::decode_snapshot(&file, snap.seq)
            .map_err(|e| ctx(e, format_args!("{}", snap.path.display())))?
        {
            Ok(state) => {
                return Ok(Some(LoadedSnapshot {
                    seq: snap.seq,
                    index,
                    file,
                    state,
                }))
            }
            Err(reason) => tracing::warn!(
                snapshot = %snap.path.display(),
                %reason,
                "journal: skipping invalid snapshot; falling back to an older one"
            ),
        }
    }
    Ok(None)
}

/// Where recovery has to cut the segment chain.
#[derive(Debug, Clone)]
pub(crate) struct Cut {
    /// Index into [`Listing::segments`] of the first damaged segment.
    pub index: usize,
    /// Keep the bytes before this offset. 0 means remove the whole file.
    pub offset: u64,
    pub reason: String,
}

/// The surviving end of the scanned chain: the segment new records could be
/// appended to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainEnd {
    /// Index into [`Listing::segments`].
    pub index: usize,
    /// Valid length in bytes (after any cut).
    pub len: u64,
    /// Its format; `None` for an empty (0-byte) file.
    pub format: Option<SegmentFormat>,
}

/// Outcome of walking the segment chain.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Segments before this index are entirely covered by the snapshot.
    pub start: usize,
    /// The sequence number the next valid record would have had.
    pub cursor: u64,
    pub cut: Option<Cut>,
    pub end: Option<ChainEnd>,
    pub records_replayed: u64,
    /// Encoded bytes (header + payload) of the records replayed.
    pub bytes_replayed: u64,
}

/// Walks the segments in order, calling `f` for every valid record with
/// `seq > snap_seq`, and stops at the first damaged header, torn or corrupt
/// record, or sequence gap. Read-only; errors come from I/O or from `f`.
pub(crate) fn scan_segments<F>(
    segments: &[SegmentFile],
    snap_seq: u64,
    f: &mut F,
) -> io::Result<Scan>
where
    F: FnMut(Replay<'_>) -> io::Result<()>,
{
    let needed = snap_seq.saturating_add(1);
    // The chain starts at the last segment whose first record is not after
    // the first record recovery needs; anything older is covered.
    let start = segments.iter().rposition(|s| s.first_seq <= needed);
    let mut scan = Scan {
        start: start.unwrap_or(0),
        cursor: needed,
        cut: None,
        end: None,
        records_replayed: 0,
        bytes_replayed: 0,
    };
    let Some(start) = start else {
        if let Some(first) = segments.first() {
            scan.cut = Some(Cut {
                index: 0,
                offset: 0,
                reason: format!(
                    "sequence gap: recovery needs seq {needed}, but the oldest segment starts at seq {}",
                    first.first_seq
                ),
            });
        }
        return Ok(scan);
    };
    scan.cursor = segments[start].first_seq;

    let mut buf = Vec::new();
    for (index, seg) in segments.iter().enumerate().skip(start) {
        if seg.first_seq != scan.cursor {
            scan.cut = Some(Cut {
                index,
                offset: 0,
                reason: format!(
                    "sequence gap: expected a segment starting at seq {}, found one starting at seq {}",
                    scan.cursor, seg.first_seq
                ),
            });
            break;
        }
        buf.clear();
        File::open(&seg.path)
            .and_then(|mut file| file.read_to_end(&mut buf))
            .map_err(|e| ctx(e, format_args!("reading {}", seg.path.display())))?;
        let format = match format::parse_segment_header(&buf)
            .map_err(|e| ctx(e, format_args!("{}", seg.path.display())))?
        {
            SegmentHeader::Empty => {
                scan.end = Some(ChainEnd {
                    index,
                    len: 0,
                    format: None,
                });
                continue;
            }
            SegmentHeader::Damaged(reason) => {
                scan.cut = Some(Cut {
                    index,
                    offset: 0,
                    reason,
                });
                break;
            }
            SegmentHeader::Valid(format) => format,
        };
        let (valid_len, bad) = scan_records(format, &buf, snap_seq, &mut scan, f)?;
        scan.end = Some(ChainEnd {
            index,
            len: valid_len,
            format: Some(format),
        });
        if let Some(reason) = bad {
            scan.cut = Some(Cut {
                index,
                offset: valid_len,
                reason,
            });
            break;
        }
    }
    Ok(scan)
}

/// Walks the records of one segment file (`buf` is the whole file, header
/// included). Returns the length of its valid prefix and, if it stopped
/// early, why.
fn scan_records<F>(
    format: SegmentFormat,
    buf: &[u8],
    snap_seq: u64,
    scan: &mut Scan,
    f: &mut F,
) -> io::Result<(u64, Option<String>)>
where
    F: FnMut(Replay<'_>) -> io::Result<()>,
{
    let mut pos = SEGMENT_HEADER_LEN as usize;
    while pos < buf.len() {
        match format.decode_record(&buf[pos..]) {
            RecordStep::Bad(reason) => return Ok((pos as u64, Some(reason))),
            RecordStep::Record {
                seq,
                payload,
                encoded_len,
            } => {
                if seq == u64::MAX {
                    let reason = "sequence number space exhausted".to_string();
                    return Ok((pos as u64, Some(reason)));
                }
                if seq != scan.cursor {
                    let reason = format!(
                        "sequence break: expected seq {}, found seq {seq}",
                        scan.cursor
                    );
                    return Ok((pos as u64, Some(reason)));
                }
                if seq > snap_seq {
                    f(Replay::Record { seq, payload })?;
                    scan.records_replayed += 1;
                    scan.bytes_replayed += encoded_len as u64;
                }
                pos += encoded_len;
                scan.cursor = seq + 1;
            }
        }
    }
    Ok((pos as u64, None))
}
