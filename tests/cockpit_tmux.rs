//! `oxtail oxpit` in a real terminal: a pane on a private tmux server
//! (`oxtail_tests::tui::TmuxServer`), with a real tmux client attached to it
//! (itself running in a pane of a second private server), keys sent with
//! `send-keys`, the screen read with `capture-pane`, and ⏎ checked by asking
//! tmux which pane the client now shows. Both servers are killed by name at
//! the end.
//!
//! * `oxpit_from_a_saved_snapshot_jumps_to_real_panes`: the TUI fed by a
//!   saved `status --json` file (no daemon needed) whose agents point at
//!   real panes.
//! * `oxpit_live_against_a_real_daemon_and_shims`: real daemon, real shims
//!   hosted in tmux panes, the cockpit subscribed. Skipped (with a message)
//!   only when the daemon answers the status request `unsupported`.

use oxtail_cockpit::fleet::shell_quote;
use oxtail_tests::harness::Instance;
use oxtail_tests::tui::TmuxServer;
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");
/// The visible screen of `target` (no scrollback: what the person sees).
fn screen(server: &TmuxServer, target: &str) -> String {
    String::from_utf8_lossy(&server.output(&["capture-pane", "-p", "-t", target]).stdout)
        .into_owned()
}

/// Polls the screen of `target` until `pred` holds.
fn wait_screen(
    server: &TmuxServer,
    target: &str,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let s = screen(server, target);
        if pred(&s) {
            return s;
        }
        if Instant::now() > end {
            panic!("timed out waiting for {what}; screen of {target}:\n{s}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `(client name, session, pane id)` of the first client attached to
/// `server`.
fn client(server: &TmuxServer) -> Option<(String, String, String)> {
    let o = server.output(&[
        "list-clients",
        "-F",
        "#{client_name}|#{session_name}|#{pane_id}",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let l = out.lines().next()?;
    let f: Vec<&str> = l.split('|').collect();
    (f.len() == 3).then(|| (f[0].into(), f[1].into(), f[2].into()))
}

/// Waits until `server`'s client shows `pane`.
fn wait_client_on(server: &TmuxServer, pane: &str) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let c = client(server);
        if c.as_ref().is_some_and(|c| c.2 == pane) {
            return;
        }
        if Instant::now() > end {
            panic!(
                "the tmux client did not move to {pane}: {c:?}; cockpit screen:\n{}",
                screen(server, "cockpit")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the cockpit in session `cockpit` of `inner` and attaches a real
/// tmux client to it from a pane of `outer`.
fn start_cockpit(inner: &TmuxServer, outer: &TmuxServer, home: &Path, cwd: &Path, args: &str) {
    let cmd = format!(
        "{} oxpit {args}; echo OXPIT_EXIT=$?; sleep 600",
        shell_quote(BIN)
    );
    inner.ok(&[
        "new-session",
        "-d",
        "-s",
        "cockpit",
        "-x",
        "150",
        "-y",
        "40",
        "-c",
        &cwd.display().to_string(),
        "-e",
        &format!("OXTAIL_HOME={}", home.display()),
        &cmd,
    ]);
    let attach = format!("env -u TMUX tmux -L {} attach -t cockpit", inner.name());
    outer.ok(&[
        "new-session",
        "-d",
        "-s",
        "outer",
        "-x",
        "150",
        "-y",
        "40",
        &attach,
    ]);
    let end = Instant::now() + Duration::from_secs(10);
    while client(inner).is_none() {
        assert!(Instant::now() < end, "the tmux client did not attach");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn key(inner: &TmuxServer, k: &str) {
    inner.ok(&["send-keys", "-t", "cockpit", k]);
}

fn back_to_cockpit(inner: &TmuxServer) {
    let (client, ..) = client(inner).expect("client");
    inner.ok(&["switch-client", "-c", &client, "-t", "cockpit"]);
    wait_client_on(
        inner,
        &inner.ok(&["display-message", "-p", "-t", "cockpit", "#{pane_id}"]),
    );
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn oxpit_from_a_saved_snapshot_jumps_to_real_panes() {
    let inner = TmuxServer::new();
    let outer = TmuxServer::new();
    let tmp = tempfile::tempdir().unwrap();
    inner.ok(&[
        "new-session",
        "-d",
        "-s",
        "agents",
        "-n",
        "w-alpha",
        "sleep 600",
    ]);
    inner.ok(&[
        "new-window",
        "-d",
        "-t",
        "agents:",
        "-n",
        "w-beta",
        "sleep 600",
    ]);
    let alpha = inner.ok(&[
        "display-message",
        "-p",
        "-t",
        "agents:w-alpha",
        "#{pane_id}",
    ]);
    let beta = inner.ok(&["display-message", "-p", "-t", "agents:w-beta", "#{pane_id}"]);
    let socket = inner.ok(&["display-message", "-p", "#{socket_path}"]);
    let now = now_ms();
    let row = |id: &str, name: &str, state: &str, pane: &str, win: u32| {
        json!({
            "client_session_id": id, "name": name, "client_type": "claude-code",
            "project_root": "/src/app",
            "liveness": {"state": state, "since_ms": now - 5000},
            "activity": {"state": "busy", "since_ms": now - 5000},
            "current_tool": {"tool": "Bash", "file_path": null, "since_ms": now - 1000},
            "purpose": {"purpose": format!("{name} at work"), "set_at_ms": now - 9000},
            "unread": 0, "open_obligations": 0, "awaiting": null,
            "worktree": "/src/app", "branch": "main",
            "tmux": {"socket": socket, "pane_id": pane, "session_name": "agents",
                     "window_index": win, "window_name": null}
        })
    };
    let snap = json!({
        "schema_version": 1, "generated_at_ms": now, "project_root": "/src/app",
        "agents": [row("a-1", "alpha", "live", &alpha, 0), row("b-2", "beta", "idle", &beta, 1)],
        "panes": [], "waits": [],
        "comms": [{"at_ms": now - 3000, "message_id": "msg_1", "from": "a-1", "from_name": "alpha",
                   "to": "b-2", "to_name": "beta", "kind": "ask", "body_preview": "which branch?",
                   "body_bytes": 13, "request_id": "req_1", "reply_to": null, "obligation": null,
                   "delivered": true}],
        "comms_total": 1
    });
    let file = tmp.path().join("snap.json");
    std::fs::write(&file, serde_json::to_vec(&snap).unwrap()).unwrap();

    start_cockpit(
        &inner,
        &outer,
        &tmp.path().join("home"),
        tmp.path(),
        &format!("--snapshot {}", shell_quote(&file.display().to_string())),
    );
    let s = wait_screen(&inner, "cockpit", "the agents", |s| {
        s.contains("alpha → beta  ❓  which branch?") && s.contains("q quit")
    });
    assert!(s.contains("⚙ bash"), "{s}");
    assert!(s.contains("alpha → beta  ❓  which branch?"), "{s}");
    // The first agent is selected; j selects beta.
    key(&inner, "j");
    wait_screen(&inner, "cockpit", "beta selected", |s| {
        s.lines().any(|l| l.starts_with('›') && l.contains("beta"))
    });
    // ⏎ moves the real client to beta's pane.
    key(&inner, "Enter");
    wait_client_on(&inner, &beta);
    let (_, session, _) = client(&inner).unwrap();
    assert_eq!(session, "agents");
    back_to_cockpit(&inner);
    // k and ⏎: alpha's pane.
    key(&inner, "k");
    key(&inner, "Enter");
    wait_client_on(&inner, &alpha);
    back_to_cockpit(&inner);
    // Views: help, the log, a thread; Esc back.
    key(&inner, "?");
    wait_screen(&inner, "cockpit", "help", |s| {
        s.contains("jump to the agent's tmux pane")
    });
    key(&inner, "l");
    wait_screen(&inner, "cockpit", "the comms log", |s| {
        s.contains("comms log · 1 shown of 1")
    });
    key(&inner, "w");
    wait_screen(&inner, "cockpit", "the thread", |s| {
        s.contains("thread · 1 message")
    });
    key(&inner, "Escape");
    // q quits with status 0 and the terminal restored (the shell's echo is
    // on the normal screen again).
    key(&inner, "q");
    let s = wait_screen(&inner, "cockpit", "oxpit to exit", |s| {
        s.contains("OXPIT_EXIT=")
    });
    assert!(s.contains("OXPIT_EXIT=0"), "{s}");
    assert!(
        !s.contains("alpha at work"),
        "the alternate screen was left: {s}"
    );
}

#[derive(Clone)]
struct Client;

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        let mut c = ClientConfig::default();
        c.capabilities = ClientCapabilities::default();
        c.client_info = Implementation::new("claude-code", "test");
        c
    }
}

/// A real shim hosted in a tmux pane (its seat is the pane's shell), driven
/// over two FIFOs by an MCP client in this process.
async fn pane_agent(
    inner: &TmuxServer,
    inst: &Instance,
    dir: &Path,
    cwd: &Path,
    window: &str,
    session_id: &str,
) -> (
    rmcp::service::RunningService<rmcp::RoleClient, Client>,
    String,
) {
    let fin = dir.join(format!("{window}.in"));
    let fout = dir.join(format!("{window}.out"));
    for f in [&fin, &fout] {
        let c = std::ffi::CString::new(f.display().to_string()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }
    let cmd = format!(
        "CLAUDECODE=1 CLAUDE_CODE_SESSION_ID={session_id} OXTAIL_HOME={} {} mcp <{} >{}; sleep 600",
        shell_quote(&inst.home().display().to_string()),
        shell_quote(BIN),
        shell_quote(&fin.display().to_string()),
        shell_quote(&fout.display().to_string()),
    );
    let target = if inner
        .output(&["has-session", "-t", "agents"])
        .status
        .success()
    {
        inner.ok(&[
            "new-window",
            "-d",
            "-t",
            "agents:",
            "-n",
            window,
            "-c",
            &cwd.display().to_string(),
            "-P",
            "-F",
            "#{pane_id}",
            &cmd,
        ])
    } else {
        inner.ok(&[
            "new-session",
            "-d",
            "-s",
            "agents",
            "-n",
            window,
            "-c",
            &cwd.display().to_string(),
            "-P",
            "-F",
            "#{pane_id}",
            &cmd,
        ])
    };
    let (w, r) = tokio::task::spawn_blocking(move || {
        let w = std::fs::OpenOptions::new().write(true).open(&fin).unwrap();
        let r = std::fs::OpenOptions::new().read(true).open(&fout).unwrap();
        (w, r)
    })
    .await
    .unwrap();
    let service = Client
        .serve((tokio::fs::File::from_std(r), tokio::fs::File::from_std(w)))
        .await
        .expect("MCP initialize over the FIFOs");
    (service, target)
}

async fn call(
    s: &rmcp::service::RunningService<rmcp::RoleClient, Client>,
    tool: &str,
    args: Value,
) -> Value {
    let mut p = CallToolRequestParams::new(tool.to_string());
    if let Value::Object(m) = args {
        p = p.with_arguments(m);
    }
    let r = s.call_tool(p).await.expect("tool call");
    let v = r.structured_content.expect("structured result");
    assert_eq!(v["ok"], json!(true), "{tool}: {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oxpit_live_against_a_real_daemon_and_shims() {
    let inst = Instance::new(BIN);
    let repo = inst.git_repo("app");
    let inner = TmuxServer::new();
    let outer = TmuxServer::new();
    let fifos = tempfile::tempdir().unwrap();
    let (alpha, alpha_pane) = pane_agent(
        &inner,
        &inst,
        fifos.path(),
        &repo,
        "w-alpha",
        "aaaaaaaa-0001",
    )
    .await;
    let (beta, beta_pane) = pane_agent(
        &inner,
        &inst,
        fifos.path(),
        &repo,
        "w-beta",
        "bbbbbbbb-0002",
    )
    .await;
    call(
        &alpha,
        "set_my_state",
        json!({"purpose": "parsing", "name": "alpha"}),
    )
    .await;
    call(
        &beta,
        "set_my_state",
        json!({"purpose": "reviewing", "name": "beta"}),
    )
    .await;
    call(
        &alpha,
        "send_message",
        json!({"target": "beta", "body": "ready for review"}),
    )
    .await;

    // Does this daemon serve status, and has it verified the panes?
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let out = inst
            .command()
            .args(["status", "--json", "--project"])
            .arg(&repo)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("does not serve the cockpit yet") {
            oxtail_tests::skip::skip_or_fail(&format!(
                "oxpit_live_against_a_real_daemon_and_shims: the daemon answers Ctl::Status `unsupported`: {err}"
            ));
            return;
        }
        assert!(out.status.success(), "status failed: {err}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let panes: Vec<&str> = v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["tmux"]["pane_id"].as_str())
            .collect();
        if panes.contains(&alpha_pane.as_str()) && panes.contains(&beta_pane.as_str()) {
            break;
        }
        assert!(
            Instant::now() < end,
            "the daemon never verified the agents' tmux panes ({alpha_pane}, {beta_pane}): {v:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    start_cockpit(
        &inner,
        &outer,
        &inst.home(),
        &repo,
        &format!("--project {}", shell_quote(&repo.display().to_string())),
    );
    let s = wait_screen(&inner, "cockpit", "the live fleet", |s| {
        s.contains("· live")
            && s.contains("alpha → beta  ·  ready for review")
            && s.contains("q quit")
    });
    assert!(s.contains("✉1"), "{s}");
    assert!(s.contains("parsing") && s.contains("reviewing"), "{s}");
    // Pushes, not polls: a new message shows up without a key press.
    call(
        &beta,
        "send_message",
        json!({"target": "alpha", "body": "looking now"}),
    )
    .await;
    wait_screen(&inner, "cockpit", "the pushed message", |s| {
        s.contains("beta → alpha  ·  looking now")
    });
    // alpha is selected first (rows sorted by name): ⏎ goes to its pane.
    key(&inner, "Enter");
    wait_client_on(&inner, &alpha_pane);
    back_to_cockpit(&inner);
    key(&inner, "j");
    key(&inner, "Enter");
    wait_client_on(&inner, &beta_pane);
    back_to_cockpit(&inner);
    // n nudges beta through the wake engine and shows the wake_status.
    key(&inner, "n");
    wait_screen(&inner, "cockpit", "the nudge result", |s| {
        s.contains("nudged beta: ") || s.contains("nudge failed")
    });
    // Read-only: beta's queued message was not drained by the cockpit.
    let inbox = inst.ctl(&["inbox", "bbbbbbbb-0002"]).unwrap();
    assert_eq!(inbox["queued"].as_array().map(Vec::len), Some(1), "{inbox}");
    key(&inner, "q");
    let s = wait_screen(&inner, "cockpit", "oxpit to exit", |s| {
        s.contains("OXPIT_EXIT=")
    });
    assert!(s.contains("OXPIT_EXIT=0"), "{s}");
    let _ = alpha.cancel().await;
    let _ = beta.cancel().await;
}
