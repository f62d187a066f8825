//! A real `oxtail hook session-start` with `source: "clear"` moves the seat
//! to the client's new session id; mail addressed to the earlier id — queued
//! before the move or sent after it — still reaches the agent, and the old
//! row is gone.

use oxtail_tests::e2e::claude_session_start as session_start;
use oxtail_tests::harness::{AgentOpts, Instance};
use serde_json::json;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_moves_the_seat_and_mail_follows() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let agent = ox
        .agent(AgentOpts::claude(&repo, "before-clear"))
        .await
        .unwrap();
    agent
        .ok(
            "set_my_state",
            json!({"purpose": "pre-clear work", "name": "worker"}),
        )
        .await
        .unwrap();
    let peer = ox.agent(AgentOpts::claude(&repo, "peer")).await.unwrap();
    let queued = peer
        .ok(
            "send_message",
            json!({"target": "before-clear", "body": "sent before /clear"}),
        )
        .await
        .unwrap();
    let task = peer
        .ok(
            "send_message",
            json!({"target": "worker", "body": "a task", "action_required": true}),
        )
        .await
        .unwrap();

    // The agent's client process is its seat: the `sh` hosting the shim.
    let seat = agent.pid.unwrap();
    session_start(&ox, seat, "before-clear", "startup", &repo);
    session_start(&ox, seat, "after-clear", "clear", &repo);

    let list = peer.ok("list_project_sessions", json!({})).await.unwrap();
    let ids: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["client_session_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"after-clear") && !ids.contains(&"before-clear"),
        "{ids:?}"
    );
    let row = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["client_session_id"] == "after-clear")
        .unwrap()
        .clone();
    assert_eq!(row["name"], "worker", "the name moves with the seat");
    assert_eq!(row["open_obligations"], 1, "so does open work");

    // Mail to the earlier id, after the move, still arrives.
    peer.ok(
        "send_message",
        json!({"target": "before-clear", "body": "sent after /clear"}),
    )
    .await
    .unwrap();
    // The shim's environment still names the old id; it now speaks for the new one.
    let me = agent.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["entry"]["client"]["session_id"], "after-clear", "{me}");
    let inbox = agent.ok("read_my_messages", json!({})).await.unwrap();
    let bodies: Vec<&str> = inbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        vec!["sent before /clear", "a task", "sent after /clear"]
    );
    // Replies by id still resolve through the moved ledger, and work closes.
    agent
        .ok(
            "reply_to_message",
            json!({"message_id": queued["message_id"], "body": "got it"}),
        )
        .await
        .unwrap();
    agent
        .ok(
            "complete_work",
            json!({"message_id": task["message_id"], "body": "done"}),
        )
        .await
        .unwrap();
    let back = peer.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(back["count"], 2);
    assert_eq!(back["messages"][0]["from_session_id"], "after-clear");

    // A status check from the CLI agrees.
    let out = Command::new(BIN)
        .args(["ctl", "sessions", "--json"])
        .env("OXTAIL_HOME", ox.home())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!v
        .to_string()
        .contains("\"client_session_id\":\"before-clear\""));
}
