//! `oxtail`: one executable for every role (SPEC §1). This file only parses
//! the command line and dispatches; each role lives in its own crate.

mod guard;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use oxtail_proto::client::{connect_at, connect_or_spawn, ConnectError};
use oxtail_proto::{paths, Ctl, Reply, Request, Role};
use serde_json::Value;
use std::time::Duration;

/// Let parallel AI coding agents (Claude Code, Codex, …) on one machine see,
/// message, delegate to and wake each other.
///
/// Agents' clients start `oxtail` as a stdio MCP server (with no
/// subcommand). All of them talk to one per-user daemon, started on demand,
/// that keeps every message durable on disk.
#[derive(Parser, Debug)]
#[command(name = "oxtail", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

const EXAMPLES: &str = "\
Examples:
  oxtail setup --dry-run      what wiring oxtail into Claude Code and Codex would change
  oxtail                      run as an MCP server on stdio (what agent clients launch)
  oxtail ctl ping             start the daemon if needed and check it answers
  oxtail ctl stats --json     uptime, agents, queued messages, journal size
  oxtail ctl sessions         every agent the daemon knows
  oxtail status               the fleet of this project, once (--json for scripts)
  oxtail oxpit                the live cockpit
  oxtail fleet plan           what .oxtail/fleet.json would change in tmux

Environment:
  OXTAIL_HOME     state dir (default ~/.local/share/oxtail); an isolated instance
  OXTAIL_SOCKET   daemon socket path override
  OXTAIL_LOG      log filter for the daemon, e.g. debug or oxtail_daemon=trace";

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the stdio MCP server (the default when no subcommand is given).
    Mcp,
    /// Run the daemon (normally started on demand by the first client).
    Daemon {
        /// Stay attached and never idle out (for systemd/launchd).
        #[arg(long)]
        foreground: bool,
    },
    /// Why did (or didn't) an agent wake? Recent wakes by status and tool.
    ///
    /// Summarizes the daemon's trace ring: wakes by wake_status and by tool,
    /// identity resolutions by strategy. MCP_TRACE_FILE keeps the full
    /// NDJSON trace.
    Diagnose {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Inspect and maintain the running daemon.
    Ctl {
        #[command(subcommand)]
        op: CtlCmd,
        /// Print the raw JSON answer.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Print the fleet once: agents, wait-graph, recent comms (--json for scripts).
    Status(oxtail_cockpit::cli::StatusArgs),
    /// The live cockpit (TUI): watch, jump to, nudge and message agents.
    Oxpit(oxtail_cockpit::cli::OxpitArgs),
    /// Stand up, converge or tear down a fleet of agents in tmux (.oxtail/fleet.json).
    Fleet(oxtail_cockpit::cli::FleetArgs),
    /// Run the daemon as a systemd user unit (Linux) or launchd agent (macOS).
    Service(oxtail_service::ServiceArgs),
    /// Handle a Claude Code / Codex hook event (launched by the client, not by hand).
    #[command(after_help = HOOK_HELP)]
    Hook {
        /// session-start, user-prompt-submit, pre-tool-use, post-tool-use, stop,
        /// idle-wait or session-end.
        event: String,
        /// Flags written by `oxtail install-hook` (`--hooks-version N`); ignored.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<String>,
    },
    /// Add oxtail's hooks to ~/.claude/settings.json and ~/.codex/hooks.json.
    #[command(after_help = INSTALL_HOOK_HELP)]
    InstallHook(HookFileArgs),
    /// Remove oxtail's hooks (only its own entries) from the clients' settings.
    UninstallHook(HookFileArgs),
    /// Register oxtail's MCP server with Claude Code and Codex and install its hooks.
    #[command(after_help = SETUP_HELP)]
    Setup(SetupCmdArgs),
    /// A git pre-commit guard: refuse commits touching a peer's exclusively leased files.
    #[command(after_help = GUARD_HELP)]
    Guard {
        #[command(subcommand)]
        op: guard::GuardCmd,
        /// Print a JSON answer (install/uninstall).
        #[arg(long, global = true)]
        json: bool,
    },
}

const GUARD_HELP: &str = "\
Examples:
  oxtail guard install      in a repository: add the pre-commit guard (an existing
                            pre-commit hook is kept and runs first)
  oxtail guard uninstall    remove it, restoring the earlier hook

The guard refuses a commit that touches a file under a live peer's exclusive
lease (claim_files {exclusive: true}), naming the holder. It honors
core.hooksPath and guards every linked work tree of the repository.
  OXTAIL_GUARD=warn         only warn
  git commit --no-verify    bypass it";

const HOOK_HELP: &str = "\
Reads the client's hook JSON on stdin and answers in its hook output format:
PreToolUse hands queued peer mail to the model as additionalContext, Stop
as {\"decision\":\"block\"}, idle-wait wakes an idle Claude Code session (exit 2).
It gives up after 300 ms and always fails open: exit 0, no output.
Only session-start starts the daemon. OXTAIL_DEBUG_HOOK=1 explains silence on stderr.

Environment:
  OXTAIL_HOOK_BUDGET_CHARS     mail delivered per hook, in characters (9000, max 10000)
  OXTAIL_IDLE_WAIT_TIMEOUT_MS  idle-wait gives up after this long (23 hours)";

const INSTALL_HOOK_HELP: &str = "\
Replaces only oxtail's own entries (commands ending in `--hooks-version N`),
keeps every other hook byte for byte, and is safe to run again.
Codex runs new hooks only after you trust them (/hooks in the Codex TUI).

Examples:
  oxtail install-hook --dry-run          show what would change
  oxtail install-hook --client claude    Claude Code only
  oxtail uninstall-hook                  remove oxtail's hooks again";

const SETUP_HELP: &str = "\
Claude Code: mcpServers.oxtail in ~/.claude.json (--scope user) or the project's
.mcp.json (--scope project, approved in .claude/settings.local.json).
Codex: [mcp_servers.oxtail] in ~/.codex/config.toml, comments kept.
Then installs the hooks (see `oxtail install-hook --help`).

Examples:
  oxtail setup --dry-run                 print every change, write nothing
  oxtail setup --scope project           register for this project only
  oxtail setup --client codex --codex-no-daemon";

#[derive(clap::Args, Debug)]
struct HookFileArgs {
    /// Which client: claude, codex or all.
    #[arg(long, default_value = "all", value_parser = ["claude", "codex", "all"])]
    client: String,
    /// Print what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct SetupCmdArgs {
    /// Which client: claude, codex or all.
    #[arg(long, default_value = "all", value_parser = ["claude", "codex", "all"])]
    client: String,
    /// Claude Code registration: user (~/.claude.json) or project (.mcp.json).
    #[arg(long, default_value = "user", value_parser = ["user", "project"])]
    scope: String,
    /// Print what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also set Codex `features.daemon_auto_start = false` (one Codex per pane, wakeable by keys).
    #[arg(long)]
    codex_no_daemon: bool,
    /// Register the MCP server only; leave hooks alone.
    #[arg(long)]
    no_hooks: bool,
}

#[derive(Subcommand, Debug)]
enum CtlCmd {
    /// Check the daemon answers (starts it when none runs).
    Ping,
    /// Uptime, agents, queued messages, journal bytes, connections.
    Stats,
    /// Every agent the daemon knows, across projects.
    Sessions,
    /// The queued messages of one session, without delivering them.
    Inbox {
        /// The session's client_session_id.
        session_id: String,
    },
    /// Snapshot the state and drop older journal segments.
    Compact,
    /// Snapshot and stop the daemon.
    Shutdown,
    /// The whole durable state as JSON.
    Dump,
    /// Set an agent's activity mark (what hooks do): busy or idle.
    Mark {
        /// The session's client_session_id.
        session_id: String,
        /// busy or idle.
        #[arg(value_parser = ["busy", "idle"])]
        state: String,
    },
}

fn main() {
    // Hooks run on every tool call of every agent: skip clap (whose usage
    // errors exit 2, which a Stop hook would turn into a block) and go
    // straight to the fail-open handler.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().take(3).collect();
    if argv.len() == 3 && argv[1] == "hook" && !argv[2].to_string_lossy().starts_with('-') {
        std::process::exit(oxtail_hooks::hook_main(&argv[2].to_string_lossy()));
    }
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Cmd::Mcp) {
        Cmd::Mcp => run_shim(),
        Cmd::Daemon { foreground } => run_daemon(foreground),
        Cmd::Ctl { op, json } => run_ctl(op, json),
        Cmd::Diagnose { json } => run_diagnose(json),
        Cmd::Status(args) => oxtail_cockpit::cli::status(args),
        Cmd::Oxpit(args) => oxtail_cockpit::cli::oxpit(args),
        Cmd::Fleet(args) => oxtail_cockpit::cli::fleet(args),
        Cmd::Service(args) => oxtail_service::run(args),
        Cmd::Hook { event, .. } => std::process::exit(oxtail_hooks::hook_main(&event)),
        Cmd::InstallHook(a) => print_report(oxtail_hooks::cli::hooks_main(
            &a.client, a.dry_run, a.json, true,
        )),
        Cmd::UninstallHook(a) => print_report(oxtail_hooks::cli::hooks_main(
            &a.client, a.dry_run, a.json, false,
        )),
        Cmd::Guard { op, json } => match guard::run(op, json) {
            Ok(code) => std::process::exit(code),
            Err(e) => Err(e),
        },
        Cmd::Setup(a) => print_report(oxtail_hooks::cli::setup_main(
            &oxtail_hooks::cli::SetupArgs {
                client: a.client,
                scope: a.scope,
                dry_run: a.dry_run,
                json: a.json,
                codex_no_daemon: a.codex_no_daemon,
                no_hooks: a.no_hooks,
            },
        )),
    };
    if let Err(e) = result {
        eprintln!("oxtail: {e:#}");
        std::process::exit(1);
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OXTAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

fn run_shim() -> Result<()> {
    // stdout is the MCP channel: logs go to stderr only, and only warnings.
    init_tracing("warn,rmcp=error");
    // Hooks older than this binary deliver mail the old way (or not at all).
    if let Some(w) = oxtail_hooks::outdated_hooks_warning_from_env() {
        eprintln!("{w}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(oxtail_shim::serve_stdio())
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn run_daemon(foreground: bool) -> Result<()> {
    init_tracing("info");
    oxtail_daemon::run(oxtail_daemon::DaemonOptions { foreground })
        .with_context(|| format!("daemon failed (state dir {})", paths::state_dir().display()))
}

fn run_ctl(op: CtlCmd, json: bool) -> Result<()> {
    let (ctl, spawn) = match op {
        CtlCmd::Ping => (Ctl::Ping, true),
        CtlCmd::Stats => (Ctl::Stats, false),
        CtlCmd::Sessions => (Ctl::Sessions, false),
        CtlCmd::Inbox { session_id } => (Ctl::Inbox { session_id }, false),
        CtlCmd::Compact => (Ctl::Compact, false),
        CtlCmd::Shutdown => (Ctl::Shutdown, false),
        CtlCmd::Dump => (Ctl::Dump, false),
        CtlCmd::Mark { session_id, state } => (Ctl::Mark { session_id, state }, false),
    };
    let timeout = Duration::from_secs(5);
    let client = if spawn {
        connect_or_spawn(Role::Ctl, true, timeout)
    } else {
        connect_at(&paths::socket_path(), Role::Ctl, timeout)
    };
    let mut client = match client {
        Ok(c) => c,
        Err(ConnectError::NoDaemon(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "permission denied on the daemon socket {} ({e}); it belongs to another user, or OXTAIL_SOCKET points somewhere you cannot use",
            paths::socket_path().display()
        ),
        Err(ConnectError::NoDaemon(_)) => bail!(
            "no oxtail daemon is running (socket {}); `oxtail ctl ping` starts one",
            paths::socket_path().display()
        ),
        Err(e) => return Err(e.into()),
    };
    client.set_timeout(Some(Duration::from_secs(30)))?;
    let reply = client.call(Request::Ctl(ctl.clone()))?;
    let value = match reply {
        Reply::Ok { value } => value,
        Reply::Error { code, message } => bail!("{code}: {message}"),
    };
    if json || matches!(ctl, Ctl::Dump | Ctl::Inbox { .. }) {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    print_human(&ctl, &value);
    Ok(())
}

fn run_diagnose(json: bool) -> Result<()> {
    let mut client = match connect_at(&paths::socket_path(), Role::Ctl, Duration::from_secs(5)) {
        Ok(c) => c,
        Err(ConnectError::NoDaemon(_)) => {
            bail!("no oxtail daemon is running, so there is nothing to diagnose")
        }
        Err(e) => return Err(e.into()),
    };
    let v = match client.call(Request::Ctl(Ctl::Diagnose))? {
        Reply::Ok { value } => value,
        Reply::Error { code, message } => bail!("{code}: {message}"),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("wakes by status:");
    let mut rows: Vec<(String, u64)> = v["wakes_by_status"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    if rows.is_empty() {
        println!("  (none yet)");
    }
    for (k, n) in rows {
        println!("  {k:<24} {n}");
    }
    println!("wakes by tool:");
    if let Some(m) = v["wakes_by_tool"].as_object() {
        for (tool, statuses) in m {
            println!("  {tool:<20} {statuses}");
        }
    }
    println!(
        "identity resolutions by strategy: {}",
        v["identity_by_strategy"]
    );
    if let Some(f) = v["trace_file"].as_str() {
        println!("full trace: {f}");
    }
    Ok(())
}

fn print_human(ctl: &Ctl, v: &Value) {
    let s = |k: &str| v.get(k).map(|x| x.to_string()).unwrap_or_default();
    match ctl {
        Ctl::Ping => println!(
            "pong from oxtail daemon {} (pid {})",
            v["version"].as_str().unwrap_or("?"),
            s("pid")
        ),
        Ctl::Stats => {
            println!(
                "daemon     pid {} version {} up {}s",
                s("pid"),
                v["version"].as_str().unwrap_or("?"),
                s("uptime_s")
            );
            println!("agents     {}", s("agents"));
            println!(
                "queued     {} messages ({} retained)",
                s("queued_messages"),
                s("retained_messages")
            );
            println!(
                "journal    {} bytes, last seq {}",
                s("journal_bytes"),
                s("journal_last_seq")
            );
            println!(
                "clients    {} connections {}",
                s("connections"),
                v["connections_by_role"]
            );
        }
        Ctl::Sessions => {
            let rows = v["sessions"].as_array().cloned().unwrap_or_default();
            if rows.is_empty() {
                println!("no agents yet");
            }
            for r in rows {
                println!(
                    "{:<38} {:<12} {:<14} shims={} queued={} {}",
                    r["client_session_id"].as_str().unwrap_or("?"),
                    r["client_type"].as_str().unwrap_or("?"),
                    r["name"].as_str().unwrap_or("-"),
                    r["connected_shims"],
                    r["queued"],
                    r["project_root"].as_str().unwrap_or("")
                );
            }
        }
        Ctl::Compact => println!("compacted; journal is now {} bytes", s("journal_bytes")),
        Ctl::Shutdown => println!("daemon shutting down"),
        _ => println!("{v}"),
    }
}

fn print_report(r: std::result::Result<String, String>) -> Result<()> {
    let text = r.map_err(|e| anyhow::anyhow!(e))?;
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(())
}
