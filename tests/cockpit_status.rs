//! `oxtail status` against a real daemon with real shims as agents, and the
//! `--json` output round-tripped through its documented schema
//! (`oxtail_proto::status`, docs/status-schema.md).

use oxtail_proto::status::*;
use oxtail_tests::harness::{AgentOpts, Instance};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::Stdio;

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// Every key path of a JSON value: `agents[].liveness.state`, …
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                key_paths(x, &p, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                key_paths(x, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn schema_doc() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/status-schema.md"
    ))
    .expect("docs/status-schema.md exists")
}

/// A snapshot with every optional field filled.
fn full() -> StatusSnapshot {
    let loc = TmuxLocation {
        socket: Some("/tmp/tmux-0/default".into()),
        pane_id: "%1".into(),
        session_name: "s".into(),
        window_index: 0,
        window_name: Some("w".into()),
    };
    StatusSnapshot {
        schema_version: STATUS_SCHEMA_VERSION,
        generated_at_ms: 1,
        project_root: Some("/p".into()),
        agents: vec![AgentRow {
            client_session_id: "a".into(),
            name: Some("n".into()),
            client_type: "claude-code".into(),
            project_root: "/p".into(),
            liveness: Liveness {
                state: LivenessState::Live,
                since_ms: Some(1),
            },
            activity: Activity {
                state: ActivityState::Busy,
                since_ms: Some(1),
            },
            current_tool: Some(ToolBadge {
                tool: "Bash".into(),
                file_path: Some("/f".into()),
                since_ms: 1,
            }),
            purpose: Some(StateCard {
                purpose: "x".into(),
                set_at_ms: Some(1),
            }),
            unread: 1,
            open_obligations: 1,
            awaiting: Some(Awaiting {
                request_id: "r".into(),
                target: "b".into(),
                target_name: Some("b".into()),
                since_ms: 1,
                kind: WaitKind::InFlight,
            }),
            worktree: Some("/p".into()),
            branch: Some("main".into()),
            tmux: Some(loc.clone()),
            wake_route: Some("app_server".into()),
            host: Some("h".into()),
        }],
        panes: vec![PaneRow {
            tmux: loc,
            command: "bash".into(),
            cwd: "/p".into(),
        }],
        waits: vec![WaitEdge {
            from: "a".into(),
            from_name: Some("n".into()),
            to: "b".into(),
            to_name: Some("b".into()),
            request_id: "r".into(),
            since_ms: 1,
            kind: WaitKind::Pending,
        }],
        comms: vec![CommsEntry {
            at_ms: 1,
            message_id: "m".into(),
            from: "a".into(),
            from_name: Some("n".into()),
            to: "b".into(),
            to_name: Some("b".into()),
            kind: CommsKind::Delegation,
            body_preview: "hi".into(),
            body_bytes: 2,
            request_id: Some("r".into()),
            reply_to: Some("q".into()),
            obligation: Some(ObligationState::Open),
            delivered: false,
        }],
        comms_total: 1,
        files: vec![],
        federation: Some(oxtail_proto::status::FederationStatus {
            url: "nats://h:4222".into(),
            link_up: false,
            error: Some("down".into()),
            daemon: "d".into(),
            projects: 1,
            remote_agents: 2,
            outbox: 3,
            warning: Some("w".into()),
        }),
    }
}

#[test]
fn the_schema_doc_names_every_field_and_enum_value() {
    let doc = schema_doc();
    let mut paths = BTreeSet::new();
    key_paths(&serde_json::to_value(full()).unwrap(), "", &mut paths);
    for p in &paths {
        assert!(
            doc.contains(&format!("`{p}`")),
            "docs/status-schema.md does not document `{p}`"
        );
    }
    for v in [
        "live",
        "idle",
        "dead",
        "ended",
        "unknown",
        "busy",
        "in_flight",
        "pending",
        "message",
        "ask",
        "reply",
        "delegation",
        "done",
        "blocked",
        "operator",
        "open",
        "snapshot",
    ] {
        assert!(
            doc.contains(&format!("`{v}`")),
            "docs/status-schema.md does not list `{v}`"
        );
    }
}

fn status_json(inst: &Instance, project: &std::path::Path) -> Result<Value, String> {
    let out = inst
        .command()
        .args(["status", "--json", "--project"])
        .arg(project)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("status --json prints JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_round_trips_through_the_schema() {
    let inst = Instance::new(BIN);
    let repo = inst.git_repo("app");
    let a = inst
        .agent(AgentOpts::claude(&repo, "aaaaaaaa-1111"))
        .await
        .unwrap();
    let b = inst
        .agent(AgentOpts::claude(&repo, "bbbbbbbb-2222"))
        .await
        .unwrap();
    a.ok(
        "set_my_state",
        json!({"purpose": "writing the parser", "name": "alpha"}),
    )
    .await
    .unwrap();
    b.ok(
        "set_my_state",
        json!({"purpose": "reviewing", "name": "beta"}),
    )
    .await
    .unwrap();
    a.ok(
        "send_message",
        json!({"target": "beta", "body": "please review parser.rs"}),
    )
    .await
    .unwrap();

    let v = match status_json(&inst, &repo) {
        Ok(v) => v,
        Err(e) if e.contains("does not serve the cockpit yet") => {
            oxtail_tests::skip::skip_or_fail(&format!(
                "the daemon does not implement Ctl::Status yet: {e}"
            ));
            return;
        }
        Err(e) => panic!("oxtail status --json failed: {e}"),
    };
    // Round trip: every key the daemon sends is in the schema, nothing lost.
    let snap: StatusSnapshot = oxtail_cockpit::daemon::parse_snapshot(v.clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&snap).unwrap(),
        v,
        "status --json has keys outside the schema"
    );
    let doc = schema_doc();
    let mut paths = BTreeSet::new();
    key_paths(&v, "", &mut paths);
    for p in &paths {
        assert!(doc.contains(&format!("`{p}`")), "undocumented key `{p}`");
    }
    assert_eq!(snap.schema_version, STATUS_SCHEMA_VERSION);
    let alpha = snap
        .agents
        .iter()
        .find(|r| r.name.as_deref() == Some("alpha"))
        .expect("alpha row");
    let beta = snap
        .agents
        .iter()
        .find(|r| r.name.as_deref() == Some("beta"))
        .expect("beta row");
    assert_eq!(alpha.client_session_id, "aaaaaaaa-1111");
    assert_eq!(alpha.client_type, "claude-code");
    assert_eq!(
        alpha.purpose.as_ref().unwrap().purpose,
        "writing the parser"
    );
    assert!(alpha.liveness.state.is_alive(), "{:?}", alpha.liveness);
    assert_eq!(beta.unread, 1);
    let last = snap.comms.last().expect("the message is in the comms log");
    assert_eq!(last.kind, CommsKind::Message);
    assert_eq!(last.from_name.as_deref(), Some("alpha"));
    assert_eq!(last.to, "bbbbbbbb-2222");
    assert_eq!(last.body_preview, "please review parser.rs");
    assert!(!last.delivered);

    // The text view of the same fleet, and status is read-only: beta's
    // message is still queued afterwards.
    let out = inst
        .command()
        .args(["status", "--project"])
        .arg(&repo)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("alpha") && text.contains("beta"), "{text}");
    assert!(text.contains("✉1"), "{text}");
    assert!(
        text.contains("alpha → beta  ·  please review parser.rs"),
        "{text}"
    );
    let inbox = inst.ctl(&["inbox", "bbbbbbbb-2222"]).unwrap();
    assert_eq!(inbox["queued"].as_array().map(Vec::len), Some(1), "{inbox}");

    // Bad input: a project that does not exist is a clear error.
    let out = inst
        .command()
        .args(["status", "--project", "/definitely/not/here"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--project /definitely/not/here"));
    a.close().await;
    b.close().await;
}
