//! Crash consistency: `kill -9` of the daemon during a burst of sends loses no
//! acknowledged message and duplicates none; a journal torn at any byte of
//! its last record recovers every earlier record.

use oxtail_daemon::config::Config;
use oxtail_daemon::server::open_state;
use oxtail_tests::harness::{AgentOpts, Instance};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_burst_loses_no_acknowledged_message() {
    let ox = Arc::new(Instance::new(BIN));
    let repo = ox.git_repo("proj");
    const AGENTS: usize = 4;
    const PER_AGENT: usize = 150;
    let mut agents = Vec::new();
    for i in 0..AGENTS {
        agents.push(Arc::new(
            ox.agent(AgentOpts::claude(&repo, &format!("agent-{i}")))
                .await
                .unwrap(),
        ));
    }
    for a in &agents {
        a.ok("set_my_state", json!({"purpose": "burst"}))
            .await
            .unwrap();
    }
    // Each agent sends to the next; acknowledged ids are recorded.
    let mut tasks = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let target = format!("agent-{}", (i + 1) % AGENTS);
            let mut acked = Vec::new();
            let mut failed = 0;
            for n in 0..PER_AGENT {
                let body = format!("from {i} #{n}");
                match a
                    .call("send_message", json!({"target": target, "body": body}))
                    .await
                {
                    Ok(v) if v["ok"] == true => {
                        acked.push((v["message_id"].as_str().unwrap().to_string(), body))
                    }
                    _ => failed += 1,
                }
            }
            (acked, failed)
        }));
    }
    // Kill the daemon twice while the burst runs; shims respawn it.
    let killer = {
        let ox = ox.clone();
        tokio::task::spawn_blocking(move || {
            let mut killed = Vec::new();
            for delay in [150u64, 400] {
                std::thread::sleep(Duration::from_millis(delay));
                if let Ok(pid) = ox.kill_daemon() {
                    killed.push(pid);
                }
            }
            killed
        })
    };
    let mut acked: HashMap<String, String> = HashMap::new();
    let mut failed_total = 0;
    for t in tasks {
        let (a, f) = t.await.unwrap();
        failed_total += f;
        for (id, body) in a {
            assert!(acked.insert(id, body).is_none(), "message ids are unique");
        }
    }
    let killed = killer.await.unwrap();
    assert_eq!(killed.len(), 2, "both kills hit a live daemon");
    eprintln!(
        "acked {} messages, {failed_total} calls failed during the kills",
        acked.len()
    );
    assert!(
        acked.len() > AGENTS * PER_AGENT / 2,
        "most sends were acknowledged"
    );

    // Drain every mailbox (read_my_messages may need a reconnect first; a
    // read returns at most its budget, so read until nothing is left).
    let mut delivered: Vec<(String, String)> = Vec::new();
    for a in &agents {
        let mut reads = 0;
        loop {
            reads += 1;
            assert!(reads < 200, "mailbox never emptied");
            let Ok(v) = a.call("read_my_messages", json!({})).await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            if v["ok"] != true {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let msgs = v["messages"].as_array().unwrap();
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                delivered.push((
                    m["id"].as_str().unwrap().to_string(),
                    m["body"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    let mut seen = HashSet::new();
    let mut seen_bodies = HashSet::new();
    for (id, body) in &delivered {
        assert!(seen.insert(id.clone()), "message {id} delivered twice");
        assert!(
            seen_bodies.insert(body.clone()),
            "body {body} delivered twice"
        );
    }
    for (id, body) in &acked {
        assert!(
            seen.contains(id),
            "acknowledged message {id} ({body}) was lost"
        );
    }
    let new_pid = ox.daemon_pid().unwrap();
    assert!(!killed.contains(&new_pid));
}

/// Byte offset where the last record of the newest segment starts.
fn last_record(seg: &Path) -> (u64, u64) {
    let bytes = std::fs::read(seg).unwrap();
    let mut off = 8usize; // segment header
    let mut last = off;
    while off + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        last = off;
        off += 16 + len;
    }
    assert_eq!(off, bytes.len(), "segment parses to its end");
    (last as u64, bytes.len() as u64)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_journal_at_every_offset_of_the_last_record_keeps_earlier_ones() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    b.ok("set_my_state", json!({"purpose": "receiving"}))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..5 {
        let v = a
            .ok(
                "send_message",
                json!({"target": "sess-b", "body": format!("message {n}")}),
            )
            .await
            .unwrap();
        ids.push(v["message_id"].as_str().unwrap().to_string());
    }
    // Crash, so the journal (not a snapshot) holds everything.
    ox.kill_daemon().unwrap();
    let jdir: PathBuf = ox.home().join("journal");
    let seg = std::fs::read_dir(&jdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
        .unwrap();
    let (start, end) = last_record(&seg);
    let config = Config::default();
    // Intact: all five.
    let (full, _) = open_state(&jdir, &config).unwrap();
    assert_eq!(full.queued("sess-b"), 5);
    let scratch = tempfile::tempdir().unwrap();
    for cut in start..end {
        let d = scratch.path().join(format!("cut-{cut}"));
        copy_dir(&jdir, &d);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(d.join(seg.file_name().unwrap()))
            .unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let (state, journal) =
            open_state(&d, &config).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let queued: Vec<&String> = state.mailboxes["sess-b"].iter().collect();
        assert_eq!(queued, ids[..4].iter().collect::<Vec<_>>(), "cut at {cut}");
        assert!(state.agents.contains_key("sess-a") && state.agents.contains_key("sess-b"));
        drop(journal);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

/// Issue 12: compaction snapshots are built and written off the core thread
/// (from the journal files) while sends go on. With a tiny compaction
/// threshold, many happen during a stream of sends; after kill -9 every
/// acknowledged message is there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_snapshots_during_sends_lose_nothing_across_kill_9() {
    let ox = Instance::with_env(BIN, &[("OXTAIL_JOURNAL_COMPACT_BYTES", "16384")]);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "snap-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "snap-b")).await.unwrap();
    for (x, n) in [(&a, "snap-a"), (&b, "snap-b")] {
        x.ok("set_my_state", json!({"purpose": "snapshots", "name": n}))
            .await
            .unwrap();
    }
    let log = || std::fs::read_to_string(ox.home().join("daemon.log")).unwrap_or_default();
    let mut acked = HashMap::new();
    let mut n = 0;
    // Until at least three background snapshots were recorded, and for at
    // least 400 sends.
    while n < 400
        || log()
            .matches("snapshot written off the core thread")
            .count()
            < 3
    {
        assert!(
            n < 20_000,
            "no background snapshot was recorded:\n{}",
            log()
        );
        let body = format!("snapshot stream #{n} {}", "x".repeat(200));
        let v = a
            .ok("send_message", json!({"target": "snap-b", "body": body}))
            .await
            .unwrap();
        acked.insert(v["message_id"].as_str().unwrap().to_string(), body);
        n += 1;
    }
    let journal = ox.home().join("journal");
    let snaps = std::fs::read_dir(&journal)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("snapshot-") && name.ends_with(".snap")
        })
        .count();
    assert!((1..=2).contains(&snaps), "two generations at most: {snaps}");
    let old = ox.kill_daemon().unwrap();
    let mut seen = HashSet::new();
    loop {
        let v = b.call("read_my_messages", json!({})).await;
        let Ok(v) = v else { continue };
        if v["ok"] != true {
            continue;
        }
        let msgs = v["messages"].as_array().unwrap();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            let id = m["id"].as_str().unwrap().to_string();
            assert_eq!(acked.get(&id).map(String::as_str), m["body"].as_str());
            assert!(seen.insert(id), "delivered twice: {m}");
        }
    }
    assert_eq!(
        seen.len(),
        acked.len(),
        "every acknowledged message survived"
    );
    assert_ne!(ox.daemon_pid(), Some(old));
    assert!(!log().contains("panicked"), "{}", log());
}
