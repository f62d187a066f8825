//! Delegation and waking through real shims and a real daemon: ask_peer
//! (answered, timed out then answered late, uncorrelated chatter,
//! cancellation), the obligation lifecycle, and every wake_status branch the
//! daemon can reach without a terminal (keys into tmux panes are in
//! tests/wake_tmux.rs).

use oxtail_proto::{IdleWait, IdleWaitAnswer, Reply, Request, Role};
use oxtail_tests::harness::{Agent, AgentOpts, Instance};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

async fn pair(ox: &Instance) -> (Arc<Agent>, Arc<Agent>) {
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "asker")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "helper")).await.unwrap();
    a.ok("set_my_state", json!({"purpose": "asking", "name": "a"}))
        .await
        .unwrap();
    b.ok("set_my_state", json!({"purpose": "helping", "name": "b"}))
        .await
        .unwrap();
    (Arc::new(a), Arc::new(b))
}

/// Arms an idle-wait (the Claude Code rewake hook's long poll) for `session`
/// on a thread; the handle yields its answer.
fn arm_idle_wait(
    ox: &Instance,
    session: &str,
    timeout_ms: u64,
) -> std::thread::JoinHandle<IdleWaitAnswer> {
    let mut c = ox.raw_client(Role::Hook).unwrap();
    let session = session.to_string();
    std::thread::spawn(move || {
        c.set_timeout(None).unwrap();
        let r = c
            .call(Request::IdleWait(IdleWait {
                session_id: session,
                client_pid: None,
                timeout_ms,
                budget_chars: 9000,
            }))
            .unwrap();
        match r {
            Reply::Ok { value } => serde_json::from_value(value).unwrap(),
            Reply::Error { code, message } => panic!("{code}: {message}"),
        }
    })
}

/// Waits until the daemon reports `n` askers blocked in `ask_peer`.
fn wait_asks_in_flight(ox: &Instance, n: u64) {
    ox.wait_stat("asks_in_flight", n, Duration::from_secs(10))
        .unwrap();
}

/// Waits until the daemon reports `n` armed idle waiters.
fn wait_idle_waiters(ox: &Instance, n: u64) {
    ox.wait_stat("idle_waiters", n, Duration::from_secs(5))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_answered_by_reply_to_message() {
    let ox = Instance::new(BIN);
    let (a, b) = pair(&ox).await;
    let asker = {
        let a = a.clone();
        tokio::spawn(async move {
            a.call(
                "ask_peer",
                json!({"target": "b", "body": "what is 6*7?", "timeout_ms": 20000}),
            )
            .await
            .unwrap()
        })
    };
    // b sees the ask (with its request_id) once it is registered, and
    // answers by id.
    wait_asks_in_flight(&ox, 1);
    let v = b.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(v["count"], 1, "the ask reached b: {v}");
    let ask = &v["messages"][0];
    assert_eq!(ask["body"], "what is 6*7?");
    assert!(ask["request_id"].as_str().unwrap().starts_with("req_"));
    assert_eq!(ask["action_required"], true);
    assert_eq!(v["open_work_count"], 1);
    // While it waits, the asker's row shows what it awaits.
    let list = b.ok("list_project_sessions", json!({})).await.unwrap();
    let row = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "a")
        .unwrap()
        .clone();
    assert_eq!(row["awaiting"][0]["target"], "helper");
    assert_eq!(row["awaiting"][0]["in_flight"], true);

    let r = b
        .ok(
            "reply_to_message",
            json!({"message_id": ask["id"], "body": "42"}),
        )
        .await
        .unwrap();
    assert_eq!(r["reply_to"], ask["request_id"]);
    assert_eq!(r["correlated"], "answered_waiting_ask");
    let answer = asker.await.unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["timed_out"], false);
    assert_eq!(answer["correlation"], "correlated");
    assert_eq!(answer["reply"]["body"], "42");
    assert_eq!(answer["reply"]["from_session_id"], "helper");
    assert_eq!(answer["request_id"], ask["request_id"]);
    // The answer was handed over by the ask itself: nothing left queued, and
    // the reply closed b's obligation.
    assert_eq!(
        a.ok("read_my_messages", json!({})).await.unwrap()["count"],
        0
    );
    assert_eq!(b.ok("my_open_work", json!({})).await.unwrap()["count"], 0);
    let st = b.delivered(&r["message_id"]).await.unwrap();
    assert_eq!(st["status"], "delivered");
    assert_eq!(st["via"], "ask_peer_reply");
    assert_eq!(st["via_detail"], "ask_peer");
    assert_eq!(ox.ctl(&["stats"]).unwrap()["pending_asks"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_times_out_then_a_late_reply_wakes_the_requester() {
    let ox = Instance::new(BIN);
    let (a, b) = pair(&ox).await;
    let started = Instant::now();
    let v = a
        .ok(
            "ask_peer",
            json!({"target": "helper", "body": "slow question", "timeout_ms": 300}),
        )
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(v["timed_out"], true);
    assert!(v["hint"]
        .as_str()
        .unwrap()
        .contains("late_reply_to_pending"));
    assert_eq!(ox.ctl(&["stats"]).unwrap()["pending_asks"], 1);
    let list = b.ok("list_project_sessions", json!({})).await.unwrap();
    let row = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "a")
        .unwrap()
        .clone();
    assert_eq!(row["awaiting"][0]["in_flight"], false);

    // a ends its turn: idle, with the rewake hook armed.
    ox.mark("asker", "idle").unwrap();
    let waiter = arm_idle_wait(&ox, "asker", 20_000);
    wait_idle_waiters(&ox, 1);

    let inbox = b.ok("read_my_messages", json!({})).await.unwrap();
    let ask = inbox["messages"][0].clone();
    let r = b
        .ok(
            "reply_to_message",
            json!({"message_id": ask["id"], "body": "late answer"}),
        )
        .await
        .unwrap();
    assert_eq!(r["correlated"], "answered_pending_ask");
    assert_eq!(r["wake_reason"], "late_reply_to_pending");
    assert_eq!(r["wake_status"], "fired");
    match waiter.join().unwrap() {
        IdleWaitAnswer::Mail {
            deliver, delivered, ..
        } => {
            assert_eq!(delivered, 1);
            assert!(deliver.contains("late answer"), "{deliver}");
            assert!(deliver.contains(ask["request_id"].as_str().unwrap()));
        }
        other => panic!("expected mail, got {other:?}"),
    }
    // Single winner: the pending ask is consumed; a second reply is plain.
    assert_eq!(ox.ctl(&["stats"]).unwrap()["pending_asks"], 0);
    let again = b
        .ok(
            "reply_to_message",
            json!({"message_id": ask["id"], "body": "again"}),
        )
        .await
        .unwrap();
    assert_eq!(again["wake_reason"], "reply_to_default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_reply_with_wake_off_is_suppressed() {
    let ox = Instance::new(BIN);
    let (a, b) = pair(&ox).await;
    let v = a
        .ok(
            "ask_peer",
            json!({"target": "b", "body": "q", "timeout_ms": 50}),
        )
        .await
        .unwrap();
    assert_eq!(v["timed_out"], true);
    let ask = b.ok("read_my_messages", json!({})).await.unwrap()["messages"][0].clone();
    let r = b
        .ok(
            "reply_to_message",
            json!({"message_id": ask["id"], "body": "quiet", "wake": "off"}),
        )
        .await
        .unwrap();
    assert_eq!(r["wake_reason"], "late_reply_to_pending_suppressed");
    // CONTRACT §15: a suppressed late reply reports no wake_status.
    assert!(r.get("wake_status").is_none(), "{r}");
    assert_eq!(
        a.ok("read_my_messages", json!({})).await.unwrap()["messages"][0]["body"],
        "quiet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncorrelated_chatter_does_not_satisfy_an_ask() {
    let ox = Instance::new(BIN);
    let (a, b) = pair(&ox).await;
    let asker = {
        let a = a.clone();
        tokio::spawn(async move {
            a.call(
                "ask_peer",
                json!({"target": "b", "body": "real question", "timeout_ms": 1500}),
            )
            .await
            .unwrap()
        })
    };
    wait_asks_in_flight(&ox, 1);
    // Chatter from the same peer: no reply_to, and a reply_to that is not the request.
    b.ok(
        "send_message",
        json!({"target": "a", "body": "unrelated chatter"}),
    )
    .await
    .unwrap();
    b.ok(
        "send_message",
        json!({"target": "a", "body": "wrong correlation", "reply_to": "req_not_it"}),
    )
    .await
    .unwrap();
    let v = asker.await.unwrap();
    assert_eq!(v["timed_out"], true, "{v}");
    // The chatter stayed queued for a, untouched by the wait.
    let inbox = a.ok("read_my_messages", json!({})).await.unwrap();
    let bodies: Vec<&str> = inbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, vec!["unrelated chatter", "wrong correlation"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_ask_becomes_pending() {
    let ox = Instance::new(BIN);
    let (a, _b) = pair(&ox).await;
    // Abandoning the call makes rmcp send notifications/cancelled.
    let r = tokio::time::timeout(
        Duration::from_millis(300),
        a.call(
            "ask_peer",
            json!({"target": "b", "body": "never mind", "timeout_ms": 60000}),
        ),
    )
    .await;
    assert!(r.is_err(), "the ask should still be waiting");
    let s = ox
        .wait_stat("asks_in_flight", 0, Duration::from_secs(5))
        .expect("the cancel reaches the daemon");
    assert_eq!(s["pending_asks"], 1);
    let d = ox.ctl(&["dump"]).unwrap();
    assert_eq!(d["state"]["asks"].as_object().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_shim_leaves_its_ask_pending() {
    let ox = Instance::new(BIN);
    let (a, _b) = pair(&ox).await;
    let a2 = a.clone();
    let waiting = tokio::spawn(async move {
        a2.call(
            "ask_peer",
            json!({"target": "b", "body": "q", "timeout_ms": 60000}),
        )
        .await
    });
    wait_asks_in_flight(&ox, 1);
    // Kill the shim process (its sh host and itself).
    let pid = a.pid.unwrap();
    let kids =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for k in kids.split_whitespace() {
        oxtail_tests::harness::kill_pid(k.parse().unwrap(), libc::SIGKILL);
    }
    let _ = waiting.await;
    let s = ox
        .wait_stat("asks_in_flight", 0, Duration::from_secs(5))
        .unwrap();
    assert_eq!(s["pending_asks"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obligation_lifecycle_and_double_close() {
    let ox = Instance::new(BIN);
    let (a, b) = pair(&ox).await;
    let repo = ox.workdir("proj");
    let c = ox
        .agent(AgentOpts::claude(&repo, "bystander"))
        .await
        .unwrap();
    c.ok("set_my_state", json!({"purpose": "watching"}))
        .await
        .unwrap();

    let t1 = a
        .ok(
            "send_message",
            json!({"target": "b", "body": "migrate the loader", "action_required": true}),
        )
        .await
        .unwrap();
    let t2 = a
        .ok(
            "send_message",
            json!({"target": "b", "body": "fix the flaky test", "action_required": true}),
        )
        .await
        .unwrap();
    let plain = a
        .ok("send_message", json!({"target": "b", "body": "fyi"}))
        .await
        .unwrap();
    // A delegation defaults to wake auto (b has no activity mark and no pane).
    assert_ne!(t1["wake_status"], "disabled");
    // A plain send to a peer without hooks wakes it too (CONTRACT §8 (4)).
    assert_eq!(plain["wake_reason"], "hookless_default");

    let inbox = b.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(inbox["open_work_count"], 2);
    let work = b.ok("my_open_work", json!({})).await.unwrap();
    let ids: Vec<&Value> = work["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["message_id"])
        .collect();
    assert_eq!(
        ids,
        vec![&t1["message_id"], &t2["message_id"]],
        "oldest first"
    );
    assert_eq!(work["open"][0]["body"], "migrate the loader");
    let row = a.ok("list_project_sessions", json!({})).await.unwrap()["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "b")
        .unwrap()
        .clone();
    assert_eq!(row["open_obligations"], 2);

    // Only the owner may close; a plain message is not an obligation.
    let r = c
        .call(
            "complete_work",
            json!({"message_id": t1["message_id"], "body": "x"}),
        )
        .await
        .unwrap();
    // Another agent's obligation is as unknown to the caller as a typo.
    assert_eq!(r["error"], "message-not-found");
    let r = b
        .call(
            "complete_work",
            json!({"message_id": plain["message_id"], "body": "x"}),
        )
        .await
        .unwrap();
    assert_eq!(r["error"], "not-an-obligation");
    let r = b
        .call(
            "complete_work",
            json!({"message_id": "msg_unknown", "body": "x"}),
        )
        .await
        .unwrap();
    assert_eq!(r["error"], "message-not-found");

    let done = b
        .ok(
            "complete_work",
            json!({"message_id": t1["message_id"], "body": "loader migrated"}),
        )
        .await
        .unwrap();
    assert_eq!(done["obligation_state"], "done");
    let blocked = b
        .ok(
            "block_work",
            json!({"message_id": t2["message_id"], "reason": "needs CI access"}),
        )
        .await
        .unwrap();
    assert_eq!(blocked["obligation_state"], "blocked");
    let outcomes = a.ok("read_my_messages", json!({})).await.unwrap();
    let m = outcomes["messages"].as_array().unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0]["body"], "loader migrated");
    assert_eq!(m[0]["outcome"], "done");
    // The delegation stamped a request_id; the completion carries it.
    assert_eq!(m[0]["reply_to"], t1["request_id"]);
    assert_eq!(m[0]["source_message_id"], t1["message_id"]);
    assert_eq!(m[1]["outcome"], "blocked");

    // A second close: already_closed, and nobody is notified.
    let again = b
        .call(
            "complete_work",
            json!({"message_id": t1["message_id"], "body": "again"}),
        )
        .await
        .unwrap();
    assert_eq!(again["ok"], true);
    assert_eq!(again["already_closed"], true);
    assert_eq!(again["obligation_state"], "done");
    assert_eq!(
        a.ok("read_my_messages", json!({})).await.unwrap()["count"],
        0
    );
    assert_eq!(b.ok("my_open_work", json!({})).await.unwrap()["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_obligations_survive_ledger_pruning() {
    let ox = Instance::with_env(BIN, &[("OXTAIL_RECEIVED_MAX", "3")]);
    let (a, b) = pair(&ox).await;
    let task = a
        .ok(
            "send_message",
            json!({"target": "b", "body": "the task", "action_required": true}),
        )
        .await
        .unwrap();
    for i in 0..6 {
        let sent = a
            .ok(
                "send_message",
                json!({"target": "b", "body": format!("noise {i}")}),
            )
            .await
            .unwrap();
        b.ok("read_my_messages", json!({})).await.unwrap();
        // Only mail the agent confirmed having can leave the ledger.
        a.delivered(&sent["message_id"]).await.unwrap();
    }
    // One more send runs the eviction after the last confirmation.
    let last = a
        .ok("send_message", json!({"target": "b", "body": "noise 6"}))
        .await
        .unwrap();
    b.ok("read_my_messages", json!({})).await.unwrap();
    a.delivered(&last["message_id"]).await.unwrap();
    let d = ox.ctl(&["dump"]).unwrap();
    let ledger: Vec<&str> = d["state"]["ledgers"]["helper"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(ledger.len() <= 4, "{ledger:?}");
    assert!(
        ledger.contains(&task["message_id"].as_str().unwrap()),
        "open obligation kept: {ledger:?}"
    );
    assert!(ledger.contains(&last["message_id"].as_str().unwrap()));
    // Pruned ids fail closed; the obligation can still be closed.
    let r = b
        .ok(
            "complete_work",
            json!({"message_id": task["message_id"], "body": "done"}),
        )
        .await
        .unwrap();
    assert_eq!(r["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ask_input() {
    // A low ceiling keeps the clamped wait short.
    let ox = Instance::with_env(BIN, &[("OXTAIL_ASK_PEER_MAX_TIMEOUT_MS", "200")]);
    let (a, _b) = pair(&ox).await;
    for bad in [json!(0), json!(-5), json!("soon"), json!(1.5), json!(true)] {
        let e = a
            .schema_error(
                "ask_peer",
                json!({"target": "b", "body": "x", "timeout_ms": bad}),
            )
            .await
            .expect("bad timeout");
        assert!(e.contains("`timeout_ms`"), "{e}");
    }
    let v = a
        .ok(
            "ask_peer",
            json!({"target": "b", "body": "x", "timeout_ms": 250000}),
        )
        .await
        .unwrap();
    assert_eq!(v["timeout_clamped_from_ms"], 250000);
    assert_eq!(v["timeout_ms"], 200);
    assert_eq!(v["timed_out"], true);
    let r = a
        .call("ask_peer", json!({"target": "a", "body": "me?"}))
        .await
        .unwrap();
    assert_eq!(r["error"], "self-send");
    let r = a
        .call("ask_peer", json!({"target": "ghost", "body": "?"}))
        .await
        .unwrap();
    assert_eq!(r["error"], "target-not-found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wake_status_branch() {
    // The gate's time windows are unit-tested on an injected clock
    // (`wake::tests::time_windows_on_an_injected_clock`); here each status
    // is reached through real shims without waiting a window out: the
    // debounce is a minute, so a second attempt on a target is debounced
    // whatever the machine's speed, and each later branch uses a target
    // with no attempt yet. The rate limit, which needs an attempt past the
    // debounce, is `a_fired_wake_rate_limits_the_next`.
    let ox = Instance::with_env(
        BIN,
        &[
            ("OXTAIL_WAKE_DEBOUNCE_MS", "60000"),
            ("OXTAIL_AUTOWAKE_MIN_INTERVAL_MS", "60000"),
        ],
    );
    let (a, b) = pair(&ox).await;
    let c = ox
        .agent(AgentOpts::claude(&ox.workdir("proj"), "helper2"))
        .await
        .unwrap();
    c.ok(
        "set_my_state",
        json!({"purpose": "helping too", "name": "c"}),
    )
    .await
    .unwrap();
    let status = |v: &Value| v["wake_status"].as_str().unwrap().to_string();

    // wake off: no wake, so no status (`disabled` is the kill switches').
    let v = a
        .ok(
            "send_message",
            json!({"target": "b", "body": "1", "wake": "off"}),
        )
        .await
        .unwrap();
    assert!(v.get("wake_status").is_none(), "{v}");
    // skipped_busy: b is mid-turn.
    ox.mark("helper", "busy").unwrap();
    let v = a
        .ok(
            "send_message",
            json!({"target": "b", "body": "2", "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(status(&v), "skipped_busy");
    // CONTRACT §15: the only outlook is stranded_until_read, for plain sends.
    assert!(v.get("delivery_outlook").is_none(), "{v}");
    // skipped_no_target: idle, but no rewake hook armed and no tmux pane.
    ox.mark("helper", "idle").unwrap();
    let v = a
        .ok(
            "send_message",
            json!({"target": "b", "body": "3", "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(status(&v), "skipped_no_target");
    assert!(v.get("delivery_outlook").is_none(), "{v}");
    // skipped_debounced: again within the debounce window.
    let v = a
        .ok(
            "send_message",
            json!({"target": "b", "body": "4", "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(status(&v), "skipped_debounced");
    // fired: with the rewake hook armed, the mail goes straight to it.
    ox.mark("helper2", "idle").unwrap();
    a.ok("send_message", json!({"target": "c", "body": "5"}))
        .await
        .unwrap();
    let w = arm_idle_wait(&ox, "helper2", 20_000);
    wait_idle_waiters(&ox, 1);
    let v = a
        .ok(
            "send_message",
            json!({"target": "c", "body": "6", "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(status(&v), "fired");
    assert!(v.get("delivery_outlook").is_none(), "{v}");
    match w.join().unwrap() {
        IdleWaitAnswer::Mail {
            deliver, delivered, ..
        } => {
            assert_eq!(delivered, 2, "every queued message fits the budget");
            assert!(deliver.contains("[peer] 6"));
        }
        other => panic!("{other:?}"),
    }

    // The strict reply rule: a reply wakes its requester only if it went
    // idle recently; with no activity mark at all it does not.
    let q = a
        .ok("send_message", json!({"target": "b", "body": "question"}))
        .await
        .unwrap();
    let v = b
        .ok(
            "reply_to_message",
            json!({"message_id": q["message_id"], "body": "r1"}),
        )
        .await
        .unwrap();
    assert_eq!(v["wake_reason"], "reply_to_default");
    assert_eq!(status(&v), "skipped_no_fresh_idle");
    // Freshly idle with the hook armed: fired, once per (session, reply_to).
    ox.mark("asker", "idle").unwrap();
    let wa = arm_idle_wait(&ox, "asker", 20_000);
    wait_idle_waiters(&ox, 1);
    let v = b
        .ok(
            "reply_to_message",
            json!({"message_id": q["message_id"], "body": "r2"}),
        )
        .await
        .unwrap();
    assert_eq!(status(&v), "fired");
    assert!(matches!(wa.join().unwrap(), IdleWaitAnswer::Mail { .. }));
    // The dedupe gate comes before the debounce: no window to wait out.
    let v = b
        .ok(
            "reply_to_message",
            json!({"message_id": q["message_id"], "body": "r3"}),
        )
        .await
        .unwrap();
    assert_eq!(status(&v), "skipped_deduped");

    // `oxtail diagnose` summarizes them all.
    let out = ox.command().args(["diagnose", "--json"]).output().unwrap();
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    // (`disabled` comes from the kill switches: kill_switches_disable_wakes.)
    for s in [
        "skipped_busy",
        "skipped_no_target",
        "skipped_debounced",
        "fired",
        "skipped_no_fresh_idle",
        "skipped_deduped",
    ] {
        assert!(
            d["wakes_by_status"][s].as_u64().unwrap_or(0) >= 1,
            "{s} missing in {d}"
        );
    }
    assert!(d["wakes_by_tool"]["send_message"].is_object());
    assert!(d["wakes_by_tool"]["reply_to_message"].is_object());
}

/// skipped_rate_limited: a fired wake starts the target's minimum interval;
/// the next attempt (the debounce is 1 ms, the least the variable takes,
/// and arming a hook in between takes longer) is refused, and the armed
/// rewake hook gets no mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fired_wake_rate_limits_the_next() {
    let ox = Instance::with_env(
        BIN,
        &[
            ("OXTAIL_WAKE_DEBOUNCE_MS", "1"),
            ("OXTAIL_AUTOWAKE_MIN_INTERVAL_MS", "60000"),
        ],
    );
    let (a, _b) = pair(&ox).await;
    ox.mark("helper", "idle").unwrap();
    let send = |body: &'static str| {
        let a = a.clone();
        async move {
            a.ok(
                "send_message",
                json!({"target": "b", "body": body, "wake": "auto"}),
            )
            .await
            .unwrap()
        }
    };
    let w = arm_idle_wait(&ox, "helper", 20_000);
    wait_idle_waiters(&ox, 1);
    assert_eq!(send("1").await["wake_status"], "fired");
    assert!(matches!(w.join().unwrap(), IdleWaitAnswer::Mail { .. }));
    let w2 = arm_idle_wait(&ox, "helper", 300);
    wait_idle_waiters(&ox, 1);
    assert_eq!(send("2").await["wake_status"], "skipped_rate_limited");
    assert_eq!(w2.join().unwrap(), IdleWaitAnswer::Timeout);
    let out = ox.command().args(["diagnose", "--json"]).output().unwrap();
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["wakes_by_status"]["skipped_rate_limited"], 1, "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switches_disable_wakes() {
    let ox = Instance::with_env(BIN, &[("OXTAIL_ASK_PEER_WAKE_STRATEGY", "off")]);
    let (a, _b) = pair(&ox).await;
    ox.mark("helper", "idle").unwrap();
    let v = a
        .ok(
            "send_message",
            json!({"target": "b", "body": "x", "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(v["wake_status"], "disabled");
    let ox2 = Instance::with_env(
        BIN,
        &[
            ("OXTAIL_AUTOWAKE", "off"),
            ("OXTAIL_ACTIVITY_BUSY_TTL_MS", "banana"),
        ],
    );
    let (a2, b2) = pair(&ox2).await;
    let q = a2
        .ok("send_message", json!({"target": "b", "body": "q"}))
        .await
        .unwrap();
    b2.ok("read_my_messages", json!({})).await.unwrap();
    ox2.mark("asker", "idle").unwrap();
    let v = b2
        .ok(
            "reply_to_message",
            json!({"message_id": q["message_id"], "body": "r"}),
        )
        .await
        .unwrap();
    assert_eq!(v["wake_status"], "disabled");
    // The invalid TTL fell back to the default with a warning in the log.
    let log = std::fs::read_to_string(ox2.home().join("daemon.log")).unwrap();
    assert!(
        log.contains("OXTAIL_ACTIVITY_BUSY_TTL_MS") && log.contains("banana"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_file_records_identity_and_wakes() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.ndjson");
    let ox = Instance::with_env(BIN, &[("MCP_TRACE_FILE", trace.to_str().unwrap())]);
    let (a, _b) = pair(&ox).await;
    ox.mark("helper", "busy").unwrap();
    a.ok(
        "send_message",
        json!({"target": "b", "body": "x", "wake": "auto"}),
    )
    .await
    .unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events.iter().any(|e| e["event"] == "identity"
            && e["strategy"] == "env:CLAUDE_CODE_SESSION_ID"
            && e["session_id"] == "asker"),
        "{text}"
    );
    let wake = events
        .iter()
        .find(|e| e["event"] == "wake")
        .expect("a wake event");
    assert_eq!(wake["wake_status"], "skipped_busy");
    assert_eq!(wake["target"], "helper");
    assert_eq!(wake["tool"], "send_message");
    assert!(wake["at_ms"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_ask_sends_progress_when_the_call_asked_for_it() {
    let ox = Instance::with_env(BIN, &[("OXTAIL_ASK_PROGRESS_MS", "100")]);
    let (a, _b) = pair(&ox).await;
    // Claude Code 2.1.329 sends `_meta.progressToken` with every tools/call.
    let v = a
        .call_with_meta(
            "ask_peer",
            json!({"target": "b", "body": "slow", "timeout_ms": 1000}),
            json!({"progressToken": 7}),
        )
        .await
        .unwrap();
    assert_eq!(v["timed_out"], true);
    let got = a.progress_messages();
    assert!(got.len() >= 3, "progress while waiting: {got:?}");
    assert!(got[0].contains("waiting for b"), "{got:?}");
    // They stop when the ask returns: none in the next two and a half
    // periods (a negative check, so a bounded wait).
    let after = a.progress_messages().len();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(a.progress_messages().len(), after);
}
