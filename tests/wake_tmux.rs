//! The keys wake strategy against real tmux panes on a private server.
//!
//! Each fake agent is a small program standing in for a client process: it
//! runs in a tmux pane, hosts a real `oxtail mcp` shim as its child (so the
//! process tree links pane → client → shim), registers through it, then puts
//! its terminal in raw mode and logs every byte typed into the pane with a
//! timestamp. The test asserts the wake text arrives in the right pane and no
//! other, that Codex gets its Enter only after a pause, and that a pane id an
//! agent claims about itself is never typed into.

use oxtail_tests::harness::{AgentOpts, Instance};
use oxtail_tests::tui::{tmux_or_skip, SessionSpec, TmuxServer};
use serde_json::json;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

const FAKE_AGENT: &str = r#"
import json, os, subprocess, sys, time, tty
oxtail, log, name, client = sys.argv[1:5]
p = subprocess.Popen([oxtail, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def rpc(msg):
    p.stdin.write((json.dumps(msg) + "\n").encode()); p.stdin.flush()
def read():
    return json.loads(p.stdout.readline())
rpc({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": client, "version": "1"}}})
read()
rpc({"jsonrpc": "2.0", "method": "notifications/initialized"})
rpc({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "set_my_state", "arguments": {"purpose": "fake agent", "name": name}}})
r = read()
fd = sys.stdin.fileno()
tty.setraw(fd)
with open(log, "a") as f:
    f.write("READY " + json.dumps(r) + "\n")
while True:
    b = os.read(fd, 1)
    if not b:
        break
    with open(log, "a") as f:
        f.write("%.6f %s\n" % (time.time(), b.hex()))
"#;

/// Starts the shell command `cmd` in a new session `name` of `tmux`;
/// returns its pane id.
fn session(tmux: &TmuxServer, name: &str, cwd: &Path, cmd: &str) -> String {
    tmux.new_session(&SessionSpec::new(name, cwd, [cmd]))
        .unwrap()
        .id
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// (time, byte) pairs typed into a fake agent's pane.
fn typed(log: &Path) -> Vec<(f64, u8)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("READY"))
        .filter_map(|l| {
            let (t, h) = l.split_once(' ')?;
            Some((t.parse().ok()?, u8::from_str_radix(h, 16).ok()?))
        })
        .collect()
}

fn text_of(bytes: &[(f64, u8)]) -> String {
    String::from_utf8_lossy(&bytes.iter().map(|(_, b)| *b).collect::<Vec<_>>()).to_string()
}

fn fake_agent_cmd(
    ox: &Instance,
    script: &Path,
    log: &Path,
    name: &str,
    client: &str,
    session: &str,
) -> String {
    format!(
        "env OXTAIL_HOME={} CLAUDE_CODE_SESSION_ID={session} python3 {} {} {} {name} {client}",
        ox.home().display(),
        script.display(),
        ox.bin().display(),
        log.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_reach_the_verified_pane_only_with_codex_timing() {
    if !tmux_or_skip() {
        return;
    }
    let tmux = TmuxServer::new();
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let dir = ox.workdir("fake");
    let script = dir.join("fake_agent.py");
    std::fs::write(&script, FAKE_AGENT).unwrap();
    let logs: Vec<PathBuf> = ["claude", "codex", "decoy"]
        .iter()
        .map(|n| dir.join(format!("{n}.log")))
        .collect();

    let claude_pane = session(
        &tmux,
        "claude-sess",
        &repo,
        &fake_agent_cmd(
            &ox,
            &script,
            &logs[0],
            "fake-claude",
            "claude-code",
            "sess-fake-claude",
        ),
    );
    let codex_pane = session(
        &tmux,
        "codex-sess",
        &repo,
        &fake_agent_cmd(
            &ox,
            &script,
            &logs[1],
            "fake-codex",
            "codex-mcp-client",
            "sess-fake-codex",
        ),
    );
    // A decoy pane in the same project that hosts no agent.
    let decoy_pane = session(
        &tmux,
        "decoy",
        &repo,
        &fake_agent_cmd(&ox, &script, &logs[2], "decoy-agent", "other", "sess-decoy"),
    );
    for l in &logs {
        wait_for("fake agents to register", Duration::from_secs(20), || {
            std::fs::read_to_string(l)
                .unwrap_or_default()
                .contains("READY")
        });
    }
    let sender = ox
        .agent(AgentOpts::claude(&repo, "sess-sender"))
        .await
        .unwrap();

    // Claude-style client: text, then Enter at once.
    let v = sender
        .ok(
            "send_message",
            json!({"target": "fake-claude", "body": "hello", "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(v["wake_status"], "fired_unconfirmed", "{v}");
    wait_for(
        "the wake text in the claude pane",
        Duration::from_secs(10),
        || typed(&logs[0]).iter().any(|(_, b)| *b == b'\r'),
    );
    let got = typed(&logs[0]);
    let text = text_of(&got);
    assert!(
        text.starts_with("[oxtail] You have 1 new message from peer agents (from "),
        "{text:?}"
    );
    assert!(text.ends_with('\r'));
    // The wake text names the sender the agent can answer.
    let sender_name = ox.ctl(&["sessions"]).unwrap()["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["client_session_id"] == "sess-sender")
        .map(|r| r["name"].as_str().unwrap().to_string())
        .unwrap();
    assert!(text.contains(&format!("(from {sender_name})")), "{text:?}");

    // Codex-style client: the Enter follows only after a pause (its composer
    // turns an Enter within ~120 ms of typed text into a newline).
    let v = sender
        .ok(
            "send_message",
            json!({"target": "fake-codex", "body": "hello codex", "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(v["wake_status"], "fired_unconfirmed", "{v}");
    wait_for(
        "the wake text in the codex pane",
        Duration::from_secs(10),
        || typed(&logs[1]).iter().any(|(_, b)| *b == b'\r'),
    );
    let got = typed(&logs[1]);
    let last_text = got
        .iter()
        .filter(|(_, b)| *b != b'\r')
        .map(|(t, _)| *t)
        .fold(0.0, f64::max);
    let enter = got.iter().find(|(_, b)| *b == b'\r').unwrap().0;
    assert!(
        enter - last_text >= 0.45,
        "Codex Enter came {:.3}s after the text",
        enter - last_text
    );
    assert!(text_of(&got).contains("read_my_messages"));

    // A forged pane: an agent outside tmux claiming the decoy's pane in its
    // environment is never typed into.
    let socket = tmux.ok(&["display-message", "-p", "-t", &decoy_pane, "#{socket_path}"]);
    let forger = ox
        .agent(AgentOpts {
            cwd: repo.clone(),
            env: vec![
                ("CLAUDE_CODE_SESSION_ID".into(), "sess-forger".into()),
                ("TMUX_PANE".into(), decoy_pane.clone()),
                ("TMUX".into(), format!("{socket},1,0")),
            ],
            client_name: "claude-code".into(),
        })
        .await
        .unwrap();
    forger
        .ok(
            "set_my_state",
            json!({"purpose": "claims a pane", "name": "forger"}),
        )
        .await
        .unwrap();
    let v = sender
        .ok(
            "send_message",
            json!({"target": "forger", "body": "x", "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(v["wake_status"], "skipped_no_target", "{v}");

    // Nothing was typed into the decoy, and each agent got exactly one wake.
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        typed(&logs[2]).is_empty(),
        "decoy pane got keys: {:?}",
        text_of(&typed(&logs[2]))
    );
    assert_eq!(
        typed(&logs[0]).iter().filter(|(_, b)| *b == b'\r').count(),
        1
    );
    assert_eq!(
        typed(&logs[1]).iter().filter(|(_, b)| *b == b'\r').count(),
        1
    );
    let _ = (claude_pane, codex_pane);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_agent_panes_are_listed_and_readable_in_pane_mode() {
    if !tmux_or_skip() {
        return;
    }
    let tmux = TmuxServer::new();
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    // A plain shell pane in the project, hosting no agent.
    session(
        &tmux,
        "build-server",
        &repo,
        "sh -c 'echo BUILD-OUTPUT-1234; exec sleep 600'",
    );
    let other = ox.git_repo("elsewhere");
    session(
        &tmux,
        "foreign",
        &other,
        "sh -c 'echo FOREIGN; exec sleep 600'",
    );
    let agent = ox
        .agent(AgentOpts::claude(&repo, "sess-reader"))
        .await
        .unwrap();
    // The daemon must learn this tmux server exists: an agent whose
    // environment names it (as every agent started inside tmux has).
    let socket = tmux.ok(&[
        "display-message",
        "-p",
        "-t",
        "build-server",
        "#{socket_path}",
    ]);
    let _in_tmux = ox
        .agent(AgentOpts {
            cwd: repo.clone(),
            env: vec![
                ("CLAUDE_CODE_SESSION_ID".into(), "sess-tmux-user".into()),
                ("TMUX".into(), format!("{socket},1,0")),
            ],
            client_name: "claude-code".into(),
        })
        .await
        .unwrap();
    let mut list = serde_json::Value::Null;
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        list = agent.ok("list_project_sessions", json!({})).await.unwrap();
        if list["panes"].as_array().is_some_and(|p| !p.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let panes = list["panes"].as_array().unwrap();
    assert_eq!(panes.len(), 1, "only this project's pane: {list}");
    assert_eq!(panes[0]["tmux_session"], "build-server");
    let r = agent
        .ok(
            "read_session",
            json!({"name": "build-server", "mode": "pane"}),
        )
        .await
        .unwrap();
    assert_eq!(r["mode"], "pane", "{r}");
    assert!(
        r["pane_text"]
            .as_str()
            .unwrap()
            .contains("BUILD-OUTPUT-1234"),
        "{r}"
    );
    // Another project's pane is not readable from here (CONTRACT §6).
    let r = agent
        .call("read_session", json!({"name": "foreign", "mode": "pane"}))
        .await
        .unwrap();
    assert_eq!(r["error"], "session 'foreign' not in project scope", "{r}");
    assert_eq!(r["pane_text"], serde_json::Value::Null);
}
