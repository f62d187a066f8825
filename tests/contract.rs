//! The oxtail 0.32 tool contract (`CONTRACT.md`, issue 13), checked through
//! real shims against a real daemon: every tool oxtail keeps the contract
//! for, its success shape and each error code, by the contract's field
//! names, so a renamed or doubled field fails here.
//!
//! Sections are cited as `§N`. The deviations of CONTRACT §16 ("Not kept")
//! are not tested for their 0.32.1 behaviour. `read_session` (§6) against
//! real transcripts is `tests/contract_read_session.rs`; close outcomes no
//! real process can reach (`requester-unreachable`, `already_delivered`)
//! are in `daemon/tests/catalog.rs`.

use oxtail_tests::harness::{Agent, AgentOpts, Instance};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// §0 Encoding: one text item of minified JSON, equal to the structured
/// content, with `schema_version: 1` at top level (`ok:false` too).
async fn call(agent: &Agent, tool: &str, args: Value) -> Value {
    let r = agent
        .call_raw(tool, args.clone())
        .await
        .unwrap_or_else(|e| panic!("{tool}({args}): {e}"));
    let structured = r.structured_content.clone().expect("structured content");
    assert_eq!(r.content.len(), 1, "{tool}: one content item");
    let text = r.content[0]
        .as_text()
        .map(|t| t.text.clone())
        .expect("a text item");
    assert!(!text.contains("\n"), "{tool}: minified JSON");
    let parsed: Value = serde_json::from_str(&text).expect("text is JSON");
    assert_eq!(parsed, structured, "{tool}: text and structured agree");
    assert_eq!(
        parsed["schema_version"], 1,
        "{tool}: schema_version: {parsed}"
    );
    parsed
}

/// A success: `ok: true`, except for the tools whose results have no `ok`
/// (§1 list_project_sessions, §3 get_my_session, §6 read_session).
async fn ok(agent: &Agent, tool: &str, args: Value) -> Value {
    let v = call(agent, tool, args.clone()).await;
    if ["list_project_sessions", "get_my_session", "read_session"].contains(&tool) {
        lacks(&v, &["ok"]);
        assert_eq!(v["error"], Value::Null, "{tool}({args}): {v}");
    } else {
        assert_eq!(v["ok"], true, "{tool}({args}): {v}");
    }
    v
}

/// An `ok:false` result with error `code`; `with_message` says whether the
/// contract gives that code a `message`.
async fn err(agent: &Agent, tool: &str, args: Value, code: &str, with_message: bool) -> Value {
    let v = call(agent, tool, args.clone()).await;
    assert_eq!(v["ok"], false, "{tool}({args}): {v}");
    assert_eq!(v["error"], code, "{tool}({args}): {v}");
    assert_eq!(v["message"].is_string(), with_message, "message: {v}");
    v
}

/// §0 A schema violation: an `isError` result whose text is the SDK's
/// `MCP error -32602: Input validation error: Invalid arguments for tool
/// <t>: …` naming the field.
async fn schema_error(agent: &Agent, tool: &str, args: Value, field: &str) {
    let text = agent
        .schema_error(tool, args.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let prefix =
        format!("MCP error -32602: Input validation error: Invalid arguments for tool {tool}: ");
    assert!(text.starts_with(&prefix), "{tool}({args}): {text}");
    assert!(
        text.contains(&format!("`{field}`")),
        "{tool}({args}): {text}"
    );
}

fn has(v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(*k).is_some(), "missing `{k}` in {v}");
    }
}

fn lacks(v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(*k).is_none(), "unexpected `{k}` in {v}");
    }
}

/// Two registered agents in one repository: alice (`sess-a`) and bob
/// (`sess-b`), each with extra environment.
async fn pair(ox: &Instance, env_a: &[(&str, &str)], env_b: &[(&str, &str)]) -> (Agent, Agent) {
    let repo = ox.git_repo("proj");
    let mut oa = AgentOpts::claude(&repo, "sess-a");
    oa.env
        .extend(env_a.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut ob = AgentOpts::claude(&repo, "sess-b");
    ob.env
        .extend(env_b.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let a = ox.agent(oa).await.unwrap();
    let b = ox.agent(ob).await.unwrap();
    ok(
        &a,
        "set_my_state",
        json!({"purpose": "parser", "name": "alice"}),
    )
    .await;
    ok(
        &b,
        "set_my_state",
        json!({"purpose": "review", "name": "bob"}),
    )
    .await;
    (a, b)
}

/// Reads until at least one message is there (a wait on state: each read
/// is a real call; mail arrives between calls).
async fn read_some(agent: &Agent) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = ok(agent, "read_my_messages", json!({})).await;
        if v["count"].as_u64().unwrap_or(0) > 0 {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "no mail: {v}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// §0 envelope of `m`: the contract's names, seconds, no doubled facts.
fn envelope(m: &Value, from: &str, body: &str) {
    assert_eq!(m["schema_version"], 1, "{m}");
    assert!(m["id"].is_string(), "{m}");
    assert_eq!(m["from_session_id"], from, "{m}");
    assert_eq!(m["body"], body, "{m}");
    assert_eq!(m["body_bytes"], body.len(), "{m}");
    assert_eq!(m["origin"], "peer", "{m}");
    let at = m["enqueued_at"].as_u64().expect("enqueued_at integer");
    assert!(at.abs_diff(now_s()) < 60, "enqueued_at in seconds: {m}");
    // oxtail's names for the same facts are gone.
    lacks(m, &["message_id", "from", "enqueued_at_ms"]);
    // action_required is only ever `true`.
    assert!(m.get("action_required").is_none() || m["action_required"] == true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_card_touch_and_limits() {
    let ox = Instance::new(BIN);
    let (a, _b) = pair(&ox, &[], &[]).await;
    // §2: {ok, state:{purpose, updated_at}}.
    let v = ok(&a, "set_my_state", json!({"purpose": "parsing"})).await;
    assert_eq!(v["state"]["purpose"], "parsing");
    let t1 = v["state"]["updated_at"].as_u64().expect("updated_at");
    assert!(t1.abs_diff(now_s()) < 60, "seconds: {v}");
    // No fields: a touch that keeps the purpose.
    let v = ok(&a, "set_my_state", json!({})).await;
    assert_eq!(v["state"]["purpose"], "parsing");
    assert!(v["state"]["updated_at"].as_u64().unwrap() >= t1);
    // Longer than 200 characters: a schema error naming the field.
    schema_error(
        &a,
        "set_my_state",
        json!({"purpose": "x".repeat(201)}),
        "purpose",
    )
    .await;
    // §0: unknown tool: isError, "… Tool <t> not found".
    let text = a.schema_error("no_such_tool", json!({})).await.unwrap();
    assert_eq!(text, "MCP error -32602: Tool no_such_tool not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_read_reply_status() {
    let ox = Instance::new(BIN);
    let (a, b) = pair(&ox, &[], &[]).await;

    // §8 self-send: refused, no `message`.
    let v = err(
        &a,
        "send_message",
        json!({"target": "sess-a", "body": "me"}),
        "self-send",
        false,
    )
    .await;
    lacks(&v, &["message_id"]);
    // §0 bodies: 1 char to 8192 bytes (§16.9: body-too-large beyond).
    schema_error(
        &a,
        "send_message",
        json!({"target": "sess-b", "body": ""}),
        "body",
    )
    .await;
    let big = "é".repeat(4097); // 8194 bytes, 4097 characters
    let v = err(
        &a,
        "send_message",
        json!({"target": "sess-b", "body": big}),
        "body-too-large",
        true,
    )
    .await;
    assert_eq!(v["limit_bytes"], 8192);
    assert_eq!(v["size_bytes"], 8194);

    // §8 success; bob has no activity marker: hookless → lenient wake.
    let s1 = ok(
        &a,
        "send_message",
        json!({"target": "sess-b", "body": "hello bob", "source_message_id": "ext-42"}),
    )
    .await;
    has(
        &s1,
        &["message_id", "target_session_id", "target_server_pid"],
    );
    assert_eq!(s1["target_session_id"], "sess-b");
    assert!(s1["target_server_pid"].is_u64(), "{s1}");
    assert_eq!(s1["wake_reason"], "hookless_default");
    assert!(s1["wake_status"].is_string());
    lacks(
        &s1,
        &[
            "delivery_outlook",
            "target",
            "action_required",
            "obligation_durable",
            "message",
        ],
    );

    // §8 wake (4): a claimed idle target: no wake, stranded_until_read + hint.
    ox.mark("sess-b", "idle").unwrap();
    let s2 = ok(
        &a,
        "send_message",
        json!({"target": "bob", "body": "second"}),
    )
    .await;
    assert_eq!(s2["delivery_outlook"], "stranded_until_read");
    assert!(s2["hint"].is_string());
    lacks(&s2, &["wake_status", "wake_reason"]);
    // (5) wake:"off": no wake, no outlook.
    let s3 = ok(
        &a,
        "send_message",
        json!({"target": "bob", "body": "third", "wake": "off"}),
    )
    .await;
    lacks(&s3, &["wake_status", "delivery_outlook"]);
    // A busy target (fresh marker): neither wake nor outlook.
    ox.mark("sess-b", "busy").unwrap();
    let s4 = ok(
        &a,
        "send_message",
        json!({"target": "bob", "body": "fourth"}),
    )
    .await;
    lacks(&s4, &["wake_status", "delivery_outlook"]);

    // §7 pending.
    let st = ok(
        &a,
        "message_status",
        json!({"message_id": s1["message_id"]}),
    )
    .await;
    assert_eq!(st["status"], "pending");
    assert_eq!(st["message_id"], s1["message_id"]);
    assert_eq!(st["target_session_id"], "sess-b");
    assert!(st["enqueued_at"].as_u64().unwrap().abs_diff(now_s()) < 60);
    has(&st, &["target_server_pid"]);
    // unknown: note.
    let st = ok(
        &a,
        "message_status",
        json!({"message_id": "0123456789abcdef"}),
    )
    .await;
    assert_eq!(st["status"], "unknown");
    assert!(st["note"].is_string());

    // §9 read: oldest first, envelope.
    let r = ok(&b, "read_my_messages", json!({})).await;
    assert_eq!(r["drained"], true);
    assert_eq!(r["count"], 4);
    lacks(&r, &["open_work_count", "open_work_hint"]);
    let msgs = r["messages"].as_array().unwrap();
    envelope(&msgs[0], "sess-a", "hello bob");
    assert_eq!(msgs[0]["id"], s1["message_id"]);
    assert_eq!(msgs[0]["source_message_id"], "ext-42");
    assert_eq!(msgs[0]["from_name"], "alice");
    lacks(&msgs[0], &["request_id", "reply_to", "action_required"]);
    let bodies: Vec<&str> = msgs.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["hello bob", "second", "third", "fourth"]);
    // §9: a second read finds nothing (destructive drain).
    let again = ok(&b, "read_my_messages", json!({})).await;
    assert_eq!(again["count"], 0);

    // §7 delivered.
    let st = a.delivered(&s1["message_id"]).await.unwrap();
    assert_eq!(st["schema_version"], 1);
    assert_eq!(st["via"], "read_my_messages");
    assert_eq!(st["recipient_session_id"], "sess-b");
    assert!(st["delivered_at"].as_u64().unwrap().abs_diff(now_s()) < 60);
    lacks(&st, &["delivered_at_ms", "to"]);

    // §10 reply: uncorrelated (the inbound had no request_id).
    let rep = ok(
        &b,
        "reply_to_message",
        json!({"message_id": s1["message_id"], "body": "hi alice"}),
    )
    .await;
    has(&rep, &["message_id", "target_server_pid"]);
    assert_eq!(rep["in_reply_to_message_id"], s1["message_id"]);
    assert_eq!(rep["target_session_id"], "sess-a");
    assert_eq!(rep["correlation"], "uncorrelated");
    lacks(&rep, &["source_message_id", "target"]);
    let r = read_some(&a).await;
    let m = &r["messages"][0];
    envelope(m, "sess-b", "hi alice");
    assert_eq!(m["source_message_id"], s1["message_id"]);
    // §10 errors: message-not-found (never received: a's own send).
    err(
        &a,
        "reply_to_message",
        json!({"message_id": s1["message_id"], "body": "x"}),
        "message-not-found",
        true,
    )
    .await;
    // §13 message-not-found (not an obligation anyone knows).
    err(
        &b,
        "complete_work",
        json!({"message_id": "msg_nope", "body": "x"}),
        "message-not-found",
        true,
    )
    .await;
    // §13 not-an-obligation: a received plain message.
    err(
        &b,
        "complete_work",
        json!({"message_id": s1["message_id"], "body": "x"}),
        "not-an-obligation",
        true,
    )
    .await;
}

/// §11: "After a 500 ms grace, an answer already there → `skipped_busy`, no
/// keys; else [the] wake". The grace is widened here
/// (`OXTAIL_ASK_WAKE_GRACE_MS`, a daemon setting) so the answer surely
/// comes within it on a loaded machine; the default is the contract's
/// 500 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_answered_within_the_grace_wakes_nobody() {
    let ox = Instance::with_env(BIN, &[("OXTAIL_ASK_WAKE_GRACE_MS", "3000")]);
    let (a, b) = pair(&ox, &[], &[]).await;
    let asker = tokio::spawn(async move {
        let v = ok(
            &b,
            "ask_peer",
            json!({"target": "alice", "body": "quick one?", "timeout_ms": 20000}),
        )
        .await;
        (b, v)
    });
    let mut ask = Value::Null;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ask.is_null() {
        let r = ok(&a, "read_my_messages", json!({})).await;
        ask = r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["body"] == "quick one?")
            .cloned()
            .unwrap_or(Value::Null);
        assert!(std::time::Instant::now() < deadline, "ask never arrived");
    }
    ok(
        &a,
        "reply_to_message",
        json!({"message_id": ask["id"], "body": "yes"}),
    )
    .await;
    let (b, v) = asker.await.unwrap();
    assert_eq!(v["correlation"], "correlated", "{v}");
    assert_eq!(
        v["wake_status"], "skipped_busy",
        "answered within the grace: {v}"
    );

    // Unanswered past the grace: the wake runs (alice has no pane and no
    // armed hook, so it finds no target) and says so.
    let v = ok(
        &b,
        "ask_peer",
        json!({"target": "alice", "body": "slow one?", "timeout_ms": 3500}),
    )
    .await;
    assert_eq!(v["timed_out"], true, "{v}");
    assert_eq!(v["wake_status"], "skipped_no_target", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_peer_contract_and_agent_settings() {
    let ox = Instance::new(BIN);
    // The ceiling is alice's own setting, passed by her shim; bob's
    // environment (and the daemon's) does not have it.
    let (a, b) = pair(&ox, &[("OXTAIL_ASK_PEER_MAX_TIMEOUT_MS", "300")], &[]).await;

    // §11 timeout_ms: integer, 0 < n <= 300000, else a schema error.
    for bad in [json!(0), json!(-1), json!(300001), json!("500"), json!(1.5)] {
        schema_error(
            &a,
            "ask_peer",
            json!({"target": "bob", "body": "q", "timeout_ms": bad}),
            "timeout_ms",
        )
        .await;
    }
    // §11 self: send_message's code.
    err(
        &a,
        "ask_peer",
        json!({"target": "sess-a", "body": "q"}),
        "self-send",
        false,
    )
    .await;

    // Clamped by alice's ceiling: timed out, reply null, correlation none.
    let started = std::time::Instant::now();
    let v = ok(
        &a,
        "ask_peer",
        json!({"target": "bob", "body": "q1", "timeout_ms": 5000}),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(4000),
        "clamped wait"
    );
    has(&v, &["message_id", "request_id", "wake_status", "reply"]);
    assert_eq!(v["timed_out"], true);
    assert_eq!(v["reply"], Value::Null);
    assert_eq!(v["correlation"], "none");
    assert_eq!(v["timeout_ms"], 300);
    assert_eq!(v["timeout_clamped_from_ms"], 5000);
    lacks(&v, &["status"]);

    // Bob's ask under the schema limit is not clamped by alice's setting.
    let v = ok(
        &b,
        "ask_peer",
        json!({"target": "alice", "body": "q2", "timeout_ms": 400}),
    )
    .await;
    assert_eq!(v["timed_out"], true);
    assert_eq!(v["timeout_ms"], 400);
    lacks(&v, &["timeout_clamped_from_ms"]);

    // Answered: correlated, reply in the contract's shape.
    let asker = tokio::spawn(async move {
        let v = ok(
            &b,
            "ask_peer",
            json!({"target": "alice", "body": "what is 2+2?", "timeout_ms": 20000}),
        )
        .await;
        (b, v)
    });
    // Alice drains until the new ask is there (q2's ask came first).
    let mut ask = Value::Null;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ask.is_null() {
        let r = ok(&a, "read_my_messages", json!({})).await;
        for m in r["messages"].as_array().unwrap() {
            if m["body"] == "what is 2+2?" {
                ask = m.clone();
            }
        }
        assert!(std::time::Instant::now() < deadline, "ask never arrived");
    }
    envelope(&ask, "sess-b", "what is 2+2?");
    assert_eq!(ask["action_required"], true);
    let request_id = ask["request_id"].as_str().unwrap().to_string();
    ok(
        &a,
        "reply_to_message",
        json!({"message_id": ask["id"], "body": "4"}),
    )
    .await;
    let (_b, v) = asker.await.unwrap();
    assert_eq!(v["timed_out"], false);
    assert_eq!(v["correlation"], "correlated");
    assert_eq!(v["request_id"], request_id.as_str());
    let reply = &v["reply"];
    assert_eq!(reply["body"], "4");
    assert_eq!(reply["from_session_id"], "sess-a");
    assert_eq!(reply["reply_to"], request_id.as_str());
    assert_eq!(reply["correlation"], "correlated");
    assert!(reply["id"].is_string());
    assert!(reply["enqueued_at"].as_u64().unwrap().abs_diff(now_s()) < 60);
    lacks(reply, &["message_id", "from", "enqueued_at_ms"]);
    lacks(&v, &["status", "timeout_clamped_from_ms"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_work_complete_block() {
    let ox = Instance::new(BIN);
    let (a, b) = pair(&ox, &[], &[]).await;
    // §8 delegation: action_required + obligation_durable, a request_id.
    let d1 = ok(
        &a,
        "send_message",
        json!({"target": "bob", "body": "fix the lexer", "action_required": true}),
    )
    .await;
    assert_eq!(d1["action_required"], true);
    assert_eq!(d1["obligation_durable"], true);
    assert!(d1["request_id"].is_string(), "{d1}");
    let d2 = ok(
        &a,
        "send_message",
        json!({"target": "bob", "body": "and the parser", "action_required": true}),
    )
    .await;

    // §9 open_work_count + hint when > 0.
    let r = ok(&b, "read_my_messages", json!({})).await;
    assert_eq!(r["open_work_count"], 2);
    assert!(r["open_work_hint"].is_string());

    // §12.
    let w = ok(&b, "my_open_work", json!({})).await;
    assert_eq!(w["count"], 2);
    lacks(&w, &["open_work"]);
    let item = &w["open"][0];
    assert_eq!(item["message_id"], d1["message_id"]);
    assert_eq!(item["from_session_id"], "sess-a");
    assert_eq!(item["request_id"], d1["request_id"]);
    assert_eq!(item["body"], "fix the lexer");
    assert!(item["enqueued_at"].as_u64().unwrap().abs_diff(now_s()) < 60);
    assert!(item["age_seconds"].as_u64().unwrap() < 60);
    assert_eq!(item["state"], "open");
    assert!(item["required_action"].is_string());
    lacks(item, &["from", "created_at_ms", "age_ms"]);
    assert_eq!(w["open"][1]["message_id"], d2["message_id"]);

    // §13 complete: deterministic completion id, correlated.
    let id1 = d1["message_id"].as_str().unwrap();
    let want: String = Sha256::digest(format!("oxtail-complete:{id1}"))
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let c = ok(
        &b,
        "complete_work",
        json!({"message_id": id1, "body": "done"}),
    )
    .await;
    assert_eq!(c["message_id"], id1);
    assert_eq!(c["obligation_state"], "done");
    assert_eq!(c["completion_message_id"], want.as_str());
    assert_eq!(c["requester_session_id"], "sess-a");
    assert_eq!(c["correlation"], "correlated");
    lacks(&c, &["already_closed", "obligation", "outcome_message_id"]);
    // Double close: ok, first state, nothing sent (block after complete: done).
    for (tool, arg) in [("complete_work", "body"), ("block_work", "reason")] {
        let again = ok(&b, tool, json!({"message_id": id1, arg: "again"})).await;
        assert_eq!(again["already_closed"], true);
        assert_eq!(again["obligation_state"], "done");
        assert_eq!(again["message_id"], id1);
        assert!(again["note"].is_string());
    }
    // §14 block: "[blocked] " + reason.
    let bl = ok(
        &b,
        "block_work",
        json!({"message_id": d2["message_id"], "reason": "no spec"}),
    )
    .await;
    assert_eq!(bl["obligation_state"], "blocked");

    // The requester gets both outcomes, correlated, once each.
    let r = read_some(&a).await;
    let msgs = r["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{r}");
    envelope(&msgs[0], "sess-b", "done");
    assert_eq!(msgs[0]["id"], want.as_str());
    assert_eq!(msgs[0]["source_message_id"], id1);
    assert_eq!(msgs[0]["reply_to"], d1["request_id"]);
    assert_eq!(msgs[0]["outcome"], "done");
    envelope(&msgs[1], "sess-b", "[blocked] no spec");
    assert_eq!(msgs[1]["outcome"], "blocked");

    let w = ok(&b, "my_open_work", json!({})).await;
    assert_eq!(w["count"], 0);
    assert_eq!(w["open"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_entry_and_diagnosis() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    // §3 resolved from the environment.
    let v = ok(&a, "get_my_session", json!({})).await;
    let e = &v["entry"];
    assert!(e["server_pid"].is_u64(), "{v}");
    has(e, &["started_at", "tmux_pane", "tmux_session", "state"]);
    assert_eq!(e["client"]["type"], "claude-code");
    assert_eq!(e["client"]["session_id"], "sess-a");
    assert_eq!(e["client"]["session_id_source"], "env");
    assert!(e["client"]["transcript_path"]
        .as_str()
        .unwrap()
        .ends_with("/sess-a.jsonl"));
    assert!(e["client"]["cwd"].is_string());
    let d = &v["detect_diagnosis"];
    assert_eq!(d["per_strategy"], json!({}));
    assert_eq!(d["winning"]["session_id"], "sess-a");
    assert_eq!(d["winning"]["source"], "env");
    assert_eq!(d["winning"]["strategy"], "env");
    assert_eq!(d["winning"]["confidence"], "high");
    assert_eq!(d["next_step"], Value::Null);
    lacks(&v, &["identity", "next_step", "resolved"]);

    // §3 unresolved: per_strategy abstains, next_step names the tool.
    let u = ox
        .agent(AgentOpts {
            cwd: repo.clone(),
            env: vec![],
            client_name: "claude-code".into(),
        })
        .await
        .unwrap();
    let v = ok(&u, "get_my_session", json!({})).await;
    let d = &v["detect_diagnosis"];
    assert_eq!(d["winning"], Value::Null);
    for k in ["env", "hook-drop", "birth-time"] {
        assert!(d["per_strategy"][k].is_object(), "{k}: {d}");
    }
    assert_eq!(d["per_strategy"]["env"]["abstain"], true);
    assert_eq!(d["next_step"]["tool"], "register_my_session");
    assert_eq!(
        d["next_step"]["bash_command"],
        "echo $CLAUDE_CODE_SESSION_ID"
    );
    assert!(d["next_step"]["instruction"].is_string());
    assert_eq!(v["entry"]["client"]["session_id"], Value::Null);
    // §12 / §9: an unresolved caller gets no-session-id.
    err(&u, "my_open_work", json!({}), "no-session-id", true).await;

    // §4 claim, §5 register.
    let c = ok(&u, "claim_session", json!({"session_id": "sess-u"})).await;
    assert_eq!(c["session_id"], "sess-u");
    assert!(c["transcript_path"].is_string());
    lacks(&c, &["client_session_id"]);
    let r = ok(&u, "register_my_session", json!({"session_id": "sess-u"})).await;
    let e = &r["entry"];
    has(e, &["server_pid", "started_at", "tmux_session", "client"]);
    assert_eq!(e["client"]["session_id"], "sess-u");
    assert_eq!(e["client"]["session_id_source"], "self-register");
    let v = ok(&u, "get_my_session", json!({})).await;
    assert_eq!(v["entry"]["client"]["session_id_source"], "self-register");
    assert_eq!(v["detect_diagnosis"]["winning"]["confidence"], "high");
    schema_error(&u, "claim_session", json!({}), "session_id").await;

    // §3 unknown client type: all empty/null.
    let w = ox
        .agent(AgentOpts {
            cwd: repo.clone(),
            env: vec![],
            client_name: "some-editor".into(),
        })
        .await
        .unwrap();
    let v = ok(&w, "get_my_session", json!({})).await;
    assert_eq!(
        v["detect_diagnosis"],
        json!({"per_strategy": {}, "winning": null, "next_step": null}),
        "{v}"
    );
    assert_eq!(v["entry"]["client"]["session_id"], Value::Null);
    assert_eq!(v["entry"]["client"]["type"], "unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_rules_and_agent_wake_settings() {
    // Alice turned wakes off in her own environment; the daemon (and bob)
    // did not (CONTRACT §15 variables, per agent: issue 13).
    let ox = Instance::new(BIN);
    let (a, b) = pair(&ox, &[("OXTAIL_ASK_PEER_WAKE_STRATEGY", "off")], &[]).await;
    let v = ok(
        &a,
        "send_message",
        json!({"target": "bob", "body": "1", "wake": "auto"}),
    )
    .await;
    assert_eq!(v["wake_status"], "disabled", "{v}");
    let q = ok(
        &b,
        "send_message",
        json!({"target": "alice", "body": "2", "wake": "auto"}),
    )
    .await;
    assert!(q["wake_status"].is_string());
    assert_ne!(q["wake_status"], "disabled", "{q}");

    // §8 wake (2): a reply with wake unset takes the strict rule.
    read_some(&a).await;
    let r = ok(
        &a,
        "reply_to_message",
        json!({"message_id": q["message_id"], "body": "r"}),
    )
    .await;
    assert_eq!(r["wake_reason"], "reply_to_default", "{r}");

    // §8 wake (1) + §15: a late reply to a pending ask with wake "off" is
    // suppressed: its reason, no status.
    let ask = ok(
        &b,
        "ask_peer",
        json!({"target": "alice", "body": "q", "timeout_ms": 50}),
    )
    .await;
    assert_eq!(ask["timed_out"], true);
    let mut inbound = Value::Null;
    while inbound.is_null() {
        let got = read_some(&a).await;
        for m in got["messages"].as_array().unwrap() {
            if m["request_id"] == ask["request_id"] {
                inbound = m.clone();
            }
        }
    }
    let late = ok(
        &a,
        "reply_to_message",
        json!({"message_id": inbound["id"], "body": "late", "wake": "off"}),
    )
    .await;
    assert_eq!(
        late["wake_reason"], "late_reply_to_pending_suppressed",
        "{late}"
    );
    assert_eq!(late["correlation"], "correlated");
    lacks(&late, &["wake_status"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_budget_defers_whole_messages() {
    // §9: OXTAIL_READ_MAX_MESSAGES (daemon-wide); the rest stays queued.
    let ox = Instance::with_env(BIN, &[("OXTAIL_READ_MAX_MESSAGES", "2")]);
    let (a, b) = pair(&ox, &[], &[]).await;
    for i in 0..3 {
        ok(
            &a,
            "send_message",
            json!({"target": "bob", "body": format!("m{i}"), "wake": "off"}),
        )
        .await;
        ok(&a, "send_message", json!({"target": "bob", "body": format!("w{i}"), "wake": "off", "action_required": true})).await;
    }
    let r = ok(&b, "read_my_messages", json!({})).await;
    assert_eq!(r["count"], 2);
    assert_eq!(r["deferred_count"], 4);
    assert_eq!(r["budget_truncated"], true);
    // §12: my_open_work uses the same budget.
    let w = ok(&b, "my_open_work", json!({})).await;
    assert_eq!(w["count"], 2);
    assert_eq!(w["deferred_count"], 1);
    assert_eq!(w["budget_truncated"], true);
}

// ---- Targets and listing.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_not_found_codes() {
    let ox = Instance::new(BIN);
    let (a, _b) = pair(&ox, &[], &[]).await;
    // §8: no `message`; a wake was intended → skipped_no_target.
    let v = err(
        &a,
        "send_message",
        json!({"target": "nobody", "body": "x", "wake": "auto"}),
        "target-not-found",
        false,
    )
    .await;
    assert_eq!(v["wake_status"], "skipped_no_target");
    // A failed reply with wake unset adds wake_reason.
    let v = err(
        &a,
        "send_message",
        json!({"target": "nobody", "body": "x", "reply_to": "req_1"}),
        "target-not-found",
        false,
    )
    .await;
    assert_eq!(v["wake_reason"], "reply_to_default");
    // §11.
    let v = err(
        &a,
        "ask_peer",
        json!({"target": "nobody", "body": "x"}),
        "target-not-found",
        false,
    )
    .await;
    assert_eq!(v["wake_status"], "skipped_no_target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_project_sessions_rows() {
    let ox = Instance::new(BIN);
    let (a, _b) = pair(&ox, &[], &[]).await;
    let v = call(&a, "list_project_sessions", json!({})).await;
    has(&v, &["project_root", "inferred", "error", "sessions"]);
    for row in v["sessions"].as_array().unwrap() {
        has(
            row,
            &[
                "name",
                "path",
                "attached",
                "created_at",
                "windows",
                "client_type",
                "client_session_id",
                "state",
            ],
        );
    }
    let v = call(&a, "list_project_sessions", json!({"compact": true})).await;
    assert!(v["tmux_sessions"].is_array(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_project_sessions_root_inferred_and_compact() {
    let ox = Instance::new(BIN);
    let (a, _b) = pair(&ox, &[], &[]).await;
    let repo = ox.workdir("proj").canonicalize().unwrap();
    // §1: no `ok`; project_root inferred from the caller's cwd.
    let v = ok(&a, "list_project_sessions", json!({})).await;
    assert_eq!(v["project_root"], repo.to_str().unwrap());
    assert_eq!(v["inferred"], true);
    assert_eq!(v["error"], Value::Null, "no tmux is not an error here: {v}");
    // An empty argument counts as omitted; an explicit one is not inferred.
    let v = ok(&a, "list_project_sessions", json!({"project_root": ""})).await;
    assert_eq!(v["inferred"], true, "{v}");
    let v = ok(
        &a,
        "list_project_sessions",
        json!({"project_root": repo.to_str().unwrap()}),
    )
    .await;
    assert_eq!(v["inferred"], false, "{v}");
    assert_eq!(v["project_root"], repo.to_str().unwrap());
    // The real path of the argument: a directory inside, through a symlink.
    std::fs::create_dir_all(repo.join("src")).unwrap();
    let link = ox.workdir("links").join("src");
    std::os::unix::fs::symlink(repo.join("src"), &link).unwrap();
    let s = ok(
        &a,
        "list_project_sessions",
        json!({"project_root": link.to_str().unwrap()}),
    )
    .await;
    assert_eq!(s["project_root"], repo.join("src").to_str().unwrap(), "{s}");
    assert_eq!(s["inferred"], false);
    // Rows: the state card as {purpose, updated_at (s)}; client facts.
    let rows = v["sessions"].as_array().unwrap();
    let bob = rows
        .iter()
        .find(|r| r["client_session_id"] == "sess-b")
        .unwrap_or_else(|| panic!("bob listed: {v}"));
    assert_eq!(bob["client_type"], "claude-code");
    assert_eq!(bob["state"]["purpose"], "review");
    assert!(
        bob["state"]["updated_at"]
            .as_u64()
            .unwrap()
            .abs_diff(now_s())
            < 60
    );
    // Compact: sessions with their agents inside.
    let v = ok(&a, "list_project_sessions", json!({"compact": true})).await;
    lacks(&v, &["sessions"]);
    let agents: Vec<&Value> = v["tmux_sessions"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|s| {
            has(
                s,
                &[
                    "name",
                    "path",
                    "attached",
                    "created_at",
                    "windows",
                    "agents",
                ],
            )
        })
        .flat_map(|s| s["agents"].as_array().unwrap())
        .collect();
    let bob = agents
        .iter()
        .find(|g| g["client_session_id"] == "sess-b")
        .unwrap_or_else(|| panic!("bob in compact: {v}"));
    assert_eq!(bob["client_type"], "claude-code");
    assert_eq!(bob["state"]["purpose"], "review");
    // Another project is refused (§0 scope).
    let other = ox.git_repo("other");
    err(
        &a,
        "list_project_sessions",
        json!({"project_root": other.to_str().unwrap()}),
        "cross-project",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_claim_overrides_the_environment() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox
        .agent(AgentOpts::claude(&repo, "sess-env"))
        .await
        .unwrap();
    let v = ok(&a, "get_my_session", json!({})).await;
    assert_eq!(v["entry"]["client"]["session_id_source"], "env");
    // §4: an explicit claim wins over an id taken from the environment …
    let c = ok(&a, "claim_session", json!({"session_id": "sess-claimed"})).await;
    assert_eq!(c["session_id"], "sess-claimed");
    let v = ok(&a, "get_my_session", json!({})).await;
    assert_eq!(v["entry"]["client"]["session_id"], "sess-claimed");
    assert_eq!(v["entry"]["client"]["session_id_source"], "self-register");
    // … and detection never takes it back; a later claim does.
    let v = ok(&a, "get_my_session", json!({})).await;
    assert_eq!(v["entry"]["client"]["session_id"], "sess-claimed");
    ok(&a, "claim_session", json!({"session_id": "sess-again"})).await;
    let v = ok(&a, "get_my_session", json!({})).await;
    assert_eq!(v["entry"]["client"]["session_id"], "sess-again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_wake_and_correlation_defaults() {
    let ox = Instance::new(BIN);
    let (a, b) = pair(&ox, &[], &[]).await;
    // §8: a delegation with wake unset implies wake auto (bob is idle, so
    // a plain send would only say stranded_until_read).
    ox.mark("sess-b", "idle").unwrap();
    let d = ok(
        &a,
        "send_message",
        json!({"target": "bob", "body": "task", "action_required": true}),
    )
    .await;
    assert!(d["wake_status"].is_string(), "{d}");
    lacks(&d, &["delivery_outlook"]);
    assert!(d["request_id"].is_string());
    // With wake "off" there is no wake and no request_id.
    let d2 = ok(
        &a,
        "send_message",
        json!({"target": "bob", "body": "task 2", "action_required": true, "wake": "off"}),
    )
    .await;
    assert_eq!(d2["action_required"], true);
    lacks(&d2, &["request_id", "wake_status", "delivery_outlook"]);
    read_some(&b).await;
    // §13: wake defaults to auto on a close (alice has no marker: lenient).
    let c = ok(
        &b,
        "complete_work",
        json!({"message_id": d["message_id"], "body": "done"}),
    )
    .await;
    assert!(c["wake_status"].is_string(), "{c}");
    let c2 = ok(
        &b,
        "block_work",
        json!({"message_id": d2["message_id"], "reason": "no", "wake": "off"}),
    )
    .await;
    lacks(&c2, &["wake_status"]);
    assert_eq!(c2["correlation"], "uncorrelated", "no request_id: {c2}");
    // §0 bodies: an empty reason is a schema error naming it.
    schema_error(
        &b,
        "block_work",
        json!({"message_id": d2["message_id"], "reason": ""}),
        "reason",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_targets_and_unclaimed_callers() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let _d1 = ox
        .agent(AgentOpts::claude(&repo, "dup-aaaa-1"))
        .await
        .unwrap();
    let _d2 = ox
        .agent(AgentOpts::claude(&repo, "dup-aaaa-2"))
        .await
        .unwrap();
    ok(&_d1, "set_my_state", json!({"purpose": "one"})).await;
    ok(&_d2, "set_my_state", json!({"purpose": "two"})).await;
    // §8 ambiguous-target: no `message`, the claimed candidates' ids.
    let v = err(
        &a,
        "send_message",
        json!({"target": "dup-aaaa-", "body": "x"}),
        "ambiguous-target",
        false,
    )
    .await;
    let mut c: Vec<&str> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    c.sort();
    assert_eq!(c, ["dup-aaaa-1", "dup-aaaa-2"]);
    // §6: the same ambiguity is read_session's `error`, listing the ids.
    let r = call(&a, "read_session", json!({"name": "dup-aaaa-"})).await;
    let e = r["error"].as_str().unwrap();
    assert!(e.starts_with("ambiguous-target: "), "{r}");
    assert!(e.contains("dup-aaaa-1") && e.contains("dup-aaaa-2"), "{e}");
    assert_eq!(r["mode"], "none");
    assert_eq!(r["resolved_session_id"], Value::Null);
    // §10 / §13: an unclaimed caller gets no-session-id.
    let u = ox
        .agent(AgentOpts {
            cwd: repo.clone(),
            env: vec![],
            client_name: "claude-code".into(),
        })
        .await
        .unwrap();
    for (tool, args) in [
        ("reply_to_message", json!({"message_id": "m", "body": "x"})),
        ("complete_work", json!({"message_id": "m", "body": "x"})),
        ("block_work", json!({"message_id": "m", "reason": "x"})),
    ] {
        err(&u, tool, args, "no-session-id", true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_defaults_late_replies_and_receipts() {
    let ox = Instance::new(BIN);
    // §15: the default ask wait is the asking agent's own setting.
    let (a, b) = pair(&ox, &[], &[("OXTAIL_ASK_PEER_TIMEOUT_MS", "150")]).await;
    let ask = ok(&b, "ask_peer", json!({"target": "alice", "body": "q"})).await;
    assert_eq!(ask["timeout_ms"], 150, "{ask}");
    assert_eq!(ask["timed_out"], true);
    lacks(&ask, &["timeout_clamped_from_ms"]);
    // §11: the late reply to the pending ask wakes the asker.
    let got = read_some(&a).await;
    let inbound = got["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["request_id"] == ask["request_id"])
        .cloned()
        .unwrap_or_else(|| panic!("the ask: {got}"));
    let late = ok(
        &a,
        "reply_to_message",
        json!({"message_id": inbound["id"], "body": "late"}),
    )
    .await;
    assert_eq!(late["wake_reason"], "late_reply_to_pending", "{late}");
    assert!(late["wake_status"].is_string());
    assert_eq!(late["correlation"], "correlated");

    // §7: an ask's reply is receipted `ask_peer_reply`.
    let asker = tokio::spawn(async move {
        let v = ok(
            &b,
            "ask_peer",
            json!({"target": "alice", "body": "now?", "timeout_ms": 20000}),
        )
        .await;
        (b, v)
    });
    let mut inbound = Value::Null;
    while inbound.is_null() {
        let r = read_some(&a).await;
        inbound = r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["body"] == "now?")
            .cloned()
            .unwrap_or(Value::Null);
    }
    let rep = ok(
        &a,
        "reply_to_message",
        json!({"message_id": inbound["id"], "body": "yes"}),
    )
    .await;
    let (_b, v) = asker.await.unwrap();
    assert_eq!(v["reply"]["body"], "yes", "{v}");
    let st = a.delivered(&rep["message_id"]).await.unwrap();
    assert_eq!(st["via"], "ask_peer_reply", "{st}");
    assert_eq!(st["recipient_session_id"], "sess-b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autowake_off_disables_the_strict_reply_wake() {
    let ox = Instance::new(BIN);
    // §15 OXTAIL_AUTOWAKE=off (the replier's own setting): a reply with
    // wake unset is not woken.
    let (a, b) = pair(&ox, &[], &[("OXTAIL_AUTOWAKE", "off")]).await;
    let s = ok(&a, "send_message", json!({"target": "bob", "body": "hi"})).await;
    read_some(&b).await;
    let r = ok(
        &b,
        "reply_to_message",
        json!({"message_id": s["message_id"], "body": "hello"}),
    )
    .await;
    assert_eq!(r["wake_reason"], "reply_to_default", "{r}");
    assert_eq!(r["wake_status"], "disabled", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_that_cannot_be_made_durable_is_delivery_failed() {
    // A journal that is "full" after 12 000 bytes (the daemon's fault
    // injection): the close is not written, so nothing is delivered and
    // the obligation stays open (§13 delivery-failed).
    let ox = Instance::with_env(BIN, &[("OXTAIL_FAULT_JOURNAL_FULL_AFTER_BYTES", "12000")]);
    let (a, b) = pair(&ox, &[], &[]).await;
    let d = ok(
        &a,
        "send_message",
        json!({"target": "bob", "body": "task", "action_required": true, "wake": "off"}),
    )
    .await;
    let mut full = false;
    for i in 0..200 {
        let v = call(
            &a,
            "send_message",
            json!({"target": "bob", "body": format!("{i} {}", "x".repeat(400)), "wake": "off"}),
        )
        .await;
        if v["ok"] == false {
            assert_eq!(v["error"], "storage", "{v}");
            full = true;
            break;
        }
    }
    assert!(full, "the injected full journal is reached");
    let v = err(
        &b,
        "complete_work",
        json!({"message_id": d["message_id"], "body": "done"}),
        "delivery-failed",
        true,
    )
    .await;
    assert!(v["message"].as_str().unwrap().contains("stays open"), "{v}");
    let inbox = ox.ctl(&["inbox", "sess-a"]).unwrap();
    assert_eq!(inbox["queued"], json!([]), "nothing delivered: {inbox}");
    let dump = ox.ctl(&["dump"]).unwrap();
    let id = d["message_id"].as_str().unwrap();
    assert_eq!(
        dump["state"]["obligations"][id]["state"], "open",
        "stays open"
    );
}
