//! The status snapshot: what `oxtail status --json` prints and what the
//! cockpit (`oxtail oxpit`) renders. The daemon builds it for
//! [`crate::Ctl::Status`] and pushes it for [`crate::Ctl::Subscribe`].
//!
//! This is a stable, documented schema for scripts (`docs/status-schema.md`).
//! Rules:
//! * Every timestamp is a `*_ms` field holding **milliseconds since the Unix
//!   epoch** (UTC), taken from the daemon's clock. Durations are never sent:
//!   a reader computes an age as `generated_at_ms - since_ms` (or against its
//!   own clock, as the live cockpit does between pushes).
//! * Enumerations are lowercase `snake_case` strings.
//! * Optional facts are `null` when unknown, never omitted, so a script can
//!   rely on every key being present.
//! * Additive changes (new keys, new enum values) keep
//!   [`STATUS_SCHEMA_VERSION`]; readers must ignore unknown keys and treat an
//!   unknown enum value like `unknown`. Removing or renaming a field bumps it.

use serde::{Deserialize, Serialize};

/// The version of this schema; bumped only on incompatible changes.
pub const STATUS_SCHEMA_VERSION: u32 = 1;

/// One picture of a project's fleet (or of every project with `all`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusSnapshot {
    /// [`STATUS_SCHEMA_VERSION`] of the producer.
    pub schema_version: u32,
    /// When the daemon built this snapshot, ms since the Unix epoch.
    pub generated_at_ms: u64,
    /// The project shown: its main work tree (as `list_project_sessions`
    /// reports `project_root`). `null` when the snapshot covers every project
    /// (`all: true`).
    pub project_root: Option<String>,
    /// One row per agent (client session) in scope, ended sessions included
    /// (their `liveness` is `ended`), ordered by name then session id.
    pub agents: Vec<AgentRow>,
    /// tmux panes in the project that host no agent (shells, servers, …),
    /// readable with `read_session` in pane mode.
    pub panes: Vec<PaneRow>,
    /// The wait-graph: one edge per ask in flight or pending.
    pub waits: Vec<WaitEdge>,
    /// The newest comms-log entries in scope, oldest first, at most the
    /// requested `comms_limit`.
    pub comms: Vec<CommsEntry>,
    /// How many comms-log entries the daemon holds in scope (may exceed
    /// `comms.len()` when the limit cut older ones).
    pub comms_total: u64,
    /// Files held or recently edited in scope, newest first: live peers'
    /// leases and edits within the touch window (absent from older daemons).
    #[serde(default)]
    pub files: Vec<FileRow>,
    /// Federation through NATS (issue 16): `null` when it is off (the
    /// daemon opens no network socket), else where it connects and the
    /// link's state (absent from older daemons).
    #[serde(default)]
    pub federation: Option<FederationStatus>,
}

/// Federation's state, for `oxtail status`, `oxtail doctor` and the cockpit.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct FederationStatus {
    /// The NATS server, without credentials ([`redact_url`]).
    pub url: String,
    /// Connected now.
    pub link_up: bool,
    /// Why not, when down.
    pub error: Option<String>,
    /// This daemon's federation id.
    pub daemon: String,
    /// Local projects that federate (have a key).
    pub projects: u64,
    /// Remote agents known in those projects.
    pub remote_agents: u64,
    /// Messages waiting in the outbox for the link.
    pub outbox: u64,
    /// The plain-text warning ([`federation_warning`]), when it applies.
    pub warning: Option<String>,
}

/// One agent's lease on, or recent edit of, a file.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct FileRow {
    /// A work-tree relative path (a lease may be a directory or glob).
    pub path: String,
    /// The agent's name, else its session id.
    pub agent: String,
    /// `exclusive`, `shared` (leases) or `edited`.
    pub what: String,
    /// The agent's branch, if on one.
    pub branch: Option<String>,
    /// Edits: when, ms since the epoch. Leases: when it lapses.
    pub at_ms: u64,
    /// Another live agent edited or holds the same path in the same work
    /// tree.
    pub conflict: bool,
}

/// One agent (one client session).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentRow {
    /// The agent's identity: Claude Code's session id or a Codex thread id.
    pub client_session_id: String,
    /// Its name, unique among the project's live agents and a valid
    /// target (chosen, given at launch, its tmux session, else `claude-1`);
    /// `None` only for a moment after it first appears.
    pub name: Option<String>,
    /// `claude-code`, `codex`, `gemini`, `opencode` or `other`.
    pub client_type: String,
    /// The project the agent belongs to (main work tree). Useful with `all`.
    pub project_root: String,
    /// Is the agent's seat (client process) alive, and is it doing anything.
    pub liveness: Liveness,
    /// The hook-derived busy/idle mark.
    pub activity: Activity,
    /// The tool the agent is running or ran last, from its latest
    /// `PreToolUse` hook event; `null` when none was seen.
    pub current_tool: Option<ToolBadge>,
    /// The state card (`set_my_state {purpose}`), if set.
    pub purpose: Option<StateCard>,
    /// Messages queued for the agent and not yet delivered.
    pub unread: u64,
    /// Obligations (delegations) the agent owns and has not closed.
    pub open_obligations: u64,
    /// The ask the agent waits on, if one is in flight or pending (the
    /// oldest when several are).
    pub awaiting: Option<Awaiting>,
    /// The git work tree the agent works in (or its directory outside git).
    pub worktree: Option<String>,
    /// The checked-out branch, if on one.
    pub branch: Option<String>,
    /// Where the agent's seat lives in tmux, when the live process tree
    /// verified it (never from what the agent says about itself).
    pub tmux: Option<TmuxLocation>,
    /// How a wake reaches it now: `app_server` (Codex app-server
    /// `turn/start`/`turn/steer`), `rewake` (Claude Code idle-wait hook),
    /// `keys` (typed into its verified pane) or `hooks_only`. Absent from
    /// older daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_route: Option<String>,
    /// Set for an agent on another machine (federation, issue 16): that
    /// machine's host name. Its `wake_route` is `remote` (its own daemon
    /// wakes it) and its `liveness` is what that daemon published
    /// (`unknown` once it stopped heartbeating). Absent for local agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Whether an agent is alive, and active.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Liveness {
    /// `live`, `idle`, `dead`, `ended` or `unknown`.
    pub state: LivenessState,
    /// The last sign of life (hook event, tool call, shim connection), ms
    /// since the Unix epoch; for `dead`, when the daemon saw the seat gone;
    /// for `ended`, the SessionEnd time. `null` when never seen.
    pub since_ms: Option<u64>,
}

/// [`Liveness::state`] values.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum LivenessState {
    /// Seat process alive and active: its last hook event or tool call is
    /// recent (within `OXTAIL_ACTIVITY_BUSY_TTL_MS`) and it is busy. Glyph 🟢.
    Live,
    /// Seat process alive, not active. Glyph 🟡.
    Idle,
    /// Seat process gone (or the pid now belongs to another process). ⚫.
    Dead,
    /// The session ended (SessionEnd hook). ⚫.
    Ended,
    /// No seat known and no shim connected. ⚪.
    #[default]
    #[serde(other)]
    Unknown,
}

impl LivenessState {
    /// Alive for deadlock purposes: `live` or `idle`.
    pub fn is_alive(self) -> bool {
        matches!(self, LivenessState::Live | LivenessState::Idle)
    }

    /// Gone for orphan purposes: `dead` or `ended`.
    pub fn is_gone(self) -> bool {
        matches!(self, LivenessState::Dead | LivenessState::Ended)
    }
}

/// The hook-derived activity mark: UserPromptSubmit and every PreToolUse
/// mark busy, Stop marks idle.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Activity {
    /// `busy`, `idle` or `unknown` (no hook event seen).
    pub state: ActivityState,
    /// When the mark was set (the hook event's arrival), ms since the Unix
    /// epoch; `null` when unknown.
    pub since_ms: Option<u64>,
}

/// [`Activity::state`] values.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActivityState {
    /// Mid-turn.
    Busy,
    /// Between turns.
    Idle,
    /// No hook event seen (hooks not installed, or nothing happened yet).
    #[default]
    #[serde(other)]
    Unknown,
}

/// The current-tool badge.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolBadge {
    /// `tool_name` exactly as the hook payload spells it: Claude Code 2.1.329
    /// sends `Bash`, `Edit`, `Write`, `Read`, `Grep`, `Glob`,
    /// `mcp__oxtail__send_message`, …; Codex 0.169.0 sends `Bash` for its
    /// shell tool and `mcp__oxtail__<tool>` for MCP tools.
    pub tool: String,
    /// The file the tool works on, from `tool_input.file_path` (Edit, Write,
    /// Read) or `tool_input.path`, when present.
    pub file_path: Option<String>,
    /// When the PreToolUse event arrived, ms since the Unix epoch.
    pub since_ms: u64,
}

/// A state card.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct StateCard {
    /// The card text (at most 200 characters).
    pub purpose: String,
    /// When it was set, ms since the Unix epoch.
    pub set_at_ms: Option<u64>,
}

/// The ask an agent waits on.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Awaiting {
    /// The ask's request id (a correlated reply carries it in `reply_to`).
    pub request_id: String,
    /// The awaited agent's client_session_id.
    pub target: String,
    /// The awaited agent's name, if it has one.
    pub target_name: Option<String>,
    /// When the ask was sent, ms since the Unix epoch.
    pub since_ms: u64,
    /// `in_flight` (an `ask_peer` call is blocked on it) or `pending` (the
    /// call returned; a late reply will wake the asker).
    pub kind: WaitKind,
}

/// Where an agent's seat lives in tmux.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct TmuxLocation {
    /// The tmux server's socket path (from the seat's `TMUX`, first field),
    /// so a cockpit on another server can still reach it. `null`: the
    /// default server.
    pub socket: Option<String>,
    /// The pane id, `%N`.
    pub pane_id: String,
    /// The tmux session name.
    pub session_name: String,
    /// The window index in that session.
    pub window_index: u32,
    /// The window name.
    pub window_name: Option<String>,
}

/// A tmux pane in the project that hosts no agent.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct PaneRow {
    /// Where it is (same shape as an agent's).
    pub tmux: TmuxLocation,
    /// The pane's foreground command (`pane_current_command`), e.g. `bash`.
    pub command: String,
    /// The pane's working directory (`pane_current_path`).
    pub cwd: String,
}

/// One edge of the wait-graph: `from` waits for `to` to answer
/// `request_id`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct WaitEdge {
    /// The asker's client_session_id.
    pub from: String,
    /// The asker's name.
    pub from_name: Option<String>,
    /// The awaited agent's client_session_id.
    pub to: String,
    /// The awaited agent's name.
    pub to_name: Option<String>,
    /// The ask's request id.
    pub request_id: String,
    /// When the ask was sent, ms since the Unix epoch.
    pub since_ms: u64,
    /// `in_flight` or `pending`.
    pub kind: WaitKind,
}

/// Whether an ask's caller is still blocked.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    /// An `ask_peer` call is blocked waiting for the reply.
    #[default]
    InFlight,
    /// The call timed out or was cancelled; the ask is a durable pending ask
    /// (kept for `OXTAIL_PENDING_ASK_TTL_MS`).
    Pending,
}

/// One comms-log entry: a message between agents (or from the operator).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct CommsEntry {
    /// When it was sent (enqueued), ms since the Unix epoch.
    pub at_ms: u64,
    /// Its message id (`msg_…`).
    pub message_id: String,
    /// Sender client_session_id (`operator` for operator messages).
    pub from: String,
    /// The sender's name now (its name at send time when it is gone).
    pub from_name: Option<String>,
    /// Receiver client_session_id.
    pub to: String,
    /// Receiver name.
    pub to_name: Option<String>,
    /// What the message is.
    pub kind: CommsKind,
    /// The body's first characters (at most 200 characters, whole
    /// characters, newlines kept), for display.
    pub body_preview: String,
    /// The whole body's size in bytes.
    pub body_bytes: u64,
    /// Set on asks: the id a correlated reply carries in `reply_to`.
    pub request_id: Option<String>,
    /// The request_id or message_id this message answers.
    pub reply_to: Option<String>,
    /// For a delegation (`action_required`), the obligation's state now.
    pub obligation: Option<ObligationState>,
    /// Whether the receiver has had it handed over (drained) yet.
    pub delivered: bool,
}

/// [`CommsEntry::kind`] values.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum CommsKind {
    /// A plain `send_message`.
    #[default]
    Message,
    /// An `ask_peer` question (carries `request_id`). Marker ❓.
    Ask,
    /// A reply (`reply_to_message`, or a send with `reply_to`). Marker ↩.
    Reply,
    /// A delegation (`action_required: true`): an obligation. Marker ⚑.
    Delegation,
    /// `complete_work`: the obligation's DONE outcome. Marker ⚑✓.
    Done,
    /// `block_work`: the obligation's BLOCKED outcome. Marker ⚑✗.
    Blocked,
    /// A message from the person at the cockpit (`origin: "operator"`).
    Operator,
    /// Not a message: a file-conflict warning (issue 14). `from` is the
    /// agent about to edit, `to` the live peer that edited the file or holds
    /// an exclusive lease on it; `body_preview` says which file, what the
    /// peer did and what the warning did (`warned`, `asked`, `denied`);
    /// `message_id` is `conflict-<n>`; `delivered` is true. Kept in the
    /// daemon's memory only (a restart forgets them). Marker ⚠.
    Conflict,
    /// A kind this reader does not know (a newer daemon); shown as a message.
    #[serde(other)]
    Other,
}

/// The state of a delegation's obligation.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ObligationState {
    /// Not closed yet.
    Open,
    /// Closed with `complete_work`.
    Done,
    /// Closed with `block_work`.
    Blocked,
}

/// What [`crate::Ctl::Subscribe`] pushes as the `event` of each
/// [`crate::ServerFrame::Event`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StatusEvent {
    /// The whole picture. The first event of a subscription is always one,
    /// sent at once; later ones follow each change (coalesced: at most one
    /// every 100 ms).
    Snapshot {
        /// The snapshot.
        snapshot: Box<StatusSnapshot>,
    },
}

/// The answer to [`crate::Ctl::Nudge`] and [`crate::Ctl::OperatorMessage`]
/// (the `value` of `Reply::Ok`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionAnswer {
    /// `false` for errors the operator can act on (unknown target, …).
    pub ok: bool,
    /// The resolved target's client_session_id.
    pub target: Option<String>,
    /// The resolved target's name.
    pub target_name: Option<String>,
    /// The wake engine's outcome: `fired`, `fired_unconfirmed`,
    /// `skipped_busy`, `skipped_debounced`, `skipped_no_fresh_idle`,
    /// `skipped_rate_limited`, `skipped_deduped`, `skipped_no_target`,
    /// `disabled`, `nothing_to_deliver` (a nudge with nothing queued), or a
    /// newer documented state.
    pub wake_status: Option<String>,
    /// [`wake_status_text`] of `wake_status`: what happened, in words a
    /// person understands.
    #[serde(default)]
    pub wake_status_text: Option<String>,
    /// For an operator message: its message id.
    pub message_id: Option<String>,
    /// Error code when `ok` is false (`target-not-found`, `ambiguous-target`,
    /// `body-too-large`, …).
    pub error: Option<String>,
    /// A sentence for the person.
    pub message: Option<String>,
}

/// A `wake_status` code in words a person understands (for the cockpit,
/// `oxtail send` and scripts that show it). Unknown codes get a generic
/// sentence naming the code.
pub fn wake_status_text(code: &str) -> String {
    match code {
        "fired" => "woken: its turn has started".into(),
        "fired_unconfirmed" => {
            "woken: the wake was typed into its pane (no hook has confirmed it yet)".into()
        }
        "skipped_busy" => "not woken: it is busy and will see the mail at its next tool call".into(),
        "skipped_debounced" => "not woken: it was woken less than a second ago".into(),
        "skipped_rate_limited" => "not woken: it was woken a few seconds ago".into(),
        "skipped_deduped" => "not woken: this reply already woke it once".into(),
        "skipped_no_fresh_idle" => {
            "not woken: it has not been idle recently; the mail waits for its next turn".into()
        }
        "skipped_no_target" => {
            "not woken: no way to reach it (no armed idle hook and no tmux pane of its own); the mail waits until it reads".into()
        }
        "skipped_store_error" => "not woken: the daemon could not record the wake".into(),
        "disabled" => "not woken: wakes are switched off".into(),
        "nothing_to_deliver" => {
            "not woken: nothing is queued for it (ask it to check in to wake it anyway)".into()
        }
        other => format!("wake status {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_statuses_have_words() {
        assert!(wake_status_text("nothing_to_deliver").contains("nothing is queued"));
        assert!(wake_status_text("fired").starts_with("woken"));
        assert_eq!(wake_status_text("zzz"), "wake status zzz");
    }

    #[test]
    fn unknown_enum_values_read_as_fallbacks() {
        let l: Liveness = serde_json::from_str(r#"{"state":"zombie","since_ms":null}"#).unwrap();
        assert_eq!(l.state, LivenessState::Unknown);
        let k: CommsKind = serde_json::from_str(r#""carrier_pigeon""#).unwrap();
        assert_eq!(k, CommsKind::Other);
    }

    #[test]
    fn snapshot_round_trips_and_spells_fields() {
        let s = StatusSnapshot {
            schema_version: STATUS_SCHEMA_VERSION,
            generated_at_ms: 1,
            project_root: Some("/p".into()),
            agents: vec![AgentRow {
                client_session_id: "a".into(),
                liveness: Liveness {
                    state: LivenessState::Live,
                    since_ms: Some(1),
                },
                ..Default::default()
            }],
            ..Default::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["agents"][0]["liveness"]["state"], "live");
        assert!(v["agents"][0]["tmux"].is_null());
        assert_eq!(serde_json::from_value::<StatusSnapshot>(v).unwrap(), s);
    }
}

/// `url` without a password or token: `nats://user:pw@h:4222` →
/// `nats://user@h:4222`, `nats://token@h` → `nats://***@h`. For logs, status
/// and doctor output (federation, issue 16).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = match userinfo.split_once(':') {
                Some((u, _)) => u.to_string(),
                None => "***".to_string(),
            };
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_string(),
    }
}

/// The warning for a federation URL (`OXTAIL_FEDERATION_URL`) that would
/// carry message bodies in the clear to another machine: plain `nats://`
/// (not `tls://`) to a host that is not loopback (`localhost`, `127.*`,
/// `::1`), without credentials (`creds`: `OXTAIL_FEDERATION_CREDS` set, or a
/// user in the URL). `None` when none of that applies.
pub fn federation_warning(url: &str, creds: bool) -> Option<String> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("nats", url));
    if scheme.eq_ignore_ascii_case("tls") {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or(rest);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let host = if let Some(h) = hostport.strip_prefix('[') {
        h.split(']').next().unwrap_or(h)
    } else {
        hostport.split(':').next().unwrap_or(hostport)
    };
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.starts_with("127.") || host == "::1";
    if loopback || creds || userinfo.is_some() {
        return None;
    }
    Some(format!(
        "federation sends message bodies to {host} over plain nats:// without credentials; use tls:// or set OXTAIL_FEDERATION_CREDS"
    ))
}

#[cfg(test)]
mod federation_tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_plain_remote_links_warned() {
        assert_eq!(redact_url("nats://u:pw@h:4222"), "nats://u@h:4222");
        assert_eq!(redact_url("nats://tok@h:4222"), "nats://***@h:4222");
        assert_eq!(redact_url("tls://h:4222"), "tls://h:4222");
        assert!(federation_warning("nats://nats.example.com:4222", false).is_some());
        assert!(federation_warning("nats://127.0.0.1:4222", false).is_none());
        assert!(federation_warning("nats://localhost", false).is_none());
        assert!(federation_warning("tls://nats.example.com", false).is_none());
        assert!(federation_warning("nats://nats.example.com", true).is_none());
        assert!(federation_warning("nats://u:p@nats.example.com", false).is_none());
    }
}
