//! Which agent is calling: identity resolution (SPEC §3), pure.
//!
//! Order, first that answers:
//! 1. an explicit `claim_session` / `register_my_session` bound to the caller's
//!    seat (monotonic: only another explicit claim replaces it);
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

use crate::state::{Agent, BindingSource, Command, Scope, Seat, SeatBinding, SessionId, State};
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

    // 1. explicit claim on this seat
    match binding {
        Some(b) if b.source.is_explicit() => {
            let strategy = if b.source == BindingSource::Claim {
                "claim"
            } else {
                "register"
            };
            note(strategy, "resolved", json!({"session_id": b.session_id}));
            found = Some((b.session_id.clone(), strategy));
        }
        _ => note(
            "claim",
            "none",
            json!("no explicit claim for this client process"),
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

/// The birth-time fallback (I/O, called at the edge): among `*.jsonl` files
/// directly in `dir`, the one created between `started_s - 5` and
/// `started_s + 300` (seconds since the epoch). Its stem is the session id.
///
/// # Errors
/// A reason when there is no such file, more than one (ambiguity abstains),
/// or the file system does not record creation times.
pub fn birth_time_candidate(dir: &std::path::Path, started_s: u64) -> Result<String, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut hits = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        let created = meta
            .created()
            .map_err(|_| "this file system does not record creation times".to_string())?;
        let secs = created
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if secs + 5 >= started_s && secs <= started_s + 300 {
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                hits.push(stem.to_string());
            }
        }
    }
    match hits.len() {
        1 => Ok(hits.remove(0)),
        0 => Err(format!(
            "no transcript created in {} since the shim started",
            dir.display()
        )),
        n => Err(format!(
            "{n} transcripts were created in {} since the shim started; ambiguous, so abstaining",
            dir.display()
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
    match state.agents.get(id) {
        None => out.push(Command::UpsertAgent {
            agent: Agent {
                session_id: id.to_string(),
                client_type,
                name: None,
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
            if a.scope != caller.scope
                || a.cwd != caller.cwd
                || a.seat != caller.seat
                || a.client_type != refreshed_type
                || a.ended_ms.is_some()
                || (tmux_socket.is_some() && a.tmux_socket != tmux_socket)
            {
                let mut agent = a.clone();
                agent.scope = caller.scope.clone();
                agent.cwd = caller.cwd.clone();
                agent.seat = caller.seat.clone();
                agent.client_type = refreshed_type;
                agent.ended_ms = None;
                if tmux_socket.is_some() {
                    agent.tmux_socket = tmux_socket;
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

/// Where the caller's transcript lives, by client convention:
/// Claude Code: `~/.claude/projects/<cwd, every non-alphanumeric as '-'>/<session>.jsonl`.
/// Codex: `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*-<thread>.jsonl` (a glob;
/// found by the transcript reader).
pub fn transcript_path(caller: &Caller, session_id: &str, home: Option<&str>) -> Option<String> {
    match client_type(caller, None) {
        "claude-code" => {
            let home = home?;
            let mangled: String = caller
                .cwd
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            Some(format!(
                "{home}/.claude/projects/{mangled}/{session_id}.jsonl"
            ))
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
        state.seats.insert(
            seat.key(),
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
    fn unresolved_has_next_step() {
        let r = resolve(&State::default(), &Caller::default(), None);
        assert_eq!(r.session_id, None);
        assert!(r.next_step.unwrap().contains("claim_session"));
        assert_eq!(r.diagnosis.len(), 6);
    }
}
