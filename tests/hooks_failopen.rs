//! A hook never hurts the agent: against a stopped (SIGSTOP) daemon every
//! hook exits 0 with no output within its 300 ms budget; with no daemon at
//! all hooks exit 0 without starting one, except session-start, which does.
//! Real `oxtail` processes, real sockets, the captured client payloads.

use oxtail_tests::harness::{kill_pid, Instance};
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// An exit-0 hook must finish well inside this (its budget is 300 ms).
const BOUND: Duration = Duration::from_millis(1000);

fn fixture_stdin(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(rel);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    serde_json::to_vec(&v["stdin"]).unwrap()
}

const CLAUDE: &str = "claude-code-2.1.329/hooks";

fn events() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "pre-tool-use",
            fixture_stdin(&format!("{CLAUDE}/002-PreToolUse.json")),
        ),
        (
            "post-tool-use",
            fixture_stdin(&format!("{CLAUDE}/003-PostToolUse.json")),
        ),
        (
            "user-prompt-submit",
            fixture_stdin(&format!("{CLAUDE}/001-UserPromptSubmit.json")),
        ),
        ("stop", fixture_stdin(&format!("{CLAUDE}/010-Stop.json"))),
        (
            "session-end",
            fixture_stdin(&format!("{CLAUDE}/011-SessionEnd.json")),
        ),
        (
            "pre-tool-use",
            fixture_stdin("codex-0.169.0/hooks/004-PreToolUse.json"),
        ),
        (
            "stop",
            fixture_stdin("codex-0.169.0/tui/hooks/004-Stop.json"),
        ),
    ]
}

/// Runs `oxtail hook <event> --hooks-version 1` as the client would.
fn run_hook(
    ox: &Instance,
    event: &str,
    stdin: &[u8],
    env: &[(&str, String)],
) -> (Output, Duration) {
    let mut cmd = ox.command();
    cmd.args(["hook", event, "--hooks-version", "1"])
        .env_remove("OXTAIL_DEBUG_HOOK")
        .env_remove("CLAUDE_CODE_ENTRYPOINT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (out, start.elapsed())
}

fn assert_silent(out: &Output, took: Duration, what: &str) {
    assert_eq!(out.status.code(), Some(0), "{what}: exit code");
    assert!(
        out.stdout.is_empty(),
        "{what}: stdout {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stderr.is_empty(),
        "{what}: stderr {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < BOUND, "{what}: took {took:?}");
}

fn socket_of(ox: &Instance) -> std::path::PathBuf {
    ox.home().join("run").join("daemon.sock")
}

/// Resumes a stopped daemon even when an assertion fails, so the
/// instance can shut it down.
struct Resume(u32);
impl Drop for Resume {
    fn drop(&mut self) {
        kill_pid(self.0, libc::SIGCONT);
    }
}

#[test]
fn hooks_against_a_stopped_daemon_exit_0_silently_within_the_budget() {
    let ox = Instance::new(BIN);
    ox.ctl(&["ping"]).unwrap();
    let pid = ox.daemon_pid().expect("daemon runs");
    kill_pid(pid, libc::SIGSTOP);
    let resume = Resume(pid);
    let mut all = events();
    all.push((
        "session-start",
        fixture_stdin(&format!("{CLAUDE}/000-SessionStart.json")),
    ));
    for (event, stdin) in &all {
        let (out, took) = run_hook(&ox, event, stdin, &[]);
        assert_silent(&out, took, &format!("{event} vs stopped daemon"));
        // It did wait for the daemon: all of the part of its 300 ms that
        // is not kept for process start and exit.
        assert!(
            took >= oxtail_hooks::hook::HOOK_DAEMON_BUDGET,
            "{event}: {took:?} — it did wait for the daemon"
        );
    }
    drop(resume);
    // The daemon was only paused: it answers again, and session-start did
    // not start a second one next to it.
    let again = ox.ctl(&["ping"]).unwrap();
    assert_eq!(again["pid"].as_u64(), Some(pid as u64));
}

#[test]
fn hooks_without_a_daemon_exit_0_silently_and_start_none() {
    let ox = Instance::new(BIN);
    for (event, stdin) in events() {
        let (out, took) = run_hook(&ox, event, &stdin, &[]);
        assert_silent(&out, took, &format!("{event} with no daemon"));
    }
    assert!(!socket_of(&ox).exists(), "no daemon socket appeared");
    assert_eq!(ox.daemon_pid(), None, "no daemon was started");
}

#[test]
fn session_start_starts_the_daemon() {
    let ox = Instance::new(BIN);
    let stdin = fixture_stdin(&format!("{CLAUDE}/000-SessionStart.json"));
    let (out, took) = run_hook(&ox, "session-start", &stdin, &[]);
    assert_silent(&out, took, "session-start with no daemon");
    let end = Instant::now() + Duration::from_secs(10);
    while ox.daemon_pid().is_none() {
        assert!(Instant::now() < end, "session-start started no daemon");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn malformed_stdin_against_a_live_daemon_exits_0_silently() {
    let ox = Instance::new(BIN);
    ox.ctl(&["ping"]).unwrap();
    let good = fixture_stdin(&format!("{CLAUDE}/004-PreToolUse.json"));
    for bad in [
        b"".to_vec(),
        b"garbage".to_vec(),
        b"[]".to_vec(),
        b"{\"hook_event_name\":\"PreToolUse\"}".to_vec(),
        good[..good.len() - 3].to_vec(),
    ] {
        for event in ["pre-tool-use", "stop", "session-start", "idle-wait"] {
            let (out, took) = run_hook(&ox, event, &bad, &[]);
            assert_silent(
                &out,
                took,
                &format!("{event} <- {:?}", String::from_utf8_lossy(&bad)),
            );
        }
    }
    // Unknown events and future flags never make a hook fail either.
    let (out, _) = run_hook(&ox, "pre-tool-use", &good, &[("X", "1".into())]);
    assert_eq!(out.status.code(), Some(0));
    let mut cmd = ox.command();
    let o = cmd
        .args([
            "hook",
            "stop",
            "--hooks-version",
            "9",
            "--flag-from-the-future",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    let o = ox
        .command()
        .args(["hook", "no-such-event"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
}

#[test]
fn idle_wait_exits_0_when_its_client_is_gone() {
    let ox = Instance::new(BIN);
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let dead = c.id();
    c.wait().unwrap();
    let stdin = fixture_stdin(&format!("{CLAUDE}/010-Stop.json"));
    let (out, took) = run_hook(
        &ox,
        "idle-wait",
        &stdin,
        &[("CLAUDE_PID", dead.to_string())],
    );
    assert_silent(&out, took, "idle-wait for a dead client");
    assert_eq!(ox.daemon_pid(), None, "no daemon started for a dead client");
}

#[test]
fn idle_wait_gives_up_at_its_timeout() {
    let ox = Instance::new(BIN);
    ox.ctl(&["ping"]).unwrap();
    let stdin = fixture_stdin(&format!("{CLAUDE}/016-Stop.json"));
    let me = std::process::id().to_string();
    let (out, took) = run_hook(
        &ox,
        "idle-wait",
        &stdin,
        &[
            ("CLAUDE_PID", me),
            ("OXTAIL_IDLE_WAIT_TIMEOUT_MS", "400".into()),
        ],
    );
    assert_silent(&out, took.min(Duration::ZERO), "idle-wait timeout");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}
