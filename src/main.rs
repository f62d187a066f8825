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
  oxtail doctor               check the wiring, the hooks and the daemon; prints each fix
  oxtail send api 'rebase on main first'   a message from you (the user) to agent api
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
    /// Check everything setup wires (binary, MCP registrations, hooks, permissions,
    /// Codex hook trust, daemon, state dir, tmux); each problem comes with its fix.
    #[command(after_help = DOCTOR_HELP)]
    Doctor {
        /// Which client: claude, codex or all.
        #[arg(long, default_value = "all", value_parser = ["claude", "codex", "all"])]
        client: String,
        /// Print the report as JSON: {ok, version, checks: [{name, status, detail, fix?}]}.
        #[arg(long)]
        json: bool,
    },
    /// Send a message from you, the person at the keyboard, to an agent (as the cockpit's `m`).
    ///
    /// The agent receives it as its user's own words (origin: "operator"), not as a
    /// peer agent's context, and is woken if it is idle.
    #[command(after_help = SEND_HELP)]
    Send {
        /// The agent: its name, tmux session name, or client_session_id, in this project.
        target: String,
        /// The message (UTF-8, at most 8192 bytes); `-` reads it from stdin.
        body: String,
        /// Print the daemon's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Wake an agent so it reads its queued mail (as the cockpit's `n`).
    ///
    /// With nothing queued it does not cost the agent a turn and answers
    /// nothing_to_deliver, unless --check-in asks it to check in anyway.
    Nudge {
        /// The agent: its name, tmux session name, or client_session_id, in this project.
        target: String,
        /// Wake it even with nothing queued, with "the operator asks you to check in".
        #[arg(long)]
        check_in: bool,
        /// Print the daemon's answer as JSON.
        #[arg(long)]
        json: bool,
    },
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

const DOCTOR_HELP: &str = "\
Exits 1 when a check fails (warnings do not). Doctor never starts the daemon and
writes nothing but a probe file in the state dir.

Examples:
  oxtail doctor                  every check, with the fix under each problem
  oxtail doctor --client claude  Claude Code only
  oxtail doctor --json | jq '.checks[] | select(.status != \"ok\")'";

const SEND_HELP: &str = "\
Exits 1 when the target is unknown or ambiguous, or the body is empty or too long.

Examples:
  oxtail send api 'stop editing main.rs, I am on it'
  git diff | oxtail send web -
  oxtail send 3f1c2a9e-… 'status?' --json     message_id, wake_status, wake_status_text";

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

It also lets agents use oxtail's tools without an approval prompt per call
(--no-allow skips this): Claude Code gets \"mcp__oxtail\" in permissions.allow of
~/.claude/settings.json, Codex default_tools_approval_mode = \"approve\" in
[mcp_servers.oxtail]. `oxtail setup --undo` removes all of it again.

Examples:
  oxtail setup --dry-run                 print every change, write nothing
  oxtail setup --scope project           register for this project only
  oxtail setup --undo                    remove what setup added
  oxtail doctor                          check the result";

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
    /// Not recommended: set Codex `features.daemon_auto_start = false` (one Codex process per
    /// terminal; oxtail then wakes Codex only by typing into its pane).
    #[arg(long, hide = true)]
    codex_no_daemon: bool,
    /// Register the MCP server only; leave hooks alone.
    #[arg(long)]
    no_hooks: bool,
    /// Do not allow oxtail's tools without approval prompts.
    #[arg(long)]
    no_allow: bool,
    /// Remove what setup adds: MCP registrations, hooks and permission entries.
    #[arg(long, conflicts_with_all = ["no_hooks", "no_allow", "codex_no_daemon"])]
    undo: bool,
}

#[derive(Subcommand, Debug)]
enum CtlCmd {
    /// Check the daemon answers (starts it when none runs).
    Ping,
    /// Uptime, agents, queued messages, journal bytes, connections.
    Stats,
    /// Every agent the daemon knows, across projects.
    Sessions,
    /// The queued messages of one session, without delivering them (JSON with --json).
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
    /// Check the journal and snapshots on disk, offline (no daemon needed).
    ///
    /// Reads every snapshot and record exactly as a daemon start would,
    /// changes nothing, and reports what a start would set aside into
    /// `journal/quarantine/`, which sequence numbers are lost, and any torn
    /// final record. Exit status: 0 when nothing is damaged, 1 when
    /// something is (or the journal cannot be read at all).
    #[command(
        after_help = "Examples:\n  oxtail ctl verify\n  oxtail ctl verify --json\n  oxtail ctl verify --dir /backup/oxtail/journal"
    )]
    Verify {
        /// The journal directory (default: the state dir's `journal/`).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
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
                no_allow: a.no_allow,
                undo: a.undo,
            },
        )),
        Cmd::Doctor { client, json } => run_doctor(&client, json),
        Cmd::Send { target, body, json } => run_send(&target, body, json),
        Cmd::Nudge {
            target,
            check_in,
            json,
        } => run_nudge(&target, check_in, json),
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
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!(
            "oxtail: this is the MCP server that Claude Code and Codex start; it is waiting \
             for JSON-RPC on stdin (Ctrl-D quits).\n\
             To wire oxtail into your clients run `oxtail setup`, to check them `oxtail doctor`, \
             to see your agents `oxtail status`; `oxtail --help` lists everything."
        );
    }
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
        CtlCmd::Verify { dir } => return run_verify(dir, json),
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
    if json || matches!(ctl, Ctl::Dump) {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    print_human(&ctl, &value);
    Ok(())
}

/// `oxtail ctl verify`: the offline journal check (exit 1 when damaged).
fn run_verify(dir: Option<std::path::PathBuf>, json: bool) -> Result<()> {
    let dir = dir.unwrap_or_else(paths::journal_dir);
    let quarantine_dir = dir.join(oxtail_journal::QUARANTINE_DIR);
    let set_aside: Vec<String> = std::fs::read_dir(&quarantine_dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if !dir.exists() {
        if json {
            println!(
                "{}",
                serde_json::json!({"dir": dir, "exists": false, "ok": true})
            );
        } else {
            println!(
                "no journal at {} yet: nothing has been stored",
                dir.display()
            );
        }
        return Ok(());
    }
    let report = oxtail_daemon::server::verify_state(&dir)
        .with_context(|| format!("cannot check the journal at {}", dir.display()))?;
    let damaged = report.found_damage();
    if json {
        let v = serde_json::json!({
            "dir": dir,
            "exists": true,
            "ok": !damaged,
            "snapshot_seq": report.snapshot_seq,
            "records": report.records_replayed,
            "last_seq": report.last_seq,
            "damaged": report.quarantined.iter().map(|q| serde_json::json!({
                "file": q.source, "offset": q.offset, "len": q.len, "reason": q.reason,
            })).collect::<Vec<_>>(),
            "missing": report.missing.iter().map(|r| serde_json::json!({"first": r.first, "last": r.last})).collect::<Vec<_>>(),
            "torn_final_record": report.truncated.as_ref().map(|t| serde_json::json!({
                "file": t.segment, "offset": t.offset, "len": t.bytes_cut, "reason": t.reason,
            })),
            "quarantine_dir": quarantine_dir,
            "already_set_aside": set_aside,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("journal   {}", dir.display());
        match report.snapshot_seq {
            Some(seq) => println!("snapshot  as of seq {seq}"),
            None => println!("snapshot  none"),
        }
        println!(
            "records   {} after the snapshot; last seq {}",
            report.records_replayed, report.last_seq
        );
        if let Some(t) = &report.truncated {
            println!(
                "torn      final record of {} at byte {} ({} bytes): {}; a start cuts it (a crash mid-write, never acknowledged)",
                t.segment.display(),
                t.offset,
                t.bytes_cut,
                t.reason
            );
        }
        if damaged {
            println!(
                "DAMAGED   a daemon start sets {} item(s) aside into {} and keeps everything else:",
                report.quarantined.len(),
                quarantine_dir.display()
            );
            for q in &report.quarantined {
                println!(
                    "  {} bytes {}..{}: {}",
                    q.source.display(),
                    q.offset,
                    q.offset + q.len,
                    q.reason
                );
            }
            if !report.missing.is_empty() {
                let ranges: Vec<String> = report.missing.iter().map(ToString::to_string).collect();
                println!("missing   seqs {} (lost to the damage)", ranges.join(", "));
            }
        } else {
            println!("ok        nothing damaged");
        }
        if !set_aside.is_empty() {
            println!(
                "earlier   {} file(s) already set aside in {}",
                set_aside.len(),
                quarantine_dir.display()
            );
        }
    }
    if damaged {
        std::process::exit(1);
    }
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
        Ctl::Inbox { .. } => {
            let rows = v["queued"].as_array().cloned().unwrap_or_default();
            let id = v["session_id"].as_str().unwrap_or("?");
            if rows.is_empty() {
                println!("nothing queued for {id}");
            } else {
                println!(
                    "{} message{} queued for {id}:",
                    rows.len(),
                    if rows.len() == 1 { "" } else { "s" }
                );
            }
            for m in rows {
                let from = m["from_name"]
                    .as_str()
                    .or(m["from_session_id"].as_str())
                    .or(m["from"].as_str())
                    .unwrap_or(if m["origin"] == "operator" {
                        "operator"
                    } else {
                        "?"
                    });
                let body = m["body"].as_str().unwrap_or("");
                let short: String = body.chars().take(100).collect();
                let more = if short.len() < body.len() { "…" } else { "" };
                println!(
                    "  {}  from {from}: {}{more}",
                    m["id"].as_str().unwrap_or("?"),
                    short.replace('\n', " ")
                );
            }
        }
        Ctl::Mark { .. } => println!(
            "marked {} {}",
            v["session_id"].as_str().unwrap_or("?"),
            v["state"].as_str().unwrap_or("?")
        ),
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

fn run_doctor(client: &str, json: bool) -> Result<()> {
    let d = oxtail_hooks::doctor::run(&oxtail_hooks::doctor::DoctorOptions {
        paths: oxtail_hooks::ClientPaths::from_env()?,
        clients: oxtail_hooks::Clients::parse(client).map_err(anyhow::Error::msg)?,
        cwd: std::env::current_dir().context("no current directory")?,
        exe: oxtail_hooks::cli::current_exe().map_err(anyhow::Error::msg)?,
        path_var: std::env::var_os("PATH"),
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print!("{}", oxtail_hooks::doctor::render(&d));
    }
    if !d.ok {
        std::process::exit(1);
    }
    Ok(())
}

/// Sends an operator request (`send`, `nudge`) scoped to this directory's
/// project, prints the answer, and fails on `ok: false`.
/// `done` words a success (`sent to`), `op` a failure (`send to`).
fn run_action(ctl: Ctl, done: &str, op: &str, target: &str, json: bool) -> Result<()> {
    let mut client = match connect_or_spawn(Role::Ctl, true, Duration::from_secs(5)) {
        Ok(c) => c,
        Err(e) => bail!("cannot reach the oxtail daemon: {e}"),
    };
    client.set_timeout(Some(Duration::from_secs(30)))?;
    let value = match client.call(Request::Ctl(ctl))? {
        Reply::Ok { value } => value,
        Reply::Error { code, message } => bail!("{code}: {message}"),
    };
    let a: oxtail_proto::status::ActionAnswer = serde_json::from_value(value.clone())
        .context("the daemon's answer has an unexpected shape")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if a.ok {
        let name = a
            .target_name
            .as_deref()
            .or(a.target.as_deref())
            .unwrap_or(target);
        let mut line = format!("{done} {name}");
        if let Some(id) = &a.message_id {
            line.push_str(&format!(" ({id})"));
        }
        println!(
            "{line}: {} [{}]",
            a.wake_status_text.as_deref().unwrap_or("no wake"),
            a.wake_status.as_deref().unwrap_or("none")
        );
    }
    if !a.ok {
        let err = a.error.as_deref().unwrap_or("error");
        match &a.message {
            Some(m) if !m.is_empty() => bail!("{op} {target} failed: {err}: {m}"),
            _ => bail!("{op} {target} failed: {err}"),
        }
    }
    Ok(())
}

fn project_root_here() -> Option<String> {
    std::env::current_dir()
        .ok()
        .map(|d| d.to_string_lossy().into_owned())
}

fn run_send(target: &str, body: String, json: bool) -> Result<()> {
    let body = if body == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading the message from stdin")?;
        s
    } else {
        body
    };
    if body.trim().is_empty() {
        bail!("the message is empty; give the text as the second argument, or `-` to read stdin");
    }
    run_action(
        Ctl::OperatorMessage {
            target: target.to_string(),
            body,
            project_root: project_root_here(),
        },
        "sent to",
        "send to",
        target,
        json,
    )
}

fn run_nudge(target: &str, check_in: bool, json: bool) -> Result<()> {
    run_action(
        Ctl::Nudge {
            target: target.to_string(),
            project_root: project_root_here(),
            check_in,
        },
        "nudged",
        "nudge",
        target,
        json,
    )
}
