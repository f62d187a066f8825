//! The Codex app-server route (issue 15): wake an idle Codex with
//! `turn/start` and reach a busy one with `turn/steer`, with nothing typed
//! into its terminal.
//!
//! Codex 0.169 TUIs (with the default `daemon_auto_start`) host their
//! threads in one shared background app-server per `CODEX_HOME`, listening
//! on `$CODEX_HOME/app-server-control/app-server-control.sock` (a symlink
//! into a 0700 directory). The protocol is WebSocket (`GET /rpc`,
//! `Host: localhost`) over that Unix socket, one JSON-RPC message per text
//! frame, with no token: access rests on file permissions, so
//! [`check_socket`] insists the socket is the user's own and closed to
//! everyone else.
//!
//! All I/O runs here, on tokio tasks, never on the actor's thread: one task
//! per watched `CODEX_HOME` keeps a connection, lists the loaded threads
//! (`thread/loaded/list`) once a second, reads each new one (`thread/read`:
//! cwd, creation time, status) and subscribes to it (`thread/resume
//! {excludeTurns: true}`) to follow `turn/started`, `turn/completed` and
//! `thread/status/changed`. Codex 0.169 refuses the subscription ("no
//! rollout found") until the thread's first turn wrote its rollout, so
//! unsubscribed threads are read again each second instead, and the id of a
//! turn that started before the subscription is looked up
//! (`thread/turns/list`, then `thread/read {includeTurns}`). Each second the
//! process table is scanned to bind threads to their TUIs ([`bind_tuis`]).
//! The whole view goes to the actor as [`Report::Snapshot`] whenever it
//! changes. The actor decides from that cached view and sends a
//! [`Delivery`]; the task answers with [`Report::Delivered`] once the
//! app-server accepted or refused the turn input (the hand-over's
//! confirmation), or after 8 s without an answer.

use crate::actor::ToActor;
use crate::server::CoreTx;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long connecting plus the `initialize` handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the app-server may take to accept or refuse turn input; well
/// below the hand-over TTL (30 s by default).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(8);
/// Pause between reconnection attempts to an unreachable app-server.
const RETRY: Duration = Duration::from_secs(2);
/// How often the loaded threads are listed.
const LIST_EVERY: Duration = Duration::from_millis(1000);

pub use oxtail_proto::paths::{check_codex_socket as check_socket, codex_home_of};

/// One loaded Codex thread as the app-server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadView {
    /// The thread id (Codex's session id, the oxtail session id).
    pub id: String,
    /// In a turn (`thread/status/changed` `active`, or a turn started and not
    /// completed).
    pub active: bool,
    /// The running turn, when known (`turn/started`, `thread/turns/list`).
    pub turn_id: Option<String>,
    /// The thread's working directory (`thread.cwd`).
    pub cwd: Option<String>,
    /// `thread.createdAt`, seconds since the epoch.
    pub created_at: Option<i64>,
    /// `thread.canAcceptDirectInput` (`None`: not said).
    pub direct_input: Option<bool>,
    /// The project scope of `cwd` (looked up here, off the actor).
    pub scope: Option<crate::state::Scope>,
    /// The TUI this thread belongs to, when [`bind_tuis`] could tell.
    pub tui: Option<TuiBinding>,
}

/// A thread's TUI: its process, found by [`bind_tuis`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuiBinding {
    /// The TUI process (the agent's seat).
    pub seat: crate::state::Seat,
    /// Its `TMUX` variable, when set (which tmux server to search).
    pub tmux: Option<String>,
    /// Still running (as of the last scan, once a second).
    pub alive: bool,
}

/// Binds loaded threads to their TUI processes, and refreshes the liveness
/// of earlier bindings. Returns true when anything changed.
///
/// No file or protocol field maps a thread to its TUI (Codex 0.169), so the
/// binding rests on facts that single one out: a TUI of the same
/// `CODEX_HOME`, in the thread's `cwd`, started before the thread was
/// created (at most 10 minutes before, at most 2 s after: `createdAt` is in
/// whole seconds) and not bound to another thread; the earliest such TUI
/// wins, threads taken oldest first. A thread is left unbound (no pane, no
/// app-server route) when another unbound thread in the same `cwd` was
/// created within a second of it: then the order says nothing. A binding,
/// once made, is kept: the TUI is that thread's for life.
pub fn bind_tuis(
    threads: &mut HashMap<String, ThreadView>,
    bound: &mut HashMap<String, TuiBinding>,
    tuis: &[crate::procinfo::CodexTuiProc],
) -> bool {
    let mut changed = false;
    for b in bound.values_mut() {
        let alive = tuis.iter().any(|p| p.seat == b.seat);
        if b.alive != alive {
            b.alive = alive;
            changed = true;
        }
    }
    let claimed: Vec<crate::state::Seat> = bound.values().map(|b| b.seat.clone()).collect();
    let mut open: Vec<(i64, String, String)> = threads
        .values()
        .filter(|t| !bound.contains_key(&t.id))
        .filter_map(|t| Some((t.created_at?, t.id.clone(), t.cwd.clone()?)))
        .collect();
    open.sort();
    let mut taken = claimed;
    for (created, id, cwd) in &open {
        let tie = open
            .iter()
            .any(|(c, i, w)| i != id && w == cwd && (c - created).abs() <= 1);
        if tie {
            continue;
        }
        let pick = tuis
            .iter()
            .filter(|p| p.cwd == *cwd && !taken.contains(&p.seat))
            .filter(|p| {
                let start = p.seat.start_time as i64;
                start <= created + 2 && created - start <= 600
            })
            .min_by_key(|p| p.seat.start_time);
        if let Some(p) = pick {
            taken.push(p.seat.clone());
            bound.insert(
                id.clone(),
                TuiBinding {
                    seat: p.seat.clone(),
                    tmux: p.tmux.clone(),
                    alive: true,
                },
            );
            changed = true;
        }
    }
    for v in threads.values_mut() {
        let b = bound.get(&v.id).cloned();
        if v.tui != b {
            v.tui = b;
            changed = true;
        }
    }
    changed
}

/// How the app-server took a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppRoute {
    /// `turn/start` on an idle thread.
    TurnStart,
    /// `turn/steer` into the running turn.
    TurnSteer,
}

impl AppRoute {
    /// `app_server_turn_start` / `app_server_turn_steer` (the `wake_route`).
    pub fn as_str(self) -> &'static str {
        match self {
            AppRoute::TurnStart => "app_server_turn_start",
            AppRoute::TurnSteer => "app_server_turn_steer",
        }
    }
}

/// What the tasks tell the actor.
#[derive(Debug)]
pub enum Report {
    /// The whole view of one `CODEX_HOME`'s app-server: `Err` when it cannot
    /// be reached (then `threads` is empty).
    Snapshot {
        home: String,
        reachable: Result<(), String>,
        threads: Vec<ThreadView>,
    },
    /// The app-server's word on a [`Delivery`].
    Delivered {
        handover: u64,
        thread: String,
        result: Result<AppRoute, String>,
    },
}

/// Turn input for one thread.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The actor's hand-over id, echoed in [`Report::Delivered`].
    pub handover: u64,
    /// The `CODEX_HOME` whose app-server hosts the thread.
    pub home: String,
    /// The thread.
    pub thread: String,
    /// The rendered mail.
    pub text: String,
    /// The running turn, to steer into; `None` starts a turn, unless
    /// `active`.
    pub steer_turn: Option<String>,
    /// The thread is in a turn whose id the actor does not know: this task
    /// looks it up (`thread/turns/list`, then `thread/read`) and steers.
    pub active: bool,
}

enum Cmd {
    Watch(String),
    Deliver(Delivery),
    Interrupt {
        home: String,
        thread: String,
        turn: String,
    },
}

/// Work for one `CODEX_HOME`'s task.
enum HomeCmd {
    Deliver(Delivery),
    Interrupt { thread: String, turn: String },
}

/// The actor's handle on the app-server tasks (cheap to clone).
#[derive(Clone)]
pub struct CodexApp {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl CodexApp {
    /// Starts the dispatcher on `rt`; reports go to the actor through
    /// `core` as [`ToActor::CodexApp`].
    pub fn spawn(rt: &tokio::runtime::Handle, core: CoreTx, scope_worktree: bool) -> CodexApp {
        let (tx, mut rx) = mpsc::unbounded_channel::<Cmd>();
        rt.spawn(async move {
            let mut homes: HashMap<String, mpsc::UnboundedSender<HomeCmd>> = HashMap::new();
            while let Some(cmd) = rx.recv().await {
                let home = match &cmd {
                    Cmd::Watch(h) => h.clone(),
                    Cmd::Deliver(d) => d.home.clone(),
                    Cmd::Interrupt { home, .. } => home.clone(),
                };
                let entry = homes.entry(home.clone()).or_insert_with(|| {
                    let (dtx, drx) = mpsc::unbounded_channel();
                    tokio::spawn(watch_home(home.clone(), drx, core.clone(), scope_worktree));
                    dtx
                });
                match cmd {
                    Cmd::Watch(_) => {}
                    Cmd::Deliver(d) => {
                        let _ = entry.send(HomeCmd::Deliver(d));
                    }
                    Cmd::Interrupt { thread, turn, .. } => {
                        let _ = entry.send(HomeCmd::Interrupt { thread, turn });
                    }
                }
            }
        });
        CodexApp { tx }
    }

    /// Keeps a connection to `home`'s app-server (idempotent).
    pub fn watch(&self, home: &str) {
        let _ = self.tx.send(Cmd::Watch(home.to_string()));
    }

    /// Hands `d` to its home's task; the answer comes as
    /// [`Report::Delivered`].
    pub fn deliver(&self, d: Delivery) {
        let _ = self.tx.send(Cmd::Deliver(d));
    }

    /// `turn/interrupt {threadId, turnId}` on `home`'s app-server: only
    /// for a person's explicit request (cockpit `i`). The outcome is
    /// logged; the turn's end shows as the thread going idle.
    pub fn interrupt(&self, home: &str, thread: &str, turn: &str) {
        let _ = self.tx.send(Cmd::Interrupt {
            home: home.to_string(),
            thread: thread.to_string(),
            turn: turn.to_string(),
        });
    }
}

async fn post(core: &CoreTx, r: Report) {
    let _ = core.send(ToActor::CodexApp(Box::new(r))).await;
}

/// One `CODEX_HOME`: connect, follow, deliver; reconnect while it is down.
async fn watch_home(
    home: String,
    mut rx: mpsc::UnboundedReceiver<HomeCmd>,
    core: CoreTx,
    scope_worktree: bool,
) {
    let mut last_err: Option<String> = None;
    let mut bound: HashMap<String, TuiBinding> = HashMap::new();
    loop {
        let err = match Session::connect(&home, scope_worktree).await {
            Ok(s) => {
                tracing::info!(home = %home, "connected to the Codex app-server");
                last_err = None;
                match s.run(&mut rx, &core, &mut bound).await {
                    Ok(()) => return,
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        if last_err.as_deref() != Some(err.as_str()) {
            tracing::info!(home = %home, error = %err, "Codex app-server not reachable");
            post(
                &core,
                Report::Snapshot {
                    home: home.clone(),
                    reachable: Err(err.clone()),
                    threads: Vec::new(),
                },
            )
            .await;
        }
        last_err = Some(err.clone());
        // Down: refuse deliveries at once (the actor falls back), retry later.
        let until = tokio::time::sleep(RETRY);
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = &mut until => break,
                d = rx.recv() => match d {
                    None => return,
                    Some(HomeCmd::Deliver(d)) => post(&core, Report::Delivered {
                        handover: d.handover,
                        thread: d.thread,
                        result: Err(format!("Codex app-server unreachable: {err}")),
                    }).await,
                    Some(HomeCmd::Interrupt { thread, .. }) => {
                        tracing::warn!(home = %home, thread = %thread, error = %err, "cannot interrupt: the Codex app-server is unreachable");
                    }
                },
            }
        }
    }
}

enum Pend {
    List,
    Read(String),
    Resume(String),
    Turns(String),
    Deliver {
        d: Delivery,
        route: AppRoute,
        retried: bool,
        deadline: Instant,
    },
    /// Looking up the running turn of a delivery's thread (`full`: by
    /// `thread/read` with turns, after `thread/turns/list` found none).
    Lookup {
        d: Delivery,
        full: bool,
    },
    /// A person's `turn/interrupt`.
    Interrupt(String),
}

struct Session {
    home: String,
    ws: WebSocketStream<UnixStream>,
    next_id: u64,
    pending: HashMap<u64, Pend>,
    threads: HashMap<String, ThreadView>,
    /// Threads whose events this connection receives (`thread/resume`
    /// succeeded).
    subscribed: std::collections::HashSet<String>,
    listing: bool,
    /// `OXTAIL_SCOPE=worktree` (from the daemon's `Config`).
    scope_worktree: bool,
}

impl Session {
    async fn connect(home: &str, scope_worktree: bool) -> Result<Session, String> {
        let path = check_socket(Path::new(home))?;
        let fut = async {
            let stream = UnixStream::connect(&path)
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?;
            let (ws, _) = tokio_tungstenite::client_async("ws://localhost/rpc", stream)
                .await
                .map_err(|e| {
                    format!("WebSocket handshake with the Codex app-server failed: {e}")
                })?;
            let mut s = Session {
                home: home.to_string(),
                ws,
                next_id: 1,
                pending: HashMap::new(),
                threads: HashMap::new(),
                subscribed: std::collections::HashSet::new(),
                listing: false,
                scope_worktree,
            };
            let init = s
                .call(
                    "initialize",
                    json!({
                        "clientInfo": {"name": "oxtail", "title": "oxtail", "version": oxtail_proto::version()},
                        "capabilities": {"experimentalApi": true},
                    }),
                )
                .await?;
            if let Some(h) = init.get("codexHome").and_then(Value::as_str) {
                let (a, b) = (
                    std::fs::canonicalize(h).ok(),
                    std::fs::canonicalize(home).ok(),
                );
                if a.is_some() && a != b {
                    return Err(format!(
                        "the app-server under {home} serves CODEX_HOME {h}, not this one"
                    ));
                }
            }
            s.notify("initialized", Value::Null).await?;
            Ok(s)
        };
        tokio::time::timeout(CONNECT_TIMEOUT, fut)
            .await
            .map_err(|_| "the Codex app-server did not answer within 3 s".to_string())?
    }

    async fn send(&mut self, v: Value) -> Result<(), String> {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .map_err(|e| format!("Codex app-server connection lost: {e}"))
    }

    async fn notify(&mut self, method: &str, params: Value) -> Result<(), String> {
        let mut v = json!({"jsonrpc": "2.0", "method": method});
        if !params.is_null() {
            v["params"] = params;
        }
        self.send(v).await
    }

    async fn request(&mut self, method: &str, params: Value, pend: Pend) -> Result<(), String> {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, pend);
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await
    }

    /// A request answered before anything else is read (the handshake).
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        while let Some(msg) = self.ws.next().await {
            let msg = msg.map_err(|e| format!("Codex app-server connection lost: {e}"))?;
            let Message::Text(t) = msg else { continue };
            let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                continue;
            };
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(e) = v.get("error") {
                    return Err(format!("{method} refused: {}", error_text(e)));
                }
                return Ok(v.get("result").cloned().unwrap_or(Value::Null));
            }
        }
        Err("the Codex app-server closed the connection".into())
    }

    async fn snapshot(&self, core: &CoreTx) {
        let mut threads: Vec<ThreadView> = self.threads.values().cloned().collect();
        threads.sort_by(|a, b| a.id.cmp(&b.id));
        post(
            core,
            Report::Snapshot {
                home: self.home.clone(),
                reachable: Ok(()),
                threads,
            },
        )
        .await;
    }

    async fn run(
        mut self,
        rx: &mut mpsc::UnboundedReceiver<HomeCmd>,
        core: &CoreTx,
        bound: &mut HashMap<String, TuiBinding>,
    ) -> Result<(), String> {
        self.snapshot(core).await;
        let mut tick = tokio::time::interval(LIST_EVERY);
        let canon = |h: &str| std::fs::canonicalize(h).ok();
        let me = canon(&self.home);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if !self.threads.is_empty() || !bound.is_empty() {
                        let tuis: Vec<_> = tokio::task::spawn_blocking(crate::procinfo::codex_tuis)
                            .await
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|p| p.codex_home.as_deref().and_then(canon) == me)
                            .collect();
                        if bind_tuis(&mut self.threads, bound, &tuis) {
                            self.snapshot(core).await;
                        }
                    }
                    if !self.listing {
                        self.listing = true;
                        self.request("thread/loaded/list", json!({}), Pend::List).await?;
                    }
                    self.expire_deliveries(core).await;
                }
                d = rx.recv() => match d {
                    None => return Ok(()),
                    Some(HomeCmd::Deliver(d)) => self.start_delivery(d, false).await?,
                    Some(HomeCmd::Interrupt { thread, turn }) => {
                        let params = json!({"threadId": thread, "turnId": turn});
                        self.request("turn/interrupt", params, Pend::Interrupt(thread)).await?;
                    }
                },
                msg = self.ws.next() => {
                    let msg = match msg {
                        None => return Err("the Codex app-server closed the connection".into()),
                        Some(Err(e)) => return Err(format!("Codex app-server connection lost: {e}")),
                        Some(Ok(m)) => m,
                    };
                    let Message::Text(t) = msg else { continue };
                    let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                    if self.on_message(v, core).await? {
                        self.snapshot(core).await;
                    }
                }
            }
        }
    }

    async fn start_delivery(&mut self, mut d: Delivery, retried: bool) -> Result<(), String> {
        if d.steer_turn.is_none() && d.active {
            if let Some(t) = self.threads.get(&d.thread).and_then(|v| v.turn_id.clone()) {
                d.steer_turn = Some(t);
            } else {
                let params = json!({"threadId": d.thread, "limit": 1, "sortDirection": "desc", "itemsView": "notLoaded"});
                return self
                    .request("thread/turns/list", params, Pend::Lookup { d, full: false })
                    .await;
            }
        }
        let input = json!([{"type": "text", "text": d.text, "text_elements": []}]);
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        match d.steer_turn.clone() {
            Some(turn) => {
                let params = json!({"threadId": d.thread, "expectedTurnId": turn, "input": input});
                let pend = Pend::Deliver {
                    d,
                    route: AppRoute::TurnSteer,
                    retried,
                    deadline,
                };
                self.request("turn/steer", params, pend).await
            }
            None => {
                let params = json!({"threadId": d.thread, "input": input});
                let pend = Pend::Deliver {
                    d,
                    route: AppRoute::TurnStart,
                    retried,
                    deadline,
                };
                self.request("turn/start", params, pend).await
            }
        }
    }

    async fn expire_deliveries(&mut self, core: &CoreTx) {
        let now = Instant::now();
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| matches!(p, Pend::Deliver { deadline, .. } if *deadline <= now))
            .map(|(k, _)| *k)
            .collect();
        for id in late {
            if let Some(Pend::Deliver { d, .. }) = self.pending.remove(&id) {
                post(
                    core,
                    Report::Delivered {
                        handover: d.handover,
                        thread: d.thread,
                        result: Err("the Codex app-server did not answer in time".into()),
                    },
                )
                .await;
            }
        }
    }

    /// Handles one incoming message; true when the view changed.
    async fn on_message(&mut self, v: Value, core: &CoreTx) -> Result<bool, String> {
        tracing::trace!(home = %self.home, message = %v, "Codex app-server message");
        let method = v.get("method").and_then(Value::as_str);
        let id = v.get("id").and_then(Value::as_u64);
        match (method, id) {
            // A request from the server (approvals): the TUI answers those.
            (Some(_), Some(_)) => Ok(false),
            (Some(m), None) => Ok(self.on_notification(m, v.get("params").unwrap_or(&Value::Null))),
            (None, Some(id)) => {
                let Some(p) = self.pending.remove(&id) else {
                    return Ok(false);
                };
                let res = match v.get("error") {
                    Some(e) => Err(error_text(e)),
                    None => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
                };
                self.on_response(p, res, core).await
            }
            (None, None) => Ok(false),
        }
    }

    fn on_notification(&mut self, method: &str, p: &Value) -> bool {
        let thread = p.get("threadId").and_then(Value::as_str).unwrap_or("");
        match method {
            "turn/started" => {
                let turn = p.pointer("/turn/id").and_then(Value::as_str);
                self.threads.get_mut(thread).is_some_and(|t| {
                    let was = (t.active, t.turn_id.clone());
                    t.active = true;
                    t.turn_id = turn.map(str::to_string);
                    was != (t.active, t.turn_id.clone())
                })
            }
            "turn/completed" => self.threads.get_mut(thread).is_some_and(|t| {
                let was = (t.active, t.turn_id.clone());
                t.active = false;
                t.turn_id = None;
                was != (t.active, t.turn_id.clone())
            }),
            "thread/status/changed" => {
                let active = p.pointer("/status/type").and_then(Value::as_str) == Some("active");
                self.threads.get_mut(thread).is_some_and(|t| {
                    let changed = t.active != active;
                    t.active = active;
                    if !active {
                        t.turn_id = None;
                    }
                    changed
                })
            }
            "thread/closed" => self.threads.remove(thread).is_some(),
            _ => false,
        }
    }

    /// Inserts or refreshes the view of thread `id` from a `Thread` object
    /// (`thread/read`, `thread/resume`); asks for the running turn's id when
    /// it is active and unknown. True when the view changed.
    async fn apply_thread(&mut self, id: &str, t: &Value) -> Result<bool, String> {
        let active = t.pointer("/status/type").and_then(Value::as_str) == Some("active");
        let changed = match self.threads.get_mut(id) {
            Some(v) => {
                let changed = v.active != active;
                v.active = active;
                if !active {
                    v.turn_id = None;
                }
                changed
            }
            None => {
                let cwd = t.get("cwd").and_then(Value::as_str).map(str::to_string);
                let worktree = self.scope_worktree;
                let scope = match cwd.clone() {
                    Some(c) => tokio::task::spawn_blocking(move || {
                        crate::scope::scope_of(Path::new(&c), worktree).ok()
                    })
                    .await
                    .ok()
                    .flatten(),
                    None => None,
                };
                self.threads.insert(
                    id.to_string(),
                    ThreadView {
                        id: id.to_string(),
                        active,
                        turn_id: None,
                        cwd,
                        created_at: t.get("createdAt").and_then(Value::as_i64),
                        direct_input: t.get("canAcceptDirectInput").and_then(Value::as_bool),
                        scope,
                        tui: None,
                    },
                );
                true
            }
        };
        let asking = self
            .pending
            .values()
            .any(|p| matches!(p, Pend::Turns(t) if t == id));
        if active && !asking && self.threads.get(id).is_some_and(|v| v.turn_id.is_none()) {
            self.request(
                "thread/turns/list",
                json!({"threadId": id, "limit": 1, "sortDirection": "desc", "itemsView": "notLoaded"}),
                Pend::Turns(id.to_string()),
            )
            .await?;
        }
        Ok(changed)
    }

    async fn on_response(
        &mut self,
        p: Pend,
        res: Result<Value, String>,
        core: &CoreTx,
    ) -> Result<bool, String> {
        match p {
            Pend::List => {
                self.listing = false;
                let v = match res {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::info!(home = %self.home, error = %e, "thread/loaded/list refused");
                        return Ok(false);
                    }
                };
                let ids: Vec<String> = v
                    .get("data")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let before = self.threads.len();
                self.threads.retain(|k, _| ids.contains(k));
                self.subscribed.retain(|k| ids.contains(k));
                let changed = before != self.threads.len();
                let asking: Vec<String> = self
                    .pending
                    .values()
                    .filter_map(|p| match p {
                        Pend::Read(t) | Pend::Resume(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect();
                // New threads are read; threads not subscribed yet (a new
                // thread has no rollout until its first turn, and
                // `thread/resume` needs one) are read again: that is their
                // status until the subscription takes.
                for id in ids {
                    if !self.subscribed.contains(&id) && !asking.contains(&id) {
                        self.request(
                            "thread/read",
                            json!({"threadId": id, "includeTurns": false}),
                            Pend::Read(id.clone()),
                        )
                        .await?;
                    }
                }
                Ok(changed)
            }
            Pend::Read(id) => {
                let v = match res {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!(home = %self.home, thread = %id, error = %e, "thread/read refused");
                        return Ok(false);
                    }
                };
                let changed = self
                    .apply_thread(&id, v.get("thread").unwrap_or(&Value::Null))
                    .await?;
                if !self.subscribed.contains(&id) {
                    self.request(
                        "thread/resume",
                        json!({"threadId": id, "excludeTurns": true}),
                        Pend::Resume(id.clone()),
                    )
                    .await?;
                }
                Ok(changed)
            }
            Pend::Resume(id) => {
                let v = match res {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!(home = %self.home, thread = %id, error = %e, "not subscribed to a Codex thread yet");
                        return Ok(false);
                    }
                };
                tracing::debug!(home = %self.home, thread = %id, "subscribed to a Codex thread");
                self.subscribed.insert(id.clone());
                self.apply_thread(&id, v.get("thread").unwrap_or(&Value::Null))
                    .await
            }
            Pend::Turns(id) => {
                tracing::debug!(home = %self.home, thread = %id, answer = ?res, "thread/turns/list");
                let Ok(v) = res else { return Ok(false) };
                let turn = v
                    .get("data")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .filter(|t| t.get("status").and_then(Value::as_str) == Some("inProgress"))
                    .and_then(|t| t.get("id").and_then(Value::as_str))
                    .map(str::to_string);
                Ok(self.threads.get_mut(&id).is_some_and(|t| {
                    if t.active && t.turn_id.is_none() && turn.is_some() {
                        t.turn_id = turn;
                        true
                    } else {
                        false
                    }
                }))
            }
            Pend::Interrupt(thread) => {
                match res {
                    Ok(_) => {
                        tracing::info!(home = %self.home, thread = %thread, "turn interrupted at the operator's request")
                    }
                    Err(e) => {
                        tracing::warn!(home = %self.home, thread = %thread, error = %e, "turn/interrupt refused")
                    }
                }
                Ok(false)
            }
            Pend::Lookup { mut d, full } => {
                tracing::debug!(home = %self.home, thread = %d.thread, full, answer = ?res, "running turn lookup");
                let turns = res.ok().and_then(|v| {
                    if full {
                        v.pointer("/thread/turns").cloned()
                    } else {
                        v.get("data").cloned()
                    }
                });
                let running = turns
                    .as_ref()
                    .and_then(Value::as_array)
                    .and_then(|a| {
                        a.iter()
                            .rev()
                            .find(|t| t.get("status").and_then(Value::as_str) == Some("inProgress"))
                    })
                    .and_then(|t| t.get("id").and_then(Value::as_str))
                    .map(str::to_string);
                match (running, full) {
                    (Some(t), _) => {
                        if let Some(v) = self.threads.get_mut(&d.thread) {
                            if v.active && v.turn_id.is_none() {
                                v.turn_id = Some(t.clone());
                            }
                        }
                        d.steer_turn = Some(t);
                        d.active = false;
                        self.start_delivery(d, false).await?;
                    }
                    (None, false) => {
                        let params = json!({"threadId": d.thread, "includeTurns": true});
                        self.request("thread/read", params, Pend::Lookup { d, full: true })
                            .await?;
                    }
                    (None, true) => post(
                        core,
                        Report::Delivered {
                            handover: d.handover,
                            thread: d.thread,
                            result: Err(
                                "the thread is in a turn whose id the app-server does not tell yet"
                                    .into(),
                            ),
                        },
                    )
                    .await,
                }
                Ok(false)
            }
            Pend::Deliver {
                mut d,
                route,
                retried,
                ..
            } => match res {
                Ok(v) => {
                    let turn = match route {
                        AppRoute::TurnStart => v.pointer("/turn/id"),
                        AppRoute::TurnSteer => v.get("turnId"),
                    }
                    .and_then(Value::as_str)
                    .map(str::to_string);
                    let mut changed = false;
                    if let Some(t) = self.threads.get_mut(&d.thread) {
                        changed = !t.active || (turn.is_some() && t.turn_id != turn);
                        t.active = true;
                        if turn.is_some() {
                            t.turn_id = turn;
                        }
                    }
                    post(
                        core,
                        Report::Delivered {
                            handover: d.handover,
                            thread: d.thread,
                            result: Ok(route),
                        },
                    )
                    .await;
                    Ok(changed)
                }
                Err(e) => {
                    // The turn ended (or began) between the actor's look and
                    // the request: try once the other way, from this task's
                    // fresher view.
                    let now = self.threads.get(&d.thread).cloned();
                    let other = match (route, now) {
                        (AppRoute::TurnSteer, Some(t)) if !t.active => Some(None),
                        (AppRoute::TurnStart, Some(t)) if t.active && t.turn_id.is_some() => {
                            Some(t.turn_id)
                        }
                        _ => None,
                    };
                    match other {
                        Some(turn) if !retried => {
                            d.steer_turn = turn;
                            self.start_delivery(d, true).await?;
                        }
                        _ => {
                            post(
                                core,
                                Report::Delivered {
                                    handover: d.handover,
                                    thread: d.thread,
                                    result: Err(format!("{} refused: {e}", route.method())),
                                },
                            )
                            .await
                        }
                    }
                    Ok(false)
                }
            },
        }
    }
}

impl AppRoute {
    fn method(self) -> &'static str {
        match self {
            AppRoute::TurnStart => "turn/start",
            AppRoute::TurnSteer => "turn/steer",
        }
    }
}

fn error_text(e: &Value) -> String {
    e.get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_from_env() {
        assert_eq!(
            codex_home_of(Some("/x/c"), Some("/h")).as_deref(),
            Some("/x/c")
        );
        assert_eq!(
            codex_home_of(None, Some("/h/")).as_deref(),
            Some("/h/.codex")
        );
        assert_eq!(codex_home_of(Some(""), None), None);
    }

    fn view(id: &str, created: i64, cwd: &str) -> ThreadView {
        ThreadView {
            id: id.into(),
            active: false,
            turn_id: None,
            cwd: Some(cwd.into()),
            created_at: Some(created),
            direct_input: Some(true),
            scope: None,
            tui: None,
        }
    }

    fn tui(pid: u32, start: u64, cwd: &str) -> crate::procinfo::CodexTuiProc {
        crate::procinfo::CodexTuiProc {
            seat: crate::state::Seat {
                pid,
                start_time: start,
            },
            cwd: cwd.into(),
            codex_home: Some("/h/.codex".into()),
            tmux: None,
        }
    }

    fn bound_pid(threads: &HashMap<String, ThreadView>, id: &str) -> Option<u32> {
        threads[id].tui.as_ref().map(|t| t.seat.pid)
    }

    #[test]
    fn threads_bind_to_the_tui_that_started_before_them() {
        // Two TUIs in one directory, started in turn; the shared app-server
        // came up 6 s after the first (as observed), so both threads are
        // younger than both TUIs' start by different amounts.
        let tuis = [
            tui(10, 1000, "/p"),
            tui(20, 1009, "/p"),
            tui(30, 1000, "/q"),
        ];
        let mut threads: HashMap<String, ThreadView> = [
            view("a", 1006, "/p"),
            view("b", 1010, "/p"),
            view("q", 1001, "/q"),
        ]
        .into_iter()
        .map(|v| (v.id.clone(), v))
        .collect();
        let mut bound = HashMap::new();
        assert!(bind_tuis(&mut threads, &mut bound, &tuis));
        assert_eq!(bound_pid(&threads, "a"), Some(10));
        assert_eq!(bound_pid(&threads, "b"), Some(20));
        assert_eq!(bound_pid(&threads, "q"), Some(30));
        // Nothing new: no change.
        assert!(!bind_tuis(&mut threads, &mut bound, &tuis));
        // B's TUI closes: its binding stays, marked gone; A's is untouched.
        let left = [tui(10, 1000, "/p"), tui(30, 1000, "/q")];
        assert!(bind_tuis(&mut threads, &mut bound, &left));
        assert!(!threads["b"].tui.as_ref().unwrap().alive);
        assert!(threads["a"].tui.as_ref().unwrap().alive);
        // A recycled pid with another start time is not the same TUI.
        let recycled = [tui(10, 2000, "/p"), tui(30, 1000, "/q")];
        bind_tuis(&mut threads, &mut bound, &recycled);
        assert!(!threads["a"].tui.as_ref().unwrap().alive);
    }

    #[test]
    fn ambiguous_or_impossible_threads_stay_unbound() {
        // Two threads of one directory created in the same second: the
        // order cannot tell which TUI is whose.
        let tuis = [tui(10, 1000, "/p"), tui(20, 1000, "/p")];
        let mut threads: HashMap<String, ThreadView> =
            [view("a", 1005, "/p"), view("b", 1005, "/p")]
                .into_iter()
                .map(|v| (v.id.clone(), v))
                .collect();
        let mut bound = HashMap::new();
        assert!(!bind_tuis(&mut threads, &mut bound, &tuis));
        assert!(bound.is_empty());
        // A thread older than every TUI (a resumed session), one in another
        // directory, and one created long after: none binds.
        let mut threads: HashMap<String, ThreadView> = [
            view("old", 900, "/p"),
            view("elsewhere", 1005, "/r"),
            view("late", 1000 + 601, "/p"),
        ]
        .into_iter()
        .map(|v| (v.id.clone(), v))
        .collect();
        let tuis = [tui(10, 1000, "/p")];
        assert!(!bind_tuis(&mut threads, &mut bound, &tuis));
        assert!(bound.is_empty());
    }

    #[test]
    fn socket_checks_refuse_what_is_not_ours_or_open() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let err = check_socket(dir.path()).unwrap_err();
        assert!(err.contains("no Codex app-server socket"), "{err}");
        let ctl = dir.path().join("app-server-control");
        std::fs::create_dir_all(&ctl).unwrap();
        let real = dir.path().join("real.sock");
        let _l = std::os::unix::net::UnixListener::bind(&real).unwrap();
        std::os::unix::fs::symlink(&real, ctl.join("app-server-control.sock")).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = check_socket(dir.path()).unwrap_err();
        assert!(err.contains("open to other users"), "{err}");
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            check_socket(dir.path()).unwrap(),
            std::fs::canonicalize(&real).unwrap()
        );
        // A regular file is not a socket.
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        std::fs::remove_file(ctl.join("app-server-control.sock")).unwrap();
        std::os::unix::fs::symlink(&file, ctl.join("app-server-control.sock")).unwrap();
        assert!(check_socket(dir.path())
            .unwrap_err()
            .contains("not a socket"));
    }
}
