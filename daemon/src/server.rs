//! The daemon's I/O layer: the socket server and the core actor.
//!
//! * One **actor thread** ([`crate::actor`]) owns the [`State`], the journal
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
use std::sync::mpsc as std_mpsc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// How the daemon was started.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Under a service manager: never idle out.
    pub foreground: bool,
}

pub use crate::actor::now_ms;

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
    let config = Config::from_env(opts.foreground);
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
        // SIGTERM (systemctl stop, launchctl) and SIGINT: snapshot and exit.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        loop {
            tokio::select! {
                _ = term.recv() => {
                    tracing::info!("SIGTERM: snapshotting and exiting");
                    let _ = tx.send(ToActor::Terminate);
                }
                _ = int.recv() => {
                    tracing::info!("SIGINT: snapshotting and exiting");
                    let _ = tx.send(ToActor::Terminate);
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
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    if let Some(parent) = path.parent() {
        // Create (0700) only what is missing; never change the mode of a
        // directory someone else made (OXTAIL_SOCKET may point anywhere).
        if !parent.exists() {
            paths::ensure_private_dir(parent)?;
        }
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
            std::fs::remove_file(path)?;
            tracing::info!(path = %path.display(), "removed a stale socket");
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
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
    let (out_tx, mut out_rx) = Outbox::new();
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
        .is_err()
    {
        return;
    }
    let mut shim: Option<ShimFacts> = None;
    let overflow = out_tx.overflow.clone();
    loop {
        let read = tokio::select! {
            r = read_frame(&mut rd) => r,
            _ = overflow.notified() => {
                tracing::warn!(conn, limit = OUTBOX_FRAMES, "closing a connection that does not read its replies");
                break;
            }
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
                let _ = actor.send(ToActor::Cancel { conn, wire_id: id });
            }
            ClientFrame::Ack {
                handover,
                delivered,
            } => {
                let _ = actor.send(ToActor::Ack {
                    conn,
                    handover,
                    delivered,
                });
            }
            ClientFrame::Request { id, request } => {
                dispatch(conn, id, request, &actor, &out_tx, &mut shim).await;
            }
        }
    }
    let _ = actor.send(ToActor::Close { conn });
    drop(out_tx);
    finish_writer(writer).await;
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

/// Frames a connection may have queued for writing before it is closed as
/// not reading its replies (backpressure: a stuck client cannot grow the
/// daemon without bound).
pub const OUTBOX_FRAMES: usize = 1024;

/// The sending side of one connection's outgoing frames: bounded; a send
/// that finds it full signals `overflow`, and the connection is closed.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<ServerFrame>,
    overflow: std::sync::Arc<tokio::sync::Notify>,
}

impl Outbox {
    fn new() -> (Outbox, mpsc::Receiver<ServerFrame>) {
        let (tx, rx) = mpsc::channel(OUTBOX_FRAMES);
        (
            Outbox {
                tx,
                overflow: std::sync::Arc::new(tokio::sync::Notify::new()),
            },
            rx,
        )
    }

    /// Queues `frame`; false when the connection is gone or overflowing.
    pub fn send(&self, frame: ServerFrame) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
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
        let mangled: String = info
            .cwd
            .display()
            .to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        ShimFacts {
            started_s,
            transcript_dir: home.map(|h| h.join(".claude/projects").join(mangled)),
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
        let r = crate::identity::birth_time_candidate(dir, self.started_s);
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
    actor: &std_mpsc::Sender<ToActor>,
    out: &Outbox,
    shim: &mut Option<ShimFacts>,
) {
    let respond = |reply: Reply| {
        let _ = out.send(ServerFrame::Reply { id, reply });
    };
    match request {
        Request::ShimHello(info) => {
            let (caller, facts) = tokio::task::spawn_blocking(move || {
                (caller_from(info.clone()), ShimFacts::from(&info))
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
                )
            });
            *shim = Some(facts);
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
            let is_read = name == "read_session";
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
            let requested_scope =
                scope_of_root(args.get("project_root").and_then(Value::as_str)).await;
            let (tx, rx) = oneshot::channel();
            let sent = actor.send(ToActor::Tool {
                conn,
                wire_id: id,
                name,
                args,
                meta,
                requested_scope,
                birth_time,
                reply: tx,
            });
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
                                crate::readsession::execute(&value["plan"], home.as_deref())
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
                move || hook_context(&call)
            })
            .await
            .unwrap_or((None, None));
            ask_actor(actor, id, out, |reply| ToActor::Hook {
                conn,
                call: Box::new(call),
                seat,
                scope,
                reply,
            });
        }
        Request::IdleWait(wait) => {
            ask_actor(actor, id, out, |reply| ToActor::IdleWait {
                conn,
                wait,
                reply,
            });
        }
        Request::Ctl(ctl) => {
            let root = match &ctl {
                Ctl::Status { project_root, .. }
                | Ctl::Subscribe { project_root, .. }
                | Ctl::Nudge { project_root, .. }
                | Ctl::OperatorMessage { project_root, .. } => project_root.clone(),
                _ => None,
            };
            let requested_scope = scope_of_root(root.as_deref()).await;
            ask_actor(actor, id, out, |reply| ToActor::Ctl {
                conn,
                wire_id: id,
                ctl,
                requested_scope,
                out: out.clone(),
                reply,
            });
        }
    }
}

/// Hands a request to the actor (built by `make` around the reply sender)
/// and forwards its eventual answer as the reply to `id`; answers
/// `unavailable` when the actor is gone (shutting down).
fn ask_actor(
    actor: &std_mpsc::Sender<ToActor>,
    id: u64,
    out: &Outbox,
    make: impl FnOnce(oneshot::Sender<Reply>) -> ToActor,
) {
    let (tx, rx) = oneshot::channel();
    if actor.send(make(tx)).is_err() {
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

fn per_worktree() -> bool {
    std::env::var("OXTAIL_SCOPE").is_ok_and(|v| v == "worktree")
}

/// The scope of a `project_root` argument, looked up off the actor.
async fn scope_of_root(root: Option<&str>) -> Option<Scope> {
    let root = PathBuf::from(root?);
    tokio::task::spawn_blocking(move || crate::scope::scope_of(&root, per_worktree()).ok())
        .await
        .ok()
        .flatten()
}

/// A hook's seat (`CLAUDE_PID` for Claude Code hooks, else the hook's parent:
/// Codex 0.169 runs hooks as its direct children) and the scope of the
/// payload's `cwd`.
fn hook_context(call: &oxtail_proto::HookCall) -> (Option<state::Seat>, Option<Scope>) {
    let pid = call
        .env
        .get("CLAUDE_PID")
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(call.ppid);
    let seat = crate::procinfo::seat_of(pid);
    let scope = call
        .payload
        .get("cwd")
        .and_then(Value::as_str)
        .and_then(|c| crate::scope::scope_of(Path::new(c), per_worktree()).ok());
    (seat, scope)
}

/// Builds a [`Caller`] from a shim's self-description: the seat is its
/// parent process (the client that launched it), the scope comes from its
/// working directory.
fn caller_from(info: oxtail_proto::ShimInfo) -> Caller {
    let scope = crate::scope::scope_of(&info.cwd, per_worktree()).unwrap_or_else(|_| Scope {
        project: format!("dir:{}", info.cwd.display()),
        project_root: info.cwd.display().to_string(),
        worktree: info.cwd.display().to_string(),
        branch: None,
    });
    Caller {
        seat: crate::procinfo::seat_of(info.ppid),
        scope,
        requested_scope: None,
        shim_pid: info.pid,
        cwd: info.cwd.display().to_string(),
        env: info.env,
        client_name: None,
        birth_time: None,
    }
}
