//! A blocking daemon client with connect-or-spawn, for the short-lived roles
//! (hooks, `oxtail ctl`, the cockpit). It costs no async runtime, which keeps a
//! hook's wall time and memory small.

use crate::frame::{self, FrameError, MAX_SERVER_FRAME};
use crate::paths;
use crate::wire::{ClientFrame, Hello, Reply, Request, Role, ServerFrame, Welcome};
use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Why no usable connection could be made.
#[derive(Debug)]
pub enum ConnectError {
    /// Nothing listens on the socket (and spawning was not allowed, or the
    /// spawned daemon did not come up before the deadline).
    NoDaemon(io::Error),
    /// The daemon refused the handshake; the sentence names both versions.
    Refused(String),
    /// The daemon accepted the connection but did not answer the handshake
    /// before the deadline (stopped or hung daemon).
    Timeout,
    /// Starting the daemon failed.
    Spawn(io::Error),
    /// The handshake failed on the wire.
    Frame(FrameError),
    /// The daemon this client started exited with an error before it
    /// listened. Holds the reason from the daemon's log (its last
    /// `oxtail: …` line, which names the cause, e.g. a journal written by
    /// a newer oxtail) and the log's path.
    DaemonFailed(String),
    /// The process listening on the socket runs as another user: it may be
    /// posing as the daemon, so nothing was sent to it.
    NotOwner {
        /// The socket.
        path: std::path::PathBuf,
        /// The listener's uid (from the socket's peer credentials).
        uid: u32,
    },
}

impl ConnectError {
    /// True when the daemon is gone or going: nothing listens, or the
    /// connection was reset or closed during the handshake (a daemon that
    /// crashed or is exiting). Worth a retry, and with spawning allowed, a
    /// new daemon.
    pub fn daemon_gone(&self) -> bool {
        match self {
            ConnectError::NoDaemon(_) | ConnectError::Frame(FrameError::Closed) => true,
            ConnectError::Frame(FrameError::Io(e)) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::NoDaemon(e) => write!(
                f,
                "no oxtail daemon at {} ({e})",
                paths::socket_path().display()
            ),
            ConnectError::Refused(r) => write!(f, "the daemon refused the connection: {r}"),
            ConnectError::Timeout => write!(f, "the daemon did not answer in time"),
            ConnectError::Spawn(e) => write!(f, "could not start `oxtail daemon`: {e}"),
            ConnectError::Frame(e) => write!(f, "handshake failed: {e}"),
            ConnectError::DaemonFailed(why) => {
                write!(f, "the oxtail daemon failed to start: {why}")
            }
            ConnectError::NotOwner { path, uid } => write!(
                f,
                "refusing to talk to {}: the process listening there runs as uid {uid}, not as you (uid {}); another user may be posing as the oxtail daemon, so nothing was sent (remove that socket or its directory, or set OXTAIL_SOCKET)",
                path.display(),
                paths::uid()
            ),
        }
    }
}

impl std::error::Error for ConnectError {}

/// A connected, handshaken blocking client.
pub struct Client {
    stream: UnixStream,
    next_id: u64,
    /// The daemon's handshake answer.
    pub welcome: Welcome,
}

impl Client {
    /// Sends one request and waits for its reply (at most the stream's read
    /// timeout, see [`Client::set_timeout`]).
    ///
    /// # Errors
    /// [`FrameError`] on socket errors, timeouts (as `Io` with kind
    /// `WouldBlock`/`TimedOut`), or a malformed reply.
    pub fn call(&mut self, request: Request) -> Result<Reply, FrameError> {
        let id = self.next_id;
        self.next_id += 1;
        frame::write_blocking(&mut self.stream, &ClientFrame::Request { id, request })?;
        loop {
            match frame::read_blocking::<ServerFrame>(&mut self.stream, MAX_SERVER_FRAME)? {
                ServerFrame::Reply { id: rid, reply } if rid == id => return Ok(reply),
                // Events and stale replies are not for this call.
                _ => continue,
            }
        }
    }

    /// Sends one request and returns every [`ServerFrame::Event`] payload to
    /// `on_event` until the reply arrives.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub fn call_with_events(
        &mut self,
        request: Request,
        mut on_event: impl FnMut(serde_json::Value),
    ) -> Result<Reply, FrameError> {
        let id = self.next_id;
        self.next_id += 1;
        frame::write_blocking(&mut self.stream, &ClientFrame::Request { id, request })?;
        loop {
            match frame::read_blocking::<ServerFrame>(&mut self.stream, MAX_SERVER_FRAME)? {
                ServerFrame::Reply { id: rid, reply } if rid == id => return Ok(reply),
                ServerFrame::Event { id: rid, event } if rid == id => on_event(event),
                _ => continue,
            }
        }
    }

    /// Tells the daemon what became of the mail a reply handed over with
    /// `handover` (see [`ClientFrame::Ack`]). Sends one frame; no reply.
    ///
    /// # Errors
    /// The socket write's error (the daemon then puts the mail back when it
    /// sees the connection close).
    pub fn ack(&mut self, handover: u64, delivered: bool) -> io::Result<()> {
        frame::write_blocking(
            &mut self.stream,
            &ClientFrame::Ack {
                handover,
                delivered,
            },
        )
    }

    /// Gives up the handshaken socket (for callers that continue on their
    /// own runtime, like the shim).
    pub fn into_stream(self) -> UnixStream {
        self.stream
    }

    /// Sets the read and write timeout of every later call (`None`: wait
    /// forever).
    ///
    /// # Errors
    /// Only if the socket rejects the option.
    pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(t)?;
        self.stream.set_write_timeout(t)
    }
}

/// Connects to the daemon at `socket` and handshakes, all within `timeout`.
/// Before sending anything it checks, with the socket's peer credentials,
/// that the listener runs as this process's effective uid.
///
/// # Errors
/// [`ConnectError::NoDaemon`] when nothing listens, [`ConnectError::NotOwner`]
/// when another user listens, [`ConnectError::Refused`] on a version refusal,
/// [`ConnectError::Timeout`] when the daemon does not answer the hello in
/// time.
pub fn connect_at(socket: &Path, role: Role, timeout: Duration) -> Result<Client, ConnectError> {
    let stream = UnixStream::connect(socket).map_err(ConnectError::NoDaemon)?;
    let owner = peer_uid(&stream).map_err(ConnectError::NoDaemon)?;
    if owner != paths::uid() {
        return Err(ConnectError::NotOwner {
            path: socket.to_path_buf(),
            uid: owner,
        });
    }
    handshake(stream, role, timeout)
}

/// The effective uid of the process at the other end of `stream` (for a
/// connected client: the process that listens).
///
/// # Errors
/// When the socket does not report peer credentials.
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(cred.uid)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let mut uid: libc::uid_t = 0;
        let mut gid: libc::gid_t = 0;
        // SAFETY: getpeereid writes two integers we own.
        if unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(uid)
    }
}

fn handshake(
    mut stream: UnixStream,
    role: Role,
    timeout: Duration,
) -> Result<Client, ConnectError> {
    let t = Some(timeout.max(Duration::from_millis(1)));
    stream.set_read_timeout(t).map_err(ConnectError::NoDaemon)?;
    stream
        .set_write_timeout(t)
        .map_err(ConnectError::NoDaemon)?;
    let timed_out = |e: &FrameError| matches!(e, FrameError::Io(io) if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut));
    frame::write_blocking(&mut stream, &ClientFrame::Hello(Hello::new(role))).map_err(|e| {
        let fe = FrameError::Io(e);
        if timed_out(&fe) {
            ConnectError::Timeout
        } else {
            ConnectError::Frame(fe)
        }
    })?;
    match frame::read_blocking::<ServerFrame>(&mut stream, MAX_SERVER_FRAME) {
        Ok(ServerFrame::Welcome(welcome)) => Ok(Client {
            stream,
            next_id: 1,
            welcome,
        }),
        Ok(ServerFrame::Refused { reason }) => Err(ConnectError::Refused(reason)),
        Ok(other) => Err(ConnectError::Refused(format!(
            "unexpected handshake answer: {other:?}"
        ))),
        Err(e) if timed_out(&e) => Err(ConnectError::Timeout),
        Err(e) => Err(ConnectError::Frame(e)),
    }
}

/// Connects to the daemon at [`paths::socket_path`]; when none answers and
/// `spawn` is true, starts `oxtail daemon` detached and retries until
/// `timeout` has passed (10 ms, growing to 50 ms, between tries).
///
/// When the socket's directory exists but a daemon would refuse it
/// ([`paths::check_socket_dir`]), no daemon is started and the error says
/// why.
///
/// Right after a crash the socket file may be left with nobody listening,
/// or a dying daemon may reset the connection during the handshake: both
/// count as "no daemon" ([`ConnectError::daemon_gone`]), so with `spawn`
/// this retries and starts a new daemon (again every [`RESPAWN_EVERY`],
/// since one started while the old daemon still held the lock exits).
///
/// With `spawn`, a client newer than the daemon it meets (same protocol
/// major) asks it to hand over ([`crate::Ctl::Handover`]) and starts its own:
/// upgrading oxtail while agents run moves them to the new daemon without
/// losing state. (Hooks never spawn, so they never trigger this.)
///
/// # Errors
/// As [`connect_at`], plus [`ConnectError::Spawn`], and
/// [`ConnectError::DaemonFailed`] with the daemon's own reason when the
/// daemon it started exits with an error instead of listening.
pub fn connect_or_spawn(
    role: Role,
    spawn: bool,
    timeout: Duration,
) -> Result<Client, ConnectError> {
    let socket = paths::socket_path();
    let deadline = Instant::now() + timeout;
    let mut last = match connect_at(&socket, role, timeout) {
        // A newer binary takes over from an older daemon (same protocol
        // major; a different major was refused in the handshake).
        Ok(c) if spawn && crate::is_newer(&crate::version(), &c.welcome.version) => {
            hand_over(c, deadline);
            ConnectError::NoDaemon(io::Error::new(io::ErrorKind::NotFound, "handed over"))
        }
        Ok(c) => return Ok(c),
        Err(e) if spawn && e.daemon_gone() => e,
        Err(e) => return Err(e),
    };
    // A daemon would refuse this socket's directory (another user's, or
    // writable by others): say why now instead of timing out.
    if let Some(dir) = socket.parent().filter(|d| d.exists()) {
        paths::check_socket_dir(dir).map_err(ConnectError::NoDaemon)?;
    }
    tracing_free_log(&format!("no daemon ({last}); starting one"));
    let (child, mut log_from) = spawn_daemon_child().map_err(ConnectError::Spawn)?;
    let mut child = Some(child);
    let mut spawned = Instant::now();
    let mut pause = Duration::from_millis(10);
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(last);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(50));
        let left = deadline.saturating_duration_since(Instant::now());
        match connect_at(&socket, role, left.max(Duration::from_millis(1))) {
            Ok(c) => break Ok(c),
            Err(e) if e.daemon_gone() => last = e,
            Err(e) => break Err(e),
        }
        // A daemon that exits 0 lost the start race to another one (or to a
        // dying one that still held the lock): keep trying. One that failed
        // says why in the log; waiting is useless.
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            child = None;
            if !status.success() {
                break Err(ConnectError::DaemonFailed(start_failure(log_from, status)));
            }
        }
        if child.is_none() && spawned.elapsed() >= RESPAWN_EVERY {
            tracing_free_log(&format!("still no daemon ({last}); starting one again"));
            let (c, from) = spawn_daemon_child().map_err(ConnectError::Spawn)?;
            child = Some(c);
            log_from = from;
            spawned = Instant::now();
        }
    };
    if let Some(mut child) = child {
        // Reap it if it exits while we live.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
    }
    outcome
}

/// The reason a daemon started by this process failed: the last
/// `oxtail: …` line it wrote to the log after byte `from` (the error
/// `oxtail daemon` prints before exiting), else the last line, else the
/// exit status; and where the full log is.
fn start_failure(from: u64, status: std::process::ExitStatus) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let log = paths::log_path();
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(&log) {
        let _ = f.seek(SeekFrom::Start(from));
        let _ = f.take(1 << 20).read_to_string(&mut text);
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("oxtail: "))
        .or(lines.last())
        .map(|l| l.strip_prefix("oxtail: ").unwrap_or(l));
    let mut why = match line {
        Some(l) => l.to_string(),
        None => format!("it exited with {status} and logged nothing"),
    };
    if why.chars().count() > 600 {
        why = why.chars().take(600).collect::<String>() + "…";
    }
    format!("{why} (daemon log: {})", log.display())
}

/// While connecting with spawning allowed finds no daemon, a new one is
/// started this often (a daemon started while a dying one still holds the
/// lock exits at once).
pub const RESPAWN_EVERY: Duration = Duration::from_millis(500);

/// Asks an older daemon to hand over and waits (until `deadline`, at most
/// 5 s) for it to exit (its pid gone).
fn hand_over(mut c: Client, deadline: Instant) {
    let pid = c.welcome.daemon_pid;
    tracing_free_log(&format!(
        "daemon {} (pid {pid}) is older than this oxtail {}; asking it to hand over",
        c.welcome.version,
        crate::version()
    ));
    let end = deadline.min(Instant::now() + Duration::from_secs(5));
    let left = end.saturating_duration_since(Instant::now());
    let _ = c.set_timeout(Some(left.max(Duration::from_millis(1))));
    let _ = c.call(crate::Request::Ctl(crate::Ctl::Handover {
        version: crate::version(),
    }));
    drop(c);
    while Instant::now() < end && crate::process::alive(pid) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `<this executable> daemon` detached: a new session, stdin from
/// /dev/null, stdout and stderr appended to the daemon log. A racing second
/// daemon loses the lock and exits quietly, so calling this when one is
/// already starting is harmless.
///
/// # Errors
/// When the state dir cannot be created or the process cannot be started.
pub fn spawn_daemon() -> io::Result<()> {
    let (mut child, _) = spawn_daemon_child()?;
    // Reap it if it exits while we live (a losing racer exits at once).
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// As [`spawn_daemon`], returning the child and the daemon log's length
/// before the child started (where its own output begins).
fn spawn_daemon_child() -> io::Result<(std::process::Child, u64)> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let dir = paths::state_dir();
    paths::ensure_private_dir(&dir)?;
    paths::rotate_log();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths::log_path())?;
    let from = log.metadata()?.len();
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("daemon")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Per-agent settings are the agent's, passed with its calls; the daemon
    // must not adopt the starting agent's as everyone's default.
    for k in crate::wire::AGENT_SETTING_VARS {
        cmd.env_remove(k);
    }
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from the
    // caller's session and terminal so it outlives hooks and shims.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    Ok((child, from))
}

fn tracing_free_log(msg: &str) {
    if std::env::var_os("OXTAIL_DEBUG_CLIENT").is_some() {
        eprintln!("oxtail: {msg}");
    }
}
