//! Model-based property test: random operation sequences run through the
//! real pure core (`tools::call`, `hookplan::plan` + `state::apply`) and
//! through a tiny reference model; every observable answer must agree, and
//! replaying the journaled commands (through their JSON encoding) must
//! rebuild the same state. Three models: messaging through tools; seat
//! moves by SessionStart hooks; and hooks of every event (fixture shapes)
//! with asks, delegations and file claims.

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

/// The state the journal's records rebuild, each record through its JSON
/// encoding first (as recovery reads it).
fn replay(journal: &[Vec<Command>]) -> State {
    let mut state = State::default();
    let mut ev = Vec::new();
    for rec in journal {
        let back: Vec<Command> = serde_json::from_slice(&serde_json::to_vec(rec).unwrap()).unwrap();
        for c in &back {
            apply(&mut state, c, &mut ev);
        }
    }
    state
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
        prop_assert_eq!(&replay(&h.journal), &h.state);
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

/// A SessionStart or PreToolUse hook of agent `who`'s seat speaking as
/// the payload's session (no client environment), through the whole hook
/// planner; returns the session it resolved to.
fn seat_hook(h: &mut Life, who: usize, event: oxtail_proto::HookEvent, payload: Value) -> String {
    let mut call = hook_call(event, payload);
    call.env = BTreeMap::new();
    h.hook(who, &call)
        .expect("a payload with a session_id plans")
        .session
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, .. ProptestConfig::default() })]

    /// A seat moved by a SessionStart keeps its agent's mail, name and
    /// seat; old ids stay addressable as aliases; hook commands replay.
    #[test]
    fn hooks_move_seats_without_losing_mail(ops in proptest::collection::vec(hook_op(), 1..50)) {
        use oxtail_proto::HookEvent;
        let mut h = Life { state: State::default(), live: Live::default(), journal: Vec::new(), next: 0, now: 1_000 };
        // Each agent's current session id, and every id it had before.
        let mut cur: Vec<String> = (0..AGENTS).map(|i| format!("s{i}")).collect();
        let mut old: Vec<Vec<String>> = vec![Vec::new(); AGENTS];
        let mut queued = [0usize; AGENTS];
        let mut names: Vec<Option<String>> = vec![None; AGENTS];
        for i in 0..AGENTS {
            // The client starts: its SessionStart hook registers and binds.
            let id = seat_hook(&mut h, i, HookEvent::SessionStart, json!({"session_id": cur[i], "cwd": "/p", "source": "startup"}));
            prop_assert_eq!(&id, &cur[i]);
            let (v, _) = h.tool_as(&caller_as(i, &cur[i]), "set_my_state", json!({"purpose": format!("agent {i}"), "name": format!("a{i}")}));
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
                    let (v, _) = h.tool_as(&caller_as(from, &cur[from]), "send_message", json!({"target": target, "body": "hi", "wake": "off"}));
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
                    let (v, offer) = h.tool_as(&caller_as(who, &cur[who]), "read_my_messages", json!({}));
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
                    let got = seat_hook(&mut h, who, HookEvent::SessionStart, json!({"session_id": id, "cwd": "/p", "source": source}));
                    prop_assert_eq!(&got, &id);
                    if id != cur[who] {
                        old[who].push(std::mem::replace(&mut cur[who], id));
                    }
                }
                HookOp::PreToolUse { who } => {
                    // A hook speaking an old id resolves to the current one.
                    let speak = old[who].first().cloned().unwrap_or_else(|| cur[who].clone());
                    let got = seat_hook(&mut h, who, HookEvent::PreToolUse, json!({"session_id": speak, "cwd": "/p", "tool_name": "Bash"}));
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
        prop_assert_eq!(&replay(&h.journal), &h.state);
    }
}

/// Hook events (real Claude Code 2.1.329 payload shapes), asks, delegations
/// and file claims in one model.
#[derive(Debug, Clone)]
enum LifeOp {
    /// A hook event; `deliver`: it carries a delivery budget (as PreToolUse,
    /// UserPromptSubmit, Stop and SessionStart do); `late`: past its
    /// deadline; `lost`: the hand-over is never confirmed.
    Hook {
        who: usize,
        event: usize,
        path: usize,
        deliver: bool,
        late: bool,
        lost: bool,
    },
    Send {
        from: usize,
        to: usize,
        delegate: bool,
    },
    Ask {
        from: usize,
        to: usize,
    },
    /// Answer (reply to an ask, complete or block a delegation) the
    /// `pick`th open obligation `who` owns.
    Close {
        who: usize,
        pick: usize,
        block: bool,
    },
    Claim {
        who: usize,
        path: usize,
        exclusive: bool,
    },
    Release {
        who: usize,
    },
    /// Bad input to a hook and to each tool of this model.
    Bad {
        who: usize,
    },
}

const PATHS: [&str; 2] = ["src/a.rs", "src/b.rs"];
/// Hook events by index: SessionStart, UserPromptSubmit, PreToolUse (an
/// Edit), PostToolUse (of it), PreToolUse (Bash), Stop, SessionEnd.
const EVENTS: usize = 7;

fn life_op() -> impl Strategy<Value = LifeOp> {
    let w = proptest::bool::weighted;
    prop_oneof![
        6 => (0..AGENTS, 0..EVENTS, 0..PATHS.len(), w(0.7), w(0.1), w(0.3))
            .prop_map(|(who, event, path, deliver, late, lost)| LifeOp::Hook { who, event, path, deliver, late, lost }),
        3 => (0..AGENTS, 0..AGENTS, w(0.3)).prop_map(|(from, to, delegate)| LifeOp::Send { from, to, delegate }),
        2 => (0..AGENTS, 0..AGENTS).prop_map(|(from, to)| LifeOp::Ask { from, to }),
        2 => (0..AGENTS, 0usize..8, w(0.3)).prop_map(|(who, pick, block)| LifeOp::Close { who, pick, block }),
        2 => (0..AGENTS, 0..PATHS.len(), w(0.5)).prop_map(|(who, path, exclusive)| LifeOp::Claim { who, path, exclusive }),
        1 => (0..AGENTS).prop_map(|who| LifeOp::Release { who }),
        1 => (0..AGENTS).prop_map(|who| LifeOp::Bad { who }),
    ]
}

/// A Claude Code 2.1.329 hook payload (the fixture shapes of
/// `/work/shared/fixtures/claude-code-2.1.329/hooks/`) for session `id`.
fn hook_payload(id: &str, event: usize, path: &str) -> (oxtail_proto::HookEvent, Value) {
    use oxtail_proto::HookEvent as E;
    let base = json!({
        "session_id": id,
        "transcript_path": format!("/home/user/.claude/projects/-p/{id}.jsonl"),
        "cwd": "/p",
        "prompt_id": "0a499c51-9bb9-43be-8b62-c54f072eab0d",
        "permission_mode": "bypassPermissions",
    });
    let mut p = base;
    let edit = json!({"file_path": format!("/p/{path}"), "old_string": "a", "new_string": "b"});
    let (event, extra) = match event {
        0 => (
            E::SessionStart,
            json!({"hook_event_name": "SessionStart", "source": "startup"}),
        ),
        1 => (
            E::UserPromptSubmit,
            json!({"hook_event_name": "UserPromptSubmit", "prompt": "go"}),
        ),
        2 => (
            E::PreToolUse,
            json!({"hook_event_name": "PreToolUse", "tool_name": "Edit", "tool_input": edit, "tool_use_id": "toolu_1"}),
        ),
        3 => (
            E::PostToolUse,
            json!({"hook_event_name": "PostToolUse", "tool_name": "Edit", "tool_input": edit,
            "tool_response": {"filePath": format!("/p/{path}")}, "tool_use_id": "toolu_1", "duration_ms": 8}),
        ),
        4 => (
            E::PreToolUse,
            json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_use_id": "toolu_2"}),
        ),
        5 => (
            E::Stop,
            json!({"hook_event_name": "Stop", "stop_hook_active": false, "last_assistant_message": "done"}),
        ),
        _ => (
            E::SessionEnd,
            json!({"hook_event_name": "SessionEnd", "reason": "other"}),
        ),
    };
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    (event, p)
}

struct Life {
    state: State,
    live: Live,
    journal: Vec<Vec<Command>>,
    next: u64,
    now: u64,
}

impl Life {
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

    fn tool(&mut self, who: usize, tool: &str, args: Value) -> (Value, Option<tools::Offer>) {
        self.tool_as(&common::caller(who), tool, args)
    }

    fn tool_as(
        &mut self,
        caller: &Caller,
        tool: &str,
        args: Value,
    ) -> (Value, Option<tools::Offer>) {
        self.now += 1;
        let config = Config::default();
        let mut next = self.next;
        let mut new_id = |p: &str| {
            next += 1;
            format!("{p}_{next}")
        };
        let mut ctx = Ctx {
            now_ms: self.now,
            config: &config,
            live: &self.live,
            home: None,
            new_id: &mut new_id,
        };
        let out = tools::call(&self.state, caller, tool, &args, None, &mut ctx);
        self.next = next;
        let offer = out.offer.clone();
        self.commit(out.commands);
        (value(out.reply), offer)
    }

    /// Plans a hook, applies its ephemeral effects as the actor does, and
    /// journals its commands.
    fn hook(
        &mut self,
        who: usize,
        call: &oxtail_proto::HookCall,
    ) -> Result<oxtail_daemon::hookplan::HookOutcome, Reply> {
        self.now += 1;
        let out = common::plan_hook(&self.state, &self.live, self.now, who, call)?;
        let fx = out.effects.clone();
        let id = out.session.clone();
        match fx.activity {
            Some(a) => {
                self.live.activity.insert(id.clone(), a);
            }
            None => {
                self.live.activity.remove(&id);
            }
        }
        if fx.take_notices {
            self.live.notices.remove(&id);
        }
        self.live.notices.extend(fx.notices);
        for (rel, rec) in fx.touches {
            self.live.touches.record(&fx.project, &rel, rec);
        }
        if fx.end {
            self.live.touches.end(&id);
            self.live.notices.remove(&id);
        }
        self.commit(out.commands.clone());
        Ok(out)
    }
}

fn hook_call(event: oxtail_proto::HookEvent, payload: Value) -> oxtail_proto::HookCall {
    let mut env = BTreeMap::new();
    if let Some(id) = payload["session_id"].as_str() {
        env.insert("CLAUDE_CODE_SESSION_ID".to_string(), id.to_string());
    }
    oxtail_proto::HookCall {
        event,
        client: "claude-code".into(),
        payload,
        env,
        ppid: 1,
        deliver_budget_chars: None,
        deliver_deadline_ms: None,
        conflict_mode: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, .. ProptestConfig::default() })]

    /// Hooks, asks, delegations and claims through the pure planners:
    /// mail leaves a mailbox only on a confirmed hand-over, in queue order;
    /// obligations open and close as the model says; an edit warns exactly
    /// when a live peer holds an exclusive lease on the file or edited it
    /// (or a notice is pending); bad input changes nothing; the journal
    /// replays to the same state.
    #[test]
    fn hooks_asks_work_and_claims_keep_the_invariants(ops in proptest::collection::vec(life_op(), 1..60)) {
        let mut h = Life { state: State::default(), live: Live::default(), journal: Vec::new(), next: 0, now: 1_000 };
        let id = |i: usize| format!("s{i}");
        // The model.
        let mut queues: Vec<VecDeque<String>> = vec![VecDeque::new(); AGENTS];
        // Open obligations: (message id, owner, requester, is an ask).
        let mut open: Vec<(String, usize, usize, bool)> = Vec::new();
        // Leases: (holder, path, exclusive).
        let mut leases: Vec<(usize, usize, bool)> = Vec::new();
        // Who edited which path since it last started (live touches).
        let mut edited: HashSet<(usize, usize)> = HashSet::new();
        let mut notice = [false; AGENTS];
        let mut ended = [false; AGENTS];
        for i in 0..AGENTS {
            let (ev, p) = hook_payload(&id(i), 0, PATHS[0]);
            let out = h.hook(i, &hook_call(ev, p)).expect("SessionStart plans");
            prop_assert_eq!(&out.session, &id(i));
            let (v, _) = h.tool(i, "set_my_state", json!({"purpose": format!("agent {i}")}));
            prop_assert_eq!(&v["ok"], &json!(true), "{}", v);
        }
        for op in ops {
            match op {
                LifeOp::Hook { who, event, path, deliver, late, lost } => {
                    // An ended agent starts again before anything else.
                    let event = if ended[who] { 0 } else { event };
                    let (ev, payload) = hook_payload(&id(who), event, PATHS[path]);
                    let mut call = hook_call(ev, payload);
                    if deliver && event != 6 {
                        call.deliver_budget_chars = Some(4000);
                        call.deliver_deadline_ms = Some(if late { h.now } else { h.now + 1_000 });
                    }
                    let before = h.state.queued(&id(who));
                    let out = h.hook(who, &call).expect("a payload with a session_id plans");
                    prop_assert_eq!(&out.session, &id(who));
                    // Activity follows the event.
                    let act = out.effects.activity.as_ref().map(|a| serde_json::to_value(a).unwrap()["state"].clone());
                    let want = match event { 0 | 5 => Some(json!("idle")), 6 => None, _ => Some(json!("busy")) };
                    prop_assert_eq!(act, want);
                    // An edit warns exactly when a live peer holds an
                    // exclusive lease on the file or edited it, or a notice
                    // from an earlier conflict is pending.
                    if event == 2 || event == 4 {
                        let peers: Vec<usize> = (0..AGENTS).filter(|&j| j != who && !ended[j]).filter(|&j| {
                            event == 2 && (edited.contains(&(j, path)) || leases.iter().any(|&(hd, p, x)| hd == j && p == path && x))
                        }).collect();
                        prop_assert_eq!(out.answer.context.is_some(), !peers.is_empty() || notice[who], "{:?}", out.answer);
                        notice[who] = false;
                        for j in peers {
                            notice[j] = true;
                        }
                    }
                    if event == 2 || event == 3 {
                        edited.insert((who, path));
                    }
                    // The offer is the queue's prefix; the mail is still
                    // queued until the hand-over is confirmed.
                    prop_assert_eq!(h.state.queued(&id(who)), before);
                    match (&out.offer, deliver && !late && event != 6) {
                        (Some(o), true) => {
                            let want: Vec<String> = queues[who].iter().take(o.message_ids.len()).cloned().collect();
                            prop_assert_eq!(&o.message_ids, &want);
                            prop_assert_eq!(out.answer.delivered, want.len());
                            prop_assert_eq!(out.answer.remaining, queues[who].len() - want.len());
                            if !lost {
                                h.now += 1;
                                let at_ms = h.now;
                                h.commit(vec![Command::Drain { session_id: o.session_id.clone(), message_ids: o.message_ids.clone(), via: o.via.clone(), at_ms }]);
                                queues[who].drain(..want.len());
                            }
                        }
                        (None, true) => prop_assert!(queues[who].is_empty(), "mail queued but none offered: {:?}", out.answer),
                        (None, false) => prop_assert!(out.answer.deliver.is_none()),
                        (Some(_), false) => prop_assert!(false, "offered without a budget or after the deadline"),
                    }
                    if event == 6 {
                        ended[who] = true;
                        leases.retain(|l| l.0 != who);
                        edited.retain(|e| e.0 != who);
                        notice[who] = false;
                    } else if event == 0 {
                        ended[who] = false;
                    }
                }
                LifeOp::Send { from, to, delegate } => {
                    let (v, _) = h.tool(from, "send_message", json!({"target": id(to), "body": "hi", "wake": "off", "action_required": delegate}));
                    // A tool call registers its caller again after its end.
                    ended[from] = false;
                    if from == to {
                        prop_assert_eq!(&v["error"], &json!("self-send"), "{}", v);
                        continue;
                    }
                    if ended[to] {
                        // Whatever the contract says of an ended peer, the
                        // model tracks only what was queued.
                        if v["ok"] != json!(true) { continue; }
                    }
                    prop_assert_eq!(&v["ok"], &json!(true), "{}", v);
                    let mid = v["message_id"].as_str().unwrap().to_string();
                    queues[to].push_back(mid.clone());
                    if delegate {
                        open.push((mid, to, from, false));
                    }
                }
                LifeOp::Ask { from, to } => {
                    let (v, _) = h.tool(from, "ask_peer", json!({"target": id(to), "body": "q?", "wake": "off"}));
                    ended[from] = false;
                    if from == to {
                        prop_assert_eq!(&v["ok"], &json!(false), "{}", v);
                        continue;
                    }
                    if ended[to] && v["ok"] != json!(true) { continue; }
                    prop_assert_eq!(&v["ok"], &json!(true), "{}", v);
                    prop_assert!(v["request_id"].is_string(), "{}", v);
                    let mid = v["message_id"].as_str().unwrap().to_string();
                    queues[to].push_back(mid.clone());
                    open.push((mid, to, from, true));
                }
                LifeOp::Close { who, pick, block } => {
                    let mine: Vec<usize> = (0..open.len()).filter(|&k| open[k].1 == who).collect();
                    let (v, _) = h.tool(who, "my_open_work", json!({}));
                    ended[who] = false;
                    let mut listed: Vec<String> = v["open"].as_array()
                        .map(|a| a.iter().map(|o| o["message_id"].as_str().unwrap().to_string()).collect()).unwrap_or_default();
                    listed.sort();
                    let mut want: Vec<String> = mine.iter().map(|&k| open[k].0.clone()).collect();
                    want.sort();
                    prop_assert_eq!(listed, want, "{}", v);
                    let Some(&k) = mine.get(pick % mine.len().max(1)) else { continue };
                    let (mid, _, requester, ask) = open[k].clone();
                    if ended[requester] { continue; }
                    let (v, _) = if ask {
                        h.tool(who, "reply_to_message", json!({"message_id": mid, "body": "answer", "wake": "off"}))
                    } else if block {
                        h.tool(who, "block_work", json!({"message_id": mid, "reason": "stuck", "wake": "off"}))
                    } else {
                        h.tool(who, "complete_work", json!({"message_id": mid, "body": "done", "wake": "off"}))
                    };
                    prop_assert_eq!(&v["ok"], &json!(true), "{}", v);
                    let out_id = v["completion_message_id"].as_str().or_else(|| v["message_id"].as_str().filter(|_| ask)).unwrap().to_string();
                    queues[requester].push_back(out_id);
                    open.remove(k);
                    if !ask {
                        // A second close notifies nobody.
                        let (v, _) = h.tool(who, "complete_work", json!({"message_id": mid, "body": "again"}));
                        prop_assert_eq!(&v["already_closed"], &json!(true), "{}", v);
                    }
                }
                LifeOp::Claim { who, path, exclusive } => {
                    if ended[who] { continue; }
                    let (v, _) = h.tool(who, "claim_files", json!({"paths": [PATHS[path]], "exclusive": exclusive}));
                    prop_assert_eq!(&v["ok"], &json!(true), "{}", v);
                    let clash = leases.iter().any(|&(hd, p, x)| hd != who && p == path && !ended[hd] && (x || exclusive));
                    prop_assert_eq!(&v["all_granted"], &json!(!clash), "{}", v);
                    if !clash {
                        leases.retain(|&(hd, p, _)| !(hd == who && p == path));
                        leases.push((who, path, exclusive));
                    }
                }
                LifeOp::Release { who } => {
                    let (v, _) = h.tool(who, "release_files", json!({}));
                    ended[who] = false;
                    prop_assert_eq!(&v["ok"], &json!(true), "{}", v);
                    leases.retain(|l| l.0 != who);
                }
                LifeOp::Bad { who } => {
                    if ended[who] {
                        // Any call registers an ended caller again (a
                        // durable change of its own); do that first.
                        let (v, _) = h.tool(who, "set_my_state", json!({}));
                        prop_assert_eq!(&v["ok"], &json!(true), "{}", v);
                        ended[who] = false;
                    }
                    let before = h.state.clone();
                    let live_before = (h.live.activity.clone(), h.live.notices.clone());
                    // A hook payload without a session_id.
                    let call = hook_call(oxtail_proto::HookEvent::PreToolUse, json!({"cwd": "/p", "tool_name": "Bash"}));
                    prop_assert!(h.hook(who, &call).is_err());
                    for (tool, args) in [
                        ("ask_peer", json!({"target": id((who + 1) % AGENTS), "body": "q", "timeout_ms": 0})),
                        ("ask_peer", json!({"target": "nobody", "body": "q"})),
                        ("complete_work", json!({"message_id": "msg_never", "body": "x"})),
                        ("block_work", json!({"message_id": "msg_never"})),
                        ("claim_files", json!({"paths": []})),
                        ("claim_files", json!({"paths": ["src/a.rs"], "ttl_s": 0})),
                        ("release_files", json!({"paths": ["x"], "nope": true})),
                        ("send_message", json!({"target": id((who + 1) % AGENTS), "body": ""})),
                    ] {
                        let (v, _) = h.tool(who, tool, args.clone());
                        prop_assert_eq!(&v["ok"], &json!(false), "{} {}: {}", tool, args, v);
                    }
                    prop_assert_eq!(&before, &h.state, "bad input changed state");
                    prop_assert_eq!(&live_before, &(h.live.activity.clone(), h.live.notices.clone()));
                }
            }
            for (i, q) in queues.iter().enumerate() {
                prop_assert_eq!(h.state.queued(&id(i)), q.len(), "agent {}", i);
            }
        }
        // Replay through the journal encoding rebuilds the identical state.
        prop_assert_eq!(&replay(&h.journal), &h.state);
    }
}
