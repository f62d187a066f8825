//! oxtail's client integration: the `oxtail hook <event>` handler for Claude
//! Code and Codex hooks, and the commands that wire oxtail into the
//! clients' configuration (`install-hook`, `uninstall-hook`, `setup`).
//!
//! * [`hook`]: hook input parsing, the delivery decision, output rendering
//!   ([`run_hook`], pure).
//! * [`process`]: the hook process ([`hook_main`]): stdin, the daemon call
//!   within budget, printing, the ack.
//! * [`idle`]: `oxtail hook idle-wait`, the Claude Code async rewake.
//! * [`install`]: oxtail's entries in `~/.claude/settings.json` and
//!   `$CODEX_HOME/hooks.json` ([`HOOKS_VERSION`], [`hooks_command`],
//!   [`outdated_hooks_warning_from_env`] for the shim).
//! * [`setup`]: MCP server registration ([`setup_command`]).
//! * [`config`]: file locations, reports, CST-preserving edits.
//! * [`doctor`]: `oxtail doctor`, every check with its fix.
//! * [`cli`]: the command bodies the `oxtail` binary calls.
//!
//! The hook path uses no async runtime and no process-table scan: a hook is
//! a short-lived process on every tool call of every agent.

pub mod cli;
pub mod config;
pub mod doctor;
pub mod hook;
pub mod idle;
pub mod install;
pub mod process;
pub mod setup;

pub use config::{ClientPaths, Clients, Report};
pub use hook::{run_hook, HookKind, HookOutcome};
pub use install::{
    hooks_command, outdated_hooks_warning, outdated_hooks_warning_from_env, HookOptions,
    HOOKS_VERSION,
};
pub use process::hook_main;
pub use setup::{setup_command, Scope, SetupOptions};
