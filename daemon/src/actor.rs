//! The core actor: one thread that owns the [`State`], the journal and every
//! ephemeral fact, and carries out what the pure planners decide.
//!
//! Loop: take every queued message (group commit), plan each with the pure
//! [`crate::tools`], journal each request's commands as one record, apply,
//! run wakes through the [`crate::wake`] funnel, then **one fsync** for the
//! batch, then send replies. Deadlines (ask timeouts, idle-wait timeouts) are
//! the loop's receive timeout, so a waiting ask costs no CPU and no polling.

use crate::config::Config;
use crate::identity::{self, Caller, Resolution};
use crate::render;
use crate::state::{self, Command, Event, Message, Origin, Scope, Seat, State};
use crate::tools::{self, Ctx, Live, Outcome};
use crate::wake::{
    Activity, ActivityState, Decision, Mode, Route, WakeBook, WakeFacts, WakeIntent, WakeStatus,
};
use oxtail_journal::Journal;
use oxtail_proto::status::{self as st, StatusEvent, StatusSnapshot};
use oxtail_proto::{error_code, Ctl, HookCall, IdleWait, IdleWaitAnswer, Reply, Role, ServerFrame};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

pub use crate::clock::now_ms;

/// Messages to the actor thread.
pub enum ToActor {
    /// A connection completed its handshake. `confirms`: its client acks
    /// hand-overs (protocol minor >= [`oxtail_proto::MINOR_CONFIRMS_HANDOVER`]).
    Open {
        conn: u64,
        role: Role,
        confirms: bool,
    },
    /// The client's word on hand-over `handover` ([`oxtail_proto::ClientFrame::Ack`]).
    Ack {
        conn: u64,
        handover: u64,
        delivered: bool,
    },
    /// A connection closed.
    Close { conn: u64 },
    /// A shim introduced itself. `pane`: the tmux pane hosting its seat,
    /// found at the edge when its environment names a tmux server.
    ShimHello {
        conn: u64,
        caller: Box<Caller>,
        pane: Option<Box<crate::tmux::Pane>>,
    },
    /// The shim's MCP client named itself; answered once the shim's agent
    /// (if it resolved) is registered.
    ClientInfo {
        conn: u64,
        name: String,
        reply: oneshot::Sender<Reply>,
    },
    /// A tool call.
    Tool {
        conn: u64,
        wire_id: u64,
        name: String,
        args: Value,
        meta: Option<Value>,
        requested_scope: Option<Scope>,
        /// The birth-time identity finding, when the edge looked one up.
        birth_time: Option<Result<String, String>>,
        reply: oneshot::Sender<Reply>,
    },
    /// The client cancelled request `wire_id`.
    Cancel { conn: u64, wire_id: u64 },
    /// A hook event, with the seat and scope looked up at the edge.
    Hook {
        conn: u64,
        call: Box<HookCall>,
        seat: Option<Seat>,
        scope: Option<Scope>,
        reply: oneshot::Sender<Reply>,
    },
    /// An idle-wait long poll.
    IdleWait {
        conn: u64,
        wait: IdleWait,
        reply: oneshot::Sender<Reply>,
    },
    /// `oxtail ctl …`, with the scope of its `project_root` if any.
    Ctl {
        conn: u64,
        wire_id: u64,
        ctl: Ctl,
        requested_scope: Option<Scope>,
        out: crate::outbox::Outbox,
        reply: oneshot::Sender<Reply>,
    },
    /// Once a second: liveness, retention, idle exit.
    Tick,
    /// What the probe worker found (panes, seat liveness, gone idle-wait
    /// clients): see [`crate::probe`].
    Probe(Box<crate::probe::ProbeReport>),
    /// A report from the Codex app-server tasks ([`crate::codex_app`]).
    CodexApp(Box<crate::codex_app::Report>),
    /// A report from the federation task ([`crate::federation`]).
    Federation(Box<crate::federation::Report>),
    /// SIGTERM/SIGINT: snapshot and exit after this batch.
    Terminate,
}

struct ConnInfo {
    role: Role,
    /// The client acks hand-overs; otherwise mail leaves at once.
    confirms: bool,
    caller: Option<Caller>,
    /// The session this shim last resolved to (liveness).
    session: Option<String>,
    /// The strategy last traced for it.
    traced: Option<&'static str>,
}

struct AskWaiter {
    conn: u64,
    wire_id: u64,
    reply: oneshot::Sender<Reply>,
    base: Value,
    deadline: Instant,
    started: Instant,
    /// The ask's wakes, held for `OXTAIL_ASK_WAKE_GRACE_MS` (500 ms): an
    /// answer that comes first needs no wake (CONTRACT §11: "after a 500 ms
    /// grace, an answer already there → `skipped_busy`, no keys").
    deferred: Vec<WakeIntent>,
    /// When the deferred wakes run.
    wake_at: Instant,
}

/// What one carried-out wake reports in a tool result: status, reason,
/// whether the caller turned it off, route and note.
type WakeFields = (
    WakeStatus,
    Option<&'static str>,
    bool,
    Option<&'static str>,
    Option<String>,
);

/// Puts one wake's outcome into a tool result (CONTRACT §15: a wake the
/// caller turned off reports its reason and no status).
fn set_wake_fields(
    set: &mut dyn FnMut(&str, Value),
    (status, reason, suppressed, route, note): WakeFields,
) {
    if !suppressed {
        set("wake_status", json!(status));
        if let Some(r) = route {
            set("wake_route", json!(r));
        }
        if let Some(n) = note {
            set("wake_note", json!(n));
        }
    }
    if let Some(r) = reason {
        set("wake_reason", json!(r));
    }
}

/// Mail handed to a connection, held until its client acks it.
struct Handover {
    conn: u64,
    /// The request whose reply carries it; a `Cancel` of that request
    /// releases it (the shim will not write a reply it gave up on).
    wire_id: Option<u64>,
    session: String,
    ids: Vec<String>,
    via: String,
    deadline: Instant,
}

struct IdleWaiter {
    conn: u64,
    reply: oneshot::Sender<Reply>,
    deadline: Instant,
    client_pid: Option<u32>,
    budget: usize,
}

struct Subscriber {
    conn: u64,
    wire_id: u64,
    out: crate::outbox::Outbox,
    project: Option<String>,
    project_root: Option<String>,
    all: bool,
    comms_limit: usize,
    reply: Option<oneshot::Sender<Reply>>,
}

/// The actor. Create with [`Actor::new`], run with [`Actor::run`] on its own
/// thread.
pub struct Actor {
    state: State,
    journal: Journal,
    config: Config,
    conns: HashMap<u64, ConnInfo>,
    live: Live,
    asks: HashMap<String, AskWaiter>,
    idle: HashMap<String, IdleWaiter>,
    subs: Vec<Subscriber>,
    subs_dirty: bool,
    last_push: Instant,
    book: WakeBook,
    trace: VecDeque<Value>,
    trace_file: Option<std::fs::File>,
    started: Instant,
    last_shim_seen: Instant,
    last_seat_check: Instant,
    last_retention: Instant,
    exit_tx: mpsc::UnboundedSender<i32>,
    exit_after_batch: Option<i32>,
    home: Option<String>,
    handovers: HashMap<u64, Handover>,
    next_handover: u64,
    /// Set by [`Actor::wake_for_operator`] for a check-in nudge, for the
    /// length of one `wake` call: what the rewake or keys route says when
    /// no mail is queued.
    check_in: Option<&'static str>,
    /// Reply-wake dedupe keys that fired while the journal refused their
    /// `RecordWake` (key → when): honoured as fired, journaled at the next
    /// tick that can.
    unjournaled_wakes: HashMap<String, u64>,
    /// Seat keys whose pane [`Actor::locate_new_seats`] already looked for.
    located: std::collections::HashSet<String>,
    /// The compaction snapshot being built and written off the core thread
    /// (issue 12), if one is.
    bg_snapshot: Option<BgSnapshot>,
    /// The worker that looks at tmux and processes for us (none in unit
    /// uses: then panes stay unknown).
    probe: Option<crate::probe::Probe>,
    /// The Codex app-server route (issue 15); `None` until the server wires
    /// it (and in unit tests).
    codex: Option<crate::codex_app::CodexApp>,
    /// Codex threads loaded in a watched app-server, by thread id: the
    /// `CODEX_HOME` and the latest view. Ephemeral.
    codex_threads: HashMap<String, (String, crate::codex_app::ThreadView)>,
    /// Watched `CODEX_HOME`s whose app-server is unreachable, and why.
    codex_down: HashMap<String, String>,
    /// `CODEX_HOME`s already handed to the watcher.
    codex_watched: std::collections::HashSet<String>,
    /// Hand-overs waiting for the app-server's word, by hand-over id: the
    /// target and the route tried.
    codex_inflight: HashMap<u64, (String, crate::codex_app::AppRoute)>,
    /// Codex agents that got mail in this batch: delivered mid-turn by
    /// [`Actor::steer_mid_turn`] when their turn is running.
    steer_candidates: std::collections::HashSet<String>,
    /// App-server deliveries whose `Offer` is journaled but not yet
    /// fsynced: sent once the batch is durable.
    codex_outbox: Vec<crate::codex_app::Delivery>,
    /// The route the last [`Actor::wake`] took (`wake_route`).
    last_route: Option<&'static str>,
    /// What the last [`Actor::wake`] wants the caller to know about its
    /// route (`wake_note`), e.g. a fallback.
    last_note: Option<String>,
    /// The federation task (issue 16); `None` unless
    /// `OXTAIL_FEDERATION_URL` is set.
    fed: Option<crate::federation::Federation>,
    /// Outbox messages handed to the federation task and not yet reported.
    fed_inflight: std::collections::HashSet<String>,
    /// Sends to remote agents whose reply waits for JetStream's ack, by
    /// message id: the reply, its value, and when it was parked.
    fed_parked: HashMap<String, (oneshot::Sender<Reply>, Value, Instant)>,
    /// Receipts for remote senders, sent once the batch that drained the
    /// messages is durable.
    fed_receipts: Vec<(crate::fedstate::RemotePeer, crate::fedstate::RemoteReceipt)>,
}

/// A snapshot thread's result: the ticket to finish, and the state bytes
/// written (or why not).
type BgSnapshot = std::thread::JoinHandle<(oxtail_journal::SnapshotTicket, std::io::Result<usize>)>;

type Pending = Vec<(oneshot::Sender<Reply>, Reply)>;

const TRACE_RING: usize = 2000;

impl Actor {
    /// An actor over a recovered state and its journal. `exit_tx` receives
    /// the exit code when the daemon should stop.
    pub fn new(
        state: State,
        journal: Journal,
        config: Config,
        exit_tx: mpsc::UnboundedSender<i32>,
    ) -> Actor {
        let now = Instant::now();
        let trace_file = std::env::var_os("MCP_TRACE_FILE").and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| tracing::warn!(error = %e, "cannot open MCP_TRACE_FILE"))
                .ok()
        });
        // Edits journaled before a restart still warn (issue 14).
        let touches = crate::files::Touches::seed(&state, now_ms(), config.touch_window_ms);
        Actor {
            state,
            journal,
            config,
            conns: HashMap::new(),
            live: Live {
                touches,
                ..Live::default()
            },
            asks: HashMap::new(),
            idle: HashMap::new(),
            subs: Vec::new(),
            subs_dirty: false,
            last_push: now,
            book: WakeBook::default(),
            trace: VecDeque::new(),
            trace_file,
            started: now,
            last_shim_seen: now,
            last_seat_check: now - Duration::from_secs(60),
            last_retention: now,
            exit_tx,
            exit_after_batch: None,
            home: std::env::var("HOME").ok(),
            handovers: HashMap::new(),
            next_handover: 1,
            check_in: None,
            unjournaled_wakes: HashMap::new(),
            located: std::collections::HashSet::new(),
            bg_snapshot: None,
            probe: None,
            codex: None,
            codex_threads: HashMap::new(),
            codex_down: HashMap::new(),
            codex_watched: std::collections::HashSet::new(),
            codex_inflight: HashMap::new(),
            steer_candidates: std::collections::HashSet::new(),
            codex_outbox: Vec::new(),
            last_route: None,
            last_note: None,
            fed: None,
            fed_inflight: std::collections::HashSet::new(),
            fed_parked: HashMap::new(),
            fed_receipts: Vec::new(),
        }
    }

    /// Wires the Codex app-server route, and watches the daemon's own
    /// `CODEX_HOME` (else `~/.codex`), so Codex TUIs there are known before
    /// their first prompt.
    pub fn set_codex(&mut self, app: crate::codex_app::CodexApp) {
        self.codex = Some(app);
        if let Some(h) = crate::codex_app::codex_home_of(
            std::env::var("CODEX_HOME").ok().as_deref(),
            self.home.as_deref(),
        ) {
            self.watch_codex(&h);
        }
    }

    fn watch_codex(&mut self, home: &str) {
        if let Some(app) = &self.codex {
            if self.codex_watched.insert(home.to_string()) {
                app.watch(home);
            }
        }
    }

    /// This actor with `probe` doing its tmux and process lookups.
    pub fn with_probe(mut self, probe: crate::probe::Probe) -> Actor {
        self.probe = Some(probe);
        self
    }

    /// Asks the probe worker for the liveness of idle-wait clients and,
    /// with `panes`, a pane refresh. Never blocks; the report arrives as
    /// [`ToActor::Probe`].
    fn request_probe(&mut self, panes: bool) {
        let Some(probe) = &self.probe else { return };
        let client_pids: Vec<u32> = self.idle.values().filter_map(|w| w.client_pid).collect();
        let panes = panes.then(|| {
            let mut sockets: Vec<Option<std::path::PathBuf>> = Vec::new();
            for a in self.state.agents.values() {
                if let Some(s) = &a.tmux_socket {
                    let p = Some(std::path::PathBuf::from(s));
                    if !sockets.contains(&p) {
                        sockets.push(p);
                    }
                }
            }
            sockets.push(None);
            let seats = self
                .state
                .agents
                .values()
                .filter(|a| a.ended_ms.is_none())
                .filter_map(|a| a.seat.as_ref().map(|s| (s.key(), s.clone())))
                .collect();
            crate::probe::PaneQuery {
                sockets,
                seats,
                scope_worktree: self.config.scope_worktree,
                tmux_timeout: self.config.tmux_timeout,
            }
        });
        if panes.is_none() && client_pids.is_empty() {
            return;
        }
        probe.request(crate::probe::ProbeRequest { panes, client_pids });
    }

    /// Takes in what the probe worker found: ends idle waiters whose client
    /// is gone, replaces the pane cache and seat liveness, and names agents
    /// after their panes. True when it journaled something.
    fn on_probe(&mut self, report: crate::probe::ProbeReport, pending: &mut Pending) -> bool {
        let dead: Vec<String> = self
            .idle
            .iter()
            .filter(|(_, w)| w.client_pid.is_some_and(|p| report.dead_pids.contains(&p)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in dead {
            self.end_idle_waiter(&k, pending);
        }
        let Some(mut r) = report.panes else {
            return false;
        };
        // Seats that appeared after the request was made (their pane came
        // with their shim's hello) keep what we know of them.
        for (k, p) in &self.live.panes {
            if !r.seat_alive.contains_key(k) {
                r.seat_panes.insert(k.clone(), p.clone());
                r.other_panes
                    .retain(|(q, _)| !(q.id == p.id && q.socket == p.socket));
            }
        }
        for (k, a) in &self.live.seat_alive {
            r.seat_alive.entry(k.clone()).or_insert(*a);
        }
        if r.seat_alive != self.live.seat_alive
            || r.seat_panes != self.live.panes
            || r.other_panes != self.live.other_panes
        {
            self.subs_dirty = true;
        }
        self.live.seat_alive = r.seat_alive;
        self.live.panes = r.seat_panes;
        self.live.other_panes = r.other_panes;
        self.live.tmux_error = r.tmux_error;
        let before = self.journal.last_seq();
        self.name_pass();
        self.journal.last_seq() != before
    }

    fn next_deadline(&self) -> Option<Instant> {
        let a = self
            .asks
            .values()
            .map(|w| {
                if w.deferred.is_empty() {
                    w.deadline
                } else {
                    w.deadline.min(w.wake_at)
                }
            })
            .min();
        let i = self.idle.values().map(|w| w.deadline).min();
        let h = self.handovers.values().map(|h| h.deadline).min();
        let push = (self.subs_dirty && !self.subs.is_empty())
            .then(|| self.last_push + Duration::from_millis(100));
        [a, i, h, push].into_iter().flatten().min()
    }

    /// Runs until every sender of `rx` is gone or the daemon exits.
    pub fn run(mut self, rx: std_mpsc::Receiver<ToActor>) {
        let mut pending: Pending = Vec::new();
        loop {
            let first = match self.next_deadline() {
                Some(d) => {
                    let wait = d.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(wait) {
                        Ok(m) => Some(m),
                        Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                        Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => return,
                },
            };
            let mut dirty = false;
            if let Some(m) = first {
                dirty |= self.handle(m, &mut pending);
                // Group commit: everything already queued joins this fsync.
                while let Ok(m) = rx.try_recv() {
                    dirty |= self.handle(m, &mut pending);
                    if pending.len() >= 4096 {
                        break;
                    }
                }
            }
            dirty |= self.expire(&mut pending);
            if dirty {
                if let Err(e) = self.journal.sync() {
                    // Written but maybe not durable, and memory already shows
                    // it: stop, so recovery rebuilds from disk. No reply of
                    // this batch was sent.
                    tracing::error!(error = %e, "journal fsync failed; exiting so recovery restores a consistent state");
                    std::process::exit(70);
                }
                self.subs_dirty = true;
                self.reap_snapshot(false);
                if self.bg_snapshot.is_none()
                    && self.journal.bytes_since_snapshot() > self.config.compact_bytes
                {
                    self.start_snapshot();
                }
            }
            if !self.codex_outbox.is_empty() {
                // Their Offers were appended in this batch; make sure they
                // are durable before Codex sees the mail.
                if !dirty {
                    if let Err(e) = self.journal.sync() {
                        tracing::error!(error = %e, "journal fsync failed; exiting so recovery restores a consistent state");
                        std::process::exit(70);
                    }
                }
                if let Some(app) = &self.codex {
                    for d in self.codex_outbox.drain(..) {
                        app.deliver(d);
                    }
                }
            }
            // Outbox messages journaled (and now durable) go out in order.
            self.fed_pump();
            for (tx, reply) in pending.drain(..) {
                let _ = tx.send(reply);
            }
            self.push_subscriptions();
            if let Some(code) = self.exit_after_batch {
                for s in self.subs.drain(..) {
                    if let Some(r) = s.reply {
                        let _ = r.send(Reply::Ok {
                            value: json!({"ended": "daemon shutting down"}),
                        });
                    }
                }
                let _ = self.exit_tx.send(code);
                return;
            }
        }
    }

    /// Handles one message; true when it appended to the journal.
    fn handle(&mut self, msg: ToActor, pending: &mut Pending) -> bool {
        match msg {
            ToActor::Open {
                conn,
                role,
                confirms,
            } => {
                self.conns.insert(
                    conn,
                    ConnInfo {
                        role,
                        confirms,
                        caller: None,
                        session: None,
                        traced: None,
                    },
                );
                false
            }
            ToActor::Close { conn } => {
                self.conns.remove(&conn);
                // Mail handed to it and never acked goes back where it was.
                self.release_where("connection closed before the ack", |h| h.conn == conn);
                // Its asks become pending (the durable ask stays); its idle
                // waits and subscriptions end.
                let gone: Vec<String> = self
                    .asks
                    .iter()
                    .filter(|(_, w)| w.conn == conn)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in gone {
                    self.asks.remove(&k);
                    self.live.ask_waiters.remove(&k);
                    self.trace_event(
                        json!({"event": "ask_pending", "request_id": k, "cause": "shim_gone"}),
                    );
                }
                self.idle.retain(|_, w| w.conn != conn);
                self.live.idle_waiters = self.idle.keys().cloned().collect();
                self.subs.retain(|s| s.conn != conn);
                self.recount_live();
                self.subs_dirty = true;
                false
            }
            ToActor::ShimHello { conn, caller, pane } => {
                if let (Some(p), Some(seat)) = (pane, &caller.seat) {
                    let key = seat.key();
                    self.live
                        .other_panes
                        .retain(|(q, _)| !(q.id == p.id && q.socket == p.socket));
                    self.live.seat_alive.insert(key.clone(), true);
                    self.live.panes.insert(key.clone(), *p);
                    self.located.insert(key);
                    self.subs_dirty = true;
                }
                let res = identity::resolve(&self.state, &caller, None);
                self.last_shim_seen = Instant::now();
                let mut dirty = false;
                if let Some(id) = res.session_id.as_deref() {
                    let cmds = identity::ensure_agent(&self.state, &caller, id, &res, now_ms());
                    dirty = !cmds.is_empty() && self.commit(&cmds).is_ok();
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.caller = Some(*caller);
                    c.session = res.session_id.clone();
                }
                self.trace_identity(conn, &res, None);
                self.recount_live();
                self.subs_dirty = true;
                dirty
            }
            ToActor::ClientInfo { conn, name, reply } => {
                let mut dirty = false;
                if let Some(c) = self.conns.get_mut(&conn).and_then(|c| c.caller.as_mut()) {
                    c.client_name = Some(name);
                }
                // The client type may only be known now: refresh the row.
                let caller = self.conns.get(&conn).and_then(|c| c.caller.clone());
                if let Some(caller) = caller {
                    let res = identity::resolve_quick(&self.state, &caller, None);
                    if let Some(id) = res.session_id.as_deref() {
                        let cmds = identity::ensure_agent(&self.state, &caller, id, &res, now_ms());
                        dirty = !cmds.is_empty() && self.commit(&cmds).is_ok();
                    }
                }
                pending.push((
                    reply,
                    Reply::Ok {
                        value: json!({"ok": true}),
                    },
                ));
                dirty
            }
            ToActor::Tool {
                conn,
                wire_id,
                name,
                args,
                meta,
                requested_scope,
                birth_time,
                reply,
            } => {
                if let Some(c) = self.conns.get_mut(&conn).and_then(|c| c.caller.as_mut()) {
                    c.birth_time = birth_time;
                }
                self.tool(
                    conn,
                    wire_id,
                    name,
                    args,
                    meta,
                    requested_scope,
                    reply,
                    pending,
                )
            }
            ToActor::Cancel { conn, wire_id } => {
                // A reply already sent for it will not be written: its mail
                // goes back now, ahead of the client's next call.
                self.release_where("the client cancelled the call", |h| {
                    h.conn == conn && h.wire_id == Some(wire_id)
                });
                let key = self
                    .asks
                    .iter()
                    .find(|(_, w)| w.conn == conn && w.wire_id == wire_id)
                    .map(|(k, _)| k.clone());
                if let Some(k) = key {
                    self.finish_ask_unanswered(&k, "cancelled", pending);
                }
                false
            }
            ToActor::Ack {
                conn,
                handover,
                delivered,
            } => self.ack(conn, handover, delivered),
            ToActor::Hook {
                conn,
                call,
                seat,
                scope,
                reply,
            } => {
                let (answer, dirty) = self.hook(conn, *call, seat, scope);
                pending.push((reply, answer));
                dirty
            }
            ToActor::IdleWait { conn, wait, reply } => {
                self.idle_wait(conn, wait, reply, pending);
                false
            }
            ToActor::Ctl {
                conn,
                wire_id,
                ctl,
                requested_scope,
                out,
                reply,
            } => self.ctl(conn, wire_id, ctl, requested_scope, out, reply, pending),
            ToActor::CodexApp(r) => self.codex_report(*r, pending),
            ToActor::Federation(r) => self.fed_report(*r, pending),
            ToActor::Tick => {
                self.tick();
                self.fed_tick(pending);
                self.retry_unjournaled_wakes()
            }
            ToActor::Probe(report) => self.on_probe(*report, pending),
            ToActor::Terminate => {
                if let Err(e) = self.snapshot() {
                    tracing::error!(error = %e, "snapshot before exit failed; the journal still holds everything");
                }
                self.exit_after_batch = Some(0);
                false
            }
        }
    }

    /// Journals `cmds` as one record and applies them. On error nothing
    /// changed.
    fn commit(&mut self, cmds: &[Command]) -> std::io::Result<()> {
        if cmds.is_empty() {
            return Ok(());
        }
        let payload = crate::codec::encode_record(cmds).map_err(std::io::Error::other)?;
        if let Err(e) = self.journal.append(&payload) {
            tracing::error!(error = %e, "journal append failed; request refused, state unchanged");
            return Err(e);
        }
        let mut events = Vec::new();
        for c in cmds {
            state::apply(&mut self.state, c, &mut events);
        }
        self.on_events(&events);
        self.fed_note_drains(cmds);
        let naming_only = cmds.iter().all(|c| matches!(c, Command::Name { .. }));
        if !naming_only
            && events
                .iter()
                .any(|e| matches!(e, Event::AgentChanged { .. }))
        {
            self.locate_new_seats();
            self.name_pass();
        }
        Ok(())
    }

    /// Holds `ids` (already offered in a committed [`Command::Offer`]) for
    /// the client on `conn` until it acks. Returns the hand-over id to put
    /// in the reply, or `None` when the client cannot ack (an older
    /// protocol): then the mail leaves the mailbox now, as before.
    fn hold(
        &mut self,
        conn: u64,
        wire_id: Option<u64>,
        session: &str,
        ids: &[String],
        via: &str,
    ) -> Option<u64> {
        if ids.is_empty() {
            return None;
        }
        if !self.conns.get(&conn).is_some_and(|c| c.confirms) {
            self.drain_now(session, ids, via);
            return None;
        }
        let id = self.next_handover;
        self.next_handover += 1;
        for m in ids {
            self.live.held.insert(m.clone());
        }
        self.handovers.insert(
            id,
            Handover {
                conn,
                wire_id,
                session: session.to_string(),
                ids: ids.to_vec(),
                via: via.to_string(),
                deadline: Instant::now() + Duration::from_millis(self.config.handover_ttl_ms),
            },
        );
        Some(id)
    }

    /// Receipts `ids`: they reached the agent.
    fn drain_now(&mut self, session: &str, ids: &[String], via: &str) -> bool {
        let cmd = Command::Drain {
            session_id: session.to_string(),
            message_ids: ids.to_vec(),
            via: via.to_string(),
            at_ms: now_ms(),
        };
        match self.commit(&[cmd]) {
            Ok(()) => true,
            Err(e) => {
                // Nothing changed: the mail stays queued and is offered
                // again (flagged redelivered).
                tracing::error!(error = %e, session, "could not journal a confirmed hand-over; the mail stays queued");
                false
            }
        }
    }

    /// The client's ack of a hand-over: delivered mail leaves the mailbox
    /// with a receipt; undelivered mail is released. An ack for an unknown
    /// hand-over (released already, or another connection's) changes nothing.
    fn ack(&mut self, conn: u64, handover: u64, delivered: bool) -> bool {
        if self.handovers.get(&handover).is_none_or(|h| h.conn != conn) {
            return false;
        }
        if !delivered {
            self.release_handover(handover, "the client could not deliver it");
            return false;
        }
        let Some(h) = self.handovers.remove(&handover) else {
            return false;
        };
        for m in &h.ids {
            self.live.held.remove(m);
        }
        self.trace_event(json!({"event": "handover_confirmed", "session": h.session, "count": h.ids.len(), "via": h.via}));
        self.drain_now(&h.session, &h.ids, &h.via)
    }

    /// Releases every hand-over `which` selects (see [`Actor::release_handover`]).
    fn release_where(&mut self, why: &str, which: impl Fn(&Handover) -> bool) {
        let ids: Vec<u64> = self
            .handovers
            .iter()
            .filter(|(_, h)| which(h))
            .map(|(k, _)| *k)
            .collect();
        for h in ids {
            self.release_handover(h, why);
        }
    }

    /// Puts a hand-over's mail back: it was never removed from the mailbox,
    /// so it is again at its place, in order, for the next delivery.
    fn release_handover(&mut self, handover: u64, why: &str) {
        if let Some(h) = self.handovers.remove(&handover) {
            for m in &h.ids {
                self.live.held.remove(m);
            }
            tracing::info!(session = %h.session, count = h.ids.len(), via = %h.via, why, "hand-over not confirmed; mail put back");
            self.trace_event(json!({"event": "handover_released", "session": h.session, "count": h.ids.len(), "via": h.via, "why": why}));
            self.subs_dirty = true;
        }
    }

    /// The first `limit` messages of `session`'s queue that no other
    /// hand-over holds, and how many such messages there are in all. Costs
    /// O(limit + held), not O(queue).
    fn deliverable(&self, session: &str, limit: usize) -> (Vec<String>, usize) {
        let Some(q) = self.state.mailboxes.get(session) else {
            return (Vec::new(), 0);
        };
        let held: usize = self
            .handovers
            .values()
            .filter(|h| h.session == session)
            .map(|h| h.ids.len())
            .sum();
        let prefix = q
            .iter()
            .filter(|id| !self.live.held.contains(*id))
            .take(limit)
            .cloned()
            .collect();
        (prefix, q.len().saturating_sub(held))
    }

    /// Asks the probe worker for a pane refresh when an agent with a tmux
    /// server is seen for the first time, so a new agent is named after its
    /// tmux session soon after its first request, and its pane leaves the
    /// cockpit's "no agent" list.
    fn locate_new_seats(&mut self) {
        let mut new = false;
        for a in self.state.agents.values().filter(|a| a.ended_ms.is_none()) {
            let (Some(seat), Some(_)) = (&a.seat, &a.tmux_socket) else {
                continue;
            };
            let key = seat.key();
            if !self.live.panes.contains_key(&key) && self.located.insert(key) {
                new = true;
            }
        }
        if new {
            self.request_probe(true);
        }
    }

    /// Runs the naming pass ([`identity::name_agents`]) and journals what it
    /// decided (a record of its own, synced with the batch).
    fn name_pass(&mut self) {
        let live = &self.live;
        let holds = |a: &state::Agent| tools::holds_name(a, live);
        let cmds = identity::name_agents(
            &self.state,
            &identity::NamingFacts {
                panes: &live.panes,
                holds: &holds,
            },
        );
        if !cmds.is_empty() {
            let _ = self.commit(&cmds);
        }
    }

    fn on_events(&mut self, events: &[Event]) {
        if !events.is_empty() {
            self.subs_dirty = true;
        }
        for e in events {
            if let Event::Enqueued { to, .. } = e {
                if self.codex_threads.contains_key(to) {
                    self.steer_candidates.insert(to.clone());
                }
            }
        }
    }

    /// Mail for a Codex that is mid-turn goes into that turn with
    /// `turn/steer`, wake or no wake, as Claude Code's PreToolUse hook
    /// hands mail over mid-turn (issue 15): it is delivery, not a wake, so
    /// no gate applies. An idle Codex is left to the wake engine.
    fn steer_mid_turn(&mut self) {
        if self.steer_candidates.is_empty() {
            return;
        }
        let cfg = self.config.wake.clone();
        for target in std::mem::take(&mut self.steer_candidates) {
            let Some((home, view)) = self.app_view(&target, &cfg) else {
                continue;
            };
            let in_flight = self.codex_inflight.values().any(|(t, _)| *t == target);
            if view.active && !in_flight {
                let status = self.app_wake(&target, &home, &view);
                self.trace_event(
                    json!({"event": "codex_mid_turn_delivery", "target": target, "status": status}),
                );
            }
        }
        self.last_route = None;
        self.last_note = None;
    }

    fn ctx_parts(&self) -> (u64, Option<String>) {
        (now_ms(), self.home.clone())
    }

    #[allow(clippy::too_many_arguments)]
    fn tool(
        &mut self,
        conn: u64,
        wire_id: u64,
        name: String,
        args: Value,
        meta: Option<Value>,
        requested_scope: Option<Scope>,
        reply: oneshot::Sender<Reply>,
        pending: &mut Pending,
    ) -> bool {
        // Borrow the caller out of its connection for this call (no clone on
        // the hot path); it goes back before anything else can look.
        let Some(mut caller) = self.conns.get_mut(&conn).and_then(|c| c.caller.take()) else {
            pending.push((
                reply,
                Reply::error(error_code::NOT_A_SHIM, "tool calls need a shim hello first"),
            ));
            return false;
        };
        caller.requested_scope = requested_scope;
        let (now, home) = self.ctx_parts();
        let mut new_id = |prefix: &str| format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
        let mut ctx = Ctx {
            now_ms: now,
            config: &self.config,
            live: &self.live,
            home: home.as_deref(),
            new_id: &mut new_id,
        };
        let out = tools::call(&self.state, &caller, &name, &args, meta.as_ref(), &mut ctx);
        self.last_shim_seen = Instant::now();
        let dirty = !out.commands.is_empty();
        let committed = self.commit(&out.commands);
        let res = identity::resolve_quick(&self.state, &caller, meta.as_ref());
        if let Some(c) = self.conns.get_mut(&conn) {
            c.caller = Some(caller);
        }
        if let Err(e) = committed {
            pending.push((
                reply,
                Reply::Ok {
                    value: tools::not_durable(&name, &e.to_string()),
                },
            ));
            return false;
        }
        // Which session this shim speaks for now (liveness), and a trace
        // event when its identity resolution changed.
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.session != res.session_id {
                c.session = res.session_id.clone();
                self.recount_live();
            }
        }
        self.trace_identity(conn, &res, meta.as_ref());
        self.finish_outcome(out, Some((conn, wire_id)), &name, reply, pending);
        dirty
    }

    /// Carries out the effects of a committed outcome: hand-off to a blocked
    /// asker, wakes, the ask wait, and the reply.
    fn finish_outcome(
        &mut self,
        mut out: Outcome,
        origin: Option<(u64, u64)>,
        tool: &str,
        reply: oneshot::Sender<Reply>,
        pending: &mut Pending,
    ) {
        if let Some(h) = out.handoff.take() {
            if let Some(w) = self.asks.remove(&h.request_id) {
                self.live.ask_waiters.remove(&h.request_id);
                // The Offer is applied already, so an earlier offer shows
                // as a count above one.
                let msg = self
                    .state
                    .messages
                    .get(&h.message_id)
                    .map(|m| tools::ask_reply_json(&self.state, m, m.offers > 1));
                let to = self
                    .state
                    .messages
                    .get(&h.message_id)
                    .map(|m| m.to.clone())
                    .unwrap_or_default();
                let mut v = w.base;
                if !w.deferred.is_empty() {
                    // Answered within the grace: nobody was woken.
                    v["wake_status"] = json!(WakeStatus::SkippedBusy);
                }
                if let Some(hid) = self.hold(
                    w.conn,
                    Some(w.wire_id),
                    &to,
                    std::slice::from_ref(&h.message_id),
                    "ask_peer",
                ) {
                    v["handover"] = json!(hid);
                }
                // CONTRACT §11: only a correlated reply ends the wait.
                v["reply"] = msg.unwrap_or(Value::Null);
                v["correlation"] = json!("correlated");
                v["timed_out"] = json!(false);
                v["elapsed_ms"] = json!(w.started.elapsed().as_millis() as u64);
                self.trace_event(json!({"event": "ask_answered", "request_id": h.request_id, "elapsed_ms": v["elapsed_ms"]}));
                pending.push((w.reply, Reply::Ok { value: v }));
            }
        }
        if let (Some(o), Some((conn, wire_id))) = (out.offer.take(), origin) {
            if let Some(hid) = self.hold(conn, Some(wire_id), &o.session_id, &o.message_ids, &o.via)
            {
                out.set("handover", json!(hid));
            }
        }
        // An ask that waits holds its wakes for the grace (CONTRACT §11).
        let deferred = if tool == "ask_peer"
            && out.wait.is_some()
            && origin.is_some()
            && matches!(out.reply, Reply::Ok { .. })
        {
            std::mem::take(&mut out.wakes)
        } else {
            Vec::new()
        };
        if let Some(reason) = deferred.first().and_then(|i| i.reason) {
            out.set("wake_reason", json!(reason));
        }
        if let Some(first) = self.run_wakes(std::mem::take(&mut out.wakes), pending) {
            set_wake_fields(&mut |k, v| out.set(k, v), first);
        }
        self.steer_mid_turn();
        match (out.wait.take(), origin, out.reply) {
            (Some(w), Some((conn, wire_id)), Reply::Ok { value }) => {
                self.live.ask_waiters.insert(w.request_id.clone());
                self.trace_event(json!({"event": "ask_waiting", "request_id": w.request_id, "timeout_ms": w.timeout_ms, "tool": tool}));
                self.asks.insert(
                    w.request_id,
                    AskWaiter {
                        conn,
                        wire_id,
                        reply,
                        base: value,
                        deadline: Instant::now() + Duration::from_millis(w.timeout_ms),
                        started: Instant::now(),
                        deferred,
                        wake_at: Instant::now()
                            + Duration::from_millis(self.config.ask_wake_grace_ms),
                    },
                );
                self.subs_dirty = true;
            }
            (_, _, r) => self.fed_park_or_reply(&out.commands, reply, r, pending),
        }
    }

    /// Runs every intent through [`Actor::wake`]; what the first reports
    /// (a tool result carries one wake's fields).
    fn run_wakes(&mut self, intents: Vec<WakeIntent>, pending: &mut Pending) -> Option<WakeFields> {
        let mut first = None;
        for intent in intents {
            let (status, reason) = self.wake(&intent, pending);
            let note = self.last_note.take();
            first.get_or_insert((status, reason, intent.suppressed, self.last_route, note));
        }
        first
    }

    /// Runs one wake intent through the funnel and carries it out. Returns
    /// (`wake_status`, `wake_reason`).
    fn wake(
        &mut self,
        intent: &WakeIntent,
        pending: &mut Pending,
    ) -> (WakeStatus, Option<&'static str>) {
        let now = now_ms();
        let already = intent.dedupe_key.as_ref().is_some_and(|k| {
            self.state.wakes_fired.contains_key(k) || self.unjournaled_wakes.contains_key(k)
        });
        let cfg = self.config.wake.for_intent(intent);
        let app = self.app_view(&intent.target, &cfg);
        let facts = WakeFacts {
            activity: self.live.activity.get(&intent.target),
            already_fired: already,
            rewake_armed: self.idle.contains_key(&intent.target),
            app_server: app.is_some(),
        };
        self.last_route = None;
        self.last_note = None;
        let status = match self.book.decide(intent, &facts, &cfg, now) {
            Decision::Skip(s) => s,
            Decision::Go(route) => {
                // Carrying it out is the only I/O of a wake.
                let status = match (route, app) {
                    (Route::AppServer, Some((home, view))) => {
                        self.app_wake(&intent.target, &home, &view)
                    }
                    (Route::Rewake, _) => {
                        self.last_route = Some("rewake");
                        self.rewake(&intent.target, pending)
                    }
                    _ if cfg.strategy == crate::wake::Strategy::Auto
                        && self.codex_unreachable(&intent.target).is_some() =>
                    {
                        let why = self.codex_unreachable(&intent.target).unwrap_or_default();
                        let status = self.keys(&intent.target);
                        self.last_note = Some(format!(
                            "the Codex app-server is unreachable ({why}); fell back to keys: {}",
                            oxtail_proto::status::wake_status_text(status.as_str())
                        ));
                        status
                    }
                    _ => self.keys(&intent.target),
                };
                self.book.fired(&intent.target, status, now);
                if status.fired() {
                    if let Some(k) = &intent.dedupe_key {
                        self.record_wake(k, now);
                    }
                }
                status
            }
        };
        self.trace_event(json!({
            "event": "wake",
            "target": intent.target,
            "mode": intent.mode,
            "tool": intent.tool,
            "wake_status": status,
            "wake_reason": intent.reason,
            "wake_route": self.last_route,
        }));
        (status, intent.reason)
    }

    /// Journals that the reply wake `key` fired, so it never fires again,
    /// after a restart too. When the journal refuses, the key is kept in
    /// memory (this daemon will not repeat the wake) and journaling is
    /// retried at every tick until it succeeds.
    fn record_wake(&mut self, key: &str, at_ms: u64) {
        let cmd = Command::RecordWake {
            key: key.to_string(),
            at_ms,
        };
        if let Err(e) = self.commit(&[cmd]) {
            tracing::error!(error = %e, key, "could not journal a fired wake's dedupe; kept in memory, retried each tick");
            self.unjournaled_wakes.insert(key.to_string(), at_ms);
        }
    }

    /// Retries journaling the dedupe of wakes that fired while the journal
    /// refused ([`Actor::record_wake`]). True when it journaled any.
    fn retry_unjournaled_wakes(&mut self) -> bool {
        let mut dirty = false;
        for (key, at_ms) in std::mem::take(&mut self.unjournaled_wakes) {
            if self.state.wakes_fired.contains_key(&key) {
                continue;
            }
            let cmd = Command::RecordWake {
                key: key.clone(),
                at_ms,
            };
            if self.commit(&[cmd]).is_ok() {
                dirty = true;
            } else {
                self.unjournaled_wakes.insert(key, at_ms);
            }
        }
        dirty
    }

    /// Why the app-server route cannot reach Codex agent `target` although
    /// its thread was seen there: the app-server is unreachable now.
    fn codex_unreachable(&self, target: &str) -> Option<String> {
        let (home, _) = self.codex_threads.get(target)?;
        self.codex_down.get(home).cloned()
    }

    /// The app-server view of `target` when the Codex route may carry a
    /// wake for it: strategy `auto`, a Codex agent, its thread loaded in a
    /// reachable app-server and taking direct input.
    fn app_view(
        &self,
        target: &str,
        cfg: &crate::wake::WakeConfig,
    ) -> Option<(String, crate::codex_app::ThreadView)> {
        if cfg.strategy != crate::wake::Strategy::Auto || self.codex.is_none() {
            return None;
        }
        let agent = self.state.agents.get(target)?;
        if agent.client_type != "codex" || agent.ended_ms.is_some() {
            return None;
        }
        let (home, view) = self.codex_threads.get(target)?;
        if view.direct_input == Some(false) || self.codex_down.contains_key(home) {
            return None;
        }
        // Only a thread whose TUI is running: a loaded thread outlives its
        // TUI, and a turn started there would run for nobody.
        if !view.tui.as_ref().is_some_and(|t| t.alive) {
            return None;
        }
        Some((home.clone(), view.clone()))
    }

    /// The Codex app-server route: render `target`'s mail (framed as peer
    /// context, operator messages as the user's words), hold it as a
    /// hand-over, and ask the app-server to start a turn with it (idle) or
    /// steer it into the running turn. The mail leaves the mailbox when the
    /// app-server accepts ([`Actor::codex_report`]).
    fn app_wake(
        &mut self,
        target: &str,
        home: &str,
        view: &crate::codex_app::ThreadView,
    ) -> WakeStatus {
        use crate::codex_app::{AppRoute, Delivery};
        const BUDGET: usize = 9_000;
        if self.codex.is_none() {
            return WakeStatus::SkippedNoTarget;
        }
        self.last_route = Some("app_server");
        let (queue, total) = self.deliverable(target, render::max_fitting(BUDGET));
        let f = render::fit_prefix(&self.state, &queue, total, BUDGET);
        let (route, steer_turn) = match (&view.turn_id, view.active) {
            (Some(t), true) => (AppRoute::TurnSteer, Some(t.clone())),
            (None, true) => (AppRoute::TurnSteer, None),
            _ => (AppRoute::TurnStart, None),
        };
        let id = self.next_handover;
        self.next_handover += 1;
        let text = if f.ids.is_empty() {
            match self.check_in {
                Some(t) if total == 0 => t.to_string(),
                // Everything queued is in a hand-over on its way already.
                _ if total > 0 => return WakeStatus::SkippedDebounced,
                _ => return WakeStatus::NothingToDeliver,
            }
        } else {
            let cmd = Command::Offer {
                session_id: target.to_string(),
                message_ids: f.ids.clone(),
            };
            if self.commit(&[cmd]).is_err() {
                return WakeStatus::SkippedStoreError;
            }
            for m in &f.ids {
                self.live.held.insert(m.clone());
            }
            self.handovers.insert(
                id,
                Handover {
                    conn: 0,
                    wire_id: None,
                    session: target.to_string(),
                    ids: f.ids.clone(),
                    via: route.as_str().to_string(),
                    deadline: Instant::now() + Duration::from_millis(self.config.handover_ttl_ms),
                },
            );
            f.text
        };
        self.codex_inflight.insert(id, (target.to_string(), route));
        self.trace_event(json!({"event": "codex_app_deliver", "target": target, "route": route.as_str(), "handover": id, "count": f.ids.len()}));
        // Sent after this batch's fsync (`Actor::run`): the Offer must be
        // durable before Codex can see the mail, so a crash in between
        // flags the repeat `redelivered`.
        self.codex_outbox.push(Delivery {
            handover: id,
            home: home.to_string(),
            thread: target.to_string(),
            text,
            steer_turn,
            active: view.active,
        });
        self.last_route = Some(route.as_str());
        WakeStatus::Fired
    }

    /// Agents from the app-server's view of `home`: a thread bound to a
    /// running TUI is an agent seated in that TUI (listed, and a valid
    /// target, before its first prompt); a thread whose TUI is gone has
    /// ended, although the app-server keeps it loaded.
    fn bind_codex_tuis(&mut self, home: &str, now: u64) -> bool {
        let mut cmds = Vec::new();
        for (id, (h, v)) in &self.codex_threads {
            if h != home {
                continue;
            }
            let Some(tui) = &v.tui else { continue };
            let tmux_socket = tui
                .tmux
                .as_deref()
                .and_then(crate::tmux::socket_from_env)
                .map(|p| p.display().to_string());
            match self.state.agents.get(id) {
                // Seat it in its TUI (hooks and shims run inside the
                // app-server and bring no seat).
                Some(a)
                    if tui.alive && a.ended_ms.is_none() && a.seat.as_ref() != Some(&tui.seat) =>
                {
                    let mut agent = a.clone();
                    agent.seat = Some(tui.seat.clone());
                    if tmux_socket.is_some() {
                        agent.tmux_socket = tmux_socket;
                    }
                    cmds.push(Command::UpsertAgent { agent });
                }
                // Its TUI is gone: the agent ended (the thread stays loaded).
                Some(a)
                    if !tui.alive && a.ended_ms.is_none() && a.seat.as_ref() == Some(&tui.seat) =>
                {
                    cmds.push(Command::EndSession {
                        session_id: id.clone(),
                        at_ms: now,
                    });
                }
                Some(_) => {}
                None if tui.alive => {
                    let Some(scope) = v.scope.clone() else {
                        continue;
                    };
                    cmds.push(Command::UpsertAgent {
                        agent: state::Agent {
                            session_id: id.clone(),
                            client_type: "codex".into(),
                            name: None,
                            name_source: None,
                            launch_name: None,
                            tmux_session: None,
                            purpose: None,
                            purpose_at_ms: None,
                            scope,
                            cwd: v.cwd.clone().unwrap_or_default(),
                            seat: Some(tui.seat.clone()),
                            resolved_by: "codex_app_server".into(),
                            first_seen_ms: now,
                            previous_ids: Vec::new(),
                            ended_ms: None,
                            tmux_socket,
                        },
                    });
                }
                None => {}
            }
        }
        if cmds.is_empty() {
            return false;
        }
        match self.commit(&cmds) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not record Codex agents from the app-server");
                false
            }
        }
    }

    /// A report from the Codex app-server tasks: a new view of one
    /// `CODEX_HOME` (threads, activity), or the app-server's word on a
    /// delivery (the hand-over's confirmation; a refusal puts the mail back
    /// and falls back to keys).
    fn codex_report(&mut self, r: crate::codex_app::Report, _pending: &mut Pending) -> bool {
        use crate::codex_app::Report;
        match r {
            Report::Snapshot {
                home,
                reachable,
                threads,
            } => {
                if let Err(e) = reachable {
                    // Keep the last views (stale, never routed to while
                    // down): they say which agents lost the route, and why.
                    self.codex_down.insert(home.clone(), e);
                    self.live
                        .codex_app
                        .retain(|id| self.codex_threads.get(id).is_none_or(|(h, _)| *h != home));
                    self.subs_dirty = true;
                    return false;
                }
                self.codex_down.remove(&home);
                let mut old: HashMap<String, crate::codex_app::ThreadView> = HashMap::new();
                self.codex_threads.retain(|k, (h, v)| {
                    if *h == home {
                        old.insert(k.clone(), v.clone());
                        false
                    } else {
                        true
                    }
                });
                let now = now_ms();
                let ids: Vec<String> = threads.iter().map(|t| t.id.clone()).collect();
                for t in threads {
                    self.codex_threads.insert(t.id.clone(), (home.clone(), t));
                }
                let wrote = self.bind_codex_tuis(&home, now);
                self.live.codex_app = self
                    .codex_threads
                    .iter()
                    .filter(|(_, (h, v))| {
                        !self.codex_down.contains_key(h)
                            && v.direct_input != Some(false)
                            && v.tui.as_ref().is_some_and(|t| t.alive)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for id in ids {
                    let Some((_, t)) = self.codex_threads.get(&id).cloned() else {
                        continue;
                    };
                    if let Some(tui) = &t.tui {
                        // A fresh fact about the seat: no need to wait for
                        // the next seat check.
                        self.live.seat_alive.insert(tui.seat.key(), tui.alive);
                    }
                    // Activity from the app-server, on change only (hooks
                    // keep the tool detail).
                    if (old.get(&t.id).map(|o| o.active) != Some(t.active)
                        || !self.live.activity.contains_key(&t.id))
                        && self.state.agents.contains_key(&t.id)
                    {
                        let prev = self.live.activity.get(&t.id).cloned();
                        self.live.activity.insert(
                            t.id.clone(),
                            Activity {
                                state: if t.active {
                                    ActivityState::Busy
                                } else {
                                    ActivityState::Idle
                                },
                                at_ms: now,
                                tool: prev
                                    .as_ref()
                                    .and_then(|p| p.tool.clone())
                                    .filter(|_| t.active),
                                tool_path: prev.and_then(|p| p.tool_path).filter(|_| t.active),
                            },
                        );
                    }
                }
                self.subs_dirty = true;
                wrote
            }
            Report::Delivered {
                handover,
                thread,
                result,
            } => {
                let Some((target, tried)) = self.codex_inflight.remove(&handover) else {
                    return false;
                };
                match result {
                    Ok(route) => {
                        self.trace_event(json!({"event": "codex_app_accepted", "target": target, "thread": thread, "route": route.as_str(), "handover": handover}));
                        let Some(h) = self.handovers.remove(&handover) else {
                            // Expired already: the mail was put back and goes
                            // out again, flagged redelivered.
                            return false;
                        };
                        for m in &h.ids {
                            self.live.held.remove(m);
                        }
                        self.trace_event(json!({"event": "handover_confirmed", "session": h.session, "count": h.ids.len(), "via": route.as_str()}));
                        self.drain_now(&h.session, &h.ids, route.as_str())
                    }
                    Err(e) => {
                        self.release_handover(handover, &e);
                        let fallback = self.keys(&target);
                        tracing::info!(target = %target, route = tried.as_str(), error = %e, fallback = fallback.as_str(), "Codex app-server refused the turn input; falling back to keys");
                        self.trace_event(json!({"event": "codex_app_refused", "target": target, "route": tried.as_str(), "error": e, "fallback": fallback}));
                        false
                    }
                }
            }
        }
    }

    /// ` (from api, web)`: the names of who wrote `target`'s queued mail, in
    /// queue order, for the text typed into its pane (empty when none).
    fn senders_of(&self, target: &str) -> String {
        let mut names: Vec<String> = Vec::new();
        for id in self.state.mailboxes.get(target).into_iter().flatten() {
            if let Some(n) = self
                .state
                .messages
                .get(id)
                .and_then(|m| render::sender_name(&self.state, m))
            {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        if names.is_empty() {
            String::new()
        } else {
            format!(" (from {})", names.join(", "))
        }
    }

    /// The rewake route: hand the target's mail to its armed idle-wait hook.
    fn rewake(&mut self, target: &str, pending: &mut Pending) -> WakeStatus {
        let Some(w) = self.idle.remove(target) else {
            return WakeStatus::SkippedNoTarget;
        };
        self.live.idle_waiters.remove(target);
        let (queue, total) = self.deliverable(target, render::max_fitting(w.budget));
        let f = render::fit_prefix(&self.state, &queue, total, w.budget);
        if f.ids.is_empty() && total == 0 {
            if let Some(text) = self.check_in {
                // A check-in the person asked for: no mail to hand over.
                let answer = IdleWaitAnswer::Mail {
                    deliver: text.to_string(),
                    delivered: 0,
                    remaining: 0,
                    handover: None,
                };
                pending.push((
                    w.reply,
                    Reply::Ok {
                        value: serde_json::to_value(answer).unwrap_or_default(),
                    },
                ));
                return WakeStatus::Fired;
            }
        }
        if f.ids.is_empty() {
            // Nothing renderable: give the waiter back.
            self.live.idle_waiters.insert(target.to_string());
            self.idle.insert(target.to_string(), w);
            return WakeStatus::SkippedNoTarget;
        }
        let cmd = Command::Offer {
            session_id: target.to_string(),
            message_ids: f.ids.clone(),
        };
        if self.commit(&[cmd]).is_err() {
            self.live.idle_waiters.insert(target.to_string());
            self.idle.insert(target.to_string(), w);
            return WakeStatus::SkippedNoTarget;
        }
        let handover = self.hold(w.conn, None, target, &f.ids, "idle_wait");
        let answer = IdleWaitAnswer::Mail {
            deliver: f.text,
            delivered: f.ids.len(),
            remaining: f.remaining,
            handover,
        };
        pending.push((
            w.reply,
            Reply::Ok {
                value: serde_json::to_value(answer).unwrap_or_default(),
            },
        ));
        WakeStatus::Fired
    }

    /// The keys route: type into the pane the process tree says hosts the
    /// target's seat. Only the pane lookup happens here (a few ms); typing,
    /// with Codex's 500 ms pause before Enter, runs on its own thread.
    fn keys(&mut self, target: &str) -> WakeStatus {
        let Some(agent) = self.state.agents.get(target) else {
            return WakeStatus::SkippedNoTarget;
        };
        let Some(seat) = agent.seat.clone() else {
            return WakeStatus::SkippedNoTarget;
        };
        // The pane cache, as the probe worker last saw it (every 5 s, and
        // at once when an agent with a tmux server in its environment
        // appears): no tmux or process lookup here. An agent whose pane the
        // cache does not hold yet is not a keys target until the next
        // refresh.
        let key = seat.key();
        if self.live.seat_alive.get(&key) == Some(&false) {
            return WakeStatus::SkippedNoTarget;
        }
        let Some(pane) = self.live.panes.get(&key).cloned() else {
            return WakeStatus::SkippedNoTarget;
        };
        let codex = agent.client_type == "codex";
        let queue: Vec<String> = self
            .state
            .mailboxes
            .get(target)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        let text = match (queue.len(), self.check_in) {
            (0, Some(t)) => t.to_string(),
            (n, _) => render::wake_keys_text(
                n,
                render::operator_count(&self.state, &queue),
                &self.senders_of(target),
            ),
        };
        // Codex 0.169 turns an Enter within ~120 ms of typed text into a
        // newline; Claude Code 2.1.329 can take text+Enter as one paste.
        let delay = if codex {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(300)
        };
        self.trace_event(
            json!({"event": "keys", "target": target, "pane": pane.id, "session": pane.session}),
        );
        let limit = self.config.tmux_timeout;
        self.last_route = Some("keys");
        std::thread::spawn(move || {
            // The cache may be up to 5 s old: type only if the seat is still
            // the same process and the pane still hosts it.
            let chain = oxtail_proto::process::ancestry(seat.pid);
            if !crate::procinfo::seat_alive(&seat) || !chain.contains(&pane.pid) {
                tracing::info!(pane = %pane.id, "seat gone or moved since the pane cache; no keys typed");
                return;
            }
            if let Err(e) =
                crate::tmux::send_wake(&pane, &text, delay, Duration::from_millis(1200), 2, limit)
            {
                tracing::warn!(error = %e, pane = %pane.id, "send-keys failed");
            }
        });
        WakeStatus::FiredUnconfirmed
    }

    fn finish_ask_unanswered(&mut self, request_id: &str, cause: &str, pending: &mut Pending) {
        let Some(w) = self.asks.remove(request_id) else {
            return;
        };
        self.live.ask_waiters.remove(request_id);
        let mut v = w.base;
        // CONTRACT §11: a timeout is `reply: null`, `correlation: "none"`,
        // `timed_out: true`; the ask stays pending for a late reply.
        v["reply"] = Value::Null;
        v["correlation"] = json!("none");
        v["timed_out"] = json!(cause != "cancelled");
        if cause == "cancelled" {
            v["cancelled"] = json!(true);
        }
        v["elapsed_ms"] = json!(w.started.elapsed().as_millis() as u64);
        v["hint"] = json!(format!(
            "No reply yet. The ask stays pending for {} s: when the peer replies, you will be woken (wake_reason: late_reply_to_pending). You can end your turn.",
            self.config.pending_ask_ttl_ms / 1000
        ));
        self.trace_event(json!({"event": "ask_pending", "request_id": request_id, "cause": cause}));
        pending.push((w.reply, Reply::Ok { value: v }));
        self.subs_dirty = true;
    }

    /// Expires ask and idle waiters whose deadline passed.
    fn expire(&mut self, pending: &mut Pending) -> bool {
        let now = Instant::now();
        self.release_where("no ack within OXTAIL_HANDOVER_TTL_MS", |h| {
            h.deadline <= now
        });
        // Asks still unanswered after the grace (or at their timeout, so a
        // peer still learns of an ask that outlives its wait) wake the peer.
        let wake_due: Vec<String> = self
            .asks
            .iter()
            .filter(|(_, w)| !w.deferred.is_empty() && (w.wake_at <= now || w.deadline <= now))
            .map(|(k, _)| k.clone())
            .collect();
        let mut dirty = false;
        for k in wake_due {
            let intents = self
                .asks
                .get_mut(&k)
                .map(|w| std::mem::take(&mut w.deferred))
                .unwrap_or_default();
            dirty |= !intents.is_empty();
            let first = self.run_wakes(intents, pending);
            if let (Some(f), Some(w)) = (first, self.asks.get_mut(&k)) {
                set_wake_fields(&mut |key, v| w.base[key] = v, f);
            }
        }
        let due: Vec<String> = self
            .asks
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.finish_ask_unanswered(&k, "timeout", pending);
        }
        let due: Vec<String> = self
            .idle
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some(w) = self.idle.remove(&k) {
                pending.push((
                    w.reply,
                    Reply::Ok {
                        value: serde_json::to_value(IdleWaitAnswer::Timeout).unwrap_or_default(),
                    },
                ));
            }
        }
        self.live.idle_waiters = self.idle.keys().cloned().collect();
        dirty
    }

    fn idle_wait(
        &mut self,
        conn: u64,
        wait: IdleWait,
        reply: oneshot::Sender<Reply>,
        pending: &mut Pending,
    ) {
        let id = self
            .state
            .canonical_id(&wait.session_id)
            .unwrap_or(&wait.session_id)
            .to_string();
        if self
            .state
            .agents
            .get(&id)
            .is_some_and(|a| a.ended_ms.is_some())
        {
            pending.push((
                reply,
                Reply::Ok {
                    value: serde_json::to_value(IdleWaitAnswer::Ended).unwrap_or_default(),
                },
            ));
            return;
        }
        // One armed waiter per session: a newer one retires the older.
        if let Some(old) = self.idle.remove(&id) {
            pending.push((
                old.reply,
                Reply::Ok {
                    value: serde_json::to_value(IdleWaitAnswer::Retired).unwrap_or_default(),
                },
            ));
        }
        self.idle.insert(
            id.clone(),
            IdleWaiter {
                conn,
                reply,
                deadline: Instant::now() + Duration::from_millis(wait.timeout_ms.max(1)),
                client_pid: wait.client_pid,
                budget: wait.budget_chars,
            },
        );
        self.live.idle_waiters.insert(id.clone());
        self.trace_event(json!({"event": "idle_wait_armed", "session": id}));
    }

    fn end_idle_waiter(&mut self, session: &str, pending: &mut Pending) {
        if let Some(w) = self.idle.remove(session) {
            self.live.idle_waiters.remove(session);
            pending.push((
                w.reply,
                Reply::Ok {
                    value: serde_json::to_value(IdleWaitAnswer::Ended).unwrap_or_default(),
                },
            ));
        }
    }

    /// A hook event: planned purely ([`crate::hookplan::plan`]: seat
    /// binding, activity, file touches, the mail offer); here only its
    /// ephemeral effects are applied, its commands journaled, and the
    /// offered mail held for the hook's connection.
    fn hook(
        &mut self,
        conn: u64,
        call: HookCall,
        seat: Option<Seat>,
        scope: Option<Scope>,
    ) -> (Reply, bool) {
        let mut held_by_session: HashMap<String, usize> = HashMap::new();
        for h in self.handovers.values() {
            *held_by_session.entry(h.session.clone()).or_default() += h.ids.len();
        }
        let ctx = crate::hookplan::HookCtx {
            now_ms: now_ms(),
            config: &self.config,
            live: &self.live,
            held_by_session: &held_by_session,
        };
        let out = match crate::hookplan::plan(&self.state, &ctx, &call, seat, scope) {
            Ok(o) => o,
            Err(reply) => return (reply, false),
        };
        let crate::hookplan::HookOutcome {
            session: id,
            commands: cmds,
            mut answer,
            offer,
            effects: fx,
        } = out;
        self.hook_effects(&id, fx);
        let dirty = !cmds.is_empty();
        if let Err(e) = self.commit(&cmds) {
            return (
                Reply::error(
                    error_code::STORAGE,
                    format!("could not journal the hook event: {e}"),
                ),
                false,
            );
        }
        if let Some(o) = offer {
            answer.handover = self.hold(conn, None, &id, &o.message_ids, &o.via);
        }
        (
            Reply::Ok {
                value: serde_json::to_value(answer).unwrap_or_default(),
            },
            dirty,
        )
    }

    /// Applies a hook's ephemeral effects ([`crate::hookplan::HookEffects`])
    /// for session `id`, in the planner's order.
    fn hook_effects(&mut self, id: &str, fx: crate::hookplan::HookEffects) {
        let crate::hookplan::HookEffects {
            traces,
            watch_codex,
            activity,
            take_notices,
            notices,
            conflicts,
            project,
            conflict_mode,
            touches,
            end,
            late,
        } = fx;
        let now = now_ms();
        for t in traces {
            self.trace_event(t);
        }
        if let Some(h) = watch_codex {
            self.watch_codex(&h);
        }
        match activity {
            Some(a) => {
                self.live.activity.insert(id.to_string(), a);
            }
            None => {
                self.live.activity.remove(id);
            }
        }
        self.subs_dirty = true;
        if take_notices {
            self.live.notices.remove(id);
        }
        for (peer, q) in notices {
            self.live.notices.insert(peer, q);
        }
        for c in &conflicts {
            self.live
                .conflict_log
                .push(&project, id, c, &conflict_mode, now);
        }
        for (rel, rec) in touches {
            self.live.touches.record(&project, &rel, rec);
        }
        if end {
            self.live.touches.end(id);
            self.live.notices.remove(id);
        }
        if late {
            tracing::warn!(session = %id, "hook arrived after its deadline; leaving its mail queued");
        }
    }

    fn recount_live(&mut self) {
        let mut shims: HashMap<String, usize> = HashMap::new();
        let mut pids: HashMap<String, u32> = HashMap::new();
        for c in self.conns.values() {
            if let Some(s) = &c.session {
                *shims.entry(s.clone()).or_default() += 1;
                if let Some(pid) = c.caller.as_ref().map(|c| c.shim_pid).filter(|p| *p > 0) {
                    pids.entry(s.clone()).or_insert(pid);
                }
            }
        }
        self.live.shims = shims;
        self.live.shim_pids = pids;
    }

    fn shim_count(&self) -> usize {
        self.conns.values().filter(|c| c.role == Role::Shim).count()
    }

    fn tick(&mut self) {
        self.reap_snapshot(false);
        let now = Instant::now();
        if self.shim_count() > 0 || !self.idle.is_empty() || !self.subs.is_empty() {
            self.last_shim_seen = now;
        }
        if let Some(idle) = self.config.idle_exit {
            if now.duration_since(self.last_shim_seen) >= idle {
                tracing::info!(idle_s = idle.as_secs(), "no shim connected; idle exit");
                if let Err(e) = self.snapshot() {
                    tracing::error!(error = %e, "snapshot before idle exit failed");
                }
                self.exit_after_batch = Some(0);
                return;
            }
        }
        // Idle waiters whose client died end, and every 5 s the seats'
        // liveness (the client's own process decides, not a lingering MCP
        // connection) and the pane cache are refreshed: all looked up by the
        // probe worker, whose report comes back as `ToActor::Probe`.
        let panes = now.duration_since(self.last_seat_check) >= Duration::from_secs(5);
        if panes {
            self.last_seat_check = now;
        }
        self.request_probe(panes);
        if now.duration_since(self.last_retention)
            >= Duration::from_millis(self.config.retention_interval_ms)
        {
            self.last_retention = now;
            self.live
                .touches
                .expire(now_ms(), self.config.touch_window_ms);
            self.retention();
        }
    }

    fn retention(&mut self) {
        let now = now_ms();
        let cutoff = now.saturating_sub(self.config.retention_ms);
        let open: std::collections::HashSet<&String> = self
            .state
            .obligations
            .values()
            .filter(|o| o.state == state::ObligationState::Open)
            .map(|o| &o.message_id)
            .collect();
        // Delivered messages no open obligation needs: pruned past the
        // retention age, and beyond `retained_max` the oldest first, so the
        // state stays bounded whatever the traffic (issue 12).
        let mut prunable: Vec<(u64, &String)> = self
            .state
            .messages
            .values()
            .filter(|m| !open.contains(&m.message_id))
            .filter(|m| !self.state.is_queued(&m.message_id))
            .map(|m| (m.enqueued_ms, &m.message_id))
            .collect();
        let mut cut = prunable.iter().filter(|(at, _)| *at < cutoff).count();
        let excess = prunable.len().saturating_sub(self.config.retained_max);
        if excess > cut {
            cut = excess;
        }
        let expired: Vec<String> = if cut == 0 {
            Vec::new()
        } else {
            if cut < prunable.len() {
                prunable.select_nth_unstable(cut);
            }
            prunable[..cut]
                .iter()
                .map(|(_, id)| (*id).clone())
                .collect()
        };
        let mut cmds = Vec::new();
        if !expired.is_empty() {
            cmds.push(Command::PruneMessages {
                message_ids: expired,
            });
        }
        for a in self.state.asks.values() {
            if a.expires_ms < now && !self.asks.contains_key(&a.request_id) {
                cmds.push(Command::CloseAsk {
                    request_id: a.request_id.clone(),
                    reason: "expired".into(),
                });
            }
        }
        if self.state.wakes_fired.values().any(|t| *t < cutoff) {
            cmds.push(Command::PruneWakes { before_ms: cutoff });
        }
        let lapsed: Vec<String> = self
            .state
            .leases
            .values()
            .filter(|l| l.expires_ms <= now)
            .map(|l| l.id.clone())
            .collect();
        if !lapsed.is_empty() {
            cmds.push(Command::ReleaseFiles { lease_ids: lapsed });
        }
        let edits_cut = now.saturating_sub(self.config.touch_window_ms);
        if self
            .state
            .edits
            .values()
            .flatten()
            .any(|e| e.at_ms < edits_cut)
        {
            cmds.push(Command::PruneEdits {
                before_ms: edits_cut,
            });
        }
        if !cmds.is_empty() && self.commit(&cmds).is_ok() {
            let _ = self.journal.sync();
        }
    }

    /// Starts a compaction snapshot off the core thread: the journal closes
    /// its segment at seq N ([`Journal::begin_snapshot`]), and a thread
    /// rebuilds the state as of N from the files alone
    /// ([`crate::codec::state_as_of`]), encodes and writes it. The core thread
    /// only pays for the fsync of pending records and a segment rotation.
    fn start_snapshot(&mut self) {
        let ticket = match self.journal.begin_snapshot() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "snapshot failed to start");
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("oxtail-snapshot".into())
            .spawn(move || {
                let written =
                    crate::codec::state_as_of(ticket.dir(), ticket.seq()).and_then(|state| {
                        let bytes =
                            crate::codec::encode_snapshot(&state).map_err(std::io::Error::other)?;
                        drop(state);
                        ticket.write(&bytes).map(|()| bytes.len())
                    });
                (ticket, written)
            });
        match spawned {
            Ok(h) => self.bg_snapshot = Some(h),
            Err(e) => tracing::error!(error = %e, "cannot start the snapshot thread"),
        }
    }

    /// Finishes the background snapshot if it is done (or, with `wait`,
    /// once it is). A snapshot the thread could not build from the files
    /// (a record lost to damage since the last snapshot) is written here
    /// instead, from memory, so compaction still happens.
    fn reap_snapshot(&mut self, wait: bool) {
        let Some(h) = self.bg_snapshot.take_if(|h| wait || h.is_finished()) else {
            return;
        };
        match h.join() {
            Ok((ticket, Ok(bytes))) => {
                let seq = ticket.seq();
                self.journal.finish_snapshot(ticket);
                tracing::info!(bytes, seq, "snapshot written off the core thread");
            }
            Ok((_, Err(e))) if e.kind() == std::io::ErrorKind::InvalidData && !wait => {
                tracing::warn!(error = %e, "background snapshot impossible; writing it from memory");
                if let Err(e) = self.snapshot() {
                    tracing::error!(error = %e, "snapshot failed");
                }
            }
            Ok((_, Err(e))) => tracing::error!(error = %e, "background snapshot failed"),
            Err(_) => tracing::error!("the snapshot thread panicked"),
        }
    }

    /// Writes a snapshot of the in-memory state on this thread (shutdown,
    /// hand-over, idle exit, `ctl compact`), after any background one.
    fn snapshot(&mut self) -> std::io::Result<()> {
        self.reap_snapshot(true);
        let bytes = crate::codec::encode_snapshot(&self.state).map_err(std::io::Error::other)?;
        self.journal.snapshot(&bytes)?;
        tracing::info!(
            bytes = bytes.len(),
            seq = self.journal.last_seq(),
            "snapshot written"
        );
        Ok(())
    }

    /// One trace event per identity resolution: when a connection's
    /// strategy first resolves or changes (the full per-strategy diagnosis
    /// is computed only then).
    fn trace_identity(&mut self, conn: u64, res: &Resolution, meta: Option<&Value>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.traced == res.strategy && res.strategy.is_some() {
            return;
        }
        c.traced = res.strategy;
        let diagnosis = c
            .caller
            .as_ref()
            .map(|caller| identity::resolve(&self.state, caller, meta).diagnosis)
            .unwrap_or_default();
        let ev = json!({
            "event": "identity",
            "conn": conn,
            "session_id": res.session_id,
            "strategy": res.strategy,
            "strategies": diagnosis,
        });
        self.trace_event(ev);
    }

    fn trace_event(&mut self, mut ev: Value) {
        ev["at_ms"] = json!(now_ms());
        if let Some(f) = self.trace_file.as_mut() {
            let _ = writeln!(f, "{ev}");
        }
        self.trace.push_back(ev);
        while self.trace.len() > TRACE_RING {
            self.trace.pop_front();
        }
    }

    // ---- cockpit ----------------------------------------------------------

    fn project_of(scope: Option<&Scope>) -> Option<String> {
        scope.map(|s| s.project.clone())
    }

    fn snapshot_for(
        &self,
        project: Option<&str>,
        project_root: Option<&str>,
        comms_limit: usize,
    ) -> StatusSnapshot {
        crate::status::build(
            &self.state,
            &self.live,
            &self.config,
            project,
            project_root,
            comms_limit,
            now_ms(),
        )
    }

    fn push_subscriptions(&mut self) {
        if !self.subs_dirty || self.subs.is_empty() {
            if self.subs.is_empty() {
                self.subs_dirty = false;
            }
            return;
        }
        if self.last_push.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last_push = Instant::now();
        self.subs_dirty = false;
        let mut keep = Vec::new();
        for s in std::mem::take(&mut self.subs) {
            let snap = self.snapshot_for(
                if s.all { None } else { s.project.as_deref() },
                s.project_root.as_deref(),
                s.comms_limit,
            );
            let ev = StatusEvent::Snapshot {
                snapshot: Box::new(snap),
            };
            let frame = ServerFrame::Event {
                id: s.wire_id,
                event: serde_json::to_value(ev).unwrap_or_default(),
            };
            if s.out.send(frame) {
                keep.push(s);
            }
        }
        self.subs = keep;
    }

    #[allow(clippy::too_many_arguments)]
    fn ctl(
        &mut self,
        conn: u64,
        wire_id: u64,
        ctl: Ctl,
        requested_scope: Option<Scope>,
        out: crate::outbox::Outbox,
        reply: oneshot::Sender<Reply>,
        pending: &mut Pending,
    ) -> bool {
        let ok = |value: Value| Reply::Ok { value };
        let (answer, dirty) = match ctl {
            Ctl::Ping => (
                ok(
                    json!({"pong": true, "version": oxtail_proto::version(), "pid": std::process::id(),
                        "federation": crate::fedstate::status(&self.state, &self.live.fed)}),
                ),
                false,
            ),
            Ctl::Stats => {
                let mut by_role: HashMap<&str, usize> = HashMap::new();
                for c in self.conns.values() {
                    let r = match c.role {
                        Role::Shim => "shim",
                        Role::Hook => "hook",
                        Role::Ctl => "ctl",
                        Role::Cockpit => "cockpit",
                    };
                    *by_role.entry(r).or_default() += 1;
                }
                (
                    ok(json!({
                        "pid": std::process::id(),
                        "version": oxtail_proto::version(),
                        "uptime_s": self.started.elapsed().as_secs(),
                        "agents": self.state.agents.len(),
                        "queued_messages": self.state.total_queued(),
                        "retained_messages": self.state.messages.len(),
                        "receipts": self.state.receipts.len(),
                        "ledger_entries": self.state.ledgers.values().map(|l| l.len()).sum::<usize>(),
                        "comms_log": self.state.comms.len(),
                        "wakes_recorded": self.state.wakes_fired.len(),
                        "open_obligations": self.state.obligations.values().filter(|o| o.state == state::ObligationState::Open).count(),
                        "pending_asks": self.state.asks.len(),
                        "asks_in_flight": self.asks.len(),
                    "handovers_unconfirmed": self.handovers.len(),
                        "idle_waiters": self.idle.len(),
                        "journal_bytes": self.journal.disk_bytes(),
                        "journal_last_seq": self.journal.last_seq(),
                        "connections": self.conns.len(),
                        "connections_by_role": by_role,
                        "foreground": self.config.idle_exit.is_none(),
                        "idle_exit_s": self.config.idle_exit.map(|d| d.as_secs()),
                    })),
                    false,
                )
            }
            Ctl::Sessions => {
                let rows: Vec<Value> = self
                    .state
                    .agents
                    .values()
                    .map(|a| {
                        json!({
                            "client_session_id": a.session_id,
                            "client_type": a.client_type,
                            "name": a.name,
                            "tmux_session": a.seat.as_ref().and_then(|s| self.live.panes.get(&s.key())).map(|p| p.session.clone()).or_else(|| a.tmux_session.clone()),
                            "liveness": tools::liveness(a, &self.live),
                            "purpose": a.purpose,
                            "project_root": a.scope.project_root,
                            "worktree": a.scope.worktree,
                            "branch": a.scope.branch,
                            "seat": a.seat,
                            "connected_shims": self.live.shims.get(&a.session_id).copied().unwrap_or(0),
                            "queued": self.state.queued(&a.session_id),
                            "resolved_by": a.resolved_by,
                            "ended": a.ended_ms.is_some(),
                        })
                    })
                    .collect();
                (ok(json!({"sessions": rows})), false)
            }
            // An id with queued mail is not unknown, even when its agent
            // record is gone (e.g. set aside by journal recovery).
            Ctl::Inbox { session_id }
                if self.state.canonical_id(&session_id).is_none()
                    && !self.state.mailboxes.contains_key(&session_id) =>
            {
                (
                    Reply::error(
                        "target-not-found",
                        format!(
                        "no agent with session id `{session_id}`; `oxtail ctl sessions` lists them"
                    ),
                    ),
                    false,
                )
            }
            Ctl::Mark { session_id, .. } if self.state.canonical_id(&session_id).is_none() => (
                Reply::error(
                    "target-not-found",
                    format!(
                        "no agent with session id `{session_id}`; `oxtail ctl sessions` lists them"
                    ),
                ),
                false,
            ),
            Ctl::Inbox { session_id } => {
                let id = self
                    .state
                    .canonical_id(&session_id)
                    .unwrap_or(&session_id)
                    .to_string();
                let msgs: Vec<Value> = self
                    .state
                    .mailboxes
                    .get(&id)
                    .map(|q| {
                        q.iter()
                            .filter_map(|m| self.state.messages.get(m))
                            .map(|m| tools::message_json(&self.state, m, m.offers > 0))
                            .collect()
                    })
                    .unwrap_or_default();
                (ok(json!({"session_id": id, "queued": msgs})), false)
            }
            Ctl::Compact => match self.snapshot() {
                Ok(()) => (
                    ok(json!({"compacted": true, "journal_bytes": self.journal.disk_bytes()})),
                    false,
                ),
                Err(e) => (
                    Reply::error(error_code::STORAGE, format!("snapshot failed: {e}")),
                    false,
                ),
            },
            Ctl::Shutdown => {
                let snap = self.snapshot();
                self.exit_after_batch = Some(0);
                match snap {
                    Ok(()) => (ok(json!({"shutting_down": true})), false),
                    Err(e) => (
                        ok(json!({"shutting_down": true, "snapshot_error": e.to_string()})),
                        false,
                    ),
                }
            }
            Ctl::Handover { version } => {
                tracing::info!(newer = %version, mine = %oxtail_proto::version(), "handing over to a newer oxtail");
                let snap = self.snapshot();
                self.exit_after_batch = Some(0);
                (
                    ok(
                        json!({"handing_over": true, "snapshot": snap.is_ok(), "version": oxtail_proto::version()}),
                    ),
                    false,
                )
            }
            Ctl::Dump => (
                ok(
                    json!({"last_seq": self.journal.last_seq(), "state": serde_json::to_value(&self.state).unwrap_or(Value::Null)}),
                ),
                false,
            ),
            Ctl::Mark { session_id, state } => {
                let id = self
                    .state
                    .canonical_id(&session_id)
                    .unwrap_or(&session_id)
                    .to_string();
                let s = match state.as_str() {
                    "busy" => Some(ActivityState::Busy),
                    "idle" => Some(ActivityState::Idle),
                    _ => None,
                };
                match s {
                    None => (
                        Reply::error(
                            error_code::INVALID_PARAMS,
                            "invalid argument `state`: must be busy or idle",
                        ),
                        false,
                    ),
                    Some(s) => {
                        let prev = self.live.activity.get(&id).cloned();
                        self.live.activity.insert(
                            id.clone(),
                            Activity {
                                state: s,
                                at_ms: now_ms(),
                                tool: prev.as_ref().and_then(|a| a.tool.clone()),
                                tool_path: prev.and_then(|a| a.tool_path),
                            },
                        );
                        self.subs_dirty = true;
                        (
                            ok(json!({"ok": true, "session_id": id, "state": state})),
                            false,
                        )
                    }
                }
            }
            Ctl::Diagnose => (ok(self.diagnose()), false),
            Ctl::Status {
                project_root,
                all,
                comms_limit,
            } => match status_scope(project_root, all, requested_scope.as_ref()) {
                Err(e) => (e, false),
                Ok((project, root)) => {
                    let snap = self.snapshot_for(project.as_deref(), root.as_deref(), comms_limit);
                    (ok(serde_json::to_value(snap).unwrap_or_default()), false)
                }
            },
            Ctl::Subscribe {
                project_root,
                all,
                comms_limit,
            } => match status_scope(project_root, all, requested_scope.as_ref()) {
                Err(e) => (e, false),
                Ok((project, root)) => {
                    let snap = self.snapshot_for(project.as_deref(), root.as_deref(), comms_limit);
                    let ev = StatusEvent::Snapshot {
                        snapshot: Box::new(snap),
                    };
                    let _ = out.send(ServerFrame::Event {
                        id: wire_id,
                        event: serde_json::to_value(ev).unwrap_or_default(),
                    });
                    self.subs.push(Subscriber {
                        conn,
                        wire_id,
                        out,
                        project,
                        project_root: root,
                        all,
                        comms_limit,
                        reply: Some(reply),
                    });
                    return false;
                }
            },
            Ctl::Nudge {
                target, check_in, ..
            } => {
                let project = Self::project_of(requested_scope.as_ref());
                match self.resolve_ctl_target(project.as_deref(), &target) {
                    Err(a) => (ok(serde_json::to_value(a).unwrap_or_default()), false),
                    Ok(id) => {
                        let tool = if check_in { "nudge_check_in" } else { "nudge" };
                        let a = self.wake_for_operator(&id, tool, None, pending);
                        (ok(serde_json::to_value(a).unwrap_or_default()), true)
                    }
                }
            }
            Ctl::Interrupt { target, .. } => {
                let project = Self::project_of(requested_scope.as_ref());
                match self.resolve_ctl_target(project.as_deref(), &target) {
                    Err(a) => (ok(serde_json::to_value(a).unwrap_or_default()), false),
                    Ok(id) => {
                        let a = self.interrupt(&id);
                        (ok(serde_json::to_value(a).unwrap_or_default()), false)
                    }
                }
            }
            Ctl::OperatorMessage { target, body, .. } => {
                let project = Self::project_of(requested_scope.as_ref());
                match self.resolve_ctl_target(project.as_deref(), &target) {
                    Err(a) => (ok(serde_json::to_value(a).unwrap_or_default()), false),
                    Ok(id) if body.len() > tools::BODY_MAX_BYTES || body.trim().is_empty() => {
                        let a = st::ActionAnswer {
                            ok: false,
                            target: Some(id),
                            error: Some(
                                if body.trim().is_empty() {
                                    "empty-body"
                                } else {
                                    "body-too-large"
                                }
                                .into(),
                            ),
                            message: Some(format!(
                                "the body is {} bytes; it must be 1-{} bytes",
                                body.len(),
                                tools::BODY_MAX_BYTES
                            )),
                            ..Default::default()
                        };
                        (ok(serde_json::to_value(a).unwrap_or_default()), false)
                    }
                    Ok(id) => {
                        let message_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
                        let project = self
                            .state
                            .agents
                            .get(&id)
                            .map(|a| a.scope.project.clone())
                            .unwrap_or_default();
                        let m = Message {
                            message_id: message_id.clone(),
                            from: "operator".into(),
                            from_name: Some("operator".into()),
                            to: id.clone(),
                            body,
                            enqueued_ms: now_ms(),
                            request_id: None,
                            reply_to: None,
                            source_message_id: None,
                            action_required: false,
                            origin: Origin::Operator,
                            project,
                            closes: None,
                            offers: 0,
                        };
                        match self.commit(&[Command::Enqueue { message: m }]) {
                            Err(e) => (
                                Reply::error(error_code::STORAGE, format!("nothing changed: {e}")),
                                false,
                            ),
                            Ok(()) => {
                                let a = self.wake_for_operator(
                                    &id,
                                    "operator_message",
                                    Some(message_id),
                                    pending,
                                );
                                (ok(serde_json::to_value(a).unwrap_or_default()), true)
                            }
                        }
                    }
                }
            }
        };
        pending.push((reply, answer));
        dirty
    }

    /// The person's wake of `id`: `tool` is `operator_message` (after
    /// enqueueing it), `nudge` or `nudge_check_in`. The usual funnel with
    /// `wake: auto`, answered as an `ActionAnswer` with `wake_status` and
    /// its words. A nudge with nothing queued costs no turn
    /// (`nothing_to_deliver`, no wake) unless it is a check-in, which wakes
    /// the agent with [`render::CHECK_IN_TEXT`], by the same routes for
    /// Claude Code (armed idle-wait hook, else keys) and Codex (keys).
    fn wake_for_operator(
        &mut self,
        id: &str,
        tool: &str,
        message_id: Option<String>,
        pending: &mut Pending,
    ) -> st::ActionAnswer {
        let nudge = tool.starts_with("nudge");
        let status = if nudge && tool != "nudge_check_in" && self.state.queued(id) == 0 {
            self.trace_event(json!({
                "event": "wake",
                "target": id,
                "mode": Mode::Explicit,
                "tool": tool,
                "wake_status": WakeStatus::NothingToDeliver,
            }));
            WakeStatus::NothingToDeliver
        } else {
            let intent = WakeIntent {
                target: id.to_string(),
                mode: Mode::Explicit,
                reason: None,
                dedupe_key: None,
                suppressed: false,
                tool: tool.to_string(),
                agent: None,
            };
            self.check_in = (tool == "nudge_check_in").then_some(render::CHECK_IN_TEXT);
            let (status, _) = self.wake(&intent, pending);
            self.check_in = None;
            status
        };
        st::ActionAnswer {
            ok: true,
            target: Some(id.to_string()),
            target_name: self.state.agents.get(id).and_then(|a| a.name.clone()),
            wake_status: Some(status.to_string()),
            wake_status_text: Some(st::wake_status_text(status.as_str())),
            message_id,
            ..Default::default()
        }
    }

    /// A person asked to interrupt `id`'s running turn (cockpit `i`):
    /// `turn/interrupt` through its app-server, when it is a Codex reached
    /// that way and in a turn whose id is known.
    fn interrupt(&mut self, id: &str) -> st::ActionAnswer {
        let name = self.state.agents.get(id).and_then(|a| a.name.clone());
        let refuse = |error: &str, message: String| st::ActionAnswer {
            ok: false,
            target: Some(id.to_string()),
            target_name: name.clone(),
            error: Some(error.into()),
            message: Some(message),
            ..Default::default()
        };
        let (Some(app), Some((home, view))) = (self.codex.clone(), self.codex_threads.get(id))
        else {
            return refuse(
                "not-interruptible",
                "only a Codex reached through its app-server can be interrupted from here".into(),
            );
        };
        if !self.live.codex_app.contains(id) {
            return refuse(
                "not-interruptible",
                "its Codex app-server is not reachable, or its TUI is gone".into(),
            );
        }
        let Some(turn) = view.turn_id.clone().filter(|_| view.active) else {
            return refuse(
                "not-in-a-turn",
                if view.active {
                    "its running turn is not known yet; try again in a second".into()
                } else {
                    "it is not in a turn".into()
                },
            );
        };
        let home = home.clone();
        self.trace_event(json!({"event": "codex_app_interrupt", "target": id, "turn": turn}));
        app.interrupt(&home, id, &turn);
        st::ActionAnswer {
            ok: true,
            target: Some(id.to_string()),
            target_name: name,
            message: Some(format!("asked Codex to interrupt turn {turn}")),
            ..Default::default()
        }
    }

    fn resolve_ctl_target(
        &self,
        project: Option<&str>,
        target: &str,
    ) -> Result<String, Box<st::ActionAnswer>> {
        let err = |code: &str, msg: String| {
            Box::new(st::ActionAnswer {
                ok: false,
                error: Some(code.into()),
                message: Some(msg),
                ..Default::default()
            })
        };
        if let Some(id) = self.state.canonical_id(target) {
            return Ok(id.to_string());
        }
        let Some(project) = project else {
            return Err(err(
                "target-not-found",
                format!("no agent with id `{target}`; give project_root to resolve names"),
            ));
        };
        match tools::resolve_target(&self.state, &self.live, project, target, None) {
            Ok((id, _)) => Ok(id),
            Err(o) => Err(err(
                o.field("error").as_str().unwrap_or("target-not-found"),
                o.field("message").as_str().unwrap_or_default().to_string(),
            )),
        }
    }

    fn diagnose(&self) -> Value {
        let mut by_status: HashMap<String, u64> = HashMap::new();
        let mut by_tool: HashMap<String, HashMap<String, u64>> = HashMap::new();
        let mut identity: HashMap<String, u64> = HashMap::new();
        for ev in &self.trace {
            match ev["event"].as_str() {
                Some("wake") => {
                    let s = ev["wake_status"].as_str().unwrap_or("?").to_string();
                    let t = ev["tool"].as_str().unwrap_or("?").to_string();
                    *by_status.entry(s.clone()).or_default() += 1;
                    *by_tool.entry(t).or_default().entry(s).or_default() += 1;
                }
                Some("identity") => {
                    *identity
                        .entry(ev["strategy"].as_str().unwrap_or("unresolved").to_string())
                        .or_default() += 1;
                }
                _ => {}
            }
        }
        let recent: Vec<&Value> = self.trace.iter().rev().take(20).collect();
        json!({
            "wakes_by_status": by_status,
            "wakes_by_tool": by_tool,
            "identity_by_strategy": identity,
            "events_kept": self.trace.len(),
            "recent": recent,
            "trace_file": std::env::var("MCP_TRACE_FILE").ok(),
        })
    }
}

/// The project (key) and root a status request covers: every project with
/// `all`, else the scope of its `project_root`.
///
/// # Errors
/// An `invalid-params` reply naming `project_root` when it is missing or
/// unreadable and `all` is false.
fn status_scope(
    project_root: Option<String>,
    all: bool,
    requested: Option<&Scope>,
) -> Result<(Option<String>, Option<String>), Reply> {
    match (all, requested) {
        (true, _) => Ok((None, requested.map(|s| s.project_root.clone()))),
        (false, Some(s)) => Ok((Some(s.project.clone()), Some(s.project_root.clone()))),
        (false, None) => Err(Reply::error(
            error_code::INVALID_PARAMS,
            match project_root {
                Some(r) => format!(
                    "invalid argument `project_root`: `{r}` is not a directory oxtail can read"
                ),
                None => {
                    "invalid argument `project_root`: give a directory, or all: true".to_string()
                }
            },
        )),
    }
}

/// Federation (issue 16): the actor's side. The federation task does the
/// network I/O and reports here; this journals, answers, and hands the task
/// outbox messages in order once they are durable.
impl Actor {
    /// Wires the federation task.
    pub fn set_federation(&mut self, fed: crate::federation::Federation, url: &str, creds: bool) {
        self.fed = Some(fed);
        self.live.fed.enabled = true;
        self.live.fed.creds = creds;
        self.live.fed.url = Some(crate::federation::redact(url));
    }

    fn fed_report(&mut self, r: crate::federation::Report, pending: &mut Pending) -> bool {
        use crate::federation::Report;
        match r {
            Report::Daemon(id) => {
                self.live.fed.daemon = id;
                false
            }
            Report::Link { up, error } => {
                self.live.fed.link_up = up;
                self.live.fed.last_error = error;
                if !up {
                    for r in &mut self.live.fed.remote {
                        r.reachable = false;
                    }
                }
                self.trace_event(json!({"event": "federation_link", "up": up}));
                self.subs_dirty = true;
                false
            }
            Report::Keys(keys) => {
                self.live.fed.keys = keys;
                self.subs_dirty = true;
                false
            }
            Report::Remote(rows) => {
                if rows != self.live.fed.remote {
                    self.live.fed.remote = rows;
                    self.subs_dirty = true;
                }
                false
            }
            Report::PresenceWanted(tx) => {
                let _ = tx.send(self.fed_local_projects());
                false
            }
            Report::Published { message_id, result } => {
                self.fed_inflight.remove(&message_id);
                let parked = self.fed_parked.remove(&message_id);
                match result {
                    Ok(()) => {
                        let dirty = self
                            .commit(&[Command::FedSent {
                                message_id: message_id.clone(),
                                at_ms: now_ms(),
                            }])
                            .is_ok();
                        self.trace_event(
                            json!({"event": "federation_sent", "message_id": message_id}),
                        );
                        if let Some((tx, mut v, _)) = parked {
                            v["remote_status"] = json!("sent_remote");
                            pending.push((tx, Reply::Ok { value: v }));
                        }
                        dirty
                    }
                    Err(e) => {
                        self.trace_event(json!({"event": "federation_unsent", "message_id": message_id, "error": e}));
                        if let Some((tx, mut v, _)) = parked {
                            v["remote_note"] = json!(format!(
                                "kept in the outbox, sent when the link allows: {e}"
                            ));
                            pending.push((tx, Reply::Ok { value: v }));
                        }
                        false
                    }
                }
            }
            Report::Receipt { receipt, done } => {
                let known = self
                    .state
                    .fed
                    .sent
                    .iter()
                    .any(|s| s.message_id == receipt.message_id && s.delivered.is_none());
                if !known {
                    pending.push((
                        done,
                        Reply::Ok {
                            value: json!({"ok": true}),
                        },
                    ));
                    return false;
                }
                let cmd = [Command::FedDelivered { receipt }];
                match self.commit(&cmd) {
                    Ok(()) => {
                        pending.push((
                            done,
                            Reply::Ok {
                                value: json!({"ok": true}),
                            },
                        ));
                        true
                    }
                    Err(e) => {
                        pending.push((done, Reply::error("storage", e.to_string())));
                        false
                    }
                }
            }
            Report::Inbound { env, done } => {
                let (now, home) = self.ctx_parts();
                let mut new_id =
                    |prefix: &str| format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
                let mut ctx = Ctx {
                    now_ms: now,
                    config: &self.config,
                    live: &self.live,
                    home: home.as_deref(),
                    new_id: &mut new_id,
                };
                let out = match tools::inbound(&self.state, &env, &mut ctx) {
                    Ok(out) => out,
                    Err(why) => {
                        pending
                            .push((done, Reply::error("federation-refused", format!("{why:?}"))));
                        return false;
                    }
                };
                let dirty = !out.commands.is_empty();
                if let Err(e) = self.commit(&out.commands) {
                    pending.push((done, Reply::error("storage", e.to_string())));
                    return false;
                }
                self.trace_event(json!({"event": "federation_received", "message_id": env.message.message_id, "from_host": env.from.host, "duplicate": !dirty}));
                self.finish_outcome(out, None, "federation", done, pending);
                dirty
            }
        }
    }

    /// Drained messages that came from another machine: their receipts go
    /// back to the sender's daemon after this batch's fsync.
    fn fed_note_drains(&mut self, cmds: &[Command]) {
        if self.fed.is_none() {
            return;
        }
        for c in cmds {
            let Command::Drain {
                session_id,
                message_ids,
                via,
                at_ms,
            } = c
            else {
                continue;
            };
            for id in message_ids {
                let Some(m) = self.state.messages.get(id) else {
                    continue;
                };
                if self.state.agents.contains_key(&m.from) {
                    continue;
                }
                if let Some(peer) = self.state.fed.peers.get(&m.from) {
                    self.fed_receipts.push((
                        peer.clone(),
                        crate::fedstate::RemoteReceipt {
                            message_id: id.clone(),
                            to: session_id.clone(),
                            via: via.clone(),
                            delivered_ms: *at_ms,
                        },
                    ));
                }
            }
        }
    }

    /// Local projects with agents that have not ended, and the presence
    /// rows of those not known dead.
    fn fed_local_projects(&self) -> Vec<crate::federation::LocalProject> {
        let mut by: HashMap<&str, crate::federation::LocalProject> = HashMap::new();
        for a in self.state.agents.values().filter(|a| a.ended_ms.is_none()) {
            // Every project with an agent that has not ended gets its key
            // (and its consumer), so mail for an agent whose client is gone
            // for now is still taken in; only live-ish agents are published.
            let p = by.entry(a.scope.project.as_str()).or_insert_with(|| {
                crate::federation::LocalProject {
                    project: a.scope.project.clone(),
                    root: a.scope.project_root.clone(),
                    rows: Vec::new(),
                }
            });
            let liveness = tools::liveness(a, &self.live);
            if liveness == "dead" {
                continue;
            }
            p.rows.push(crate::fedstate::PresenceRow {
                session_id: a.session_id.clone(),
                name: a.name.clone(),
                client_type: tools::contract_client_type(&a.client_type).to_string(),
                purpose: a.purpose.clone(),
                liveness: liveness.to_string(),
                worktree: a.scope.worktree.clone(),
                branch: a.scope.branch.clone(),
            });
        }
        by.into_values().collect()
    }

    /// A send to a remote agent answers once JetStream acknowledged it
    /// (parked here) while the link is up; otherwise, and for everything
    /// else, the reply goes out after this batch's fsync as usual.
    fn fed_park_or_reply(
        &mut self,
        commands: &[Command],
        reply: oneshot::Sender<Reply>,
        r: Reply,
        pending: &mut Pending,
    ) {
        let queued = commands.iter().find_map(|c| match c {
            Command::FedQueue { out } => Some(out.message.message_id.clone()),
            _ => None,
        });
        match (queued, r) {
            (Some(id), Reply::Ok { value }) if self.live.fed.link_up && self.fed.is_some() => {
                self.fed_parked.insert(id, (reply, value, Instant::now()));
            }
            (_, r) => pending.push((reply, r)),
        }
    }

    /// Hands the task the outbox messages not yet in flight, in order, when
    /// the link is up. In-flight ones must be the outbox's head: after a
    /// failure the rest waits until every earlier publish reported, then
    /// all go again from the head (so order holds; JetStream's
    /// `Nats-Msg-Id` window and the receiver's ledger drop repeats).
    fn fed_pump(&mut self) {
        let Some(fed) = &self.fed else { return };
        for (to, r) in self.fed_receipts.drain(..) {
            fed.receipt(to, r);
        }
        if !self.live.fed.link_up {
            return;
        }
        let ob = &self.state.fed.outbox;
        let head = ob
            .iter()
            .take_while(|o| self.fed_inflight.contains(&o.message.message_id))
            .count();
        if ob.len() == head
            || ob
                .iter()
                .skip(head)
                .any(|o| self.fed_inflight.contains(&o.message.message_id))
        {
            return;
        }
        if self.fed_inflight.is_empty() {
            fed.resume();
        }
        for o in ob.iter().skip(head) {
            self.fed_inflight.insert(o.message.message_id.clone());
            fed.publish(o.clone());
        }
    }

    /// Once a second: parked replies waiting too long are answered
    /// (`queued_for_remote`: the message is in the durable outbox), and the
    /// outbox is pumped.
    fn fed_tick(&mut self, pending: &mut Pending) {
        if self.fed.is_none() {
            return;
        }
        let late: Vec<String> = self
            .fed_parked
            .iter()
            .filter(|(_, (_, _, at))| at.elapsed() > Duration::from_secs(5))
            .map(|(k, _)| k.clone())
            .collect();
        for k in late {
            if let Some((tx, v, _)) = self.fed_parked.remove(&k) {
                pending.push((tx, Reply::Ok { value: v }));
            }
        }
        self.fed_pump();
    }
}
