//! Federation's pure planners (issue 16): what a message from another
//! machine may do here, and how a send to a remote agent is journaled.

mod common;

use common::{caller, plan};
use oxtail_daemon::config::Config;
use oxtail_daemon::fedstate::{Envelope, FedView, PresenceRow, RemotePeer, RemoteRow};
use oxtail_daemon::state::{apply, Command, Message, Origin, State};
use oxtail_daemon::tools::{self, Ctx, InboundRefusal, Live, Outcome};
use serde_json::json;

/// A state where agent 1 (`s1`, project `git:/p/.git`) registered.
fn with_agent() -> State {
    let mut state = State::default();
    let mut next = 0;
    let out = plan(
        &state,
        1,
        &mut next,
        1,
        "set_my_state",
        &json!({"purpose": "x", "name": "bob"}),
    );
    let mut ev = Vec::new();
    for c in &out.commands {
        apply(&mut state, c, &mut ev);
    }
    assert!(state.agents.contains_key("s1"));
    state
}

fn peer(key: &str) -> RemotePeer {
    RemotePeer {
        key: key.into(),
        daemon: "dA".into(),
        host: "hostA".into(),
        name: Some("alice".into()),
    }
}

fn envelope(to: &str, key: &str, id: &str) -> Envelope {
    Envelope {
        v: 1,
        message: Message {
            message_id: id.into(),
            from: "remote-alice".into(),
            from_name: Some("alice".into()),
            to: to.into(),
            body: "hi".into(),
            enqueued_ms: 1,
            request_id: None,
            reply_to: None,
            source_message_id: None,
            action_required: false,
            origin: Origin::Peer,
            project: "somewhere-else".into(),
            closes: None,
            offers: 0,
        },
        from: peer(key),
        wake: None,
        tool: "send_message".into(),
    }
}

fn inbound(state: &State, live: &Live, env: &Envelope) -> Result<Outcome, InboundRefusal> {
    let config = Config::default();
    let mut n = 0;
    let mut new_id = |p: &str| {
        n += 1;
        format!("{p}_{n}")
    };
    let mut ctx = Ctx {
        now_ms: 10,
        config: &config,
        live,
        home: None,
        new_id: &mut new_id,
    };
    tools::inbound(state, env, &mut ctx)
}

fn federated(key: &str) -> Live {
    Live {
        fed: FedView {
            enabled: true,
            link_up: true,
            keys: [("git:/p/.git".to_string(), key.to_string())].into(),
            ..FedView::default()
        },
        ..Live::default()
    }
}

#[test]
fn a_remote_daemon_delivers_only_into_a_project_federated_under_its_key() {
    let state = with_agent();
    // A local-only project (no key): refused, nothing planned.
    let local_only = Live::default();
    assert_eq!(
        inbound(&state, &local_only, &envelope("s1", "k1", "m1")).unwrap_err(),
        InboundRefusal::NotFederated
    );
    // Federated under another key: refused.
    assert_eq!(
        inbound(&state, &federated("k2"), &envelope("s1", "k1", "m1")).unwrap_err(),
        InboundRefusal::NotFederated
    );
    // Nobody of that id here: refused.
    assert_eq!(
        inbound(&state, &federated("k1"), &envelope("nobody", "k1", "m1")).unwrap_err(),
        InboundRefusal::UnknownRecipient
    );
    // A sender claiming a local agent's id: refused.
    let mut spoof = envelope("s1", "k1", "m1");
    spoof.message.from = "s1".into();
    assert_eq!(
        inbound(&state, &federated("k1"), &spoof).unwrap_err(),
        InboundRefusal::Invalid
    );
    // The same key: enqueued into the local project, sender remembered.
    let out = inbound(&state, &federated("k1"), &envelope("s1", "k1", "m1")).unwrap();
    let enq = out
        .commands
        .iter()
        .find_map(|c| match c {
            Command::Enqueue { message } => Some(message.clone()),
            _ => None,
        })
        .expect("an Enqueue");
    assert_eq!(
        enq.project, "git:/p/.git",
        "the local project, not the sender's"
    );
    assert_eq!(enq.from_name.as_deref(), Some("alice"));
    assert!(out
        .commands
        .iter()
        .any(|c| matches!(c, Command::FedPeer { session_id, .. } if session_id == "remote-alice")));
    // Applied, the same id again plans nothing (a redelivery).
    let mut state = state;
    let mut ev = Vec::new();
    for c in &out.commands {
        apply(&mut state, c, &mut ev);
    }
    let again = inbound(&state, &federated("k1"), &envelope("s1", "k1", "m1")).unwrap();
    assert!(again.commands.is_empty(), "{:?}", again.commands);
}

#[test]
fn a_send_to_a_remote_agent_goes_to_the_outbox_not_a_mailbox() {
    let state = with_agent();
    let mut live = federated("k1");
    live.fed.remote.push(RemoteRow {
        peer: peer("k1"),
        row: PresenceRow {
            session_id: "remote-alice".into(),
            name: Some("alice".into()),
            client_type: "codex".into(),
            liveness: "live".into(),
            ..PresenceRow::default()
        },
        reachable: true,
    });
    let config = Config::default();
    let mut n = 0;
    let mut new_id = |p: &str| {
        n += 1;
        format!("{p}_{n}")
    };
    let mut ctx = Ctx {
        now_ms: 10,
        config: &config,
        live: &live,
        home: None,
        new_id: &mut new_id,
    };
    let out = tools::call(
        &state,
        &caller(1),
        "send_message",
        &json!({"target": "alice", "body": "hello"}),
        None,
        &mut ctx,
    );
    assert_eq!(out.field("remote"), &json!(true));
    assert_eq!(out.field("remote_status"), &json!("queued_for_remote"));
    assert_eq!(out.field("host"), &json!("hostA"));
    assert!(out.wakes.is_empty(), "the receiving machine wakes");
    assert!(!out
        .commands
        .iter()
        .any(|c| matches!(c, Command::Enqueue { .. })));
    let queued = out.commands.iter().any(|c| {
        matches!(c, Command::FedQueue { out } if out.message.to == "remote-alice" && out.to.daemon == "dA")
    });
    assert!(queued, "{:?}", out.commands);
    // Without federation the same target is simply unknown.
    let plain = Live::default();
    let mut ctx = Ctx {
        now_ms: 10,
        config: &config,
        live: &plain,
        home: None,
        new_id: &mut new_id,
    };
    let out = tools::call(
        &state,
        &caller(1),
        "send_message",
        &json!({"target": "alice", "body": "hello"}),
        None,
        &mut ctx,
    );
    assert_eq!(out.field("error"), &json!("target-not-found"));
}
