//! The `oxtail oxpit` app: state, key handling and drawing. Pure: no
//! terminal, no socket, no clock (drawing takes `now_ms`), so it is tested
//! with ratatui's `TestBackend`. [`crate::run`] feeds it real events.

use crate::comms;
use crate::model::{self, pad, truncate};
use crate::text::{self, AgentCells, WaitSeverity};
use oxtail_proto::status::{AgentRow, LivenessState, StatusSnapshot, TmuxLocation};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

/// Which screen is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// Agents, wait-graph, recent comms, pane tail.
    Agents,
    /// The whole comms log (`l`).
    Log,
    /// One thread (`w`): indexes into the snapshot's comms.
    Thread(Vec<usize>),
    /// Key help (`?`).
    Help,
    /// Who holds or recently edited which files (`f`).
    Files,
}

/// Where the data comes from, shown in the title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// Waiting for the first push.
    Connecting,
    /// Subscribed; pushes arrive as things change.
    Live,
    /// A saved snapshot (`--snapshot FILE`).
    File(String),
    /// The subscription failed; the sentence says why.
    Down(String),
}

/// What the runtime should do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Leave, restoring the terminal.
    Quit,
    /// Move the tmux client to this agent's pane.
    Jump {
        /// The agent's display name.
        name: String,
        /// Its verified pane.
        tmux: TmuxLocation,
    },
    /// Wake this agent through the wake engine (`n`: only if mail waits;
    /// `N`: also with nothing queued, asking it to check in).
    Nudge {
        /// client_session_id.
        target: String,
        /// Display name.
        name: String,
        /// `N`: ask it to check in even with nothing queued.
        check_in: bool,
    },
    /// Interrupt this Codex agent's running turn through its app-server
    /// (`i`, then `y` to confirm).
    Interrupt {
        /// client_session_id.
        target: String,
        /// Display name.
        name: String,
    },
    /// Deliver an operator message.
    Send {
        /// client_session_id.
        target: String,
        /// Display name.
        name: String,
        /// The text typed.
        body: String,
    },
}

/// The cockpit's state.
#[derive(Debug, Clone)]
pub struct App {
    /// The latest snapshot.
    pub snapshot: StatusSnapshot,
    /// Selected agent (index into `snapshot.agents`).
    pub selected: usize,
    /// Selected comms entry in the log view (index into `snapshot.comms`).
    pub log_selected: usize,
    /// The screen.
    pub view: View,
    /// The message being composed (`m`), if any: (target id, name, text).
    pub compose: Option<(String, String, String)>,
    /// An interrupt waiting for the person's `y` (`i`): (target id, name).
    pub confirm_interrupt: Option<(String, String)>,
    /// A one-line notice (action results, errors), shown in the footer.
    pub flash: Option<String>,
    /// The selected agent's pane tail (from `tmux capture-pane`).
    pub pane_tail: Vec<String>,
    /// The pane `pane_tail` belongs to.
    pub pane_tail_for: Option<String>,
    /// Data source state.
    pub feed: Feed,
}

impl App {
    /// An app with no data yet.
    pub fn new(feed: Feed) -> App {
        App {
            snapshot: StatusSnapshot::default(),
            selected: 0,
            log_selected: 0,
            view: View::Agents,
            compose: None,
            confirm_interrupt: None,
            flash: None,
            pane_tail: Vec::new(),
            pane_tail_for: None,
            feed,
        }
    }

    /// The selected agent, if any.
    pub fn selected_agent(&self) -> Option<&AgentRow> {
        self.snapshot.agents.get(self.selected)
    }

    /// Takes a new snapshot, keeping the selection on the same agent (by
    /// session id) and the log selection on the newest entry when it was
    /// there.
    pub fn set_snapshot(&mut self, s: StatusSnapshot) {
        let keep = self.selected_agent().map(|a| a.client_session_id.clone());
        let log_at_end = self.log_selected + 1 >= self.snapshot.comms.len();
        let keep_msg = self
            .snapshot
            .comms
            .get(self.log_selected)
            .map(|e| e.message_id.clone());
        self.snapshot = s;
        self.selected = keep
            .and_then(|id| {
                self.snapshot
                    .agents
                    .iter()
                    .position(|a| a.client_session_id == id)
            })
            .unwrap_or(self.selected)
            .min(self.snapshot.agents.len().saturating_sub(1));
        let n = self.snapshot.comms.len();
        self.log_selected = if log_at_end {
            n.saturating_sub(1)
        } else {
            keep_msg
                .and_then(|id| self.snapshot.comms.iter().position(|e| e.message_id == id))
                .unwrap_or(n.saturating_sub(1))
        };
        if let View::Thread(ids) = &self.view {
            if ids.iter().any(|i| *i >= n) {
                self.view = View::Log;
            }
        }
    }

    /// Handles one key.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if let Some((target, name, mut buf)) = self.compose.take() {
            match key.code {
                KeyCode::Esc => self.flash = Some("message discarded".into()),
                KeyCode::Enter => {
                    if buf.trim().is_empty() {
                        self.flash = Some("empty message not sent".into());
                    } else {
                        return Action::Send {
                            target,
                            name,
                            body: buf,
                        };
                    }
                }
                KeyCode::Backspace => {
                    buf.pop();
                    self.compose = Some((target, name, buf));
                }
                KeyCode::Char(c) => {
                    buf.push(c);
                    self.compose = Some((target, name, buf));
                }
                _ => self.compose = Some((target, name, buf)),
            }
            return Action::None;
        }
        if let Some((target, name)) = self.confirm_interrupt.take() {
            if key.code == KeyCode::Char('y') {
                return Action::Interrupt { target, name };
            }
            self.flash = Some("interrupt cancelled".into());
            return Action::None;
        }
        self.flash = None;
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc => self.view = View::Agents,
            KeyCode::Char('?') => {
                self.view = if self.view == View::Help {
                    View::Agents
                } else {
                    View::Help
                }
            }
            KeyCode::Char('f') => {
                self.view = if self.view == View::Files {
                    View::Agents
                } else {
                    View::Files
                }
            }
            KeyCode::Char('l') => {
                self.view = if self.view == View::Log {
                    View::Agents
                } else {
                    self.log_selected = self
                        .log_selected
                        .min(self.snapshot.comms.len().saturating_sub(1));
                    View::Log
                }
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-10),
            KeyCode::PageDown => self.move_by(10),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_by(isize::MAX / 2),
            KeyCode::Char('w') => self.open_thread(),
            KeyCode::Enter => match self.view {
                View::Log => self.open_thread(),
                View::Agents => return self.jump(),
                _ => {}
            },
            KeyCode::Char(c @ ('n' | 'N')) => {
                if let Some(a) = self.selected_agent() {
                    return Action::Nudge {
                        target: a.client_session_id.clone(),
                        name: model::display_name(a),
                        check_in: c == 'N',
                    };
                }
                self.flash = Some("no agent selected".into());
            }
            KeyCode::Char('i') => {
                let sel = self.selected_agent().map(|a| {
                    (
                        a.client_session_id.clone(),
                        model::display_name(a),
                        a.wake_route.as_deref() == Some("app_server"),
                    )
                });
                match sel {
                    Some((id, name, true)) => {
                        self.flash = Some(format!(
                            "interrupt {name}'s running turn? y to confirm, any other key cancels"
                        ));
                        self.confirm_interrupt = Some((id, name));
                    }
                    Some((_, name, false)) => {
                        self.flash = Some(format!(
                            "{name} cannot be interrupted from here: only a Codex reached through its app-server"
                        ))
                    }
                    None => self.flash = Some("no agent selected".into()),
                }
            }
            KeyCode::Char('m') => match self.selected_agent() {
                Some(a) => {
                    self.compose = Some((
                        a.client_session_id.clone(),
                        model::display_name(a),
                        String::new(),
                    ))
                }
                None => self.flash = Some("no agent selected".into()),
            },
            _ => {}
        }
        Action::None
    }

    fn move_by(&mut self, d: isize) {
        let (cur, n) = match self.view {
            View::Log => (&mut self.log_selected, self.snapshot.comms.len()),
            View::Agents => (&mut self.selected, self.snapshot.agents.len()),
            _ => return,
        };
        if n == 0 {
            *cur = 0;
            return;
        }
        let next = (*cur as isize).saturating_add(d).clamp(0, n as isize - 1);
        *cur = next as usize;
    }

    fn jump(&mut self) -> Action {
        let Some(a) = self.selected_agent() else {
            self.flash = Some("no agent selected".into());
            return Action::None;
        };
        match &a.tmux {
            Some(t) => Action::Jump {
                name: model::display_name(a),
                tmux: t.clone(),
            },
            None => {
                self.flash = Some(format!(
                    "{} has no verified tmux pane; nothing to jump to",
                    model::display_name(a)
                ));
                Action::None
            }
        }
    }

    /// Opens the thread of the selected log entry (log view), or of the
    /// selected agent's awaited ask / latest comms entry (agents view).
    fn open_thread(&mut self) {
        let comms = &self.snapshot.comms;
        let at = match self.view {
            View::Log | View::Thread(_) => {
                (self.log_selected < comms.len()).then_some(self.log_selected)
            }
            _ => self.selected_agent().and_then(|a| {
                let id = &a.client_session_id;
                a.awaiting
                    .as_ref()
                    .and_then(|w| {
                        comms
                            .iter()
                            .rposition(|e| e.request_id.as_deref() == Some(&w.request_id))
                    })
                    .or_else(|| comms.iter().rposition(|e| &e.from == id || &e.to == id))
            }),
        };
        match at {
            Some(i) => {
                self.log_selected = i;
                self.view = View::Thread(comms::thread(comms, i));
            }
            None => self.flash = Some("no conversation to show".into()),
        }
    }
}

const KEYS: &str =
    "↑↓/jk select · ⏎ jump · n nudge · m message · l log · w thread · ? help · q quit";

/// Draws the app for the current view. Ages are against `now_ms`.
pub fn draw(f: &mut Frame, app: &App, now_ms: u64) {
    let area = f.area();
    let [title, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let feed = match &app.feed {
        Feed::Connecting => "connecting…".to_string(),
        Feed::Live => "live".to_string(),
        Feed::File(p) => format!("snapshot {p}"),
        Feed::Down(why) => format!("daemon: {why}"),
    };
    let head = format!("oxpit {} · {feed}", model::header(&app.snapshot));
    f.render_widget(
        Paragraph::new(truncate(&head, area.width as usize))
            .style(Style::default().add_modifier(Modifier::BOLD)),
        title,
    );
    match &app.view {
        View::Agents => draw_agents(f, app, body, now_ms),
        View::Log => draw_log(f, app, body, now_ms),
        View::Thread(ids) => draw_thread(f, app, ids, body, now_ms),
        View::Help => draw_help(f, body),
        View::Files => draw_files(f, app, body, now_ms),
    }
    let foot = if let Some((_, name, buf)) = &app.compose {
        format!("message to {name} (⏎ send, Esc cancel): {buf}▏")
    } else if let Some(fl) = &app.flash {
        fl.clone()
    } else {
        KEYS.to_string()
    };
    let style = if app.compose.is_some() {
        Style::default().fg(Color::Yellow)
    } else {
        Style::default().fg(Color::DarkGray)
    };
    f.render_widget(
        Paragraph::new(truncate(&foot, area.width as usize)).style(style),
        footer,
    );
}

fn section(title: &str) -> Block<'_> {
    Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(title, Style::default().fg(Color::Cyan)))
}

fn draw_agents(f: &mut Frame, app: &App, area: Rect, now_ms: u64) {
    let s = &app.snapshot;
    let report = text::wait_report(s);
    let wl = text::wait_lines(s, &report, now_ms);
    let rows = s.agents.len().max(1) as u16 + 1;
    let wait_h = (wl.len().max(1) as u16 + 1).min(6);
    let has_tail = app.selected_agent().is_some_and(|a| a.tmux.is_some());
    let tail_h = if has_tail && area.height >= 24 { 8 } else { 0 };
    let [agents_a, wait_a, comms_a, tail_a] = Layout::vertical([
        Constraint::Max(rows.max(3)),
        Constraint::Length(wait_h),
        Constraint::Min(3),
        Constraint::Length(tail_h),
    ])
    .areas(area);

    // Agents.
    let w = agents_a.width as usize;
    let cells: Vec<AgentCells> = s
        .agents
        .iter()
        .map(|a| text::agent_cells(a, now_ms))
        .collect();
    let [wn, wc, ws, wt, wb] = text::column_widths(&cells);
    let mut lines = vec![Line::styled(
        truncate(
            &format!(
                "    {} {} {} {} {} WORK / PURPOSE",
                pad("AGENT", wn),
                pad("TYPE", wc),
                pad("STATUS", ws),
                pad("TOOL", wt),
                pad("BADGES", wb)
            ),
            w,
        ),
        Style::default().fg(Color::DarkGray),
    )];
    if s.agents.is_empty() {
        lines.push(Line::raw("  no agents in this project yet"));
    }
    let visible = agents_a.height.saturating_sub(1) as usize;
    let offset = app.selected.saturating_sub(visible.saturating_sub(1));
    for (i, c) in cells.iter().enumerate().skip(offset).take(visible) {
        let row = format!(
            "{}{} {} {} {} {} {} {}",
            if i == app.selected { "›" } else { " " },
            c.glyph,
            pad(&c.name, wn),
            pad(&c.client, wc),
            pad(&c.status, ws),
            pad(&c.tool, wt),
            pad(&c.badges, wb),
            model::one_line(&c.work)
        );
        let mut style = match s.agents[i].liveness.state {
            LivenessState::Dead | LivenessState::Ended | LivenessState::Unknown => {
                Style::default().fg(Color::DarkGray)
            }
            _ => Style::default(),
        };
        if i == app.selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        lines.push(Line::styled(pad(&row, w), style));
    }
    f.render_widget(Paragraph::new(lines), agents_a);

    // Wait-graph.
    let mut wlines: Vec<Line> = wl
        .iter()
        .map(|l| {
            let style = match l.severity {
                WaitSeverity::Deadlock => {
                    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
                }
                WaitSeverity::Orphaned => Style::default().fg(Color::Yellow),
                WaitSeverity::Cycle => Style::default().fg(Color::Magenta),
                WaitSeverity::Wait => Style::default(),
            };
            Line::styled(truncate(&l.text, w), style)
        })
        .collect();
    if wlines.is_empty() {
        wlines.push(Line::styled(
            "nobody is waiting",
            Style::default().fg(Color::DarkGray),
        ));
    }
    f.render_widget(Paragraph::new(wlines).block(section("wait-graph")), wait_a);

    // Recent comms: as many of the newest as fit.
    let room = comms_a.height.saturating_sub(1) as usize;
    let n = s.comms.len();
    let clines: Vec<Line> = s.comms[n.saturating_sub(room)..]
        .iter()
        .map(|e| Line::raw(truncate(&text::comms_line(e, now_ms), w)))
        .collect();
    let title = format!(
        "comms ({} of {}, l for the log)",
        clines.len(),
        s.comms_total.max(n as u64)
    );
    let clines = if clines.is_empty() {
        vec![Line::styled(
            "no messages yet",
            Style::default().fg(Color::DarkGray),
        )]
    } else {
        clines
    };
    f.render_widget(Paragraph::new(clines).block(section(&title)), comms_a);

    // Pane tail of the selected agent.
    if tail_h > 0 {
        if let Some(a) = app.selected_agent() {
            let t = a.tmux.as_ref().map(|t| t.pane_id.as_str()).unwrap_or("");
            let room = tail_a.height.saturating_sub(1) as usize;
            let tl: Vec<Line> = app.pane_tail[app.pane_tail.len().saturating_sub(room)..]
                .iter()
                .map(|l| Line::raw(truncate(l, w)))
                .collect();
            let title = format!("pane {} · {t}", model::display_name(a));
            f.render_widget(Paragraph::new(tl).block(section(&title)), tail_a);
        }
    }
}

fn draw_log(f: &mut Frame, app: &App, area: Rect, now_ms: u64) {
    let s = &app.snapshot;
    let w = area.width as usize;
    let room = area.height.saturating_sub(1) as usize;
    let n = s.comms.len();
    let sel = app.log_selected.min(n.saturating_sub(1));
    // Keep the selection visible, newest at the bottom.
    let end = (sel + 1).max(room.min(n)).min(n);
    let start = end.saturating_sub(room);
    let lines: Vec<Line> = (start..end)
        .map(|i| {
            let mark = if i == sel { "›" } else { " " };
            let l = pad(
                &format!("{mark}{}", text::comms_line(&s.comms[i], now_ms)),
                w,
            );
            if i == sel {
                Line::styled(l, Style::default().add_modifier(Modifier::REVERSED))
            } else {
                Line::raw(l)
            }
        })
        .collect();
    let title = format!(
        "comms log · {n} shown of {} · ⚑ open ⚑✓ done ⚑✗ blocked ❓ ask ↩ reply ✦ operator · w thread · Esc back",
        s.comms_total.max(n as u64)
    );
    let lines = if lines.is_empty() {
        vec![Line::raw("no messages yet")]
    } else {
        lines
    };
    f.render_widget(
        Paragraph::new(lines).block(section(&truncate(&title, w))),
        area,
    );
}

fn draw_files(f: &mut Frame, app: &App, area: Rect, now_ms: u64) {
    let s = &app.snapshot;
    let w = area.width as usize;
    let lines: Vec<Line> = if s.files.is_empty() {
        vec![Line::raw("no leases and no recent edits")]
    } else {
        s.files
            .iter()
            .map(|r| {
                let l = pad(&text::file_line(r, now_ms), w);
                if r.conflict {
                    Line::styled(l, Style::default().fg(Color::Red))
                } else {
                    Line::raw(l)
                }
            })
            .collect()
    };
    let title = format!(
        "files · {} · ! conflict (two agents on one path in one work tree) · Esc back",
        s.files.len()
    );
    f.render_widget(
        Paragraph::new(lines).block(section(&truncate(&title, w))),
        area,
    );
}

fn draw_thread(f: &mut Frame, app: &App, ids: &[usize], area: Rect, now_ms: u64) {
    let s = &app.snapshot;
    let mut lines = Vec::new();
    for &i in ids {
        let Some(e) = s.comms.get(i) else { continue };
        let (from, to) = comms::route(e);
        let mut head = format!(
            "{} {} → {} · {} ago · {}",
            comms::marker(e),
            from,
            to,
            model::age(now_ms, Some(e.at_ms)),
            e.message_id
        );
        if let Some(r) = &e.request_id {
            head.push_str(&format!(" · request {r}"));
        }
        if let Some(r) = &e.reply_to {
            head.push_str(&format!(" · reply to {r}"));
        }
        let style = if i == app.log_selected {
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        };
        lines.push(Line::styled(head, style));
        for l in e.body_preview.lines() {
            lines.push(Line::raw(format!("    {l}")));
        }
        if e.body_bytes as usize > e.body_preview.len() {
            lines.push(Line::styled(
                format!("    … ({} bytes in all)", e.body_bytes),
                Style::default().fg(Color::DarkGray),
            ));
        }
    }
    let title = format!(
        "thread · {} message{} · Esc back",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" }
    );
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(section(&title)),
        area,
    );
}

fn draw_help(f: &mut Frame, area: Rect) {
    let help = [
        "↑ ↓ / j k   select an agent (or a log entry)",
        "PgUp PgDn   move by ten · g / G first / last",
        "⏎           jump to the agent's tmux pane (switch-client inside tmux, attach outside)",
        "n           nudge: wake the agent to read its queued mail (none queued: no wake)",
        "N           ask the agent to check in: wakes it even with nothing queued",
        "i           interrupt a Codex agent's running turn (through its app-server; y confirms)",
        "m           message the agent as its user (framed as your own words)",
        "l           the comms log · w the thread of the selected entry",
        "f           files: leases and recent edits, conflicts marked !",
        "Esc         back to the agents · ? this help · q or Ctrl-C quit",
        "",
        "🟢 active  🟡 idle  ⚫ dead/ended  ⚪ unknown",
        "⚙ bash  ✎ edit  ▤ read  ↔ oxtail   tool badges (latest hook event)",
        "✉N unread  ⚑N open obligations  ⏳ awaiting a reply",
        "⛔ DEADLOCK  a wait cycle whose members are all alive",
        "⚑ open  ⚑✓ done  ⚑✗ blocked  ❓ ask  ↩ reply  ✦ operator",
        "Read-only: the cockpit never drains a mailbox.",
    ];
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(help.iter().map(|l| Line::raw(*l)).collect::<Vec<_>>())
            .block(section("help")),
        area,
    );
}

/// The visible text of a ratatui buffer, one string per row, wide
/// characters once (their continuation cells skipped), trailing spaces
/// trimmed. Used by the snapshot tests and the benchmark.
pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        let mut skip = 0usize;
        for x in area.left()..area.right() {
            let sym = buf[(x, y)].symbol();
            if skip > 0 {
                skip -= 1;
                continue;
            }
            line.push_str(sym);
            skip = model::width(sym).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
