//! `oxtail`: one executable for every role (SPEC §1). This file only parses
//! the command line and dispatches; each role lives in its own crate.

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
  oxtail                      run as an MCP server on stdio (what agent clients launch)
  oxtail ctl ping             start the daemon if needed and check it answers
  oxtail ctl stats --json     uptime, agents, queued messages, journal size
  oxtail ctl sessions         every agent the daemon knows

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
    /// Inspect and maintain the running daemon.
    Ctl {
        #[command(subcommand)]
        op: CtlCmd,
        /// Print the raw JSON answer.
        #[arg(long, global = true)]
        json: bool,
    },
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
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Cmd::Mcp) {
        Cmd::Mcp => run_shim(),
        Cmd::Daemon { foreground } => run_daemon(foreground),
        Cmd::Ctl { op, json } => run_ctl(op, json),
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
    init_tracing("warn");
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
    };
    let timeout = Duration::from_secs(5);
    let client = if spawn {
        connect_or_spawn(Role::Ctl, true, timeout)
    } else {
        connect_at(&paths::socket_path(), Role::Ctl, timeout)
    };
    let mut client = match client {
        Ok(c) => c,
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
