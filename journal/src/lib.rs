//! Append-only, checksummed write-ahead journal with snapshots, for the
//! oxtail daemon.
//!
//! The daemon's state machine produces serialized commands (opaque bytes to
//! this crate). The daemon [`append`](Journal::append)s one record per
//! mutation, calls [`sync`](Journal::sync) once for a whole batch (group
//! commit), and answers the requests only after `sync` returned `Ok`. When
//! [`bytes_since_snapshot`](Journal::bytes_since_snapshot) passes its
//! threshold it calls [`snapshot`](Journal::snapshot) with the serialized
//! state, which compacts the journal. On start, [`Journal::open`] replays the
//! newest valid snapshot and every later record.
//!
//! # On-disk format (version 1)
//!
//! All integers are little-endian. Sequence numbers (`seq`) start at 1 and
//! increase by exactly one per record, across segments and snapshots.
//!
//! The journal directory (mode `0700` when created) contains:
//!
//! * **Segments** `journal-<first seq, 20 digits zero-padded>.log` (mode
//!   `0600`), e.g. `journal-00000000000000000001.log`. Each starts with an
//!   8-byte header followed by records back to back:
//!
//!   ```text
//!   header: magic "OXJL" (4 bytes) | format version: u32 (= 1)
//!   record: len: u32 | crc: u32 | seq: u64 | payload: len bytes
//!           len = payload length in bytes, at most 64 MiB
//!           crc = crc32c(seq as 8 LE bytes ++ payload)
//!   ```
//!
//!   The first record of a segment has the seq in its name; each further
//!   record has the previous seq + 1, and the next segment's name continues
//!   the sequence. A record that is cut short, fails its checksum, has a
//!   length above the maximum, or has any seq other than the expected next
//!   one is *damaged*. A 0-byte or header-only segment is valid and empty.
//!   A new segment is started when appending a record would make the active
//!   one exceed [`Options::segment_max_bytes`] (a segment holding a single
//!   larger record may exceed it).
//!
//! * **Snapshots** `snapshot-<seq, 20 digits>.snap`: the serialized state
//!   as of record `seq` (0 = before any record):
//!
//!   ```text
//!   magic "OXSN" (4) | version: u32 (= 1) | seq: u64 | crc: u32 | len: u64 | state: len bytes
//!           crc = crc32c(state); seq must equal the seq in the file name;
//!           the file is exactly 28 + len bytes long
//!   ```
//!
//!   A snapshot is written to `snapshot-<seq>.snap.tmp`, fsynced, renamed
//!   into place, and the directory fsynced. Leftover `.tmp` files are
//!   uncommitted and removed on open.
//!
//! * `LOCK`: an empty file holding an advisory lock (`flock`) while a
//!   [`Journal`] is open, so two processes can never write the same journal.
//!
//! Any other file in the directory is ignored.
//!
//! ## Versioning
//!
//! Both headers carry a format version ([`FORMAT_VERSION`], currently 1).
//! Readers dispatch on it, so a later build writing version 2 still reads
//! version-1 files (and appends to a new segment rather than mixing versions
//! in one file). A file with a well-formed magic but a version this build
//! does not know makes [`Journal::open`] fail with
//! [`io::ErrorKind::InvalidData`] naming the version; such a file is never
//! treated as corruption, truncated or deleted.
//!
//! ## Recovery
//!
//! 1. Pick the newest snapshot that passes its checks; damaged newer ones
//!    are skipped (and logged).
//! 2. Replay records with `seq >` the snapshot's seq, in order, starting
//!    from the segment that holds the first needed record. Segments wholly
//!    covered by the snapshot, older snapshots and temp files are removed.
//! 3. At the first damaged segment header, torn or corrupt record, or gap in
//!    the sequence (e.g. the segments needed after a fallback snapshot were
//!    already compacted away), stop: truncate that segment at the last good
//!    record boundary (or remove it if nothing in it is usable), remove all
//!    later segments, and report and `tracing::warn!` what was cut.
//!
//! # Failure semantics
//!
//! * [`Journal::append`] that fails leaves the journal exactly as before:
//!   the partial write is truncated away and the seq is not consumed.
//! * [`Journal::sync`] that fails removes every record appended since the
//!   last successful sync from the journal (truncates back and reverts
//!   [`last_seq`](Journal::last_seq)), so nothing the caller was not told is
//!   durable can reappear after a restart. If that clean-up itself fails,
//!   the handle is *poisoned*: every later call fails; drop it and reopen.
//!
//! In both cases the caller fails the affected requests and changes nothing
//! in memory.

#![warn(missing_docs)]

mod format;
mod recover;

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use format::{FORMAT_VERSION, MAX_PAYLOAD_BYTES};

use format::{SegmentFormat, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use recover::{Cut, SegmentFile};

/// Name of the lock file inside the journal directory.
const LOCK_FILE: &str = "LOCK";

/// Tuning and test knobs for [`Journal::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Roll to a new segment file when the active one exceeds this many bytes (default 64 MiB).
    ///
    /// Checked before each append: a record that would push a non-empty
    /// segment past this size goes into a fresh segment instead.
    pub segment_max_bytes: u64,
    /// Test-only fault injection: after this many total payload+header bytes appended by this
    /// process, every further append fails with `io::ErrorKind::StorageFull`
    /// ("no space left on device (injected)"). `None` = off.
    ///
    /// "Header" means the 16-byte record header; bytes are counted per
    /// [`Journal`] handle. The append that would cross the limit writes the
    /// part of its record that fits (like a real full disk) before failing,
    /// and from then on every append fails, whatever its size.
    pub fail_appends_after_bytes: Option<u64>,
}

impl Default for Options {
    /// `segment_max_bytes` = 64 MiB, no fault injection.
    fn default() -> Self {
        Options {
            segment_max_bytes: 64 * 1024 * 1024,
            fail_appends_after_bytes: None,
        }
    }
}

/// One item handed to the replay callback of [`Journal::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay<'a> {
    /// The state as of record `seq` (the bytes given to [`Journal::snapshot`]).
    /// Delivered at most once, before any record.
    Snapshot {
        /// Seq of the last record the snapshot covers (0 = none).
        seq: u64,
        /// The serialized state, exactly as passed to [`Journal::snapshot`].
        bytes: &'a [u8],
    },
    /// One journal record, delivered in increasing `seq` order with no gaps.
    Record {
        /// The record's sequence number.
        seq: u64,
        /// The payload, exactly as passed to [`Journal::append`].
        payload: &'a [u8],
    },
}

/// What [`Journal::open`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Seq of the snapshot replayed, if any.
    pub snapshot_seq: Option<u64>,
    /// Number of records replayed after the snapshot.
    pub records_replayed: u64,
    /// What was cut off, if recovery hit a torn or corrupt record.
    pub truncated: Option<Truncation>,
    /// Seq of the last record recovered (or the snapshot's seq; 0 if empty).
    /// The next append gets `last_seq + 1`.
    pub last_seq: u64,
}

/// Describes data cut off by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment file where the damage starts.
    pub segment: PathBuf,
    /// Byte offset in `segment` where it was cut (its new length). 0 means the
    /// whole file was removed.
    pub offset: u64,
    /// Total bytes removed: the tail of `segment` plus every later segment.
    pub bytes_cut: u64,
    /// Human-readable cause, e.g. "torn record (20 of 56 bytes)".
    pub reason: String,
}

/// The segment currently appended to.
struct ActiveSegment {
    first_seq: u64,
    path: PathBuf,
    file: File,
    /// Current length of the file in bytes.
    len: u64,
}

impl ActiveSegment {
    /// Creates `journal-<first_seq>.log` with a current-format header and
    /// fsyncs the directory. On error nothing is left behind.
    fn create(dir: &Path, first_seq: u64) -> io::Result<Self> {
        let path = dir.join(format::segment_name(first_seq));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| ctx(e, format_args!("creating {}", path.display())))?;
        let written = file
            .write_all_at(&format::segment_header(), 0)
            .and_then(|()| sync_dir(dir));
        if let Err(e) = written {
            // Best effort: an empty or header-torn segment is harmless anyway.
            let _ = fs::remove_file(&path);
            return Err(ctx(e, format_args!("creating {}", path.display())));
        }
        Ok(ActiveSegment {
            first_seq,
            path,
            file,
            len: SEGMENT_HEADER_LEN,
        })
    }

    /// Reopens an existing segment (already truncated to `len`) for appending.
    fn reopen(seg: &SegmentFile, len: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .open(&seg.path)
            .map_err(|e| ctx(e, format_args!("opening {}", seg.path.display())))?;
        Ok(ActiveSegment {
            first_seq: seg.first_seq,
            path: seg.path.clone(),
            file,
            len,
        })
    }
}

/// An open journal directory. See the [crate docs](crate) for the format and
/// failure semantics. It has a single owner: every mutating method takes
/// `&mut self`, and group commit is done by appending several records before
/// one [`sync`](Self::sync).
pub struct Journal {
    dir: PathBuf,
    opts: Options,
    /// Holds the directory lock for as long as the journal is open.
    _lock: File,
    active: ActiveSegment,
    /// Total length of the segment files on disk other than the active one.
    closed_bytes: u64,
    last_seq: u64,
    /// Last seq known to be durable; `durable_len` is the matching length of
    /// the active segment. Records after it are written but not yet synced.
    durable_seq: u64,
    durable_len: u64,
    bytes_since_snapshot: u64,
    /// Record bytes appended by this handle (for fault injection).
    appended_bytes: u64,
    /// Fault injection has triggered: every further append fails.
    injected_full: bool,
    /// Unsynced records were rolled back outside `sync` (while rolling to a
    /// new segment); the next `sync` must report failure.
    pending_sync_error: Option<String>,
    /// Set when the on-disk state could not be restored after an error.
    poisoned: Option<String>,
    /// Reused encoding buffer.
    buf: Vec<u8>,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("active_segment", &self.active.path)
            .field("last_seq", &self.last_seq)
            .field("durable_seq", &self.durable_seq)
            .field("bytes_since_snapshot", &self.bytes_since_snapshot)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens (creating the dir if missing, mode 0700) and recovers: calls `f` first with the
    /// newest valid snapshot (if any), then with every later record in seq order. Stops at the
    /// first torn/corrupt record, truncates that segment there (and deletes any later segments),
    /// logs with `tracing::warn!` what it cut. Never panics on any file content. If `f` returns
    /// Err, open returns that error.
    ///
    /// `f` runs before recovery modifies anything, so when it fails the
    /// directory is left as it was. The returned journal appends after the
    /// last recovered record; the report says what was replayed and cut.
    ///
    /// # Errors
    ///
    /// * `InvalidData` if a segment or snapshot has a format version this
    ///   build cannot read (the message names it); nothing is modified.
    /// * `WouldBlock` if another open [`Journal`] (in any process) holds the
    ///   directory.
    /// * Any I/O error from creating, reading, truncating or syncing the
    ///   journal files, with the path in the message.
    /// * Whatever `f` returns.
    pub fn open(
        dir: &Path,
        opts: Options,
        mut f: impl FnMut(Replay<'_>) -> io::Result<()>,
    ) -> io::Result<(Journal, RecoveryReport)> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| ctx(e, format_args!("creating {}", dir.display())))?;
        let lock = lock_dir(dir)?;

        // Read-only phase: validate versions, pick the snapshot, replay.
        let listing = recover::list_dir(dir)?;
        recover::check_segment_versions(&listing.segments)?;
        let snapshot = recover::newest_valid_snapshot(&listing.snapshots)?;
        let snapshot_seq = snapshot.as_ref().map(|s| s.seq);
        let snap_seq = snapshot_seq.unwrap_or(0);
        if let Some(snap) = &snapshot {
            f(Replay::Snapshot {
                seq: snap.seq,
                bytes: &snap.file[snap.state.clone()],
            })?;
        }
        let snapshot_index = snapshot.map(|s| s.index);
        let scan = recover::scan_segments(&listing.segments, snap_seq, &mut f)?;

        let last_seq = snap_seq.max(scan.cursor - 1);
        let next_seq = last_seq.checked_add(1).ok_or_else(seq_exhausted)?;

        // Modifying phase: cut damage, drop what the snapshot covers.
        let truncated = match &scan.cut {
            Some(cut) => Some(apply_cut(dir, &listing.segments, cut)?),
            None => None,
        };
        let mut garbage: Vec<&Path> = Vec::new();
        garbage.extend(
            listing.segments[..scan.start]
                .iter()
                .map(|s| s.path.as_path()),
        );
        if let Some(index) = snapshot_index {
            garbage.extend(listing.snapshots[..index].iter().map(|s| s.path.as_path()));
        }
        garbage.extend(listing.temps.iter().map(PathBuf::as_path));

        // The surviving chain: segments scan.start..chain_end.
        let chain_end = match &scan.cut {
            Some(cut) if cut.offset == 0 => cut.index,
            Some(cut) => cut.index + 1,
            None => listing.segments.len(),
        };
        let mut closed: Vec<&SegmentFile> =
            listing.segments[scan.start..chain_end].iter().collect();

        // Append to the end of the chain if it is a current-format segment
        // that ends exactly at `last_seq`; otherwise start a fresh segment.
        let reusable = scan
            .end
            .filter(|end| end.format == Some(SegmentFormat::CURRENT) && scan.cursor == next_seq);
        let active = match reusable {
            Some(end) => {
                closed.retain(|s| s.first_seq != listing.segments[end.index].first_seq);
                let active = ActiveSegment::reopen(&listing.segments[end.index], end.len)?;
                // Records written by a process that crashed before syncing
                // are durable from here on.
                active
                    .file
                    .sync_all()
                    .map_err(|e| ctx(e, format_args!("syncing {}", active.path.display())))?;
                active
            }
            None => {
                if let Some(end) = scan.end {
                    // An empty file, or one holding only records the snapshot
                    // covers, is garbage. (An older-format segment with live
                    // records stays in the chain.)
                    if end.format.is_none() || scan.cursor <= snap_seq.saturating_add(1) {
                        let path = listing.segments[end.index].path.as_path();
                        remove(path)?;
                        closed.retain(|s| s.path != path);
                    }
                }
                ActiveSegment::create(dir, next_seq)?
            }
        };
        let mut removed_any = false;
        for path in garbage {
            removed_any |= remove_logged(path);
        }
        if removed_any {
            sync_dir(dir)?;
        }

        let mut closed_bytes = 0;
        for seg in closed {
            closed_bytes += file_len(&seg.path)?;
        }

        let report = RecoveryReport {
            snapshot_seq,
            records_replayed: scan.records_replayed,
            truncated,
            last_seq,
        };
        tracing::info!(
            dir = %dir.display(),
            snapshot_seq = ?report.snapshot_seq,
            records_replayed = report.records_replayed,
            last_seq,
            truncated = report.truncated.is_some(),
            "journal: recovered"
        );
        let journal = Journal {
            dir: dir.to_path_buf(),
            opts,
            _lock: lock,
            durable_len: active.len,
            active,
            closed_bytes,
            last_seq,
            durable_seq: last_seq,
            bytes_since_snapshot: scan.bytes_replayed,
            appended_bytes: 0,
            injected_full: false,
            pending_sync_error: None,
            poisoned: None,
            buf: Vec::new(),
        };
        Ok((journal, report))
    }

    /// Appends one record with the next seq (write(2) only, not yet durable). On any error the
    /// segment is truncated back to its previous length and seq is not consumed: nothing changed.
    /// Returns the record's seq. Payload max 64 MiB (InvalidInput otherwise).
    ///
    /// The record occupies 16 + `payload.len()` bytes. It is durable once a
    /// later [`sync`](Self::sync) returns `Ok`. May first roll to a new
    /// segment (see [`Options::segment_max_bytes`]), which syncs the old one.
    ///
    /// # Errors
    ///
    /// * `InvalidInput` if `payload` is longer than [`MAX_PAYLOAD_BYTES`].
    /// * The write error (e.g. `StorageFull`), with the segment path.
    /// * If rolling to a new segment fails to sync the old one, that error;
    ///   the records appended since the last sync are then rolled back (see
    ///   [`sync`](Self::sync)) and the next `sync` fails too.
    /// * An error if the journal is poisoned.
    pub fn append(&mut self, payload: &[u8]) -> io::Result<u64> {
        self.check_poisoned()?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "journal: payload of {} bytes exceeds the maximum of {MAX_PAYLOAD_BYTES} bytes",
                    payload.len()
                ),
            ));
        }
        let seq = self.last_seq.checked_add(1).ok_or_else(seq_exhausted)?;
        let record_len = RECORD_HEADER_LEN + payload.len() as u64;
        if self.active.len > SEGMENT_HEADER_LEN
            && self.active.len + record_len > self.opts.segment_max_bytes
        {
            self.roll()?;
        }
        self.buf.clear();
        format::encode_record(&mut self.buf, seq, payload);

        let offset = self.active.len;
        if let Err(e) = self.write_record(offset) {
            let e = ctx(
                e,
                format_args!("appending record {seq} to {}", self.active.path.display()),
            );
            if let Err(undo) = self.active.file.set_len(offset) {
                return Err(self.poison(
                    format!("{e}; then truncating the partial record failed: {undo}"),
                    e.kind(),
                ));
            }
            return Err(e);
        }
        self.active.len += record_len;
        self.last_seq = seq;
        self.bytes_since_snapshot += record_len;
        self.appended_bytes += record_len;
        Ok(seq)
    }

    /// fdatasync the active segment: every record appended before is durable. (Group commit =
    /// many appends, one sync.)
    ///
    /// Returns immediately if nothing was appended since the last sync.
    ///
    /// # Errors
    ///
    /// The fsync error, with the segment path. Because a failed fsync leaves
    /// the durability of the unsynced records unknown, they are then removed
    /// (the segment is truncated back to its last synced length and
    /// [`last_seq`](Self::last_seq) reverts): the caller must fail every
    /// request appended since the last successful sync. If that removal
    /// fails as well, the journal is poisoned.
    pub fn sync(&mut self) -> io::Result<()> {
        self.check_poisoned()?;
        if let Some(msg) = self.pending_sync_error.take() {
            let e = io::Error::other(msg);
            self.rollback_unsynced(&e)?;
            return Err(e);
        }
        if self.durable_seq == self.last_seq && self.durable_len == self.active.len {
            return Ok(());
        }
        match self.active.file.sync_data() {
            Ok(()) => {
                self.durable_seq = self.last_seq;
                self.durable_len = self.active.len;
                Ok(())
            }
            Err(e) => {
                let e = ctx(
                    e,
                    format_args!(
                        "syncing {} (records {}..={} were rolled back)",
                        self.active.path.display(),
                        self.durable_seq + 1,
                        self.last_seq
                    ),
                );
                self.rollback_unsynced(&e)?;
                Err(e)
            }
        }
    }

    /// Writes a snapshot of the state as of `last_seq()` (temp file, fsync, rename, fsync dir),
    /// then starts a fresh segment and deletes older segments and snapshots. After this, recovery
    /// yields this snapshot then only later records.
    ///
    /// `state` must be the caller's serialized state reflecting exactly the
    /// records up to [`last_seq`](Self::last_seq); it is stored as
    /// `28 + state.len()` bytes. Pending records are synced first. Resets
    /// [`bytes_since_snapshot`](Self::bytes_since_snapshot) to 0.
    ///
    /// # Errors
    ///
    /// * Any error from the initial [`sync`](Self::sync) (nothing written).
    /// * An I/O error writing, syncing or renaming the snapshot (e.g.
    ///   `StorageFull`); the temp file is removed and the journal is as before.
    /// * An I/O error creating the fresh segment. The snapshot is committed
    ///   by then; the journal stays consistent and keeps appending to the
    ///   current segment, and the next snapshot compacts.
    ///
    /// Failing to delete old files is only logged: recovery ignores them.
    pub fn snapshot(&mut self, state: &[u8]) -> io::Result<()> {
        self.check_poisoned()?;
        self.sync()?;
        let seq = self.last_seq;
        let next_seq = seq.checked_add(1).ok_or_else(seq_exhausted)?;
        let path = self.dir.join(format::snapshot_name(seq));
        let temp = self.dir.join(format::snapshot_temp_name(seq));
        if let Err(e) = write_snapshot(&temp, &path, seq, state) {
            let _ = fs::remove_file(&temp);
            return Err(ctx(e, format_args!("writing snapshot {}", path.display())));
        }
        sync_dir(&self.dir)?;
        self.bytes_since_snapshot = 0;

        if self.active.first_seq != next_seq {
            // The active segment holds records; records after the snapshot
            // go to a fresh one so the old ones can be deleted.
            let fresh = ActiveSegment::create(&self.dir, next_seq)?;
            self.closed_bytes += self.active.len;
            self.active = fresh;
            self.durable_seq = seq;
            self.durable_len = self.active.len;
        }
        self.remove_compacted(seq);
        tracing::debug!(snapshot = %path.display(), state_bytes = state.len(), "journal: snapshot written");
        Ok(())
    }

    /// Seq of the last record appended (or recovered, or covered by the
    /// snapshot); 0 if the journal has never held a record.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Bytes of records written since the last snapshot (for the compaction threshold).
    ///
    /// Counts 16 header bytes + payload per record, including records
    /// recovered by [`open`](Self::open) after the snapshot.
    pub fn bytes_since_snapshot(&self) -> u64 {
        self.bytes_since_snapshot
    }

    /// Total bytes of journal segment files on disk.
    ///
    /// Includes the 8-byte segment headers; excludes snapshots.
    pub fn disk_bytes(&self) -> u64 {
        self.closed_bytes + self.active.len
    }

    /// Writes the encoded record in `self.buf` at `offset`, honouring the
    /// fault-injection option.
    fn write_record(&mut self, offset: u64) -> io::Result<()> {
        if let Some(limit) = self.opts.fail_appends_after_bytes {
            let len = self.buf.len() as u64;
            if self.injected_full || self.appended_bytes + len > limit {
                self.injected_full = true;
                // Like a real full disk: part of the record lands on disk.
                let room = limit.saturating_sub(self.appended_bytes).min(len - 1);
                self.active
                    .file
                    .write_all_at(&self.buf[..room as usize], offset)?;
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "no space left on device (injected)",
                ));
            }
        }
        self.active.file.write_all_at(&self.buf, offset)
    }

    /// Syncs the active segment and starts a new one at `last_seq + 1`.
    fn roll(&mut self) -> io::Result<()> {
        if let Err(e) = self.sync() {
            // `sync` rolled the unsynced records back; earlier appends were
            // acknowledged with a seq, so the next `sync` must fail as well.
            if self.poisoned.is_none() {
                self.pending_sync_error = Some(e.to_string());
            }
            return Err(e);
        }
        let next_seq = self.last_seq.checked_add(1).ok_or_else(seq_exhausted)?;
        let fresh = ActiveSegment::create(&self.dir, next_seq)?;
        self.closed_bytes += self.active.len;
        self.active = fresh;
        self.durable_len = self.active.len;
        Ok(())
    }

    /// Removes the records appended since the last successful sync from the
    /// active segment because of `cause`. Poisons the journal if that fails.
    fn rollback_unsynced(&mut self, cause: &io::Error) -> io::Result<()> {
        let undone = self
            .active
            .file
            .set_len(self.durable_len)
            .and_then(|()| self.active.file.sync_all());
        if let Err(e) = undone {
            return Err(self.poison(
                format!(
                    "{cause}; then rolling back the unsynced records in {} failed: {e}",
                    self.active.path.display()
                ),
                e.kind(),
            ));
        }
        self.bytes_since_snapshot = self
            .bytes_since_snapshot
            .saturating_sub(self.active.len - self.durable_len);
        self.active.len = self.durable_len;
        self.last_seq = self.durable_seq;
        Ok(())
    }

    /// Deletes every segment but the active one and every snapshot but
    /// `keep_seq`'s; logs failures.
    fn remove_compacted(&mut self, keep_seq: u64) {
        let listing = match recover::list_dir(&self.dir) {
            Ok(listing) => listing,
            Err(e) => {
                tracing::warn!(error = %e, "journal: cannot list old files to delete");
                return;
            }
        };
        let mut kept_bytes = 0;
        for seg in listing
            .segments
            .iter()
            .filter(|s| s.path != self.active.path)
        {
            if !remove_logged(&seg.path) {
                kept_bytes += fs::metadata(&seg.path).map_or(0, |m| m.len());
            }
        }
        for snap in listing.snapshots.iter().filter(|s| s.seq != keep_seq) {
            remove_logged(&snap.path);
        }
        for temp in &listing.temps {
            remove_logged(temp);
        }
        self.closed_bytes = kept_bytes;
        if let Err(e) = sync_dir(&self.dir) {
            tracing::warn!(error = %e, "journal: cannot sync directory after compaction");
        }
    }

    fn check_poisoned(&self) -> io::Result<()> {
        match &self.poisoned {
            None => Ok(()),
            Some(msg) => Err(io::Error::other(format!(
                "journal is unusable after an earlier failure ({msg}); reopen it"
            ))),
        }
    }

    /// Marks the journal unusable and returns the error describing why.
    fn poison(&mut self, msg: String, kind: io::ErrorKind) -> io::Error {
        tracing::error!(error = %msg, "journal: poisoned");
        let err = io::Error::new(kind, format!("journal: {msg}"));
        self.poisoned = Some(msg);
        err
    }
}

fn seq_exhausted() -> io::Error {
    io::Error::other("journal: sequence numbers exhausted")
}

/// Prefixes an I/O error with what the journal was doing, keeping its kind.
pub(crate) fn ctx(err: io::Error, what: impl fmt::Display) -> io::Error {
    io::Error::new(err.kind(), format!("journal: {what}: {err}"))
}

/// Takes the exclusive advisory lock on `dir/LOCK`.
fn lock_dir(dir: &Path) -> io::Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| ctx(e, format_args!("opening {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "journal: {} is already open (locked by {})",
                dir.display(),
                path.display()
            ),
        )),
        Err(TryLockError::Error(e)) => Err(ctx(e, format_args!("locking {}", path.display()))),
    }
}

/// Writes `temp`, fsyncs it and renames it to `path`.
fn write_snapshot(temp: &Path, path: &Path, seq: u64, state: &[u8]) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(temp)?;
    let header = format::encode_snapshot_header(seq, state);
    file.write_all_at(&header, 0)?;
    file.write_all_at(state, header.len() as u64)?;
    file.sync_all()?;
    fs::rename(temp, path)
}

/// Applies a recovery cut: truncates (or removes) the damaged segment,
/// removes every later one, syncs, and logs what was cut.
fn apply_cut(dir: &Path, segments: &[SegmentFile], cut: &Cut) -> io::Result<Truncation> {
    let seg = &segments[cut.index];
    let mut bytes_cut = 0;
    if cut.offset == 0 {
        bytes_cut += file_len(&seg.path)?;
        remove(&seg.path)?;
    } else {
        let file = OpenOptions::new()
            .write(true)
            .open(&seg.path)
            .map_err(|e| ctx(e, format_args!("opening {}", seg.path.display())))?;
        let len = file
            .metadata()
            .map_err(|e| ctx(e, format_args!("inspecting {}", seg.path.display())))?
            .len();
        file.set_len(cut.offset)
            .and_then(|()| file.sync_all())
            .map_err(|e| ctx(e, format_args!("truncating {}", seg.path.display())))?;
        bytes_cut += len.saturating_sub(cut.offset);
    }
    for later in &segments[cut.index + 1..] {
        bytes_cut += file_len(&later.path)?;
        remove(&later.path)?;
    }
    sync_dir(dir)?;
    tracing::warn!(
        segment = %seg.path.display(),
        offset = cut.offset,
        bytes_cut,
        later_segments_removed = segments.len() - cut.index - 1,
        reason = %cut.reason,
        "journal: cut torn or corrupt tail during recovery"
    );
    Ok(Truncation {
        segment: seg.path.clone(),
        offset: cut.offset,
        bytes_cut,
        reason: cut.reason.clone(),
    })
}

fn file_len(path: &Path) -> io::Result<u64> {
    fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| ctx(e, format_args!("inspecting {}", path.display())))
}

fn remove(path: &Path) -> io::Result<()> {
    fs::remove_file(path).map_err(|e| ctx(e, format_args!("removing {}", path.display())))
}

/// Removes a file that is no longer needed; logs (and returns false) on failure.
fn remove_logged(path: &Path) -> bool {
    match fs::remove_file(path) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "journal: cannot remove obsolete file");
            false
        }
    }
}

/// fsyncs a directory so that creations, renames and removals in it are durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ctx(e, format_args!("syncing directory {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_empty(dir: &Path) -> Journal {
        Journal::open(dir, Options::default(), |_| Ok(()))
            .unwrap()
            .0
    }

    fn replay_seqs(dir: &Path) -> Vec<u64> {
        let mut seqs = Vec::new();
        Journal::open(dir, Options::default(), |item| {
            if let Replay::Record { seq, .. } = item {
                seqs.push(seq);
            }
            Ok(())
        })
        .unwrap();
        seqs
    }

    // A failing fdatasync cannot be provoked portably, so these exercise the
    // clean-up paths `sync` takes on failure directly.

    #[test]
    fn rollback_removes_exactly_the_unsynced_records() {
        let tmp = tempfile::tempdir().unwrap();
        let mut j = open_empty(tmp.path());
        for _ in 0..3 {
            j.append(b"durable").unwrap();
        }
        j.sync().unwrap();
        let (len, since) = (j.disk_bytes(), j.bytes_since_snapshot());
        j.append(b"lost 4").unwrap();
        j.append(b"lost 5").unwrap();
        j.rollback_unsynced(&io::Error::other("test")).unwrap();
        assert_eq!(j.last_seq(), 3);
        assert_eq!(j.disk_bytes(), len);
        assert_eq!(j.bytes_since_snapshot(), since);
        assert_eq!(fs::metadata(&j.active.path).unwrap().len(), len);
        assert_eq!(j.append(b"four").unwrap(), 4);
        j.sync().unwrap();
        drop(j);
        assert_eq!(replay_seqs(tmp.path()), vec![1, 2, 3, 4]);
    }

    #[test]
    fn pending_sync_error_fails_the_next_sync_and_rolls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let mut j = open_empty(tmp.path());
        j.append(b"one").unwrap();
        j.sync().unwrap();
        j.append(b"two").unwrap();
        j.pending_sync_error = Some("roll failed".into());
        j.append(b"three").unwrap();
        let err = j.sync().unwrap_err();
        assert!(err.to_string().contains("roll failed"), "{err}");
        assert_eq!(j.last_seq(), 1);
        j.sync().unwrap();
        drop(j);
        assert_eq!(replay_seqs(tmp.path()), vec![1]);
    }

    #[test]
    fn poisoned_journal_refuses_everything() {
        let tmp = tempfile::tempdir().unwrap();
        let mut j = open_empty(tmp.path());
        let _ = j.poison("test".into(), io::ErrorKind::Other);
        assert!(j.append(b"x").is_err());
        assert!(j.sync().is_err());
        assert!(j.snapshot(b"s").is_err());
        assert_eq!(j.last_seq(), 0);
    }
}
