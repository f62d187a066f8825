//! `read_session`, second half: the I/O. Reads a peer's transcript (Claude
//! Code or Codex) or its tmux pane, following the plan the pure half
//! (`tools::read_session_plan`) made, on a blocking thread off the actor.
//!
//! Every answer carries provenance (resolved session id, how it was resolved,
//! file path, mtime and age) and says it is browse-only: a transcript is
//! never proof that a peer replied (use `message_status` / the mailbox).

use crate::transcript::{self, ReadOpts};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const BROWSE_ONLY: &str = "Browse only: a transcript can lag or be a rotated thread, so it is never proof that a peer replied; replies arrive in your mailbox.";

fn transcript_file(plan: &Value, home: Option<&Path>) -> Option<PathBuf> {
    let id = plan["target"].as_str()?;
    let home = home?;
    match plan["client_type"].as_str() {
        Some("codex") => {
            let codex_home = std::env::var_os("CODEX_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".codex"));
            transcript::find_codex_rollout(&codex_home, id)
        }
        _ => {
            let config_dir = std::env::var("CLAUDE_CONFIG_DIR").ok();
            let claude_dir = transcript::claude_dir(config_dir.as_deref(), home);
            let direct = plan["cwd"]
                .as_str()
                .and_then(|cwd| transcript::claude_transcript_path(&claude_dir, Path::new(cwd), id))
                .filter(|p| p.exists());
            direct.or_else(|| transcript::find_claude_transcript(&claude_dir, id))
        }
    }
}

fn read_pane(plan: &Value) -> Option<Value> {
    let pane = plan.get("pane").filter(|p| !p.is_null())?;
    let id = pane["id"]
        .as_str()
        .filter(|i| crate::tmux::valid_pane_id(i))?;
    let lines = plan["pane_lines"].as_u64().unwrap_or(200);
    let mut cmd = std::process::Command::new("tmux");
    if let Some(s) = pane["socket"].as_str() {
        cmd.arg("-S").arg(s);
    }
    cmd.args([
        "capture-pane",
        "-p",
        "-J",
        "-t",
        id,
        "-S",
        &format!("-{lines}"),
    ]);
    let out = crate::tmux::output_within(cmd, crate::tmux::DEFAULT_TIMEOUT).ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    Some(json!({
        "ok": true,
        "mode": "pane",
        "session_id": plan["target"],
        "name": plan["target_name"],
        "resolved_by": plan["resolved_by"],
        "pane": {"id": id, "session": pane["session"]},
        "lines": text.lines().count(),
        "text": text,
        "provenance": {"source": "tmux capture-pane", "pane_verified_by": "process tree"},
        "note": BROWSE_ONLY,
    }))
}

/// Carries out a read plan; returns the tool's JSON result.
pub fn execute(plan: &Value, home: Option<&Path>) -> Value {
    let mode = plan["mode"].as_str().unwrap_or("auto");
    if mode != "pane" {
        if let Some(path) = transcript_file(plan, home) {
            let mut opts = ReadOpts {
                limit: plan["limit"].as_u64().unwrap_or(20) as usize,
                max_bytes: plan["max_bytes"].as_u64().unwrap_or(24 * 1024) as usize,
                ..ReadOpts::default()
            };
            if let Some(t) = plan["tail_scan"].as_u64() {
                opts.tail_scan = t;
            }
            match transcript::read_turns(&path, &opts) {
                Ok(read) => {
                    let mut turns = serde_json::to_value(&read.turns).unwrap_or_default();
                    if plan["include_timestamps"] != true {
                        if let Some(arr) = turns.as_array_mut() {
                            for t in arr {
                                if let Some(o) = t.as_object_mut() {
                                    o.remove("timestamp");
                                }
                            }
                        }
                    }
                    return json!({
                        "ok": true,
                        "mode": "transcript",
                        "session_id": plan["target"],
                        "name": plan["target_name"],
                        "resolved_by": plan["resolved_by"],
                        "format": read.format,
                        "turns": turns,
                        "count": read.turns.len(),
                        "order": "newest_first",
                        "budget_hit": read.budget_hit,
                        "skipped_lines": read.skipped_lines,
                        "bytes_scanned": read.bytes_scanned,
                        "reached_start": read.reached_start,
                        "provenance": read.provenance,
                        "note": BROWSE_ONLY,
                    });
                }
                Err(e) if mode == "transcript" => {
                    return json!({"ok": false, "error": "transcript-unreadable", "message": format!("{}: {e}", path.display())});
                }
                Err(_) => {}
            }
        } else if mode == "transcript" {
            return json!({
                "ok": false,
                "error": "no-transcript",
                "message": "no transcript file found for that peer (it may not be Claude Code or Codex, or it has written nothing yet); try mode: \"pane\"",
                "session_id": plan["target"],
            });
        }
    }
    if let Some(v) = read_pane(plan) {
        return v;
    }
    json!({
        "ok": false,
        "error": if mode == "pane" { "no-pane" } else { "nothing-to-read" },
        "message": "no transcript found and no tmux pane verified for that peer",
        "session_id": plan["target"],
    })
}
