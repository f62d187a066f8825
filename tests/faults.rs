//! Fault tolerance with real processes (issue 6, SPEC §2 and §9): a stopped
//! daemon, stuck clients, stale and foreign sockets, no network sockets, a
//! full disk (fault injection and a real tmpfs), invalid environment values,
//! and the idle exit.
//!
//! Every wait here is a liveness watchdog (generous, so a hang fails rather
//! than blocking the suite), never a performance assertion; the figures live
//! in BENCHMARKS.md.

use oxtail_proto::frame::{self, MAX_SERVER_FRAME};
use oxtail_proto::{ClientFrame, Ctl, Hello, Request, Role, ServerFrame};
use oxtail_tests::harness::{kill_pid, pid_alive, wait_gone, Agent, AgentOpts, Instance};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

// ---------------------------------------------------------------- helpers

fn socket_of(ox: &Instance) -> PathBuf {
    ox.home().join("run").join("daemon.sock")
}

fn log_of(ox: &Instance) -> String {
    std::fs::read_to_string(ox.home().join("daemon.log")).unwrap_or_default()
}

/// `oxtail ctl <args> --json` with extra environment (the daemon it spawns
/// inherits it).
fn ctl_env(ox: &Instance, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = ox.command();
    for (k, v) in env {
        c.env(k, v);
    }
    c.arg("ctl")
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `cmd` (with `stdin` bytes) and waits at most `limit`; a process still
/// running then is killed and the test fails as hung.
fn run_watchdog(mut cmd: Command, stdin: &[u8], limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            let took = start.elapsed();
            return (child.wait_with_output().unwrap(), took);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} hung for {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The state letter of `/proc/<pid>/stat` (`T` = stopped).
fn proc_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Every thread of `pid` has exited (a zombie leader alone is dead).
fn all_threads_dead(pid: u32) -> bool {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    rd.filter_map(Result::ok).all(|t| {
        let tid: u32 = t.file_name().to_string_lossy().parse().unwrap_or(0);
        std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| matches!(r.trim_start().chars().next(), Some('Z' | 'X')))
            })
            .unwrap_or(true)
    })
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("gave up waiting ({limit:?}) for: {what}");
}

/// VmRSS and VmHWM of `pid`, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A raw connection that completed the handshake as `role`.
fn hello_conn(socket: &Path, role: Role) -> UnixStream {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&frame::encode(&ClientFrame::Hello(Hello::new(role))))
        .unwrap();
    match frame::read_blocking::<ServerFrame>(&mut s, MAX_SERVER_FRAME).unwrap() {
        ServerFrame::Welcome(_) => s,
        other => panic!("no welcome: {other:?}"),
    }
}

/// Resumes a stopped pid however the test ends.
struct ContOnDrop(u32);
impl Drop for ContOnDrop {
    fn drop(&mut self) {
        kill_pid(self.0, libc::SIGCONT);
    }
}

fn body_count(read: &Value, body: &str) -> usize {
    read["messages"]
        .as_array()
        .map(|m| m.iter().filter(|m| m["body"] == body).count())
        .unwrap_or(0)
}

async fn read_all(agent: &Agent) -> Value {
    // A shim reconnects lazily after a daemon restart; give it a few tries.
    let mut last = Value::Null;
    for _ in 0..50 {
        match agent.call("read_my_messages", json!({})).await {
            Ok(v) if v["ok"] == true => return v,
            Ok(v) => last = v,
            Err(e) => last = json!(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("read_my_messages never succeeded: {last}");
}

// ---------------------------------------------------------- stopped daemon

/// SIGSTOP the daemon: `oxtail ctl` gives up on its own with a clear error,
/// a hook fails open (exit 0, no output) without waiting for the daemon, a
/// new agent's shim still answers `initialize`; after SIGCONT the call that
/// was in flight completes and everything works, with no message lost or
/// doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_daemon_costs_clients_their_budget_and_resumes_after_sigcont() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = Arc::new(ox.agent(AgentOpts::claude(&repo, "stop-a")).await.unwrap());
    let b = ox.agent(AgentOpts::claude(&repo, "stop-b")).await.unwrap();
    a.ok("set_my_state", json!({"purpose": "sending"}))
        .await
        .unwrap();
    b.ok("set_my_state", json!({"purpose": "receiving"}))
        .await
        .unwrap();
    let pid = ox.daemon_pid().unwrap();

    kill_pid(pid, libc::SIGSTOP);
    let _cont = ContOnDrop(pid);
    wait_until("daemon stopped", Duration::from_secs(10), || {
        proc_state(pid) == Some('T')
    });

    // A tool call goes in flight while the daemon is stopped.
    let inflight = {
        let a = a.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let r = a
                .call(
                    "send_message",
                    json!({"target": "stop-b", "body": "sent while stopped"}),
                )
                .await;
            (r, t.elapsed())
        })
    };

    // ctl: connect budget 5 s, then a clear error; the daemon is still
    // stopped when it returns, so it gave up on its own.
    let mut c = ox.command();
    c.args(["ctl", "stats", "--json"]);
    let (out, took) = run_watchdog(c, b"", Duration::from_secs(60));
    assert!(
        !out.status.success(),
        "ctl cannot succeed against a stopped daemon"
    );
    assert!(
        stderr(&out).contains("did not answer"),
        "clear error: {}",
        stderr(&out)
    );
    assert_eq!(proc_state(pid), Some('T'), "still stopped when ctl gave up");
    eprintln!("ctl stats against the stopped daemon gave up after {took:?}");

    // A hook fails open: exit 0 and no output, while the daemon is stopped.
    let payload = json!({
        "session_id": "stop-a",
        "hook_event_name": "PreToolUse",
        "cwd": repo,
        "tool_name": "Bash",
        "tool_input": {"command": "ls"},
        "tool_use_id": "toolu_1",
        "transcript_path": repo.join("t.jsonl"),
        "permission_mode": "default",
    });
    let mut h = ox.command();
    h.args(["hook", "pre-tool-use"])
        .current_dir(&repo)
        .env("CLAUDECODE", "1")
        .env("CLAUDE_PID", std::process::id().to_string());
    let (out, took) = run_watchdog(
        h,
        serde_json::to_string(&payload).unwrap().as_bytes(),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "hook fails open: {}", stderr(&out));
    assert!(out.stdout.is_empty(), "no hook output: {:?}", out.stdout);
    assert_eq!(
        proc_state(pid),
        Some('T'),
        "still stopped when the hook returned"
    );
    eprintln!("pre-tool-use hook against the stopped daemon returned after {took:?}");

    // A new agent's shim answers initialize without the daemon.
    let c_agent = tokio::time::timeout(
        Duration::from_secs(60),
        ox.agent(AgentOpts::claude(&repo, "stop-c")),
    )
    .await
    .expect("initialize is answered while the daemon is stopped")
    .unwrap();
    assert_eq!(proc_state(pid), Some('T'));

    let finished_while_stopped = inflight.is_finished();
    kill_pid(pid, libc::SIGCONT);
    let (r, took) = tokio::time::timeout(Duration::from_secs(60), inflight)
        .await
        .expect("the in-flight call ends after SIGCONT")
        .unwrap();
    let acked = matches!(&r, Ok(v) if v["ok"] == true);
    eprintln!(
        "in-flight send_message: {} after {took:?} ({})",
        if acked { "acknowledged" } else { "failed" },
        if finished_while_stopped {
            "it gave up while the daemon was stopped"
        } else {
            "it waited for SIGCONT: the stop was shorter than the shim's call budget"
        }
    );
    if finished_while_stopped {
        assert!(!acked, "nothing can be acknowledged by a stopped daemon");
    }

    // Everything works again.
    assert!(ox.ctl(&["stats"]).is_ok());
    c_agent
        .ok("set_my_state", json!({"purpose": "joined while stopped"}))
        .await
        .unwrap();
    a.ok(
        "send_message",
        json!({"target": "stop-b", "body": "after SIGCONT"}),
    )
    .await
    .unwrap();
    let read = read_all(&b).await;
    assert_eq!(body_count(&read, "after SIGCONT"), 1, "{read}");
    let n = body_count(&read, "sent while stopped");
    if acked {
        assert_eq!(n, 1, "an acknowledged message arrives exactly once: {read}");
    } else {
        assert!(n <= 1, "never twice: {read}");
    }
}

/// SPEC §9: "a stopped (SIGSTOP) daemon costs ... the agent nothing". A
/// tool call in flight should fail within a budget while the daemon is
/// stopped, instead of hanging the agent's turn until SIGCONT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shim_call_fails_within_its_budget_while_the_daemon_is_stopped() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "bud-a")).await.unwrap();
    a.ok("set_my_state", json!({"purpose": "x"})).await.unwrap();
    let pid = ox.daemon_pid().unwrap();
    kill_pid(pid, libc::SIGSTOP);
    let _cont = ContOnDrop(pid);
    wait_until("daemon stopped", Duration::from_secs(10), || {
        proc_state(pid) == Some('T')
    });
    let r = tokio::time::timeout(
        Duration::from_secs(120),
        a.call("list_project_sessions", json!({})),
    )
    .await
    .expect("the shim gives up on a stopped daemon on its own");
    assert_eq!(proc_state(pid), Some('T'));
    let failed = match r {
        Ok(v) => v["ok"] != true,
        Err(_) => true,
    };
    assert!(failed, "a stopped daemon cannot answer");
}

// ------------------------------------------------------------ stuck clients

/// Clients that stall mid-frame, never finish the handshake, or flood
/// requests without reading a reply do not stall anyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_clients_do_not_stall_other_clients() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "slow-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "slow-b")).await.unwrap();
    a.ok("set_my_state", json!({"purpose": "a"})).await.unwrap();
    b.ok("set_my_state", json!({"purpose": "b"})).await.unwrap();
    let pid = ox.daemon_pid().unwrap();
    let socket = socket_of(&ox);

    // Half a frame: announces 200 bytes, sends 10, stalls.
    let mut half = hello_conn(&socket, Role::Ctl);
    half.write_all(&200u32.to_be_bytes()).unwrap();
    half.write_all(b"{\"frame\":").unwrap();
    // Half a length prefix.
    let mut prefix = hello_conn(&socket, Role::Shim);
    prefix.write_all(&[0, 0]).unwrap();
    // Connected, never says hello.
    let silent = UnixStream::connect(&socket).unwrap();
    // Floods `ctl dump` requests and never reads a reply.
    let flood = hello_conn(&socket, Role::Ctl);
    let (rss0, _) = rss_kib(pid);
    let flooder = std::thread::spawn(move || {
        let mut flood = flood;
        flood
            .set_write_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut sent = 0u64;
        for id in 1..=3000u64 {
            let f = ClientFrame::Request {
                id,
                request: Request::Ctl(Ctl::Dump),
            };
            if flood.write_all(&frame::encode(&f)).is_err() {
                break;
            }
            sent += 1;
        }
        (flood, sent)
    });

    // Everyone else is served meanwhile.
    let others = async {
        for i in 0..20 {
            a.ok(
                "send_message",
                json!({"target": "slow-b", "body": format!("m{i}")}),
            )
            .await
            .unwrap();
        }
        let read = b.ok("read_my_messages", json!({})).await.unwrap();
        assert_eq!(read["count"], 20, "{read}");
        b.ok("list_project_sessions", json!({})).await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(60), others)
        .await
        .expect("other agents are served while stuck clients hang around");
    let (flood, sent) = flooder.join().unwrap();
    let ping = ox.ctl(&["ping"]).unwrap();
    assert_eq!(ping["pid"].as_u64(), Some(pid as u64), "same daemon");
    let (rss1, hwm1) = rss_kib(pid);
    eprintln!(
        "flooder sent {sent} unread dump requests; daemon VmRSS {rss0} KiB -> {rss1} KiB (VmHWM {hwm1} KiB): replies to a client that never reads are buffered without bound"
    );

    drop((half, prefix, silent, flood));
    // Still serving after the stuck connections went away.
    a.ok("send_message", json!({"target": "slow-b", "body": "after"}))
        .await
        .unwrap();
    assert!(pid_alive(pid));
    assert!(!log_of(&ox).contains("panicked"), "{}", log_of(&ox));
}

// ---------------------------------------------------------------- sockets

/// A socket file left behind by a crashed daemon is replaced by the next
/// one.
#[test]
fn a_stale_socket_from_a_crashed_daemon_is_replaced() {
    let ox = Instance::new(BIN);
    let first = ox.ctl(&["ping"]).unwrap()["pid"].as_u64().unwrap() as u32;
    let socket = socket_of(&ox);
    ox.kill_daemon().unwrap();
    // The leader turns zombie before its other threads have closed the
    // shared fd table; wait until every thread is gone.
    wait_until(
        "every daemon thread exited",
        Duration::from_secs(10),
        || all_threads_dead(first),
    );
    let meta = std::fs::symlink_metadata(&socket).expect("kill -9 leaves the socket file");
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()));
    let refused = UnixStream::connect(&socket).unwrap_err();
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "nothing listens on the stale socket"
    );
    let second = ox.ctl(&["ping"]).unwrap()["pid"].as_u64().unwrap() as u32;
    assert_ne!(first, second);
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        ox.ctl(&["stats"]).unwrap()["pid"].as_u64(),
        Some(second as u64)
    );
}

/// The daemon has no TCP, UDP or raw socket open: no socket inode in its
/// fd table appears in the kernel's inet tables of its network namespace,
/// while its Unix listener does appear in the Unix table (so the method sees
/// sockets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_has_no_tcp_or_udp_socket() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "net-a")).await.unwrap();
    a.ok("set_my_state", json!({"purpose": "x"})).await.unwrap();
    a.ok("list_project_sessions", json!({})).await.unwrap();
    let pid = ox.daemon_pid().unwrap();

    let mut fd_sockets = HashSet::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let Ok(target) = std::fs::read_link(e.unwrap().path()) else {
            continue;
        };
        let t = target.to_string_lossy();
        if let Some(ino) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
            fd_sockets.insert(ino.parse::<u64>().unwrap());
        }
    }
    assert!(
        fd_sockets.len() >= 2,
        "listener plus the shim connection: {fd_sockets:?}"
    );
    let inodes = |table: &str, col: usize| -> HashSet<u64> {
        std::fs::read_to_string(format!("/proc/{pid}/net/{table}"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(col)?.parse().ok())
            .collect()
    };
    for table in [
        "tcp", "tcp6", "udp", "udp6", "raw", "raw6", "udplite", "udplite6",
    ] {
        let inet = inodes(table, 9);
        let hits: Vec<_> = fd_sockets.intersection(&inet).collect();
        assert!(hits.is_empty(), "daemon has {table} sockets: {hits:?}");
    }
    let unix = inodes("unix", 6);
    assert!(
        fd_sockets.iter().any(|i| unix.contains(i)),
        "the Unix table lists the daemon's sockets (the check can see sockets)"
    );
}

/// A copy of the binary any uid can run (the build dir may sit under a
/// private home).
fn binary_for_others(dir: &Path) -> PathBuf {
    let p = dir.join("oxtail");
    std::fs::copy(BIN, &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A world-traversable scratch dir (the harness's temp dirs are 0700).
fn open_dir(tag: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(&format!("oxt-{tag}"))
        .tempdir()
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// Root, with setpriv to act as `nobody` (CI runs as root).
fn can_act_as_nobody() -> bool {
    oxtail_tests::skip::root_with_setpriv_or_skip().is_some()
}

fn as_nobody(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(program)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent");
    c
}

/// A process of another uid is refused twice over: the socket's mode (0600
/// in a 0700 dir) keeps it out, and when the path is opened up anyway the
/// daemon's peer-uid check refuses the connection and logs it.
#[test]
fn a_client_of_another_uid_is_refused() {
    if !can_act_as_nobody() {
        return;
    }
    let ox = Instance::new(BIN);
    ox.ctl(&["ping"]).unwrap();
    let socket = socket_of(&ox);
    let open = open_dir("uid");
    let bin = binary_for_others(open.path());
    let nobody_ctl = || {
        let mut c = as_nobody(&bin);
        c.env("OXTAIL_HOME", open.path().join("nobody-home"))
            .env("OXTAIL_SOCKET", &socket)
            .args(["ctl", "stats", "--json"]);
        run_watchdog(c, b"", Duration::from_secs(60)).0
    };
    let out = nobody_ctl();
    assert!(!out.status.success(), "file modes keep other users out");
    assert!(out.stdout.is_empty());
    eprintln!(
        "uid 65534 against a 0600 socket in a 0700 dir: {}",
        stderr(&out).trim()
    );

    // Open the path up (as a careless admin might) so the peer check is
    // what stands in the way.
    for d in [
        ox.dir.path().to_path_buf(),
        ox.home(),
        socket.parent().unwrap().to_path_buf(),
    ] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = nobody_ctl();
    assert!(!out.status.success(), "uid 65534 must not be served");
    assert!(out.stdout.is_empty());
    wait_until(
        "the daemon logs the refusal",
        Duration::from_secs(10),
        || log_of(&ox).contains("refused a connection from another user"),
    );
    assert!(ox.ctl(&["stats"]).is_ok(), "the owner is still served");
}

/// A live socket of another uid at OXTAIL_SOCKET: our client does not get
/// served by it and does not take it over (no daemon of ours replaces it).
#[test]
fn a_live_socket_of_another_uid_is_not_used_or_taken_over_by_a_client() {
    if !can_act_as_nobody() {
        return;
    }
    let open = open_dir("foreign");
    let bin = binary_for_others(open.path());
    // nobody's own dir (the daemon makes a socket's parent 0700, which only
    // its owner may do).
    let shared = open.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(65534), Some(65534)).unwrap();
    let socket = shared.join("daemon.sock");
    let nobody_home = open.path().join("nobody-home");
    std::fs::create_dir(&nobody_home).unwrap();
    std::os::unix::fs::chown(&nobody_home, Some(65534), Some(65534)).unwrap();
    let mut d = as_nobody(&bin);
    d.env("OXTAIL_HOME", &nobody_home)
        .env("OXTAIL_SOCKET", &socket)
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut foreign = d.spawn().unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let foreign_pid = foreign.id();
    let _guard = {
        wait_until("nobody's daemon listens", Duration::from_secs(20), || {
            std::fs::metadata(&socket).is_ok_and(|m| m.uid() == 65534)
                || foreign.try_wait().ok().flatten().is_some()
        });
        Kill(foreign)
    };
    assert!(pid_alive(foreign_pid), "nobody's daemon runs");

    let ox = Instance::new(BIN);
    let mut c = ox.command();
    c.env("OXTAIL_SOCKET", &socket)
        .args(["ctl", "ping", "--json"]);
    let (out, _) = run_watchdog(c, b"", Duration::from_secs(60));
    assert!(
        !out.status.success(),
        "served by another user's daemon: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!(
        "root's ctl ping against uid 65534's socket: {}",
        stderr(&out).trim()
    );
    assert_eq!(
        std::fs::metadata(&socket).unwrap().uid(),
        65534,
        "the foreign socket was not replaced"
    );
    assert!(pid_alive(foreign_pid));
}

/// Sockets and paths the daemon did not create are not its to delete or
/// chmod: a regular file at OXTAIL_SOCKET survives (the daemon refuses with
/// a clear error), the socket's parent dir keeps its mode, and a live socket
/// of another uid is not replaced.
#[test]
fn the_daemon_never_deletes_or_chmods_what_it_did_not_create() {
    let ox = Instance::new(BIN);
    let open = open_dir("hyg");
    let shared = open.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = shared.join("not-a-socket");
    std::fs::write(&path, "precious").unwrap();
    let out = ctl_env(&ox, &[("OXTAIL_SOCKET", path.to_str().unwrap())], &["ping"]);
    assert_eq!(
        std::fs::read_to_string(&path).ok().as_deref(),
        Some("precious"),
        "a regular file at OXTAIL_SOCKET was deleted"
    );
    assert!(!out.status.success(), "no daemon on a path it cannot use");
    assert_eq!(
        std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777,
        0o755,
        "the daemon changed the mode of a directory it did not create"
    );
    if can_act_as_nobody() {
        // A live socket of another uid is not replaced by our daemon.
        let bin = binary_for_others(open.path());
        // nobody's own socket dir (a daemon binds only in a directory of
        // its user that others cannot write).
        let theirs = shared.join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let socket = theirs.join("d.sock");
        let nobody_home = open.path().join("nh");
        std::fs::create_dir(&nobody_home).unwrap();
        std::os::unix::fs::chown(&nobody_home, Some(65534), Some(65534)).unwrap();
        let mut foreign = as_nobody(&bin)
            .env("OXTAIL_HOME", &nobody_home)
            .env("OXTAIL_SOCKET", &socket)
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("nobody's daemon listens", Duration::from_secs(20), || {
            std::fs::metadata(&socket).is_ok_and(|m| m.uid() == 65534)
        });
        let mut ours = ox.command();
        ours.env("OXTAIL_SOCKET", &socket)
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (out, _) = run_watchdog(ours, b"", Duration::from_secs(30));
        let still_foreign = std::fs::metadata(&socket).is_ok_and(|m| m.uid() == 65534);
        let _ = foreign.kill();
        let _ = foreign.wait();
        assert!(still_foreign, "our daemon replaced uid 65534's socket");
        assert!(!out.status.success(), "our daemon refuses that path");
        let said = stderr(&out);
        assert!(
            said.contains("65534") || said.contains("another user"),
            "{said}"
        );
    }
}

// -------------------------------------------------------------- full disk

fn dump(ox: &Instance) -> Value {
    ox.ctl(&["dump"]).unwrap()
}

/// `OXTAIL_FAULT_JOURNAL_FULL_AFTER_BYTES`: once the journal is "full" a
/// send fails with a clear `storage` error, memory is unchanged (ctl dump
/// before and after), earlier messages stay, and after a restart without
/// the fault everything works and nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_fails_sends_cleanly_and_recovers_after_a_restart() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let started = ctl_env(
        &ox,
        &[("OXTAIL_FAULT_JOURNAL_FULL_AFTER_BYTES", "12000")],
        &["ping"],
    );
    assert!(started.status.success(), "{}", stderr(&started));
    let a = ox.agent(AgentOpts::claude(&repo, "disk-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "disk-b")).await.unwrap();
    a.ok("set_my_state", json!({"purpose": "a"})).await.unwrap();
    b.ok("set_my_state", json!({"purpose": "b"})).await.unwrap();

    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..100 {
        let before = dump(&ox);
        let body = format!("msg {i} {}", "x".repeat(400));
        let v = a
            .call("send_message", json!({"target": "disk-b", "body": body}))
            .await
            .unwrap();
        if v["ok"] == true {
            acked.push(v["message_id"].as_str().unwrap().to_string());
            continue;
        }
        let after = dump(&ox);
        assert_eq!(before, after, "a failed send changes nothing in memory");
        failure = Some(v);
        break;
    }
    let v = failure.expect("the injected full disk is reached");
    assert_eq!(v["error"], "storage", "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("nothing changed") && msg.to_lowercase().contains("space"),
        "a clear sentence: {msg}"
    );
    assert!(!acked.is_empty(), "some sends fit before the disk filled");

    // Reads that would change state fail the same way; earlier messages stay.
    let before = dump(&ox);
    let r = b.call("read_my_messages", json!({})).await.unwrap();
    assert_eq!(r["error"], "storage", "{r}");
    assert_eq!(before, dump(&ox));
    let inbox = ox.ctl(&["inbox", "disk-b"]).unwrap();
    let queued: Vec<String> = inbox["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(queued, acked, "every acknowledged message is still queued");

    // Restart without the fault.
    let pid = ox.daemon_pid().unwrap();
    ox.ctl(&["shutdown"]).unwrap();
    wait_gone(pid, Duration::from_secs(20)).unwrap();
    let restarted = ctl_env(&ox, &[], &["ping"]);
    assert!(restarted.status.success());
    a.ok(
        "send_message",
        json!({"target": "disk-b", "body": "after the restart"}),
    )
    .await
    .unwrap();
    let read = read_all(&b).await;
    let got: Vec<String> = read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got.len(), acked.len() + 1, "{read}");
    assert_eq!(&got[..acked.len()], &acked[..], "nothing lost or doubled");
    assert_eq!(body_count(&read, "after the restart"), 1);
}

/// A real 1 MiB tmpfs as the state dir, filled up: sends fail with a clear
/// `storage` error and change nothing; once space is freed, the same daemon
/// accepts sends again without a restart. Skipped where mounting is not
/// permitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_full_tmpfs_fails_sends_cleanly_and_recovers_when_space_returns() {
    let ox = Instance::new(BIN);
    let home = ox.home();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
        .arg(&home)
        .output();
    match mounted {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            oxtail_tests::skip::skip_or_fail(&format!(
                "cannot mount a tmpfs here ({}); CI runs as root and can",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            return;
        }
        Err(e) => {
            oxtail_tests::skip::skip_or_fail(&format!("no mount command ({e})"));
            return;
        }
    }
    struct Unmount {
        path: PathBuf,
        daemon: Option<u32>,
    }
    impl Drop for Unmount {
        fn drop(&mut self) {
            if let Some(pid) = self.daemon {
                kill_pid(pid, libc::SIGKILL);
                let _ = wait_gone(pid, Duration::from_secs(5));
            }
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
    let mut guard = Unmount {
        path: home.clone(),
        daemon: None,
    };
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "fs-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "fs-b")).await.unwrap();
    a.ok("set_my_state", json!({"purpose": "a"})).await.unwrap();
    b.ok("set_my_state", json!({"purpose": "b"})).await.unwrap();
    let pid = ox.daemon_pid().unwrap();
    guard.daemon = Some(pid);

    // Fill the file system.
    let filler = home.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..200 {
        let before = dump(&ox);
        let v = a
            .call(
                "send_message",
                json!({"target": "fs-b", "body": format!("m{i} {}", "y".repeat(1500))}),
            )
            .await
            .unwrap();
        if v["ok"] == true {
            // Writes into a page the segment already had can still fit.
            acked.push(v["message_id"].as_str().unwrap().to_string());
            continue;
        }
        assert_eq!(before, dump(&ox), "a failed send changes nothing in memory");
        failure = Some(v);
        break;
    }
    let v = failure.expect("the full tmpfs refuses a send");
    assert_eq!(v["error"], "storage", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("No space left"),
        "{v}"
    );
    assert!(pid_alive(pid), "the daemon survives ENOSPC");

    // Space returns: the same daemon works again.
    std::fs::remove_file(&filler).unwrap();
    a.ok(
        "send_message",
        json!({"target": "fs-b", "body": "space is back"}),
    )
    .await
    .unwrap();
    assert_eq!(ox.daemon_pid(), Some(pid), "no restart was needed");
    let read = read_all(&b).await;
    let got: Vec<&str> = read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(got.len(), acked.len() + 1, "{read}");
    for id in &acked {
        assert!(got.contains(&id.as_str()), "acknowledged {id} kept");
    }
    assert_eq!(body_count(&read, "space is back"), 1);

    a.close().await;
    b.close().await;
    ox.ctl(&["shutdown"]).unwrap();
    wait_gone(pid, Duration::from_secs(20)).unwrap();
    guard.daemon = None;
}

// ------------------------------------------------------------ environment

/// Invalid values fall back to the defaults with a warning in the daemon
/// log that names the variable; the daemon runs normally.
#[test]
fn invalid_environment_values_fall_back_to_defaults_with_a_logged_warning() {
    let ox = Instance::new(BIN);
    let bad = [
        ("OXTAIL_RECEIVED_MAX", "abc"),
        ("OXTAIL_DAEMON_IDLE_EXIT_S", "-1"),
        ("OXTAIL_JOURNAL_COMPACT_BYTES", "12k"),
        ("OXTAIL_SCOPE", "galaxy"),
    ];
    let out = ctl_env(&ox, &bad, &["ping"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = ox.daemon_pid().unwrap();
    let log = log_of(&ox);
    for (k, v) in bad {
        let line = log
            .lines()
            .find(|l| l.contains("WARN") && l.contains(v) && (l.contains(k) || k == "OXTAIL_SCOPE"))
            .unwrap_or_else(|| panic!("no warning for {k}={v} in the log:\n{log}"));
        assert!(
            line.contains("default") || line.contains("using"),
            "the warning says what happens instead: {line}"
        );
    }
    // IDLE_EXIT_S=-1 fell back to 600 s, not to "exit at once" (the
    // daemon's own account, no waiting).
    let stats = ox.ctl(&["stats"]).unwrap();
    assert_eq!(stats["idle_exit_s"], 600, "{stats}");
    assert!(pid_alive(pid), "the daemon did not idle out");
    assert!(!log.contains("panicked"));
}

/// OXTAIL_DAEMON_IDLE_EXIT_S=1: with no shim the daemon exits on its own
/// (after a snapshot); while a shim is connected it stays; under
/// `--foreground` it never idles out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_idles_out_only_without_shims_and_never_in_the_foreground() {
    let ox = Instance::new(BIN);
    let idle = [("OXTAIL_DAEMON_IDLE_EXIT_S", "1")];
    let out = ctl_env(&ox, &idle, &["ping"]);
    assert!(out.status.success());
    let pid: u32 = serde_json::from_slice::<Value>(&out.stdout).unwrap()["pid"]
        .as_u64()
        .unwrap() as u32;
    wait_gone(pid, Duration::from_secs(30)).expect("idle exit with no shim");
    assert!(log_of(&ox).contains("idle exit"), "{}", log_of(&ox));

    // A connected shim keeps it alive.
    let repo = ox.git_repo("proj");
    let mut opts = AgentOpts::claude(&repo, "idle-a");
    opts.env
        .push(("OXTAIL_DAEMON_IDLE_EXIT_S".into(), "1".into()));
    let a = ox.agent(opts).await.unwrap();
    a.ok("set_my_state", json!({"purpose": "staying"}))
        .await
        .unwrap();
    let pid = ox.daemon_pid().unwrap();
    assert_eq!(ox.ctl(&["stats"]).unwrap()["idle_exit_s"], 1);
    // Intentionally real time: staying alive past the 1 s window (and a
    // 1 s tick) while a shim is connected is the behaviour under test.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(pid_alive(pid), "no idle exit while a shim is connected");
    assert_eq!(ox.daemon_pid(), Some(pid));
    a.close().await;
    tokio::task::spawn_blocking(move || wait_gone(pid, Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("idle exit once the last shim left");

    // --foreground never idles out.
    let mut d = ox.command();
    d.env("OXTAIL_DAEMON_IDLE_EXIT_S", "1")
        .args(["daemon", "--foreground"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut fg = d.spawn().unwrap();
    wait_until(
        "the foreground daemon answers",
        Duration::from_secs(20),
        || ox.daemon_pid() == Some(fg.id()),
    );
    // No idle exit configured at all (so no real-time negative wait).
    let stats = ox.ctl(&["stats"]).unwrap();
    assert_eq!(stats["foreground"], true, "{stats}");
    assert_eq!(stats["idle_exit_s"], Value::Null, "{stats}");
    assert!(fg.try_wait().unwrap().is_none(), "--foreground idled out");
    ox.ctl(&["shutdown"]).unwrap();
    let status = {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = fg.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > end {
                let _ = fg.kill();
                panic!("foreground daemon ignored shutdown");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(status.success());
}
