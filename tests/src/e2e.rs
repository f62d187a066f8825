//! Small pieces shared by the end-to-end tests that drive the real agent CLIs
//! (`tests/e2e_tui_claude.rs`, `tests/e2e_codex.rs`): a one-shot [`Gate`] for
//! ordering two scripted conversations, [`install_hooks`] through the real
//! `oxtail install-hook`, unique [`nonce`] texts, readers for the daemon's
//! NDJSON trace (`MCP_TRACE_FILE`) and for rendered peer mail, and the
//! common setup: an instance with a named peer ([`instance_with_peer`]) and
//! a wait for that peer to list a row ([`wait_row`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::harness::{Agent, AgentOpts, Instance};

/// A one-shot signal between threads (e.g. between two scripted model
/// conversations answered on the fake server's threads, or between a
/// responder and the test). Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Open it, releasing every waiter (now and later).
    pub fn open(&self) {
        let (lock, cv) = &*self.0;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    /// Whether it is open.
    pub fn is_open(&self) -> bool {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Block until it opens; `false` if `timeout` passed first.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (lock, cv) = &*self.0;
        let deadline = Instant::now() + timeout;
        let mut open = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*open {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            open = cv
                .wait_timeout(open, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

/// A text unique to this process and call, for message bodies that must be
/// found again in a model request: `<tag>-<pid>-<n>-<nanos>`.
pub fn nonce(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Run the real `oxtail install-hook --client <client> --json` with `HOME`
/// (and, for Codex, `CODEX_HOME`) pointing at throwaway directories, the way
/// a user installs the hooks; returns its JSON report.
///
/// # Errors
/// When the command fails or prints no JSON.
pub fn install_hooks(
    oxtail: &Path,
    client: &str,
    home: &Path,
    codex_home: Option<&Path>,
) -> Result<Value> {
    let mut cmd = Command::new(oxtail);
    cmd.args(["install-hook", "--client", client, "--json"])
        .env_clear()
        .env("HOME", home)
        .stdin(Stdio::null());
    if let Some(p) = std::env::var_os("PATH") {
        cmd.env("PATH", p);
    }
    if let Some(c) = codex_home {
        cmd.env("CODEX_HOME", c);
    }
    let out = cmd.output().context("run oxtail install-hook")?;
    if !out.status.success() {
        bail!(
            "oxtail install-hook --client {client} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "install-hook printed no JSON: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Spawns the real `oxtail <args…>` (a hook: `["hook", "pre-tool-use"]`)
/// of `ox` with `payload` on its stdin and `env` set, in the payload's
/// `cwd` when that is a directory (as the clients run hooks); the test's
/// own `CLAUDE_CODE_ENTRYPOINT` and `OXTAIL_CONFLICT` are removed first,
/// so only `env` decides them. Stdout and stderr are piped.
///
/// # Errors
/// When the process cannot be spawned or its stdin written.
pub fn spawn_hook(
    ox: &crate::harness::Instance,
    args: &[&str],
    payload: &Value,
    env: &[(&str, String)],
) -> Result<std::process::Child> {
    use std::io::Write;
    let mut cmd = ox.command();
    cmd.args(args)
        .env_remove("CLAUDE_CODE_ENTRYPOINT")
        .env_remove("OXTAIL_CONFLICT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(dir) = payload["cwd"].as_str().filter(|d| Path::new(d).is_dir()) {
        cmd.current_dir(dir);
    }
    let mut c = cmd.spawn().context("spawn oxtail hook")?;
    c.stdin
        .take()
        .context("hook stdin")?
        .write_all(payload.to_string().as_bytes())?;
    Ok(c)
}

/// [`spawn_hook`], then its output once it exits.
///
/// # Errors
/// When the process cannot be run.
pub fn run_hook(
    ox: &crate::harness::Instance,
    args: &[&str],
    payload: &Value,
    env: &[(&str, String)],
) -> Result<std::process::Output> {
    Ok(spawn_hook(ox, args, payload, env)?.wait_with_output()?)
}

/// A hook's stdout JSON, `None` when it printed nothing. Panics unless it
/// exited 0 (showing its stderr) or when stdout is not one JSON object.
pub fn hook_json(o: &std::process::Output) -> Option<Value> {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    if o.stdout.is_empty() {
        return None;
    }
    Some(serde_json::from_slice(&o.stdout).expect("hook stdout is one JSON object"))
}

/// Runs the real `oxtail hook <event_arg>` of `ox` as Claude Code runs it
/// for a session hosted by process `claude_pid` (`CLAUDECODE=1`,
/// `CLAUDE_PID`), with `payload` on stdin, and returns its output.
///
/// # Errors
/// When the process cannot be run.
pub fn run_claude_hook(
    ox: &crate::harness::Instance,
    event_arg: &str,
    payload: &Value,
    claude_pid: u32,
) -> Result<std::process::Output> {
    let env = [
        ("CLAUDECODE", "1".to_string()),
        ("CLAUDE_PID", claude_pid.to_string()),
    ];
    run_hook(ox, &["hook", event_arg], payload, &env)
}

/// A Claude Code SessionStart (`source`: `startup`, `clear`, `resume`,
/// `compact`) for `session` in `cwd`, hosted by process `claude_pid`,
/// through the real `oxtail hook session-start`. Panics unless it exits 0.
pub fn claude_session_start(
    ox: &crate::harness::Instance,
    claude_pid: u32,
    session: &str,
    source: &str,
    cwd: &Path,
) {
    let payload = json!({
        "session_id": session,
        "transcript_path": format!("/nowhere/{session}.jsonl"),
        "cwd": cwd,
        "hook_event_name": "SessionStart",
        "source": source,
    });
    let env = [
        ("CLAUDECODE", "1".to_string()),
        ("CLAUDE_PID", claude_pid.to_string()),
        ("CLAUDE_CODE_SESSION_ID", session.to_string()),
    ];
    let out = run_hook(ox, &["hook", "session-start"], &payload, &env)
        .expect("oxtail hook session-start runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A peer's edit of `file` (absolute) in `cwd`, reported by its real hooks
/// (PreToolUse then PostToolUse, Claude Code 2.1.329 payloads), so the
/// daemon counts `session` as having edited it.
///
/// # Errors
/// When a hook cannot be run or fails.
pub fn claude_edited(
    ox: &crate::harness::Instance,
    session: &str,
    claude_pid: u32,
    cwd: &Path,
    file: &Path,
) -> Result<()> {
    for (event, arg) in [
        ("PreToolUse", "pre-tool-use"),
        ("PostToolUse", "post-tool-use"),
    ] {
        let payload = serde_json::json!({
            "session_id": session, "cwd": cwd, "hook_event_name": event,
            "transcript_path": format!("/nonexistent/{session}.jsonl"),
            "permission_mode": "default", "tool_name": "Edit", "tool_use_id": "toolu_peer",
            "tool_input": {"file_path": file, "old_string": "x", "new_string": "y"},
        });
        let out = run_claude_hook(ox, arg, &payload, claude_pid)?;
        if !out.status.success() {
            bail!(
                "oxtail hook {arg} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

/// Poll `f` every 50 ms until it yields `Some`, for at most `timeout`.
///
/// # Errors
/// After `timeout`, naming `what`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The events of the daemon's NDJSON trace file (`MCP_TRACE_FILE`), skipping
/// lines that do not parse.
pub fn trace_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The first `--- id: <id>` in rendered peer mail (oxtail leads every
/// delivered message with it), e.g. to script a `reply_to_message` call.
pub fn rendered_message_id(text: &str) -> Option<String> {
    let at = text.find("--- id: ")? + "--- id: ".len();
    let id: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    (!id.is_empty()).then_some(id)
}

/// An instance whose daemon is started here (so it gets `env`, not a
/// shim's environment), a git project `proj` in it, and a peer agent there:
/// Claude Code session `peer-session`, named `peer`, with state card
/// `purpose`. Panics when any step fails.
pub async fn instance_with_peer(
    bin: &str,
    env: &[(&str, &str)],
    purpose: &str,
) -> (Instance, PathBuf, Agent) {
    let ox = Instance::with_env(bin, env);
    ox.ctl(&["ping"]).expect("daemon starts");
    let repo = ox.git_repo("proj");
    let peer = ox
        .agent(AgentOpts::claude(&repo, "peer-session"))
        .await
        .expect("the peer's shim starts");
    peer.ok("set_my_state", json!({"purpose": purpose, "name": "peer"}))
        .await
        .expect("the peer names itself");
    (ox, repo, peer)
}

/// Polls `peer`'s `list_project_sessions` every 100 ms until a row
/// satisfies `pred`, and returns it. Panics after `timeout`, naming `what`
/// and showing the last list and the daemon's log.
pub async fn wait_row(
    ox: &Instance,
    peer: &Agent,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let list = peer.ok("list_project_sessions", json!({})).await.unwrap();
        if let Some(row) = list["sessions"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| pred(r)))
        {
            return row.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not in time: {list}\ndaemon log:\n{}",
            std::fs::read_to_string(ox.home().join("daemon.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_opens_once_for_all_waiters() {
        let g = Gate::new();
        assert!(!g.wait(Duration::from_millis(10)));
        let g2 = g.clone();
        let t = std::thread::spawn(move || g2.wait(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        g.open();
        assert!(t.join().unwrap());
        assert!(g.wait(Duration::ZERO));
        assert!(g.is_open());
    }

    #[test]
    fn message_id_from_rendered_mail() {
        let text = "[oxtail] …\n--- id: msg_01ab | from_session_id: peer ---\n[peer] hi";
        assert_eq!(rendered_message_id(text).as_deref(), Some("msg_01ab"));
        assert_eq!(rendered_message_id("nothing here"), None);
        assert_ne!(nonce("x"), nonce("x"));
    }
}
