//! `read_session`, second half: the I/O. Reads a peer's transcript (Claude
//! Code or Codex) or its tmux pane, following the [`ReadPlan`] the pure half
//! (`tools::read_session_plan`) made, on a blocking thread off the actor.
//!
//! The result has CONTRACT §6's shape, every field always present (no
//! `ok`): `session`, `mode` (`transcript` | `pane` | `none`), `client_type`,
//! `messages` (oldest to newest, or null), `pane_text`, `truncated`,
//! `count_truncated`, `bytes_truncated`, `total_messages`,
//! `total_messages_exact`, the provenance (`resolved_session_id`,
//! `session_id_source`, `transcript_mtime` as RFC 3339,
//! `transcript_age_seconds`), `project_root`, `inferred` and `error`.
//! oxtail adds `name` (the peer's oxtail name) and `note` (browse only: a
//! transcript is never proof that a peer replied).

use crate::transcript::{self, ReadOpts, Role, Turn};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const BROWSE_ONLY: &str = "Browse only: a transcript can lag or be a rotated thread, so it is never proof that a peer replied; replies arrive in your mailbox.";

/// How long `tmux capture-pane` may take before the read gives up on the
/// pane (a hung tmux server costs one empty answer, not a stuck call).
const PANE_TIMEOUT: Duration = Duration::from_secs(2);

/// What `read_session`'s `mode` asked for.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// The transcript if the peer has one, else its pane.
    Auto,
    /// Only the transcript.
    Transcript,
    /// Only the pane.
    Pane,
}

/// A tmux pane the process tree verified.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PaneRef {
    /// `%N`.
    pub id: String,
    /// Its tmux server socket, when known.
    pub socket: Option<PathBuf>,
}

/// Where and how to read, decided by the pure half (every budget already
/// defaulted and clamped as CONTRACT §6 says).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    /// The canonical tmux session name, else the `name` asked for.
    pub session: String,
    /// The peer's oxtail name (an agent), if any.
    pub name: Option<String>,
    /// `claude-code`, `codex`, …; `None` for a pane with no agent.
    pub client_type: Option<String>,
    /// The agent's session id; `None` for a pane with no agent.
    pub resolved_session_id: Option<String>,
    /// How that id was resolved (CONTRACT §3's `session_id_source`).
    pub session_id_source: Option<String>,
    /// The agent's working directory (Claude Code's transcript folder).
    pub cwd: Option<String>,
    /// Its verified pane, if any.
    pub pane: Option<PaneRef>,
    /// What to read.
    pub mode: ReadMode,
    /// Newest messages kept (1-1000).
    pub limit: usize,
    /// Bytes of message text kept, counted from the newest (256-1 000 000).
    pub max_bytes: usize,
    /// Pane lines of scrollback (20-2000).
    pub pane_lines: u64,
    /// Pane characters kept, the last ones (500-200 000).
    pub pane_max_chars: usize,
    /// Give each message its timestamp.
    pub include_timestamps: bool,
    /// Read only the transcript's last [`transcript::DEFAULT_TAIL_SCAN`]
    /// bytes.
    pub tail_scan: bool,
    /// The project read in (its root).
    pub project_root: String,
    /// True when `project_root` was not given.
    pub inferred: bool,
}

/// The answer with every field at its empty value: `mode: "none"`, null
/// content and provenance, `error` as given (CONTRACT §6 failures).
pub fn failure(session: &str, project_root: &str, inferred: bool, error: &str) -> Value {
    json!({
        "session": session,
        "mode": "none",
        "client_type": null,
        "messages": null,
        "pane_text": null,
        "truncated": false,
        "count_truncated": false,
        "bytes_truncated": false,
        "total_messages": null,
        "total_messages_exact": false,
        "resolved_session_id": null,
        "session_id_source": null,
        "transcript_mtime": null,
        "transcript_age_seconds": null,
        "project_root": project_root,
        "inferred": inferred,
        "error": error,
    })
}

/// The answer's frame for an in-scope read: provenance set, no content yet.
fn base(plan: &ReadPlan) -> Value {
    let mut v = failure(&plan.session, &plan.project_root, plan.inferred, "");
    v["error"] = Value::Null;
    v["client_type"] = json!(plan.client_type);
    v["resolved_session_id"] = json!(plan.resolved_session_id);
    v["session_id_source"] = json!(plan.session_id_source);
    if let Some(n) = &plan.name {
        v["name"] = json!(n);
    }
    v["note"] = json!(BROWSE_ONLY);
    v
}

fn transcript_file(plan: &ReadPlan, home: Option<&Path>) -> Option<PathBuf> {
    let id = plan.resolved_session_id.as_deref()?;
    let home = home?;
    match plan.client_type.as_deref() {
        Some("codex") => {
            let codex_home = std::env::var_os("CODEX_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".codex"));
            transcript::find_codex_rollout(&codex_home, id)
        }
        _ => {
            let config_dir = std::env::var("CLAUDE_CONFIG_DIR").ok();
            let claude_dir = transcript::claude_dir(config_dir.as_deref(), home);
            let direct = plan
                .cwd
                .as_deref()
                .and_then(|cwd| transcript::claude_transcript_path(&claude_dir, Path::new(cwd), id))
                .filter(|p| p.exists());
            direct.or_else(|| transcript::find_claude_transcript(&claude_dir, id))
        }
    }
}

/// The last `lines` lines of the pane's scrollback, or why not.
fn capture_pane(pane: &PaneRef, lines: u64) -> Result<String, String> {
    if !crate::tmux::valid_pane_id(&pane.id) {
        return Err(format!("'{}' is not a tmux pane id", pane.id));
    }
    let mut cmd = std::process::Command::new("tmux");
    if let Some(s) = &pane.socket {
        cmd.arg("-S").arg(s);
    }
    cmd.args([
        "capture-pane",
        "-p",
        "-J",
        "-t",
        &pane.id,
        "-S",
        &format!("-{lines}"),
    ]);
    let out = crate::tmux::output_within(cmd, PANE_TIMEOUT).map_err(|e| {
        if e.kind() == std::io::ErrorKind::TimedOut {
            "tmux did not answer in time".to_string()
        } else {
            format!("tmux: {e}")
        }
    })?;
    if !out.status.success() {
        return Err(format!(
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// The last `max` characters of `text`, and whether it was cut.
fn last_chars(text: &str, max: usize) -> (&str, bool) {
    let n = text.chars().count();
    if n <= max {
        return (text, false);
    }
    let start = text.char_indices().nth(n - max).map_or(0, |(i, _)| i);
    (&text[start..], true)
}

/// The first `room` bytes of `text` (on a character boundary).
fn head_bytes(text: &str, room: usize) -> &str {
    let mut end = room.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A transcript turn as a contract message: `{role, text, timestamp}`, plus
/// oxtail's `tool_calls` (one line per call) when the step made any.
fn message_json(t: &Turn, timestamps: bool) -> Value {
    let mut m = json!({
        "role": if t.role == Role::User { "user" } else { "assistant" },
        "text": t.text,
        "timestamp": if timestamps { json!(t.timestamp) } else { Value::Null },
    });
    if !t.tool_calls.is_empty() {
        m["tool_calls"] = json!(t.tool_calls);
    }
    m
}

fn size(t: &Turn) -> usize {
    t.text.len() + t.tool_calls.iter().map(|c| c.len() + 1).sum::<usize>()
}

/// Reads the transcript into `v`; `Err` when the file cannot be read.
fn read_transcript(plan: &ReadPlan, path: &Path, v: &mut Value) -> Result<(), String> {
    let opts = ReadOpts {
        limit: usize::MAX,
        max_bytes: usize::MAX,
        tail_scan: if plan.tail_scan {
            transcript::DEFAULT_TAIL_SCAN
        } else {
            u64::MAX
        },
        include_tool_results: false,
    };
    let read = transcript::read_turns(path, &opts).map_err(|e| e.to_string())?;
    v["mode"] = json!("transcript");
    let mtime = read.provenance.mtime_ms;
    v["transcript_mtime"] = json!(mtime.and_then(|ms| {
        chrono::DateTime::from_timestamp_millis(ms as i64)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }));
    v["transcript_age_seconds"] = json!(read.provenance.age_ms.map(|ms| ms / 1000));
    // Newest first from the reader: keep `limit`, then `max_bytes` counted
    // from the newest; the oldest kept may be cut, and says by how much.
    let total = read.turns.len();
    let kept_n = total.min(plan.limit);
    let mut kept: Vec<Turn> = Vec::with_capacity(kept_n);
    let mut used = 0usize;
    let mut bytes_truncated = false;
    for t in read.turns.into_iter().take(kept_n) {
        let sz = size(&t);
        if used + sz <= plan.max_bytes {
            used += sz;
            kept.push(t);
            continue;
        }
        bytes_truncated = true;
        let room = plan.max_bytes.saturating_sub(used);
        if room > 0 || kept.is_empty() {
            let mut t = t;
            let head = head_bytes(&t.text, room).to_string();
            let cut = t.text.len() - head.len();
            t.text = format!("{head}…[+{cut}B truncated]");
            t.tool_calls.clear();
            kept.push(t);
        }
        break;
    }
    let count_truncated = total > plan.limit || !read.reached_start;
    kept.reverse();
    v["messages"] = Value::Array(
        kept.iter()
            .map(|t| message_json(t, plan.include_timestamps))
            .collect(),
    );
    v["count_truncated"] = json!(count_truncated);
    v["bytes_truncated"] = json!(bytes_truncated);
    v["truncated"] = json!(count_truncated || bytes_truncated);
    v["total_messages_exact"] = json!(read.reached_start);
    v["total_messages"] = if read.reached_start {
        json!(total)
    } else {
        Value::Null
    };
    Ok(())
}

/// Carries out a read plan; returns the tool's JSON result (CONTRACT §6).
pub fn execute(plan: &ReadPlan, home: Option<&Path>) -> Value {
    let mut v = base(plan);
    let mut why: Vec<String> = Vec::new();
    if plan.mode != ReadMode::Pane {
        match transcript_file(plan, home) {
            Some(path) => match read_transcript(plan, &path, &mut v) {
                Ok(()) => return v,
                Err(e) => {
                    // The file is gone or unreadable: null mtime and age.
                    why.push(format!("transcript {}: {e}", path.display()));
                    if plan.mode == ReadMode::Transcript {
                        v["mode"] = json!("transcript");
                        v["error"] = json!(why.join("; "));
                        return v;
                    }
                }
            },
            None => why.push("no transcript found".into()),
        }
        if plan.mode == ReadMode::Transcript {
            v["error"] = json!(format!(
                "no transcript found for '{}' (it may not be Claude Code or Codex, or has written nothing yet); try mode: \"pane\"",
                plan.session
            ));
            return v;
        }
    }
    match &plan.pane {
        Some(pane) => match capture_pane(pane, plan.pane_lines) {
            Ok(text) => {
                let (kept, cut) = last_chars(&text, plan.pane_max_chars);
                v["mode"] = json!("pane");
                v["pane_text"] = json!(kept);
                v["truncated"] = json!(cut);
                return v;
            }
            Err(e) => why.push(format!("pane {}: {e}", pane.id)),
        },
        None => why.push("no tmux pane verified for it".into()),
    }
    v["error"] = json!(format!(
        "nothing to read for '{}': {}",
        plan.session,
        why.join("; ")
    ));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: Role, text: &str) -> Turn {
        Turn {
            role,
            text: text.into(),
            tool_calls: Vec::new(),
            timestamp: Some("2026-11-21T05:03:28.000Z".into()),
            truncated: false,
        }
    }

    #[test]
    fn pane_text_keeps_the_last_characters() {
        assert_eq!(last_chars("abcdef", 3), ("def", true));
        assert_eq!(last_chars("ééé", 5), ("ééé", false));
        assert_eq!(last_chars("aéb", 2), ("éb", true));
        assert_eq!(head_bytes("éa", 1), "");
    }

    #[test]
    fn messages_have_the_contract_shape() {
        let m = message_json(&turn(Role::User, "hi"), false);
        assert_eq!(m, json!({"role": "user", "text": "hi", "timestamp": null}));
        let m = message_json(&turn(Role::Assistant, "ok"), true);
        assert_eq!(m["timestamp"], "2026-11-21T05:03:28.000Z");
    }

    #[test]
    fn failure_has_every_field() {
        let v = failure("x", "/p", true, "session 'x' not in project scope");
        for k in [
            "session",
            "mode",
            "client_type",
            "messages",
            "pane_text",
            "truncated",
            "count_truncated",
            "bytes_truncated",
            "total_messages",
            "total_messages_exact",
            "resolved_session_id",
            "session_id_source",
            "transcript_mtime",
            "transcript_age_seconds",
            "project_root",
            "inferred",
            "error",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert!(v.get("ok").is_none());
    }
}
