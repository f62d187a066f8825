//! The oxtail daemon: one per user, owning all state.
//!
//! The core is pure; I/O sits at the edges.
//!
//! * [`state`]: the durable data and [`state::apply`], the pure state machine.
//! * [`tools`] and [`identity`]: the MCP tools and identity resolution, pure
//!   functions from (state, caller, arguments, clock) to (commands, reply);
//!   [`hookplan`]: the same for a hook event (commands, answer, offered
//!   mail, and the ephemeral effects the actor applies).
//! * `wake`: the wake engine's gates, route choice and statuses (pure);
//!   `render`: mail rendered for an agent's context (pure); `status`: the
//!   cockpit's snapshot (pure); [`files`]: file touches, leases and conflict
//!   warnings (pure).
//! * `actor`: the core thread that owns the state and the journal, runs the
//!   planners, journals and applies their commands with group commit, and
//!   carries out waits, hand-overs and wakes. It does no tmux or process
//!   lookup itself.
//! * [`server`]: the socket, handshake, peer-uid check and connection tasks,
//!   which do the slow lookups (seat start time, git scope, a new shim's
//!   pane) off the actor; `outbox`: one connection's outgoing frames with
//!   backpressure; [`server::open_state`]: recovery.
//! * `probe`: the worker thread that looks at tmux and the process table
//!   for the actor (pane cache, seat liveness), with time limits; `tmux`:
//!   panes and keys; `procinfo`: seats from process facts
//!   ([`oxtail_proto::process`]); `scope`: git scope from the file system;
//!   [`transcript`] and `readsession`: reading agents' transcripts.
//! * [`codec`]: how journal records and snapshots are encoded (postcard,
//!   reading the v1 JSON of earlier releases), and the state as of a seq
//!   rebuilt from the files for a snapshot written off the core thread.
//! * [`config`]: environment tunables, read once; `clock`: the wall clock.
//! * `federation`: the one outbound NATS client connection, only when
//!   `OXTAIL_FEDERATION_URL` is set (issue 16), on a tokio task that posts
//!   to the actor; [`fedstate`]: its pure side (outbox, project key,
//!   remote rows).

pub mod codec;
pub mod config;
pub mod fedstate;
pub mod files;
pub mod hookplan;
pub mod identity;
pub mod server;
pub mod state;
pub mod tools;
pub mod transcript;

mod actor;
mod clock;
mod codex_app;
mod federation;
mod outbox;
mod probe;
mod procinfo;
mod readsession;
mod render;
mod scope;
mod status;
mod tmux;
mod wake;

pub use server::{run, DaemonOptions};
