//! The durable side of a hook event, planned purely like a tool: which
//! session the hook speaks for, and the commands that registers, binds or
//! moves a seat to it, or ends it. The actor journals the commands and keeps
//! the ephemeral side (activity marks, file touches, the mail hand-over).
//!
//! A SessionStart that is not an explicit claim binds the seat; with source
//! `clear`, `resume`, `compact` or `fork` it moves the seat to the new
//! session, which inherits the old one's mail, ledger, work and name (the
//! old id becomes an alias). Checked by the model test
//! (`daemon/tests/model.rs`).

use crate::identity::{self, Caller, Resolution};
use crate::state::{BindingSource, Command, Scope, Seat, SeatBinding, State};
use oxtail_proto::{error_code, HookCall, HookEvent, Reply};
use serde_json::Value;

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
