//! Byte-level encoding and decoding of segment files, records and snapshot
//! files (see the crate documentation for the format specification).
//!
//! Everything that knows about on-disk bytes lives here. Readers dispatch on
//! the format version found in a file header, so a future version can add a
//! new variant to [`SegmentFormat`] / a new arm to [`decode_snapshot`] and
//! still read files written by this one.

use std::io;

/// The on-disk format version this build writes (segments and snapshots).
pub const FORMAT_VERSION: u32 = 1;

/// Largest payload a record may carry, in bytes (64 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024 * 1024;

/// Magic bytes opening every segment file.
const SEGMENT_MAGIC: [u8; 4] = *b"OXJL";
/// Magic bytes opening every snapshot file.
const SNAPSHOT_MAGIC: [u8; 4] = *b"OXSN";

/// Size of a segment file header in bytes: magic + u32 version.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 8;
/// Size of a record header in bytes: u32 len + u32 crc + u64 seq.
pub(crate) const RECORD_HEADER_LEN: u64 = 16;
/// Size of a snapshot file header in bytes:
/// magic + u32 version + u64 seq + u32 crc + u64 len.
pub(crate) const SNAPSHOT_HEADER_LEN: usize = 28;

const SEGMENT_PREFIX: &str = "journal-";
const SEGMENT_SUFFIX: &str = ".log";
const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".tmp";
/// Width of the zero-padded sequence number in file names.
const SEQ_DIGITS: usize = 20;

/// File name of the segment whose first record has sequence number `first_seq`.
pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_seq:0SEQ_DIGITS$}{SEGMENT_SUFFIX}")
}

/// File name of the snapshot of the state as of sequence number `seq`.
pub(crate) fn snapshot_name(seq: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{seq:0SEQ_DIGITS$}{SNAPSHOT_SUFFIX}")
}

/// File name of the temporary file a snapshot is written to before its rename.
pub(crate) fn snapshot_temp_name(seq: u64) -> String {
    format!("{}{TEMP_SUFFIX}", snapshot_name(seq))
}

/// What a directory entry's name says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `journal-<seq>.log` with `seq >= 1`.
    Segment(u64),
    /// `snapshot-<seq>.snap`.
    Snapshot(u64),
    /// `snapshot-<seq>.snap.tmp`: an uncommitted snapshot.
    SnapshotTemp(u64),
    /// `journal-<seq>.log.tmp`: an uncommitted rewrite of a repaired segment.
    SegmentTemp(u64),
}

/// Classifies a file name; `None` for names this crate did not create.
pub(crate) fn classify(name: &str) -> Option<FileKind> {
    if let Some(seq) = parse_numbered(name, SEGMENT_PREFIX, SEGMENT_SUFFIX) {
        // Sequence numbers start at 1, so no segment can be named 0.
        return (seq >= 1).then_some(FileKind::Segment(seq));
    }
    if let Some(seq) = parse_numbered(name, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX) {
        return Some(FileKind::Snapshot(seq));
    }
    let base = name.strip_suffix(TEMP_SUFFIX)?;
    if let Some(seq) = parse_numbered(base, SEGMENT_PREFIX, SEGMENT_SUFFIX) {
        return Some(FileKind::SegmentTemp(seq));
    }
    parse_numbered(base, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX).map(FileKind::SnapshotTemp)
}

/// File name of the temporary file a repaired segment is written to before
/// it replaces the original.
pub(crate) fn segment_temp_name(first_seq: u64) -> String {
    format!("{}{TEMP_SUFFIX}", segment_name(first_seq))
}

fn parse_numbered(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The error for a file whose header names a format version above
/// [`FORMAT_VERSION`] and whose contents do not parse as any version this
/// build knows: a newer oxtail wrote it. (A version field that is merely
/// damaged is recovered instead: the contents still parse as version 1.)
pub(crate) fn newer_version(what: &str, version: u32) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{what} has format version {version}, newer than the versions this build reads \
             (1..={FORMAT_VERSION}), and its contents do not parse as version {FORMAT_VERSION}: \
             a newer oxtail wrote it. Run that newer oxtail (refusing to touch the file; \
             if no newer oxtail ever used this state dir, the file is damaged: move it aside)"
        ),
    )
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

// ---------------------------------------------------------------------------
// Segments and records
// ---------------------------------------------------------------------------

/// A segment format this build can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentFormat {
    V1,
}

impl SegmentFormat {
    /// The format this build writes.
    pub(crate) const CURRENT: SegmentFormat = SegmentFormat::V1;

    fn from_version(version: u32) -> Option<Self> {
        match version {
            1 => Some(SegmentFormat::V1),
            _ => None,
        }
    }

    /// Decodes the record at the start of `rest` (the bytes of a segment
    /// from a record boundary to the end of the file).
    pub(crate) fn decode_record(self, rest: &[u8]) -> RecordStep<'_> {
        match self {
            SegmentFormat::V1 => decode_record_v1(rest),
        }
    }
}

/// The 8-byte header that opens a segment written by this build.
pub(crate) fn segment_header() -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0; SEGMENT_HEADER_LEN as usize];
    h[..4].copy_from_slice(&SEGMENT_MAGIC);
    h[4..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// Result of looking at the first bytes of a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SegmentHeader {
    /// The file is empty (0 bytes): fine, it holds no records.
    Empty,
    /// A complete, known header; records start at [`SEGMENT_HEADER_LEN`].
    Valid(SegmentFormat),
    /// The header is damaged; the reason says how. Records after it may
    /// still be recovered by scanning.
    Damaged(String),
    /// The magic is right but the version is one this build does not know:
    /// either a newer oxtail wrote the file or the version field is damaged
    /// (the caller tells them apart by whether the records parse).
    UnknownVersion(u32),
}

/// Checks a segment header given the file's first bytes (any length; only
/// the first [`SEGMENT_HEADER_LEN`] are looked at).
pub(crate) fn parse_segment_header(prefix: &[u8]) -> SegmentHeader {
    let header_len = SEGMENT_HEADER_LEN as usize;
    if prefix.is_empty() {
        return SegmentHeader::Empty;
    }
    if prefix.len() < header_len {
        return SegmentHeader::Damaged(format!(
            "torn segment header ({} of {header_len} bytes)",
            prefix.len()
        ));
    }
    if prefix[..4] != SEGMENT_MAGIC {
        return SegmentHeader::Damaged(format!(
            "bad segment magic {:02x?} (expected \"OXJL\")",
            &prefix[..4]
        ));
    }
    let version = u32_at(prefix, 4);
    match SegmentFormat::from_version(version) {
        Some(format) => SegmentHeader::Valid(format),
        None => SegmentHeader::UnknownVersion(version),
    }
}

/// Appends the encoding of one current-format record to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_PAYLOAD_BYTES);
    let seq_bytes = seq.to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&seq_bytes), payload);
    // The length fits: callers reject payloads above MAX_PAYLOAD_BYTES (< 4 GiB).
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&seq_bytes);
    out.extend_from_slice(payload);
}

/// One step of walking the records of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RecordStep<'a> {
    /// A record whose checksum verifies; it occupies `encoded_len` bytes.
    Record {
        seq: u64,
        payload: &'a [u8],
        encoded_len: usize,
    },
    /// The bytes at this position are not a valid record: corrupt.
    Bad(String),
    /// The record is cut short by the end of the file (a partial write).
    Torn(String),
}

impl SegmentFormat {
    /// Whether a valid record with `seq` in `min_seq..=max_seq` starts at
    /// the beginning of `rest`; returns its encoded length. Used to find the
    /// next record after damaged bytes: the cheap checks (length fits, seq
    /// plausible) run before the checksum, so probing every byte offset of a
    /// damaged region costs little.
    pub(crate) fn probe_record(self, rest: &[u8], min_seq: u64, max_seq: u64) -> Option<usize> {
        match self {
            SegmentFormat::V1 => {
                let header_len = RECORD_HEADER_LEN as usize;
                if rest.len() < header_len {
                    return None;
                }
                let len = u32_at(rest, 0) as usize;
                let seq = u64_at(rest, 8);
                if len > MAX_PAYLOAD_BYTES
                    || rest.len() - header_len < len
                    || seq < min_seq
                    || seq > max_seq
                {
                    return None;
                }
                match decode_record_v1(rest) {
                    RecordStep::Record { encoded_len, .. } => Some(encoded_len),
                    _ => None,
                }
            }
        }
    }
}

fn decode_record_v1(rest: &[u8]) -> RecordStep<'_> {
    let header_len = RECORD_HEADER_LEN as usize;
    if rest.len() < header_len {
        return RecordStep::Torn(format!(
            "torn record header ({} of {header_len} bytes)",
            rest.len()
        ));
    }
    let len = u32_at(rest, 0) as usize;
    let stored_crc = u32_at(rest, 4);
    let seq = u64_at(rest, 8);
    if len > MAX_PAYLOAD_BYTES {
        return RecordStep::Bad(format!(
            "record length {len} exceeds the maximum payload of {MAX_PAYLOAD_BYTES} bytes"
        ));
    }
    let encoded_len = header_len + len;
    if rest.len() < encoded_len {
        return RecordStep::Torn(format!(
            "torn record ({} of {encoded_len} bytes)",
            rest.len()
        ));
    }
    let payload = &rest[header_len..encoded_len];
    let crc = crc32c::crc32c_append(crc32c::crc32c(&rest[8..16]), payload);
    if crc != stored_crc {
        return RecordStep::Bad(format!(
            "checksum mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"
        ));
    }
    RecordStep::Record {
        seq,
        payload,
        encoded_len,
    }
}

// ---------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------

/// The header of a current-format snapshot of `state` as of `seq`.
pub(crate) fn encode_snapshot_header(seq: u64, state: &[u8]) -> [u8; SNAPSHOT_HEADER_LEN] {
    let mut h = [0; SNAPSHOT_HEADER_LEN];
    h[0..4].copy_from_slice(&SNAPSHOT_MAGIC);
    h[4..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[8..16].copy_from_slice(&seq.to_le_bytes());
    h[16..20].copy_from_slice(&crc32c::crc32c(state).to_le_bytes());
    h[20..28].copy_from_slice(&(state.len() as u64).to_le_bytes());
    h
}

/// Validates a whole snapshot file whose name says it holds the state as of
/// `named_seq`.
///
/// Returns `Ok(Ok(range))` with the byte range of the state inside `file`,
/// `Ok(Err(reason))` if the file fails its checks (the caller skips it), and
/// `Err` (`InvalidData`) if it is a snapshot of a version this build cannot
/// read. A header whose version field is damaged (0, or unknown while the
/// rest verifies as version 1: seq, length and checksum) is not a newer
/// format: a verifying body is accepted, anything else is damage.
pub(crate) fn decode_snapshot(
    file: &[u8],
    named_seq: u64,
) -> io::Result<Result<std::ops::Range<usize>, String>> {
    if file.len() < 8 {
        return Ok(Err(format!(
            "torn snapshot header ({} of {SNAPSHOT_HEADER_LEN} bytes)",
            file.len()
        )));
    }
    if file[..4] != SNAPSHOT_MAGIC {
        return Ok(Err(format!(
            "bad snapshot magic {:02x?} (expected \"OXSN\")",
            &file[..4]
        )));
    }
    match u32_at(file, 4) {
        1 => Ok(decode_snapshot_v1(file, named_seq)),
        version => match decode_snapshot_v1(file, named_seq) {
            Ok(range) => {
                tracing::warn!(
                    version,
                    "journal: snapshot header has a damaged version field, but its state verifies as version 1; using it"
                );
                Ok(Ok(range))
            }
            Err(reason) if version == 0 => Ok(Err(format!(
                "damaged header (format version 0 was never written) and {reason}"
            ))),
            Err(_) => Err(newer_version("snapshot", version)),
        },
    }
}

fn decode_snapshot_v1(file: &[u8], named_seq: u64) -> Result<std::ops::Range<usize>, String> {
    if file.len() < SNAPSHOT_HEADER_LEN {
        return Err(format!(
            "torn snapshot header ({} of {SNAPSHOT_HEADER_LEN} bytes)",
            file.len()
        ));
    }
    let seq = u64_at(file, 8);
    let stored_crc = u32_at(file, 16);
    let len = u64_at(file, 20);
    if seq != named_seq {
        return Err(format!(
            "header says seq {seq} but the file name says {named_seq}"
        ));
    }
    let actual_len = (file.len() - SNAPSHOT_HEADER_LEN) as u64;
    if len != actual_len {
        return Err(format!(
            "header says {len} state bytes but the file holds {actual_len}"
        ));
    }
    let state = SNAPSHOT_HEADER_LEN..file.len();
    let crc = crc32c::crc32c(&file[state.clone()]);
    if crc != stored_crc {
        return Err(format!(
            "checksum mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"
        ));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_ignored() {
        assert_eq!(segment_name(1), "journal-00000000000000000001.log");
        assert_eq!(classify(&segment_name(42)), Some(FileKind::Segment(42)));
        assert_eq!(classify(&snapshot_name(0)), Some(FileKind::Snapshot(0)));
        assert_eq!(
            classify(&snapshot_temp_name(7)),
            Some(FileKind::SnapshotTemp(7))
        );
        assert_eq!(
            classify(&segment_name(u64::MAX)),
            Some(FileKind::Segment(u64::MAX))
        );
        for name in [
            "journal-00000000000000000000.log", // seq 0 is never a segment
            "journal-1.log",
            "journal-0000000000000000000x.log",
            "journal-99999999999999999999.log", // overflows u64
            "journal-00000000000000000001.log.bak",
            "notes.txt",
            "LOCK",
        ] {
            assert_eq!(classify(name), None, "{name}");
        }
    }

    #[test]
    fn record_round_trip_and_damage_detection() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, b"hello");
        assert_eq!(buf.len(), RECORD_HEADER_LEN as usize + 5);
        assert_eq!(
            SegmentFormat::V1.decode_record(&buf),
            RecordStep::Record {
                seq: 7,
                payload: b"hello",
                encoded_len: buf.len()
            }
        );
        for cut in 0..buf.len() {
            assert!(matches!(
                SegmentFormat::V1.decode_record(&buf[..cut]),
                RecordStep::Torn(_)
            ));
        }
        for bit in 0..buf.len() * 8 {
            let mut flipped = buf.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            // Every single-bit flip is caught (by length, checksum or tear).
            assert!(
                matches!(
                    SegmentFormat::V1.decode_record(&flipped),
                    RecordStep::Bad(_) | RecordStep::Torn(_)
                ),
                "bit {bit}"
            );
            assert_eq!(SegmentFormat::V1.probe_record(&flipped, 0, u64::MAX), None);
        }
    }

    #[test]
    fn segment_header_versions() {
        assert_eq!(
            parse_segment_header(&segment_header()),
            SegmentHeader::Valid(SegmentFormat::V1)
        );
        assert_eq!(parse_segment_header(&[]), SegmentHeader::Empty);
        assert!(matches!(
            parse_segment_header(b"OXJ"),
            SegmentHeader::Damaged(_)
        ));
        assert!(matches!(
            parse_segment_header(&[0; 8]),
            SegmentHeader::Damaged(_)
        ));
        let mut v2 = segment_header();
        v2[4..].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(parse_segment_header(&v2), SegmentHeader::UnknownVersion(2));
    }

    #[test]
    fn probe_checks_the_seq_range() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, b"hello");
        assert_eq!(SegmentFormat::V1.probe_record(&buf, 7, 7), Some(buf.len()));
        assert_eq!(SegmentFormat::V1.probe_record(&buf, 8, 100), None);
        assert_eq!(SegmentFormat::V1.probe_record(&buf, 1, 6), None);
    }

    #[test]
    fn snapshot_round_trip_and_damage_detection() {
        let state = b"some state";
        let mut file = encode_snapshot_header(9, state).to_vec();
        file.extend_from_slice(state);
        let range = decode_snapshot(&file, 9).unwrap().unwrap();
        assert_eq!(&file[range.clone()], state);
        assert!(decode_snapshot(&file, 8).unwrap().is_err(), "name mismatch");
        for cut in 0..file.len() {
            assert!(decode_snapshot(&file[..cut], 9).unwrap().is_err());
        }
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 0x10;
        assert!(decode_snapshot(&flipped, 9).unwrap().is_err());
        // A damaged version field over a body that verifies: still usable.
        let mut v3 = file.clone();
        v3[4..8].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(decode_snapshot(&v3, 9).unwrap(), Ok(range));
        let mut v0 = flipped.clone();
        v0[4..8].copy_from_slice(&0u32.to_le_bytes());
        assert!(
            decode_snapshot(&v0, 9).unwrap().is_err(),
            "version 0 is damage"
        );
        // An unknown version whose body is not version 1: a newer format.
        let mut newer = flipped;
        newer[4..8].copy_from_slice(&3u32.to_le_bytes());
        let err = decode_snapshot(&newer, 9).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("version 3"), "{err}");
        assert!(err.to_string().contains("newer oxtail"), "{err}");
    }
}
