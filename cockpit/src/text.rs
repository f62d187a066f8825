//! The plain-text view (`oxtail status`), and the line builders the TUI
//! shares with it: agent cells, wait-graph lines, comms lines.

use crate::comms;
use crate::model::{self, pad, truncate, width};
use crate::waits::{self, WaitReport};
use oxtail_proto::status::{AgentRow, CommsEntry, LivenessState, StatusSnapshot, WaitKind};
use std::collections::HashMap;

/// One agent row, cell by cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCells {
    /// 🟢 / 🟡 / ⚫ / ⚪.
    pub glyph: &'static str,
    /// Name (or short id).
    pub name: String,
    /// `claude`, `codex`, …
    pub client: String,
    /// `active 8s`, `idle 3m`, `dead 1h`.
    pub status: String,
    /// Tool badge, e.g. `⚙ bash`.
    pub tool: String,
    /// `⏳ ✉2 ⚑1`.
    pub badges: String,
    /// Awaiting / state card / branch.
    pub work: String,
}

/// The cells of one agent, ages against `now_ms`.
pub fn agent_cells(a: &AgentRow, now_ms: u64) -> AgentCells {
    AgentCells {
        glyph: model::liveness_glyph(a.liveness.state),
        name: model::display_name(a),
        client: match a.wake_route.as_deref().map(model::route_short) {
            Some(r) => format!("{} {r}", model::client_short(&a.client_type)),
            None => model::client_short(&a.client_type).to_string(),
        },
        status: format!(
            "{} {}",
            model::liveness_word(a.liveness.state),
            model::age(now_ms, a.liveness.since_ms)
        ),
        tool: a
            .current_tool
            .as_ref()
            .map(model::tool_badge)
            .unwrap_or_default(),
        badges: model::badges(a),
        work: model::work_line(a),
    }
}

/// How bad a wait-graph line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitSeverity {
    /// An ordinary wait.
    Wait,
    /// A wait on a dead or ended agent.
    Orphaned,
    /// A cycle through an agent that is not alive.
    Cycle,
    /// A cycle of live agents.
    Deadlock,
}

/// One line of the wait-graph section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitLine {
    /// The text.
    pub text: String,
    /// For colouring.
    pub severity: WaitSeverity,
}

/// Liveness by session id, for [`waits::analyze`].
pub fn liveness_map(s: &StatusSnapshot) -> HashMap<&str, LivenessState> {
    s.agents
        .iter()
        .map(|a| (a.client_session_id.as_str(), a.liveness.state))
        .collect()
}

/// The wait-graph analysis of a snapshot.
pub fn wait_report(s: &StatusSnapshot) -> WaitReport {
    let live = liveness_map(s);
    waits::analyze(&s.waits, &|id| {
        live.get(id).copied().unwrap_or(LivenessState::Unknown)
    })
}

/// The wait-graph lines: deadlocks and cycles first, then every edge
/// (orphaned ones marked). Empty when nobody waits.
pub fn wait_lines(s: &StatusSnapshot, report: &WaitReport, now_ms: u64) -> Vec<WaitLine> {
    let names: HashMap<&str, String> = s
        .agents
        .iter()
        .map(|a| (a.client_session_id.as_str(), model::display_name(a)))
        .collect();
    let name = |id: &str| {
        names
            .get(id)
            .cloned()
            .unwrap_or_else(|| model::short_id(id))
    };
    let mut out = Vec::new();
    for c in &report.cycles {
        let mut chain: Vec<String> = c.members.iter().map(|m| name(m)).collect();
        chain.push(name(&c.members[0]));
        let chain = chain.join(" → ");
        out.push(if c.deadlock {
            WaitLine {
                text: format!("⛔ DEADLOCK {chain} (every member alive; none can answer)"),
                severity: WaitSeverity::Deadlock,
            }
        } else {
            WaitLine {
                text: format!("⟳ cycle {chain} (not a deadlock: a member is not alive)"),
                severity: WaitSeverity::Cycle,
            }
        });
    }
    let live = liveness_map(s);
    for (i, e) in s.waits.iter().enumerate() {
        let kind = match e.kind {
            WaitKind::InFlight => "in flight",
            WaitKind::Pending => "pending",
        };
        let from = e.from_name.clone().unwrap_or_else(|| name(&e.from));
        let to = e.to_name.clone().unwrap_or_else(|| name(&e.to));
        let age = model::age(now_ms, Some(e.since_ms));
        if report.orphaned.contains(&i) {
            let state = live
                .get(e.to.as_str())
                .map_or("gone", |l| model::liveness_word(*l));
            out.push(WaitLine {
                text: format!("⚠ orphaned: {from} awaits {to}, who is {state} ({age}, {kind})"),
                severity: WaitSeverity::Orphaned,
            });
        } else {
            out.push(WaitLine {
                text: format!("⏳ {from} awaiting reply from {to} ({age}, {kind})"),
                severity: WaitSeverity::Wait,
            });
        }
    }
    out
}

/// One comms line: `2m  main → codex  ⚑  please audit…`, unpadded.
pub fn comms_line(e: &CommsEntry, now_ms: u64) -> String {
    let (from, to) = comms::route(e);
    format!(
        "{:>4}  {from} → {to}  {}  {}",
        model::age(now_ms, Some(e.at_ms)),
        comms::marker(e),
        model::one_line(&e.body_preview)
    )
}

/// Options of [`render_text`].
#[derive(Debug, Clone, Copy)]
pub struct TextOpts {
    /// Cut lines to this many cells (`None`: never cut, e.g. a pipe).
    pub width: Option<usize>,
    /// How many of the newest comms entries to print.
    pub comms: usize,
}

/// Column widths for a set of agent rows: (name, client, status, tool,
/// badges), each capped.
pub fn column_widths(cells: &[AgentCells]) -> [usize; 5] {
    let w = |f: &dyn Fn(&AgentCells) -> &str, min: usize, cap: usize| {
        cells
            .iter()
            .map(|c| width(f(c)))
            .max()
            .unwrap_or(0)
            .clamp(min, cap)
    };
    [
        w(&|c| &c.name, 5, 16),
        w(&|c| &c.client, 4, 12),
        w(&|c| &c.status, 6, 12),
        w(&|c| &c.tool, 4, 18),
        w(&|c| &c.badges, 6, 12),
    ]
}

/// Renders the whole snapshot as text: header, agent rows, panes,
/// One files-section line: `! src/db.rs  alice  edited 3m ago  (main)` or
/// `  src/**  bob  exclusive lease, 40m left`.
pub fn file_line(f: &oxtail_proto::status::FileRow, now_ms: u64) -> String {
    let when = if f.what == "edited" {
        format!("edited {} ago", model::age(now_ms, Some(f.at_ms)))
    } else {
        format!(
            "{} lease, {} left",
            f.what,
            model::age(f.at_ms, Some(now_ms))
        )
    };
    let branch = f
        .branch
        .as_deref()
        .map(|b| format!("  ({b})"))
        .unwrap_or_default();
    format!(
        "{} {}  {}  {when}{branch}",
        if f.conflict { "!" } else { " " },
        f.path,
        f.agent
    )
}

/// The status line of federation (issue 16), when it is on: where to, the
/// link, what federates, and the plain-text warning when it applies.
pub fn federation_line(f: &oxtail_proto::status::FederationStatus) -> String {
    let mut line = format!(
        "federation: on → {} · link {} · {} federated project{} · {} remote agent{}",
        f.url,
        if f.link_up { "up" } else { "DOWN" },
        f.projects,
        if f.projects == 1 { "" } else { "s" },
        f.remote_agents,
        if f.remote_agents == 1 { "" } else { "s" },
    );
    if f.outbox > 0 {
        line.push_str(&format!(" · {} waiting in the outbox", f.outbox));
    }
    if let (false, Some(e)) = (f.link_up, &f.error) {
        line.push_str(&format!(" ({e})"));
    }
    if let Some(w) = &f.warning {
        line.push_str(&format!("\n  warning: {w}"));
    }
    line
}

/// wait-graph, the last comms entries. Ages are against `now_ms`.
pub fn render_text(s: &StatusSnapshot, now_ms: u64, opts: TextOpts) -> String {
    let mut lines: Vec<String> = Vec::new();
    let npanes = s.panes.len();
    lines.push(format!(
        "oxtail status · {}{}",
        model::header(s),
        if npanes > 0 {
            format!(
                " · {npanes} other pane{}",
                if npanes == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    ));
    if let Some(f) = &s.federation {
        lines.push(federation_line(f));
    }
    if s.agents.is_empty() {
        lines.push(
            "  no agents in this project yet (start Claude Code or Codex with oxtail set up)"
                .to_string(),
        );
    } else {
        let cells: Vec<AgentCells> = s.agents.iter().map(|a| agent_cells(a, now_ms)).collect();
        let [wn, wc, ws, wt, wb] = column_widths(&cells);
        lines.push(format!(
            "   {} {} {} {} {} WORK / PURPOSE",
            pad("AGENT", wn),
            pad("TYPE", wc),
            pad("STATUS", ws),
            pad("TOOL", wt),
            pad("BADGES", wb)
        ));
        for c in &cells {
            lines.push(format!(
                "{} {} {} {} {} {} {}",
                c.glyph,
                pad(&c.name, wn),
                pad(&c.client, wc),
                pad(&c.status, ws),
                pad(&c.tool, wt),
                pad(&c.badges, wb),
                c.work
            ));
        }
    }
    if !s.panes.is_empty() {
        lines.push(String::new());
        lines.push("panes (no agent)".to_string());
        for p in &s.panes {
            lines.push(format!(
                "   {} {}:{} {} {}",
                p.tmux.pane_id, p.tmux.session_name, p.tmux.window_index, p.command, p.cwd
            ));
        }
    }
    lines.push(String::new());
    lines.push("wait-graph".to_string());
    let report = wait_report(s);
    let wl = wait_lines(s, &report, now_ms);
    if wl.is_empty() {
        lines.push("  nobody is waiting".to_string());
    }
    lines.extend(wl.into_iter().map(|l| format!("  {}", l.text)));
    if !s.files.is_empty() {
        lines.push(String::new());
        lines.push("files (! marks a conflict)".to_string());
        lines.extend(
            s.files
                .iter()
                .take(20)
                .map(|f| format!("  {}", file_line(f, now_ms))),
        );
        if s.files.len() > 20 {
            lines.push(format!(
                "  … {} more (oxtail status --json)",
                s.files.len() - 20
            ));
        }
    }
    lines.push(String::new());
    let shown = s.comms.len().min(opts.comms);
    lines.push(format!(
        "comms (last {shown} of {})",
        s.comms_total.max(s.comms.len() as u64)
    ));
    if shown == 0 {
        lines.push("  no messages yet".to_string());
    }
    for e in &s.comms[s.comms.len() - shown..] {
        lines.push(format!("  {}", comms_line(e, now_ms)));
    }
    let mut out = String::new();
    for l in lines {
        match opts.width {
            Some(w) => out.push_str(&truncate(&l, w)),
            None => out.push_str(&l),
        }
        out.push('\n');
    }
    out
}
