//! The oxtail cockpit: a person's view of the fleet (SPEC §7).
//!
//! * [`model`], [`waits`], [`comms`]: pure presentation and analysis
//!   (ages, glyphs, badges, wait-graph cycles, comms threads).
//! * [`text`]: the plain-text view of `oxtail status`.
//! * [`tui`]: the `oxtail oxpit` app state, keys and drawing (pure: tested
//!   with ratatui's `TestBackend`); [`run`] drives it on a real terminal.
//! * [`daemon`]: status, subscription, nudge and operator messages over the
//!   daemon socket ([`oxtail_proto::Ctl`]).
//! * [`tmux`]: the tmux commands the cockpit and fleets use.
//! * [`fleet`]: `.oxtail/fleet.json` and `oxtail fleet plan|up|sync|reset`.
//! * [`cli`]: the clap arguments and entry points the `oxtail` binary calls.
//!
//! Read-only by default: nothing here drains a mailbox; the only writes are
//! the operator's explicit nudge and message, and fleet commands with
//! `--apply`.

pub mod cli;
pub mod comms;
pub mod daemon;
pub mod fleet;
pub mod model;
pub mod run;
pub mod text;
pub mod tmux;
pub mod tui;
pub mod waits;
