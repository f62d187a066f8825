//! Messages exchanged over the daemon socket.
//!
//! Every connection opens with a [`ClientFrame::Hello`]; the daemon answers
//! [`ServerFrame::Welcome`] (same protocol major) or [`ServerFrame::Refused`]
//! and closes. After that the client sends [`ClientFrame::Request`]s, each with
//! a connection-unique `id`; the daemon answers each with a
//! [`ServerFrame::Reply`] carrying the same `id`, in any order (a long
//! `ask_peer` does not hold up a quick `list_project_sessions` on the same
//! connection). [`ServerFrame::Event`] carries progress for a request still in
//! flight.
//!
//! All frames are JSON objects tagged by `"frame"`; see [`crate::frame`] for
//! the byte framing.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What kind of process is on the other end of a connection.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `oxtail mcp`: an agent's stdio MCP server.
    Shim,
    /// `oxtail hook <event>`.
    Hook,
    /// `oxtail ctl …` and other one-shot commands.
    Ctl,
    /// `oxtail status` / `oxtail oxpit`.
    Cockpit,
}

/// The first frame on every connection.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// [`crate::PROTOCOL_MAJOR`] of the client.
    pub protocol_major: u16,
    /// [`crate::PROTOCOL_MINOR`] of the client.
    pub protocol_minor: u16,
    /// The client binary's version, e.g. `"0.1.0"`.
    pub version: String,
    /// What the client is.
    pub role: Role,
    /// The client's process id.
    pub pid: u32,
}

impl Hello {
    /// A hello for this binary in the given role, with this process's pid.
    pub fn new(role: Role) -> Self {
        Hello {
            protocol_major: crate::PROTOCOL_MAJOR,
            protocol_minor: crate::PROTOCOL_MINOR,
            version: crate::version(),
            role,
            pid: std::process::id(),
        }
    }
}

/// The daemon's answer to an accepted [`Hello`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The daemon's protocol major (equal to the client's, or it would refuse).
    pub protocol_major: u16,
    /// The daemon's protocol minor.
    pub protocol_minor: u16,
    /// The daemon binary's version.
    pub version: String,
    /// The daemon's process id.
    pub daemon_pid: u32,
}

/// Frames a client sends.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "frame", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Must be the first frame.
    Hello(Hello),
    /// A request; `id` is chosen by the client, unique per connection.
    Request {
        /// Correlates the [`ServerFrame::Reply`].
        id: u64,
        /// What is asked.
        request: Request,
    },
    /// The client no longer wants the answer to request `id` (MCP
    /// `notifications/cancelled`). The daemon stops waiting on its behalf.
    Cancel {
        /// The request to cancel.
        id: u64,
    },
    /// The fate of mail handed over in a reply that carried `handover`
    /// (protocol minor 1): `delivered: true` once the client wrote it where
    /// the agent reads it (the shim wrote the tool result to stdout; the
    /// hook printed its output), `false` when it will never be written (the
    /// call was cancelled or timed out first). Until then the daemon holds
    /// the mail; a missing ack (the connection closed, or
    /// `OXTAIL_HANDOVER_TTL_MS` passed) puts it back at the head of the
    /// mailbox. No reply.
    Ack {
        /// The hand-over id from the reply.
        handover: u64,
        /// Whether the mail reached the agent.
        delivered: bool,
    },
}

/// Frames the daemon sends.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "frame", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The hello was accepted.
    Welcome(Welcome),
    /// The hello was refused (e.g. protocol major mismatch); the daemon closes
    /// the connection after this frame.
    Refused {
        /// A sentence naming both versions and what to do.
        reason: String,
    },
    /// The answer to request `id`.
    Reply {
        /// The request's id.
        id: u64,
        /// The answer.
        reply: Reply,
    },
    /// Progress or a pushed change for request `id`, which is still in flight.
    Event {
        /// The request's id.
        id: u64,
        /// Event payload (shape depends on the request).
        event: Value,
    },
}

impl ServerFrame {
    /// Parses a frame payload (JSON, without its length prefix).
    ///
    /// A successful reply, the common and possibly large case (a
    /// `list_project_sessions` of 1 000 agents is ~0.7 MB), is parsed
    /// straight into its `value`: serde's derive for an internally tagged
    /// enum would first buffer the whole tree in its private `Content`
    /// type, twice over (`frame`, then `status`). Every other frame takes
    /// the derive.
    ///
    /// # Errors
    /// The `serde_json` error when `payload` is not a frame.
    pub fn from_slice(payload: &[u8]) -> Result<ServerFrame, serde_json::Error> {
        #[derive(Deserialize)]
        struct Peek<'a> {
            #[serde(borrow)]
            frame: std::borrow::Cow<'a, str>,
            id: Option<u64>,
            #[serde(borrow)]
            reply: Option<&'a serde_json::value::RawValue>,
        }
        #[derive(Deserialize)]
        struct OkPeek<'a> {
            #[serde(borrow)]
            status: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            value: Option<&'a serde_json::value::RawValue>,
        }
        if let Ok(Peek {
            frame,
            id: Some(id),
            reply: Some(reply),
        }) = serde_json::from_slice::<Peek<'_>>(payload)
        {
            if frame == "reply" {
                if let Ok(OkPeek {
                    status,
                    value: Some(value),
                }) = serde_json::from_str::<OkPeek<'_>>(reply.get())
                {
                    if status == "ok" {
                        let value = serde_json::from_str(value.get())?;
                        return Ok(ServerFrame::Reply {
                            id,
                            reply: Reply::Ok { value },
                        });
                    }
                }
            }
        }
        serde_json::from_slice(payload)
    }
}

/// A request to the daemon.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// A shim introduces itself (sent once, right after the handshake).
    /// Tool calls on this connection are made on behalf of this shim.
    ShimHello(ShimInfo),
    /// The MCP client identified itself in `initialize` (`clientInfo`).
    ClientInfo(ClientInfo),
    /// Run an MCP tool for the shim of this connection.
    Tool {
        /// Tool name, e.g. `"send_message"`.
        name: String,
        /// The tool's `arguments` object as the client sent it.
        args: Value,
        /// The tools/call `_meta` object, if any (Codex puts `threadId` here).
        #[serde(default)]
        meta: Option<Value>,
    },
    /// Inspection and maintenance (`oxtail ctl`).
    Ctl(Ctl),
    /// A client hook fired (`oxtail hook <event>`); see [`HookCall`].
    Hook(HookCall),
    /// Long-poll for mail on behalf of an idle session (`oxtail hook
    /// idle-wait`, the Claude Code async rewake); see [`IdleWait`].
    IdleWait(IdleWait),
}

/// Hook event names exactly as Claude Code 2.1.329 and Codex 0.169.0 spell
/// them in `hook_event_name`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookEvent {
    /// Session started, resumed, cleared, compacted or forked (`source`).
    SessionStart,
    /// The user submitted a prompt: the agent is busy.
    UserPromptSubmit,
    /// A tool is about to run: busy; mid-turn delivery point.
    PreToolUse,
    /// A tool finished.
    PostToolUse,
    /// The turn ended: idle; end-of-turn delivery point.
    Stop,
    /// The session ended.
    SessionEnd,
}

/// One hook invocation, forwarded to the daemon.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct HookCall {
    /// Which event.
    pub event: HookEvent,
    /// `claude-code` or `codex` (from the environment: `CLAUDECODE` /
    /// `CLAUDE_PID` vs `CODEX_HOME`).
    pub client: String,
    /// The hook's stdin JSON as the client sent it, slimmed for the wire by
    /// the hook (`tool_response` dropped, long strings in `tool_input` cut);
    /// every key is kept (`session_id`, `cwd`, `transcript_path`,
    /// `tool_name`, `tool_input.file_path`, `source`, `stop_hook_active`,
    /// `agent_id` for subagent calls, …).
    pub payload: Value,
    /// Client-identifying environment of the hook process
    /// ([`CLIENT_ENV_VARS`]; Claude Code hooks carry `CLAUDE_PID`).
    pub env: BTreeMap<String, String>,
    /// The hook process's parent pid (Codex 0.169 runs hooks as direct
    /// children of the codex process; Claude Code runs them under a shell).
    pub ppid: u32,
    /// When `Some(n)`: drain queued mail for this session, whole messages
    /// whose rendering fits in `n` characters, and return it rendered.
    /// `None`: do not deliver (subagent call, `stop_hook_active`, or an event
    /// that does not deliver).
    pub deliver_budget_chars: Option<usize>,
    /// Drain mail only before this wall-clock time (ms since the epoch): a
    /// hook that gave up (its 300 ms budget passed while the daemon was
    /// stopped or slow) cannot print what was drained for it, so the daemon
    /// must not take the mail out of the mailbox after it. `None`: no limit.
    #[serde(default)]
    pub deliver_deadline_ms: Option<u64>,
    /// `OXTAIL_CONFLICT` of the hook's environment: `warn` (default), `ask`,
    /// `deny` or `off` (no check); what a PreToolUse edit that meets a
    /// peer's file does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_mode: Option<String>,
}

/// The daemon's answer to a [`HookCall`] (the `value` of `Reply::Ok`).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct HookAnswer {
    /// Rendered mail to hand to the model (framed as peer context), when any
    /// was drained.
    pub deliver: Option<String>,
    /// How many messages `deliver` holds.
    pub delivered: usize,
    /// How many stay queued (over the budget).
    pub remaining: usize,
    /// Set when `deliver` holds mail: the hook acks it
    /// ([`ClientFrame::Ack`]) after printing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<u64>,
    /// File-conflict context for this PreToolUse (a peer edits or holds the
    /// file; a peer is about to edit one of ours), shown before the mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// A permission decision for the client (`deny` or `ask`) with `context`
    /// as its reason; `None` lets the tool run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

/// Long-poll for mail on behalf of an idle Claude Code session.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct IdleWait {
    /// The session (the Stop hook's `session_id`).
    pub session_id: String,
    /// The client process; the wait ends when it dies.
    pub client_pid: Option<u32>,
    /// Give up after this many ms (before the hook's own timeout).
    pub timeout_ms: u64,
    /// Drain at most this many characters of rendered mail.
    pub budget_chars: usize,
}

/// The daemon's answer to an [`IdleWait`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IdleWaitAnswer {
    /// Mail arrived and was drained: print `deliver` on stderr and exit 2.
    Mail {
        /// Rendered messages.
        deliver: String,
        /// How many.
        delivered: usize,
        /// How many stay queued.
        remaining: usize,
        /// The hook acks it ([`ClientFrame::Ack`]) after printing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handover: Option<u64>,
    },
    /// A newer waiter for the same session replaced this one: exit 0 quietly.
    Retired,
    /// The session ended or its client process died: exit 0.
    Ended,
    /// `timeout_ms` passed: exit 0.
    Timeout,
}

/// `oxtail ctl` requests.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Ctl {
    /// Liveness check; answers `{"pong": true, "version", "pid"}`.
    Ping,
    /// Uptime, agents, queued messages, journal bytes, connections.
    Stats,
    /// Every agent the daemon knows, across projects.
    Sessions,
    /// The queued (undelivered) messages of one session; read-only.
    Inbox {
        /// The session's client_session_id.
        session_id: String,
    },
    /// Snapshot now and drop older journal segments.
    Compact,
    /// Snapshot and exit.
    Shutdown,
    /// The whole durable state as JSON.
    Dump,
    /// A newer binary asks this (older) daemon to hand over: it snapshots,
    /// answers, and exits, so the caller can start the new daemon. Every
    /// acknowledged change is already durable, so nothing is lost.
    Handover {
        /// The caller's version, for the log.
        version: String,
    },
    /// Set an agent's activity mark directly (what hooks do: busy on
    /// UserPromptSubmit/PreToolUse, idle on Stop). For tests and scripts.
    Mark {
        /// The session.
        session_id: String,
        /// `busy` or `idle`.
        state: String,
    },
    /// Recent wake and identity trace events, summarized by `wake_status`
    /// and by tool (`oxtail diagnose`).
    Diagnose,
    /// One status snapshot (`oxtail status`): answers a
    /// [`crate::status::StatusSnapshot`] as the reply value. Read-only: never
    /// drains a mailbox.
    Status {
        /// The project to show: any directory inside it (resolved like
        /// `list_project_sessions {project_root}`). `None` with `all: false`
        /// is an error (`invalid-params`): the cockpit always sends its cwd.
        #[serde(default)]
        project_root: Option<String>,
        /// Every project the daemon knows (`project_root` is then ignored).
        #[serde(default)]
        all: bool,
        /// At most this many newest comms-log entries.
        #[serde(default = "default_comms_limit")]
        comms_limit: usize,
    },
    /// A live subscription (`oxtail oxpit`): the daemon pushes
    /// [`ServerFrame::Event`]s whose `event` is a
    /// [`crate::status::StatusEvent`] (a full snapshot at once, then one per
    /// change, coalesced), and answers with a `Reply` only when the
    /// subscription ends (daemon shutdown). Read-only.
    Subscribe {
        /// As in [`Ctl::Status`].
        #[serde(default)]
        project_root: Option<String>,
        /// As in [`Ctl::Status`].
        #[serde(default)]
        all: bool,
        /// As in [`Ctl::Status`].
        #[serde(default = "default_comms_limit")]
        comms_limit: usize,
    },
    /// Wake an agent through the wake engine (cockpit `n`) so it reads its
    /// queued mail, with the usual gates. With nothing queued it costs no
    /// turn: the answer is `wake_status: "nothing_to_deliver"`, unless
    /// `check_in` asks to wake it anyway with "the operator asks you to
    /// check in". Claude Code and Codex are treated alike. Answers a
    /// [`crate::status::ActionAnswer`] carrying `wake_status` and
    /// `wake_status_text`.
    Nudge {
        /// A client_session_id or a unique agent name in the project.
        target: String,
        /// The project to resolve a name in (any directory inside it).
        #[serde(default)]
        project_root: Option<String>,
        /// Wake it even with nothing queued, asking it to check in (the
        /// person asked for this explicitly: cockpit `N`).
        #[serde(default)]
        check_in: bool,
    },
    /// Interrupt the running turn of a Codex agent reached through its
    /// app-server (`turn/interrupt`): only when a person asks (cockpit `i`,
    /// after confirming); oxtail never interrupts a turn by itself. Answers
    /// a [`crate::status::ActionAnswer`]: `ok` with a `message` when the
    /// request went out, else `error` `not-interruptible` or `not-in-a-turn`
    /// with the reason.
    Interrupt {
        /// A client_session_id or a unique agent name in the project.
        target: String,
        /// The project to resolve a name in (any directory inside it).
        #[serde(default)]
        project_root: Option<String>,
    },
    /// An operator message (cockpit `m`, `oxtail send`): from the person at
    /// the keyboard, who is the user. Delivered through the normal path
    /// with `origin: "operator"`, framed to the receiver as the user's own
    /// words (not peer context), and wakes it like a peer message
    /// (`wake: auto`). Answers a [`crate::status::ActionAnswer`] with
    /// `message_id`, `wake_status` and `wake_status_text`.
    OperatorMessage {
        /// A client_session_id or a unique agent name in the project.
        target: String,
        /// UTF-8, at most 8192 bytes.
        body: String,
        /// The project to resolve a name in (any directory inside it).
        #[serde(default)]
        project_root: Option<String>,
    },
}

/// Default `comms_limit` of [`Ctl::Status`] / [`Ctl::Subscribe`].
pub const DEFAULT_COMMS_LIMIT: usize = 200;

fn default_comms_limit() -> usize {
    DEFAULT_COMMS_LIMIT
}

/// What a shim knows about itself, sent in [`Request::ShimHello`].
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct ShimInfo {
    /// The shim's pid.
    pub pid: u32,
    /// The shim's parent pid: the client process that launched it.
    pub ppid: u32,
    /// The shim's working directory (the agent's project directory).
    pub cwd: PathBuf,
    /// Client-identifying environment variables, filtered by
    /// [`client_env_from_process`].
    pub env: BTreeMap<String, String>,
}

/// The MCP `clientInfo` of `initialize`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// e.g. `"claude-code"` (Claude Code 2.1.329) or `"codex-mcp-client"`
    /// (Codex 0.169.0).
    pub name: String,
    /// The client's version, e.g. `"2.1.329"`.
    #[serde(default)]
    pub version: Option<String>,
}

/// The environment variables that say which client launched a process, and
/// which session it hosts. Only these are ever sent to the daemon.
///
/// Sources: Claude Code 2.1.329 gives MCP servers `CLAUDECODE=1`,
/// `CLAUDE_CODE_SESSION_ID`, `CLAUDE_PROJECT_DIR`, and gives hooks
/// `CLAUDE_PID` too; Codex 0.169.0 gives MCP servers none of its own variables
/// (hooks get `CODEX_HOME`), older Codex builds exported `CODEX_THREAD_ID`.
/// `OXTAIL_NAME` is oxtail's own: the agent name given at launch.
pub const CLIENT_ENV_VARS: &[&str] = &[
    "CLAUDECODE",
    "CLAUDE_CODE_SESSION_ID",
    "CLAUDE_PID",
    "CLAUDE_PROJECT_DIR",
    "CLAUDE_CODE_ENTRYPOINT",
    "CLAUDE_CONFIG_DIR",
    "CODEX_THREAD_ID",
    "CODEX_HOME",
    "CODEX_MANAGED_BY_NPM",
    "GEMINI_CLI",
    "OPENCODE",
    "TMUX",
    "TMUX_PANE",
    "OXTAIL_NAME",
];

/// Settings that shape one agent's own calls (CONTRACT §15, issue 13):
/// they follow the agent's environment, so its shim passes them in its
/// hello with [`CLIENT_ENV_VARS`], and a lazily started daemon does not
/// inherit them from whichever agent happened to start it. Daemon-wide
/// settings (retention, compaction, idle exit) follow the daemon's own
/// environment.
pub const AGENT_SETTING_VARS: &[&str] = &[
    "OXTAIL_ASK_PEER_TIMEOUT_MS",
    "OXTAIL_ASK_PEER_MAX_TIMEOUT_MS",
    "OXTAIL_ASK_PEER_WAKE_STRATEGY",
    "OXTAIL_AUTOWAKE",
];

/// The [`CLIENT_ENV_VARS`] and [`AGENT_SETTING_VARS`] present in this
/// process's environment.
pub fn client_env_from_process() -> BTreeMap<String, String> {
    CLIENT_ENV_VARS
        .iter()
        .chain(AGENT_SETTING_VARS)
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

/// The daemon's answer to one [`Request`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reply {
    /// Success. For tools, `value` is the tool's JSON result, which may itself
    /// say `"ok": false` for errors the caller can act on (unknown target, …).
    Ok {
        /// The result.
        value: Value,
    },
    /// The request could not be carried out at all.
    Error {
        /// Machine-readable code; see [`error_code`].
        code: String,
        /// A sentence for a person.
        message: String,
    },
}

impl Reply {
    /// A protocol-level error reply.
    pub fn error(code: &str, message: impl Into<String>) -> Reply {
        Reply::Error {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// Codes used in [`Reply::Error`].
pub mod error_code {
    /// Malformed tool arguments; the message names the field. The shim turns
    /// this into an MCP `invalid_params` error.
    pub const INVALID_PARAMS: &str = "invalid-params";
    /// No such tool.
    pub const UNKNOWN_TOOL: &str = "unknown-tool";
    /// The request needs a [`super::Request::ShimHello`] first.
    pub const NOT_A_SHIM: &str = "not-a-shim";
    /// The journal could not make the change durable (disk full, I/O error);
    /// nothing changed.
    pub const STORAGE: &str = "storage";
    /// The daemon is shutting down or handing over.
    pub const UNAVAILABLE: &str = "unavailable";
    /// This daemon does not know that request (an older daemon).
    pub const UNSUPPORTED: &str = "unsupported";
    /// A bug; the message says what.
    pub const INTERNAL: &str = "internal";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path and serde's derive read every frame the same.
    #[test]
    fn from_slice_agrees_with_the_derive() {
        let frames = [
            ServerFrame::Reply {
                id: 7,
                reply: Reply::Ok {
                    value: serde_json::json!({"sessions": [{"name": "a\"b\u{e9}", "n": 1.5}], "ok": true}),
                },
            },
            ServerFrame::Reply {
                id: 8,
                reply: Reply::error("busy", "the daemon is busy"),
            },
            ServerFrame::Event {
                id: 9,
                event: serde_json::json!({"progress": 1}),
            },
            ServerFrame::Refused {
                reason: "protocol 2 vs 3".into(),
            },
        ];
        for f in &frames {
            let bytes = serde_json::to_vec(f).unwrap();
            let fast = ServerFrame::from_slice(&bytes).unwrap();
            let slow: ServerFrame = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
        }
        // Escaped keys and tags still decode (the peek falls back).
        let escaped = br#"{"fr\u0061me":"reply","id":1,"reply":{"status":"\u006fk","value":[1]}}"#;
        let f = ServerFrame::from_slice(escaped).unwrap();
        assert!(
            matches!(f, ServerFrame::Reply { id: 1, reply: Reply::Ok { ref value } } if value == &serde_json::json!([1]))
        );
        assert!(ServerFrame::from_slice(b"{\"frame\":\"reply\",\"id\":1}").is_err());
        assert!(ServerFrame::from_slice(b"not json").is_err());
    }
}
