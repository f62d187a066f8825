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
//!   the sequence. (Only recovery breaks this: a segment it repaired may
//!   skip the seqs it set aside, and its name may then be below its first
//!   record's seq. Readers rely on names only to order segments.) A record that is cut short, fails its checksum, has a
//!   length above the maximum, or whose seq is not above the previous
//!   record's is *damaged*. A 0-byte or header-only segment is valid and empty.
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
//!   A snapshot is written to `snapshot-<seq>.snap.tmp`, fsynced, read back
//!   and checked, renamed into place, and the directory fsynced. Leftover
//!   `.tmp` files (snapshots, or segments being repaired) are uncommitted
//!   and removed on open.
//!
//! * `quarantine/`: damaged bytes and damaged snapshots recovery set aside
//!   (see below). Never read by recovery; kept for a person to inspect.
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
//! does not know, and whose contents do not parse as a known version, makes
//! [`Journal::open`] fail with [`io::ErrorKind::InvalidData`] naming the
//! version and saying a newer oxtail wrote it; such a file is never
//! treated as corruption, truncated or deleted.
//!
//! ## Recovery: nothing is thrown away
//!
//! 1. Pick the newest snapshot that passes its checks (and that the caller
//!    can decode). Damaged newer ones are moved to the quarantine directory
//!    and logged; recovery falls back to the previous generation.
//! 2. Replay records with `seq >` the snapshot's seq, in order, starting
//!    from the segment that holds the first needed record.
//! 3. Damaged bytes (a bad checksum, an impossible length, a damaged
//!    segment header, a record out of order, a record the caller cannot
//!    decode) do not end recovery: the walk probes every following byte
//!    offset for the next record that verifies and goes on from there. The
//!    damaged bytes are copied to `quarantine/` beside the segments (one
//!    file per damaged run, named after the segment and byte range), the
//!    segment is rewritten without them (temp file, fsync, rename), and
//!    every later record that verifies is replayed. Sequence numbers that
//!    no surviving record holds are reported as missing ranges
//!    ([`RecoveryReport::missing`]). No segment is ever deleted for a gap
//!    or an unreadable record.
//! 4. Only a torn record at the very end of the newest segment (a crash in
//!    the middle of an append, so never acknowledged) is truncated without
//!    being kept ([`RecoveryReport::truncated`]).
//! 5. A header whose version field is damaged is told apart from a newer
//!    format by its contents: if the records (or the snapshot state) still
//!    verify as version 1, it is damage and is repaired; only a file whose
//!    contents do not parse is refused as written by a newer oxtail.
//!
//! Nothing is deleted at open except uncommitted temp files and 0-byte
//! segment files (which hold not even a header). Compaction
//! ([`Journal::snapshot`]) keeps two generations: the new snapshot, the
//! previous one, and every segment after the previous one, so a damaged
//! newest snapshot costs nothing.
//!
//! [`verify`] runs the same read-only walk without changing anything.
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
use recover::{Plan, SegmentFile};

/// Name of the lock file inside the journal directory.
const LOCK_FILE: &str = "LOCK";

/// Name of the directory, inside the journal directory, that holds what
/// recovery set aside.
pub const QUARANTINE_DIR: &str = "quarantine";

/// Returned (converted into an [`io::Error`]) by the replay callback of
/// [`Journal::open`] for an item whose bytes verify but whose contents the
/// caller cannot decode. Recovery does not stop: a rejected record is
/// quarantined and reported missing, a rejected snapshot is quarantined and
/// the previous generation is used. Any other error aborts the open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Rejected {}

impl From<Rejected> for io::Error {
    fn from(r: Rejected) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, r)
    }
}

/// An inclusive range of sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    /// First seq of the range.
    pub first: u64,
    /// Last seq of the range (`>= first`).
    pub last: u64,
}

impl fmt::Display for SeqRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..={}", self.first, self.last)
        }
    }
}

/// Something recovery set aside instead of replaying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The segment or snapshot file the bytes came from.
    pub source: PathBuf,
    /// Byte offset of the damaged run in `source`.
    pub offset: u64,
    /// Length of the damaged run in bytes.
    pub len: u64,
    /// Where the bytes were saved (`quarantine/…`); `None` from [`verify`],
    /// which changes nothing.
    pub saved_to: Option<PathBuf>,
    /// Why, e.g. "checksum mismatch (stored …, computed …)".
    pub reason: String,
}

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
    /// Delivered before any record; delivered again (an older one) only if
    /// the callback returned [`Rejected`] for the newer one.
    Snapshot {
        /// Seq of the last record the snapshot covers (0 = none).
        seq: u64,
        /// The serialized state, exactly as passed to [`Journal::snapshot`].
        bytes: &'a [u8],
    },
    /// One journal record, delivered in strictly increasing `seq` order.
    /// Seqs lost to damage are skipped (and listed in
    /// [`RecoveryReport::missing`]).
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
    /// A torn final record cut off the newest segment (never acknowledged).
    pub truncated: Option<Truncation>,
    /// Damaged bytes, undecodable records and damaged snapshots set aside
    /// into the quarantine directory, in the order found.
    pub quarantined: Vec<Quarantined>,
    /// Sequence numbers no surviving record holds (lost to damage), in
    /// increasing order. Later records were replayed regardless.
    pub missing: Vec<SeqRange>,
    /// Seq of the last record recovered (or the snapshot's seq; 0 if empty).
    /// The next append gets `last_seq + 1`.
    pub last_seq: u64,
}

impl RecoveryReport {
    /// Whether recovery found anything wrong beyond a torn final record.
    pub fn found_damage(&self) -> bool {
        !self.quarantined.is_empty() || !self.missing.is_empty()
    }
}

/// Describes a torn final record cut off by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The newest segment file, where the torn record starts.
    pub segment: PathBuf,
    /// Byte offset in `segment` where it was cut (its new length).
    pub offset: u64,
    /// Bytes removed from the end of `segment`.
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
    /// Seqs of the snapshot generations kept on disk: the newest one and
    /// the one before it (what a damaged newest one falls back to).
    snapshots: Generations,
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
    /// Opens (creating the dir if missing, mode 0700) and recovers: calls `f`
    /// first with the newest valid snapshot (if any), then with every later
    /// record in seq order. Damaged bytes anywhere but a torn final record
    /// are quarantined (see the [crate docs](crate#recovery-nothing-is-thrown-away))
    /// and every later record that verifies is still replayed; a torn final
    /// record is truncated. Logs with `tracing::warn!` what it set aside and
    /// why. Never panics on any file content.
    ///
    /// `f` may return [`Rejected`] (converted with `.into()`) for an item it
    /// cannot decode: that record is quarantined like damaged bytes, that
    /// snapshot like a damaged one. `f` runs before recovery modifies
    /// anything, so when it fails otherwise the directory is left as it
    /// was. The returned journal appends after the last recovered record;
    /// the report says what was replayed, set aside and missing.
    ///
    /// # Errors
    ///
    /// * `InvalidData` if a segment or snapshot was written by a newer
    ///   oxtail (a format version this build does not know, and contents
    ///   that do not parse as a known one); the message names the version
    ///   and the file. Nothing is modified.
    /// * `WouldBlock` if another open [`Journal`] (in any process) holds the
    ///   directory.
    /// * Any I/O error from creating, reading, repairing or syncing the
    ///   journal files, with the path in the message.
    /// * Whatever `f` returns, other than [`Rejected`].
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
        let plan = recover::plan(&listing, &mut f)?;
        let last_seq = plan.last_seq;
        let next_seq = last_seq.checked_add(1).ok_or_else(seq_exhausted)?;

        // Modifying phase: set damage aside, cut a torn tail.
        let (quarantined, truncated) = apply_plan(dir, &listing, &plan, true)?;
        let mut missing = plan.missing.clone();
        add_lost_to_snapshots(&listing, &plan, &mut missing);

        // Append to the newest segment if it is a current-format segment
        // that ends exactly at `last_seq`; otherwise start a fresh segment.
        let newest = listing.segments.len().checked_sub(1);
        let reusable = plan.end.filter(|end| {
            Some(end.index) == newest
                && end.format == Some(SegmentFormat::CURRENT)
                && match end.last_record {
                    Some(seq) => seq == last_seq,
                    None => listing.segments[end.index].first_seq == next_seq,
                }
        });
        let mut removed_any = false;
        let active = match reusable {
            Some(end) => {
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
                // A 0-byte segment holds nothing (not even a header).
                if let Some(end) = plan.end.filter(|e| e.format.is_none()) {
                    removed_any |= remove_logged(&listing.segments[end.index].path);
                }
                // A segment already named for `next_seq` holds no valid
                // record (or `last_seq` would be past it): typically the
                // fresh segment an earlier open created while a later,
                // damaged segment stayed newest. A bare header holds
                // nothing; anything more is set aside, never deleted.
                let fresh = dir.join(format::segment_name(next_seq));
                if let Ok(meta) = fs::symlink_metadata(&fresh) {
                    if meta.len() <= SEGMENT_HEADER_LEN {
                        removed_any |= remove_logged(&fresh);
                    } else {
                        let qdir = dir.join(QUARANTINE_DIR);
                        DirBuilder::new()
                            .recursive(true)
                            .mode(0o700)
                            .create(&qdir)
                            .map_err(|e| ctx(e, format_args!("creating {}", qdir.display())))?;
                        let to = free_name(&qdir, &file_name(&fresh));
                        fs::rename(&fresh, &to).map_err(|e| {
                            ctx(
                                e,
                                format_args!("moving {} to {}", fresh.display(), to.display()),
                            )
                        })?;
                        tracing::warn!(file = %fresh.display(), saved_to = %to.display(), "journal: a segment holding no valid record stood where the next one goes; set aside");
                        removed_any = true;
                    }
                    sync_dir(dir)?;
                }
                ActiveSegment::create(dir, next_seq)?
            }
        };
        for path in &listing.temps {
            removed_any |= remove_logged(path);
        }
        if removed_any {
            sync_dir(dir)?;
        }

        let mut closed_bytes = 0;
        for seg in &listing.segments {
            if seg.path != active.path && seg.path.exists() {
                closed_bytes += file_len(&seg.path)?;
            }
        }
        let chosen = plan.snapshot.map(|(_, seq)| seq);
        let older = chosen.and_then(|seq| {
            listing
                .snapshots
                .iter()
                .map(|s| s.seq)
                .filter(|&s| s < seq)
                .max()
        });
        let report = RecoveryReport {
            snapshot_seq: chosen,
            records_replayed: plan.records_replayed,
            truncated,
            quarantined,
            missing,
            last_seq,
        };
        log_report(dir, &report);
        let journal = Journal {
            dir: dir.to_path_buf(),
            opts,
            _lock: lock,
            durable_len: active.len,
            active,
            closed_bytes,
            last_seq,
            snapshots: Generations {
                newest: chosen,
                older,
            },
            durable_seq: last_seq,
            bytes_since_snapshot: plan.bytes_replayed,
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
        // u64::MAX is never written: recovery treats it as damage.
        let seq = self
            .last_seq
            .checked_add(1)
            .filter(|&s| s < u64::MAX)
            .ok_or_else(seq_exhausted)?;
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

    /// Writes a snapshot of the state as of `last_seq()` on this thread:
    /// [`begin_snapshot`](Self::begin_snapshot) (a fresh segment),
    /// [`SnapshotTicket::write`] (temp file, fsync, read back and check,
    /// rename, fsync dir), then [`finish_snapshot`](Self::finish_snapshot)
    /// (deletes what the generation before the previous one needed).
    ///
    /// Two generations are kept: this snapshot, the previous one, and every
    /// segment after the previous one, so recovery can fall back if this
    /// snapshot is later found damaged. Older snapshots and segments wholly
    /// covered by the previous snapshot are deleted.
    ///
    /// `state` must be the caller's serialized state reflecting exactly the
    /// records up to [`last_seq`](Self::last_seq); it is stored as
    /// `28 + state.len()` bytes. Pending records are synced first. Resets
    /// [`bytes_since_snapshot`](Self::bytes_since_snapshot) to 0.
    ///
    /// # Errors
    ///
    /// * Any error from [`begin_snapshot`](Self::begin_snapshot) (nothing
    ///   written).
    /// * An I/O error writing, syncing, reading back or renaming the
    ///   snapshot (e.g. `StorageFull`; `InvalidData` if what was read back
    ///   differs); the temp file is removed and no snapshot is recorded
    ///   (records after it went to a fresh segment, which changes nothing
    ///   recovery sees).
    ///
    /// Failing to delete old files is only logged: recovery ignores them.
    /// Deletes leftover snapshot temp files too, so no
    /// [`SnapshotTicket::write`] may be running on another thread.
    pub fn snapshot(&mut self, state: &[u8]) -> io::Result<()> {
        let ticket = self.begin_snapshot()?;
        ticket.write(state)?;
        self.finish_snapshot(ticket);
        Ok(())
    }

    /// Starts a snapshot that another thread writes (issue 12: writing a
    /// snapshot never blocks the journal's owner).
    ///
    /// Syncs pending records, then closes the active segment (if it holds
    /// records) so that every record up to the returned ticket's
    /// [`seq`](SnapshotTicket::seq) sits in closed, immutable segments, and
    /// later appends go to a fresh one. The caller builds the state as of
    /// that seq (for example by replaying those segments with [`verify`]),
    /// has any thread call [`SnapshotTicket::write`], and then passes the
    /// ticket back to [`finish_snapshot`](Self::finish_snapshot). Dropping a
    /// ticket instead abandons the snapshot; nothing is lost.
    ///
    /// # Errors
    ///
    /// * Any error from the initial [`sync`](Self::sync).
    /// * An I/O error creating the fresh segment (the journal keeps
    ///   appending to the current one).
    /// * `seq` space exhausted.
    pub fn begin_snapshot(&mut self) -> io::Result<SnapshotTicket> {
        self.check_poisoned()?;
        self.sync()?;
        let seq = self.last_seq;
        let next_seq = seq.checked_add(1).ok_or_else(seq_exhausted)?;
        if self.active.first_seq != next_seq {
            // The active segment holds records; records after the snapshot
            // go to a fresh one so the old ones can be deleted later.
            let fresh = ActiveSegment::create(&self.dir, next_seq)?;
            self.closed_bytes += self.active.len;
            self.active = fresh;
            self.durable_seq = seq;
            self.durable_len = self.active.len;
        }
        Ok(SnapshotTicket {
            dir: self.dir.clone(),
            seq,
            bytes_before: self.bytes_since_snapshot,
        })
    }

    /// Records a snapshot that [`SnapshotTicket::write`] committed: it
    /// becomes the newest generation, and what the generation before the
    /// previous one needed is deleted. Resets
    /// [`bytes_since_snapshot`](Self::bytes_since_snapshot) to the bytes
    /// appended since the ticket was taken.
    ///
    /// A ticket older than the newest snapshot already recorded changes
    /// nothing. Failing to delete old files is only logged.
    pub fn finish_snapshot(&mut self, ticket: SnapshotTicket) {
        if self.snapshots.newest.is_some_and(|n| n >= ticket.seq) {
            return;
        }
        self.bytes_since_snapshot = self
            .bytes_since_snapshot
            .saturating_sub(ticket.bytes_before);
        self.snapshots.older = self.snapshots.newest;
        self.snapshots.newest = Some(ticket.seq);
        self.remove_compacted();
        tracing::debug!(seq = ticket.seq, "journal: snapshot recorded");
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

    /// Deletes what no kept generation needs: snapshots older than the
    /// previous generation, and segments whose records the previous
    /// snapshot wholly covers. Without a previous generation (the first
    /// snapshot) every segment is kept. Logs failures.
    fn remove_compacted(&mut self) {
        let listing = match recover::list_dir(&self.dir) {
            Ok(listing) => listing,
            Err(e) => {
                tracing::warn!(error = %e, "journal: cannot list old files to delete");
                return;
            }
        };
        let mut kept_bytes = 0;
        // The first record the previous generation needs.
        let needed = self.snapshots.older.map(|seq| seq.saturating_add(1));
        for (i, seg) in listing.segments.iter().enumerate() {
            if seg.path == self.active.path {
                continue;
            }
            // Segment i holds seqs below the next segment's first seq.
            let covered = match (needed, listing.segments.get(i + 1)) {
                (Some(needed), Some(next)) => next.first_seq <= needed,
                _ => false,
            };
            if !(covered && remove_logged(&seg.path)) {
                kept_bytes += fs::metadata(&seg.path).map_or(0, |m| m.len());
            }
        }
        if let Some(older) = self.snapshots.older {
            for snap in listing.snapshots.iter().filter(|s| s.seq < older) {
                remove_logged(&snap.path);
            }
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
    drop(file);
    // Read it back: what gets renamed into place must decode to `state`.
    let back = fs::read(temp)?;
    let verified = matches!(
        format::decode_snapshot(&back, seq),
        Ok(Ok(range)) if back[range.clone()] == *state
    );
    if !verified {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the snapshot read back from disk does not match what was written",
        ));
    }
    fs::rename(temp, path)
}

/// A snapshot in progress, from [`Journal::begin_snapshot`]: the state as
/// of [`seq`](Self::seq) may be written from any thread.
#[derive(Debug)]
pub struct SnapshotTicket {
    dir: PathBuf,
    seq: u64,
    bytes_before: u64,
}

impl SnapshotTicket {
    /// The seq the snapshot must reflect: every record up to and including
    /// it, none after.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the snapshot: temp file, fsync, read back and check, rename,
    /// fsync the directory. `state` is stored as `28 + state.len()` bytes.
    /// Safe to call from any thread while the journal appends.
    ///
    /// # Errors
    /// An I/O error writing, syncing, reading back or renaming the snapshot
    /// (e.g. `StorageFull`; `InvalidData` if what was read back differs);
    /// the temp file is removed and nothing else changed.
    pub fn write(&self, state: &[u8]) -> io::Result<()> {
        let path = self.dir.join(format::snapshot_name(self.seq));
        let temp = self.dir.join(format::snapshot_temp_name(self.seq));
        if let Err(e) = write_snapshot(&temp, &path, self.seq, state) {
            let _ = fs::remove_file(&temp);
            return Err(ctx(e, format_args!("writing snapshot {}", path.display())));
        }
        sync_dir(&self.dir)?;
        tracing::debug!(snapshot = %path.display(), state_bytes = state.len(), "journal: snapshot written");
        Ok(())
    }
}

/// The snapshot generations a [`Journal`] keeps.
#[derive(Debug, Clone, Copy, Default)]
struct Generations {
    newest: Option<u64>,
    older: Option<u64>,
}

/// Seqs that only a damaged (quarantined) snapshot covered, above what the
/// replay reached, are missing too.
fn add_lost_to_snapshots(listing: &recover::Listing, plan: &Plan, missing: &mut Vec<SeqRange>) {
    let lost_to = plan
        .bad_snapshots
        .iter()
        .map(|b| listing.snapshots[b.index].seq)
        .max();
    if let Some(seq) = lost_to.filter(|&s| s > plan.last_seq) {
        missing.push(SeqRange {
            first: plan.last_seq + 1,
            last: seq,
        });
    }
}

/// Logs a recovery report: one warning per thing set aside, one for the
/// missing seqs, one info line in all.
fn log_report(dir: &Path, report: &RecoveryReport) {
    for q in &report.quarantined {
        tracing::warn!(
            source = %q.source.display(),
            offset = q.offset,
            len = q.len,
            saved_to = %q.saved_to.as_deref().map_or_else(|| "-".into(), |p| p.display().to_string()),
            reason = %q.reason,
            "journal: damaged bytes set aside; later records are kept"
        );
    }
    if !report.missing.is_empty() {
        let ranges: Vec<String> = report.missing.iter().map(ToString::to_string).collect();
        tracing::warn!(
            missing = %ranges.join(", "),
            "journal: records with these seqs were lost to damage; everything else was recovered"
        );
    }
    if let Some(t) = &report.truncated {
        tracing::warn!(
            segment = %t.segment.display(),
            offset = t.offset,
            bytes_cut = t.bytes_cut,
            reason = %t.reason,
            "journal: cut a torn final record (a crash mid-append; never acknowledged)"
        );
    }
    tracing::info!(
        dir = %dir.display(),
        snapshot_seq = ?report.snapshot_seq,
        records_replayed = report.records_replayed,
        last_seq = report.last_seq,
        quarantined = report.quarantined.len(),
        "journal: recovered"
    );
}

/// Carries out (or, with `modify` false, only describes) the repairs of a
/// plan: damaged snapshots are moved to the quarantine directory, damaged
/// byte runs are copied there and their segment rewritten without them, a
/// torn final record is truncated.
fn apply_plan(
    dir: &Path,
    listing: &recover::Listing,
    plan: &Plan,
    modify: bool,
) -> io::Result<(Vec<Quarantined>, Option<Truncation>)> {
    let qdir = dir.join(QUARANTINE_DIR);
    let mut quarantined = Vec::new();
    let mut truncated = None;
    let needs_qdir =
        !plan.bad_snapshots.is_empty() || plan.repairs.iter().any(|r| !r.spans.is_empty());
    if modify && needs_qdir {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&qdir)
            .map_err(|e| ctx(e, format_args!("creating {}", qdir.display())))?;
    }
    for bad in &plan.bad_snapshots {
        let snap = &listing.snapshots[bad.index];
        let len = file_len(&snap.path)?;
        let saved_to = if modify {
            let to = free_name(&qdir, &file_name(&snap.path));
            fs::rename(&snap.path, &to).map_err(|e| {
                ctx(
                    e,
                    format_args!("moving {} to {}", snap.path.display(), to.display()),
                )
            })?;
            Some(to)
        } else {
            None
        };
        quarantined.push(Quarantined {
            source: snap.path.clone(),
            offset: 0,
            len,
            saved_to,
            reason: format!("damaged snapshot: {}", bad.reason),
        });
    }
    for repair in &plan.repairs {
        let seg = &listing.segments[repair.index];
        if let Some((offset, reason)) = &repair.torn {
            truncated = Some(Truncation {
                segment: seg.path.clone(),
                offset: *offset,
                bytes_cut: repair.file_len - offset,
                reason: reason.clone(),
            });
        }
        if repair.spans.is_empty() {
            if let (true, Some((offset, _))) = (modify, &repair.torn) {
                truncate(&seg.path, *offset)?;
            }
            continue;
        }
        let bytes = if modify {
            fs::read(&seg.path)
                .map_err(|e| ctx(e, format_args!("reading {}", seg.path.display())))?
        } else {
            Vec::new()
        };
        for span in &repair.spans {
            let saved_to = if modify {
                let name = format!("{}.{}-{}.bad", file_name(&seg.path), span.start, span.end);
                let to = free_name(&qdir, &name);
                write_synced(&to, &bytes[span.start as usize..span.end as usize])?;
                Some(to)
            } else {
                None
            };
            quarantined.push(Quarantined {
                source: seg.path.clone(),
                offset: span.start,
                len: span.end - span.start,
                saved_to,
                reason: span.reason.clone(),
            });
        }
        if modify {
            sync_dir(&qdir)?;
            // The segment without the damaged runs (and any torn tail),
            // under a fresh header.
            let end = repair
                .torn
                .as_ref()
                .map_or(bytes.len(), |(at, _)| *at as usize);
            let mut clean = format::segment_header().to_vec();
            let mut keep_from = (SEGMENT_HEADER_LEN as usize).min(end);
            for span in &repair.spans {
                let start = (span.start as usize).clamp(keep_from, end);
                clean.extend_from_slice(&bytes[keep_from..start]);
                keep_from = keep_from.max((span.end as usize).min(end));
            }
            clean.extend_from_slice(&bytes[keep_from..end]);
            let temp = dir.join(format::segment_temp_name(seg.first_seq));
            write_synced(&temp, &clean)?;
            fs::rename(&temp, &seg.path).map_err(|e| {
                ctx(
                    e,
                    format_args!("replacing {} with its repaired copy", seg.path.display()),
                )
            })?;
            sync_dir(dir)?;
        }
    }
    Ok((quarantined, truncated))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// `dir/name`, or `dir/name.N` for the first N that does not exist yet.
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let mut path = dir.join(name);
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("{name}.{n}"));
        n += 1;
    }
    path
}

/// Creates `path` (0600) holding `bytes`, fsynced.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|f| f.write_all_at(bytes, 0).and_then(|()| f.sync_all()));
    file.map_err(|e| ctx(e, format_args!("writing {}", path.display())))
}

/// Cuts `path` to `len` bytes and syncs it.
fn truncate(path: &Path, len: u64) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len).and_then(|()| f.sync_all()))
        .map_err(|e| ctx(e, format_args!("truncating {}", path.display())))
}

/// Checks a journal directory without changing anything: the same walk
/// [`Journal::open`] does, calling `f` the same way (so the caller can
/// check that every item decodes), and reports what `open` would set
/// aside, cut and find missing. [`Quarantined::saved_to`] is `None`
/// throughout.
///
/// Takes no lock, so it can run beside a live daemon; a record being
/// appended at that moment may then show up as a torn final record.
///
/// # Errors
///
/// * `NotFound` if `dir` does not exist.
/// * `InvalidData` for a file written by a newer oxtail (as `open`).
/// * I/O errors reading the files; whatever `f` returns other than
///   [`Rejected`].
pub fn verify(
    dir: &Path,
    mut f: impl FnMut(Replay<'_>) -> io::Result<()>,
) -> io::Result<RecoveryReport> {
    let listing = recover::list_dir(dir)?;
    let plan = recover::plan(&listing, &mut f)?;
    let (quarantined, truncated) = apply_plan(dir, &listing, &plan, false)?;
    let mut missing = plan.missing.clone();
    add_lost_to_snapshots(&listing, &plan, &mut missing);
    Ok(RecoveryReport {
        snapshot_seq: plan.snapshot.map(|(_, seq)| seq),
        records_replayed: plan.records_replayed,
        truncated,
        quarantined,
        missing,
        last_seq: plan.last_seq,
    })
}

fn file_len(path: &Path) -> io::Result<u64> {
    fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| ctx(e, format_args!("inspecting {}", path.display())))
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
