//! Issue 12: the durable state is bounded by the documented retention caps,
//! not by the traffic. A long stream through small configured caps reaches a
//! plateau in retained messages, receipts, ledgers, snapshot and journal
//! size (the bound is stated in ARCHITECTURE.md, "State bound").

use oxtail_tests::e2e::wait_until;
use oxtail_tests::harness::{AgentOpts, Instance};
use serde_json::{json, Value};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");
const RETAINED: u64 = 150;
const RECEIVED: u64 = 40;

fn snapshot_bytes(ox: &Instance) -> u64 {
    std::fs::read_dir(ox.home().join("journal"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".snap"))
        .map(|e| e.metadata().unwrap().len())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_stream_plateaus_at_the_configured_caps() {
    let ox = Instance::with_env(
        BIN,
        &[
            ("OXTAIL_RETAINED_MAX", "150"),
            ("OXTAIL_RECEIVED_MAX", "40"),
            ("OXTAIL_RETENTION_INTERVAL_MS", "100"),
        ],
    );
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "cap-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "cap-b")).await.unwrap();
    for (x, n) in [(&a, "cap-a"), (&b, "cap-b")] {
        x.ok("set_my_state", json!({"purpose": "stream", "name": n}))
            .await
            .unwrap();
    }
    let stats = || ox.ctl(&["stats"]).unwrap();
    // After each round: wait for the retention pass to settle, compact, and
    // record the sizes. Rounds 2..=4 must not grow beyond round 1's.
    let mut rounds: Vec<(Value, u64, u64)> = Vec::new();
    for round in 0..4 {
        for n in 0..250 {
            let body = format!("round {round} #{n} {}", "p".repeat(100));
            let target = if n % 2 == 0 { "cap-b" } else { "cap-a" };
            let from = if n % 2 == 0 { &a } else { &b };
            from.ok("send_message", json!({"target": target, "body": body}))
                .await
                .unwrap();
            if n % 25 == 24 {
                for x in [&a, &b] {
                    x.ok("read_my_messages", json!({})).await.unwrap();
                }
            }
        }
        for x in [&a, &b] {
            x.ok("read_my_messages", json!({})).await.unwrap();
        }
        let s = wait_until(Duration::from_secs(20), "the retention pass", || {
            let s = stats();
            (s["queued_messages"] == 0 && s["retained_messages"].as_u64()? <= RETAINED).then_some(s)
        })
        .unwrap();
        ox.ctl(&["compact"]).unwrap();
        let s2 = stats();
        rounds.push((
            s,
            snapshot_bytes(&ox),
            s2["journal_bytes"].as_u64().unwrap(),
        ));
    }
    for (s, snap, journal) in &rounds {
        eprintln!("stats {s}\nsnapshot {snap} B, journal {journal} B");
        assert!(s["retained_messages"].as_u64().unwrap() <= RETAINED, "{s}");
        assert!(s["receipts"].as_u64().unwrap() <= RETAINED, "{s}");
        assert!(s["ledger_entries"].as_u64().unwrap() <= 2 * RECEIVED, "{s}");
        assert!(s["comms_log"].as_u64().unwrap() <= RETAINED, "{s}");
    }
    // 1 000 messages went through; the state held 150 at most. The
    // snapshot and journal plateau: later rounds are within 10 % of the
    // first (the messages differ only in their round and counter digits).
    let (_, snap1, journal1) = rounds[0];
    assert!(snap1 > 0);
    for (_, snap, journal) in &rounds[1..] {
        assert!(
            *snap <= snap1 + snap1 / 10,
            "snapshot grew: {snap1} → {snap}"
        );
        assert!(
            *journal <= journal1 + journal1 / 10 + 4096,
            "journal grew: {journal1} → {journal}"
        );
    }
    let last = &rounds[3].0;
    assert_eq!(last["agents"], 2);
}
