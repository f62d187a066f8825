//! The daemon's I/O layer: the socket server and the core actor.
//!
//! * One **actor thread** owns the [`State`], the journal and the ephemeral
//!   facts. Requests reach it over a channel; it drains every request already
//!   waiting, plans each with the pure [`crate::tools`], appends each
//!   request's commands as one journal record, applies them, then issues
//!   **one fsync for the whole batch** (group commit) and only then sends the
//!   replies. A failed append leaves memory untouched and answers `storage`.
//! * **Connection tasks** (tokio) read frames, check the peer's uid and the
//!   handshake, do the slow lookups (process start time, git scope) off the
//!   actor, forward requests and write replies. A bad frame closes only its
//!   own connection.

use crate::config::Config;
use crate::identity::{self, Caller};
use crate::state::{self, Command, Event, Scope, State};
use crate::tools::{self, Ctx, Live};
use oxtail_journal::{Journal, Options as JournalOptions, Replay};
use oxtail_proto::frame::{self, FrameError, MAX_CLIENT_FRAME};
use oxtail_proto::{
    error_code, paths, ClientFrame, Ctl, Reply, Request, Role, ServerFrame, Welcome,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// How the daemon was started.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Under a service manager: never idle out.
    pub foreground: bool,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs the daemon until it is shut down or idles out. Returns `Ok(())`
/// at once, quietly, when another daemon already holds the lock.
///
/// # Errors
/// When the state dir, the journal or the socket cannot be set up.
pub fn run(opts: DaemonOptions) -> io::Result<()> {
    let dir = paths::state_dir();
    paths::ensure_private_dir(&dir)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths::lock_path())?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::info!(
                "another daemon holds {}; exiting",
                paths::lock_path().display()
            );
            return Ok(());
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    let config = Config::from_env(opts.foreground);
    let (state, journal) = open_state(&paths::journal_dir(), &config)?;
    let socket = paths::socket_path();
    let listener = bind_socket(&socket)?;
    tracing::info!(
        pid = std::process::id(),
        version = oxtail_proto::VERSION,
        socket = %socket.display(),
        agents = state.agents.len(),
        queued = state.total_queued(),
        "daemon started"
    );
    let (tx, rx) = std_mpsc::channel::<ToActor>();
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel::<i32>();
    let actor = Actor::new(state, journal, config, exit_tx);
    std::thread::Builder::new()
        .name("oxtail-core".into())
        .spawn(move || actor.run(rx))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let code = rt.block_on(async move {
        let listener = UnixListener::from_std(listener)?;
        let tick_tx = tx.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_secs(1));
            loop {
                iv.tick().await;
                if tick_tx.send(ToActor::Tick).is_err() {
                    break;
                }
            }
        });
        let mut next_conn = 1u64;
        loop {
            tokio::select! {
                code = exit_rx.recv() => {
                    // Let connection writers flush the last replies.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Ok::<i32, io::Error>(code.unwrap_or(0));
                }
                acc = listener.accept() => match acc {
                    Ok((stream, _)) => {
                        let conn = next_conn;
                        next_conn += 1;
                        tokio::spawn(serve_conn(stream, conn, tx.clone()));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    })?;
    let _ = std::fs::remove_file(&socket);
    rt.shutdown_timeout(Duration::from_millis(200));
    drop(lock);
    tracing::info!(code, "daemon exiting");
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// Loads the newest snapshot and replays the journal into a fresh state.
///
/// # Errors
/// When the journal dir cannot be opened or a record cannot be decoded
/// (a checksummed record that does not decode is a format bug, not a torn
/// write, so it is not silently dropped).
pub fn open_state(dir: &Path, config: &Config) -> io::Result<(State, Journal)> {
    let mut state = State::default();
    let mut events = Vec::new();
    let opts = JournalOptions {
        fail_appends_after_bytes: config.fault_journal_full_after,
        ..JournalOptions::default()
    };
    let (journal, report) = Journal::open(dir, opts, |r| {
        match r {
            Replay::Snapshot { bytes, .. } => {
                state = serde_json::from_slice(bytes).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("snapshot: {e}"))
                })?;
            }
            Replay::Record { seq, payload } => {
                let cmds: Vec<Command> = serde_json::from_slice(payload).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("record {seq}: {e}"))
                })?;
                for c in &cmds {
                    state::apply(&mut state, c, &mut events);
                }
                events.clear();
            }
        }
        Ok(())
    })?;
    tracing::info!(
        snapshot_seq = ?report.snapshot_seq,
        records = report.records_replayed,
        last_seq = report.last_seq,
        truncated = ?report.truncated.as_ref().map(|t| format!("{} at {}: {} bytes ({})", t.segment.display(), t.offset, t.bytes_cut, t.reason)),
        "journal recovered"
    );
    Ok((state, journal))
}

fn bind_socket(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        paths::ensure_private_dir(parent)?;
    }
    // We hold the lock, so any socket file here is stale.
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!(path = %path.display(), "removed a stale socket"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Messages to the actor thread.
enum ToActor {
    Open {
        conn: u64,
        role: Role,
    },
    Close {
        conn: u64,
    },
    ShimHello {
        conn: u64,
        caller: Box<Caller>,
    },
    ClientInfo {
        conn: u64,
        name: String,
    },
    Tool {
        conn: u64,
        name: String,
        args: Value,
        meta: Option<Value>,
        requested_scope: Option<Scope>,
        reply: oneshot::Sender<Reply>,
    },
    Ctl {
        ctl: Ctl,
        reply: oneshot::Sender<Reply>,
    },
    Tick,
}

struct ConnInfo {
    role: Role,
    caller: Option<Caller>,
    /// The session this shim last resolved to (for liveness).
    session: Option<String>,
}

struct Actor {
    state: State,
    journal: Journal,
    config: Config,
    conns: HashMap<u64, ConnInfo>,
    live: Live,
    started: Instant,
    last_shim_seen: Instant,
    last_seat_check: Instant,
    last_retention: Instant,
    exit_tx: mpsc::UnboundedSender<i32>,
    /// Set by shutdown/idle exit: leave after this batch's replies are sent.
    exit_after_batch: Option<i32>,
    home: Option<String>,
    id_counter: u64,
}

impl Actor {
    fn new(
        state: State,
        journal: Journal,
        config: Config,
        exit_tx: mpsc::UnboundedSender<i32>,
    ) -> Actor {
        let now = Instant::now();
        Actor {
            state,
            journal,
            config,
            conns: HashMap::new(),
            live: Live::default(),
            started: now,
            last_shim_seen: now,
            last_seat_check: now - Duration::from_secs(60),
            last_retention: now,
            exit_tx,
            exit_after_batch: None,
            home: std::env::var("HOME").ok(),
            id_counter: 0,
        }
    }

    fn run(mut self, rx: std_mpsc::Receiver<ToActor>) {
        let mut pending: Vec<(oneshot::Sender<Reply>, Reply)> = Vec::new();
        loop {
            let first = match rx.recv() {
                Ok(m) => m,
                Err(_) => return,
            };
            let mut dirty = self.handle(first, &mut pending);
            // Group commit: everything already queued joins this fsync.
            while let Ok(m) = rx.try_recv() {
                dirty |= self.handle(m, &mut pending);
                if pending.len() >= 4096 {
                    break;
                }
            }
            if dirty {
                if let Err(e) = self.journal.sync() {
                    // The batch was written but may not be durable; memory
                    // already reflects it. Crash-stop so recovery rebuilds
                    // from what is on disk; no reply was sent.
                    tracing::error!(error = %e, "journal fsync failed; exiting so recovery restores a consistent state");
                    std::process::exit(70);
                }
                if self.journal.bytes_since_snapshot() > self.config.compact_bytes {
                    if let Err(e) = self.snapshot() {
                        tracing::error!(error = %e, "snapshot failed");
                    }
                }
            }
            for (tx, reply) in pending.drain(..) {
                let _ = tx.send(reply);
            }
            if let Some(code) = self.exit_after_batch {
                let _ = self.exit_tx.send(code);
                return;
            }
        }
    }

    /// Handles one message; returns true when it appended to the journal.
    fn handle(&mut self, msg: ToActor, pending: &mut Vec<(oneshot::Sender<Reply>, Reply)>) -> bool {
        match msg {
            ToActor::Open { conn, role } => {
                self.conns.insert(
                    conn,
                    ConnInfo {
                        role,
                        caller: None,
                        session: None,
                    },
                );
                false
            }
            ToActor::Close { conn } => {
                self.conns.remove(&conn);
                self.recount_live();
                false
            }
            ToActor::ShimHello { conn, caller } => {
                let res = identity::resolve(&self.state, &caller, None);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.caller = Some(*caller);
                    c.session = res.session_id.clone();
                }
                self.last_shim_seen = Instant::now();
                // A shim whose identity is already known registers at once, so
                // peers see it before its first tool call.
                let mut dirty = false;
                if let (Some(id), Some(caller)) = (
                    res.session_id.as_deref(),
                    self.conns.get(&conn).and_then(|c| c.caller.clone()),
                ) {
                    let cmds = identity::ensure_agent(&self.state, &caller, id, &res, now_ms());
                    dirty = self.commit(&cmds).is_ok() && !cmds.is_empty();
                }
                self.recount_live();
                dirty
            }
            ToActor::ClientInfo { conn, name } => {
                if let Some(c) = self.conns.get_mut(&conn).and_then(|c| c.caller.as_mut()) {
                    c.client_name = Some(name);
                }
                false
            }
            ToActor::Tool {
                conn,
                name,
                args,
                meta,
                requested_scope,
                reply,
            } => {
                let Some(mut caller) = self.conns.get(&conn).and_then(|c| c.caller.clone()) else {
                    pending.push((
                        reply,
                        Reply::error(error_code::NOT_A_SHIM, "tool calls need a shim hello first"),
                    ));
                    return false;
                };
                caller.requested_scope = requested_scope;
                let now = now_ms();
                let mut counter = self.id_counter;
                let mut new_id = |prefix: &str| {
                    counter += 1;
                    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
                };
                let mut ctx = Ctx {
                    now_ms: now,
                    config: &self.config,
                    live: &self.live,
                    home: self.home.as_deref(),
                    new_id: &mut new_id,
                };
                let out = tools::call(&self.state, &caller, &name, &args, meta.as_ref(), &mut ctx);
                self.id_counter = counter;
                let res = identity::resolve(&self.state, &caller, meta.as_ref());
                let dirty = !out.commands.is_empty();
                let answer = match self.commit(&out.commands) {
                    Ok(()) => out.reply,
                    Err(e) => Reply::Ok {
                        value: json!({
                            "ok": false,
                            "error": "storage",
                            "message": format!("oxtail could not make this durable, so nothing changed: {e}"),
                        }),
                    },
                };
                // Track which session this shim speaks for (liveness).
                let resolved_after =
                    identity::resolve(&self.state, &caller, meta.as_ref()).session_id;
                if let Some(c) = self.conns.get_mut(&conn) {
                    let s = resolved_after.or(res.session_id);
                    if c.session != s {
                        c.session = s;
                        self.recount_live();
                    }
                }
                self.last_shim_seen = Instant::now();
                pending.push((reply, answer));
                dirty
            }
            ToActor::Ctl { ctl, reply } => {
                let (answer, dirty) = self.ctl(ctl);
                pending.push((reply, answer));
                dirty
            }
            ToActor::Tick => {
                self.tick();
                false
            }
        }
    }

    /// Journals `cmds` as one record and applies them. On error nothing
    /// changed.
    fn commit(&mut self, cmds: &[Command]) -> io::Result<()> {
        if cmds.is_empty() {
            return Ok(());
        }
        let payload = serde_json::to_vec(cmds).map_err(io::Error::other)?;
        if let Err(e) = self.journal.append(&payload) {
            tracing::error!(error = %e, "journal append failed; request refused, state unchanged");
            return Err(e);
        }
        let mut events = Vec::new();
        for c in cmds {
            state::apply(&mut self.state, c, &mut events);
        }
        self.on_events(&events);
        Ok(())
    }

    fn on_events(&mut self, _events: &[Event]) {
        // Waiters (ask_peer, idle-wait, cockpit subscriptions) hook in here.
    }

    fn recount_live(&mut self) {
        let mut shims: HashMap<String, usize> = HashMap::new();
        for c in self.conns.values() {
            if let Some(s) = &c.session {
                *shims.entry(s.clone()).or_default() += 1;
            }
        }
        self.live.shims = shims;
    }

    fn shim_count(&self) -> usize {
        self.conns.values().filter(|c| c.role == Role::Shim).count()
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if self.shim_count() > 0 {
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
        if now.duration_since(self.last_seat_check) >= Duration::from_secs(5) {
            self.last_seat_check = now;
            let mut alive = HashMap::new();
            for a in self.state.agents.values() {
                if let Some(seat) = &a.seat {
                    if !self.live.shims.contains_key(&a.session_id) {
                        alive.insert(seat.key(), crate::procinfo::seat_alive(seat));
                    }
                }
            }
            self.live.seat_alive = alive;
        }
        if now.duration_since(self.last_retention) >= Duration::from_secs(60) {
            self.last_retention = now;
            let cutoff = now_ms().saturating_sub(self.config.retention_ms);
            let expired: Vec<String> = self
                .state
                .messages
                .values()
                .filter(|m| m.enqueued_ms < cutoff)
                .filter(|m| {
                    !self
                        .state
                        .mailboxes
                        .get(&m.to)
                        .is_some_and(|q| q.contains(&m.message_id))
                })
                .map(|m| m.message_id.clone())
                .collect();
            if !expired.is_empty() {
                let cmds = vec![Command::PruneMessages {
                    message_ids: expired,
                }];
                if self.commit(&cmds).is_ok() {
                    let _ = self.journal.sync();
                }
            }
        }
    }

    fn snapshot(&mut self) -> io::Result<()> {
        let bytes = serde_json::to_vec(&self.state).map_err(io::Error::other)?;
        self.journal.snapshot(&bytes)?;
        tracing::info!(
            bytes = bytes.len(),
            seq = self.journal.last_seq(),
            "snapshot written"
        );
        Ok(())
    }

    fn ctl(&mut self, ctl: Ctl) -> (Reply, bool) {
        let ok = |value: Value| Reply::Ok { value };
        match ctl {
            Ctl::Ping => (
                ok(
                    json!({"pong": true, "version": oxtail_proto::VERSION, "pid": std::process::id()}),
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
                        "version": oxtail_proto::VERSION,
                        "uptime_s": self.started.elapsed().as_secs(),
                        "agents": self.state.agents.len(),
                        "queued_messages": self.state.total_queued(),
                        "retained_messages": self.state.messages.len(),
                        "journal_bytes": self.journal.disk_bytes(),
                        "journal_last_seq": self.journal.last_seq(),
                        "connections": self.conns.len(),
                        "connections_by_role": by_role,
                        "foreground": self.config.idle_exit.is_none(),
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
                            "purpose": a.purpose,
                            "project_root": a.scope.project_root,
                            "worktree": a.scope.worktree,
                            "branch": a.scope.branch,
                            "seat": a.seat,
                            "connected_shims": self.live.shims.get(&a.session_id).copied().unwrap_or(0),
                            "queued": self.state.queued(&a.session_id),
                            "resolved_by": a.resolved_by,
                        })
                    })
                    .collect();
                (ok(json!({"sessions": rows})), false)
            }
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
                            .map(|m| tools::message_json(&self.state, m))
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
            Ctl::Dump => (
                ok(json!({
                    "last_seq": self.journal.last_seq(),
                    "state": serde_json::to_value(&self.state).unwrap_or(Value::Null),
                })),
                false,
            ),
        }
    }
}

async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> Result<ClientFrame, FrameError> {
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = frame::check_len(prefix, MAX_CLIENT_FRAME)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    frame::decode(&payload)
}

fn peer_uid_ok(stream: &UnixStream) -> bool {
    match stream.peer_cred() {
        Ok(cred) => cred.uid() == paths::uid(),
        Err(_) => false,
    }
}

async fn serve_conn(stream: UnixStream, conn: u64, actor: std_mpsc::Sender<ToActor>) {
    if !peer_uid_ok(&stream) {
        tracing::warn!(conn, "refused a connection from another user");
        return;
    }
    let (mut rd, mut wr) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ServerFrame>();
    let writer = tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            if wr.write_all(&frame::encode(&f)).await.is_err() {
                break;
            }
        }
    });
    // Handshake, bounded so a silent client cannot hold a task forever.
    let hello = match tokio::time::timeout(Duration::from_secs(10), read_frame(&mut rd)).await {
        Ok(Ok(ClientFrame::Hello(h))) => h,
        Ok(Ok(_)) => {
            tracing::warn!(conn, "first frame was not a hello; closing");
            return;
        }
        Ok(Err(e)) => {
            if !matches!(e, FrameError::Closed) {
                tracing::warn!(conn, error = %e, "bad handshake frame; closing");
            }
            return;
        }
        Err(_) => return,
    };
    if hello.protocol_major != oxtail_proto::PROTOCOL_MAJOR {
        let reason = format!(
            "protocol mismatch: this daemon is oxtail {} (protocol {}.{}), the client is oxtail {} (protocol {}.{}); restart the older side",
            oxtail_proto::VERSION,
            oxtail_proto::PROTOCOL_MAJOR,
            oxtail_proto::PROTOCOL_MINOR,
            hello.version,
            hello.protocol_major,
            hello.protocol_minor
        );
        let _ = out_tx.send(ServerFrame::Refused { reason });
        drop(out_tx);
        let _ = writer.await;
        return;
    }
    let _ = out_tx.send(ServerFrame::Welcome(Welcome {
        protocol_major: oxtail_proto::PROTOCOL_MAJOR,
        protocol_minor: oxtail_proto::PROTOCOL_MINOR,
        version: oxtail_proto::VERSION.to_string(),
        daemon_pid: std::process::id(),
    }));
    if actor
        .send(ToActor::Open {
            conn,
            role: hello.role,
        })
        .is_err()
    {
        return;
    }
    loop {
        let frame = match read_frame(&mut rd).await {
            Ok(f) => f,
            Err(FrameError::Closed) => break,
            Err(e) => {
                tracing::error!(conn, error = %e, "dropping connection after a bad frame");
                break;
            }
        };
        match frame {
            ClientFrame::Hello(_) => {
                tracing::warn!(conn, "second hello ignored");
            }
            ClientFrame::Cancel { .. } => {}
            ClientFrame::Request { id, request } => {
                dispatch(conn, id, request, &actor, &out_tx).await;
            }
        }
    }
    let _ = actor.send(ToActor::Close { conn });
    drop(out_tx);
    let _ = writer.await;
}

async fn dispatch(
    conn: u64,
    id: u64,
    request: Request,
    actor: &std_mpsc::Sender<ToActor>,
    out: &mpsc::UnboundedSender<ServerFrame>,
) {
    let respond = |reply: Reply| {
        let _ = out.send(ServerFrame::Reply { id, reply });
    };
    match request {
        Request::ShimHello(info) => {
            let caller = tokio::task::spawn_blocking(move || caller_from(info))
                .await
                .unwrap_or_default();
            let _ = actor.send(ToActor::ShimHello {
                conn,
                caller: Box::new(caller),
            });
            respond(Reply::Ok {
                value: json!({"ok": true}),
            });
        }
        Request::ClientInfo(ci) => {
            let _ = actor.send(ToActor::ClientInfo {
                conn,
                name: ci.name,
            });
            respond(Reply::Ok {
                value: json!({"ok": true}),
            });
        }
        Request::Tool { name, args, meta } => {
            let requested_scope = match args.get("project_root").and_then(Value::as_str) {
                Some(root) => {
                    let root = PathBuf::from(root);
                    let per_wt = std::env::var("OXTAIL_SCOPE").is_ok_and(|v| v == "worktree");
                    tokio::task::spawn_blocking(move || crate::scope::scope_of(&root, per_wt).ok())
                        .await
                        .ok()
                        .flatten()
                }
                None => None,
            };
            let (tx, rx) = oneshot::channel();
            if actor
                .send(ToActor::Tool {
                    conn,
                    name,
                    args,
                    meta,
                    requested_scope,
                    reply: tx,
                })
                .is_err()
            {
                respond(Reply::error(
                    error_code::UNAVAILABLE,
                    "the daemon is shutting down",
                ));
                return;
            }
            let out = out.clone();
            tokio::spawn(async move {
                let reply = rx.await.unwrap_or_else(|_| {
                    Reply::error(error_code::UNAVAILABLE, "the daemon is shutting down")
                });
                let _ = out.send(ServerFrame::Reply { id, reply });
            });
        }
        Request::Hook(_) | Request::IdleWait(_) => {
            respond(Reply::error(
                error_code::UNSUPPORTED,
                "this daemon does not handle hooks yet",
            ));
        }
        Request::Ctl(ctl) => {
            let (tx, rx) = oneshot::channel();
            if actor.send(ToActor::Ctl { ctl, reply: tx }).is_err() {
                respond(Reply::error(
                    error_code::UNAVAILABLE,
                    "the daemon is shutting down",
                ));
                return;
            }
            let out = out.clone();
            tokio::spawn(async move {
                let reply = rx.await.unwrap_or_else(|_| {
                    Reply::error(error_code::UNAVAILABLE, "the daemon is shutting down")
                });
                let _ = out.send(ServerFrame::Reply { id, reply });
            });
        }
    }
}

/// Builds a [`Caller`] from a shim's self-description: the seat is its
/// parent process (the client that launched it), the scope comes from its
/// working directory.
fn caller_from(info: oxtail_proto::ShimInfo) -> Caller {
    let per_wt = std::env::var("OXTAIL_SCOPE").is_ok_and(|v| v == "worktree");
    let scope = crate::scope::scope_of(&info.cwd, per_wt).unwrap_or_else(|_| Scope {
        project: format!("dir:{}", info.cwd.display()),
        project_root: info.cwd.display().to_string(),
        worktree: info.cwd.display().to_string(),
        branch: None,
    });
    Caller {
        seat: crate::procinfo::seat_of(info.ppid),
        scope,
        requested_scope: None,
        cwd: info.cwd.display().to_string(),
        env: info.env,
        client_name: None,
    }
}
