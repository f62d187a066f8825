//! Version skew: a newer oxtail meeting an older daemon gets it to snapshot
//! and hand over with no acknowledged message lost; the new daemon reads the
//! journal and snapshot formats that older daemons wrote (a committed v1
//! fixture).

use oxtail_daemon::config::Config;
use oxtail_daemon::server::open_state;
use oxtail_tests::harness::{pid_alive, AgentOpts, Instance};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_shim_takes_over_from_an_older_daemon_without_loss() {
    // Every process of this instance plays release 0.0.1 ...
    let ox = Instance::with_env(BIN, &[("OXTAIL_VERSION_OVERRIDE", "0.0.1")]);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "old-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "old-b")).await.unwrap();
    b.ok("set_my_state", json!({"purpose": "busy", "name": "b"}))
        .await
        .unwrap();
    let old = ox.ctl(&["stats"]).unwrap();
    assert_eq!(old["version"], "0.0.1");
    let old_pid = old["pid"].as_u64().unwrap() as u32;
    let mut sent = Vec::new();
    for i in 0..3 {
        let v = a
            .ok(
                "send_message",
                json!({"target": "b", "body": format!("before upgrade {i}")}),
            )
            .await
            .unwrap();
        sent.push(v["message_id"].as_str().unwrap().to_string());
    }
    let task = a
        .ok(
            "send_message",
            json!({"target": "b", "body": "open work", "action_required": true}),
        )
        .await
        .unwrap();
    let ask = a
        .ok(
            "ask_peer",
            json!({"target": "b", "body": "later?", "timeout_ms": 50}),
        )
        .await
        .unwrap();
    assert_eq!(ask["timed_out"], true);

    // ... until a shim of the real, newer release arrives.
    let new = ox
        .agent(AgentOpts {
            cwd: repo.clone(),
            env: vec![
                ("OXTAIL_VERSION_OVERRIDE".into(), String::new()),
                ("CLAUDE_CODE_SESSION_ID".into(), "new-c".into()),
            ],
            client_name: "claude-code".into(),
        })
        .await
        .unwrap();
    let me = new.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["entry"]["client"]["session_id"], "new-c");
    let end = Instant::now() + Duration::from_secs(10);
    while pid_alive(old_pid) {
        assert!(Instant::now() < end, "the old daemon never handed over");
        std::thread::sleep(Duration::from_millis(20));
    }
    let now = ox.ctl(&["stats"]).unwrap();
    assert_eq!(now["version"], env!("CARGO_PKG_VERSION"));
    assert_ne!(now["pid"].as_u64().unwrap() as u32, old_pid);
    let log = std::fs::read_to_string(ox.home().join("daemon.log")).unwrap();
    assert!(log.contains("handing over to a newer oxtail"), "{log}");

    // Old shims reconnect to the new daemon; nothing was lost.
    let mut inbox = None;
    for _ in 0..50 {
        if let Ok(v) = b.call("read_my_messages", json!({})).await {
            if v["ok"] == true {
                inbox = Some(v);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let inbox = inbox.expect("old shim reconnected");
    let got: Vec<&str> = inbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for id in &sent {
        assert!(
            got.contains(&id.as_str()),
            "{id} lost across the upgrade: {inbox}"
        );
    }
    assert!(got.contains(&task["message_id"].as_str().unwrap()));
    assert_eq!(
        inbox["open_work_count"], 2,
        "the delegation and the ask are still open"
    );
    assert_eq!(now["pending_asks"], 1);
    let r = b
        .ok(
            "complete_work",
            json!({"message_id": task["message_id"], "body": "done after upgrade"}),
        )
        .await
        .unwrap();
    assert_eq!(r["ok"], true);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The journal directory in tests/fixtures/format-v1 was written by oxtail
/// 0.1.0 (journal format 1, snapshot of state plus later records). Every
/// later daemon must recover it exactly; do not regenerate it.
#[test]
fn recovers_a_v1_journal_and_snapshot_written_by_an_older_daemon() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1/journal");
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture, tmp.path());
    let (state, _journal) = open_state(tmp.path(), &Config::default()).unwrap();
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture.parent().unwrap().join("expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        state.agents.len(),
        expected["agents"].as_u64().unwrap() as usize
    );
    for (session, n) in expected["queued"].as_object().unwrap() {
        assert_eq!(
            state.queued(session) as u64,
            n.as_u64().unwrap(),
            "{session}"
        );
    }
    for id in expected["message_ids"].as_array().unwrap() {
        assert!(state.messages.contains_key(id.as_str().unwrap()), "{id}");
    }
    assert_eq!(
        state.obligations.len() as u64,
        expected["obligations"].as_u64().unwrap()
    );
    assert_eq!(state.asks.len() as u64, expected["asks"].as_u64().unwrap());
    assert_eq!(
        state
            .agents
            .get("fmt-b")
            .and_then(|a| a.purpose.clone())
            .as_deref(),
        expected["b_purpose"].as_str()
    );
}
