//! Builds the cockpit's [`StatusSnapshot`] (schema in
//! `oxtail_proto::status`, documented in docs/status-schema.md) from the
//! durable state and the ephemeral facts. Pure: the clock and the tmux pane
//! cache are inputs. Read-only: never drains a mailbox.

use crate::config::Config;
use crate::state::{Agent, Message, ObligationState, Origin, State};
use crate::tools::Live;
use crate::wake::ActivityState;
use oxtail_proto::status::{
    self as st, AgentRow, Awaiting, CommsEntry, CommsKind, Liveness, LivenessState, PaneRow,
    StateCard, StatusSnapshot, TmuxLocation, ToolBadge, WaitEdge, WaitKind, STATUS_SCHEMA_VERSION,
};

fn location(p: &crate::tmux::Pane) -> TmuxLocation {
    TmuxLocation {
        socket: p.socket.as_ref().map(|s| s.display().to_string()),
        pane_id: p.id.clone(),
        session_name: p.session.clone(),
        window_index: p.window.parse().unwrap_or(0),
        window_name: (!p.window_name.is_empty()).then(|| p.window_name.clone()),
    }
}

fn liveness(a: &Agent, live: &Live, config: &Config, now: u64) -> Liveness {
    if let Some(t) = a.ended_ms {
        return Liveness {
            state: LivenessState::Ended,
            since_ms: Some(t),
        };
    }
    let act = live.activity.get(&a.session_id);
    let shims = live.shims.get(&a.session_id).copied().unwrap_or(0);
    let seat_alive = a
        .seat
        .as_ref()
        .and_then(|s| live.seat_alive.get(&s.key()))
        .copied();
    // The seat (the client's own process) decides once it was checked; a
    // lingering MCP connection does not keep a closed client alive.
    let alive = match seat_alive {
        Some(alive) => alive,
        None => shims > 0 || act.is_some(),
    };
    let since = act.map(|x| x.at_ms);
    if !alive {
        return Liveness {
            state: if seat_alive == Some(false) {
                LivenessState::Dead
            } else {
                LivenessState::Unknown
            },
            since_ms: since,
        };
    }
    let active = act.is_some_and(|x| {
        x.state == ActivityState::Busy && now.saturating_sub(x.at_ms) < config.wake.busy_ttl_ms
    });
    Liveness {
        state: if active {
            LivenessState::Live
        } else {
            LivenessState::Idle
        },
        since_ms: since,
    }
}

fn name_of(state: &State, id: &str) -> Option<String> {
    state.agents.get(id).and_then(|a| a.name.clone())
}

fn comms_kind(state: &State, m: &Message) -> CommsKind {
    if m.origin == Origin::Operator {
        return CommsKind::Operator;
    }
    match m.closes {
        Some(ObligationState::Done) => return CommsKind::Done,
        Some(ObligationState::Blocked) => return CommsKind::Blocked,
        _ => {}
    }
    if m.request_id.is_some() {
        return CommsKind::Ask;
    }
    if m.reply_to.is_some() {
        return CommsKind::Reply;
    }
    if m.action_required || state.obligations.contains_key(&m.message_id) {
        return CommsKind::Delegation;
    }
    CommsKind::Message
}

fn obligation(s: ObligationState) -> st::ObligationState {
    match s {
        ObligationState::Open => st::ObligationState::Open,
        ObligationState::Done => st::ObligationState::Done,
        ObligationState::Blocked => st::ObligationState::Blocked,
    }
}

fn preview(body: &str) -> String {
    body.chars().take(200).collect()
}

fn message_entry(state: &State, m: &Message) -> CommsEntry {
    CommsEntry {
        at_ms: m.enqueued_ms,
        message_id: m.message_id.clone(),
        from: m.from.clone(),
        from_name: crate::render::sender_name(state, m),
        to: m.to.clone(),
        to_name: name_of(state, &m.to),
        kind: comms_kind(state, m),
        body_preview: preview(&m.body),
        body_bytes: m.body.len() as u64,
        request_id: m.request_id.clone(),
        reply_to: m.reply_to.clone(),
        obligation: state
            .obligations
            .get(&m.message_id)
            .map(|o| obligation(o.state)),
        delivered: !state.is_queued(&m.message_id),
    }
}

fn conflict_entry(state: &State, n: &crate::files::ConflictNote) -> CommsEntry {
    CommsEntry {
        at_ms: n.at_ms,
        message_id: n.id.clone(),
        from: n.editor.clone(),
        from_name: name_of(state, &n.editor),
        to: n.peer.clone(),
        to_name: name_of(state, &n.peer),
        kind: CommsKind::Conflict,
        body_preview: preview(&n.text),
        body_bytes: n.text.len() as u64,
        request_id: None,
        reply_to: None,
        obligation: None,
        delivered: true,
    }
}

/// The snapshot of `project` (a project key), or of every project when
/// `None`; `comms_limit` newest comms entries.
pub fn build(
    state: &State,
    live: &Live,
    config: &Config,
    project: Option<&str>,
    project_root: Option<&str>,
    comms_limit: usize,
    now: u64,
) -> StatusSnapshot {
    let in_scope = |p: &str| project.is_none_or(|want| want == p);
    let work = state.work_index();
    let mut agents: Vec<AgentRow> = state
        .agents
        .values()
        .filter(|a| in_scope(&a.scope.project))
        .map(|a| {
            let act = live.activity.get(&a.session_id);
            let pane = a.seat.as_ref().and_then(|s| live.panes.get(&s.key()));
            let awaiting = work.asks_of(&a.session_id).first().map(|k| Awaiting {
                request_id: k.request_id.clone(),
                target: k.to.clone(),
                target_name: name_of(state, &k.to),
                since_ms: k.created_ms,
                kind: if live.ask_waiters.contains(&k.request_id) {
                    WaitKind::InFlight
                } else {
                    WaitKind::Pending
                },
            });
            AgentRow {
                client_session_id: a.session_id.clone(),
                name: a.name.clone().or_else(|| pane.map(|p| p.session.clone())),
                client_type: a.client_type.clone(),
                project_root: a.scope.project_root.clone(),
                liveness: liveness(a, live, config, now),
                activity: st::Activity {
                    state: match act.map(|x| x.state) {
                        Some(ActivityState::Busy) => st::ActivityState::Busy,
                        Some(ActivityState::Idle) => st::ActivityState::Idle,
                        None => st::ActivityState::Unknown,
                    },
                    since_ms: act.map(|x| x.at_ms),
                },
                // The tool of a turn in progress only: an idle agent (Stop
                // seen) is not still running its last tool.
                current_tool: act
                    .filter(|x| x.state == ActivityState::Busy)
                    .and_then(|x| {
                        x.tool.as_ref().map(|t| ToolBadge {
                            tool: t.clone(),
                            file_path: x.tool_path.clone(),
                            since_ms: x.at_ms,
                        })
                    }),
                purpose: a.purpose.as_ref().map(|p| StateCard {
                    purpose: p.clone(),
                    set_at_ms: a.purpose_at_ms,
                }),
                unread: state.queued(&a.session_id) as u64,
                open_obligations: work.open_of(&a.session_id) as u64,
                awaiting,
                worktree: Some(a.scope.worktree.clone()),
                branch: a.scope.branch.clone(),
                tmux: pane.map(location),
                wake_route: Some(crate::tools::wake_route_of(a, live).to_string()),
                host: None,
            }
        })
        .collect();
    // Agents of the same federated projects on other machines (issue 16).
    agents.extend(crate::fedstate::status_rows(state, live, project));
    agents.sort_by(|a, b| {
        (
            a.name.as_deref().unwrap_or("\u{10FFFF}"),
            &a.client_session_id,
        )
            .cmp(&(
                b.name.as_deref().unwrap_or("\u{10FFFF}"),
                &b.client_session_id,
            ))
    });
    let agent_panes: std::collections::HashSet<&str> = agents
        .iter()
        .filter_map(|a| a.tmux.as_ref().map(|t| t.pane_id.as_str()))
        .collect();
    let panes: Vec<PaneRow> = live
        .other_panes
        .iter()
        .filter(|(p, proj)| {
            !agent_panes.contains(p.id.as_str())
                && proj
                    .as_deref()
                    .is_some_and(|x| project.is_none_or(|want| want == x))
        })
        .map(|(p, _)| PaneRow {
            tmux: location(p),
            command: p.command.clone(),
            cwd: p.cwd.clone(),
        })
        .collect();
    let mut waits: Vec<WaitEdge> = state
        .asks
        .values()
        .filter(|k| {
            state
                .agents
                .get(&k.from)
                .is_some_and(|a| in_scope(&a.scope.project))
        })
        .map(|k| WaitEdge {
            from: k.from.clone(),
            from_name: name_of(state, &k.from),
            to: k.to.clone(),
            to_name: name_of(state, &k.to)
                .or_else(|| crate::fedstate::remote_name(&live.fed, &k.to)),
            request_id: k.request_id.clone(),
            since_ms: k.created_ms,
            kind: if live.ask_waiters.contains(&k.request_id) {
                WaitKind::InFlight
            } else {
                WaitKind::Pending
            },
        })
        .collect();
    waits.sort_by(|a, b| (a.since_ms, &a.request_id).cmp(&(b.since_ms, &b.request_id)));
    let scoped: Vec<&Message> = state
        .comms
        .iter()
        .filter_map(|id| state.messages.get(id))
        .filter(|m| in_scope(&m.project))
        .map(|m| &**m)
        .collect();
    let notes: Vec<&crate::files::ConflictNote> = live
        .conflict_log
        .notes
        .iter()
        .filter(|n| in_scope(&n.project))
        .collect();
    let total = scoped.len() + notes.len();
    // Messages (send order) and conflict warnings (time order), merged by
    // time; the newest `comms_limit` of both.
    let mut comms: Vec<CommsEntry> = Vec::with_capacity(comms_limit.min(total));
    let (mut mi, mut ni) = (scoped.len(), notes.len());
    while comms.len() < comms_limit && (mi > 0 || ni > 0) {
        let take_note = ni > 0 && (mi == 0 || notes[ni - 1].at_ms >= scoped[mi - 1].enqueued_ms);
        if take_note {
            ni -= 1;
            comms.push(conflict_entry(state, notes[ni]));
        } else {
            mi -= 1;
            comms.push(message_entry(state, scoped[mi]));
        }
    }
    comms.reverse();
    StatusSnapshot {
        schema_version: STATUS_SCHEMA_VERSION,
        generated_at_ms: now,
        project_root: project.and(project_root.map(str::to_string)),
        agents,
        panes,
        waits,
        comms,
        comms_total: total as u64,
        files: files_rows(state, live, config, &in_scope, now),
        federation: crate::fedstate::status(state, &live.fed),
    }
}

/// The snapshot's files section: live agents' leases and edits within the
/// touch window, newest first; `conflict` when two live agents meet on a
/// path in one work tree.
fn files_rows(
    state: &State,
    live: &Live,
    config: &Config,
    in_scope: &dyn Fn(&str) -> bool,
    now: u64,
) -> Vec<oxtail_proto::status::FileRow> {
    use crate::files::{display_name, is_live, TouchKind};
    let alive = |id: &str| state.agents.get(id).filter(|a| is_live(a, live));
    // (worktree, path, agent, what, branch, at)
    let mut rows: Vec<(String, String, String, String, Option<String>, u64)> = Vec::new();
    for l in state.leases.values() {
        if !in_scope(&l.project) || l.expires_ms <= now {
            continue;
        }
        if let Some(a) = alive(&l.holder) {
            let what = if l.exclusive { "exclusive" } else { "shared" };
            rows.push((
                l.worktree.clone(),
                l.pattern.clone(),
                display_name(a).to_string(),
                what.into(),
                l.branch.clone(),
                l.expires_ms,
            ));
        }
    }
    let projects: std::collections::BTreeSet<&str> = state
        .agents
        .values()
        .map(|a| a.scope.project.as_str())
        .filter(|p| in_scope(p))
        .collect();
    let since = now.saturating_sub(config.touch_window_ms);
    for p in projects {
        for (path, r) in live.touches.in_project(p, since) {
            if r.kind != TouchKind::Edit {
                continue;
            }
            if let Some(a) = alive(&r.session) {
                rows.push((
                    r.worktree.clone(),
                    path.to_string(),
                    display_name(a).to_string(),
                    "edited".into(),
                    r.branch.clone(),
                    r.at_ms,
                ));
            }
        }
    }
    let mut out: Vec<oxtail_proto::status::FileRow> = rows
        .iter()
        .map(
            |(wt, path, agent, what, branch, at)| oxtail_proto::status::FileRow {
                path: path.clone(),
                agent: agent.clone(),
                what: what.clone(),
                branch: branch.clone(),
                at_ms: *at,
                conflict: rows.iter().any(|(w2, p2, a2, what2, _, _)| {
                    w2 == wt
                        && a2 != agent
                        && crate::files::patterns_overlap(p2, path)
                        && (what2 != "shared" || what != "shared")
                }),
            },
        )
        .collect();
    out.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then_with(|| a.path.cmp(&b.path)));
    out.truncate(200);
    out
}
