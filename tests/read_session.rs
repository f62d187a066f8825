//! `read_session` through real shims against the real transcripts captured
//! from Claude Code 2.1.329 and Codex 0.169.0, placed where those clients
//! write them under the daemon's HOME.

use oxtail_tests::harness::{AgentOpts, Instance};
use serde_json::json;
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures");
const CLAUDE_ID: &str = "2c180f22-1e84-4821-9f7b-88a16c43e3e2";
const CODEX_ID: &str = "01a1fc7c-f019-7f70-bd45-c4e66d586f46";

fn mangled(cwd: &Path) -> String {
    cwd.to_str()
        .unwrap()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_real_claude_and_codex_transcripts_with_provenance() {
    let home = tempfile::tempdir().unwrap();
    let ox = Instance::with_env(BIN, &[("HOME", home.path().to_str().unwrap())]);
    let repo = ox.git_repo("proj");
    let repo = repo.canonicalize().unwrap();

    // Claude Code writes ~/.claude/projects/<cwd, non-alphanumerics as '-'>/<session>.jsonl
    let cdir = home.path().join(".claude/projects").join(mangled(&repo));
    std::fs::create_dir_all(&cdir).unwrap();
    let src = format!("{FIXTURES}/claude-code-2.1.329/transcripts/{CLAUDE_ID}.jsonl");
    let mut text = std::fs::read_to_string(&src).unwrap();
    // A torn last line, as if the client were mid-write: skipped, not fatal.
    text.push_str("{\"type\":\"assistant\",\"message\":{\"role\":\"assis");
    std::fs::write(cdir.join(format!("{CLAUDE_ID}.jsonl")), text).unwrap();
    // Codex writes $CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread>.jsonl
    let xdir = home.path().join(".codex/sessions/2026/11/21");
    std::fs::create_dir_all(&xdir).unwrap();
    let rollout = format!("rollout-2026-11-21T05-03-28-{CODEX_ID}.jsonl");
    std::fs::copy(
        format!("{FIXTURES}/codex-0.169.0/rollouts/{rollout}"),
        xdir.join(&rollout),
    )
    .unwrap();

    let claude = ox.agent(AgentOpts::claude(&repo, CLAUDE_ID)).await.unwrap();
    claude
        .ok(
            "set_my_state",
            json!({"purpose": "env please", "name": "cc"}),
        )
        .await
        .unwrap();
    let codex = ox
        .agent(AgentOpts {
            cwd: repo.clone(),
            env: vec![("CODEX_THREAD_ID".into(), CODEX_ID.into())],
            client_name: "codex-mcp-client".into(),
        })
        .await
        .unwrap();
    codex
        .ok("set_my_state", json!({"purpose": "pinging"}))
        .await
        .unwrap();
    let reader = ox.agent(AgentOpts::claude(&repo, "reader")).await.unwrap();

    let r = reader
        .ok(
            "read_session",
            json!({"name": "cc", "include_timestamps": true}),
        )
        .await
        .unwrap();
    assert_eq!(r["mode"], "transcript", "{r}");
    assert_eq!(r["format"], "claude-code");
    assert_eq!(r["session_id"], CLAUDE_ID);
    assert_eq!(r["resolved_by"], "name");
    assert_eq!(r["order"], "newest_first");
    let turns = r["turns"].as_array().unwrap();
    assert!(!turns.is_empty());
    assert!(
        turns
            .iter()
            .any(|t| t["role"] == "user" && t["text"].as_str().unwrap().contains("env please")),
        "{r}"
    );
    assert!(turns[0]["timestamp"].is_string());
    assert!(
        r["skipped_lines"].as_u64().unwrap() >= 1,
        "the torn line is counted: {r}"
    );
    assert!(r["provenance"]["path"]
        .as_str()
        .unwrap()
        .ends_with(&format!("{CLAUDE_ID}.jsonl")));
    assert!(r["provenance"]["age_ms"].is_u64());
    assert!(r["note"].as_str().unwrap().contains("never proof"));

    // Budgets: the answer says which one bit.
    let small = reader
        .ok("read_session", json!({"session_id": CLAUDE_ID, "limit": 1}))
        .await
        .unwrap();
    assert_eq!(small["turns"].as_array().unwrap().len(), 1);
    assert_eq!(small["budget_hit"], "limit");
    assert!(small["turns"][0].get("timestamp").is_none());

    let x = reader
        .ok("read_session", json!({"session_id": CODEX_ID}))
        .await
        .unwrap();
    assert_eq!(x["mode"], "transcript", "{x}");
    assert_eq!(x["format"], "codex");
    assert!(!x["turns"].as_array().unwrap().is_empty());

    // Bad input names the field; unknown peers fail closed.
    let e = reader
        .call_raw("read_session", json!({"limit": 5}))
        .await
        .expect_err("no target");
    assert!(e.to_string().contains("`name`"), "{e}");
    let e = reader
        .call_raw("read_session", json!({"name": "cc", "limit": 0}))
        .await
        .expect_err("bad limit");
    assert!(e.to_string().contains("`limit`"), "{e}");
    let r = reader
        .call("read_session", json!({"name": "nobody"}))
        .await
        .unwrap();
    assert_eq!(r["error"], "target-not-found");
    // No transcript for the reader itself, and no pane: a clear error.
    let r = claude
        .call(
            "read_session",
            json!({"session_id": "reader", "mode": "transcript"}),
        )
        .await
        .unwrap();
    assert_eq!(r["error"], "no-transcript");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn birth_time_resolves_a_lone_new_transcript_and_abstains_on_two() {
    let home = tempfile::tempdir().unwrap();
    let ox = Instance::with_env(BIN, &[("HOME", home.path().to_str().unwrap())]);
    let repo = ox.git_repo("proj").canonicalize().unwrap();
    let dir = home.path().join(".claude/projects").join(mangled(&repo));
    std::fs::create_dir_all(&dir).unwrap();
    // A client with neither hooks nor an id in its environment.
    let anon = ox
        .agent(AgentOpts {
            cwd: repo.clone(),
            env: vec![],
            client_name: "claude-code".into(),
        })
        .await
        .unwrap();
    let me = anon.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["detect_diagnosis"]["winning"], json!(null));
    // Its transcript appears once the session starts.
    std::fs::write(
        dir.join("aaaaaaaa-1111-2222-3333-444444444444.jsonl"),
        "{}\n",
    )
    .unwrap();
    let me = anon.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(
        me["entry"]["client"]["session_id"], "aaaaaaaa-1111-2222-3333-444444444444",
        "{me}"
    );
    assert_eq!(me["detect_diagnosis"]["winning"]["source"], "birth-time");

    // Two new transcripts for a second anonymous shim: ambiguous, abstain.
    let repo2 = ox.git_repo("proj2").canonicalize().unwrap();
    let dir2 = home.path().join(".claude/projects").join(mangled(&repo2));
    std::fs::create_dir_all(&dir2).unwrap();
    let anon2 = ox
        .agent(AgentOpts {
            cwd: repo2.clone(),
            env: vec![],
            client_name: "claude-code".into(),
        })
        .await
        .unwrap();
    std::fs::write(
        dir2.join("bbbbbbbb-0000-0000-0000-000000000001.jsonl"),
        "{}\n",
    )
    .unwrap();
    std::fs::write(
        dir2.join("bbbbbbbb-0000-0000-0000-000000000002.jsonl"),
        "{}\n",
    )
    .unwrap();
    let me = anon2.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["detect_diagnosis"]["winning"], json!(null), "{me}");
    let birth = me["detect_diagnosis"]["per_strategy"]["birth-time"].clone();
    assert_eq!(birth["abstain"], true, "{me}");
    assert!(
        birth["reason"].as_str().unwrap().contains("ambiguous"),
        "{birth}"
    );
}
