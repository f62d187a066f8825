//! The oxtail daemon: one per user, owning all state.
//!
//! * [`state`]: the durable data and [`state::apply`], the pure state machine.
//! * [`tools`] and [`identity`]: the MCP tools and identity resolution, pure
//!   functions from (state, caller, arguments) to (commands, reply).
//! * [`server`]: the I/O layer: socket, handshake, peer-uid check, the actor
//!   that journals and applies commands with group commit.
//! * [`scope`], [`procinfo`]: file-system and process facts, read at the edge.
//! * [`wake`]: the wake engine's gates (pure); [`tmux`]: panes and keys (I/O).
//! * [`render`]: mail rendered for an agent's context (pure).
//! * [`config`]: environment tunables.
//! * [`files`]: file touches, leases and conflict warnings (pure).

pub mod actor;
pub mod codex_app;
pub mod config;
pub mod files;
pub mod identity;
pub mod procinfo;
pub mod readsession;
pub mod render;
pub mod scope;
pub mod server;
pub mod state;
pub mod status;
pub mod tmux;
pub mod tools;
pub mod transcript;
pub mod wake;

pub use server::{run, DaemonOptions};
