//! End to end with the real Claude Code CLI (headless, offline against a
//! scripted model on 127.0.0.1): hooks installed by `oxtail install-hook`
//! hand a peer's message to Claude mid-turn. While B's first model request
//! is in flight, peer A sends B a message; B's PreToolUse hook (the real
//! `oxtail hook pre-tool-use` run by Claude Code) returns it as
//! `additionalContext`, and the model server sees it in B's next request.
//! This checks our hook output against the real client, not our own mock.
//! Skipped with a message when `claude` is not installed.

use oxtail_tests::claude::{claude_or_skip, write_mcp_json, ClaudeHome, ClaudeRun, McpServer};
use oxtail_tests::e2e::install_hooks;
use oxtail_tests::fake_anthropic::{assistant_turns, value_contains, FakeAnthropic, ScriptedTurn};
use oxtail_tests::harness::{AgentOpts, Instance};
use oxtail_tests::tui::{SessionSpec, TmuxServer};
use serde_json::{json, Value};

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

fn fresh_uuid() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let x = t ^ ((std::process::id() as u128) << 64);
    let h = format!("{x:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_tool_use_hook_hands_peer_mail_to_claude_mid_turn() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "peer-a")).await.unwrap();
    a.ok(
        "set_my_state",
        json!({"purpose": "reviewer", "name": "alice"}),
    )
    .await
    .unwrap();

    // Claude Code's HOME, with oxtail's hooks installed the way a user does.
    let home = ClaudeHome::new().unwrap();
    install_hooks(std::path::Path::new(BIN), "claude", home.path(), None).unwrap();
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(home.settings_path()).unwrap()).unwrap();
    assert_eq!(settings["enableAllProjectMcpServers"], true, "kept");
    write_mcp_json(
        &repo,
        &[McpServer::new("oxtail", BIN)
            .arg("mcp")
            .env("OXTAIL_HOME", ox.home().to_str().unwrap())],
    )
    .unwrap();

    // B's first model request waits until A's message is queued.
    let (up_tx, up_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let up_tx = Mutex::new(up_tx);
    let go_rx = Mutex::new(go_rx);
    let server = FakeAnthropic::start_with(move |req: &Value| match assistant_turns(req) {
        0 => {
            let _ = up_tx.lock().unwrap().send(());
            let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(60));
            ScriptedTurn::tool_use(
                "Bash",
                json!({"command": "echo working", "description": "work"}),
            )
        }
        1 => ScriptedTurn::text("noted the peer message"),
        _ => ScriptedTurn::text("done"),
    });

    let session_b = fresh_uuid();
    let run = ClaudeRun::new(&claude, &home, &repo, server.base_url(), "do the work")
        .arg("--session-id")
        .arg(session_b.clone())
        .env("OXTAIL_HOME", ox.home().to_str().unwrap());
    let claude_b = tokio::task::spawn_blocking(move || run.run());

    // B is up (its SessionStart hook registered it): send it mail.
    tokio::task::spawn_blocking(move || up_rx.recv_timeout(Duration::from_secs(90)))
        .await
        .unwrap()
        .expect("B's first model request");
    let body = "PEER-NOTE-7f3a: the API moved to v2, use /v2/items";
    a.ok("send_message", json!({"target": session_b, "body": body}))
        .await
        .unwrap();
    go_tx.send(()).unwrap();

    let out = claude_b.await.unwrap().unwrap();
    assert!(out.success(), "{}", out.describe());
    // The async idle-wait Stop hook stays out of headless runs: Claude Code
    // waits for async hooks (about 30 s) before `claude -p` exits.
    assert!(
        out.elapsed < Duration::from_secs(20),
        "claude -p was held {:?} by a hook",
        out.elapsed
    );
    let reqs = server.agent_requests();
    let second = reqs
        .iter()
        .find(|r| assistant_turns(r) == 1)
        .unwrap_or_else(|| panic!("no second request\n{}", server.transcript()));
    assert!(
        value_contains(second, body),
        "B's next request carries the peer message\n{}",
        server.transcript()
    );
    assert!(
        !value_contains(&reqs[0], body),
        "it was not there before the hook"
    );
    // Delivered by the hook, so nothing is left queued for B.
    let inbox = ox
        .ctl(&["inbox", &session_b])
        .unwrap_or_else(|e| panic!("inbox: {e}"));
    assert_eq!(inbox["queued"], json!([]), "{inbox}");
    // Claude Code 2.1.329 adds it as the newest message of that request
    // (a system-role message after the tool result).
    let last = second["messages"].as_array().unwrap().last().unwrap();
    assert!(value_contains(last, body), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_claude_tui_is_woken_by_idle_wait_without_typing() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    if !oxtail_tests::tui::tmux_or_skip() {
        return;
    }
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "peer-a")).await.unwrap();
    let home = ClaudeHome::new().unwrap();
    home.trust_project(&repo).unwrap();
    install_hooks(std::path::Path::new(BIN), "claude", home.path(), None).unwrap();
    write_mcp_json(
        &repo,
        &[McpServer::new("oxtail", BIN)
            .arg("mcp")
            .env("OXTAIL_HOME", ox.home().to_str().unwrap())],
    )
    .unwrap();

    let body = "WAKE-NOTE-91c2: CI on main is red, please look";
    let server = FakeAnthropic::start_with(move |req: &Value| {
        if value_contains(req, body) {
            ScriptedTurn::text("on it")
        } else {
            ScriptedTurn::text("hello, idle now")
        }
    });

    // B: the interactive TUI in a private tmux server, first prompt on the
    // command line, so nothing is ever typed into its pane.
    let session_b = fresh_uuid();
    let mut env = oxtail_tests::claude::claude_env(home.path(), &server.base_url());
    env.push(("OXTAIL_HOME".into(), ox.home().display().to_string()));
    env.push(("TERM".into(), "xterm-256color".into()));
    let tmux = TmuxServer::new();
    tmux.new_session(
        &SessionSpec::new(
            "b",
            &repo,
            [
                claude.to_string_lossy().into_owned(),
                "--session-id".into(),
                session_b.clone(),
                "say hello".into(),
            ],
        )
        .envs(env),
    )
    .unwrap();
    let screen = || {
        tmux.run(&["capture-pane", "-p", "-t", "b"])
            .unwrap_or_default()
    };

    // B answers its prompt, its turn ends, the async idle-wait arms.
    let first = server
        .wait_for_request_async(Duration::from_secs(90), |r| value_contains(r, "say hello"))
        .await;
    assert!(first.is_some(), "B never asked the model\n{}", screen());
    // Wait on state: B's Stop hook marked it idle and the daemon counts its
    // async idle-wait as armed (the two hooks run side by side, so either
    // may land first).
    let end = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let armed = ox.ctl(&["stats"]).unwrap()["idle_waiters"] == 1;
        let rows = a.ok("list_project_sessions", json!({})).await.unwrap();
        let idle = rows["sessions"].as_array().is_some_and(|r| {
            r.iter().any(|row| {
                row["client_session_id"] == session_b.as_str() && row["activity"]["state"] == "idle"
            })
        });
        if armed && idle {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "B never idle with its idle-wait armed (armed: {armed})\n{rows}\n{}\n{}",
            screen(),
            server.transcript()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let sent = a
        .ok(
            "send_message",
            json!({"target": session_b, "body": body, "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(sent["wake_status"], "fired", "{sent}");

    // Claude Code starts a turn on its own with the mail in context.
    let woke = server
        .wait_for_request_async(Duration::from_secs(60), |r| value_contains(r, body))
        .await;
    assert!(
        woke.is_some(),
        "the idle TUI was not woken\n{}\n{}",
        screen(),
        server.transcript()
    );
    let inbox = ox.ctl(&["inbox", &session_b]).unwrap();
    assert_eq!(inbox["queued"], json!([]), "{inbox}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_hook_blocks_the_turn_end_with_peer_mail() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "peer-a")).await.unwrap();
    let home = ClaudeHome::new().unwrap();
    install_hooks(std::path::Path::new(BIN), "claude", home.path(), None).unwrap();

    let body = "STOP-NOTE-55e1: before you stop, bump the version";
    let (up_tx, up_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let up_tx = Mutex::new(up_tx);
    let go_rx = Mutex::new(go_rx);
    let server = FakeAnthropic::start_with(move |req: &Value| {
        if value_contains(req, body) {
            return ScriptedTurn::text("bumped it");
        }
        // The only answer ends the turn (no tool call, so no PreToolUse):
        // it waits until the peer's mail is queued.
        let _ = up_tx.lock().unwrap().send(());
        let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(60));
        ScriptedTurn::text("all finished")
    });
    let session_b = fresh_uuid();
    let run = ClaudeRun::new(&claude, &home, &repo, server.base_url(), "finish up")
        .arg("--session-id")
        .arg(session_b.clone())
        .env("OXTAIL_HOME", ox.home().to_str().unwrap());
    let claude_b = tokio::task::spawn_blocking(move || run.run());
    tokio::task::spawn_blocking(move || up_rx.recv_timeout(Duration::from_secs(90)))
        .await
        .unwrap()
        .expect("B's first model request");
    a.ok("send_message", json!({"target": session_b, "body": body}))
        .await
        .unwrap();
    go_tx.send(()).unwrap();

    let out = claude_b.await.unwrap().unwrap();
    assert!(out.success(), "{}", out.describe());
    // The Stop hook's block made Claude Code continue with the mail, and
    // the continuation's own Stop (stop_hook_active) let the turn end.
    assert!(
        server.saw(body),
        "the continuation carries the mail\n{}",
        server.transcript()
    );
    assert_eq!(
        out.result_text().as_deref(),
        Some("bumped it"),
        "{}",
        out.describe()
    );
    let inbox = ox.ctl(&["inbox", &session_b]).unwrap();
    assert_eq!(inbox["queued"], json!([]), "{inbox}");
}
