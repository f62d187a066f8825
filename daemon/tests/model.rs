//! Model-based property test: random operation sequences run through the
//! real pure core (`tools::call` + `state::apply`) and through a tiny
//! reference model; every observable answer must agree, and replaying the
//! journaled commands (through their JSON encoding) must rebuild the same
//! state.

mod common;

use oxtail_daemon::config::Config;
use oxtail_daemon::identity::Caller;
use oxtail_daemon::state::{apply, Command, Seat, State};
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
        self.now += 1;
        let out = common::plan(&self.state, self.now, &mut self.next, who, tool, &args);
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

/// Hook events in the same model: a SessionStart that moves a seat to a new
/// session (`clear`, `compact`, `resume`, `fork`), or resumes the same one.
#[derive(Debug, Clone)]
enum HookOp {
    Send {
        from: usize,
        to: usize,
        old_id: bool,
    },
    Read {
        who: usize,
    },
    Start {
        who: usize,
        source: usize,
        same_id: bool,
    },
    PreToolUse {
        who: usize,
    },
}

fn hook_op() -> impl Strategy<Value = HookOp> {
    prop_oneof![
        4 => (0..AGENTS, 0..AGENTS, proptest::bool::weighted(0.3))
            .prop_map(|(from, to, old_id)| HookOp::Send { from, to, old_id }),
        2 => (0..AGENTS).prop_map(|who| HookOp::Read { who }),
        2 => (0..AGENTS, 0usize..4, proptest::bool::weighted(0.2))
            .prop_map(|(who, source, same_id)| HookOp::Start { who, source, same_id }),
        1 => (0..AGENTS).prop_map(|who| HookOp::PreToolUse { who }),
    ]
}

fn seat(i: usize) -> Seat {
    Seat {
        pid: 1000 + i as u32,
        start_time: 7,
    }
}

/// A tool caller speaking as session `id` from agent `i`'s seat.
fn caller_as(i: usize, id: &str) -> Caller {
    let mut c = common::caller(i);
    c.env
        .insert("CLAUDE_CODE_SESSION_ID".to_string(), id.to_string());
    c
}

struct HookHarness {
    state: State,
    journal: Vec<Vec<Command>>,
    next: u64,
    now: u64,
}

impl HookHarness {
    fn commit(&mut self, cmds: Vec<Command>) {
        if cmds.is_empty() {
            return;
        }
        let mut ev = Vec::new();
        for c in &cmds {
            apply(&mut self.state, c, &mut ev);
        }
        self.journal.push(cmds);
    }

    fn tool(&mut self, caller: &Caller, tool: &str, args: Value) -> (Value, Option<tools::Offer>) {
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
        let out = tools::call(&self.state, caller, tool, &args, None, &mut ctx);
        self.next = next;
        let offer = out.offer.clone();
        self.commit(out.commands);
        (value(out.reply), offer)
    }

    fn hook(&mut self, who: usize, event: oxtail_proto::HookEvent, payload: Value) -> String {
        self.now += 1;
        let call = oxtail_proto::HookCall {
            event,
            client: "claude-code".into(),
            payload,
            env: BTreeMap::new(),
            ppid: 1,
            deliver_budget_chars: None,
            deliver_deadline_ms: None,
            conflict_mode: None,
        };
        let plan = oxtail_daemon::hookplan::plan_identity(
            &self.state,
            &call,
            Some(seat(who)),
            Some(common::caller(who).scope),
            self.now,
        )
        .expect("a payload with a session_id plans");
        self.commit(plan.commands);
        plan.session
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, .. ProptestConfig::default() })]

    /// A seat moved by a SessionStart keeps its agent's mail, name and
    /// seat; old ids stay addressable as aliases; hook commands replay.
    #[test]
    fn hooks_move_seats_without_losing_mail(ops in proptest::collection::vec(hook_op(), 1..50)) {
        use oxtail_proto::HookEvent;
        let mut h = HookHarness { state: State::default(), journal: Vec::new(), next: 0, now: 1_000 };
        // Each agent's current session id, and every id it had before.
        let mut cur: Vec<String> = (0..AGENTS).map(|i| format!("s{i}")).collect();
        let mut old: Vec<Vec<String>> = vec![Vec::new(); AGENTS];
        let mut queued = [0usize; AGENTS];
        let mut names: Vec<Option<String>> = vec![None; AGENTS];
        for i in 0..AGENTS {
            // The client starts: its SessionStart hook registers and binds.
            let id = h.hook(i, HookEvent::SessionStart, json!({"session_id": cur[i], "cwd": "/p", "source": "startup"}));
            prop_assert_eq!(&id, &cur[i]);
            let (v, _) = h.tool(&caller_as(i, &cur[i]), "set_my_state", json!({"purpose": format!("agent {i}"), "name": format!("a{i}")}));
            prop_assert_eq!(&v["ok"], &json!(true), "{}", v);
            names[i] = h.state.agents.get(&cur[i]).and_then(|a| a.name.clone());
            prop_assert_eq!(names[i].clone(), Some(format!("a{i}")));
        }
        let mut moves = 0usize;
        for op in ops {
            match op {
                HookOp::Send { from, to, old_id } => {
                    let target = match (old_id, old[to].last()) {
                        (true, Some(o)) => o.clone(),
                        _ => cur[to].clone(),
                    };
                    let (v, _) = h.tool(&caller_as(from, &cur[from]), "send_message", json!({"target": target, "body": "hi", "wake": "off"}));
                    if from == to {
                        prop_assert_eq!(&v["error"], &json!("self-send"), "{}", v);
                        continue;
                    }
                    prop_assert_eq!(&v["ok"], &json!(true), "{}", v);
                    // An old id is an alias: the mail reaches the current one.
                    prop_assert_eq!(&v["target_session_id"], &json!(cur[to]), "{}", v);
                    queued[to] += 1;
                }
                HookOp::Read { who } => {
                    let (v, offer) = h.tool(&caller_as(who, &cur[who]), "read_my_messages", json!({}));
                    let n = v["messages"].as_array().map_or(0, Vec::len);
                    prop_assert_eq!(n, queued[who].min(Config::default().read_max_messages), "{}", v);
                    if let Some(o) = offer {
                        h.now += 1;
                        let at_ms = h.now;
                        h.commit(vec![Command::Drain { session_id: o.session_id, message_ids: o.message_ids, via: o.via, at_ms }]);
                        queued[who] -= n;
                    }
                }
                HookOp::Start { who, source, same_id } => {
                    let source = ["clear", "compact", "resume", "fork"][source];
                    let id = if same_id { cur[who].clone() } else { moves += 1; format!("s{who}m{moves}") };
                    let got = h.hook(who, HookEvent::SessionStart, json!({"session_id": id, "cwd": "/p", "source": source}));
                    prop_assert_eq!(&got, &id);
                    if id != cur[who] {
                        old[who].push(std::mem::replace(&mut cur[who], id));
                    }
                }
                HookOp::PreToolUse { who } => {
                    // A hook speaking an old id resolves to the current one.
                    let speak = old[who].first().cloned().unwrap_or_else(|| cur[who].clone());
                    let got = h.hook(who, HookEvent::PreToolUse, json!({"session_id": speak, "cwd": "/p", "tool_name": "Bash"}));
                    prop_assert_eq!(&got, &cur[who]);
                }
            }
            for i in 0..AGENTS {
                // Mail follows the seat; the seat is bound to the current id;
                // old ids are aliases of it; the name stays.
                prop_assert_eq!(h.state.queued(&cur[i]), queued[i], "agent {}", i);
                let b = h.state.seats.get(&seat(i).key()).map(|b| b.session_id.clone());
                prop_assert_eq!(b.as_deref(), Some(cur[i].as_str()));
                for o in &old[i] {
                    prop_assert_eq!(h.state.canonical_id(o), Some(cur[i].as_str()), "alias {}", o);
                }
                let name = h.state.agents.get(&cur[i]).and_then(|a| a.name.clone());
                prop_assert_eq!(&name, &names[i]);
            }
        }
        // Replay through the journal encoding rebuilds the identical state.
        let mut replayed = State::default();
        let mut ev = Vec::new();
        for rec in &h.journal {
            let back: Vec<Command> = serde_json::from_slice(&serde_json::to_vec(rec).unwrap()).unwrap();
            for c in &back {
                apply(&mut replayed, c, &mut ev);
            }
        }
        prop_assert_eq!(&replayed, &h.state);
    }
}
