//! CONTRACT §6 `read_session`, part of the contract suite: through real
//! shims against the real transcripts captured from Claude Code 2.1.329 and
//! Codex 0.169.0, placed where those clients write them under the daemon's
//! HOME. Every field of §6 by name, so a renamed one fails here.

use oxtail_tests::harness::{AgentOpts, Instance};
use serde_json::{json, Value};
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

    // CONTRACT §6: every field present, no `ok`, oldest → newest.
    let r = reader
        .call(
            "read_session",
            json!({"name": "cc", "include_timestamps": true}),
        )
        .await
        .unwrap();
    for k in FIELDS {
        assert!(r.get(*k).is_some(), "missing `{k}`: {r}");
    }
    assert!(r.get("ok").is_none(), "{r}");
    assert_eq!(r["mode"], "transcript", "{r}");
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(r["client_type"], "claude-code");
    assert_eq!(r["resolved_session_id"], CLAUDE_ID);
    assert_eq!(r["session_id_source"], "env");
    assert_eq!(r["session"], "cc", "no tmux: the input: {r}");
    assert_eq!(r["pane_text"], Value::Null);
    assert_eq!(r["project_root"], repo.to_str().unwrap());
    assert_eq!(r["inferred"], true);
    // RFC 3339 mtime, age in seconds.
    let mtime = r["transcript_mtime"].as_str().unwrap();
    assert!(mtime.contains('T') && mtime.ends_with('Z'), "{mtime}");
    assert!(r["transcript_age_seconds"].as_u64().unwrap() < 600, "{r}");
    let msgs = r["messages"].as_array().unwrap();
    assert!(!msgs.is_empty());
    for m in msgs {
        assert!(m["role"] == "user" || m["role"] == "assistant", "{m}");
        assert!(m["text"].is_string(), "{m}");
        assert!(m["timestamp"].is_string(), "{m}");
    }
    // Oldest → newest: the prompt that set the state comes before the last
    // message, and timestamps never go back.
    let stamps: Vec<&str> = msgs
        .iter()
        .map(|m| m["timestamp"].as_str().unwrap())
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    assert_eq!(stamps, sorted, "oldest first");
    assert!(
        msgs.iter()
            .any(|m| m["role"] == "user" && m["text"].as_str().unwrap().contains("env please")),
        "{r}"
    );
    let total = r["total_messages"].as_u64().unwrap();
    assert_eq!(r["total_messages_exact"], true);
    if r["bytes_truncated"] == false {
        assert_eq!(msgs.len() as u64, total.min(20), "default limit 20: {r}");
    }
    assert_eq!(r["count_truncated"], total > 20);
    assert!(r["note"].as_str().unwrap().contains("never proof"));

    // Budgets: `limit` keeps the newest; the answer says what was cut.
    let small = reader
        .call("read_session", json!({"name": CLAUDE_ID, "limit": 1}))
        .await
        .unwrap();
    let one = small["messages"].as_array().unwrap();
    assert_eq!(one.len(), 1, "{small}");
    assert_eq!(one[0]["text"], msgs.last().unwrap()["text"], "the newest");
    assert_eq!(
        one[0]["timestamp"],
        Value::Null,
        "no timestamps unless asked"
    );
    assert_eq!(small["count_truncated"], true);
    assert_eq!(small["truncated"], true);
    assert_eq!(small["total_messages"], total);
    // Out-of-range budgets clamp, never refuse: limit 0 → 1, max_bytes 1 → 256.
    let tiny = reader
        .call(
            "read_session",
            json!({"name": "cc", "limit": 0, "max_bytes": 1}),
        )
        .await
        .unwrap();
    let kept = tiny["messages"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{tiny}");
    let text = kept[0]["text"].as_str().unwrap();
    if text.contains("B truncated]") {
        assert_eq!(tiny["bytes_truncated"], true);
        assert!(text.len() <= 256 + 32, "{text}");
    }
    // tail_scan is a boolean; a short file is read to its start, so the
    // count stays exact.
    let t = reader
        .call("read_session", json!({"name": "cc", "tail_scan": true}))
        .await
        .unwrap();
    assert_eq!(t["total_messages_exact"], true, "{t}");
    assert_eq!(t["total_messages"], total);

    let x = reader
        .call("read_session", json!({"name": CODEX_ID}))
        .await
        .unwrap();
    assert_eq!(x["mode"], "transcript", "{x}");
    assert_eq!(x["client_type"], "codex");
    assert!(!x["messages"].as_array().unwrap().is_empty());

    // Schema: `name` is required, `tail_scan` a boolean.
    let e = reader
        .schema_error("read_session", json!({"limit": 5}))
        .await
        .unwrap();
    assert!(e.contains("`name`"), "{e}");
    let e = reader
        .schema_error("read_session", json!({"name": "cc", "tail_scan": 4096}))
        .await
        .unwrap();
    assert!(e.contains("`tail_scan`"), "{e}");
    // Failures: `error`, mode none, null content and provenance.
    let r = reader
        .call("read_session", json!({"name": "nobody"}))
        .await
        .unwrap();
    assert_eq!(r["error"], "session 'nobody' not in project scope", "{r}");
    assert_eq!(r["mode"], "none");
    assert_eq!(r["messages"], Value::Null);
    assert_eq!(r["resolved_session_id"], Value::Null);
    let r = reader
        .call(
            "read_session",
            json!({"name": "aaaaaaaa-1111-2222-3333-444444444444"}),
        )
        .await
        .unwrap();
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("unknown-or-unclaimed-session: "),
        "{r}"
    );
    // No transcript for the reader itself, and no pane: an in-scope error,
    // with provenance.
    let r = claude
        .call(
            "read_session",
            json!({"name": "reader", "mode": "transcript"}),
        )
        .await
        .unwrap();
    assert_eq!(r["mode"], "none", "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("no transcript"),
        "{r}"
    );
    assert_eq!(r["resolved_session_id"], "reader");
    assert_eq!(r["transcript_mtime"], Value::Null);
}

/// CONTRACT §6: the fields every `read_session` answer carries.
const FIELDS: &[&str] = &[
    "session",
    "mode",
    "client_type",
    "messages",
    "pane_text",
    "truncated",
    "count_truncated",
    "bytes_truncated",
    "total_messages",
    "total_messages_exact",
    "resolved_session_id",
    "session_id_source",
    "transcript_mtime",
    "transcript_age_seconds",
    "project_root",
    "inferred",
    "error",
];

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_project_is_refused_without_echoing_its_ids() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let other = ox.git_repo("other");
    let reader = ox.agent(AgentOpts::claude(&repo, "reader")).await.unwrap();
    let foreign = ox
        .agent(AgentOpts::claude(
            &other,
            "aaaaaaaa-0000-4000-8000-000000000001",
        ))
        .await
        .unwrap();
    foreign
        .ok("set_my_state", json!({"purpose": "elsewhere"}))
        .await
        .unwrap();
    // CONTRACT §16.2: ok:false, cross-project, by project_root or by id.
    for args in [
        json!({"name": "reader", "project_root": other.to_str().unwrap()}),
        json!({"name": "aaaaaaaa-0000-4000-8000-000000000001"}),
    ] {
        let r = reader.call("read_session", args.clone()).await.unwrap();
        assert_eq!(r["ok"], false, "{args}: {r}");
        assert_eq!(r["error"], "cross-project", "{r}");
        assert!(
            !r.to_string().contains("000000000001\""),
            "no foreign id: {r}"
        );
    }
}

/// A bare tmux session (no agent) in the project, read in pane mode: the
/// last `pane_max_chars` characters, `truncated` when cut, no transcript
/// facts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_a_tmux_pane_within_its_budgets() {
    use oxtail_tests::tui::{SessionSpec, TmuxServer};
    if !oxtail_tests::tui::tmux_or_skip() {
        return;
    }
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj").canonicalize().unwrap();
    let tmux = TmuxServer::new();
    tmux.new_session(&SessionSpec::new(
        "bare",
        &repo,
        [
            "sh",
            "-c",
            "printf 'A%.0s' $(seq 1000); printf 'C%.0s' $(seq 600); echo; exec sleep 600",
        ],
    ))
    .unwrap();
    let socket = tmux.socket_path().unwrap();
    // The reader's TMUX names the server, so the daemon lists its panes.
    let mut opts = AgentOpts::claude(&repo, "reader");
    opts.env
        .push(("TMUX".into(), format!("{},1,0", socket.display())));
    let reader = ox.agent(opts).await.unwrap();
    reader
        .ok("set_my_state", json!({"purpose": "reading"}))
        .await
        .unwrap();
    // Panes are refreshed every few seconds: wait for this one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let r = loop {
        let r = reader
            .call(
                "read_session",
                json!({"name": "bare", "mode": "pane", "pane_max_chars": 1}),
            )
            .await
            .unwrap();
        if r["mode"] == "pane" && r["pane_text"].as_str().is_some_and(|t| t.ends_with('C')) {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "never read: {r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    for k in FIELDS {
        assert!(r.get(*k).is_some(), "missing `{k}`: {r}");
    }
    // pane_max_chars 1 is clamped to 500: the last 500 characters.
    assert_eq!(r["pane_text"], "C".repeat(500), "{r}");
    assert_eq!(r["truncated"], true);
    assert_eq!(r["session"], "bare");
    assert_eq!(r["messages"], Value::Null);
    assert_eq!(r["client_type"], Value::Null);
    assert_eq!(r["resolved_session_id"], Value::Null);
    assert_eq!(r["error"], Value::Null);
    // Room for all of it: not truncated.
    let r = reader
        .call(
            "read_session",
            json!({"name": "bare", "pane_max_chars": 200000}),
        )
        .await
        .unwrap();
    assert_eq!(r["mode"], "pane", "auto falls back to the pane: {r}");
    assert_eq!(r["truncated"], false, "{r}");
    assert!(r["pane_text"].as_str().unwrap().contains(&"A".repeat(1000)));
}

/// A transcript longer than the tail scan: with `tail_scan` the count is
/// not exact (null, false); without it, it is. A byte budget cuts the
/// oldest kept message and says by how much.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_scan_exactness_and_the_byte_budget() {
    let home = tempfile::tempdir().unwrap();
    let ox = Instance::with_env(BIN, &[("HOME", home.path().to_str().unwrap())]);
    let repo = ox.git_repo("proj").canonicalize().unwrap();
    let id = "bbbbbbbb-0000-4000-8000-000000000002";
    let dir = home.path().join(".claude/projects").join(mangled(&repo));
    std::fs::create_dir_all(&dir).unwrap();
    let line = |kind: &str, text: &str, n: u32| {
        json!({
            "type": kind,
            "sessionId": id,
            "timestamp": format!("2026-11-21T05:{:02}:{:02}.000Z", n / 60, n % 60),
            "message": {"role": kind, "content": [{"type": "text", "text": text}]},
        })
        .to_string()
            + "\n"
    };
    let mut text = line("user", "the first prompt", 0);
    // 5 MiB of bookkeeping, more than the 4 MiB tail scan.
    let filler = json!({"type": "system", "content": "z".repeat(1000)}).to_string() + "\n";
    for _ in 0..(5 << 20) / filler.len() {
        text.push_str(&filler);
    }
    text.push_str(&line("user", "second prompt", 1));
    text.push_str(&line("assistant", &"w".repeat(600), 2));
    std::fs::write(dir.join(format!("{id}.jsonl")), text).unwrap();
    let peer = ox.agent(AgentOpts::claude(&repo, id)).await.unwrap();
    peer.ok("set_my_state", json!({"purpose": "long"}))
        .await
        .unwrap();
    let reader = ox.agent(AgentOpts::claude(&repo, "reader")).await.unwrap();

    let whole = reader
        .ok("read_session", json!({"name": id}))
        .await
        .unwrap();
    assert_eq!(whole["total_messages"], 3, "{}", whole["total_messages"]);
    assert_eq!(whole["total_messages_exact"], true);
    assert_eq!(whole["messages"][0]["text"], "the first prompt");

    let tail = reader
        .ok("read_session", json!({"name": id, "tail_scan": true}))
        .await
        .unwrap();
    assert_eq!(tail["total_messages"], Value::Null);
    assert_eq!(tail["total_messages_exact"], false);
    let msgs = tail["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "the first prompt is beyond the scan");
    assert_eq!(msgs[0]["text"], "second prompt");

    // 256 bytes, counted from the newest: the 600-byte answer is cut.
    let cut = reader
        .ok("read_session", json!({"name": id, "max_bytes": 256}))
        .await
        .unwrap();
    assert_eq!(cut["bytes_truncated"], true);
    assert_eq!(cut["truncated"], true);
    let msgs = cut["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1, "{cut}");
    assert_eq!(
        msgs[0]["text"],
        format!("{}…[+344B truncated]", "w".repeat(256))
    );
}
