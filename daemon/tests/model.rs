//! Model-based property test: random operation sequences run through the
//! real pure core (`tools::call` + `state::apply`) and through a tiny
//! reference model; every observable answer must agree, and replaying the
//! journaled commands (through their JSON encoding) must rebuild the same
//! state.

use oxtail_daemon::config::Config;
use oxtail_daemon::identity::Caller;
use oxtail_daemon::state::{apply, Command, Scope, Seat, State};
use oxtail_daemon::tools::{self, Ctx, Live};
use oxtail_proto::Reply;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

const AGENTS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Send {
        from: usize,
        to: usize,
        len: usize,
    },
    /// A read whose hand-over is confirmed, or lost (the reply never
    /// reached the agent: timeout, cancel, dead shim).
    Read {
        who: usize,
        lost: bool,
    },
    Reply {
        who: usize,
        pick: usize,
    },
    Status {
        who: usize,
        pick: usize,
    },
    SendBad {
        from: usize,
    },
    SetState {
        who: usize,
        len: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..AGENTS, 0..AGENTS, 1usize..40).prop_map(|(from, to, len)| Op::Send { from, to, len }),
        2 => (0..AGENTS, proptest::bool::weighted(0.3)).prop_map(|(who, lost)| Op::Read { who, lost }),
        2 => (0..AGENTS, 0usize..50).prop_map(|(who, pick)| Op::Reply { who, pick }),
        1 => (0..AGENTS, 0usize..50).prop_map(|(who, pick)| Op::Status { who, pick }),
        1 => (0..AGENTS).prop_map(|from| Op::SendBad { from }),
        1 => (0..AGENTS, 0usize..260).prop_map(|(who, len)| Op::SetState { who, len }),
    ]
}

fn caller(i: usize) -> Caller {
    let mut env = BTreeMap::new();
    env.insert("CLAUDE_CODE_SESSION_ID".to_string(), format!("s{i}"));
    Caller {
        seat: Some(Seat {
            pid: 1000 + i as u32,
            start_time: 7,
        }),
        scope: Scope {
            project: "git:/p/.git".into(),
            project_root: "/p".into(),
            worktree: "/p".into(),
            branch: Some("main".into()),
        },
        requested_scope: None,
        shim_pid: 0,
        cwd: "/p".into(),
        env,
        client_name: Some("claude-code".into()),
        birth_time: None,
    }
}

/// The reference model: what each agent should see.
#[derive(Default)]
struct Model {
    queues: Vec<VecDeque<(String, usize, String)>>, // (id, from, body)
    received: Vec<Vec<(String, usize)>>,            // (id, from) ever made visible
    sent: Vec<Vec<String>>,
    delivered: HashSet<String>,
    /// Offered in a hand-over that was lost: the next one flags them.
    offered: HashSet<String>,
}

struct Harness {
    state: State,
    journal: Vec<Vec<Command>>,
    next: u64,
    now: u64,
    /// The last call's offer (what the actor would hold for the ack).
    offer: Option<tools::Offer>,
}

impl Harness {
    fn call(&mut self, who: usize, tool: &str, args: Value) -> Reply {
        let config = Config::default();
        let live = Live::default();
        let mut next = self.next;
        let mut new_id = |p: &str| {
            next += 1;
            format!("{p}_{next}")
        };
        self.now += 1;
        let mut ctx = Ctx {
            now_ms: self.now,
            config: &config,
            live: &live,
            home: None,
            new_id: &mut new_id,
        };
        let out = tools::call(&self.state, &caller(who), tool, &args, None, &mut ctx);
        self.next = next;
        self.offer = out.offer.clone();
        let is_error = matches!(&out.reply, Reply::Error { .. })
            || matches!(&out.reply, Reply::Ok { value } if value["ok"] == false);
        if is_error {
            // Invariant: bad input changes nothing.
            let only_registration = out
                .commands
                .iter()
                .all(|c| matches!(c, Command::UpsertAgent { .. } | Command::BindSeat { .. }));
            assert!(
                out.commands.is_empty() || only_registration,
                "error with commands: {out:?}"
            );
        }
        if !out.commands.is_empty() {
            let mut ev = Vec::new();
            for c in &out.commands {
                apply(&mut self.state, c, &mut ev);
            }
            self.journal.push(out.commands);
        }
        out.reply
    }

    /// The actor's part of a confirmed hand-over: the offered mail leaves
    /// the mailbox with a receipt.
    fn confirm(&mut self) {
        if let Some(o) = self.offer.take() {
            self.now += 1;
            let cmd = Command::Drain {
                session_id: o.session_id,
                message_ids: o.message_ids,
                via: o.via,
                at_ms: self.now,
            };
            apply(&mut self.state, &cmd, &mut Vec::new());
            self.journal.push(vec![cmd]);
        }
    }
}

fn value(r: Reply) -> Value {
    match r {
        Reply::Ok { value } => value,
        Reply::Error { code, message } => json!({"ok": false, "error": code, "message": message}),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn core_agrees_with_reference_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut h = Harness { state: State::default(), journal: Vec::new(), next: 0, now: 1_000, offer: None };
        let mut m = Model {
            queues: vec![VecDeque::new(); AGENTS],
            received: vec![Vec::new(); AGENTS],
            sent: vec![Vec::new(); AGENTS],
            ..Model::default()
        };
        // Everyone registers first (any identity-needing call does it).
        for i in 0..AGENTS {
            let v = value(h.call(i, "set_my_state", json!({"purpose": format!("agent {i}")})));
            prop_assert_eq!(&v["ok"], &json!(true));
        }
        let mut bodies = 0usize;
        for op in ops {
            match op {
                Op::Send { from, to, len } => {
                    bodies += 1;
                    let body = format!("{bodies}:{}", "x".repeat(len));
                    let v = value(h.call(from, "send_message", json!({"target": format!("s{to}"), "body": body})));
                    if from == to {
                        // CONTRACT §8: a send to yourself is refused.
                        prop_assert_eq!(&v["error"], &json!("self-send"), "{}", v);
                        continue;
                    }
                    prop_assert_eq!(&v["ok"], &json!(true), "{}", v);
                    let id = v["message_id"].as_str().unwrap().to_string();
                    m.queues[to].push_back((id.clone(), from, body));
                    m.received[to].push((id.clone(), from));
                    m.sent[from].push(id);
                }
                Op::Read { who, lost } => {
                    let v = value(h.call(who, "read_my_messages", json!({})));
                    let got: Vec<(String, String, String, bool)> = v["messages"].as_array().unwrap().iter()
                        .map(|x| (x["id"].as_str().unwrap().into(), x["from_session_id"].as_str().unwrap().into(), x["body"].as_str().unwrap().into(), x["redelivered"] == json!(true)))
                        .collect();
                    // The read budget (50 messages by default) defers the rest.
                    let budget = Config::default().read_max_messages;
                    let want: Vec<(String, String, String, bool)> = m.queues[who].iter()
                        .take(budget)
                        .map(|(id, from, body)| (id.clone(), format!("s{from}"), body.clone(), m.offered.contains(id)))
                        .collect();
                    prop_assert_eq!(&got, &want);
                    let deferred = m.queues[who].len() - want.len();
                    prop_assert_eq!(v["deferred_count"].as_u64().unwrap_or(0) as usize, deferred);
                    // Until confirmed, the mail is still queued.
                    prop_assert_eq!(h.state.queued(&format!("s{who}")), m.queues[who].len());
                    if lost {
                        // Released: same queue, same order, flagged next time.
                        h.offer = None;
                        for (id, ..) in &want {
                            m.offered.insert(id.clone());
                        }
                    } else {
                        h.confirm();
                        for (id, ..) in m.queues[who].drain(..want.len()) {
                            m.delivered.insert(id);
                        }
                    }
                }
                Op::Reply { who, pick } => {
                    // Half the time a message this agent received, else one it did not.
                    let candidates = &m.received[who];
                    let foreign: Vec<&String> = m.sent.iter().flatten()
                        .filter(|id| !candidates.iter().any(|(c, _)| c == *id)).collect();
                    let (id, expect_ok, to) = if pick % 2 == 0 && !candidates.is_empty() {
                        let (id, from) = &candidates[pick % candidates.len()];
                        (id.clone(), true, *from)
                    } else if !foreign.is_empty() {
                        (foreign[pick % foreign.len()].clone(), false, 0)
                    } else {
                        ("msg_never".to_string(), false, 0)
                    };
                    bodies += 1;
                    let body = format!("{bodies}:reply");
                    let v = value(h.call(who, "reply_to_message", json!({"message_id": id, "body": body})));
                    if expect_ok {
                        prop_assert_eq!(&v["ok"], &json!(true), "{}", v);
                        prop_assert_eq!(&v["reply_to"], &json!(id));
                        let rid = v["message_id"].as_str().unwrap().to_string();
                        m.queues[to].push_back((rid.clone(), who, body));
                        m.received[to].push((rid.clone(), who));
                        m.sent[who].push(rid);
                    } else {
                        prop_assert_eq!(&v["error"], &json!("message-not-found"), "{}", v);
                    }
                }
                Op::Status { who, pick } => {
                    if m.sent[who].is_empty() { continue; }
                    let id = m.sent[who][pick % m.sent[who].len()].clone();
                    let v = value(h.call(who, "message_status", json!({"message_id": id})));
                    let want = if m.delivered.contains(&id) { "delivered" } else { "pending" };
                    prop_assert_eq!(&v["status"], &json!(want), "{}", v);
                    // Nobody else can see it.
                    let other = (who + 1) % AGENTS;
                    let v = value(h.call(other, "message_status", json!({"message_id": id})));
                    prop_assert_eq!(&v["status"], &json!("unknown"));
                }
                Op::SendBad { from } => {
                    let before = h.state.clone();
                    let big = "y".repeat(8193);
                    for args in [
                        json!({"target": "nobody", "body": "x"}),
                        json!({"target": "s0", "body": big}),
                        json!({"target": "s0"}),
                        json!({"target": "s0", "body": "x", "nope": 1}),
                    ] {
                        let v = value(h.call(from, "send_message", args));
                        prop_assert_eq!(&v["ok"], &json!(false));
                    }
                    prop_assert_eq!(&before, &h.state, "bad input changed state");
                }
                Op::SetState { who, len } => {
                    let v = value(h.call(who, "set_my_state", json!({"purpose": "p".repeat(len)})));
                    prop_assert_eq!(v["ok"] == json!(true), len <= 200, "{}", v);
                }
            }
            // Unread counts agree with the model at every step.
            let mut queued: HashMap<String, usize> = HashMap::new();
            for (i, q) in m.queues.iter().enumerate() {
                queued.insert(format!("s{i}"), q.len());
            }
            for (id, n) in &queued {
                prop_assert_eq!(h.state.queued(id), *n);
            }
        }
        // Replay through the journal encoding rebuilds the identical state.
        let mut replayed = State::default();
        let mut ev = Vec::new();
        for rec in &h.journal {
            let bytes = serde_json::to_vec(rec).unwrap();
            let back: Vec<Command> = serde_json::from_slice(&bytes).unwrap();
            for c in &back {
                apply(&mut replayed, c, &mut ev);
            }
        }
        prop_assert_eq!(&replayed, &h.state);
        // And a snapshot round-trips.
        let snap: State = serde_json::from_slice(&serde_json::to_vec(&h.state).unwrap()).unwrap();
        prop_assert_eq!(&snap, &h.state);
    }
}
