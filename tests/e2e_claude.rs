//! End to end with the real Claude Code CLI, headless, offline: it loads
//! oxtail from the project's `.mcp.json`, its scripted turn calls
//! `set_my_state` and `send_message`, and a second agent (a real shim driven
//! by rmcp) reads the message. Skipped with a message when `claude` is not
//! installed (`.ci/run` installs it).

use oxtail_tests::claude::{claude_or_skip, write_mcp_json, ClaudeHome, ClaudeRun, McpServer};
use oxtail_tests::e2e::instance_with_peer;
use oxtail_tests::fake_anthropic::{FakeAnthropic, ScriptedTurn};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_sets_state_and_messages_a_peer() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    // The peer is already here, so Claude's send has a target.
    let (ox, repo, peer) = instance_with_peer(BIN, &[], "waiting for mail").await;

    let server = FakeAnthropic::start(vec![
        ScriptedTurn::tool_use(
            "mcp__oxtail__set_my_state",
            json!({"purpose": "e2e: talking to peer", "name": "claude-e2e"}),
        ),
        ScriptedTurn::tool_use(
            "mcp__oxtail__send_message",
            json!({"target": "peer", "body": "hello from real Claude Code"}),
        ),
        ScriptedTurn::text("done"),
    ]);
    let home = ClaudeHome::new().unwrap();
    write_mcp_json(
        &repo,
        &[McpServer::new("oxtail", BIN)
            .arg("mcp")
            .env("OXTAIL_HOME", ox.home().to_str().unwrap())],
    )
    .unwrap();
    let run = ClaudeRun::new(
        &claude,
        &home,
        &repo,
        server.base_url(),
        "talk to your peer",
    );
    let out = tokio::task::spawn_blocking(move || run.run())
        .await
        .unwrap()
        .unwrap();
    assert!(out.success(), "{}\n{}", out.describe(), server.transcript());

    // Claude saw its tools succeed.
    let results = server.tool_results();
    let set = results
        .iter()
        .find(|r| r.tool_name.as_deref() == Some("mcp__oxtail__set_my_state"))
        .unwrap_or_else(|| panic!("no set_my_state result:\n{}", server.transcript()));
    assert!(!set.is_error, "{}", set.text);
    let send = results
        .iter()
        .find(|r| r.tool_name.as_deref() == Some("mcp__oxtail__send_message"))
        .unwrap();
    assert!(!send.is_error, "{}", send.text);
    assert!(send.text.contains("message_id"), "{}", send.text);

    // The peer sees Claude's row and reads the message.
    let list = peer.ok("list_project_sessions", json!({})).await.unwrap();
    let row = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "claude-e2e")
        .unwrap_or_else(|| panic!("no row for Claude: {list}"))
        .clone();
    assert_eq!(row["client_type"], "claude-code");
    assert_eq!(row["state"]["purpose"], "e2e: talking to peer");
    let claude_session = row["client_session_id"].as_str().unwrap().to_string();
    // Its id is the real session id Claude Code gave the shim.
    assert!(
        home.transcripts()
            .iter()
            .any(|t| t.to_string_lossy().contains(&claude_session)),
        "transcripts {:?} do not include {claude_session}",
        home.transcripts()
    );

    let inbox = peer.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(inbox["count"], 1, "{inbox}");
    assert_eq!(inbox["messages"][0]["body"], "hello from real Claude Code");
    assert_eq!(
        inbox["messages"][0]["from_session_id"],
        json!(claude_session)
    );
    assert_eq!(inbox["messages"][0]["from_name"], "claude-e2e");
}
