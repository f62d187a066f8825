//! The bodies of `oxtail install-hook`, `oxtail uninstall-hook` and `oxtail
//! setup`, so the binary's `main.rs` only parses arguments.

use crate::config::{ClientPaths, Clients, Report};
use crate::install::{hooks_command, HookOptions};
use crate::setup::{setup_command, Scope, SetupOptions};
use std::path::PathBuf;

/// The running oxtail binary, absolute and with symlinks resolved: the
/// command the clients will run.
///
/// # Errors
/// When the platform cannot say where this executable is.
pub fn current_exe() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot locate the oxtail binary: {e}"))?;
    Ok(std::fs::canonicalize(&exe).unwrap_or(exe))
}

fn exe_notes(exe: &std::path::Path, report: &mut Report) {
    let s = exe.to_string_lossy();
    if s.contains("/target/debug/") || s.contains("/target/release/") || s.starts_with("/tmp/") {
        report.notes.push(format!(
            "the clients will run {s}, which looks like a build or temporary directory; \
             install oxtail somewhere stable (e.g. `cargo install --path .`) and run this again \
             from there"
        ));
    }
}

fn finish(report: &Report, paths: &ClientPaths, json: bool) -> Result<String, String> {
    if json {
        serde_json::to_string_pretty(report).map_err(|e| e.to_string())
    } else {
        Ok(report.render(paths))
    }
}

/// `oxtail install-hook` (`install`) or `oxtail uninstall-hook`: returns the
/// report to print (human text, or JSON with `json`).
///
/// # Errors
/// A sentence for the user: unknown client, unreadable or unsafe-to-edit
/// file (then nothing was written), or a failed write.
pub fn hooks_main(
    client: &str,
    dry_run: bool,
    json: bool,
    install: bool,
) -> Result<String, String> {
    let clients = Clients::parse(client)?;
    let paths = ClientPaths::from_env().map_err(|e| e.to_string())?;
    let exe = current_exe()?;
    let mut report = hooks_command(
        &paths,
        &HookOptions {
            clients,
            dry_run,
            exe: exe.clone(),
            permissions: !install,
        },
        install,
    )?;
    if install {
        exe_notes(&exe, &mut report);
    }
    finish(&report, &paths, json)
}

/// Arguments of `oxtail setup`.
#[derive(Debug, Clone)]
pub struct SetupArgs {
    /// `claude`, `codex` or `all`.
    pub client: String,
    /// `user` or `project`.
    pub scope: String,
    /// Print only.
    pub dry_run: bool,
    /// JSON report.
    pub json: bool,
    /// Set Codex `features.daemon_auto_start = false` (not recommended:
    /// without its app-server Codex is woken only by keys).
    pub codex_no_daemon: bool,
    /// Register the MCP server only.
    pub no_hooks: bool,
    /// Do not allow oxtail's tools without approval prompts.
    pub no_allow: bool,
    /// Remove what setup adds.
    pub undo: bool,
}

/// `oxtail setup`: returns the report to print.
///
/// # Errors
/// As [`hooks_main`].
pub fn setup_main(args: &SetupArgs) -> Result<String, String> {
    let clients = Clients::parse(&args.client)?;
    let scope = Scope::parse(&args.scope)?;
    let paths = ClientPaths::from_env().map_err(|e| e.to_string())?;
    let exe = current_exe()?;
    let cwd = std::env::current_dir().map_err(|e| format!("no current directory: {e}"))?;
    let mut report = setup_command(
        &paths,
        &SetupOptions {
            clients,
            scope,
            dry_run: args.dry_run,
            exe: exe.clone(),
            cwd,
            codex_no_daemon: args.codex_no_daemon,
            skip_hooks: args.no_hooks,
            allow: !args.no_allow,
            undo: args.undo,
        },
    )?;
    if !args.undo {
        exe_notes(&exe, &mut report);
    }
    finish(&report, &paths, args.json)
}
