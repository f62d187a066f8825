//! `oxtail hook <event>`: read the client's hook JSON on stdin, ask the
//! daemon, answer in the client's hook output format.
//!
//! The pure core is [`run_hook`] (stdin bytes + environment + a daemon
//! callback in, [`HookOutcome`] out), so every captured payload can be
//! replayed in unit tests. [`hook_main`](crate::process::hook_main) is the thin real-I/O wrapper the
//! `oxtail` binary calls: blocking socket, no async runtime, no process
//! table scan, a 300 ms budget to reach the daemon ([`HOOK_BUDGET`]), and it
//! fails open (exit 0, no output) whatever goes wrong.
//!
//! # Input (what the clients send)
//!
//! Claude Code 2.1.329 and Codex 0.169.0 send the same JSON object on stdin
//! (captured in `shared/fixtures/*/hooks/`): `session_id`, `transcript_path`,
//! `cwd`, `hook_event_name`, plus per event `source` (SessionStart:
//! `startup|resume|clear|compact`), `prompt` (UserPromptSubmit), `tool_name`,
//! `tool_input`, `tool_use_id` (Pre/PostToolUse), `tool_response`
//! (PostToolUse), `stop_hook_active` and `last_assistant_message` (Stop),
//! `reason` (SessionEnd). Codex adds `turn_id`, `model`. Tool calls made by a
//! Claude Code subagent carry `agent_id` (and `agent_type`).
//!
//! # Output (what the clients accept)
//!
//! * PreToolUse with mail: stdout
//!   `{"hookSpecificOutput":{"hookEventName":"PreToolUse","additionalContext":"…"}}`,
//!   exit 0. Claude Code: hooks reference, "PreToolUse decision control"
//!   (`hookSpecificOutput.additionalContext` is added to the model's context;
//!   the field is capped at 10 000 characters). Codex: the
//!   `pre-tool-use.command.output` schema in `codex-rs/hooks/schema/generated/`
//!   allows exactly `hookEventName`, `additionalContext`, `permissionDecision`,
//!   `permissionDecisionReason`, `updatedInput` in `hookSpecificOutput`
//!   (`additionalProperties: false`); PreToolUse `additionalContext` support
//!   landed in openai/codex PR #20692.
//! * Stop with mail: stdout `{"decision":"block","reason":"…"}`, exit 0.
//!   Claude Code: hooks reference, "Stop decision control" (`reason` is shown
//!   to the model, which continues). Codex: `stop.command.output` schema
//!   (`decision: "block"` requires `reason`; the reason becomes the
//!   continuation prompt).
//! * Nothing to deliver, or any failure: no output, exit 0.
//! * idle-wait with mail: the rendered mail on stderr, exit 2 (an async
//!   `asyncRewake` hook exiting 2 wakes an idle Claude Code session with its
//!   stderr as a system notification; verified by hand against 2.1.329, see
//!   `shared/fixtures/claude-code-2.1.329/hooks/018-Stop-after-rewake.json`).

use oxtail_proto::client::ConnectError;
use oxtail_proto::wire::{
    error_code, HookAnswer, HookCall, HookEvent, IdleWait, IdleWaitAnswer, Reply, Request,
    CLIENT_ENV_VARS,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Total wall time of a hook as its client measures it: from the client
/// starting `sh -c 'oxtail hook <event>'` to that shell's exit (SPEC §6). A
/// stopped or hung daemon costs a hook at most this.
pub const HOOK_BUDGET: Duration = Duration::from_millis(300);

/// The part of [`HOOK_BUDGET`] kept for what happens outside [`hook_main`](crate::process::hook_main):
/// starting `sh` and this process (exec, loading) before it, printing and
/// exiting after it. Measured against a stopped daemon on a loaded 2-core
/// machine, the debug binary's `sh -c` run spends 5–45 ms there (see
/// RELIABILITY.md, "Connections and budgets").
pub const HOOK_PROCESS_ALLOWANCE: Duration = Duration::from_millis(80);

/// What [`hook_main`](crate::process::hook_main) may spend connecting to the daemon and getting its
/// answer, counted from its first instruction: [`HOOK_BUDGET`] less
/// [`HOOK_PROCESS_ALLOWANCE`] (220 ms).
pub const HOOK_DAEMON_BUDGET: Duration = Duration::from_millis(
    HOOK_BUDGET.as_millis() as u64 - HOOK_PROCESS_ALLOWANCE.as_millis() as u64,
);

/// How long before the hook gives up on the daemon the daemon stops
/// draining mail for it, so a drained answer still reaches the hook in time
/// to be printed (40 ms).
pub const DELIVER_MARGIN: Duration = Duration::from_millis(40);

/// Default delivery budget in characters (`OXTAIL_HOOK_BUDGET_CHARS`).
pub const DEFAULT_BUDGET_CHARS: usize = 9000;

/// Upper bound for `OXTAIL_HOOK_BUDGET_CHARS`: Claude Code caps
/// `additionalContext` at 10 000 characters (SPEC §5), so a larger budget
/// would only get the delivered mail cut by the client.
pub const MAX_BUDGET_CHARS: usize = 10_000;

/// Default give-up time of `oxtail hook idle-wait`: 23 hours, below the one
/// day hook timeout that `oxtail install-hook` sets, so the hook always exits
/// on its own before Claude Code would kill it.
pub const DEFAULT_IDLE_WAIT_TIMEOUT_MS: u64 = 23 * 3600 * 1000;

/// Environment variable: delivery budget in characters.
pub const ENV_BUDGET: &str = "OXTAIL_HOOK_BUDGET_CHARS";
/// Environment variable: idle-wait give-up time in ms (tests shorten it).
pub const ENV_IDLE_TIMEOUT: &str = "OXTAIL_IDLE_WAIT_TIMEOUT_MS";
/// Environment variable: when set, a hook explains on stderr why it did
/// nothing (stderr of an exit-0 hook is only shown in the clients' verbose
/// or transcript views).
pub const ENV_DEBUG: &str = "OXTAIL_DEBUG_HOOK";

/// Environment variable: what a PreToolUse edit of a file a live peer is
/// working on does: `warn` (default: context before the edit), `ask` (the
/// client asks the user; Codex cannot, so there it warns and says so) or
/// `deny` (the edit is blocked, with the reason).
pub const ENV_CONFLICT: &str = "OXTAIL_CONFLICT";

/// Largest hook stdin read, in bytes. Claude Code sends whole tool outputs in
/// PostToolUse payloads; anything larger is treated as malformed.
pub const MAX_STDIN_BYTES: u64 = 32 << 20;

/// Longest string kept from the payload's free-text fields when forwarding
/// it to the daemon (chars); see [`slim_payload`].
const SLIM_TEXT_CHARS: usize = 1000;
/// Longest string kept from `tool_input` fields (chars).
const SLIM_TOOL_INPUT_CHARS: usize = 300;

/// What `oxtail hook <arg>` was asked to handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// A client event forwarded to the daemon as a [`HookCall`].
    Event(HookEvent),
    /// The Claude Code async rewake long-poll (`idle-wait`).
    IdleWait,
}

/// The event names `oxtail hook` accepts, in the order they are documented.
pub const HOOK_EVENT_ARGS: &[&str] = &[
    "session-start",
    "user-prompt-submit",
    "pre-tool-use",
    "post-tool-use",
    "stop",
    "idle-wait",
    "session-end",
];

/// Parses the `<event>` argument of `oxtail hook` (kebab-case, as installed
/// by `oxtail install-hook`; the clients' own CamelCase names are accepted
/// too). `None` for anything else.
pub fn parse_event_arg(arg: &str) -> Option<HookKind> {
    let e = match arg {
        "session-start" | "SessionStart" => HookEvent::SessionStart,
        "user-prompt-submit" | "UserPromptSubmit" => HookEvent::UserPromptSubmit,
        "pre-tool-use" | "PreToolUse" => HookEvent::PreToolUse,
        "post-tool-use" | "PostToolUse" => HookEvent::PostToolUse,
        "stop" | "Stop" => HookEvent::Stop,
        "session-end" | "SessionEnd" => HookEvent::SessionEnd,
        "idle-wait" => return Some(HookKind::IdleWait),
        _ => return None,
    };
    Some(HookKind::Event(e))
}

/// The kebab-case argument for `event` (inverse of [`parse_event_arg`]).
pub fn event_arg(event: HookEvent) -> &'static str {
    match event {
        HookEvent::SessionStart => "session-start",
        HookEvent::UserPromptSubmit => "user-prompt-submit",
        HookEvent::PreToolUse => "pre-tool-use",
        HookEvent::PostToolUse => "post-tool-use",
        HookEvent::Stop => "stop",
        HookEvent::SessionEnd => "session-end",
    }
}

/// What a hook process prints and how it exits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookOutcome {
    /// Printed on stdout (the client parses it as hook JSON), if any.
    pub stdout: Option<String>,
    /// Printed on stderr, if any (idle-wait's mail).
    pub stderr: Option<String>,
    /// The exit code: 0, or 2 for idle-wait's rewake.
    pub exit_code: i32,
    /// Why the hook produced no output, for diagnostics only: printed on
    /// stderr when [`ENV_DEBUG`] is set, never otherwise.
    pub note: Option<String>,
    /// The daemon's hand-over id for the mail in `stdout`/`stderr`: once
    /// that is printed, the hook acks it on the same connection
    /// ([`oxtail_proto::ClientFrame::Ack`]), and only then does the mail
    /// leave the mailbox.
    pub handover: Option<u64>,
}

impl HookOutcome {
    /// Exit 0, no output, with a diagnostic note.
    pub fn silent(note: impl Into<String>) -> HookOutcome {
        HookOutcome {
            note: Some(note.into()),
            ..HookOutcome::default()
        }
    }
}

/// The delivery budget from `OXTAIL_HOOK_BUDGET_CHARS` in `env`: default
/// [`DEFAULT_BUDGET_CHARS`]; a value that is not a positive integer falls
/// back to the default; values above [`MAX_BUDGET_CHARS`] are clamped to it.
pub fn budget_from_env(env: &BTreeMap<String, String>) -> usize {
    match env
        .get(ENV_BUDGET)
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        Some(n) if n > 0 => n.min(MAX_BUDGET_CHARS),
        _ => DEFAULT_BUDGET_CHARS,
    }
}

/// Which client runs this hook: `"claude-code"` when the environment has
/// Claude Code's variables (`CLAUDECODE`, `CLAUDE_PID`,
/// `CLAUDE_CODE_SESSION_ID`, `CLAUDE_PROJECT_DIR`), `"codex"` when it has
/// Codex's (`CODEX_HOME`, `CODEX_MANAGED_BY_NPM`, `CODEX_THREAD_ID`) or the
/// payload has Codex-only fields (`turn_id`, `model`: Codex 0.169.0 sends
/// them, Claude Code 2.1.329 does not); otherwise `"claude-code"`.
pub fn detect_client(env: &BTreeMap<String, String>, payload: &Value) -> &'static str {
    let has = |k: &str| env.get(k).is_some_and(|v| !v.is_empty());
    if has("CLAUDECODE") || has("CLAUDE_PID") || has("CLAUDE_CODE_SESSION_ID") {
        return "claude-code";
    }
    if has("CODEX_HOME") || has("CODEX_MANAGED_BY_NPM") || has("CODEX_THREAD_ID") {
        return "codex";
    }
    if payload.get("turn_id").is_some() || payload.get("model").is_some() {
        return "codex";
    }
    "claude-code"
}

/// Whether `payload` is a tool call made by a Claude Code subagent (it
/// carries a non-empty `agent_id`). Mail is never handed to a subagent: it
/// would reach a context the main agent never sees.
pub fn is_subagent_call(payload: &Value) -> bool {
    match payload.get("agent_id") {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    }
}

/// How many characters of mail this event may deliver (SPEC §5):
/// PreToolUse delivers unless it is a subagent call; Stop delivers unless
/// `stop_hook_active` is true (the turn already continues because of a Stop
/// hook, so blocking again could loop); every other event delivers nothing.
pub fn deliver_budget(event: HookEvent, payload: &Value, budget: usize) -> Option<usize> {
    match event {
        HookEvent::PreToolUse if !is_subagent_call(payload) => Some(budget),
        HookEvent::Stop if payload.get("stop_hook_active") != Some(&Value::Bool(true)) => {
            Some(budget)
        }
        _ => None,
    }
}

/// Truncates `s` to at most `max` chars, marking a cut with `…`.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// The payload forwarded to the daemon: the client's object with its bulky
/// parts trimmed so the request stays small and fast (the daemon needs the
/// ids, `cwd`, `source`, `tool_name` and the file path of edit tools, not
/// file contents): `tool_response` is dropped; string fields of
/// `tool_input` are cut to 300 chars and nested values over 300 bytes of
/// JSON are replaced by `"…"`; any other string is cut to 1000 chars
/// (`prompt`, `last_assistant_message`, …). Every key is kept.
pub fn slim_payload(payload: &Map<String, Value>) -> Value {
    let mut out = Map::with_capacity(payload.len());
    for (k, v) in payload {
        let v = match (k.as_str(), v) {
            ("tool_response", _) => continue,
            ("tool_input", Value::Object(input)) => {
                let mut slim = Map::with_capacity(input.len());
                for (ik, iv) in input {
                    let iv = match iv {
                        Value::String(s) if s.contains("*** Begin Patch") => {
                            Value::String(patch_headers(s))
                        }
                        Value::String(s) => Value::String(cut(s, SLIM_TOOL_INPUT_CHARS)),
                        Value::Array(_) | Value::Object(_) => {
                            if iv.to_string().len() <= SLIM_TOOL_INPUT_CHARS {
                                iv.clone()
                            } else {
                                Value::String("…".into())
                            }
                        }
                        other => other.clone(),
                    };
                    slim.insert(ik.clone(), iv);
                }
                Value::Object(slim)
            }
            (_, Value::String(s)) => Value::String(cut(s, SLIM_TEXT_CHARS)),
            (_, other) => {
                if other.to_string().len() <= 4 * SLIM_TEXT_CHARS {
                    other.clone()
                } else {
                    Value::String("…".into())
                }
            }
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// A Codex patch reduced to the lines that name files (`*** Begin Patch`,
/// `*** Add File:`, `*** Update File:`, `*** Delete File:`, `*** Move to:`),
/// at most 200 of them: the daemon records them as edits, and hunks would
/// only cost time on the wire.
pub fn patch_headers(patch: &str) -> String {
    const KEEP: [&str; 5] = [
        "*** Begin Patch",
        "*** Add File: ",
        "*** Update File: ",
        "*** Delete File: ",
        "*** Move to: ",
    ];
    patch
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| KEEP.iter().any(|k| l.starts_with(k)))
        .take(200)
        .map(|l| cut(l, SLIM_TOOL_INPUT_CHARS))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `OXTAIL_CONFLICT` from `env`, for PreToolUse only: `warn`, `ask`,
/// `deny` or `off` (case-insensitive; `off`: no conflict check for this
/// agent's edits, which are still recorded so peers are warned); anything
/// else is `warn`.
pub fn conflict_mode(event: HookEvent, env: &BTreeMap<String, String>) -> Option<String> {
    if event != HookEvent::PreToolUse {
        return None;
    }
    let m = env
        .get(ENV_CONFLICT)
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    Some(match m.as_str() {
        "ask" | "deny" | "off" => m,
        _ => "warn".to_string(),
    })
}

/// Parses hook stdin into its JSON object and session id.
///
/// # Errors
/// A sentence saying why the input is unusable: not UTF-8 JSON, not an
/// object, or no non-empty string `session_id`.
pub fn parse_stdin(stdin: &[u8]) -> Result<(Map<String, Value>, String), String> {
    let v: Value =
        serde_json::from_slice(stdin).map_err(|e| format!("stdin is not hook JSON: {e}"))?;
    let Value::Object(map) = v else {
        return Err("stdin is JSON but not an object".into());
    };
    let sid = match map.get("session_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err("the hook input has no session_id".into()),
    };
    Ok((map, sid))
}

/// Builds the [`HookCall`] for `event` from raw stdin, the process
/// environment and the parent pid, without any I/O.
///
/// `env` may hold the whole environment: only [`CLIENT_ENV_VARS`] are
/// forwarded; `OXTAIL_HOOK_BUDGET_CHARS` sets the budget.
///
/// # Errors
/// As [`parse_stdin`].
pub fn build_hook_call(
    event: HookEvent,
    stdin: &[u8],
    env: &BTreeMap<String, String>,
    ppid: u32,
) -> Result<HookCall, String> {
    let (map, _sid) = parse_stdin(stdin)?;
    let payload = Value::Object(map);
    let client = detect_client(env, &payload).to_string();
    let deliver_budget_chars = deliver_budget(event, &payload, budget_from_env(env));
    let Value::Object(map) = payload else {
        unreachable!("built from a map")
    };
    let client_env = env
        .iter()
        .filter(|(k, _)| CLIENT_ENV_VARS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(HookCall {
        event,
        client,
        payload: slim_payload(&map),
        env: client_env,
        ppid,
        deliver_budget_chars,
        // The daemon drains mail only while we can still print it: before
        // the hook gives up on it (HOOK_DAEMON_BUDGET from the hook's start;
        // startup and stdin already took a little), less DELIVER_MARGIN.
        deliver_deadline_ms: deliver_budget_chars.map(|_| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            now + HOOK_DAEMON_BUDGET
                .saturating_sub(DELIVER_MARGIN)
                .as_millis() as u64
        }),
        conflict_mode: conflict_mode(event, env),
    })
}

/// Renders delivered mail in the client's output format for `event`:
/// PreToolUse → `hookSpecificOutput.additionalContext`, Stop →
/// `decision: "block"` with the mail as `reason`. `None` for events that do
/// not deliver. The JSON is one line with a trailing newline.
pub fn render_delivery(event: HookEvent, text: &str) -> Option<String> {
    let v = match event {
        HookEvent::PreToolUse => json!({
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "additionalContext": text,
            }
        }),
        HookEvent::Stop => json!({ "decision": "block", "reason": text }),
        _ => return None,
    };
    Some(format!("{v}\n"))
}

/// Renders a PreToolUse answer that carries file-conflict `context`, mail
/// or both, in one output (both clients take a single JSON object):
/// `additionalContext` holds the context, then the mail. With a
/// `decision`, `permissionDecision` and `permissionDecisionReason` are set
/// as Claude Code's hooks reference ("PreToolUse decision control") and
/// Codex 0.169's `pre-tool-use.command.output` schema spell them. Codex
/// 0.169 rejects `ask` (and `allow`) at run time ("PreToolUse hook returned
/// unsupported permissionDecision:ask"), so for `client == "codex"` an `ask`
/// becomes a warning that says so.
pub fn render_pre_tool_use(
    client: &str,
    context: Option<&str>,
    mail: Option<&str>,
    decision: Option<&str>,
) -> Option<String> {
    let mut context = context.filter(|c| !c.trim().is_empty()).map(str::to_string);
    let mut decision = decision.filter(|d| matches!(*d, "ask" | "deny"));
    if decision == Some("ask") && client == "codex" {
        decision = None;
        if let Some(c) = context.as_mut() {
            c.push_str("\n[oxtail] OXTAIL_CONFLICT=ask: Codex hooks cannot ask the user, so this is only a warning.");
        }
    }
    let text = match (context.as_deref(), mail.filter(|m| !m.trim().is_empty())) {
        (Some(c), Some(m)) => format!("{c}\n\n{m}"),
        (Some(c), None) => c.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => return None,
    };
    let mut out = Map::new();
    out.insert("hookEventName".into(), json!("PreToolUse"));
    if let (Some(d), Some(c)) = (decision, context.as_deref()) {
        out.insert("permissionDecision".into(), json!(d));
        out.insert("permissionDecisionReason".into(), json!(c));
    }
    if decision != Some("deny") {
        out.insert("additionalContext".into(), json!(text));
    }
    Some(format!("{}\n", json!({ "hookSpecificOutput": out })))
}

/// Handles one hook event: parse stdin, ask the daemon once through
/// `daemon`, and decide what to print. Never fails: every problem yields
/// exit 0 with no output (and a [`HookOutcome::note`]).
///
/// `daemon` sends one request and returns the daemon's reply, or a sentence
/// when the daemon could not be reached in time. It is not called when the
/// input is unusable.
///
/// The daemon's [`HookAnswer::deliver`] is printed verbatim (it already
/// holds the peer-context framing and the "N more waiting" line); it is only
/// used when this hook asked for delivery.
pub fn run_hook(
    event: HookEvent,
    stdin: &[u8],
    env: &BTreeMap<String, String>,
    ppid: u32,
    daemon: &mut dyn FnMut(Request) -> Result<Reply, String>,
) -> HookOutcome {
    let call = match build_hook_call(event, stdin, env, ppid) {
        Ok(c) => c,
        Err(e) => return HookOutcome::silent(e),
    };
    let asked = call.deliver_budget_chars.is_some();
    let client = call.client.clone();
    let value = match daemon(Request::Hook(call)) {
        Ok(Reply::Ok { value }) => value,
        Ok(Reply::Error { code, message }) => {
            return HookOutcome::silent(format!("daemon answered {code}: {message}"))
        }
        Err(e) => return HookOutcome::silent(format!("daemon unreachable: {e}")),
    };
    let answer: HookAnswer = match serde_json::from_value(value) {
        Ok(a) => a,
        Err(e) => return HookOutcome::silent(format!("unexpected hook answer: {e}")),
    };
    if event == HookEvent::PreToolUse && (answer.context.is_some() || answer.decision.is_some()) {
        let mail = answer.deliver.as_deref().filter(|_| asked);
        return HookOutcome {
            stdout: render_pre_tool_use(
                &client,
                answer.context.as_deref(),
                mail,
                answer.decision.as_deref(),
            ),
            handover: answer.handover.filter(|_| mail.is_some()),
            ..HookOutcome::default()
        };
    }
    match answer.deliver {
        Some(text) if asked && !text.trim().is_empty() => HookOutcome {
            stdout: render_delivery(event, &text),
            handover: answer.handover,
            ..HookOutcome::default()
        },
        Some(_) if !asked => HookOutcome::silent("daemon sent mail this hook did not ask for"),
        _ => HookOutcome::silent("nothing to deliver"),
    }
}

/// The environment a hook reads: [`CLIENT_ENV_VARS`] plus oxtail's hook
/// settings, from this process.
pub fn hook_env_from_process() -> BTreeMap<String, String> {
    CLIENT_ENV_VARS
        .iter()
        .copied()
        .chain([ENV_BUDGET, ENV_IDLE_TIMEOUT, ENV_DEBUG, ENV_CONFLICT])
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

/// What idle-wait does after one daemon round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdleStep {
    /// Finish with this outcome.
    Exit(HookOutcome),
    /// The daemon went away or is handing over: reconnect and wait on.
    Retry(String),
}

/// Builds the [`IdleWait`] request from idle-wait's stdin (the Stop
/// payload: `session_id`) and environment (`CLAUDE_PID` is the client
/// process, whose death ends the wait; `OXTAIL_IDLE_WAIT_TIMEOUT_MS`,
/// default [`DEFAULT_IDLE_WAIT_TIMEOUT_MS`]; `OXTAIL_HOOK_BUDGET_CHARS`).
///
/// # Errors
/// As [`parse_stdin`].
pub fn idle_wait_request(stdin: &[u8], env: &BTreeMap<String, String>) -> Result<IdleWait, String> {
    let (_map, session_id) = parse_stdin(stdin)?;
    let client_pid = env
        .get("CLAUDE_PID")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|p| *p > 1);
    let timeout_ms = env
        .get(ENV_IDLE_TIMEOUT)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(DEFAULT_IDLE_WAIT_TIMEOUT_MS);
    Ok(IdleWait {
        session_id,
        client_pid,
        timeout_ms,
        budget_chars: budget_from_env(env),
    })
}

/// Whether an idle-wait should arm at all: not under a headless Claude Code
/// (`CLAUDE_CODE_ENTRYPOINT=sdk-cli` for `claude -p`, `sdk-*` for the Agent
/// SDKs; the interactive TUI sets `cli`, verified with 2.1.329). A headless
/// run ends with its turn, so there is nothing to wake, and it waits (about
/// 30 s, measured with 2.1.329) for async hooks before exiting.
///
/// # Errors
/// The reason not to wait, for [`HookOutcome::note`].
pub fn idle_wait_applies(env: &BTreeMap<String, String>) -> Result<(), String> {
    match env.get("CLAUDE_CODE_ENTRYPOINT") {
        Some(e) if e.starts_with("sdk") => Err(format!(
            "headless Claude Code (CLAUDE_CODE_ENTRYPOINT={e}) ends with its turn; nothing to wake"
        )),
        _ => Ok(()),
    }
}

/// Interprets the daemon's answer to an [`IdleWait`]: mail → its text on
/// stderr and exit 2 (the rewake); retired, ended, timed out → exit 0
/// silently; `unavailable` (daemon shutting down or handing over) → retry;
/// any other error (e.g. a daemon that does not know idle-wait) → exit 0.
pub fn idle_wait_step(reply: Reply) -> IdleStep {
    match reply {
        Reply::Ok { value } => match serde_json::from_value::<IdleWaitAnswer>(value) {
            Ok(IdleWaitAnswer::Mail {
                deliver, handover, ..
            }) if !deliver.trim().is_empty() => IdleStep::Exit(HookOutcome {
                stderr: Some(deliver),
                exit_code: 2,
                handover,
                ..HookOutcome::default()
            }),
            Ok(IdleWaitAnswer::Mail { .. }) => {
                IdleStep::Exit(HookOutcome::silent("daemon woke idle-wait with empty mail"))
            }
            Ok(IdleWaitAnswer::Retired) => {
                IdleStep::Exit(HookOutcome::silent("a newer idle-wait took over"))
            }
            Ok(IdleWaitAnswer::Ended) => {
                IdleStep::Exit(HookOutcome::silent("the session ended or its client died"))
            }
            Ok(IdleWaitAnswer::Timeout) => {
                IdleStep::Exit(HookOutcome::silent("idle-wait timed out"))
            }
            Err(e) => IdleStep::Exit(HookOutcome::silent(format!(
                "unexpected idle-wait answer: {e}"
            ))),
        },
        Reply::Error { code, message } if code == error_code::UNAVAILABLE => {
            IdleStep::Retry(format!("daemon unavailable: {message}"))
        }
        Reply::Error { code, message } => IdleStep::Exit(HookOutcome::silent(format!(
            "daemon answered {code}: {message}"
        ))),
    }
}

/// Whether a connect error is worth retrying from idle-wait (the daemon is
/// absent or restarting), as opposed to final (version refusal, or another
/// user listening on the socket).
pub fn idle_connect_retryable(e: &ConnectError) -> bool {
    !matches!(e, ConnectError::Refused(_) | ConnectError::NotOwner { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_args_round_trip() {
        for a in HOOK_EVENT_ARGS {
            let k = parse_event_arg(a).expect(a);
            if let HookKind::Event(e) = k {
                assert_eq!(event_arg(e), *a);
            } else {
                assert_eq!(*a, "idle-wait");
            }
        }
        assert_eq!(
            parse_event_arg("PreToolUse"),
            Some(HookKind::Event(HookEvent::PreToolUse))
        );
        assert_eq!(parse_event_arg("pretooluse"), None);
        assert_eq!(parse_event_arg(""), None);
    }

    #[test]
    fn budget_env_defaults_and_clamps() {
        let mut env = BTreeMap::new();
        assert_eq!(budget_from_env(&env), 9000);
        for bad in ["", "abc", "-5", "0", "1.5", "9e3"] {
            env.insert(ENV_BUDGET.to_string(), bad.to_string());
            assert_eq!(budget_from_env(&env), 9000, "{bad:?}");
        }
        env.insert(ENV_BUDGET.to_string(), " 120 ".to_string());
        assert_eq!(budget_from_env(&env), 120);
        env.insert(ENV_BUDGET.to_string(), "50000".to_string());
        assert_eq!(budget_from_env(&env), MAX_BUDGET_CHARS);
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("héllo", 2), "hé…");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("", 0), "");
    }

    #[test]
    fn conflict_output_combines_context_and_mail_per_client() {
        let v = |s: Option<String>| serde_json::from_str::<Value>(&s.unwrap()).unwrap();
        let w = v(render_pre_tool_use(
            "claude-code",
            Some("C"),
            Some("M"),
            None,
        ));
        assert_eq!(
            w,
            json!({"hookSpecificOutput":{"hookEventName":"PreToolUse","additionalContext":"C\n\nM"}})
        );
        let d = v(render_pre_tool_use("codex", Some("C"), None, Some("deny")));
        assert_eq!(
            d,
            json!({"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"C"}})
        );
        let a = v(render_pre_tool_use(
            "claude-code",
            Some("C"),
            None,
            Some("ask"),
        ));
        assert_eq!(a["hookSpecificOutput"]["permissionDecision"], "ask");
        let ca = v(render_pre_tool_use("codex", Some("C"), None, Some("ask")));
        assert!(ca["hookSpecificOutput"].get("permissionDecision").is_none());
        assert!(ca["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .unwrap()
            .contains("only a warning"));
        assert_eq!(render_pre_tool_use("codex", None, None, None), None);
    }

    #[test]
    fn patch_survives_slimming_as_headers() {
        let patch = format!(
            "*** Begin Patch\n*** Update File: a.rs\n{}\n*** Move to: b.rs\n*** End Patch",
            "+x\n".repeat(500)
        );
        let mut m = Map::new();
        m.insert("tool_input".into(), json!({"command": patch}));
        let slim = slim_payload(&m);
        assert_eq!(
            slim["tool_input"]["command"],
            "*** Begin Patch\n*** Update File: a.rs\n*** Move to: b.rs"
        );
    }

    #[test]
    fn render_delivery_shapes() {
        let pre = render_delivery(HookEvent::PreToolUse, "hi \"x\"\n").unwrap();
        assert!(pre.ends_with('\n'));
        let v: Value = serde_json::from_str(&pre).unwrap();
        assert_eq!(
            v,
            json!({"hookSpecificOutput":{"hookEventName":"PreToolUse","additionalContext":"hi \"x\"\n"}})
        );
        let stop: Value =
            serde_json::from_str(&render_delivery(HookEvent::Stop, "m").unwrap()).unwrap();
        assert_eq!(stop, json!({"decision":"block","reason":"m"}));
        for e in [
            HookEvent::SessionStart,
            HookEvent::UserPromptSubmit,
            HookEvent::PostToolUse,
            HookEvent::SessionEnd,
        ] {
            assert_eq!(render_delivery(e, "m"), None);
        }
    }
}
