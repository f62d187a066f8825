//! A claim applies to the shim that made it (and its client session), never
//! to other shims that carry their own identity (issue 9 item 6). Real
//! shims, all children of the test process, so they share one seat (one
//! client process), as several MCP servers of one client do.

use oxtail_tests::harness::{AgentOpts, Instance};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_changes_only_the_claiming_shim() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox
        .agent_same_seat(AgentOpts::claude(&repo, "sess-a"))
        .await
        .unwrap();
    let b = ox
        .agent_same_seat(AgentOpts::claude(&repo, "sess-b"))
        .await
        .unwrap();
    for (agent, id) in [(&a, "sess-a"), (&b, "sess-b")] {
        let me = agent.ok("get_my_session", json!({})).await.unwrap();
        assert_eq!(me["entry"]["client"]["session_id"], id);
    }
    let c = a
        .ok("claim_session", json!({"session_id": "claimed-by-a"}))
        .await
        .unwrap();
    assert_eq!(c["session_id"], "claimed-by-a");
    let me = a.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["entry"]["client"]["session_id"], "claimed-by-a");
    assert_eq!(me["detect_diagnosis"]["winning"]["detail"], "claim");
    // The sibling keeps its own id...
    let me = b.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["entry"]["client"]["session_id"], "sess-b", "{me}");
    assert_eq!(
        me["detect_diagnosis"]["winning"]["detail"],
        "env:CLAUDE_CODE_SESSION_ID"
    );
    // ...and so does a shim started later under the same client.
    let later = ox
        .agent_same_seat(AgentOpts::claude(&repo, "sess-later"))
        .await
        .unwrap();
    let me = later.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["entry"]["client"]["session_id"], "sess-later", "{me}");
    // Mail follows the identities: b's send reaches a's claimed session.
    b.ok(
        "send_message",
        json!({"target": "claimed-by-a", "body": "to the claimer", "wake": "off"}),
    )
    .await
    .unwrap();
    let got = a.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(got["messages"][0]["body"], "to the claimer", "{got}");
    let none = b.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(none["messages"].as_array().map(Vec::len), Some(0), "{none}");
    // A second shim of the claimer's own client session (same id) follows
    // the claim.
    let twin = ox
        .agent_same_seat(AgentOpts::claude(&repo, "sess-a"))
        .await
        .unwrap();
    let me = twin.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["entry"]["client"]["session_id"], "claimed-by-a", "{me}");
    // The claim survives a daemon restart (it is journaled).
    ox.kill_daemon().unwrap();
    let me = a.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["entry"]["client"]["session_id"], "claimed-by-a", "{me}");
    let me = b.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["entry"]["client"]["session_id"], "sess-b", "{me}");
}
