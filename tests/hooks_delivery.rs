//! Mail delivery through the real hook processes and the real daemon: a
//! peer's `send_message` reaches the receiver's PreToolUse hook as
//! `additionalContext`, its Stop hook as `decision: "block"`, and an idle
//! Claude Code session's `idle-wait` as stderr with exit 2; subagent calls
//! and `stop_hook_active` get nothing and leave the mail queued.

use oxtail_tests::e2e;
use oxtail_tests::harness::{AgentOpts, Instance};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// `oxtail hook <event> --hooks-version 1` as Claude Code runs it
/// (`CLAUDECODE=1`), with `env`.
fn claude_env<'a>(env: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
    let mut all = vec![("CLAUDECODE", "1".to_string())];
    all.extend_from_slice(env);
    all
}

fn run_hook(ox: &Instance, event: &str, payload: &Value, env: &[(&str, String)]) -> Output {
    e2e::run_hook(
        ox,
        &["hook", event, "--hooks-version", "1"],
        payload,
        &claude_env(env),
    )
    .unwrap()
}

fn spawn_hook(ox: &Instance, event: &str, payload: &Value, env: &[(&str, String)]) -> Child {
    e2e::spawn_hook(
        ox,
        &["hook", event, "--hooks-version", "1"],
        payload,
        &claude_env(env),
    )
    .unwrap()
}

fn payload(event: &str, session: &str, cwd: &Path) -> Value {
    let mut p = json!({
        "session_id": session,
        "transcript_path": format!("/nonexistent/{session}.jsonl"),
        "cwd": cwd,
        "permission_mode": "bypassPermissions",
        "hook_event_name": event,
    });
    match event {
        "PreToolUse" => {
            p["tool_name"] = json!("Bash");
            p["tool_input"] = json!({"command": "cargo test", "description": "run tests"});
            p["tool_use_id"] = json!("toolu_1");
        }
        "Stop" => {
            p["stop_hook_active"] = json!(false);
            p["last_assistant_message"] = json!("done");
        }
        _ => {}
    }
    p
}

fn stdout_json(o: &Output) -> Option<Value> {
    e2e::hook_json(o)
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_tool_use_and_stop_deliver_peer_mail() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    a.ok(
        "set_my_state",
        json!({"purpose": "sender", "name": "alice"}),
    )
    .await
    .unwrap();
    let b_env = vec![("CLAUDE_PID", b.pid.unwrap().to_string())];

    // Nothing queued: the hook says nothing.
    let o = run_hook(
        &ox,
        "pre-tool-use",
        &payload("PreToolUse", "sess-b", &repo),
        &b_env,
    );
    assert_eq!(stdout_json(&o), None);

    let sent = a
        .ok(
            "send_message",
            json!({"target": "sess-b", "body": "please rebase on main"}),
        )
        .await
        .unwrap();
    let mid = sent["message_id"].as_str().unwrap().to_string();

    // A subagent's tool call gets nothing; the mail stays queued.
    let mut sub = payload("PreToolUse", "sess-b", &repo);
    sub["agent_id"] = json!("agent-7");
    let o = run_hook(&ox, "pre-tool-use", &sub, &b_env);
    assert_eq!(stdout_json(&o), None);
    // stop_hook_active: no block, mail stays.
    let mut active = payload("Stop", "sess-b", &repo);
    active["stop_hook_active"] = json!(true);
    assert_eq!(stdout_json(&run_hook(&ox, "stop", &active, &b_env)), None);

    // The main agent's next tool call gets it as additionalContext.
    let o = run_hook(
        &ox,
        "pre-tool-use",
        &payload("PreToolUse", "sess-b", &repo),
        &b_env,
    );
    let v = stdout_json(&o).expect("mail delivered");
    assert_eq!(v["hookSpecificOutput"]["hookEventName"], "PreToolUse");
    let ctx = v["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(ctx.contains("please rebase on main"), "{ctx}");
    assert!(ctx.contains(&mid), "led by its message_id: {ctx}");
    assert!(ctx.contains("sess-a"), "names the sender: {ctx}");
    assert!(ctx.chars().count() <= 9000);
    // Drained: delivered once.
    let o = run_hook(
        &ox,
        "pre-tool-use",
        &payload("PreToolUse", "sess-b", &repo),
        &b_env,
    );
    assert_eq!(stdout_json(&o), None);

    // End of turn: Stop blocks with the mail as the reason.
    a.ok(
        "send_message",
        json!({"target": "sess-b", "body": "one more thing"}),
    )
    .await
    .unwrap();
    let o = run_hook(&ox, "stop", &payload("Stop", "sess-b", &repo), &b_env);
    let v = stdout_json(&o).expect("stop delivers");
    assert_eq!(v["decision"], "block");
    assert!(v["reason"].as_str().unwrap().contains("one more thing"));
    let o = run_hook(&ox, "stop", &payload("Stop", "sess-b", &repo), &b_env);
    assert_eq!(stdout_json(&o), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_budget_delivers_whole_messages_and_says_how_many_wait() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    b.ok("set_my_state", json!({"purpose": "receiver"}))
        .await
        .unwrap();
    let body = "x".repeat(400);
    for i in 0..5 {
        a.ok(
            "send_message",
            json!({"target": "sess-b", "body": format!("m{i} {body}")}),
        )
        .await
        .unwrap();
    }
    let env = vec![
        ("CLAUDE_PID", b.pid.unwrap().to_string()),
        ("OXTAIL_HOOK_BUDGET_CHARS", "1500".to_string()),
    ];
    let mut seen = 0;
    for _ in 0..5 {
        let o = run_hook(
            &ox,
            "pre-tool-use",
            &payload("PreToolUse", "sess-b", &repo),
            &env,
        );
        let Some(v) = stdout_json(&o) else { break };
        let ctx = v["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(ctx.chars().count() <= 1500, "{} chars", ctx.chars().count());
        let n = (0..5)
            .filter(|i| ctx.contains(&format!("m{i} {body}")))
            .count();
        assert!(n >= 1, "whole messages only: {ctx}");
        seen += n;
        if seen < 5 {
            // The daemon's closing line (daemon/src/render.rs).
            let wait = 5 - seen;
            let line = if wait == 1 {
                "1 more message is waiting".to_string()
            } else {
                format!("{wait} more messages are waiting")
            };
            assert!(ctx.contains(&line), "says how many wait: {ctx}");
        } else {
            assert!(!ctx.contains("more message"), "{ctx}");
        }
    }
    assert_eq!(seen, 5, "every message delivered exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_wait_wakes_with_mail_and_a_newer_waiter_retires_the_older() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    let env = vec![
        ("CLAUDE_PID", b.pid.unwrap().to_string()),
        ("OXTAIL_IDLE_WAIT_TIMEOUT_MS", "20000".to_string()),
    ];
    let stop = payload("Stop", "sess-b", &repo);
    // B's turn ends: the sync Stop marks it idle, the async idle-wait arms.
    assert_eq!(stdout_json(&run_hook(&ox, "stop", &stop, &env)), None);
    let mut first = spawn_hook(&ox, "idle-wait", &stop, &env);
    ox.wait_stat("idle_waiters", 1, Duration::from_secs(5))
        .expect("the first waiter arms");
    let mut second = spawn_hook(&ox, "idle-wait", &stop, &env);
    let st = wait_exit(&mut first, Duration::from_secs(5)).expect("older waiter retired");
    assert_eq!(st.code(), Some(0));
    let out = first.wait_with_output().unwrap();
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert!(
        second.try_wait().unwrap().is_none(),
        "newer waiter still armed"
    );

    a.ok(
        "send_message",
        json!({"target": "sess-b", "body": "wake up, tests are red", "wake": "auto"}),
    )
    .await
    .unwrap();
    let st = wait_exit(&mut second, Duration::from_secs(10)).expect("woken by mail");
    assert_eq!(st.code(), Some(2), "exit 2 is the rewake");
    let out = second.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wake up, tests are red"), "{err}");
    assert!(out.stdout.is_empty());
    // Delivered by the rewake: nothing left for the next hook.
    let o = run_hook(
        &ox,
        "pre-tool-use",
        &payload("PreToolUse", "sess-b", &repo),
        &env,
    );
    assert_eq!(stdout_json(&o), None);
}

fn idle_waiters(ox: &Instance) -> u64 {
    ox.ctl(&["stats"])
        .ok()
        .and_then(|v| v["idle_waiters"].as_u64())
        .unwrap_or(0)
}

async fn wait_for_waiters(ox: &Instance, n: u64, within: Duration) {
    let end = Instant::now() + within;
    while idle_waiters(ox) != n {
        assert!(Instant::now() < end, "expected {n} armed idle-wait(s)");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_wait_reconnects_when_the_daemon_restarts_mid_wait() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    let env = vec![
        ("CLAUDE_PID", b.pid.unwrap().to_string()),
        ("OXTAIL_IDLE_WAIT_TIMEOUT_MS", "60000".to_string()),
    ];
    let stop = payload("Stop", "sess-b", &repo);
    assert_eq!(stdout_json(&run_hook(&ox, "stop", &stop, &env)), None);
    let mut waiter = spawn_hook(&ox, "idle-wait", &stop, &env);
    wait_for_waiters(&ox, 1, Duration::from_secs(5)).await;

    let old = ox.kill_daemon().unwrap();
    ox.ctl(&["ping"]).unwrap();
    assert_ne!(ox.daemon_pid(), Some(old));
    // The waiter finds the new daemon by itself and arms again.
    wait_for_waiters(&ox, 1, Duration::from_secs(20)).await;
    assert!(waiter.try_wait().unwrap().is_none(), "still waiting");
    // Activity marks are in memory only; B's turn end is reported again so
    // the wake engine sees it idle on the new daemon.
    assert_eq!(stdout_json(&run_hook(&ox, "stop", &stop, &env)), None);

    a.ok(
        "send_message",
        json!({"target": "sess-b", "body": "after the restart", "wake": "auto"}),
    )
    .await
    .unwrap();
    let st = wait_exit(&mut waiter, Duration::from_secs(10)).expect("woken after restart");
    assert_eq!(st.code(), Some(2));
    let out = waiter.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("after the restart"));
}
