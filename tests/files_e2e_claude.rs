//! End to end with the real Claude Code CLI (headless `claude -p`, offline
//! against a scripted model on 127.0.0.1) and the hooks `oxtail
//! install-hook` installs: under `OXTAIL_CONFLICT=deny`, Claude's Edit of a
//! file a live peer just edited is blocked by the real `oxtail hook
//! pre-tool-use`, the file stays as it was, and the model's next request
//! carries the reason naming the peer. Skipped when `claude` is missing.

use oxtail_tests::claude::{claude_or_skip, write_mcp_json, ClaudeHome, ClaudeRun, McpServer};
use oxtail_tests::e2e::{claude_edited, install_hooks};
use oxtail_tests::fake_anthropic::{assistant_turns, value_contains, FakeAnthropic, ScriptedTurn};
use oxtail_tests::harness::{AgentOpts, Instance};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_mode_blocks_claudes_edit_of_a_peers_file_with_the_reason() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let file = repo.join("src/a.rs");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "fn old() {}\n").unwrap();
    let a = ox.agent(AgentOpts::claude(&repo, "peer-a")).await.unwrap();
    a.ok(
        "set_my_state",
        json!({"purpose": "owns a.rs", "name": "alice"}),
    )
    .await
    .unwrap();
    // A edits src/a.rs (its real hooks, run by hand with a 2.1.329 payload).
    claude_edited(&ox, "peer-a", a.pid.unwrap(), &repo, &file).unwrap();

    let home = ClaudeHome::new().unwrap();
    install_hooks(std::path::Path::new(BIN), "claude", home.path(), None).unwrap();
    write_mcp_json(
        &repo,
        &[McpServer::new("oxtail", BIN)
            .arg("mcp")
            .env("OXTAIL_HOME", ox.home().to_str().unwrap())],
    )
    .unwrap();
    let path = file.to_str().unwrap().to_string();
    let server = FakeAnthropic::start_with(move |req: &Value| match assistant_turns(req) {
        0 => ScriptedTurn::tool_use("Read", json!({"file_path": path})),
        1 => ScriptedTurn::tool_use(
            "Edit",
            json!({"file_path": path, "old_string": "fn old() {}", "new_string": "fn new() {}"}),
        ),
        _ => ScriptedTurn::text("done"),
    });
    let run = ClaudeRun::new(&claude, &home, &repo, server.base_url(), "edit a.rs")
        .env("OXTAIL_HOME", ox.home().to_str().unwrap())
        .env("OXTAIL_CONFLICT", "deny");
    let out = tokio::task::spawn_blocking(move || run.run())
        .await
        .unwrap()
        .unwrap();
    assert!(out.success(), "{}", out.describe());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "fn old() {}\n",
        "the edit was blocked"
    );
    let after = server
        .agent_requests()
        .into_iter()
        .find(|r| assistant_turns(r) == 2)
        .unwrap_or_else(|| panic!("no request after the Edit\n{}", server.transcript()));
    let last = after["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        value_contains(&last, "`alice` (claude-code) edited `src/a.rs`"),
        "the reason reaches the model: {last}\n{}",
        server.transcript()
    );
}
