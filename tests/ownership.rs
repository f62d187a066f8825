//! Another local user cannot pose as the daemon (issue 9 item 5).
//!
//! uid 65534 (via `setpriv`) pre-creates the per-user fallback socket
//! directory (`<base>/oxtail-<uid>/`, with the base injected through
//! `OXTAIL_SOCKET_FALLBACK_BASE` so the real `/tmp/oxtail-<uid>/` is never
//! touched) and listens there, or listens at an explicit `OXTAIL_SOCKET`:
//! `oxtail ctl`, a hook and a shim all refuse to talk to it, and the
//! listener receives not one byte. When uid 65534 only pre-creates the
//! directory, our daemon refuses to bind there and says why. Needs root
//! (CI runs as root); skips with a message otherwise.

use oxtail_tests::harness::{AgentOpts, Instance};
use oxtail_tests::skip::root_with_setpriv_or_skip;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// A listener run as uid 65534: binds `socket` (creating its directory
/// 0755 first when `make_dir`), then reports every byte it receives on
/// stdout as `got <n>`.
const LISTENER: &str = r#"
import os, socket, sys
path, make_dir = sys.argv[1], sys.argv[2] == "1"
if make_dir:
    os.makedirs(os.path.dirname(path), 0o755)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    print("accepted", flush=True)
    c.settimeout(3)
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            print("got %d" % len(d), flush=True)
    except socket.timeout:
        pass
    c.close()
"#;

/// uid 65534's listener; killed (by pid) on drop.
struct Impostor {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Impostor {
    fn start(socket: &Path, make_dir: bool) -> Impostor {
        let mut child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(["python3", "-c", LISTENER])
            .arg(socket)
            .arg(if make_dir { "1" } else { "0" })
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs as uid 65534");
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let me = Impostor { child, lines };
        let first = me
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the impostor listens");
        assert_eq!(first, "ready");
        me
    }

    /// Everything it reported after `ready` (waits a moment for stragglers
    /// of a connection that was made).
    fn reports(&self) -> Vec<String> {
        let mut all = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(300)) {
            all.push(l);
        }
        all
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temp dir that other users may enter and create in (like /tmp: 1777).
fn open_base() -> tempfile::TempDir {
    let d = tempfile::Builder::new().prefix("oxtb").tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    d
}

/// An instance whose socket path is too long, so it falls back to
/// `<base>/oxtail-<uid>/<hash>.sock`; returns it and that fallback path.
fn long_path_instance(base: &Path, long_home: &Path) -> (Instance, PathBuf) {
    let home = long_home.join("h".repeat(110));
    std::fs::create_dir_all(&home).unwrap();
    let ox = Instance::with_env(
        BIN,
        &[
            ("OXTAIL_HOME", home.to_str().unwrap()),
            ("OXTAIL_SOCKET_FALLBACK_BASE", base.to_str().unwrap()),
        ],
    );
    let preferred = home.join("run").join("daemon.sock");
    let socket = oxtail_proto::paths::fallback_socket_path(base, &preferred);
    (ox, socket)
}

/// A SessionStart payload of the shape Claude Code 2.1.329 sends.
fn hook_stdin() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "sess-owner",
        "transcript_path": "/nonexistent/sess-owner.jsonl",
        "cwd": "/",
        "hook_event_name": "SessionStart",
        "source": "startup"
    }))
    .unwrap()
}

/// Runs `oxtail ctl ping` and `oxtail hook session-start` (both may start
/// a daemon) and a shim's tool call against `ox`; returns what they said.
async fn every_client_tries(ox: &Instance, extra_env: &[(&str, &Path)]) -> Vec<String> {
    let mut said = Vec::new();
    let mut ctl = ox.command();
    ctl.args(["ctl", "ping", "--json"]).stdin(Stdio::null());
    for (k, v) in extra_env {
        ctl.env(k, v);
    }
    let out = ctl.output().unwrap();
    assert!(!out.status.success(), "ctl ping was served by the impostor");
    said.push(String::from_utf8_lossy(&out.stderr).into_owned());

    let mut hook = ox.command();
    hook.args(["hook", "session-start", "--hooks-version", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        hook.env(k, v);
    }
    let mut child = hook.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&hook_stdin())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "hooks fail open");
    assert!(out.stdout.is_empty(), "the hook printed {:?}", out.stdout);

    let repo = ox.workdir("proj");
    let mut opts = AgentOpts::claude(&repo, "sess-owner");
    for (k, v) in extra_env {
        opts.env.push((k.to_string(), v.display().to_string()));
    }
    let agent = ox.agent(opts).await.unwrap();
    let r = agent
        .call_raw("get_my_session", json!({}))
        .await
        .expect("the shim answers");
    assert_eq!(r.is_error, Some(true), "the shim was served: {r:?}");
    said.push(format!("{:?}", r.content));
    agent.close().await;
    said
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_in_the_fallback_socket_dir_gets_nothing() {
    if root_with_setpriv_or_skip().is_none() {
        return;
    }
    let base = open_base();
    let long = tempfile::tempdir().unwrap();
    let (ox, socket) = long_path_instance(base.path(), long.path());
    let dir = socket.parent().unwrap().to_path_buf();
    assert!(!dir.exists());
    let impostor = Impostor::start(&socket, true);
    let said = every_client_tries(&ox, &[]).await;
    let reports = impostor.reports();
    assert!(
        reports.iter().any(|l| l == "accepted"),
        "the clients never reached the impostor: {reports:?}"
    );
    assert!(
        !reports.iter().any(|l| l.starts_with("got")),
        "the impostor received bytes: {reports:?}"
    );
    for s in &said {
        assert!(s.contains("uid 65534"), "the refusal names the uid: {s}");
    }
    eprintln!("ctl against the impostor: {}", said[0].trim());
    assert_eq!(
        entries(&dir),
        vec![socket.file_name().unwrap().to_string_lossy().into_owned()],
        "something was written to the impostor's directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_socket_served_by_another_uid_gets_nothing() {
    if root_with_setpriv_or_skip().is_none() {
        return;
    }
    let base = open_base();
    let socket = base.path().join("theirs.sock");
    let impostor = Impostor::start(&socket, false);
    let ox = Instance::new(BIN);
    let said = every_client_tries(&ox, &[("OXTAIL_SOCKET", &socket)]).await;
    let reports = impostor.reports();
    assert!(
        reports.iter().any(|l| l == "accepted"),
        "the clients never reached the impostor: {reports:?}"
    );
    assert!(
        !reports.iter().any(|l| l.starts_with("got")),
        "the impostor received bytes: {reports:?}"
    );
    for s in &said {
        assert!(s.contains("uid 65534"), "the refusal names the uid: {s}");
    }
}

#[test]
fn the_daemon_refuses_a_fallback_dir_made_by_another_uid() {
    if root_with_setpriv_or_skip().is_none() {
        return;
    }
    let base = open_base();
    let long = tempfile::tempdir().unwrap();
    let (ox, socket) = long_path_instance(base.path(), long.path());
    let dir = socket.parent().unwrap().to_path_buf();
    let made = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["mkdir", "-m", "0777"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(made.success());
    // The client says why, without starting a daemon that would refuse.
    let t = Instant::now();
    let out = ox
        .command()
        .args(["ctl", "ping", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a daemon answered from {dir:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("owned by uid 65534"),
        "ctl does not say why: {said}"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // The daemon itself refuses to bind there, and says so.
    let out = ox
        .command()
        .arg("daemon")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "our daemon ran in {dir:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("owned by uid 65534"),
        "the daemon does not say why: {said}"
    );
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
}

#[test]
fn a_socket_dir_open_to_others_is_refused() {
    // Our own directory, but group/world-writable: refused too.
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let ox = Instance::new(BIN);
    let socket = open.path().join("d.sock");
    let out = ox
        .command()
        .env("OXTAIL_SOCKET", &socket)
        .arg("daemon")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("writable by group or others"), "{said}");
    assert!(!socket.exists());
}
