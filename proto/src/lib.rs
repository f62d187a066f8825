//! The oxtail wire protocol, shared by every role of the `oxtail` binary.
//!
//! * [`wire`]: the messages exchanged over the daemon socket ([`Hello`],
//!   [`Request`], [`Reply`], [`ClientFrame`], [`ServerFrame`]).
//! * [`frame`]: length-delimited framing (`[u32 BE length][JSON]`).
//! * [`fsutil`]: atomic file writes.
//! * [`paths`]: where the state dir and the socket live.
//! * [`client`]: a small blocking client with connect-or-spawn, used by hooks,
//!   `oxtail ctl` and the cockpit. The shim uses the same framing from tokio.
//! * [`status`]: the status snapshot schema (`oxtail status --json`, the
//!   cockpit's subscription).
//! * [`process`]: one way to see processes on Linux and macOS (alive, start
//!   time, parent chain).
//! * [`tools`]: the MCP tool catalog (names, descriptions, input schemas),
//!   so the shim can answer `tools/list` without asking the daemon.
//!
//! This crate does no async I/O and depends on no runtime, except the
//! async frame reader behind the `async` feature (tokio's `AsyncRead`).

pub mod client;
pub mod frame;
pub mod fsutil;
pub mod paths;
pub mod process;
pub mod status;
pub mod tools;
pub mod wire;

pub use wire::*;

/// Protocol major version. Peers with different majors refuse to talk.
pub const PROTOCOL_MAJOR: u16 = 1;
/// Protocol minor version. Additive changes only; peers with the same major
/// interoperate whatever their minors.
///
/// * 1: confirmed hand-over. Replies that carry mail carry a `handover` id,
///   and the client answers [`ClientFrame::Ack`] once the mail reached its
///   client (or could not). A daemon treats clients below minor 1 as unable
///   to confirm and takes their mail out of the mailbox at once.
pub const PROTOCOL_MINOR: u16 = 1;

/// The first [`PROTOCOL_MINOR`] whose clients confirm hand-overs.
pub const MINOR_CONFIRMS_HANDOVER: u16 = 1;
/// This binary's version (the workspace version from Cargo).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The version this process reports in handshakes: [`VERSION`], unless
/// `OXTAIL_VERSION_OVERRIDE` is set (for upgrade tests: a process can play an
/// older or newer release).
pub fn version() -> String {
    std::env::var("OXTAIL_VERSION_OVERRIDE")
        .ok()
        .filter(|v| parse_version(v).is_some())
        .unwrap_or_else(|| VERSION.to_string())
}

/// `"1.2.3"` (pre-release and build suffixes ignored) as a comparable
/// triple; `None` when it is not a version.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim().split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    let t = (
        it.next()??,
        it.next().unwrap_or(Some(0))?,
        it.next().unwrap_or(Some(0))?,
    );
    Some(t)
}

/// True when `mine` is a newer release than `theirs` (both parsed with
/// [`parse_version`]; unparsable versions are never newer).
pub fn is_newer(mine: &str, theirs: &str) -> bool {
    match (parse_version(mine), parse_version(theirs)) {
        (Some(a), Some(b)) => a > b,
        _ => false,
    }
}
