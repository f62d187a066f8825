//! The tool catalog (`oxtail_proto::tools`) and the daemon's planners agree
//! (issue 11, "one catalog of tools"): every tool has a handler, every
//! schema field is accepted, and a handler reads no field its schema lacks
//! (a debug assertion in the daemon's argument reader, which these calls
//! run). Also CONTRACT §13's close outcomes that real processes cannot
//! reach: `requester-unreachable` and `already_delivered`.

mod common;

use oxtail_daemon::state::{apply, Receipt, State};
use oxtail_daemon::tools::{self};
use oxtail_proto::tools::{validate, Tool};
use oxtail_proto::{error_code, Reply};
use serde_json::{json, Map, Value};

struct Core {
    state: State,
    now: u64,
    next: u64,
}

impl Core {
    fn new() -> Core {
        let mut c = Core {
            state: State::default(),
            now: 1_000_000,
            next: 0,
        };
        for i in 0..2 {
            assert_eq!(
                c.call(i, "set_my_state", json!({"purpose": "p"}))["ok"],
                true
            );
        }
        c
    }

    /// Runs `tool` for agent `who` and applies its commands; the answer as
    /// JSON (a wire error as `{ok:false, error, message}`).
    fn call(&mut self, who: usize, tool: &str, args: Value) -> Value {
        self.now += 1;
        let out = common::plan(&self.state, self.now, &mut self.next, who, tool, &args);
        for c in &out.commands {
            apply(&mut self.state, c, &mut Vec::new());
        }
        match out.reply {
            Reply::Ok { value } => value,
            Reply::Error { code, message } => {
                json!({"ok": false, "error": code, "message": message})
            }
        }
    }
}

/// A value the schema accepts for `field` (`schema` is its property).
fn sample(field: &str, schema: &Value) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("boolean") => json!(true),
        Some("integer") => json!(schema
            .get("minimum")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .max(60)
            .min(schema.get("maximum").and_then(Value::as_u64).unwrap_or(60))),
        Some("array") => json!(["src/a.rs"]),
        _ => json!(match field {
            "target" | "session_id" | "name" => "s1",
            "project_root" => "/p",
            "path" => "src",
            _ => "x",
        }),
    }
}

#[test]
fn every_tool_has_a_handler_and_accepts_exactly_its_schema() {
    assert_eq!(oxtail_proto::tools::catalog().len(), Tool::ALL.len());
    for &tool in Tool::ALL {
        assert_eq!(Tool::from_name(tool.name()), Some(tool));
        let props = tool.def().input_schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        // Every field at once, then each alone (with the required ones):
        // accepted by the schema check and by the handler, which may read
        // only declared fields (else its debug assertion fails this test).
        let required: Vec<String> = tool.def().input_schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        let mut all = Map::new();
        for (k, s) in &props {
            all.insert(k.clone(), sample(k, s));
        }
        let mut cases = vec![Value::Object(all)];
        for k in props.keys() {
            let mut one = Map::new();
            for r in required.iter().chain([k]) {
                one.insert(r.clone(), sample(r, &props[r]));
            }
            cases.push(Value::Object(one));
        }
        for args in cases {
            assert_eq!(validate(tool, &args), Ok(()), "{}({args})", tool.name());
            let mut core = Core::new();
            let v = core.call(0, tool.name(), args.clone());
            assert_ne!(v["error"], error_code::UNKNOWN_TOOL, "{}: {v}", tool.name());
            if v["error"] == error_code::INVALID_PARAMS {
                assert!(
                    !v["message"].as_str().unwrap().contains("unknown field"),
                    "{}({args}): a schema field was refused: {v}",
                    tool.name()
                );
            }
        }
        // A field outside the schema is refused, naming it.
        let v = Core::new().call(0, tool.name(), json!({"no_such_field": 1}));
        assert_eq!(v["error"], error_code::INVALID_PARAMS, "{}", tool.name());
        assert!(v["message"].as_str().unwrap().contains("`no_such_field`"));
    }
    let v = Core::new().call(0, "no_such_tool", json!({}));
    assert_eq!(v["error"], error_code::UNKNOWN_TOOL);
}

#[test]
fn schema_check_names_the_field() {
    for (tool, args, field) in [
        (
            Tool::AskPeer,
            json!({"target": "b", "body": "x", "timeout_ms": 300_001}),
            "timeout_ms",
        ),
        (
            Tool::AskPeer,
            json!({"target": "b", "body": "x", "timeout_ms": 1.5}),
            "timeout_ms",
        ),
        (
            Tool::AskPeer,
            json!({"target": "b", "body": "x", "timeout_ms": 0}),
            "timeout_ms",
        ),
        (Tool::SendMessage, json!({"target": "b"}), "body"),
        (
            Tool::SendMessage,
            json!({"target": "b", "body": ""}),
            "body",
        ),
        (
            Tool::SendMessage,
            json!({"target": "b", "body": "x", "wake": "loud"}),
            "wake",
        ),
        (
            Tool::SetMyState,
            json!({"purpose": "p".repeat(201)}),
            "purpose",
        ),
        (
            Tool::ReadSession,
            json!({"name": "b", "tail_scan": 4096}),
            "tail_scan",
        ),
        (
            Tool::ReadSession,
            json!({"name": "b", "limit": "5"}),
            "limit",
        ),
        (Tool::ClaimFiles, json!({"paths": []}), "paths"),
        (Tool::ClaimFiles, json!({"paths": [1]}), "paths"),
        (Tool::GetMySession, json!([]), "arguments"),
    ] {
        let e = validate(tool, &args).expect_err(&args.to_string());
        assert!(e.starts_with(&format!("`{field}`")), "{args}: {e}");
    }
    // Bodies are limited in bytes by the tool (body-too-large), not here.
    assert_eq!(
        validate(
            Tool::SendMessage,
            &json!({"target": "b", "body": "x".repeat(9000)})
        ),
        Ok(())
    );
    // A null optional argument is absent; a null required one is missing.
    assert_eq!(
        validate(Tool::ReadSession, &json!({"name": "b", "limit": null})),
        Ok(())
    );
    assert!(validate(Tool::ReadSession, &json!({"name": null})).is_err());
}

/// Agent 0 delegates to agent 1; returns the obligation's id.
fn delegate(core: &mut Core) -> String {
    let d = core.call(
        0,
        "send_message",
        json!({"target": "s1", "body": "do it", "action_required": true}),
    );
    assert_eq!(d["ok"], true, "{d}");
    d["message_id"].as_str().unwrap().to_string()
}

#[test]
fn a_requester_oxtail_cannot_reach_leaves_the_obligation_open() {
    let mut core = Core::new();
    let id = delegate(&mut core);
    // The requester's row is gone (as in a journal from before agents were
    // kept): nothing can be delivered.
    core.state.agents.remove("s0");
    let v = core.call(
        1,
        "complete_work",
        json!({"message_id": id, "body": "done"}),
    );
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"], "requester-unreachable");
    assert_eq!(v["requester_error"], "target-not-found");
    assert!(v["message"].is_string());
    let w = core.call(1, "my_open_work", json!({}));
    assert_eq!(w["count"], 1, "stays open: {w}");
}

#[test]
fn a_completion_already_receipted_closes_without_sending_again() {
    let mut core = Core::new();
    let id = delegate(&mut core);
    let completion = tools::completion_message_id(&id);
    core.state.receipts.insert(
        completion.clone(),
        Receipt {
            delivered_ms: core.now,
            via: "read_my_messages".into(),
            to: "s0".into(),
        },
    );
    let queued = core.state.messages.len();
    let v = core.call(
        1,
        "complete_work",
        json!({"message_id": id, "body": "done"}),
    );
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["already_delivered"], true);
    assert_eq!(v["obligation_state"], "done");
    assert_eq!(v["completion_message_id"], completion.as_str());
    assert_eq!(core.state.messages.len(), queued, "nothing sent");
    let w = core.call(1, "my_open_work", json!({}));
    assert_eq!(w["count"], 0, "closed: {w}");
}

#[test]
fn a_failed_commit_of_a_close_is_delivery_failed() {
    let v = tools::not_durable("complete_work", "no space left on device");
    assert_eq!(v["error"], "delivery-failed");
    assert!(v["message"].as_str().unwrap().contains("stays open"));
    assert_eq!(
        tools::not_durable("block_work", "x")["error"],
        "delivery-failed"
    );
    assert_eq!(tools::not_durable("send_message", "x")["error"], "storage");
}

#[test]
fn a_reply_to_a_sender_oxtail_cannot_reach_names_the_message_and_sender() {
    let mut core = Core::new();
    let s = core.call(0, "send_message", json!({"target": "s1", "body": "hi"}));
    let id = s["message_id"].as_str().unwrap().to_string();
    let r = core.call(1, "read_my_messages", json!({}));
    assert_eq!(r["count"], 1, "{r}");
    core.state.agents.remove("s0");
    let v = core.call(
        1,
        "reply_to_message",
        json!({"message_id": id, "body": "yo"}),
    );
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"], "target-not-found");
    assert_eq!(v["in_reply_to_message_id"], id.as_str());
    assert_eq!(v["original_from_session_id"], "s0");
    assert!(
        v.get("message").is_none(),
        "send_message's codes carry no message: {v}"
    );
}

#[test]
fn an_unknown_status_with_its_outbox_record_says_when_and_to_whom() {
    let mut core = Core::new();
    let s = core.call(0, "send_message", json!({"target": "s1", "body": "hi"}));
    let id = s["message_id"].as_str().unwrap().to_string();
    // Neither queued nor receipted (the receipt pruned), the record kept.
    core.state.mailboxes.get_mut("s1").unwrap().clear();
    let v = core.call(0, "message_status", json!({"message_id": id}));
    assert_eq!(v["status"], "unknown", "{v}");
    assert!(v["note"].is_string());
    assert_eq!(v["target_session_id"], "s1");
    assert_eq!(
        v["enqueued_at"],
        core.state.messages[&id].enqueued_ms / 1000
    );
}
