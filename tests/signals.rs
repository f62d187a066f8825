//! Service-manager behaviour: SIGTERM (systemctl stop) snapshots and exits
//! cleanly with nothing lost; a `--foreground` daemon that finds another one
//! running exits non-zero (so `Restart=on-failure` tries again) instead of
//! pretending success.

use oxtail_tests::harness::{kill_pid, wait_gone, AgentOpts, Instance};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_snapshots_and_exits_without_loss() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "b")).await.unwrap();
    b.ok("set_my_state", json!({"purpose": "x"})).await.unwrap();
    a.ok(
        "send_message",
        json!({"target": "b", "body": "survives SIGTERM"}),
    )
    .await
    .unwrap();
    let pid = ox.daemon_pid().unwrap();
    kill_pid(pid, libc::SIGTERM);
    wait_gone(pid, Duration::from_secs(5)).unwrap();
    let snaps: Vec<_> = std::fs::read_dir(ox.home().join("journal"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "snap"))
        .collect();
    assert_eq!(snaps.len(), 1, "a snapshot was written on SIGTERM");
    let log = std::fs::read_to_string(ox.home().join("daemon.log")).unwrap();
    assert!(log.contains("SIGTERM"), "{log}");
    // The next call starts a new daemon that has everything.
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
    assert_eq!(inbox.unwrap()["messages"][0]["body"], "survives SIGTERM");
}

#[test]
fn a_foreground_daemon_that_loses_the_lock_fails() {
    let ox = Instance::new(BIN);
    ox.ctl(&["ping"]).unwrap();
    let out = ox
        .command()
        .args(["daemon", "--foreground"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "must not report success");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another oxtail daemon holds"), "{err}");
    // The on-demand one is untouched.
    assert_eq!(ox.ctl(&["ping"]).unwrap()["pong"], true);
}
