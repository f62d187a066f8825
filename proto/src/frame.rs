//! Length-delimited framing: each frame is a 4-byte big-endian payload length
//! followed by that many bytes of UTF-8 JSON.
//!
//! Limits: a frame sent to the daemon is at most [`MAX_CLIENT_FRAME`] bytes;
//! a frame from the daemon at most [`MAX_SERVER_FRAME`] bytes (a `ctl dump` can
//! be large). A reader that meets a longer length, or bytes that are not the
//! expected JSON, reports [`FrameError`] and the connection is dropped.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::io::{self, Read, Write};

/// Largest frame a client may send, in bytes (1 MiB). Tool bodies are at most
/// 8 KiB, so this leaves ample room.
pub const MAX_CLIENT_FRAME: usize = 1 << 20;
/// Largest frame the daemon sends, in bytes (256 MiB).
pub const MAX_SERVER_FRAME: usize = 256 << 20;

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the connection cleanly between frames.
    Closed,
    /// The length prefix exceeded the limit (bytes announced, limit).
    TooLarge(usize, usize),
    /// The payload was not valid JSON of the expected shape.
    Malformed(serde_json::Error),
    /// The socket failed (including a close in the middle of a frame).
    Io(io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Closed => write!(f, "connection closed"),
            FrameError::TooLarge(n, max) => {
                write!(f, "frame of {n} bytes exceeds the {max}-byte limit")
            }
            FrameError::Malformed(e) => write!(f, "malformed frame: {e}"),
            FrameError::Io(e) => write!(f, "socket error: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// Encodes `msg` as one frame (length prefix included).
///
/// # Panics
/// Never for the types in [`crate::wire`] (they always serialize).
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut buf = vec![0u8; 4];
    serde_json::to_writer(&mut buf, msg).expect("wire types always serialize");
    let len = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf
}

/// Reads one frame of at most `max` payload bytes from an async stream: the
/// one async frame reader, used by the daemon's connection tasks and the
/// shim (feature `async`).
///
/// # Errors
/// [`FrameError::Closed`] on a clean end of stream before the prefix;
/// [`FrameError::TooLarge`], [`FrameError::Malformed`], or
/// [`FrameError::Io`] (including an end of stream inside the frame).
#[cfg(feature = "async")]
pub async fn read_async<T: DeserializeOwned>(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    max: usize,
) -> Result<T, FrameError> {
    decode(&read_payload_async(r, max).await?)
}

/// As [`read_async`], but returns the payload undecoded (for
/// [`crate::ServerFrame::from_slice`]).
///
/// # Errors
/// As [`read_async`], except [`FrameError::Malformed`].
#[cfg(feature = "async")]
pub async fn read_payload_async(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    max: usize,
) -> Result<Vec<u8>, FrameError> {
    use tokio::io::AsyncReadExt;
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = check_len(prefix, max)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(payload)
}

/// Parses a frame payload (without its length prefix).
///
/// # Errors
/// [`FrameError::Malformed`] when `payload` is not the expected JSON.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(payload).map_err(FrameError::Malformed)
}

/// Reads the 4-byte length prefix and checks it against `max` bytes.
///
/// # Errors
/// [`FrameError::TooLarge`] when the announced length exceeds `max`.
pub fn check_len(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(FrameError::TooLarge(len, max));
    }
    Ok(len)
}

/// Blocking read of one frame of at most `max` bytes.
///
/// # Errors
/// [`FrameError::Closed`] on a clean end of stream before the prefix, and the
/// other variants as documented on [`FrameError`].
pub fn read_blocking<T: DeserializeOwned>(r: &mut impl Read, max: usize) -> Result<T, FrameError> {
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = check_len(prefix, max)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    decode(&payload)
}

/// Blocking write of one frame.
///
/// # Errors
/// Any socket error.
pub fn write_blocking<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    w.write_all(&encode(msg))?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ClientFrame, Ctl, Request};

    #[test]
    fn round_trip() {
        let f = ClientFrame::Request {
            id: 7,
            request: Request::Ctl(Ctl::Ping),
        };
        let bytes = encode(&f);
        let back: ClientFrame = read_blocking(&mut &bytes[..], MAX_CLIENT_FRAME).unwrap();
        match back {
            ClientFrame::Request {
                id,
                request: Request::Ctl(Ctl::Ping),
            } => assert_eq!(id, 7),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn oversized_and_garbage_are_errors() {
        let mut big = (MAX_CLIENT_FRAME as u32 + 1).to_be_bytes().to_vec();
        big.extend_from_slice(b"{}");
        assert!(matches!(
            read_blocking::<ClientFrame>(&mut &big[..], MAX_CLIENT_FRAME),
            Err(FrameError::TooLarge(..))
        ));
        let mut garbage = 5u32.to_be_bytes().to_vec();
        garbage.extend_from_slice(b"nope!");
        assert!(matches!(
            read_blocking::<ClientFrame>(&mut &garbage[..], MAX_CLIENT_FRAME),
            Err(FrameError::Malformed(_))
        ));
        let truncated = [0u8, 0, 0, 10, b'{'];
        assert!(matches!(
            read_blocking::<ClientFrame>(&mut &truncated[..], MAX_CLIENT_FRAME),
            Err(FrameError::Io(_))
        ));
        assert!(matches!(
            read_blocking::<ClientFrame>(&mut &[][..], MAX_CLIENT_FRAME),
            Err(FrameError::Closed)
        ));
    }
}
