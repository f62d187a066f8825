//! A hook that gives up while the daemon is stopped must not cost the agent
//! its mail: after SIGCONT the daemon sees the request is past its deadline
//! and leaves the mail queued instead of draining it for nobody.

use oxtail_tests::harness::{kill_pid, AgentOpts, Instance};
use serde_json::json;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_survives_a_hook_that_timed_out_on_a_stopped_daemon() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sender")).await.unwrap();
    let b = ox
        .agent(AgentOpts::claude(&repo, "receiver"))
        .await
        .unwrap();
    b.ok("set_my_state", json!({"purpose": "working"}))
        .await
        .unwrap();
    let sent = a
        .ok(
            "send_message",
            json!({"target": "receiver", "body": "do not lose me"}),
        )
        .await
        .unwrap();

    let pid = ox.daemon_pid().unwrap();
    kill_pid(pid, libc::SIGSTOP);
    let payload = json!({
        "session_id": "receiver",
        "cwd": repo,
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "true"},
    });
    let started = Instant::now();
    let mut hook = ox
        .command()
        .args(["hook", "pre-tool-use"])
        .env("CLAUDECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    hook.stdin
        .take()
        .unwrap()
        .write_all(payload.to_string().as_bytes())
        .unwrap();
    let out = hook.wait_with_output().unwrap();
    let took = started.elapsed();
    kill_pid(pid, libc::SIGCONT);
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "nothing could be delivered while stopped"
    );
    assert!(
        took < Duration::from_secs(2),
        "the hook gave up within its budget ({took:?})"
    );

    // The late request is processed after SIGCONT, past its deadline: the
    // mail stays queued and reaches the agent later.
    let inbox = b.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(inbox["count"], 1, "{inbox}");
    assert_eq!(inbox["messages"][0]["id"], sent["message_id"]);
}

/// The daemon side of the same guarantee, made deterministic: a hook call
/// that reaches the daemon after its delivery deadline drains nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_call_past_its_deadline_drains_nothing() {
    use oxtail_proto::{HookAnswer, HookCall, HookEvent, Reply, Request, Role};
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sender")).await.unwrap();
    let b = ox
        .agent(AgentOpts::claude(&repo, "receiver"))
        .await
        .unwrap();
    b.ok("set_my_state", json!({"purpose": "working"}))
        .await
        .unwrap();
    a.ok(
        "send_message",
        json!({"target": "receiver", "body": "keep me"}),
    )
    .await
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let call = |deadline: u64| HookCall {
        event: HookEvent::PreToolUse,
        client: "claude-code".into(),
        payload: json!({"session_id": "receiver", "cwd": repo, "hook_event_name": "PreToolUse", "tool_name": "Bash"}),
        env: Default::default(),
        ppid: std::process::id(),
        deliver_budget_chars: Some(9000),
        deliver_deadline_ms: Some(deadline),
        conflict_mode: None,
    };
    let mut c = ox.raw_client(Role::Hook).unwrap();
    let answer = |r: Reply| -> HookAnswer {
        match r {
            Reply::Ok { value } => serde_json::from_value(value).unwrap(),
            Reply::Error { code, message } => panic!("{code}: {message}"),
        }
    };
    let late = answer(c.call(Request::Hook(call(now - 1))).unwrap());
    assert_eq!(late.delivered, 0);
    assert!(late.deliver.is_none());
    let log = std::fs::read_to_string(ox.home().join("daemon.log")).unwrap();
    assert!(log.contains("after its deadline"), "{log}");
    // In time, the same call delivers it.
    let ok = answer(c.call(Request::Hook(call(now + 60_000))).unwrap());
    assert_eq!(ok.delivered, 1);
    assert!(ok.deliver.unwrap().contains("keep me"));
}
