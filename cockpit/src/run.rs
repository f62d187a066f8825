//! Drives [`crate::tui::App`] on a real terminal: raw mode and the
//! alternate screen (restored on exit and after a panic), keys from
//! crossterm, snapshots from the daemon's subscription (pushed, never
//! polled), a one-second local tick for ages and the pane tail, and the
//! actions (jump, nudge, operator message).

use crate::daemon::{self, Scope};
use crate::tmux::{self, Tmux};
use crate::tui::{self, Action, App, Feed};
use anyhow::Result;
use oxtail_proto::status::StatusSnapshot;
use ratatui::crossterm::event::{self, Event};
use ratatui::DefaultTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How `oxtail oxpit` runs.
#[derive(Debug, Clone)]
pub struct OxpitOptions {
    /// What to show.
    pub scope: Scope,
    /// Show a saved `status --json` file instead of subscribing.
    pub snapshot_file: Option<PathBuf>,
    /// The tmux server for panes whose socket is not reported.
    pub tmux: Tmux,
}

enum Msg {
    Key(event::KeyEvent),
    Resize,
    Snapshot(Box<StatusSnapshot>),
    FeedDown(String),
    Flash(String),
    Tail(String, Vec<String>),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs the TUI until `q` / Ctrl-C.
///
/// # Errors
/// When the terminal cannot be set up, or the snapshot file is unreadable.
pub fn oxpit(opts: OxpitOptions) -> Result<()> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut app;
    // In file mode ages count from the file's own clock, advancing with ours.
    let mut clock_base: Option<(u64, Instant)> = None;
    if let Some(path) = &opts.snapshot_file {
        let s = daemon::read_snapshot_file(path)?;
        clock_base = Some((s.generated_at_ms, Instant::now()));
        app = App::new(Feed::File(path.display().to_string()));
        app.set_snapshot(s);
    } else {
        app = App::new(Feed::Connecting);
        spawn_subscription(opts.scope.clone(), tx.clone());
    }
    // ratatui::init enables raw mode and the alternate screen, and installs
    // a panic hook that restores the terminal before the panic message.
    let mut terminal = ratatui::init();
    let gate = Arc::new(InputGate::default());
    spawn_input(tx.clone(), gate.clone());
    let res = event_loop(&mut terminal, &mut app, &opts, &tx, &rx, clock_base, &gate);
    ratatui::restore();
    res
}

fn spawn_subscription(scope: Scope, tx: mpsc::Sender<Msg>) {
    std::thread::spawn(move || {
        let mut backoff = Duration::from_millis(500);
        loop {
            let t = tx.clone();
            let res = daemon::subscribe(&scope, |s| {
                let _ = t.send(Msg::Snapshot(Box::new(s)));
            });
            let why = match res {
                Ok(()) => "the daemon ended the subscription; reconnecting".to_string(),
                Err(e @ daemon::DaemonError::Unsupported(_)) => {
                    // Retrying cannot help until the daemon is replaced.
                    let _ = tx.send(Msg::FeedDown(e.to_string()));
                    return;
                }
                Err(e) => format!("{e}; reconnecting"),
            };
            if tx.send(Msg::FeedDown(why)).is_err() {
                return;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
}

/// Lets the key reader stand aside while a child (`tmux attach`) owns the
/// terminal, so it does not steal the child's keystrokes.
#[derive(Default)]
struct InputGate {
    paused: AtomicBool,
    idle: AtomicBool,
}

impl InputGate {
    fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        let end = Instant::now() + Duration::from_millis(500);
        while !self.idle.load(Ordering::SeqCst) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

fn spawn_input(tx: mpsc::Sender<Msg>, gate: Arc<InputGate>) {
    std::thread::spawn(move || loop {
        if gate.paused.load(Ordering::SeqCst) {
            gate.idle.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        gate.idle.store(false, Ordering::SeqCst);
        match event::poll(Duration::from_millis(50)) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(_) => return,
        }
        match event::read() {
            Ok(Event::Key(k)) => {
                if tx.send(Msg::Key(k)).is_err() {
                    return;
                }
            }
            Ok(Event::Resize(..)) => {
                if tx.send(Msg::Resize).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    });
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    opts: &OxpitOptions,
    tx: &mpsc::Sender<Msg>,
    rx: &mpsc::Receiver<Msg>,
    clock_base: Option<(u64, Instant)>,
    gate: &InputGate,
) -> Result<()> {
    let now = || match clock_base {
        Some((base, t0)) => base + t0.elapsed().as_millis() as u64,
        None => now_ms(),
    };
    let tick = Duration::from_secs(1);
    let mut next_tick = Instant::now();
    loop {
        if Instant::now() >= next_tick {
            refresh_tail(app, opts, tx);
            next_tick = Instant::now() + tick;
        }
        let t = now();
        terminal.draw(|f| tui::draw(f, app, t))?;
        let wait = next_tick.saturating_duration_since(Instant::now());
        let msg = match rx.recv_timeout(wait) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        match msg {
            Msg::Key(k) => match app.on_key(k) {
                Action::None => {
                    let shown = app.pane_tail_for.clone();
                    let cur = app
                        .selected_agent()
                        .and_then(|a| a.tmux.as_ref())
                        .map(|t| t.pane_id.clone());
                    if shown != cur {
                        refresh_tail(app, opts, tx);
                    }
                }
                Action::Quit => return Ok(()),
                Action::Jump { name, tmux: loc } => {
                    let server = opts.tmux.for_location(&loc);
                    if tmux::can_switch(&loc, &opts.tmux) || server.is_own_pane(&loc) {
                        app.flash = Some(match server.switch_to(&loc.pane_id) {
                            Ok(()) => format!("jumped to {name} ({})", loc.pane_id),
                            Err(e) => format!("jump failed: {e:#}"),
                        });
                    } else {
                        // Outside tmux (or on another server): hand the
                        // terminal to `tmux attach`, come back on detach.
                        gate.pause();
                        ratatui::restore();
                        let st = server.attach_command(&loc.pane_id).status();
                        *terminal = ratatui::init();
                        gate.resume();
                        terminal.clear()?;
                        app.flash = Some(match st {
                            Ok(s) if s.success() => format!("back from {name}"),
                            Ok(s) => format!("tmux attach exited with {s}"),
                            Err(e) => format!("could not run tmux attach: {e}"),
                        });
                    }
                }
                Action::Nudge {
                    target,
                    name,
                    check_in,
                } => {
                    app.flash = Some(format!("nudging {name}…"));
                    let tx = tx.clone();
                    let root = opts.scope.project_root.clone();
                    std::thread::spawn(move || {
                        let line = match daemon::nudge(&target, root, check_in) {
                            Ok(a) => daemon::describe("nudged", &name, &a),
                            Err(e) => format!("nudge failed: {e}"),
                        };
                        let _ = tx.send(Msg::Flash(line));
                    });
                }
                Action::Interrupt { target, name } => {
                    app.flash = Some(format!("interrupting {name}…"));
                    let tx = tx.clone();
                    let root = opts.scope.project_root.clone();
                    std::thread::spawn(move || {
                        let line = match daemon::interrupt(&target, root) {
                            Ok(a) if a.ok => format!(
                                "interrupt {name}: {}",
                                a.message.as_deref().unwrap_or("sent")
                            ),
                            Ok(a) => daemon::describe("interrupt", &name, &a),
                            Err(e) => format!("interrupt failed: {e}"),
                        };
                        let _ = tx.send(Msg::Flash(line));
                    });
                }
                Action::Send { target, name, body } => {
                    app.flash = Some(format!("sending to {name}…"));
                    let tx = tx.clone();
                    let root = opts.scope.project_root.clone();
                    std::thread::spawn(move || {
                        let line = match daemon::operator_message(&target, &body, root) {
                            Ok(a) => daemon::describe("message to", &name, &a),
                            Err(e) => format!("message failed: {e}"),
                        };
                        let _ = tx.send(Msg::Flash(line));
                    });
                }
            },
            Msg::Resize => {}
            Msg::Snapshot(s) => {
                let before = app.selected_agent().map(|a| a.client_session_id.clone());
                app.set_snapshot(*s);
                app.feed = Feed::Live;
                if before != app.selected_agent().map(|a| a.client_session_id.clone()) {
                    refresh_tail(app, opts, tx);
                }
            }
            Msg::FeedDown(why) => app.feed = Feed::Down(why),
            Msg::Flash(s) => app.flash = Some(s),
            Msg::Tail(pane, lines) => {
                let cur = app
                    .selected_agent()
                    .and_then(|a| a.tmux.as_ref())
                    .map(|t| t.pane_id.clone());
                if cur.as_deref() == Some(pane.as_str()) {
                    app.pane_tail = lines;
                    app.pane_tail_for = Some(pane);
                }
            }
        }
    }
}

/// Captures the selected agent's pane tail off the UI thread.
fn refresh_tail(app: &mut App, opts: &OxpitOptions, tx: &mpsc::Sender<Msg>) {
    let Some(loc) = app.selected_agent().and_then(|a| a.tmux.clone()) else {
        app.pane_tail.clear();
        app.pane_tail_for = None;
        return;
    };
    if app.pane_tail_for.as_deref() != Some(loc.pane_id.as_str()) {
        app.pane_tail.clear();
        app.pane_tail_for = Some(loc.pane_id.clone());
    }
    let server = opts.tmux.for_location(&loc);
    let tx = tx.clone();
    std::thread::spawn(move || {
        let lines = server
            .capture_tail(&loc.pane_id, 40)
            .unwrap_or_else(|e| vec![format!("(pane tail unavailable: {e:#})")]);
        let _ = tx.send(Msg::Tail(loc.pane_id, lines));
    });
}
