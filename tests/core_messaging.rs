//! Real shims (rmcp client over stdio) against a real auto-spawned daemon in a
//! temp OXTAIL_HOME: identity, scope, messaging, and bad input.

use oxtail_tests::harness::{git, pid_alive, AgentOpts, Instance};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["client_session_id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_exchange_messages() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    a.ok(
        "set_my_state",
        json!({"purpose": "writing the parser", "name": "alice"}),
    )
    .await
    .unwrap();
    b.ok(
        "set_my_state",
        json!({"purpose": "reviewing", "name": "bob"}),
    )
    .await
    .unwrap();

    let list = a.ok("list_project_sessions", json!({})).await.unwrap();
    assert_eq!(ids(&list), vec!["sess-a", "sess-b"]);
    assert_eq!(list["inferred"], json!(true));
    let bob = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "bob")
        .unwrap();
    assert_eq!(bob["state"]["purpose"], "reviewing");
    assert_eq!(bob["client_type"], "claude-code");
    assert_eq!(bob["branch"], "main");
    assert_eq!(bob["liveness"], "live");

    // By name and by id.
    let s1 = a
        .ok(
            "send_message",
            json!({"target": "bob", "body": "hello bob"}),
        )
        .await
        .unwrap();
    let s2 = a
        .ok(
            "send_message",
            json!({"target": "sess-b", "body": "second"}),
        )
        .await
        .unwrap();
    // bob has no hooks (no activity marker): a plain send wakes it.
    assert_eq!(s1["wake_reason"], "hookless_default");
    assert_eq!(s1["target_session_id"], "sess-b");
    assert!(s1.get("delivery_outlook").is_none());

    let unread = a.ok("list_project_sessions", json!({})).await.unwrap();
    let bob = unread["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "bob")
        .unwrap()
        .clone();
    assert_eq!(bob["unread"], 2);

    let inbox = b.ok("read_my_messages", json!({})).await.unwrap();
    let msgs = inbox["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["body"], "hello bob");
    assert_eq!(msgs[0]["from_session_id"], "sess-a");
    assert_eq!(msgs[0]["from_name"], "alice");
    assert_eq!(msgs[0]["id"], s1["message_id"]);
    assert_eq!(msgs[1]["id"], s2["message_id"]);
    assert_eq!(msgs[0]["origin"], "peer");
    // Drained: a second read is empty, and a's inbox was never touched.
    let again = b.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(again["count"], 0);
    assert_eq!(
        a.ok("read_my_messages", json!({})).await.unwrap()["count"],
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_by_id_and_message_status() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    let c = ox.agent(AgentOpts::claude(&repo, "sess-c")).await.unwrap();
    let sent = a
        .ok(
            "send_message",
            json!({"target": "sess-b", "body": "question?"}),
        )
        .await
        .unwrap();
    let mid = sent["message_id"].as_str().unwrap().to_string();

    let st = a
        .ok("message_status", json!({"message_id": mid}))
        .await
        .unwrap();
    assert_eq!(st["status"], "pending");
    // Only the sender can see a message's status.
    let st_c = c
        .ok("message_status", json!({"message_id": mid}))
        .await
        .unwrap();
    assert_eq!(st_c["status"], "unknown");

    // b cannot reply before it received anything: fail closed.
    b.ok("read_my_messages", json!({})).await.unwrap();
    let st = a.delivered(&json!(mid)).await.unwrap();
    assert_eq!(st["status"], "delivered");
    assert_eq!(st["via"], "read_my_messages");
    assert_eq!(st["via_detail"], "read_my_messages");
    assert_eq!(st["recipient_session_id"], "sess-b");
    assert!(st["delivered_at"].as_u64().unwrap() > 0);

    let r = b
        .ok(
            "reply_to_message",
            json!({"message_id": mid, "body": "answer!"}),
        )
        .await
        .unwrap();
    assert_eq!(r["target_session_id"], "sess-a");
    assert_eq!(r["in_reply_to_message_id"], json!(mid));
    let got = a.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(got["messages"][0]["body"], "answer!");
    assert_eq!(got["messages"][0]["reply_to"], json!(mid));

    // c never received `mid`: replying to it fails closed, nothing is sent.
    let bad = c
        .call(
            "reply_to_message",
            json!({"message_id": mid, "body": "sneaky"}),
        )
        .await
        .unwrap();
    assert_eq!(bad["ok"], false);
    assert_eq!(bad["error"], "message-not-found");
    assert_eq!(
        a.ok("read_my_messages", json!({})).await.unwrap()["count"],
        0
    );
    let unknown = c
        .call(
            "reply_to_message",
            json!({"message_id": "msg_nope", "body": "x"}),
        )
        .await
        .unwrap();
    assert_eq!(unknown["error"], "message-not-found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_shims_of_one_client_are_one_agent() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    // Two shims under the same client process (here: the test process), as
    // when both the project and the user MCP config list oxtail. Only the
    // first knows its session id from the environment.
    let first = ox
        .agent_same_seat(AgentOpts::claude(&repo, "sess-one"))
        .await
        .unwrap();
    first
        .ok("set_my_state", json!({"purpose": "one agent"}))
        .await
        .unwrap();
    let second = ox
        .agent_same_seat(AgentOpts {
            cwd: repo.clone(),
            env: vec![],
            client_name: "claude-code".into(),
        })
        .await
        .unwrap();
    let me = second.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["entry"]["client"]["session_id"], "sess-one");
    assert_eq!(me["detect_diagnosis"]["winning"]["detail"], "seat");
    let list = second.ok("list_project_sessions", json!({})).await.unwrap();
    assert_eq!(ids(&list), vec!["sess-one"]);
    assert_eq!(list["sessions"][0]["connected_shims"], 2);
    // Mail reaches the one mailbox whichever shim reads it.
    let other = ox
        .agent(AgentOpts::claude(&repo, "sess-other"))
        .await
        .unwrap();
    other
        .ok(
            "send_message",
            json!({"target": "sess-one", "body": "to both shims"}),
        )
        .await
        .unwrap();
    let got = second.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(got["messages"][0]["body"], "to both shims");
    assert_eq!(
        first.ok("read_my_messages", json!({})).await.unwrap()["count"],
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worktrees_of_one_repository_see_each_other() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    git(
        &repo,
        &["worktree", "add", "-q", "-b", "feature", "../proj-feature"],
    );
    let wt = repo.parent().unwrap().join("proj-feature");
    let a = ox
        .agent(AgentOpts::claude(&repo, "sess-main"))
        .await
        .unwrap();
    let b = ox
        .agent(AgentOpts::claude(&wt, "sess-feature"))
        .await
        .unwrap();
    b.ok("set_my_state", json!({"purpose": "feature work"}))
        .await
        .unwrap();
    let list = a.ok("list_project_sessions", json!({})).await.unwrap();
    assert_eq!(ids(&list), vec!["sess-feature", "sess-main"]);
    let row = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["client_session_id"] == "sess-feature")
        .unwrap();
    assert_eq!(row["branch"], "feature");
    assert!(row["worktree"].as_str().unwrap().ends_with("proj-feature"));
    a.ok(
        "send_message",
        json!({"target": "sess-feature", "body": "across worktrees"}),
    )
    .await
    .unwrap();
    assert_eq!(
        b.ok("read_my_messages", json!({})).await.unwrap()["count"],
        1
    );
    // An explicit project_root inside the repo (the other worktree) is the same project.
    let explicit = a
        .ok(
            "list_project_sessions",
            json!({"project_root": wt.to_str().unwrap()}),
        )
        .await
        .unwrap();
    assert_eq!(explicit["inferred"], false);
    assert_eq!(ids(&explicit).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_project_targets_are_rejected_without_echoing_ids() {
    let ox = Instance::new(BIN);
    let p1 = ox.git_repo("one");
    let p2 = ox.git_repo("two");
    let a = ox
        .agent(AgentOpts::claude(&p1, "sess-in-one"))
        .await
        .unwrap();
    let b = ox
        .agent(AgentOpts::claude(&p2, "secret-sess-in-two"))
        .await
        .unwrap();
    b.ok(
        "set_my_state",
        json!({"purpose": "elsewhere", "name": "faraway"}),
    )
    .await
    .unwrap();
    a.ok("set_my_state", json!({"purpose": "here"}))
        .await
        .unwrap();

    let list = a.ok("list_project_sessions", json!({})).await.unwrap();
    assert_eq!(ids(&list), vec!["sess-in-one"]);
    let r = a
        .call(
            "send_message",
            json!({"target": "secret-sess-in-two", "body": "hi"}),
        )
        .await
        .unwrap();
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"], "cross-project");
    assert!(!r.to_string().contains("secret-sess-in-two"), "{r}");
    // By name: the other project's names are simply not visible here.
    let r = a
        .call("send_message", json!({"target": "faraway", "body": "hi"}))
        .await
        .unwrap();
    assert_eq!(r["error"], "target-not-found");
    let r = a
        .call(
            "list_project_sessions",
            json!({"project_root": p2.to_str().unwrap()}),
        )
        .await
        .unwrap();
    assert_eq!(r["error"], "cross-project");
    assert!(!r.to_string().contains("secret-sess-in-two"));
    assert_eq!(
        b.ok("read_my_messages", json!({})).await.unwrap()["count"],
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_changes_nothing() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    let c = ox.agent(AgentOpts::claude(&repo, "sess-c")).await.unwrap();
    b.ok("set_my_state", json!({"purpose": "x", "name": "twin"}))
        .await
        .unwrap();
    c.ok("set_my_state", json!({"purpose": "y"})).await.unwrap();
    let before = ox.ctl(&["dump"]).unwrap();

    // Malformed arguments are MCP errors that name the field.
    for (tool, args, field) in [
        ("send_message", json!({"body": "no target"}), "target"),
        ("send_message", json!({"target": "sess-b"}), "body"),
        ("send_message", json!({"target": 7, "body": "x"}), "target"),
        (
            "send_message",
            json!({"target": "sess-b", "body": "x", "wake": "loud"}),
            "wake",
        ),
        (
            "send_message",
            json!({"target": "sess-b", "body": "x", "action_required": "yes"}),
            "action_required",
        ),
        (
            "send_message",
            json!({"target": "sess-b", "body": "x", "colour": 1}),
            "colour",
        ),
        // (set_my_state {} is a touch: CONTRACT §2, tests/contract.rs.)
        (
            "set_my_state",
            json!({"purpose": "p".repeat(201)}),
            "purpose",
        ),
        (
            "set_my_state",
            json!({"purpose": "ok", "name": "has space"}),
            "name",
        ),
        (
            "claim_session",
            json!({"session_id": "bad id!"}),
            "session_id",
        ),
        ("reply_to_message", json!({"body": "x"}), "message_id"),
        ("message_status", json!({}), "message_id"),
        ("read_my_messages", json!({"extra": true}), "extra"),
    ] {
        let text = a
            .schema_error(tool, args.clone())
            .await
            .unwrap_or_else(|e| panic!("{tool} {args} should fail: {e}"));
        assert!(
            text.contains(&format!("`{field}`")),
            "{tool} {args}: {text}"
        );
    }
    // Errors the caller can act on are results with ok:false and a code.
    let big = "x".repeat(8193);
    let r = a
        .call("send_message", json!({"target": "sess-b", "body": big}))
        .await
        .unwrap();
    assert_eq!(r["error"], "body-too-large");
    assert_eq!(r["size_bytes"], 8193);
    assert!(r["message"].as_str().unwrap().contains("8193"));
    let r = a
        .call("send_message", json!({"target": "nobody", "body": "x"}))
        .await
        .unwrap();
    assert_eq!(r["error"], "target-not-found");
    let r = a
        .call("message_status", json!({"message_id": "msg_missing"}))
        .await
        .unwrap();
    assert_eq!(r["status"], "unknown");

    let after = ox.ctl(&["dump"]).unwrap();
    assert_eq!(before["state"]["messages"], after["state"]["messages"]);
    assert_eq!(before["state"]["mailboxes"], after["state"]["mailboxes"]);
    assert_eq!(
        before["state"]["agents"]["sess-c"],
        after["state"]["agents"]["sess-c"]
    );
    assert_eq!(
        b.ok("read_my_messages", json!({})).await.unwrap()["count"],
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_targets_list_candidates_and_chosen_names_are_not_shared() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox
        .agent(AgentOpts::claude(&repo, "reviewer-0001-aaaa"))
        .await
        .unwrap();
    let c = ox
        .agent(AgentOpts::claude(&repo, "reviewer-0002-bbbb"))
        .await
        .unwrap();
    b.ok("set_my_state", json!({"purpose": "x", "name": "reviewer"}))
        .await
        .unwrap();
    // A name another live agent chose is refused, never shared.
    let r = c
        .call("set_my_state", json!({"purpose": "y", "name": "reviewer"}))
        .await
        .unwrap();
    assert_eq!(r["error"], "name-taken", "{r}");
    // An id prefix that two agents share is ambiguous.
    let r = a
        .call(
            "send_message",
            json!({"target": "reviewer-000", "body": "which one?"}),
        )
        .await
        .unwrap();
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"], "ambiguous-target", "{r}");
    let mut cands: Vec<&str> = r["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    cands.sort();
    assert_eq!(cands, vec!["reviewer-0001-aaaa", "reviewer-0002-bbbb"]);
    let details = r["candidate_details"].as_array().unwrap();
    assert_eq!(details.len(), 2);
    for d in details {
        assert_eq!(d["client_type"], "claude-code", "{d}");
        assert!(d["name"].is_string(), "{d}");
        assert_eq!(d["liveness"], "live", "{d}");
        assert!(d["worktree"].as_str().unwrap().ends_with("proj"), "{d}");
    }
    assert_eq!(
        b.ok("read_my_messages", json!({})).await.unwrap()["count"],
        0
    );
    assert_eq!(
        c.ok("read_my_messages", json!({})).await.unwrap()["count"],
        0
    );
    // A unique prefix picks one; the name comes before prefixes (`reviewer`
    // is also a prefix of both ids).
    a.ok(
        "send_message",
        json!({"target": "reviewer-0002", "body": "you"}),
    )
    .await
    .unwrap();
    a.ok("send_message", json!({"target": "reviewer", "body": "b"}))
        .await
        .unwrap();
    assert_eq!(
        c.ok("read_my_messages", json!({})).await.unwrap()["count"],
        1
    );
    assert_eq!(
        b.ok("read_my_messages", json!({})).await.unwrap()["count"],
        1
    );
    // Too short a prefix is no target.
    let r = a
        .call("send_message", json!({"target": "review", "body": "x"}))
        .await
        .unwrap();
    assert_eq!(r["error"], "target-not-found", "{r}");
    assert!(r.get("wake_status").is_none(), "no wake was intended: {r}");
    let r = a
        .call("ask_peer", json!({"target": "review", "body": "x"}))
        .await
        .unwrap();
    assert_eq!(r["error"], "target-not-found", "{r}");
    assert_eq!(r["wake_status"], "skipped_no_target", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_claim_is_monotonic_and_unresolved_has_next_step() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let anon = ox
        .agent(AgentOpts {
            cwd: repo.clone(),
            env: vec![],
            client_name: "some-client".into(),
        })
        .await
        .unwrap();
    // An unknown client type gets an empty diagnosis (CONTRACT §3); the
    // no-session-id error of any call says how to claim.
    let me = anon.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["detect_diagnosis"]["winning"], json!(null));
    assert_eq!(me["detect_diagnosis"]["next_step"], json!(null));
    let r = anon
        .call("send_message", json!({"target": "x", "body": "y"}))
        .await
        .unwrap();
    assert_eq!(r["error"], "no-session-id");
    assert!(r["next_step"].as_str().unwrap().contains("claim_session"));

    let c = anon
        .ok("claim_session", json!({"session_id": "claimed-1"}))
        .await
        .unwrap();
    assert_eq!(c["session_id"], "claimed-1");
    let me = anon.ok("get_my_session", json!({})).await.unwrap();
    assert_eq!(me["entry"]["client"]["session_id"], "claimed-1");
    assert_eq!(me["detect_diagnosis"]["winning"]["detail"], "claim");
    assert_eq!(me["entry"]["client"]["type"], "unknown");

    // Codex-style per-call _meta does not override an explicit claim...
    let v = anon
        .call_with_meta("get_my_session", json!({}), json!({"threadId": "thread-x"}))
        .await
        .unwrap();
    assert_eq!(v["entry"]["client"]["session_id"], "claimed-1");
    // ...but on an unclaimed Codex shim it is the identity, per call.
    let codex = ox
        .agent(AgentOpts {
            cwd: repo.clone(),
            env: vec![],
            client_name: "codex-mcp-client".into(),
        })
        .await
        .unwrap();
    let meta = json!({"threadId": "01a1fc7c-f019-7f70-bd45-c4e66d586f46", "sessionId": "01a1fc7c-f019-7f70-bd45-c4e66d586f46"});
    let v = codex
        .call_with_meta("get_my_session", json!({}), meta.clone())
        .await
        .unwrap();
    assert_eq!(
        v["entry"]["client"]["session_id"],
        "01a1fc7c-f019-7f70-bd45-c4e66d586f46"
    );
    assert_eq!(v["detect_diagnosis"]["winning"]["detail"], "codex_meta");
    assert_eq!(v["entry"]["client"]["type"], "codex");
    let v2 = codex
        .call_with_meta(
            "get_my_session",
            json!({}),
            json!({"threadId": "second-thread"}),
        )
        .await
        .unwrap();
    assert_eq!(v2["entry"]["client"]["session_id"], "second-thread");
    let list = anon.ok("list_project_sessions", json!({})).await.unwrap();
    assert_eq!(
        ids(&list),
        vec![
            "01a1fc7c-f019-7f70-bd45-c4e66d586f46",
            "claimed-1",
            "second-thread"
        ]
    );
}

#[test]
fn concurrent_spawns_end_in_one_daemon() {
    let ox = Instance::new(BIN);
    // Eight racing `ctl ping`s, each of which starts a daemon if none answers.
    let children: Vec<_> = (0..8)
        .map(|_| {
            ox.command()
                .args(["ctl", "ping", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut pids = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        pids.push(v["pid"].as_u64().unwrap());
    }
    pids.dedup();
    assert_eq!(
        pids.len(),
        1,
        "every client reached the same daemon: {pids:?}"
    );
    // Exactly one `oxtail daemon` process for this home survives (a daemon
    // that lost the race may still be on its way out: wait for that).
    let home = ox.home();
    let daemons = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| pid_alive(*pid))
            .filter(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                String::from_utf8_lossy(&cmd).contains("daemon")
                    && String::from_utf8_lossy(&env).contains(home.to_str().unwrap())
            })
            .collect()
    };
    let end = Instant::now() + Duration::from_secs(5);
    while daemons().len() > 1 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(daemons(), vec![pids[0] as u32]);
}

#[test]
fn garbage_frames_are_dropped_and_the_daemon_keeps_serving() {
    use std::io::{Read, Write};
    let ox = Instance::new(BIN);
    ox.ctl(&["ping"]).unwrap();
    let sock = ox.home().join("run/daemon.sock");
    // Oversized length prefix.
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let mut buf = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty(), "no answer to garbage");
    // Not JSON.
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.write_all(&5u32.to_be_bytes()).unwrap();
    s.write_all(b"nope!").unwrap();
    let _ = s.read_to_end(&mut buf);
    // A hello from a future protocol major gets a clear refusal.
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let hello = json!({"frame": "hello", "protocol_major": 99, "protocol_minor": 0, "version": "99.0.0", "role": "ctl", "pid": 1});
    let bytes = serde_json::to_vec(&hello).unwrap();
    s.write_all(&(bytes.len() as u32).to_be_bytes()).unwrap();
    s.write_all(&bytes).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut payload = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut payload).unwrap();
    let refusal: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(refusal["frame"], "refused");
    let reason = refusal["reason"].as_str().unwrap();
    assert!(
        reason.contains("99.0.0") && reason.contains(env!("CARGO_PKG_VERSION")),
        "{reason}"
    );
    // Everyone else is still served.
    assert_eq!(ox.ctl(&["ping"]).unwrap()["pong"], true);
}

#[test]
fn socket_and_state_dir_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let ox = Instance::new(BIN);
    ox.ctl(&["ping"]).unwrap();
    let mode = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(ox.home().join("run/daemon.sock")), 0o600);
    assert_eq!(mode(ox.home().join("run")), 0o700);
    assert_eq!(mode(ox.home()), 0o700);
}
