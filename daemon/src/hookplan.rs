//! A hook event, planned purely like a tool ([`plan`]): which session the
//! hook speaks for and the commands that register, bind or move a seat to
//! it, or end it ([`plan_identity`]); its activity mark; the files it
//! touches, the conflicts they meet and the notices they leave; and the mail
//! it offers. The actor journals the commands, applies the ephemeral
//! [`HookEffects`], and holds the offered mail for the hook's connection.
//!
//! A SessionStart that is not an explicit claim binds the seat; with source
//! `clear`, `resume`, `compact` or `fork` it moves the seat to the new
//! session, which inherits the old one's mail, ledger, work and name (the
//! old id becomes an alias). Checked by the model test
//! (`daemon/tests/model.rs`).

use crate::config::Config;
use crate::files;
use crate::identity::{self, Caller, Resolution};
use crate::render;
use crate::state::{Agent, BindingSource, Command, Scope, Seat, SeatBinding, SessionId, State};
use crate::tools::{Live, Offer};
use crate::wake::{Activity, ActivityState};
use oxtail_proto::{error_code, HookAnswer, HookCall, HookEvent, Reply};
use serde_json::{json, Value};
use std::collections::HashMap;

/// What a hook event means durably.
#[derive(Debug, Clone)]
pub struct HookIdentity {
    /// The canonical session id the hook speaks for.
    pub session: String,
    /// The hook's caller (its seat, scope, cwd and client environment).
    pub caller: Caller,
    /// Registration, seat binding or move, and `EndSession` for a
    /// SessionEnd; empty when nothing durable changes.
    pub commands: Vec<Command>,
}

/// Plans the durable side of `call` at `now_ms`, with the seat and scope
/// the edge looked up.
///
/// # Errors
/// An `invalid_params` reply when the payload has no `session_id`.
pub fn plan_identity(
    state: &State,
    call: &HookCall,
    seat: Option<Seat>,
    scope: Option<Scope>,
    now: u64,
) -> Result<HookIdentity, Reply> {
    let Some(session) = call
        .payload
        .get("session_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
    else {
        return Err(Reply::error(
            error_code::INVALID_PARAMS,
            "invalid argument `session_id`: the hook payload has no session_id",
        ));
    };
    let cwd = call
        .payload
        .get("cwd")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let caller = Caller {
        seat: seat.clone(),
        scope: scope.clone().unwrap_or_else(|| Scope {
            project: format!("dir:{cwd}"),
            project_root: cwd.clone(),
            worktree: cwd.clone(),
            branch: None,
        }),
        requested_scope: None,
        shim_pid: 0,
        cwd: cwd.clone(),
        env: call.env.clone(),
        client_name: Some(call.client.clone()),
        birth_time: None,
    };
    let mut cmds = Vec::new();
    let binding = seat
        .as_ref()
        .and_then(|s| state.seats.get(&s.key()).cloned());
    let explicit = binding.as_ref().is_some_and(|b| b.source.is_explicit());
    let mut id = state.canonical_id(&session).unwrap_or(&session).to_string();
    if call.event == HookEvent::SessionStart && !explicit {
        let source = call
            .payload
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or("startup");
        let moving = matches!(source, "clear" | "resume" | "compact" | "fork");
        let old = binding.as_ref().map(|b| {
            state
                .canonical_id(&b.session_id)
                .unwrap_or(&b.session_id)
                .to_string()
        });
        let res = Resolution::known(&session, "hook");
        let mut agent_cmds = identity::ensure_agent(state, &caller, &session, &res, now);
        if let (true, Some(old)) = (moving, old) {
            if old != session && state.agents.contains_key(&old) {
                // Move the seat: the new session inherits the old one's
                // mail, ledger, work and name; the old id becomes an alias.
                let base = state.agents.get(&session).cloned().or_else(|| {
                    agent_cmds.iter().find_map(|c| match c {
                        Command::UpsertAgent { agent } => Some(agent.clone()),
                        _ => None,
                    })
                });
                if let Some(mut a) = base {
                    a.previous_ids.push(old.clone());
                    agent_cmds = vec![Command::UpsertAgent { agent: a }];
                }
            }
        }
        cmds.extend(agent_cmds);
        if let Some(s) = &seat {
            if binding.as_ref().is_none_or(|b| b.session_id != session) {
                cmds.push(Command::BindSeat {
                    seat: s.key(),
                    binding: SeatBinding {
                        session_id: session.clone(),
                        source: BindingSource::Hook,
                        at_ms: now,
                    },
                });
            }
        }
        id = session.clone();
    } else if !state.agents.contains_key(&id) {
        let res = Resolution::known(&id, "hook");
        cmds.extend(identity::ensure_agent(state, &caller, &id, &res, now));
        if let (Some(s), false) = (&seat, explicit) {
            if binding.is_none() {
                cmds.push(Command::BindSeat {
                    seat: s.key(),
                    binding: SeatBinding {
                        session_id: id.clone(),
                        source: BindingSource::Hook,
                        at_ms: now,
                    },
                });
            }
        }
    } else if state.agents.get(&id).is_some_and(|a| a.ended_ms.is_some())
        && call.event != HookEvent::SessionEnd
    {
        let res = Resolution::known(&id, "hook");
        cmds.extend(identity::ensure_agent(state, &caller, &id, &res, now));
    }
    if call.event == HookEvent::SessionEnd {
        cmds.push(Command::EndSession {
            session_id: id.clone(),
            at_ms: now,
        });
    }
    Ok(HookIdentity {
        session: id,
        caller,
        commands: cmds,
    })
}

/// What the planner reads besides the state: the clock, the tunables and the
/// ephemeral facts the actor keeps.
#[derive(Debug, Clone, Copy)]
pub struct HookCtx<'a> {
    /// Now, ms since the Unix epoch.
    pub now_ms: u64,
    /// Tunables (the touch window).
    pub config: &'a Config,
    /// Activity marks, file touches, notices, held mail, liveness.
    pub live: &'a Live,
    /// Session id → how many of its messages sit in unconfirmed hand-overs
    /// (the actor's hand-over table), so `remaining` does not count them.
    pub held_by_session: &'a HashMap<SessionId, usize>,
}

/// What a hook event produced: like a tool's `Outcome`, commands to journal
/// as one record, the answer to send once they are durable, and the mail
/// offered in it; plus the ephemeral changes the actor applies.
#[derive(Debug, Clone)]
pub struct HookOutcome {
    /// The canonical session the hook speaks for.
    pub session: SessionId,
    /// Registration, seat binding or move, `EndSession`, `TouchFiles` and
    /// the `Offer` of `offer`'s mail, in that order; may be empty.
    pub commands: Vec<Command>,
    /// The answer; its `handover` is set by the actor once it holds
    /// `offer`'s mail for the connection.
    pub answer: HookAnswer,
    /// The mail `answer.deliver` holds, to hold until the hook confirms.
    pub offer: Option<Offer>,
    /// The ephemeral side, applied by the actor before the commit.
    pub effects: HookEffects,
}

/// The ephemeral changes of a hook event, in the order the actor applies
/// them.
#[derive(Debug, Clone, Default)]
pub struct HookEffects {
    /// Trace events for `oxtail diagnose` (the actor stamps `at_ms`).
    pub traces: Vec<Value>,
    /// A Codex hook's `CODEX_HOME`, whose app-server the actor watches.
    pub watch_codex: Option<String>,
    /// The session's new activity mark; `None` removes it (SessionEnd).
    pub activity: Option<Activity>,
    /// Take the session's pending conflict notices (they are in
    /// `answer.context`).
    pub take_notices: bool,
    /// Peer → its whole pending-notice queue after this hook.
    pub notices: Vec<(SessionId, Vec<String>)>,
    /// Real conflicts (same work tree) for the comms log, with the
    /// project and the conflict mode in force.
    pub conflicts: Vec<files::Conflict>,
    /// The project the touches and conflicts belong to.
    pub project: String,
    /// The conflict mode (`warn`, `ask`, `deny`).
    pub conflict_mode: String,
    /// File touches to record: (path relative to the work tree, record).
    pub touches: Vec<(String, files::TouchRec)>,
    /// SessionEnd: forget the session's touches and notices.
    pub end: bool,
    /// The hook came after its `deliver_deadline_ms` (or its edit was
    /// denied): its mail stays queued.
    pub late: bool,
}

/// Plans hook event `call` against `state`: identity ([`plan_identity`]),
/// activity mark, file touches and conflicts ([`files`]), and the mail a
/// hook with a `deliver_budget_chars` carries (not with a denied edit, nor
/// after `deliver_deadline_ms`). Pure: the clock and the ephemeral facts
/// come in `ctx`; `seat` and `scope` are what the edge looked up.
///
/// # Errors
/// An `invalid_params` reply when the payload has no `session_id`; nothing
/// changes then.
pub fn plan(
    state: &State,
    ctx: &HookCtx<'_>,
    call: &HookCall,
    seat: Option<Seat>,
    scope: Option<Scope>,
) -> Result<HookOutcome, Reply> {
    let now = ctx.now_ms;
    let live = ctx.live;
    let HookIdentity {
        session: id,
        caller,
        commands: mut cmds,
    } = plan_identity(state, call, seat, scope, now)?;
    let mut fx = HookEffects::default();
    if call.client == "codex" {
        // Which seat a Codex hook brought (none from inside the shared
        // app-server): for `oxtail diagnose` and the e2e tests.
        fx.traces.push(json!({"event": "hook", "hook_event": call.event, "session": id, "client": call.client, "seat": caller.seat.as_ref().map(|s| s.key())}));
        // Its app-server lives under the hook's CODEX_HOME (hooks run
        // inside the app-server, with its environment).
        fx.watch_codex = oxtail_proto::paths::codex_home_of(
            call.env.get("CODEX_HOME").map(String::as_str),
            None,
        );
    }
    fx.activity = activity_mark(live.activity.get(&id), call, now);
    let mut answer = HookAnswer::default();
    let me = state.agents.get(&id).or_else(|| {
        cmds.iter().find_map(|c| match c {
            Command::UpsertAgent { agent } if agent.session_id == id => Some(agent),
            _ => None,
        })
    });
    let (denied, touch_cmd) =
        file_touches(state, ctx, call, &id, me, &caller, &mut answer, &mut fx);
    cmds.extend(touch_cmd);
    fx.end = call.event == HookEvent::SessionEnd;
    // Deliver (not with a denied edit: the mail would go with a refusal).
    let in_time = call.deliver_deadline_ms.is_none_or(|d| now < d) && !denied;
    fx.late = !in_time;
    let mut offer = None;
    if let (Some(budget), true) = (call.deliver_budget_chars, in_time) {
        let (queue, total) = deliverable(state, ctx, &id, render::max_fitting(budget));
        let f = render::fit_prefix(state, &queue, total, budget);
        answer.remaining = f.remaining;
        if !f.ids.is_empty() {
            cmds.push(Command::Offer {
                session_id: id.clone(),
                message_ids: f.ids.clone(),
            });
            answer.delivered = f.ids.len();
            answer.deliver = Some(f.text);
            offer = Some(Offer {
                session_id: id.clone(),
                message_ids: f.ids,
                via: via(call.event).to_string(),
            });
        }
    }
    Ok(HookOutcome {
        session: id,
        commands: cmds,
        answer,
        offer,
        effects: fx,
    })
}

/// The receipt's delivery path for mail a hook of `event` carries.
fn via(event: HookEvent) -> &'static str {
    match event {
        HookEvent::PreToolUse => "pre_tool_use",
        HookEvent::Stop => "stop",
        HookEvent::UserPromptSubmit => "user_prompt_submit",
        HookEvent::SessionStart => "session_start",
        HookEvent::PostToolUse => "post_tool_use",
        HookEvent::SessionEnd => "session_end",
    }
}

/// The session's activity mark after `call` (`prev`: the one before);
/// `None` at SessionEnd. A subagent's PreToolUse and every PostToolUse keep
/// the tool the session's own last PreToolUse named.
fn activity_mark(prev: Option<&Activity>, call: &HookCall, now: u64) -> Option<Activity> {
    let tool = call
        .payload
        .get("tool_name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let tool_path = call
        .payload
        .pointer("/tool_input/file_path")
        .or_else(|| call.payload.pointer("/tool_input/path"))
        .or_else(|| call.payload.pointer("/tool_input/notebook_path"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let subagent = call.payload.get("agent_id").is_some_and(|v| !v.is_null());
    match call.event {
        HookEvent::UserPromptSubmit | HookEvent::SessionStart => {
            let busy = call.event == HookEvent::UserPromptSubmit;
            Some(Activity {
                state: if busy {
                    ActivityState::Busy
                } else {
                    ActivityState::Idle
                },
                at_ms: now,
                tool: if busy {
                    None
                } else {
                    prev.and_then(|a| a.tool.clone())
                },
                tool_path: None,
            })
        }
        HookEvent::PreToolUse | HookEvent::PostToolUse => {
            let (t, p) = if call.event == HookEvent::PreToolUse && !subagent {
                (tool, tool_path)
            } else {
                (
                    prev.and_then(|a| a.tool.clone()).or(tool),
                    prev.and_then(|a| a.tool_path.clone()),
                )
            };
            Some(Activity {
                state: ActivityState::Busy,
                at_ms: now,
                tool: t,
                tool_path: p,
            })
        }
        HookEvent::Stop => Some(Activity {
            state: ActivityState::Idle,
            at_ms: now,
            tool: prev.and_then(|a| a.tool.clone()),
            tool_path: prev.and_then(|a| a.tool_path.clone()),
        }),
        HookEvent::SessionEnd => None,
    }
}

/// The files a Pre/PostToolUse touches ([`files::touched_paths`]): for a
/// PreToolUse edit that meets a live peer, the warning goes in
/// `answer.context` (with `answer.decision` under `OXTAIL_CONFLICT=ask|deny`)
/// and a notice is queued for the peer's next PreToolUse; each real
/// conflict goes to the comms log ([`files::ConflictLog`]). Pending notices
/// for this agent go into `answer.context` too. Returns whether the edit is
/// denied (then it is not recorded as a touch), and the `TouchFiles` a
/// PostToolUse edit journals when [`files::edit_needs_journal`] says so.
#[allow(clippy::too_many_arguments)]
fn file_touches(
    state: &State,
    ctx: &HookCtx<'_>,
    call: &HookCall,
    id: &str,
    me: Option<&Agent>,
    caller: &Caller,
    answer: &mut HookAnswer,
    fx: &mut HookEffects,
) -> (bool, Option<Command>) {
    let pre = call.event == HookEvent::PreToolUse;
    if !pre && call.event != HookEvent::PostToolUse {
        return (false, None);
    }
    let (live, now) = (ctx.live, ctx.now_ms);
    let mut context: Vec<String> = Vec::new();
    let subagent = call.payload.get("agent_id").is_some_and(|v| !v.is_null());
    if pre && !subagent {
        fx.take_notices = true;
        if let Some(n) = live.notices.get(id) {
            context.extend(n.iter().cloned());
        }
    }
    // The peers' notice queues as this hook leaves them.
    let mut notices: Vec<(SessionId, Vec<String>)> = Vec::new();
    let tool = call
        .payload
        .get("tool_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let input = call.payload.get("tool_input").unwrap_or(&Value::Null);
    let touched = files::touched_paths(tool, input);
    let scope = &caller.scope;
    let window = ctx.config.touch_window_ms;
    let site = files::EditSite {
        me: id,
        project: &scope.project,
        worktree: &scope.worktree,
    };
    let mut rels = Vec::new();
    let mut met: Vec<files::Conflict> = Vec::new();
    for (kind, raw) in touched {
        let Some(rel) = files::relative_to(&caller.cwd, &scope.worktree, &raw) else {
            continue;
        };
        if pre && kind == files::TouchKind::Edit && call.conflict_mode.as_deref() != Some("off") {
            let conflicts =
                files::conflicts_for_edit(state, live, &live.touches, site, &rel, now, window);
            if !conflicts.is_empty() {
                let w = files::render_warning(state, &conflicts, now);
                if !w.is_empty() && !context.contains(&w) {
                    context.push(w);
                }
                for c in conflicts.iter().filter(|c| c.same_worktree) {
                    met.push(c.clone());
                    if let Some(me) = me {
                        let n = files::render_notice(me, c, now);
                        let i = match notices.iter().position(|(p, _)| *p == c.peer) {
                            Some(i) => i,
                            None => {
                                let q = if fx.take_notices && c.peer == id {
                                    Vec::new()
                                } else {
                                    live.notices.get(&c.peer).cloned().unwrap_or_default()
                                };
                                notices.push((c.peer.clone(), q));
                                notices.len() - 1
                            }
                        };
                        let q = &mut notices[i].1;
                        if !q.contains(&n) && q.len() < 20 {
                            q.push(n);
                        }
                    }
                }
                fx.traces
                    .push(json!({"event": "file_conflict", "session": id, "path": rel,
                    "peers": conflicts.iter().map(|c| c.peer.clone()).collect::<Vec<_>>()}));
            }
        }
        rels.push((kind, rel));
    }
    fx.notices = notices;
    let real = !met.is_empty();
    let mode = call.conflict_mode.as_deref().unwrap_or("warn");
    let denied = pre && real && mode == "deny";
    if real && matches!(mode, "ask" | "deny") {
        answer.decision = Some(mode.to_string());
    }
    fx.conflicts = met;
    fx.project = scope.project.clone();
    fx.conflict_mode = mode.to_string();
    let mut cmd = None;
    if !pre {
        let paths: Vec<String> = rels
            .iter()
            .filter(|(k, rel)| {
                *k == files::TouchKind::Edit && files::edit_needs_journal(state, id, site, rel, now)
            })
            .map(|(_, rel)| rel.clone())
            .collect();
        if !paths.is_empty() {
            cmd = Some(Command::TouchFiles {
                session_id: id.to_string(),
                project: scope.project.clone(),
                worktree: scope.worktree.clone(),
                branch: scope.branch.clone(),
                paths,
                at_ms: now,
            });
        }
    }
    if !denied {
        fx.touches = rels
            .into_iter()
            .map(|(kind, rel)| {
                let rec = files::TouchRec {
                    session: id.to_string(),
                    worktree: scope.worktree.clone(),
                    branch: scope.branch.clone(),
                    kind,
                    at_ms: now,
                };
                (rel, rec)
            })
            .collect();
    }
    if !context.is_empty() {
        answer.context = Some(context.join("\n"));
    }
    (denied, cmd)
}

/// Up to `limit` of `session`'s queued messages that no unconfirmed
/// hand-over holds, in queue order, and how many are queued outside
/// hand-overs.
fn deliverable(
    state: &State,
    ctx: &HookCtx<'_>,
    session: &str,
    limit: usize,
) -> (Vec<String>, usize) {
    let Some(q) = state.mailboxes.get(session) else {
        return (Vec::new(), 0);
    };
    let held = ctx.held_by_session.get(session).copied().unwrap_or(0);
    let prefix = q
        .iter()
        .filter(|id| !ctx.live.held.contains(*id))
        .take(limit)
        .cloned()
        .collect();
    (prefix, q.len().saturating_sub(held))
}
