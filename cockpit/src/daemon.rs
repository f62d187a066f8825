//! Talking to the daemon: one status snapshot, a live subscription, nudges
//! and operator messages ([`oxtail_proto::Ctl`] `status`, `subscribe`,
//! `nudge`, `operator_message`). Blocking, no runtime: the TUI runs the
//! subscription on its own thread.

use anyhow::{anyhow, bail, Result};
use oxtail_proto::client::{connect_or_spawn, Client, ConnectError};
use oxtail_proto::status::{ActionAnswer, StatusEvent, StatusSnapshot};
use oxtail_proto::{error_code, paths, Ctl, Reply, Request, Role};
use std::time::Duration;

/// What to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Any directory inside the project (the cockpit sends its cwd by
    /// default).
    pub project_root: Option<String>,
    /// Every project.
    pub all: bool,
    /// Newest comms entries wanted.
    pub comms_limit: usize,
}

/// Errors a person can act on.
#[derive(Debug)]
pub enum DaemonError {
    /// The daemon answered that it does not implement the request (an older
    /// daemon still running): restart it.
    Unsupported(String),
    /// Anything else, as a sentence.
    Other(anyhow::Error),
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Unsupported(m) => write!(
                f,
                "the running oxtail daemon does not serve the cockpit yet ({m}); \
                 restart it with this oxtail (`oxtail ctl shutdown`, then run this again)"
            ),
            DaemonError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for DaemonError {}

impl From<anyhow::Error> for DaemonError {
    fn from(e: anyhow::Error) -> Self {
        DaemonError::Other(e)
    }
}

/// Whether an error reply means "this daemon does not know the request".
pub fn is_unsupported(code: &str, message: &str) -> bool {
    code == error_code::UNSUPPORTED
        || code == error_code::UNKNOWN_TOOL
        || message.to_ascii_lowercase().contains("unknown variant")
}

/// Connects (starting the daemon when none runs).
///
/// # Errors
/// When no daemon can be reached or started, or it refuses us.
pub fn connect() -> Result<Client, DaemonError> {
    match connect_or_spawn(Role::Cockpit, true, Duration::from_secs(5)) {
        Ok(c) => Ok(c),
        Err(ConnectError::NoDaemon(e)) => Err(DaemonError::Other(anyhow!(
            "no oxtail daemon answers at {} and none could be started ({e})",
            paths::socket_path().display()
        ))),
        Err(e) => Err(DaemonError::Other(anyhow!("{e}"))),
    }
}

fn value_of(reply: Reply) -> Result<serde_json::Value, DaemonError> {
    match reply {
        Reply::Ok { value } => Ok(value),
        Reply::Error { code, message } if is_unsupported(&code, &message) => {
            Err(DaemonError::Unsupported(format!("{code}: {message}")))
        }
        Reply::Error { code, message } => Err(DaemonError::Other(anyhow!(
            "the daemon said {code}: {message}"
        ))),
    }
}

/// One status snapshot.
///
/// # Errors
/// Connection errors, an error reply, or a reply that does not match the
/// schema (the message names the field).
pub fn status(scope: &Scope) -> Result<StatusSnapshot, DaemonError> {
    let mut c = connect()?;
    c.set_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| DaemonError::Other(e.into()))?;
    let reply = c
        .call(Request::Ctl(Ctl::Status {
            project_root: scope.project_root.clone(),
            all: scope.all,
            comms_limit: scope.comms_limit,
        }))
        .map_err(|e| DaemonError::Other(anyhow!("status request failed: {e}")))?;
    let v = value_of(reply)?;
    parse_snapshot(v).map_err(DaemonError::Other)
}

/// Parses a snapshot, naming the offending field on mismatch.
///
/// # Errors
/// When `v` does not match [`StatusSnapshot`].
pub fn parse_snapshot(v: serde_json::Value) -> Result<StatusSnapshot> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        anyhow!(
            "the daemon's snapshot does not match the status schema at `{}`: {}",
            e.path(),
            e.inner()
        )
    })
}

/// Subscribes and calls `on_snapshot` for every pushed snapshot until the
/// subscription ends. Blocks; run it on its own thread.
///
/// # Errors
/// Connection errors, an error reply (e.g. [`DaemonError::Unsupported`]),
/// or the daemon closing the connection. A clean end (the daemon answered
/// the subscription, e.g. at shutdown) is `Ok`.
pub fn subscribe(
    scope: &Scope,
    mut on_snapshot: impl FnMut(StatusSnapshot),
) -> Result<(), DaemonError> {
    let mut c = connect()?;
    c.set_timeout(None)
        .map_err(|e| DaemonError::Other(e.into()))?;
    let mut bad: Option<anyhow::Error> = None;
    let reply = c
        .call_with_events(
            Request::Ctl(Ctl::Subscribe {
                project_root: scope.project_root.clone(),
                all: scope.all,
                comms_limit: scope.comms_limit,
            }),
            |ev| match serde_json::from_value::<StatusEvent>(ev) {
                Ok(StatusEvent::Snapshot { snapshot }) => on_snapshot(*snapshot),
                Err(e) => {
                    bad = Some(anyhow!(
                        "a pushed status event did not match the schema: {e}"
                    ))
                }
            },
        )
        .map_err(|e| DaemonError::Other(anyhow!("subscription lost: {e}")))?;
    if let Some(e) = bad {
        return Err(DaemonError::Other(e));
    }
    value_of(reply).map(|_| ())
}

fn action(ctl: Ctl) -> Result<ActionAnswer, DaemonError> {
    let mut c = connect()?;
    c.set_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| DaemonError::Other(e.into()))?;
    let reply = c
        .call(Request::Ctl(ctl))
        .map_err(|e| DaemonError::Other(anyhow!("request failed: {e}")))?;
    let v = value_of(reply)?;
    serde_json::from_value(v).map_err(|e| DaemonError::Other(anyhow!("unexpected answer: {e}")))
}

/// Wakes `target` through the wake engine so it reads its queued mail;
/// with nothing queued the answer is `nothing_to_deliver` and it is not
/// woken, unless `check_in` asks it to check in anyway.
///
/// # Errors
/// As [`status`]; an `ok: false` answer is returned as is.
pub fn nudge(
    target: &str,
    project_root: Option<String>,
    check_in: bool,
) -> Result<ActionAnswer, DaemonError> {
    action(Ctl::Nudge {
        target: target.to_string(),
        project_root,
        check_in,
    })
}

/// Asks the daemon to interrupt `target`'s running turn (a Codex agent
/// reached through its app-server; cockpit `i`, confirmed).
///
/// # Errors
/// As [`status`].
pub fn interrupt(target: &str, project_root: Option<String>) -> Result<ActionAnswer, DaemonError> {
    action(Ctl::Interrupt {
        target: target.to_string(),
        project_root,
    })
}

/// Sends an operator message to `target`.
///
/// # Errors
/// As [`status`]; an empty body is refused here, before the daemon.
pub fn operator_message(
    target: &str,
    body: &str,
    project_root: Option<String>,
) -> Result<ActionAnswer, DaemonError> {
    if body.trim().is_empty() {
        return Err(DaemonError::Other(anyhow!("the message is empty")));
    }
    action(Ctl::OperatorMessage {
        target: target.to_string(),
        body: body.to_string(),
        project_root,
    })
}

/// One line describing an action's answer: `nudged main: fired`.
pub fn describe(verb: &str, name: &str, a: &ActionAnswer) -> String {
    if !a.ok {
        return format!(
            "{verb} {name} failed: {}{}",
            a.error.as_deref().unwrap_or("error"),
            a.message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
    }
    let mut s = format!(
        "{verb} {name}: {} ({})",
        a.wake_status_text.as_deref().unwrap_or("no wake"),
        a.wake_status.as_deref().unwrap_or("none")
    );
    if let Some(id) = &a.message_id {
        s.push_str(&format!(" · {id}"));
    }
    s
}

/// Reads a snapshot saved with `oxtail status --json`.
///
/// # Errors
/// When the file cannot be read or does not match the schema.
pub fn read_snapshot_file(path: &std::path::Path) -> Result<StatusSnapshot> {
    let bytes = std::fs::read(path).map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow!("{} is not JSON: {e}", path.display()))?;
    let s = parse_snapshot(v)?;
    if s.schema_version > oxtail_proto::status::STATUS_SCHEMA_VERSION {
        bail!(
            "{} has status schema {}, newer than this oxtail understands ({})",
            path.display(),
            s.schema_version,
            oxtail_proto::status::STATUS_SCHEMA_VERSION
        );
    }
    Ok(s)
}
