//! The person's voice, through the real `oxtail send` / `oxtail nudge`
//! commands, a real daemon and a real shim, with Claude Code's rewake hook
//! armed (its long poll, as `oxtail hook idle-wait` makes it):
//!
//! * a nudge with nothing queued does not wake (the armed hook stays armed,
//!   so no turn is spent) and answers `nothing_to_deliver` with words;
//! * `oxtail send` wakes it with the message framed as the user's own
//!   words, not as peer context;
//! * `--check-in` wakes it with nothing queued, asking it to check in;
//! * unknown targets fail with a clear error and exit 1.

use oxtail_proto::{IdleWait, IdleWaitAnswer, Reply, Request, Role};
use oxtail_tests::harness::{AgentOpts, Instance};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// Arms an idle-wait for `session` on a thread; the handle yields its answer.
fn arm_idle_wait(ox: &Instance, session: &str) -> std::thread::JoinHandle<IdleWaitAnswer> {
    let mut c = ox.raw_client(Role::Hook).unwrap();
    let session = session.to_string();
    std::thread::spawn(move || {
        c.set_timeout(None).unwrap();
        match c
            .call(Request::IdleWait(IdleWait {
                session_id: session,
                client_pid: None,
                timeout_ms: 30_000,
                budget_chars: 9000,
            }))
            .unwrap()
        {
            Reply::Ok { value } => {
                let a: IdleWaitAnswer = serde_json::from_value(value).unwrap();
                // As the real hook does once it printed the mail.
                if let IdleWaitAnswer::Mail {
                    handover: Some(h), ..
                } = &a
                {
                    c.ack(*h, true).unwrap();
                }
                a
            }
            Reply::Error { code, message } => panic!("{code}: {message}"),
        }
    })
}

fn wait_idle_waiters(ox: &Instance, n: u64) {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if ox.ctl(&["stats"]).unwrap()["idle_waiters"] == n {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("idle waiters never reached {n}");
}

/// `oxtail <args> --json` in `cwd`: (exit code, answer).
fn oxtail_json(
    ox: &Instance,
    cwd: &std::path::Path,
    args: &[&str],
) -> (Option<i32>, Value, String) {
    let o = ox
        .command()
        .args(args)
        .arg("--json")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (
        o.status.code(),
        v,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn delivered(h: std::thread::JoinHandle<IdleWaitAnswer>) -> String {
    match h.join().unwrap() {
        IdleWaitAnswer::Mail { deliver, .. } => deliver,
        other => panic!("expected a wake, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nudge_send_and_check_in_speak_for_the_user() {
    // Two wakes a moment apart: no debounce in this test.
    let ox = Instance::with_env(
        BIN,
        &[
            ("OXTAIL_WAKE_DEBOUNCE_MS", "1"),
            ("OXTAIL_AUTOWAKE_MIN_INTERVAL_MS", "1"),
        ],
    );
    ox.ctl(&["ping"]).unwrap();
    let repo = ox.git_repo("proj");
    let bee = ox
        .agent(AgentOpts::claude(&repo, "bee-session"))
        .await
        .unwrap();
    bee.ok("set_my_state", json!({"purpose": "idle", "name": "bee"}))
        .await
        .unwrap();
    ox.mark("bee-session", "idle").unwrap();
    let waiter = arm_idle_wait(&ox, "bee-session");
    wait_idle_waiters(&ox, 1);

    // Nothing queued: no wake, the hook stays armed.
    let (code, v, err) = oxtail_json(&ox, &repo, &["nudge", "bee"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["wake_status"], "nothing_to_deliver", "{v}");
    assert!(v["wake_status_text"]
        .as_str()
        .unwrap()
        .contains("nothing is queued"));
    assert_eq!(ox.ctl(&["stats"]).unwrap()["idle_waiters"], 1);
    // The human line says it in words.
    let o = ox
        .command()
        .args(["nudge", "bee"])
        .current_dir(&repo)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(
        line.starts_with("nudged bee: not woken: nothing is queued"),
        "{line}"
    );

    // The person's message wakes it, framed as the user's own words.
    let (code, v, err) = oxtail_json(&ox, &repo, &["send", "bee", "stop editing main.rs"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["wake_status"], "fired", "{v}");
    let text = delivered(waiter);
    assert!(text.contains("[user] stop editing main.rs"), "{text}");
    assert!(text.contains("the user's own words"), "{text}");
    assert!(!text.contains("not instructions from your user"), "{text}");
    let inbox = bee.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(inbox["count"], 0, "drained by the wake: {inbox}");

    // A check-in, asked for explicitly, wakes it with nothing queued.
    let waiter = arm_idle_wait(&ox, "bee-session");
    wait_idle_waiters(&ox, 1);
    let (code, v, err) = oxtail_json(&ox, &repo, &["nudge", "bee", "--check-in"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["wake_status"], "fired", "{v}");
    let text = delivered(waiter);
    assert!(text.contains("asks you to check in"), "{text}");

    // Unknown target: exit 1 and a sentence.
    let (code, _, err) = oxtail_json(&ox, &repo, &["send", "nobody-here", "hi"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("send") && err.contains("nobody-here"), "{err}");
}

/// `oxtail hook <event>` as Claude Code runs it for `session`, seated on
/// the agent's shim parent.
fn hook(ox: &Instance, event: &str, session: &str, cwd: &std::path::Path, seat: u32, tool: &str) {
    use std::io::Write;
    let name = match event {
        "pre-tool-use" => "PreToolUse",
        _ => "Stop",
    };
    let mut p = json!({
        "session_id": session,
        "transcript_path": format!("/nonexistent/{session}.jsonl"),
        "cwd": cwd,
        "permission_mode": "default",
        "hook_event_name": name,
    });
    if name == "PreToolUse" {
        p["tool_name"] = json!(tool);
        p["tool_input"] = json!({});
        p["tool_use_id"] = json!("toolu_1");
    } else {
        p["stop_hook_active"] = json!(false);
    }
    let mut child = ox
        .command()
        .args(["hook", event, "--hooks-version", "1"])
        .env("CLAUDECODE", "1")
        .env("CLAUDE_PID", seat.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(p.to_string().as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn current_tool(ox: &Instance, repo: &std::path::Path, session: &str) -> Value {
    let o = ox
        .command()
        .args(["status", "--json"])
        .current_dir(repo)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["client_session_id"] == session)
        .unwrap_or_else(|| panic!("{session} not in {v}"))["current_tool"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_column_clears_when_the_turn_ends() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox
        .agent(AgentOpts::claude(&repo, "tool-session"))
        .await
        .unwrap();
    a.ok(
        "set_my_state",
        json!({"purpose": "working", "name": "worker"}),
    )
    .await
    .unwrap();
    let seat = a.pid.unwrap();
    hook(
        &ox,
        "pre-tool-use",
        "tool-session",
        &repo,
        seat,
        "mcp__oxtail__read_my_messages",
    );
    assert_eq!(
        current_tool(&ox, &repo, "tool-session")["tool"],
        "mcp__oxtail__read_my_messages"
    );
    // Stop: idle, and no longer "↔ oxtail".
    hook(&ox, "stop", "tool-session", &repo, seat, "");
    assert_eq!(current_tool(&ox, &repo, "tool-session"), Value::Null);
}
