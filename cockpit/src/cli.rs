//! Command-line surface of `oxtail status`, `oxtail oxpit` and `oxtail
//! fleet`: clap arguments and the functions the binary dispatches to.

use crate::daemon::{self, Scope};
use crate::fleet::{self, Op};
use crate::run::{self, OxpitOptions};
use crate::text::{self, TextOpts};
use crate::tmux::Tmux;
use anyhow::{anyhow, bail, Result};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// `oxtail status`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  oxtail status                 the fleet of the project you are in
  oxtail status --json | jq '.agents[] | select(.unread > 0) | .name'
  oxtail status --project ~/src/app --comms 30
  oxtail status --all           every project the daemon knows

Rows: liveness (🟢 active, 🟡 idle, ⚫ dead/ended, ⚪ unknown) with the age of the
last sign of life, name, client, current tool (⚙ bash, ✎ edit, ▤ read,
↔ oxtail, …), badges (⏳ awaiting a reply, ✉N unread, ⚑N open obligations) and
the state card. Then the wait-graph (⛔ DEADLOCK when a cycle of live agents
waits on itself; orphaned waits on dead agents), then the newest comms.
The --json schema is documented in docs/status-schema.md.
Read-only: status never drains a mailbox.")]
pub struct StatusArgs {
    /// Print the snapshot as JSON (stable schema, docs/status-schema.md).
    #[arg(long)]
    pub json: bool,
    /// The project to show: any directory inside it (default: the current
    /// directory's project).
    #[arg(long, value_name = "DIR", conflicts_with = "all")]
    pub project: Option<PathBuf>,
    /// Every project the daemon knows.
    #[arg(long)]
    pub all: bool,
    /// How many of the newest comms-log entries to include.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub comms: usize,
}

/// `oxtail oxpit`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Keys: ↑↓/jk select · ⏎ jump to the agent's tmux pane · n nudge (wake) ·
m operator message · i interrupt a Codex turn (y confirms) · l comms log ·
w thread · ? help · q/Ctrl-C quit.

The daemon pushes every change; the cockpit never polls it and never drains
a mailbox. ⏎ inside tmux switches your client to the agent's pane; outside
tmux it attaches (detach with the tmux prefix + d to come back).

Examples:
  oxtail oxpit
  oxtail oxpit --project ~/src/app
  oxtail status --json > snap.json; oxtail oxpit --snapshot snap.json")]
pub struct OxpitArgs {
    /// The project to show: any directory inside it (default: the current
    /// directory's project).
    #[arg(long, value_name = "DIR", conflicts_with = "all")]
    pub project: Option<PathBuf>,
    /// Every project the daemon knows.
    #[arg(long)]
    pub all: bool,
    /// Show a snapshot saved with `oxtail status --json` instead of the
    /// live daemon (nudge and message still go to the daemon).
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// How many of the newest comms-log entries to keep for the log view.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub comms: usize,
    /// The tmux server (`tmux -L NAME`) for panes whose socket the daemon
    /// does not report.
    #[arg(long, value_name = "NAME", env = "OXTAIL_TMUX_SOCKET")]
    pub tmux_socket: Option<String>,
}

/// `oxtail fleet`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
The fleet file (.oxtail/fleet.json at the project root):
  {
    \"name\": \"demo\",
    \"session\": \"demo\",              (default oxtail-<name>)
    \"layout\": \"tiled\",              (for windows holding several agents)
    \"agents\": [
      {\"name\": \"lead\", \"client\": \"claude\", \"prompt\": \"You lead; split the work.\"},
      {\"name\": \"rev\", \"client\": \"codex\", \"worktree\": \"../app-rev\", \"branch\": \"rev\",
       \"window\": \"helpers\", \"command\": \"codex --no-daemon\"}
    ]
  }
Agent keys: name, client (claude|codex), command, cwd | worktree (+ branch),
prompt, session, window. Unknown keys are errors.

Every pane a fleet creates carries the tmux pane options @oxtail_fleet and
@oxtail_agent; fleet commands only ever touch panes carrying them, so your
own panes in the same session are safe. Worktrees are never removed.

Examples:
  oxtail fleet plan              what sync would change
  oxtail fleet up --apply        start the agents that are missing
  oxtail fleet sync --apply      converge to the file (recreate drifted panes)
  oxtail fleet reset --apply     kill every pane this fleet created")]
pub struct FleetArgs {
    /// What to do.
    #[command(subcommand)]
    pub op: FleetOp,
    /// Make the changes (without it every command is a dry run).
    #[arg(long, global = true)]
    pub apply: bool,
    /// The fleet file (default: <project root>/.oxtail/fleet.json).
    #[arg(long, value_name = "FILE", global = true)]
    pub file: Option<PathBuf>,
    /// The tmux server to use (`tmux -L NAME`; default: the default server).
    #[arg(long, value_name = "NAME", env = "OXTAIL_TMUX_SOCKET", global = true)]
    pub tmux_socket: Option<String>,
}

/// `oxtail fleet` subcommands.
#[derive(clap::Subcommand, Debug, Clone, Copy)]
pub enum FleetOp {
    /// Print what `sync` would change (never changes anything).
    Plan,
    /// Create the agents that are missing; leave running ones alone.
    Up,
    /// Converge: create missing agents, recreate panes whose spec changed
    /// or whose process exited, remove agents no longer in the file.
    Sync,
    /// Tear down every pane this fleet created.
    Reset,
}

fn project_arg(p: &Option<PathBuf>) -> Result<Option<String>> {
    let dir = match p {
        Some(p) => p.clone(),
        None => std::env::current_dir().map_err(|e| anyhow!("no current directory: {e}"))?,
    };
    let c = std::fs::canonicalize(&dir).map_err(|e| anyhow!("--project {}: {e}", dir.display()))?;
    if !c.is_dir() {
        bail!("--project {}: not a directory", dir.display());
    }
    Ok(Some(c.display().to_string()))
}

/// Runs `oxtail status`.
///
/// # Errors
/// A bad `--project`, no daemon, or a daemon that does not serve status.
pub fn status(args: StatusArgs) -> Result<()> {
    let scope = Scope {
        project_root: if args.all {
            None
        } else {
            project_arg(&args.project)?
        },
        all: args.all,
        comms_limit: args.comms,
    };
    let snap = daemon::status(&scope).map_err(|e| anyhow!("{e}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&snap)?);
        return Ok(());
    }
    let out = std::io::stdout();
    let width = if out.is_terminal() {
        ratatui::crossterm::terminal::size()
            .ok()
            .map(|(w, _)| w as usize)
    } else {
        None
    };
    print!(
        "{}",
        text::render_text(
            &snap,
            snap.generated_at_ms,
            TextOpts {
                width,
                comms: args.comms
            }
        )
    );
    Ok(())
}

/// Runs `oxtail oxpit`.
///
/// # Errors
/// A bad `--project` or `--snapshot`, or no terminal.
pub fn oxpit(args: OxpitArgs) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!("oxtail oxpit needs a terminal; use `oxtail status` (or --json) in scripts");
    }
    let scope = Scope {
        project_root: if args.all {
            None
        } else {
            project_arg(&args.project)?
        },
        all: args.all,
        comms_limit: args.comms,
    };
    run::oxpit(OxpitOptions {
        scope,
        snapshot_file: args.snapshot,
        tmux: Tmux::named(args.tmux_socket.as_deref()),
    })
}

/// Runs `oxtail fleet …`.
///
/// # Errors
/// An invalid fleet file (every problem, by field), tmux failures.
pub fn fleet(args: FleetArgs) -> Result<()> {
    let file = match &args.file {
        Some(f) => f.clone(),
        None => fleet::default_file(&std::env::current_dir()?),
    };
    let spec = fleet::load(&file)?;
    let t = Tmux::named(args.tmux_socket.as_deref());
    let op = match args.op {
        FleetOp::Plan => Op::Plan,
        FleetOp::Up => Op::Up,
        FleetOp::Sync => Op::Sync,
        FleetOp::Reset => Op::Reset,
    };
    let panes = fleet::observe(&t)?;
    let steps = fleet::plan(op, &spec, &panes);
    let n = fleet::changes(&steps);
    let server = match &args.tmux_socket {
        Some(s) => format!("tmux -L {s}"),
        None => "the default tmux server".into(),
    };
    println!(
        "fleet {} · {} · {} · {:?}",
        spec.name,
        display_path(&file),
        server,
        args.op
    );
    print!("{}", fleet::describe(&spec, &steps));
    if op == Op::Reset
        && spec
            .agents
            .iter()
            .any(|a| a.worktree.is_some() || a.cwd != spec.root)
    {
        println!("  (worktrees and directories are left in place)");
    }
    if n == 0 {
        println!("nothing to change");
        return Ok(());
    }
    if op == Op::Plan || !args.apply {
        println!(
            "dry run: {n} change{}; add --apply to make {}",
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" }
        );
        return Ok(());
    }
    for line in fleet::apply(&t, &spec, &steps)? {
        println!("{line}");
    }
    Ok(())
}

fn display_path(p: &Path) -> String {
    p.display().to_string()
}
