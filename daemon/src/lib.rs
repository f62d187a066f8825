//! The oxtail daemon: one per user, owning all state.
//!
//! * [`state`]: the durable data and [`state::apply`], the pure state machine.
//! * [`tools`] and [`identity`]: the MCP tools and identity resolution, pure
//!   functions from (state, caller, arguments) to (commands, reply).
//! * [`server`]: the I/O layer: socket, handshake, peer-uid check, the actor
//!   that journals and applies commands with group commit.
//! * [`scope`], [`procinfo`]: file-system and process facts, read at the edge.
//! * [`config`]: environment tunables.

pub mod config;
pub mod identity;
pub mod procinfo;
pub mod scope;
pub mod server;
pub mod state;
pub mod tools;

pub use server::{run, DaemonOptions};
