//! The oxtail wire protocol, shared by every role of the `oxtail` binary.
//!
//! * [`wire`]: the messages exchanged over the daemon socket ([`Hello`],
//!   [`Request`], [`Reply`], [`Frame`]).
//! * [`frame`]: length-delimited framing (`[u32 BE length][JSON]`).
//! * [`paths`]: where the state dir and the socket live.
//! * [`client`]: a small blocking client with connect-or-spawn, used by hooks,
//!   `oxtail ctl` and the cockpit. The shim uses the same framing from tokio.
//! * [`status`]: the status snapshot schema (`oxtail status --json`, the
//!   cockpit's subscription).
//! * [`tools`]: the MCP tool catalog (names, descriptions, input schemas),
//!   so the shim can answer `tools/list` without asking the daemon.
//!
//! This crate does no async I/O and depends on no runtime.

pub mod client;
pub mod frame;
pub mod paths;
pub mod status;
pub mod tools;
pub mod wire;

pub use wire::*;

/// Protocol major version. Peers with different majors refuse to talk.
pub const PROTOCOL_MAJOR: u16 = 1;
/// Protocol minor version. Additive changes only; peers with the same major
/// interoperate whatever their minors.
pub const PROTOCOL_MINOR: u16 = 0;
/// This binary's version (the workspace version from Cargo).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
