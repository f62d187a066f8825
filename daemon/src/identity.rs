//! Which agent is calling: identity resolution (SPEC §3), pure.
//!
//! Order, first that answers:
//! 1. an explicit `claim_session` / `register_my_session` made by this shim
//!    or its client session (monotonic: only another explicit claim replaces
//!    it). A claim is stored under [`claim_key`]: a shim that carries its own
//!    `CLAUDE_CODE_SESSION_ID`/`CODEX_THREAD_ID` claims for itself (and for
//!    shims with that same id) only; a shim without one claims for its seat,
//!    which every other shim of that client without an id of its own
//!    follows. A shim with its own id never takes another shim's claim;
//! 2. the call's `_meta` (Codex 0.169: `threadId`, `sessionId`,
//!    `x-codex-turn-metadata.thread_id`) — per call, since one Codex
//!    app-server hosts the MCP servers of several threads;
//! 3. the shim's environment: `CLAUDE_CODE_SESSION_ID` (Claude Code 2.1.329
//!    passes it to MCP servers), `CODEX_THREAD_ID` (older Codex);
//! 4. the seat's binding from a hook or a sibling shim (every shim of one
//!    client process is one agent).
//!
//! When nothing answers, [`Resolution::next_step`] tells the agent how to
//! claim.

use crate::state::{
    Agent, BindingSource, Command, NameSource, Scope, Seat, SeatBinding, SessionId, State,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Who is calling, as the I/O layer observed it.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The client process hosting the shim (its parent), when known.
    pub seat: Option<Seat>,
    /// The shim's project scope.
    pub scope: Scope,
    /// For `list_project_sessions {project_root}`: that root's scope, computed
    /// by the I/O layer (None when the root could not be read).
    pub requested_scope: Option<Scope>,
    /// The shim's pid (0 when unknown): the contract's `server_pid`.
    pub shim_pid: u32,
    /// The shim's working directory.
    pub cwd: String,
    /// Client-identifying environment of the shim.
    pub env: BTreeMap<String, String>,
    /// MCP `clientInfo.name`, once the client initialized.
    pub client_name: Option<String>,
    /// The birth-time fallback's finding, looked up at the edge: the one
    /// transcript created in the project's transcript folder shortly after
    /// the shim started (`Ok(id)`), or why there is none (`Err(reason)`).
    pub birth_time: Option<Result<String, String>>,
}

/// The outcome of identity resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The caller's session id, if resolved (after following aliases).
    pub session_id: Option<SessionId>,
    /// The strategy that answered: `claim`, `register`, `codex_meta`,
    /// `env:CLAUDE_CODE_SESSION_ID`, `env:CODEX_THREAD_ID`, `seat`.
    pub strategy: Option<&'static str>,
    /// One entry per strategy: `{strategy, result, detail}`.
    pub diagnosis: Vec<Value>,
    /// When unresolved: what the agent should do.
    pub next_step: Option<String>,
}

impl Resolution {
    /// A resolution already known from an authoritative source (a claim, a
    /// hook event), with no diagnosis to show.
    pub fn known(session_id: &str, strategy: &'static str) -> Resolution {
        Resolution {
            session_id: Some(session_id.to_string()),
            strategy: Some(strategy),
            diagnosis: Vec::new(),
            next_step: None,
        }
    }
}

/// The session id a shim carries in its own environment
/// (`CLAUDE_CODE_SESSION_ID`, else `CODEX_THREAD_ID`), if any.
pub fn own_env_id(caller: &Caller) -> Option<&str> {
    ["CLAUDE_CODE_SESSION_ID", "CODEX_THREAD_ID"]
        .iter()
        .find_map(|k| {
            caller
                .env
                .get(*k)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        })
}

/// Where a claim of `caller` (hosted by `seat`) is kept in `State::seats`:
/// `"<pid>:<start_time>#<own id>"` for a shim that carries its own session
/// id (the claim is that shim's and its client session's, never its
/// siblings'), else the seat's own key (every shim of that client without
/// an id of its own follows it).
pub fn claim_key(seat: &Seat, caller: &Caller) -> String {
    match own_env_id(caller) {
        Some(id) => format!("{}#{id}", seat.key()),
        None => seat.key(),
    }
}

/// Session id from a tools/call `_meta` object (Codex 0.169.0 sends
/// `threadId` = `sessionId` = the hooks' `session_id`, and
/// `x-codex-turn-metadata.thread_id`).
pub fn meta_session_id(meta: Option<&Value>) -> Option<String> {
    let meta = meta?;
    fn pick(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    pick(meta.get("threadId"))
        .or_else(|| pick(meta.get("sessionId")))
        .or_else(|| pick(meta.pointer("/x-codex-turn-metadata/thread_id")))
        .map(str::to_string)
}

/// Resolves the caller's identity, with the per-strategy diagnosis.
pub fn resolve(state: &State, caller: &Caller, meta: Option<&Value>) -> Resolution {
    resolve_with(state, caller, meta, true)
}

/// As [`resolve`], without building the diagnosis (the hot path of every
/// tool call; only `get_my_session` and unresolved callers show it).
pub fn resolve_quick(state: &State, caller: &Caller, meta: Option<&Value>) -> Resolution {
    resolve_with(state, caller, meta, false)
}

fn resolve_with(
    state: &State,
    caller: &Caller,
    meta: Option<&Value>,
    diagnose: bool,
) -> Resolution {
    let mut diagnosis = Vec::new();
    let mut found: Option<(String, &'static str)> = None;
    let mut note = |strategy: &str, result: &str, detail: Value| {
        if diagnose {
            diagnosis.push(json!({"strategy": strategy, "result": result, "detail": detail}));
        }
    };
    let binding = caller.seat.as_ref().and_then(|s| state.seats.get(&s.key()));
    let claimed = caller
        .seat
        .as_ref()
        .and_then(|s| state.seats.get(&claim_key(s, caller)))
        .filter(|b| b.source.is_explicit());

    // 1. an explicit claim of this shim (or its client session)
    match (claimed, binding) {
        (Some(b), _) => {
            let strategy = if b.source == BindingSource::Claim {
                "claim"
            } else {
                "register"
            };
            note(strategy, "resolved", json!({"session_id": b.session_id}));
            found = Some((b.session_id.clone(), strategy));
        }
        (None, Some(b)) if b.source.is_explicit() => note(
            "claim",
            "not_applied",
            json!({
                "session_id": b.session_id,
                "why": "another shim of this client process claimed it; this shim carries its own session id"
            }),
        ),
        _ => note(
            "claim",
            "none",
            json!("no explicit claim for this shim or its client process"),
        ),
    }
    // 2. Codex per-call _meta
    let meta_id = meta_session_id(meta);
    match (&found, &meta_id) {
        (None, Some(id)) => {
            note("codex_meta", "resolved", json!({"session_id": id}));
            found = Some((id.clone(), "codex_meta"));
        }
        (Some(_), Some(id)) => note("codex_meta", "shadowed", json!({"session_id": id})),
        (_, None) => note(
            "codex_meta",
            "none",
            json!("the call carried no threadId/sessionId"),
        ),
    }
    // 3. environment
    for var in ["CLAUDE_CODE_SESSION_ID", "CODEX_THREAD_ID"] {
        let strategy = if var == "CLAUDE_CODE_SESSION_ID" {
            "env:CLAUDE_CODE_SESSION_ID"
        } else {
            "env:CODEX_THREAD_ID"
        };
        match (caller.env.get(var).filter(|v| !v.is_empty()), &found) {
            (Some(v), None) => {
                note(strategy, "resolved", json!({"session_id": v}));
                found = Some((v.clone(), strategy));
            }
            (Some(v), Some(_)) => note(strategy, "shadowed", json!({"session_id": v})),
            (None, _) => note(strategy, "none", json!(format!("{var} is not set"))),
        }
    }
    // 4. the seat's automatic binding (hook or sibling shim)
    match (binding, &found) {
        (Some(b), None) if !b.source.is_explicit() => {
            note(
                "seat",
                "resolved",
                json!({"session_id": b.session_id, "source": b.source}),
            );
            found = Some((b.session_id.clone(), "seat"));
        }
        (Some(b), Some(_)) if !b.source.is_explicit() => {
            note("seat", "shadowed", json!({"session_id": b.session_id}))
        }
        _ => note(
            "seat",
            "none",
            json!("no hook or sibling has bound this client process"),
        ),
    }
    // 5. birth time: exactly one transcript born just after the shim started.
    match (&caller.birth_time, &found) {
        (Some(Ok(id)), None) => {
            note("birth_time", "resolved", json!({"session_id": id}));
            found = Some((id.clone(), "birth_time"));
        }
        (Some(Ok(id)), Some(_)) => note("birth_time", "shadowed", json!({"session_id": id})),
        (Some(Err(why)), _) => note("birth_time", "abstained", json!(why)),
        (None, _) => note("birth_time", "none", json!("not attempted")),
    }
    let next_step = if found.is_none() {
        Some(next_step(caller))
    } else {
        None
    };
    let session_id = found
        .as_ref()
        .map(|(id, _)| state.canonical_id(id).unwrap_or(id).to_string());
    Resolution {
        session_id,
        strategy: found.map(|(_, s)| s),
        diagnosis,
        next_step,
    }
}

fn next_step(caller: &Caller) -> String {
    match client_type(caller, None) {
        "codex" => "Codex: your thread id is in the rollout file name under $CODEX_HOME/sessions (or run `echo $CODEX_THREAD_ID`); then call claim_session({session_id: \"<that id>\"}).".into(),
        _ => "Run `echo $CLAUDE_CODE_SESSION_ID` in your shell tool, then call claim_session({session_id: \"<that id>\"}).".into(),
    }
}

/// The birth-time fallback's rule (pure; the edge lists the files with
/// [`crate::transcript::created_transcripts`]): among `files` (session id,
/// creation time in seconds since the epoch) of the client's project folder
/// `dir`, the one created between `started_s - 5` and `started_s + 300`.
///
/// # Errors
/// A reason when there is no such file, or more than one (ambiguity
/// abstains).
pub fn birth_time_pick(
    files: &[(String, u64)],
    started_s: u64,
    dir: &str,
) -> Result<String, String> {
    let mut hits: Vec<&String> = files
        .iter()
        .filter(|(_, secs)| secs + 5 >= started_s && *secs <= started_s + 300)
        .map(|(id, _)| id)
        .collect();
    match hits.len() {
        1 => Ok(hits.remove(0).clone()),
        0 => Err(format!(
            "no transcript created in {dir} since the shim started"
        )),
        n => Err(format!(
            "{n} transcripts were created in {dir} since the shim started; ambiguous, so abstaining"
        )),
    }
}

/// The client type: `claude-code`, `codex`, `gemini`, `opencode` or `other`,
/// from MCP `clientInfo.name` (Claude Code 2.1.329: `claude-code`; Codex
/// 0.169.0: `codex-mcp-client`), then the environment (`CLAUDECODE`,
/// `CODEX_*`, `GEMINI_CLI`, `OPENCODE`), then the call's `_meta`.
pub fn client_type(caller: &Caller, meta: Option<&Value>) -> &'static str {
    if let Some(n) = caller.client_name.as_deref().map(str::to_ascii_lowercase) {
        if n.contains("claude") {
            return "claude-code";
        }
        if n.contains("codex") {
            return "codex";
        }
        if n.contains("gemini") {
            return "gemini";
        }
        if n.contains("opencode") {
            return "opencode";
        }
    }
    let env = &caller.env;
    if env.contains_key("CLAUDECODE") || env.contains_key("CLAUDE_CODE_SESSION_ID") {
        return "claude-code";
    }
    if env.keys().any(|k| k.starts_with("CODEX_")) {
        return "codex";
    }
    if env.contains_key("GEMINI_CLI") {
        return "gemini";
    }
    if env.contains_key("OPENCODE") {
        return "opencode";
    }
    if meta.is_some_and(|m| m.get("x-codex-turn-metadata").is_some()) {
        return "codex";
    }
    "other"
}

/// Commands that create or refresh the caller's agent row and seat binding.
/// Empty when nothing changed, so a steady caller costs no journal writes.
pub fn ensure_agent(
    state: &State,
    caller: &Caller,
    id: &str,
    res: &Resolution,
    now_ms: u64,
) -> Vec<Command> {
    let mut out = Vec::new();
    let client_type = client_type(caller, None).to_string();
    let tmux_socket = caller
        .env
        .get("TMUX")
        .and_then(|t| crate::tmux::socket_from_env(t))
        .map(|p| p.display().to_string());
    let launch_name = launch_name(caller);
    match state.agents.get(id) {
        None => out.push(Command::UpsertAgent {
            agent: Agent {
                session_id: id.to_string(),
                client_type,
                name: None,
                name_source: None,
                launch_name,
                tmux_session: None,
                purpose: None,
                purpose_at_ms: None,
                scope: caller.scope.clone(),
                cwd: caller.cwd.clone(),
                seat: caller.seat.clone(),
                resolved_by: res.strategy.unwrap_or("unknown").to_string(),
                first_seen_ms: now_ms,
                previous_ids: Vec::new(),
                ended_ms: None,
                tmux_socket,
            },
        }),
        Some(a) => {
            let refreshed_type = if client_type == "other" {
                a.client_type.clone()
            } else {
                client_type
            };
            // A Codex call from inside the shared app-server has no seat of
            // its own: keep the TUI seat bound by the app-server route.
            let keep_seat = caller.seat.is_none() && refreshed_type == "codex";
            let seat = if keep_seat {
                a.seat.clone()
            } else {
                caller.seat.clone()
            };
            if a.scope != caller.scope
                || a.cwd != caller.cwd
                || a.seat != seat
                || a.client_type != refreshed_type
                || a.ended_ms.is_some()
                || (tmux_socket.is_some() && a.tmux_socket != tmux_socket)
                || (launch_name.is_some() && a.launch_name != launch_name)
            {
                let mut agent = a.clone();
                agent.scope = caller.scope.clone();
                agent.cwd = caller.cwd.clone();
                agent.seat = seat;
                agent.client_type = refreshed_type;
                agent.ended_ms = None;
                if tmux_socket.is_some() {
                    agent.tmux_socket = tmux_socket;
                }
                if launch_name.is_some() {
                    agent.launch_name = launch_name;
                }
                out.push(Command::UpsertAgent { agent });
            }
        }
    }
    // Bind the seat so sibling shims of the same client resolve to this
    // agent. Per-call Codex ids are not bound: one app-server seat hosts many
    // threads. Explicit claims are never overridden here.
    if let (Some(seat), Some(strategy)) = (&caller.seat, res.strategy) {
        if strategy.starts_with("env:") || strategy == "birth_time" {
            // First binding wins: a later env-detected id never moves a seat
            // (hooks and claims do that).
            if !state.seats.contains_key(&seat.key()) {
                out.push(Command::BindSeat {
                    seat: seat.key(),
                    binding: SeatBinding {
                        session_id: id.to_string(),
                        source: BindingSource::Detected,
                        at_ms: now_ms,
                    },
                });
            }
        }
    }
    out
}

/// True for a name an agent may carry: 1-64 letters, digits, `-`, `_`, `.`
/// (and `:` only inside names oxtail derives from tmux, `session:window`).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= 64
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The name given at launch: `OXTAIL_NAME` in the client's environment (the
/// shim's or the hook's), when it is a valid name.
pub fn launch_name(caller: &Caller) -> Option<String> {
    caller
        .env
        .get("OXTAIL_NAME")
        .map(|n| n.trim())
        .filter(|n| valid_name(n))
        .map(str::to_string)
}

/// The stem of automatic names: `claude`, `codex`, `gemini`, `opencode`, else
/// `agent`.
fn client_stem(client_type: &str) -> &'static str {
    match client_type {
        "claude-code" => "claude",
        "codex" => "codex",
        "gemini" => "gemini",
        "opencode" => "opencode",
        _ => "agent",
    }
}

/// What [`name_agents`] needs to know beyond the durable state: each live
/// seat's verified pane (from the process tree), and which agents are
/// alive. Both are ephemeral facts gathered by the I/O layer.
pub struct NamingFacts<'a> {
    /// Seat key → the tmux pane the process tree says hosts it.
    pub panes: &'a std::collections::HashMap<String, crate::tmux::Pane>,
    /// Whether an agent still holds its name: ended or dead agents do not
    /// keep a live agent from taking it.
    pub holds: &'a dyn Fn(&Agent) -> bool,
}

/// The naming pass (pure): the [`Command::Name`]s that give every agent a
/// name unique among its project's live agents, leaving alone names that are
/// already right. Rules, strongest source first:
///
/// 1. a name chosen with `set_my_state {name}` is never changed here;
/// 2. `OXTAIL_NAME` from the client's environment;
/// 3. the fleet's name for the agent's pane (`@oxtail_agent`);
/// 4. the tmux session of its verified pane; when one tmux session hosts
///    several live agents, `session:window`, or `session:window.pane` when
///    they share a window too;
/// 5. otherwise the name it has, or `<client>-<n>` (`claude-1`), the lowest
///    free `n`.
///
/// A name another live agent of the project holds gets a suffix (`api-2`),
/// never shared. Agents are named oldest first, so an older agent keeps a
/// contested name.
pub fn name_agents(state: &State, facts: &NamingFacts<'_>) -> Vec<Command> {
    use std::collections::{BTreeSet, HashMap};
    let pane_of = |a: &Agent| a.seat.as_ref().and_then(|s| facts.panes.get(&s.key()));
    // Live agents per tmux (socket, session) and per (socket, session, window).
    let mut per_session: HashMap<(Option<&std::path::Path>, &str), usize> = HashMap::new();
    let mut per_window: HashMap<(Option<&std::path::Path>, &str, &str), usize> = HashMap::new();
    for a in state.agents.values().filter(|a| (facts.holds)(a)) {
        if let Some(p) = pane_of(a) {
            *per_session
                .entry((p.socket.as_deref(), p.session.as_str()))
                .or_default() += 1;
            *per_window
                .entry((p.socket.as_deref(), p.session.as_str(), p.window.as_str()))
                .or_default() += 1;
        }
    }
    // Names held per project: chosen names first (never moved here).
    let mut taken: HashMap<&str, BTreeSet<String>> = HashMap::new();
    let mut order: Vec<&Agent> = Vec::new();
    let mut out = Vec::new();
    for a in state.agents.values() {
        let holds = (facts.holds)(a);
        if a.name_origin() == Some(NameSource::Chosen) {
            if holds {
                if let Some(n) = &a.name {
                    taken.entry(&a.scope.project).or_default().insert(n.clone());
                    // Only the remembered tmux session may change.
                    let session = pane_of(a).map(|p| p.session.clone());
                    if session.is_some() && a.tmux_session != session {
                        out.push(Command::Name {
                            session_id: a.session_id.clone(),
                            name: n.clone(),
                            source: NameSource::Chosen,
                            tmux_session: session,
                        });
                    }
                }
            }
        } else {
            order.push(a);
        }
    }
    order.sort_by(|a, b| (a.first_seen_ms, &a.session_id).cmp(&(b.first_seen_ms, &b.session_id)));
    for a in order {
        let holds = (facts.holds)(a);
        if !holds && a.name.is_some() {
            // An ended or dead agent keeps the name it had.
            continue;
        }
        let pane = pane_of(a).filter(|_| holds);
        let tmux_session = pane.map(|p| p.session.clone());
        let wanted: Option<(String, NameSource)> = if let Some(n) = &a.launch_name {
            Some((n.clone(), NameSource::Launch))
        } else if let Some(l) = pane
            .and_then(|p| p.label.as_ref())
            .filter(|l| valid_name(l))
        {
            Some((l.clone(), NameSource::Fleet))
        } else if let Some(p) = pane {
            let key = (p.socket.as_deref(), p.session.as_str());
            let n = if per_session.get(&key).copied().unwrap_or(0) <= 1 {
                p.session.clone()
            } else if per_window
                .get(&(key.0, key.1, p.window.as_str()))
                .copied()
                .unwrap_or(0)
                <= 1
            {
                format!("{}:{}", p.session, p.window)
            } else {
                format!("{}:{}.{}", p.session, p.window, p.index)
            };
            Some((n, NameSource::Tmux))
        } else {
            None
        };
        let held = taken.entry(&a.scope.project).or_default();
        let current = a.name.clone().zip(a.name_origin());
        let pick = match (wanted, current) {
            (Some((base, source)), current) => {
                // Keep `base` or the suffixed form it already has.
                let keep = current.as_ref().filter(|(n, s)| {
                    *s == source
                        && (n == &base
                            || n.strip_prefix(base.as_str())
                                .and_then(|r| r.strip_prefix('-'))
                                .is_some_and(|k| k.parse::<u32>().is_ok_and(|k| k >= 2)))
                        && !held.contains(n)
                });
                match keep {
                    Some((n, _)) => (n.clone(), source),
                    None => {
                        let n = (1u32..)
                            .map(|k| {
                                if k == 1 {
                                    base.clone()
                                } else {
                                    format!("{base}-{k}")
                                }
                            })
                            .find(|n| !held.contains(n))
                            .unwrap_or(base);
                        (n, source)
                    }
                }
            }
            // Kept, unless it is an automatic name of another client type
            // (the type was learned after the name was given).
            (None, Some((n, s)))
                if !held.contains(&n)
                    && (s != NameSource::Auto
                        || n.starts_with(&format!("{}-", client_stem(&a.client_type)))) =>
            {
                (n, s)
            }
            (None, _) => {
                let stem = client_stem(&a.client_type);
                let n = (1u32..)
                    .map(|k| format!("{stem}-{k}"))
                    .find(|n| !held.contains(n))
                    .unwrap_or_else(|| stem.to_string());
                (n, NameSource::Auto)
            }
        };
        if holds {
            held.insert(pick.0.clone());
        }
        let changed = a.name.as_deref() != Some(pick.0.as_str())
            || a.name_origin() != Some(pick.1)
            || (tmux_session.is_some() && a.tmux_session != tmux_session);
        if changed {
            out.push(Command::Name {
                session_id: a.session_id.clone(),
                name: pick.0,
                source: pick.1,
                tmux_session,
            });
        }
    }
    out
}

/// Where the caller's transcript lives, by client convention:
/// Claude Code: `<CLAUDE_CONFIG_DIR or ~/.claude>/projects/<cwd, every
/// non-alphanumeric as '-'>/<session>.jsonl` ([`crate::transcript::claude_transcript_path`]).
/// Codex: `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*-<thread>.jsonl` (a glob;
/// found by the transcript reader).
pub fn transcript_path(caller: &Caller, session_id: &str, home: Option<&str>) -> Option<String> {
    match client_type(caller, None) {
        "claude-code" => {
            let dir = crate::transcript::claude_dir(
                caller.env.get("CLAUDE_CONFIG_DIR").map(String::as_str),
                std::path::Path::new(home?),
            );
            crate::transcript::claude_transcript_path(
                &dir,
                std::path::Path::new(&caller.cwd),
                session_id,
            )
            .map(|p| p.display().to_string())
        }
        "codex" => {
            let codex_home = caller
                .env
                .get("CODEX_HOME")
                .cloned()
                .or_else(|| home.map(|h| format!("{h}/.codex")))?;
            Some(format!(
                "{codex_home}/sessions/*/*/*/rollout-*-{session_id}.jsonl"
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birth_time_pick_window_and_ambiguity() {
        let f = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|(a, b)| (a.to_string(), *b)).collect()
        };
        let start = 1_000_000;
        assert_eq!(
            birth_time_pick(&f(&[("a", start - 6), ("b", start - 5)]), start, "d"),
            Ok("b".into())
        );
        assert_eq!(
            birth_time_pick(&f(&[("a", start + 300), ("b", start + 301)]), start, "d"),
            Ok("a".into())
        );
        assert!(birth_time_pick(&f(&[]), start, "d")
            .unwrap_err()
            .contains("no transcript"));
        assert!(
            birth_time_pick(&f(&[("a", start), ("b", start + 1)]), start, "d")
                .unwrap_err()
                .contains("ambiguous")
        );
    }

    fn fixture(path: &str) -> Value {
        let p = format!(
            "{}/../../shared/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}")))
            .unwrap()
    }

    #[test]
    fn codex_meta_from_real_fixture() {
        let call = fixture("codex-0.169.0/mcp_call.json");
        let meta = call.pointer("/params/_meta");
        assert_eq!(
            meta_session_id(meta).as_deref(),
            Some("01a1fc7c-f019-7f70-bd45-c4e66d586f46")
        );
        // Only the nested turn metadata: still found.
        let nested = json!({"x-codex-turn-metadata": {"thread_id": "t-1"}});
        assert_eq!(meta_session_id(Some(&nested)).as_deref(), Some("t-1"));
        // Claude Code's _meta carries no session id.
        let cc = fixture("claude-code-2.1.329/mcp_call.json");
        assert_eq!(meta_session_id(cc.pointer("/params/_meta")), None);
    }

    #[test]
    fn client_type_from_real_handshakes() {
        for (path, want) in [
            ("claude-code-2.1.329/mcp_init.json", "claude-code"),
            ("codex-0.169.0/mcp_init.json", "codex"),
        ] {
            let init = fixture(path);
            let caller = Caller {
                client_name: init
                    .pointer("/params/clientInfo/name")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                ..Caller::default()
            };
            assert_eq!(client_type(&caller, None), want, "{path}");
        }
        let env = fixture("claude-code-2.1.329/mcp_env.json");
        let caller = Caller {
            env: serde_json::from_value(env["env"].clone()).unwrap(),
            ..Caller::default()
        };
        assert_eq!(client_type(&caller, None), "claude-code");
        assert_eq!(client_type(&Caller::default(), None), "other");
    }

    #[test]
    fn env_session_id_from_real_fixture_and_claim_wins() {
        let env = fixture("claude-code-2.1.329/mcp_env.json");
        let seat = Seat {
            pid: 19923,
            start_time: 5,
        };
        let caller = Caller {
            env: serde_json::from_value(env["env"].clone()).unwrap(),
            seat: Some(seat.clone()),
            ..Caller::default()
        };
        let mut state = State::default();
        let r = resolve(&state, &caller, None);
        assert_eq!(
            r.session_id.as_deref(),
            Some("2c180f22-1e84-4821-9f7b-88a16c43e3e2")
        );
        assert_eq!(r.strategy, Some("env:CLAUDE_CODE_SESSION_ID"));
        // A claim of an id-less sibling shim (on the seat) does not apply to
        // a shim that carries its own id...
        state.seats.insert(
            seat.key(),
            SeatBinding {
                session_id: "sibling-claim".into(),
                source: BindingSource::Claim,
                at_ms: 1,
            },
        );
        let r = resolve(&state, &caller, None);
        assert_eq!(
            r.session_id.as_deref(),
            Some("2c180f22-1e84-4821-9f7b-88a16c43e3e2")
        );
        // ...its own claim does, and wins over its environment.
        state.seats.insert(
            claim_key(&seat, &caller),
            SeatBinding {
                session_id: "claimed".into(),
                source: BindingSource::Claim,
                at_ms: 1,
            },
        );
        let r = resolve(&state, &caller, None);
        assert_eq!(r.session_id.as_deref(), Some("claimed"));
        assert_eq!(r.strategy, Some("claim"));
    }

    #[test]
    fn a_claim_applies_to_the_claiming_shim_only() {
        let seat = Seat {
            pid: 7,
            start_time: 9,
        };
        let with_env = |id: &str| Caller {
            seat: Some(seat.clone()),
            env: [("CLAUDE_CODE_SESSION_ID".to_string(), id.to_string())].into(),
            ..Caller::default()
        };
        let bare = Caller {
            seat: Some(seat.clone()),
            ..Caller::default()
        };
        let (a, b) = (with_env("sess-a"), with_env("sess-b"));
        let mut state = State::default();
        let claim = |id: &str| SeatBinding {
            session_id: id.into(),
            source: BindingSource::Claim,
            at_ms: 1,
        };
        state.seats.insert(claim_key(&seat, &a), claim("claimed-a"));
        assert_eq!(
            resolve(&state, &a, None).session_id.as_deref(),
            Some("claimed-a")
        );
        let rb = resolve(&state, &b, None);
        assert_eq!(rb.session_id.as_deref(), Some("sess-b"));
        assert_eq!(rb.strategy, Some("env:CLAUDE_CODE_SESSION_ID"));
        assert_eq!(resolve(&state, &bare, None).session_id, None);
        // A claim by a shim without an id of its own: its id-less siblings
        // follow, shims with their own id do not.
        state
            .seats
            .insert(claim_key(&seat, &bare), claim("claimed-bare"));
        assert_eq!(
            resolve(&state, &bare, None).session_id.as_deref(),
            Some("claimed-bare")
        );
        let rb = resolve(&state, &b, None);
        assert_eq!(rb.session_id.as_deref(), Some("sess-b"));
        assert!(rb
            .diagnosis
            .iter()
            .any(|d| d["strategy"] == "claim" && d["result"] == "not_applied"));
        assert_eq!(
            resolve(&state, &a, None).session_id.as_deref(),
            Some("claimed-a")
        );
    }

    #[test]
    fn unresolved_has_next_step() {
        let r = resolve(&State::default(), &Caller::default(), None);
        assert_eq!(r.session_id, None);
        assert!(r.next_step.unwrap().contains("claim_session"));
        assert_eq!(r.diagnosis.len(), 6);
    }

    fn agent(id: &str, first_seen_ms: u64, pid: u32) -> Agent {
        Agent {
            session_id: id.into(),
            client_type: "claude-code".into(),
            name: None,
            name_source: None,
            launch_name: None,
            tmux_session: None,
            purpose: None,
            purpose_at_ms: None,
            scope: Scope {
                project: "p".into(),
                ..Scope::default()
            },
            cwd: "/w".into(),
            seat: Some(Seat { pid, start_time: 1 }),
            resolved_by: "env".into(),
            first_seen_ms,
            previous_ids: Vec::new(),
            ended_ms: None,
            tmux_socket: None,
        }
    }

    fn pane(id: &str, session: &str, window: &str, index: &str) -> crate::tmux::Pane {
        crate::tmux::Pane {
            id: id.into(),
            pid: 1,
            session: session.into(),
            window: window.into(),
            socket: None,
            window_name: String::new(),
            command: "claude".into(),
            cwd: "/w".into(),
            index: index.into(),
            label: None,
            ..Default::default()
        }
    }

    /// Runs the naming pass to a fixed point and returns name by session id.
    fn named(
        state: &mut State,
        panes: &std::collections::HashMap<String, crate::tmux::Pane>,
        dead: &[&str],
    ) -> BTreeMap<String, String> {
        let holds = |a: &Agent| !dead.contains(&a.session_id.as_str());
        let cmds = name_agents(
            state,
            &NamingFacts {
                panes,
                holds: &holds,
            },
        );
        let mut ev = Vec::new();
        for c in &cmds {
            crate::state::apply(state, c, &mut ev);
        }
        let again = name_agents(
            state,
            &NamingFacts {
                panes,
                holds: &holds,
            },
        );
        assert!(again.is_empty(), "naming is stable: {again:?}");
        state
            .agents
            .values()
            .map(|a| (a.session_id.clone(), a.name.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn default_names_from_client_and_tmux() {
        let mut st = State::default();
        for (i, id) in ["a", "b"].iter().enumerate() {
            st.agents
                .insert(id.to_string(), agent(id, i as u64, 10 + i as u32));
        }
        let none = std::collections::HashMap::new();
        let n = named(&mut st, &none, &[]);
        assert_eq!((n["a"].as_str(), n["b"].as_str()), ("claude-1", "claude-2"));
        // Panes appear: each agent is named after its tmux session.
        let mut panes = std::collections::HashMap::new();
        panes.insert("10:1".to_string(), pane("%1", "api", "0", "0"));
        panes.insert("11:1".to_string(), pane("%2", "web", "0", "0"));
        let n = named(&mut st, &panes, &[]);
        assert_eq!((n["a"].as_str(), n["b"].as_str()), ("api", "web"));
        assert_eq!(st.agents["a"].tmux_session.as_deref(), Some("api"));
        // One session hosting both: session:window, then session:window.pane.
        panes.insert("11:1".to_string(), pane("%2", "api", "1", "0"));
        let n = named(&mut st, &panes, &[]);
        assert_eq!((n["a"].as_str(), n["b"].as_str()), ("api:0", "api:1"));
        panes.insert("11:1".to_string(), pane("%2", "api", "0", "1"));
        let n = named(&mut st, &panes, &[]);
        assert_eq!((n["a"].as_str(), n["b"].as_str()), ("api:0.0", "api:0.1"));
        // The pane is gone (client outside tmux now): the name stays.
        let n = named(&mut st, &std::collections::HashMap::new(), &[]);
        assert_eq!((n["a"].as_str(), n["b"].as_str()), ("api:0.0", "api:0.1"));
    }

    #[test]
    fn clashes_get_a_suffix_and_stronger_names_win() {
        let mut st = State::default();
        let mut a = agent("a", 1, 10);
        a.launch_name = Some("api".into());
        st.agents.insert("a".into(), a);
        st.agents.insert("b".into(), agent("b", 2, 11));
        let mut c = agent("c", 0, 12);
        c.name = Some("web".into()); // from an old journal: chosen
        st.agents.insert("c".into(), c);
        let mut panes = std::collections::HashMap::new();
        panes.insert("11:1".to_string(), pane("%2", "api", "0", "0"));
        panes.insert("12:1".to_string(), pane("%3", "web", "0", "0"));
        let n = named(&mut st, &panes, &[]);
        assert_eq!(n["a"], "api", "OXTAIL_NAME");
        assert_eq!(
            n["b"], "api-2",
            "a clash gets a suffix, never a shared name"
        );
        assert_eq!(n["c"], "web", "a chosen name is never changed");
        assert_eq!(st.agents["a"].name_source, Some(NameSource::Launch));
        // A fleet pane label names its agent.
        let mut labelled = pane("%2", "api", "0", "0");
        labelled.label = Some("rev".into());
        panes.insert("11:1".to_string(), labelled);
        let n = named(&mut st, &panes, &[]);
        assert_eq!(n["b"], "rev");
        assert_eq!(st.agents["b"].name_source, Some(NameSource::Fleet));
        // An agent that ended keeps its name but does not block it.
        st.agents.insert("d".into(), agent("d", 3, 13));
        panes.insert("13:1".to_string(), pane("%4", "api", "1", "0"));
        let n = named(&mut st, &panes, &["a"]);
        assert_eq!(n["a"], "api");
        assert_eq!(
            n["d"], "api:1",
            "tmux session api also hosts the fleet's rev"
        );
        panes.remove("11:1");
        let n = named(&mut st, &panes, &["a"]);
        assert_eq!(n["d"], "api", "the one live agent in tmux session api");
    }

    #[test]
    fn an_automatic_name_follows_a_late_client_type() {
        let mut st = State::default();
        let mut a = agent("a", 1, 10);
        a.client_type = "other".into();
        st.agents.insert("a".into(), a);
        let none = std::collections::HashMap::new();
        assert_eq!(named(&mut st, &none, &[])["a"], "agent-1");
        st.agents.get_mut("a").unwrap().client_type = "codex".into();
        assert_eq!(named(&mut st, &none, &[])["a"], "codex-1");
    }

    #[test]
    fn a_moved_seat_keeps_its_name() {
        let mut st = State::default();
        st.agents.insert("old".into(), agent("old", 1, 10));
        let mut panes = std::collections::HashMap::new();
        panes.insert("10:1".to_string(), pane("%1", "api", "0", "0"));
        named(&mut st, &panes, &[]);
        // `clear`: the new session takes the seat; the old id aliases.
        let mut new = agent("new", 2, 10);
        new.previous_ids.push("old".into());
        let mut ev = Vec::new();
        crate::state::apply(&mut st, &Command::UpsertAgent { agent: new }, &mut ev);
        let n = named(&mut st, &panes, &[]);
        assert_eq!(n.get("new").map(String::as_str), Some("api"));
        assert!(!n.contains_key("old"));
    }
}
