//! The daemon's I/O layer: the socket server and the core actor.
//!
//! * One **actor thread** (`crate::actor`) owns the [`State`], the journal
//!   and the ephemeral facts, and does group commit.
//! * **Connection tasks** (tokio) read frames, check the peer's uid and the
//!   handshake, do the slow lookups (process start time, git scope) off the
//!   actor, forward requests and write replies. A bad frame closes only its
//!   own connection.

use crate::actor::{Actor, ToActor};
use crate::config::Config;
use crate::identity::Caller;
use crate::state::{self, Command, Scope, State};
use oxtail_journal::{Journal, Options as JournalOptions, Replay};
use oxtail_proto::frame::{self, FrameError, MAX_CLIENT_FRAME};
use oxtail_proto::{error_code, paths, ClientFrame, Ctl, Reply, Request, ServerFrame, Welcome};
use serde_json::{json, Value};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// How often the daemon checks whether its log needs rotating.
const LOG_ROTATE_EVERY: Duration = Duration::from_secs(60);

/// How the daemon was started.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Under a service manager: never idle out.
    pub foreground: bool,
}

pub use crate::clock::now_ms;
use crate::outbox::{write_frames, Outbox};
pub use crate::outbox::{MAX_IN_FLIGHT, OUTBOX_BYTES, OUTBOX_CLOSE_BYTES};

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
            if opts.foreground {
                // Under a service manager this is a failure worth retrying
                // (the on-demand daemon may be on its way out).
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "another oxtail daemon holds {}; stop it (`oxtail ctl shutdown`) and the service will take over",
                        paths::lock_path().display()
                    ),
                ));
            }
            tracing::info!(
                "another daemon holds {}; exiting",
                paths::lock_path().display()
            );
            return Ok(());
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    match paths::rotate_own_log() {
        Ok(true) => tracing::info!("daemon log rotated (daemon.log.1 holds the previous one)"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not rotate the daemon log"),
    }
    let config = Config::from_env(opts.foreground);
    let edge = Edge {
        scope_worktree: config.scope_worktree,
        tmux_timeout: config.tmux_timeout,
    };
    let (state, journal) = open_state(&paths::journal_dir(), &config)?;
    let socket = paths::socket_path();
    let listener = bind_socket(&socket)?;
    tracing::info!(
        pid = std::process::id(),
        version = %oxtail_proto::version(),
        socket = %socket.display(),
        agents = state.agents.len(),
        queued = state.total_queued(),
        "daemon started"
    );
    let (tx, rx) = std_mpsc::sync_channel::<ToActor>(CORE_QUEUE);
    let tx = CoreTx(tx);
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel::<i32>();
    let probe_tx = tx.0.clone();
    let probe = crate::probe::Probe::spawn(move |report| {
        probe_tx.send(ToActor::Probe(Box::new(report))).is_ok()
    })?;
    let scope_worktree = config.scope_worktree;
    let mut actor = Actor::new(state, journal, config, exit_tx).with_probe(probe);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    actor.set_codex(crate::codex_app::CodexApp::spawn(
        rt.handle(),
        tx.clone(),
        scope_worktree,
    ));
    if let Some(cfg) = crate::federation::FedConfig::from_env() {
        // The one network connection a daemon makes, and only when asked
        // (SPEC §2): outbound, to the configured NATS server.
        if let Some(w) = crate::federation::insecure_warning(&cfg.url, cfg.creds.is_some()) {
            tracing::warn!("{w}");
        }
        let (url, creds) = (cfg.url.clone(), cfg.creds.is_some());
        actor.set_federation(
            crate::federation::Federation::spawn(rt.handle(), tx.clone(), cfg),
            &url,
            creds,
        );
    }
    std::thread::Builder::new()
        .name("oxtail-core".into())
        .spawn(move || actor.run(rx))?;
    let code = rt.block_on(async move {
        let listener = UnixListener::from_std(listener)?;
        let tick_tx = tx.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_secs(1));
            loop {
                iv.tick().await;
                // A full queue skips a tick: the actor is busy anyway.
                if let Err(std_mpsc::TrySendError::Disconnected(_)) =
                    tick_tx.0.try_send(ToActor::Tick)
                {
                    break;
                }
            }
        });
        // The log rotates at 8 MiB however the daemon was started (launchd
        // opens it for us): at start (below, in `run`), then every minute.
        tokio::spawn(async move {
            let mut iv = tokio::time::interval_at(
                tokio::time::Instant::now() + LOG_ROTATE_EVERY,
                LOG_ROTATE_EVERY,
            );
            loop {
                iv.tick().await;
                match tokio::task::spawn_blocking(paths::rotate_own_log).await {
                    Ok(Ok(true)) => {
                        tracing::info!("daemon log rotated (daemon.log.1 holds the previous one)")
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not rotate the daemon log"),
                    _ => {}
                }
            }
        });
        let mut next_conn = 1u64;
        // SIGTERM (systemctl stop, launchctl) and SIGINT: snapshot and exit.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        loop {
            tokio::select! {
                _ = term.recv() => {
                    tracing::info!("SIGTERM: snapshotting and exiting");
                    let _ = tx.send(ToActor::Terminate).await;
                }
                _ = int.recv() => {
                    tracing::info!("SIGINT: snapshotting and exiting");
                    let _ = tx.send(ToActor::Terminate).await;
                }
                code = exit_rx.recv() => {
                    // Let connection writers flush the last replies.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Ok::<i32, io::Error>(code.unwrap_or(0));
                }
                acc = listener.accept() => match acc {
                    Ok((stream, _)) => {
                        let conn = next_conn;
                        next_conn += 1;
                        tokio::spawn(serve_conn(stream, conn, tx.clone(), edge));
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
/// Nothing is thrown away: damaged bytes, a snapshot whose state does not
/// decode, and a record whose checksum verifies but whose contents do not
/// decode as oxtail commands (a bug or a damaged write) are all moved to
/// `<journal dir>/quarantine/` by the journal, logged with the reason, and
/// every other record is still applied (see `oxtail_journal`'s recovery
/// rules). The daemon starts either way.
///
/// # Errors
/// When the journal dir cannot be opened or repaired (I/O), is locked by
/// another process, or holds files a newer oxtail wrote.
pub fn open_state(dir: &Path, config: &Config) -> io::Result<(State, Journal)> {
    let mut state = State::default();
    let opts = JournalOptions {
        fail_appends_after_bytes: config.fault_journal_full_after,
        ..JournalOptions::default()
    };
    let mut replay = replayer(&mut state);
    let (journal, report) = Journal::open(dir, opts, &mut replay)?;
    drop(replay);
    tracing::info!(
        snapshot_seq = ?report.snapshot_seq,
        records = report.records_replayed,
        last_seq = report.last_seq,
        quarantined = report.quarantined.len(),
        missing = %report.missing.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        truncated = ?report.truncated.as_ref().map(|t| format!("{} at {}: {} bytes ({})", t.segment.display(), t.offset, t.bytes_cut, t.reason)),
        "journal recovered"
    );
    if report.found_damage() {
        tracing::warn!(
            quarantine = %dir.join(oxtail_journal::QUARANTINE_DIR).display(),
            "the journal was damaged: what could not be read was set aside (details above); \
             every other record was recovered. `oxtail ctl verify` checks the journal offline"
        );
    }
    Ok((state, journal))
}

/// Checks the journal in `dir` offline, without changing it: every
/// snapshot and record is decoded and applied to a scratch state exactly as
/// [`open_state`] would, and the report says what a daemon start would set
/// aside, cut and find missing.
///
/// # Errors
/// As [`oxtail_journal::verify`]: a missing dir (`NotFound`), files a newer
/// oxtail wrote, I/O errors.
pub fn verify_state(dir: &Path) -> io::Result<oxtail_journal::RecoveryReport> {
    let mut state = State::default();
    let mut replay = replayer(&mut state);
    oxtail_journal::verify(dir, &mut replay)
}

/// The replay callback shared by [`open_state`] and [`verify_state`]: a
/// snapshot replaces `state`, a record's commands are applied to it. What
/// does not decode is [`oxtail_journal::Rejected`] (set aside), never
/// half-applied: a record is decoded whole before any command is applied.
fn replayer(state: &mut State) -> impl FnMut(Replay<'_>) -> io::Result<()> + '_ {
    let mut events = Vec::new();
    move |r| {
        match r {
            Replay::Snapshot { bytes, .. } => {
                *state = crate::codec::decode_snapshot(bytes).map_err(|e| {
                    oxtail_journal::Rejected(format!("snapshot state is not oxtail state: {e}"))
                })?;
            }
            Replay::Record { payload, .. } => {
                let cmds: Vec<Command> = crate::codec::decode_record(payload).map_err(|e| {
                    oxtail_journal::Rejected(format!("not a list of oxtail commands: {e}"))
                })?;
                for c in cmds {
                    state::apply_owned(state, c, &mut events);
                }
                events.clear();
            }
        }
        Ok(())
    }
}

/// Binds the daemon socket at `path`: creates a missing parent (0700),
/// replaces only a stale socket of ours, and refuses a parent directory that
/// another user owns or that group or others may write to (issue 9: another
/// local user pre-creating `/tmp/oxtail-<uid>/` must not get our clients).
fn bind_socket(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Create (0700) only what is missing; never change the mode of a
    // directory someone else made (OXTAIL_SOCKET may point anywhere).
    if !parent.exists() {
        paths::ensure_private_dir(parent)?;
    }
    // We hold the lock, so a socket of ours here is stale. Anything else is
    // not ours to remove.
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket; refusing to replace it (choose another OXTAIL_SOCKET)", path.display()),
            ));
        }
        Ok(m) if m.uid() != paths::uid() => {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is a socket of another user (uid {}); refusing to replace it",
                    path.display(),
                    m.uid()
                ),
            ));
        }
        Ok(_) => {
            paths::check_socket_dir(parent)?;
            std::fs::remove_file(path)?;
            tracing::info!(path = %path.display(), "removed a stale socket");
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    paths::check_socket_dir(parent)?;
    let l = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

async fn read_frame(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<ClientFrame, FrameError> {
    frame::read_async(r, MAX_CLIENT_FRAME).await
}

fn peer_uid_ok(stream: &UnixStream) -> bool {
    match stream.peer_cred() {
        Ok(cred) => cred.uid() == paths::uid(),
        Err(_) => false,
    }
}

/// Capacity of the queue into the core (actor) thread, in messages. A
/// connection task that finds it full waits (asynchronously) for room, so a
/// burst of requests slows its senders down instead of growing the daemon.
pub const CORE_QUEUE: usize = 4096;

/// The sending side of the queue into the actor thread: bounded
/// ([`CORE_QUEUE`]); [`CoreTx::send`] waits for room without blocking a
/// runtime thread.
#[derive(Clone)]
pub struct CoreTx(std_mpsc::SyncSender<ToActor>);

impl CoreTx {
    /// Queues `msg` for the actor, waiting while the queue is full.
    ///
    /// # Errors
    /// When the actor is gone (the daemon is shutting down).
    pub async fn send(&self, mut msg: ToActor) -> Result<(), ()> {
        let mut pause = Duration::from_micros(200);
        loop {
            match self.0.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(std_mpsc::TrySendError::Disconnected(_)) => return Err(()),
                Err(std_mpsc::TrySendError::Full(m)) => {
                    msg = m;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
            }
        }
    }
}

async fn serve_conn(stream: UnixStream, conn: u64, actor: CoreTx, edge: Edge) {
    if !peer_uid_ok(&stream) {
        tracing::warn!(conn, "refused a connection from another user");
        return;
    }
    let (mut rd, wr) = stream.into_split();
    let (out_tx, out_rx) = Outbox::new();
    let writer = tokio::spawn(write_frames(wr, out_rx, out_tx.shared.clone()));
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
            oxtail_proto::version(),
            oxtail_proto::PROTOCOL_MAJOR,
            oxtail_proto::PROTOCOL_MINOR,
            hello.version,
            hello.protocol_major,
            hello.protocol_minor
        );
        let _ = out_tx.send(ServerFrame::Refused { reason });
        drop(out_tx);
        finish_writer(writer).await;
        return;
    }
    let _ = out_tx.send(ServerFrame::Welcome(Welcome {
        protocol_major: oxtail_proto::PROTOCOL_MAJOR,
        protocol_minor: oxtail_proto::PROTOCOL_MINOR,
        version: oxtail_proto::version(),
        daemon_pid: std::process::id(),
    }));
    if actor
        .send(ToActor::Open {
            conn,
            role: hello.role,
            confirms: hello.protocol_minor >= oxtail_proto::MINOR_CONFIRMS_HANDOVER,
        })
        .await
        .is_err()
    {
        return;
    }
    let mut shim: Option<ShimFacts> = None;
    let shared = out_tx.shared.clone();
    let mut stalled_logged = false;
    loop {
        // Backpressure: read nothing more while this connection's replies
        // pile up unread.
        if !shared.wait_for_room(conn, &mut stalled_logged).await {
            break;
        }
        let read = tokio::select! {
            r = read_frame(&mut rd) => r,
            _ = shared.overflow.notified() => break,
        };
        let frame = match read {
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
            ClientFrame::Cancel { id } => {
                let _ = actor.send(ToActor::Cancel { conn, wire_id: id }).await;
            }
            ClientFrame::Ack {
                handover,
                delivered,
            } => {
                let _ = actor
                    .send(ToActor::Ack {
                        conn,
                        handover,
                        delivered,
                    })
                    .await;
            }
            ClientFrame::Request { id, request } => {
                shared.in_flight.fetch_add(1, Ordering::SeqCst);
                dispatch(conn, id, request, &actor, &out_tx, &mut shim, edge).await;
            }
        }
    }
    if shared.overflowed.load(Ordering::SeqCst) {
        tracing::warn!(
            conn,
            limit = OUTBOX_CLOSE_BYTES,
            "closing a connection that does not read its replies"
        );
    }
    let _ = actor.send(ToActor::Close { conn }).await;
    let sent = shared.written.load(Ordering::Relaxed);
    drop(out_tx);
    finish_writer(writer).await;
    if sent >= GIVE_BACK_AFTER_BYTES || stalled_logged {
        give_memory_back();
    }
}

/// A connection that wrote at least this many bytes (16 MiB), or that was
/// held back for not reading, asks the allocator to return its free memory
/// to the system when it closes.
const GIVE_BACK_AFTER_BYTES: u64 = 16 << 20;

/// Returns freed heap memory to the operating system (glibc keeps it in
/// its arenas otherwise, so a burst's peak would stay the daemon's RSS).
fn give_memory_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Lets the writer flush what is queued, but never waits long on a peer
/// that stopped reading.
async fn finish_writer(writer: tokio::task::JoinHandle<()>) {
    let abort = writer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(1), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
}

/// What the connection task remembers about its shim, for the birth-time
/// identity fallback.
#[derive(Clone)]
struct ShimFacts {
    /// The shim's start time, seconds since the epoch.
    started_s: u64,
    /// Where its client writes transcripts.
    transcript_dir: Option<PathBuf>,
    /// True when the shim's environment already names its session.
    has_env_id: bool,
    /// A birth-time id once found (it never changes for a shim).
    found: Option<String>,
}

impl ShimFacts {
    fn from(info: &oxtail_proto::ShimInfo) -> ShimFacts {
        let started_s = crate::procinfo::seat_of(info.pid).map_or(0, |s| s.start_time);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        // The client's CLAUDE_CONFIG_DIR (from its hello), else the daemon's.
        let config_dir = info
            .env
            .get("CLAUDE_CONFIG_DIR")
            .cloned()
            .or_else(|| std::env::var("CLAUDE_CONFIG_DIR").ok());
        ShimFacts {
            started_s,
            transcript_dir: home.map(|h| {
                let dir = crate::transcript::claude_dir(config_dir.as_deref(), &h);
                crate::transcript::claude_project_dir(&dir, &info.cwd)
            }),
            has_env_id: info.env.contains_key("CLAUDE_CODE_SESSION_ID")
                || info.env.contains_key("CODEX_THREAD_ID"),
            found: None,
        }
    }

    /// The birth-time finding for a call (None when not needed).
    fn lookup(&mut self, meta: Option<&Value>) -> Option<Result<String, String>> {
        if self.has_env_id || crate::identity::meta_session_id(meta).is_some() {
            return None;
        }
        if let Some(id) = &self.found {
            return Some(Ok(id.clone()));
        }
        let dir = self.transcript_dir.as_ref()?;
        let r = crate::transcript::created_transcripts(dir).and_then(|files| {
            crate::identity::birth_time_pick(&files, self.started_s, &dir.display().to_string())
        });
        if let Ok(id) = &r {
            self.found = Some(id.clone());
        }
        Some(r)
    }
}

async fn dispatch(
    conn: u64,
    id: u64,
    request: Request,
    actor: &CoreTx,
    out: &Outbox,
    shim: &mut Option<ShimFacts>,
    edge: Edge,
) {
    let respond = |reply: Reply| {
        let _ = out.send(ServerFrame::Reply { id, reply });
    };
    match request {
        Request::ShimHello(info) => {
            let (caller, facts, pane) = tokio::task::spawn_blocking(move || {
                let caller = caller_from(info.clone(), edge);
                let pane = pane_of(&caller, edge).map(Box::new);
                (caller, ShimFacts::from(&info), pane)
            })
            .await
            .unwrap_or_else(|_| {
                (
                    Caller::default(),
                    ShimFacts {
                        started_s: 0,
                        transcript_dir: None,
                        has_env_id: true,
                        found: None,
                    },
                    None,
                )
            });
            *shim = Some(facts);
            let _ = actor
                .send(ToActor::ShimHello {
                    conn,
                    caller: Box::new(caller),
                    pane,
                })
                .await;
            respond(Reply::Ok {
                value: json!({"ok": true}),
            });
        }
        Request::ClientInfo(ci) => {
            // Answered by the actor, after it handled this shim's hello: a
            // shim that waits for this answer knows its agent is registered
            // (and named) before it answers `initialize`.
            ask_actor(actor, id, out, |reply| ToActor::ClientInfo {
                conn,
                name: ci.name,
                reply,
            })
            .await;
        }
        Request::Tool { name, args, meta } => {
            let is_read = name == oxtail_proto::tools::Tool::ReadSession.name();
            let birth_time = match shim.as_mut() {
                Some(f) => {
                    let mut f2 = f.clone();
                    let m = meta.clone();
                    let (r, f2) = tokio::task::spawn_blocking(move || (f2.lookup(m.as_ref()), f2))
                        .await
                        .unwrap_or((None, f.clone()));
                    *f = f2;
                    r
                }
                None => None,
            };
            let mut args = args;
            let root = args
                .get("project_root")
                .and_then(Value::as_str)
                .filter(|r| !r.trim().is_empty())
                .map(str::to_string);
            let requested_scope = scope_of_root(root.as_deref(), edge).await;
            // CONTRACT §1 and §6: the answer names the argument's real path.
            if let (Some(r), Some(_)) = (&root, &requested_scope) {
                if let Ok(real) = tokio::fs::canonicalize(r).await {
                    args["project_root"] = json!(real.to_string_lossy());
                }
            }
            let (tx, rx) = oneshot::channel();
            let sent = actor
                .send(ToActor::Tool {
                    conn,
                    wire_id: id,
                    name,
                    args,
                    meta,
                    requested_scope,
                    birth_time,
                    reply: tx,
                })
                .await;
            if sent.is_err() {
                respond(Reply::error(
                    error_code::UNAVAILABLE,
                    "the daemon is shutting down",
                ));
                return;
            }
            if is_read {
                // The actor resolved the target; read off its thread.
                let out = out.clone();
                tokio::spawn(async move {
                    let reply = match rx.await {
                        Ok(Reply::Ok { value }) if value.get("plan").is_some() => {
                            let home = std::env::var_os("HOME").map(PathBuf::from);
                            let v = tokio::task::spawn_blocking(move || {
                                match serde_json::from_value::<crate::readsession::ReadPlan>(
                                    value["plan"].clone(),
                                ) {
                                    Ok(plan) => crate::readsession::execute(&plan, home.as_deref()),
                                    Err(e) => json!({"ok": false, "error": "internal", "message": format!("read plan: {e}")}),
                                }
                            })
                            .await
                            .unwrap_or_else(|e| json!({"ok": false, "error": "internal", "message": e.to_string()}));
                            Reply::Ok { value: v }
                        }
                        Ok(other) => other,
                        Err(_) => {
                            Reply::error(error_code::UNAVAILABLE, "the daemon is shutting down")
                        }
                    };
                    let _ = out.send(ServerFrame::Reply { id, reply });
                });
                return;
            }
            forward(rx, id, out.clone());
        }
        Request::Hook(call) => {
            let (seat, scope) = tokio::task::spawn_blocking({
                let call = call.clone();
                move || hook_context(&call, edge)
            })
            .await
            .unwrap_or((None, None));
            ask_actor(actor, id, out, |reply| ToActor::Hook {
                conn,
                call: Box::new(call),
                seat,
                scope,
                reply,
            })
            .await;
        }
        Request::IdleWait(wait) => {
            ask_actor(actor, id, out, |reply| ToActor::IdleWait {
                conn,
                wait,
                reply,
            })
            .await;
        }
        Request::Ctl(ctl) => {
            let root = match &ctl {
                Ctl::Status { project_root, .. }
                | Ctl::Subscribe { project_root, .. }
                | Ctl::Nudge { project_root, .. }
                | Ctl::Interrupt { project_root, .. }
                | Ctl::OperatorMessage { project_root, .. } => project_root.clone(),
                _ => None,
            };
            let requested_scope = scope_of_root(root.as_deref(), edge).await;
            ask_actor(actor, id, out, |reply| ToActor::Ctl {
                conn,
                wire_id: id,
                ctl,
                requested_scope,
                out: out.clone(),
                reply,
            })
            .await;
        }
    }
}

/// Hands a request to the actor (built by `make` around the reply sender)
/// and forwards its eventual answer as the reply to `id`; answers
/// `unavailable` when the actor is gone (shutting down).
async fn ask_actor(
    actor: &CoreTx,
    id: u64,
    out: &Outbox,
    make: impl FnOnce(oneshot::Sender<Reply>) -> ToActor,
) {
    let (tx, rx) = oneshot::channel();
    if actor.send(make(tx)).await.is_err() {
        let _ = out.send(ServerFrame::Reply {
            id,
            reply: Reply::error(error_code::UNAVAILABLE, "the daemon is shutting down"),
        });
        return;
    }
    forward(rx, id, out.clone());
}

/// Sends the actor's eventual answer to request `id` on this connection.
fn forward(rx: oneshot::Receiver<Reply>, id: u64, out: Outbox) {
    tokio::spawn(async move {
        let reply = rx.await.unwrap_or_else(|_| {
            Reply::error(error_code::UNAVAILABLE, "the daemon is shutting down")
        });
        let _ = out.send(ServerFrame::Reply { id, reply });
    });
}

/// The settings the connection tasks' lookups need, from the daemon's
/// [`Config`] (read once at start).
#[derive(Debug, Clone, Copy)]
struct Edge {
    /// `OXTAIL_SCOPE=worktree`.
    scope_worktree: bool,
    /// The time limit of a tmux command.
    tmux_timeout: Duration,
}

/// The scope of a `project_root` argument, looked up off the actor.
async fn scope_of_root(root: Option<&str>, edge: Edge) -> Option<Scope> {
    let root = PathBuf::from(root?);
    tokio::task::spawn_blocking(move || crate::scope::scope_of(&root, edge.scope_worktree).ok())
        .await
        .ok()
        .flatten()
}

/// A hook's seat (`CLAUDE_PID` for Claude Code hooks, else the hook's parent:
/// Codex 0.169 runs hooks as its direct children) and the scope of the
/// payload's `cwd`.
fn hook_context(call: &oxtail_proto::HookCall, edge: Edge) -> (Option<state::Seat>, Option<Scope>) {
    let pid = call
        .env
        .get("CLAUDE_PID")
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(call.ppid);
    let seat = crate::procinfo::client_seat_of(pid);
    let scope = call
        .payload
        .get("cwd")
        .and_then(Value::as_str)
        .and_then(|c| crate::scope::scope_of(Path::new(c), edge.scope_worktree).ok());
    (seat, scope)
}

/// The tmux pane hosting a new shim's seat, when its environment names a
/// tmux server (`TMUX`): one `list-panes` on that server, bounded by
/// `Config::tmux_timeout`, then the process tree decides. Run off the actor, so a
/// new agent is a keys target (and named after its tmux session) from its
/// first request; a hung tmux delays only this shim's hello.
fn pane_of(caller: &Caller, edge: Edge) -> Option<crate::tmux::Pane> {
    let seat = caller.seat.as_ref()?;
    let socket = crate::tmux::socket_from_env(caller.env.get("TMUX")?)?;
    let panes = crate::tmux::list_panes(Some(&socket), edge.tmux_timeout).ok()?;
    crate::tmux::match_seat(seat.pid, &panes).cloned()
}

/// Builds a [`Caller`] from a shim's self-description: the seat is its
/// parent process (the client that launched it), the scope comes from its
/// working directory.
fn caller_from(info: oxtail_proto::ShimInfo, edge: Edge) -> Caller {
    let scope = crate::scope::scope_of(&info.cwd, edge.scope_worktree).unwrap_or_else(|_| Scope {
        project: format!("dir:{}", info.cwd.display()),
        project_root: info.cwd.display().to_string(),
        worktree: info.cwd.display().to_string(),
        branch: None,
    });
    Caller {
        seat: crate::procinfo::client_seat_of(info.ppid),
        scope,
        requested_scope: None,
        shim_pid: info.pid,
        cwd: info.cwd.display().to_string(),
        env: info.env,
        client_name: None,
        birth_time: None,
    }
}
