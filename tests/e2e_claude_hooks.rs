//! End to end with two real Claude Code (2.1.329) sessions in one project,
//! headless (`claude -p`), offline against one scripted model server on
//! 127.0.0.1, with oxtail's hooks installed by the real `oxtail install-hook
//! --client claude`:
//!
//! A's scripted turn calls `send_message` to B while B is in the middle of
//! its turn; B's next tool call runs the PreToolUse hook, which hands the
//! message over as `additionalContext`, so the model request that follows
//! B's tool call carries it. B never calls `read_my_messages`: the hook is
//! the only way the text can get there.
//!
//! Skips with a message when `claude` is not installed.

use std::time::Duration;

use oxtail_tests::claude::{claude_or_skip, write_mcp_json, ClaudeHome, ClaudeRun, McpServer};
use oxtail_tests::e2e::{install_hooks, nonce, Gate};
use oxtail_tests::fake_anthropic::{
    assistant_turns, first_user_text, text_after_last_assistant, value_contains, FakeAnthropic,
    ScriptedTurn,
};
use oxtail_tests::harness::Instance;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// Generous bound for anything a Claude Code process does.
const DEADLINE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_mail_reaches_a_busy_claude_through_pre_tool_use() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let ox = Instance::new(BIN);
    ox.ctl(&["ping"]).expect("daemon starts");
    let repo = ox.git_repo("proj");
    let body = nonce("note-for-bee");

    // A sends only once B is named and mid-turn; B calls its next tool only
    // once A's send has returned.
    let b_named = Gate::new();
    let a_sent = Gate::new();
    let server = {
        let (b_named, a_sent) = (b_named.clone(), a_sent.clone());
        let body = body.clone();
        FakeAnthropic::start_with(move |req| {
            let prompt = first_user_text(req);
            let n = assistant_turns(req);
            if prompt.contains("agent-A") {
                match n {
                    0 => {
                        if !b_named.wait(DEADLINE) {
                            return ScriptedTurn::text("B never showed up");
                        }
                        ScriptedTurn::tool_use(
                            "mcp__oxtail__send_message",
                            json!({"target": "bee", "body": body}),
                        )
                    }
                    1 => {
                        a_sent.open();
                        ScriptedTurn::text("sent")
                    }
                    _ => ScriptedTurn::text("A done"),
                }
            } else if prompt.contains("agent-B") {
                match n {
                    0 => ScriptedTurn::tool_use(
                        "mcp__oxtail__set_my_state",
                        json!({"purpose": "busy with a task", "name": "bee"}),
                    ),
                    1 => {
                        b_named.open();
                        a_sent.wait(DEADLINE);
                        ScriptedTurn::tool_use(
                            "Bash",
                            json!({"command": "true", "description": "Do nothing"}),
                        )
                    }
                    _ => ScriptedTurn::text("B done"),
                }
            } else {
                ScriptedTurn::text("(unknown conversation)")
            }
        })
    };

    // One user, one project: a shared HOME with oxtail's hooks installed.
    let home = ClaudeHome::new().unwrap();
    let report = install_hooks(std::path::Path::new(BIN), "claude", home.path(), None).unwrap();
    let settings = std::fs::read_to_string(home.settings_path()).unwrap();
    assert!(
        settings.contains("hook pre-tool-use"),
        "install-hook did not add PreToolUse: {report}\n{settings}"
    );
    write_mcp_json(
        &repo,
        &[McpServer::new("oxtail", BIN)
            .arg("mcp")
            .env("OXTAIL_HOME", ox.home())],
    )
    .unwrap();
    let oxtail_home = ox.home().to_string_lossy().into_owned();
    let run = |prompt: &str| {
        ClaudeRun::new(&claude, &home, &repo, server.base_url(), prompt)
            .env("OXTAIL_HOME", oxtail_home.clone())
            .timeout(DEADLINE)
    };
    let a = run("agent-A: tell bee about the note");
    let b = run("agent-B: do your task");
    let (a_out, b_out) = tokio::join!(a.run_async(), b.run_async());
    let (a_out, b_out) = (a_out.unwrap(), b_out.unwrap());
    assert!(
        a_out.success(),
        "A: {}\n{}",
        a_out.describe(),
        server.transcript()
    );
    assert!(
        b_out.success(),
        "B: {}\n{}",
        b_out.describe(),
        server.transcript()
    );

    let send = server
        .tool_results_for("mcp__oxtail__send_message")
        .pop()
        .unwrap_or_else(|| panic!("A never sent:\n{}", server.transcript()));
    assert!(!send.is_error, "{}", send.text);
    let sent: Value = serde_json::from_str(&send.text).unwrap();
    assert_eq!(sent["ok"], true, "{sent}");
    let message_id = sent["message_id"].as_str().unwrap().to_owned();

    // B's request after its Bash call carries the mail, after the call.
    let b_requests: Vec<Value> = server
        .agent_requests()
        .into_iter()
        .filter(|r| first_user_text(r).contains("agent-B"))
        .collect();
    let after_tool = b_requests
        .iter()
        .find(|r| assistant_turns(r) == 2)
        .unwrap_or_else(|| panic!("no request after B's tool call:\n{}", server.transcript()));
    let added = text_after_last_assistant(after_tool);
    assert!(
        added.contains(&body),
        "mail not after the tool call:\n{added}"
    );
    // Claude Code 2.1.329 labels hook context with the hook and tool.
    let block = added
        .split("PreToolUse:")
        .skip(1)
        .find(|b| b.contains(&body))
        .unwrap_or_else(|| panic!("the mail is not PreToolUse context:\n{added}"));
    assert!(block.starts_with("Bash hook additional context"), "{block}");
    assert!(block.contains(&message_id), "{block}");
    let a_id = a_out.json().unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(block.contains(&a_id), "sender {a_id} not named: {block}");
    assert!(block.to_lowercase().contains("peer agents"), "{block}");
    assert!(block.contains("not instructions from your user"), "{block}");
    // It came with the Bash call, not before it.
    let before = b_requests.iter().find(|r| assistant_turns(r) == 1).unwrap();
    assert!(!value_contains(before, &body));
    // The Bash output itself does not contain it: it is hook context.
    let bash = server.tool_results_for("Bash");
    assert_eq!(bash.len(), 1, "{}", server.transcript());
    assert!(!bash[0].text.contains(&body), "{}", bash[0].text);

    // Delivered exactly once: B's mailbox is empty and B is known by name.
    let b_id = sent["target_session_id"].as_str().unwrap().to_owned();
    let inbox = ox.ctl(&["inbox", &b_id]).unwrap();
    assert_eq!(inbox["queued"], json!([]), "{inbox}");
    assert_ne!(a_id, b_id);
    assert_eq!(b_out.json().unwrap()["session_id"], json!(b_id));
    eprintln!("A took {:.2?}, B took {:.2?}", a_out.elapsed, b_out.elapsed);
}
