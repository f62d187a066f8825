//! Codex 0.169 running a real `apply_patch` (through its shell tool, as a
//! heredoc, which Codex intercepts and applies itself) against the real
//! oxtail hooks: PreToolUse fires for it, and the patch's files become the
//! agent's recent edits. The raw PreToolUse payloads are kept under
//! `OXTAIL_CAPTURE_DIR` when it is set (how the fixture was captured).
//!
//! Skips with a message when `codex` is not installed.

use std::path::Path;
use std::time::{Duration, Instant};

use oxtail_tests::claude::McpServer;
use oxtail_tests::codex::{codex_or_skip, CodexExec, CodexHome};
use oxtail_tests::e2e::install_hooks;
use oxtail_tests::fake_openai::{response_index, FakeOpenAi, ScriptedResponse};
use oxtail_tests::harness::{AgentOpts, Instance};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");
const DEADLINE: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_apply_patch_fires_pre_tool_use_and_records_its_files() {
    let Some(codex) = codex_or_skip() else {
        return;
    };
    let ox = Instance::new(BIN);
    ox.ctl(&["ping"]).expect("daemon starts");
    let repo = ox.git_repo("proj");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(repo.join("src/old.rs"), "a\n").unwrap();
    std::fs::write(repo.join("gone.md"), "bye\n").unwrap();
    let peer = ox
        .agent(AgentOpts::claude(&repo, "peer-session"))
        .await
        .unwrap();
    let patch = "*** Begin Patch\n*** Add File: src/new.rs\n+pub fn n() {}\n*** Update File: src/old.rs\n*** Move to: src/renamed.rs\n@@\n-a\n+b\n*** Delete File: gone.md\n*** End Patch\n";
    let cmd = format!("apply_patch <<'EOF'\n{patch}EOF\n");
    let server = FakeOpenAi::start_with(move |req| match response_index(req) {
        0 => ScriptedResponse::shell(&cmd),
        _ => ScriptedResponse::text("done"),
    });
    let home = CodexHome::new(&server.base_url()).unwrap();
    home.add_mcp_server(
        &McpServer::new("oxtail", BIN)
            .arg("mcp")
            .env("OXTAIL_HOME", ox.home()),
    )
    .unwrap();
    home.trust_project(&repo).unwrap();
    install_hooks(
        Path::new(BIN),
        "codex",
        home.path(),
        Some(&home.codex_home()),
    )
    .unwrap();
    // Keep the raw PreToolUse payloads next to oxtail's own hook.
    let capture = std::env::var("OXTAIL_CAPTURE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| ox.dir.path().join("capture"));
    std::fs::create_dir_all(&capture).unwrap();
    let hooks_path = home.hooks_path();
    let mut hooks: Value =
        serde_json::from_str(&std::fs::read_to_string(&hooks_path).unwrap()).unwrap();
    hooks["hooks"]["PreToolUse"]
        .as_array_mut()
        .unwrap()
        .push(json!({"hooks": [{
            "type": "command",
            "command": format!("sh -c 'cat > {}/pre-$$.json'", capture.display()),
            "timeout": 30
        }]}));
    std::fs::write(&hooks_path, hooks.to_string()).unwrap();

    let out = CodexExec::new(&codex, &home, &repo, "apply the patch")
        .arg("--dangerously-bypass-hook-trust")
        .env("OXTAIL_HOME", ox.home().to_string_lossy())
        .timeout(DEADLINE)
        .run_async()
        .await
        .unwrap();
    assert!(out.success(), "{}\n{}", out.describe(), server.transcript());
    assert!(
        repo.join("src/renamed.rs").exists(),
        "the patch applied:\n{}",
        out.describe()
    );

    let payloads: Vec<Value> = std::fs::read_dir(&capture)
        .unwrap()
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).ok()?).ok())
        .collect();
    let fired = payloads
        .iter()
        .find(|p| p.to_string().contains("*** Begin Patch"))
        .unwrap_or_else(|| panic!("no PreToolUse carried the patch: {payloads:?}"));
    eprintln!("apply_patch PreToolUse payload: {fired}");

    let end = Instant::now() + DEADLINE;
    loop {
        let lc = peer.ok("list_claims", json!({})).await.unwrap();
        let mut paths: Vec<String> = lc["recent_edits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect();
        paths.sort();
        if paths == ["gone.md", "src/new.rs", "src/old.rs", "src/renamed.rs"] {
            break;
        }
        assert!(Instant::now() < end, "edits not recorded: {lc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
