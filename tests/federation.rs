//! Federation through NATS JetStream (issue 16), with a real nats-server on
//! 127.0.0.1 and two (or three) daemons with separate `OXTAIL_HOME`s and
//! sockets standing in for machines. Two clones of one repository (same
//! root commit, the origin spelled two ways) are one federated project; a
//! repository with another root commit is another.
//!
//! Skips with a message when nats-server is absent; fails instead under
//! `OXTAIL_E2E_REQUIRED=1`.

use anyhow::{bail, Result};
use oxtail_tests::harness::{git, Agent, AgentOpts, Instance};
use oxtail_tests::nats::{server_or_skip, NatsServer};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

fn machine(nats: &NatsServer) -> Instance {
    Instance::with_env(
        BIN,
        &[
            ("OXTAIL_FEDERATION_URL", nats.url().as_str()),
            ("OXTAIL_FEDERATION_HEARTBEAT_MS", "200"),
            ("OXTAIL_FEDERATION_TTL_MS", "3000"),
        ],
    )
}

/// One repository on `a` (origin as an https URL) and its clone on `b`
/// (origin as an scp-like ssh URL): the same federated project.
fn clones(a: &Instance, b: &Instance) -> (PathBuf, PathBuf) {
    let ra = a.git_repo("repo");
    git(
        &ra,
        &[
            "remote",
            "add",
            "origin",
            "https://Example.invalid/team/repo.git",
        ],
    );
    let rb = b.workdir("repo");
    git(&rb, &["clone", "-q", ra.to_str().unwrap(), "."]);
    git(
        &rb,
        &[
            "remote",
            "set-url",
            "origin",
            "git@example.invalid:team/repo.git",
        ],
    );
    (ra, rb)
}

/// Polls `f` (every 20 ms) until it gives `Some`, for at most `timeout`.
async fn until<F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<Value>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<Value>>,
{
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > end {
            bail!("{what}: not within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The row `name` in `agent`'s `list_project_sessions`, if present.
async fn row_of(agent: &Agent, name: &str) -> Option<Value> {
    let list = agent.call("list_project_sessions", json!({})).await.ok()?;
    list["sessions"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
}

async fn named(ox: &Instance, repo: &Path, id: &str, name: &str) -> Agent {
    let a = ox.agent(AgentOpts::claude(repo, id)).await.unwrap();
    a.ok(
        "set_my_state",
        json!({"purpose": format!("{name} at work"), "name": name}),
    )
    .await
    .unwrap();
    a
}

/// Reads `agent`'s mail until `n` messages came (or the time is up).
async fn read_n(agent: &Agent, n: usize, timeout: Duration) -> Result<Vec<Value>> {
    let end = Instant::now() + timeout;
    let mut got = Vec::new();
    while got.len() < n {
        if let Ok(v) = agent.call("read_my_messages", json!({})).await {
            if let Some(m) = v["messages"].as_array() {
                got.extend(m.iter().cloned());
            }
        }
        if Instant::now() > end {
            bail!("{} of {n} messages within {timeout:?}: {got:?}", got.len());
        }
        if got.len() < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_send_reply_and_ask_across_daemons() {
    let Some(nats) = server_or_skip() else { return };
    let (ma, mb, mc) = (machine(&nats), machine(&nats), machine(&nats));
    let (ra, rb) = clones(&ma, &mb);
    // Another repository (another root commit), same origin URL: apart.
    // (`git_repo`'s fixed commit would be the same commit here.)
    let rc = mc.workdir("repo");
    git(&rc, &["init", "-q", "-b", "main"]);
    git(
        &rc,
        &["commit", "-q", "--allow-empty", "-m", "another project"],
    );
    git(
        &rc,
        &[
            "remote",
            "add",
            "origin",
            "https://example.invalid/team/repo.git",
        ],
    );
    let alice = named(&ma, &ra, "sess-alice", "alice").await;
    let bob = named(&mb, &rb, "sess-bob", "bob").await;
    let carol = named(&mc, &rc, "sess-carol", "carol").await;

    // Presence, both ways, marked remote with the host.
    let t0 = Instant::now();
    let b_at_a = until("bob visible on A", Duration::from_secs(10), || async {
        row_of(&alice, "bob").await
    })
    .await
    .unwrap_or_else(|e| {
        for m in [&ma, &mb] {
            let log = std::fs::read_to_string(m.home().join("daemon.log")).unwrap_or_default();
            eprintln!("---- {}\n{log}", m.home().display());
        }
        panic!("{e}")
    });
    let a_at_b = until("alice visible on B", Duration::from_secs(10), || async {
        row_of(&bob, "alice").await
    })
    .await
    .unwrap();
    eprintln!("presence converged in {:?}", t0.elapsed());
    assert_eq!(b_at_a["remote"], true);
    assert_eq!(b_at_a["client_session_id"], "sess-bob");
    assert_eq!(b_at_a["state"]["purpose"], "bob at work");
    assert_eq!(b_at_a["branch"], "main");
    assert!(b_at_a["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(a_at_b["remote"], true);
    let compact = alice
        .ok("list_project_sessions", json!({"compact": true}))
        .await
        .unwrap();
    let remote = compact["tmux_sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["remote"] == true)
        .unwrap_or_else(|| panic!("a remote entry: {compact}"));
    assert_eq!(remote["agents"][0]["name"], "bob");

    // Send: acknowledged after JetStream's ack.
    let t0 = Instant::now();
    let s = alice
        .ok(
            "send_message",
            json!({"target": "bob", "body": "hello from A"}),
        )
        .await
        .unwrap();
    eprintln!(
        "cross-daemon send_message through the shim: {:?}",
        t0.elapsed()
    );
    assert_eq!(s["remote"], true);
    assert_eq!(s["remote_status"], "sent_remote", "{s}");
    assert_eq!(s["target_session_id"], "sess-bob");
    let got = read_n(&bob, 1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(got[0]["body"], "hello from A");
    assert_eq!(got[0]["id"], s["message_id"]);
    assert_eq!(got[0]["from_session_id"], "sess-alice");
    assert_eq!(got[0]["from_name"], "alice");
    // message_status: sent_remote, then delivered once B's receipt is back.
    let st = until(
        "delivered receipt from B",
        Duration::from_secs(10),
        || async {
            let st = alice
                .ok("message_status", json!({"message_id": s["message_id"]}))
                .await
                .ok()?;
            assert!(
                st["status"] == "sent_remote" || st["status"] == "delivered",
                "{st}"
            );
            (st["status"] == "delivered").then_some(st)
        },
    )
    .await
    .unwrap();
    assert_eq!(st["via"], "read_my_messages", "{st}");
    assert_eq!(st["recipient_session_id"], "sess-bob");
    assert_eq!(st["remote"], true);

    // Reply across.
    let r = bob
        .ok(
            "reply_to_message",
            json!({"message_id": s["message_id"], "body": "hi back"}),
        )
        .await
        .unwrap();
    assert_eq!(r["remote"], true, "{r}");
    let got = read_n(&alice, 1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(got[0]["body"], "hi back");
    assert_eq!(got[0]["reply_to"], s["message_id"]);

    // ask_peer across: the blocked ask returns with bob's reply.
    let asker = alice.call(
        "ask_peer",
        json!({"target": "bob", "body": "what is 6*7?", "timeout_ms": 30000}),
    );
    let answerer = async {
        let got = read_n(&bob, 1, Duration::from_secs(15)).await?;
        assert_eq!(got[0]["body"], "what is 6*7?");
        assert!(got[0]["request_id"].is_string(), "{}", got[0]);
        // The ask is an obligation of bob's, on bob's machine.
        let work = bob.ok("my_open_work", json!({})).await?;
        assert_eq!(work["count"], 1, "{work}");
        bob.ok(
            "reply_to_message",
            json!({"message_id": got[0]["id"], "body": "42"}),
        )
        .await
    };
    let t0 = Instant::now();
    let (ask, reply) = tokio::join!(asker, answerer);
    eprintln!(
        "cross-daemon ask_peer, asked to answered: {:?}",
        t0.elapsed()
    );
    let (ask, reply) = (ask.unwrap(), reply.unwrap());
    assert_eq!(ask["ok"], true, "{ask}");
    assert_eq!(ask["reply"]["body"], "42", "{ask}");
    assert_eq!(ask["correlation"], "correlated");
    assert_eq!(ask["timed_out"], false);
    assert_eq!(reply["correlation"], "correlated");
    let work = bob.ok("my_open_work", json!({})).await.unwrap();
    assert_eq!(work["count"], 0, "answering closed the obligation: {work}");

    // Different project keys stay apart, both ways.
    assert!(row_of(&alice, "carol").await.is_none());
    assert!(row_of(&carol, "alice").await.is_none());
    assert!(row_of(&carol, "bob").await.is_none());
    let x = carol
        .call("send_message", json!({"target": "alice", "body": "psst"}))
        .await
        .unwrap();
    assert_eq!(x["ok"], false);
    assert_eq!(x["error"], "target-not-found", "{x}");

    // Obligations across: delegated on A, owned and completed on B, the
    // outcome back on A.
    let d = alice
        .ok(
            "send_message",
            json!({"target": "bob", "body": "please do X", "action_required": true}),
        )
        .await
        .unwrap();
    assert_eq!(d["obligation_durable"], true);
    read_n(&bob, 1, Duration::from_secs(10)).await.unwrap();
    let work = bob.ok("my_open_work", json!({})).await.unwrap();
    assert_eq!(work["count"], 1, "{work}");
    assert_eq!(work["open"][0]["message_id"], d["message_id"]);
    assert_eq!(work["open"][0]["from_session_id"], "sess-alice");
    let c = bob
        .ok(
            "complete_work",
            json!({"message_id": d["message_id"], "body": "X done"}),
        )
        .await
        .unwrap();
    assert_eq!(c["remote_status"], "sent_remote", "{c}");
    let got = read_n(&alice, 1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(got[0]["body"], "X done");
    assert_eq!(got[0]["outcome"], "done", "{}", got[0]);
    assert_eq!(bob.ok("my_open_work", json!({})).await.unwrap()["count"], 0);

    // `oxtail status --json` and `oxtail doctor` say it is on, and where.
    let out = ma
        .command()
        .args(["status", "--json"])
        .current_dir(&ra)
        .output()
        .unwrap();
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &st["federation"];
    assert_eq!(f["url"], nats.url(), "{st}");
    assert_eq!(f["link_up"], true);
    assert_eq!(f["projects"], 1);
    assert_eq!(f["remote_agents"], 1, "bob, not carol: {f}");
    assert!(f["warning"].is_null(), "loopback needs no warning");
    let remote = st["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "bob")
        .cloned()
        .unwrap_or_else(|| panic!("the cockpit shows bob: {st}"));
    assert!(remote["host"].is_string(), "{remote}");
    assert_eq!(remote["wake_route"], "remote");
    let out = ma.command().args(["doctor", "--json"]).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fc = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "federation")
        .cloned()
        .unwrap();
    assert_eq!(fc["status"], "ok", "{fc}");
    assert!(fc["detail"].as_str().unwrap().contains("link up"), "{fc}");

    // A daemon that stops heartbeating: its agents turn unreachable, then
    // go, within the TTL (3 s here).
    mb.kill_daemon().unwrap();
    let t0 = Instant::now();
    until("bob unreachable on A", Duration::from_secs(10), || async {
        match row_of(&alice, "bob").await {
            None => Some(json!("gone")),
            Some(r) if r["liveness"] == "unreachable" => Some(r),
            Some(_) => None,
        }
    })
    .await
    .unwrap();
    eprintln!(
        "a dead daemon's agents unreachable after {:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_down_then_up_flushes_the_outbox_in_order() {
    let Some(mut nats) = server_or_skip() else {
        return;
    };
    let (ma, mb) = (machine(&nats), machine(&nats));
    let (ra, rb) = clones(&ma, &mb);
    let alice = named(&ma, &ra, "sess-alice", "alice").await;
    let bob = named(&mb, &rb, "sess-bob", "bob").await;
    until("bob visible on A", Duration::from_secs(10), || async {
        row_of(&alice, "bob").await
    })
    .await
    .unwrap();

    nats.stop();
    until("bob unreachable on A", Duration::from_secs(10), || async {
        row_of(&alice, "bob")
            .await
            .filter(|r| r["liveness"] == "unreachable")
    })
    .await
    .unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let s = alice
            .ok(
                "send_message",
                json!({"target": "bob", "body": format!("offline {i}")}),
            )
            .await
            .unwrap();
        assert_eq!(s["remote_status"], "queued_for_remote", "{s}");
        ids.push(s["message_id"].clone());
    }
    let st = alice
        .ok("message_status", json!({"message_id": ids[0]}))
        .await
        .unwrap();
    assert_eq!(st["status"], "queued_for_remote", "{st}");

    nats.restart().unwrap();
    let got = read_n(&bob, 5, Duration::from_secs(20)).await.unwrap();
    let bodies: Vec<&str> = got.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(
        bodies,
        (0..5).map(|i| format!("offline {i}")).collect::<Vec<_>>(),
        "flushed in order"
    );
    let got_ids: Vec<&Value> = got.iter().map(|m| &m["id"]).collect();
    assert_eq!(got_ids, ids.iter().collect::<Vec<_>>());
    until(
        "sent once the link is back",
        Duration::from_secs(10),
        || async {
            let st = alice
                .ok("message_status", json!({"message_id": ids[4]}))
                .await
                .ok()?;
            (st["status"] == "sent_remote" || st["status"] == "delivered").then_some(st)
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_and_a_server_restart_during_a_burst_lose_and_duplicate_nothing() {
    const N: usize = 40;
    let Some(mut nats) = server_or_skip() else {
        return;
    };
    let (ma, mb) = (machine(&nats), machine(&nats));
    let (ra, rb) = clones(&ma, &mb);
    let alice = named(&ma, &ra, "sess-alice", "alice").await;
    let bob = named(&mb, &rb, "sess-bob", "bob").await;
    until("alice visible on B", Duration::from_secs(10), || async {
        row_of(&bob, "alice").await
    })
    .await
    .unwrap();
    // bob writes first, so A knows where sess-bob lives even while bob's
    // daemon is down and its presence expired.
    bob.ok("send_message", json!({"target": "alice", "body": "ready"}))
        .await
        .unwrap();
    read_n(&alice, 1, Duration::from_secs(10)).await.unwrap();

    let mut acked: HashMap<String, usize> = HashMap::new();
    let mut failed = 0;
    for i in 0..N {
        match i {
            10 => {
                mb.kill_daemon().unwrap();
                // bob's shim starts a new daemon at its next call.
                let _ = bob.call("list_project_sessions", json!({})).await;
            }
            20 => {
                ma.kill_daemon().unwrap();
            }
            30 => nats.restart().unwrap(),
            _ => {}
        }
        match alice
            .call(
                "send_message",
                json!({"target": "sess-bob", "body": format!("burst {i}")}),
            )
            .await
        {
            Ok(v) if v["ok"] == true => {
                assert!(acked
                    .insert(v["message_id"].as_str().unwrap().into(), i)
                    .is_none());
            }
            _ => failed += 1,
        }
    }
    eprintln!(
        "acked {} of {N}; {failed} calls failed around the kills",
        acked.len()
    );
    assert!(acked.len() >= N / 2, "most sends were acknowledged");

    // Every acknowledged message arrives; none twice unless flagged.
    let end = Instant::now() + Duration::from_secs(40);
    let mut seen: HashMap<String, usize> = HashMap::new();
    while !acked.keys().all(|k| seen.contains_key(k)) {
        assert!(
            Instant::now() < end,
            "missing: {:?}",
            acked
                .keys()
                .filter(|k| !seen.contains_key(*k))
                .collect::<Vec<_>>()
        );
        if let Ok(v) = bob.call("read_my_messages", json!({})).await {
            for m in v["messages"].as_array().into_iter().flatten() {
                let id = m["id"].as_str().unwrap().to_string();
                let n = seen.entry(id.clone()).or_default();
                *n += 1;
                assert!(
                    *n == 1 || m["redelivered"] == true,
                    "{id} delivered twice without redelivered: {m}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let repeats: usize = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "delivered {} distinct ({} acknowledged), {repeats} flagged repeats, 0 unflagged",
        seen.len(),
        acked.len()
    );
}
