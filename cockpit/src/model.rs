//! Pure presentation helpers shared by the text renderer and the TUI: ages,
//! glyphs, tool badges, badges, display widths. No I/O, no clock (every
//! function takes `now_ms`).

use oxtail_proto::status::{AgentRow, LivenessState, StatusSnapshot, ToolBadge};
use ratatui::text::Span;

/// A compact age: `0s`, `42s`, `3m`, `5h`, `2d`. `-` when unknown. A
/// timestamp in the future (clock skew) reads as `0s`.
pub fn age(now_ms: u64, since_ms: Option<u64>) -> String {
    let Some(since) = since_ms else {
        return "-".to_string();
    };
    let s = now_ms.saturating_sub(since) / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86_400)
    }
}

/// The liveness glyph: 🟢 live, 🟡 idle, ⚫ dead or ended, ⚪ unknown.
pub fn liveness_glyph(s: LivenessState) -> &'static str {
    match s {
        LivenessState::Live => "🟢",
        LivenessState::Idle => "🟡",
        LivenessState::Dead | LivenessState::Ended => "⚫",
        LivenessState::Unknown => "⚪",
    }
}

/// The liveness word shown next to the glyph.
pub fn liveness_word(s: LivenessState) -> &'static str {
    match s {
        LivenessState::Live => "active",
        LivenessState::Idle => "idle",
        LivenessState::Dead => "dead",
        LivenessState::Ended => "ended",
        LivenessState::Unknown => "unknown",
    }
}

/// `claude-code` → `claude`; other client types as they are.
pub fn client_short(t: &str) -> &str {
    match t {
        "claude-code" => "claude",
        "" => "?",
        other => other,
    }
}

/// A short word for an agent's wake route ([`AgentRow::wake_route`]):
/// `app` (Codex app-server), `hook` (idle-wait rewake), `keys`, `hooks`
/// (hooks only: no wake).
pub fn route_short(route: &str) -> &str {
    match route {
        "app_server" => "app",
        "rewake" => "hook",
        "hooks_only" => "hooks",
        other => other,
    }
}

/// A display name: the agent's name, else the first 8 characters of its
/// session id; `name@host` for an agent on another machine.
pub fn display_name(a: &AgentRow) -> String {
    let name = match &a.name {
        Some(n) if !n.is_empty() => n.clone(),
        _ => short_id(&a.client_session_id),
    };
    // An agent on another machine (federation) shows where it is.
    match &a.host {
        Some(h) => format!("{name}@{h}"),
        None => name,
    }
}

/// The first 8 characters of an id.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// The tool badge for a hook `tool_name` (Claude Code 2.1.329 and Codex
/// 0.169.0 spellings): `⚙ bash`, `✎ edit`, `✎ write`, `▤ read`, `▤ grep`,
/// `↔ oxtail` for oxtail's own MCP tools, `⇄ <server>` for other MCP
/// servers, `◎ web`, `⧉ task`, `☰ todo`, else `• <name>` in lowercase.
pub fn tool_badge_label(tool: &str) -> String {
    let lower = tool.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("mcp__") {
        let server = rest.split("__").next().unwrap_or(rest);
        return if server == "oxtail" {
            "↔ oxtail".to_string()
        } else {
            format!("⇄ {server}")
        };
    }
    match lower.as_str() {
        "bash" | "shell" | "exec_command" | "local_shell" | "bashoutput" | "killshell" => {
            "⚙ bash".into()
        }
        "edit" | "multiedit" | "notebookedit" | "apply_patch" => "✎ edit".into(),
        "write" => "✎ write".into(),
        "read" | "notebookread" | "ls" | "view_image" => "▤ read".into(),
        "grep" => "▤ grep".into(),
        "glob" => "▤ glob".into(),
        "webfetch" | "websearch" | "web_search" => "◎ web".into(),
        "task" | "agent" => "⧉ task".into(),
        "todowrite" | "update_plan" => "☰ todo".into(),
        _ => format!("• {lower}"),
    }
}

/// The badge for a [`ToolBadge`], with the file's base name when known
/// (`✎ edit main.rs`).
pub fn tool_badge(t: &ToolBadge) -> String {
    let label = tool_badge_label(&t.tool);
    match t.file_path.as_deref().and_then(base_name) {
        Some(f) => format!("{label} {f}"),
        None => label,
    }
}

fn base_name(p: &str) -> Option<&str> {
    let b = p.trim_end_matches('/').rsplit('/').next()?;
    (!b.is_empty()).then_some(b)
}

/// The count badges: `⏳` awaiting, `✉N` unread, `⚑N` open obligations,
/// separated by spaces; empty when none apply.
pub fn badges(a: &AgentRow) -> String {
    let mut parts = Vec::new();
    if a.awaiting.is_some() {
        parts.push("⏳".to_string());
    }
    if a.unread > 0 {
        parts.push(format!("✉{}", a.unread));
    }
    if a.open_obligations > 0 {
        parts.push(format!("⚑{}", a.open_obligations));
    }
    parts.join(" ")
}

/// The work / purpose column: `awaiting <target>: <card>` while awaiting,
/// else the state card, else the branch.
pub fn work_line(a: &AgentRow) -> String {
    let card = a.purpose.as_ref().map(|p| one_line(&p.purpose));
    match (&a.awaiting, card) {
        (Some(w), Some(c)) => format!(
            "awaiting {}: {c}",
            w.target_name.clone().unwrap_or_else(|| short_id(&w.target))
        ),
        (Some(w), None) => format!(
            "awaiting {}",
            w.target_name.clone().unwrap_or_else(|| short_id(&w.target))
        ),
        (None, Some(c)) => c,
        (None, None) => a
            .branch
            .as_ref()
            .map(|b| format!("({b})"))
            .unwrap_or_default(),
    }
}

/// Newlines and tabs folded into spaces.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The display width of `s` in terminal cells (emoji count 2).
pub fn width(s: &str) -> usize {
    Span::raw(s).width()
}

/// `s` cut to at most `max` cells, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = width(c.encode_utf8(&mut [0u8; 4]));
        if w + cw > max - 1 {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// `s` padded with spaces (or cut) to exactly `w` cells.
pub fn pad(s: &str, w: usize) -> String {
    let t = truncate(s, w);
    let tw = width(&t);
    format!("{t}{}", " ".repeat(w.saturating_sub(tw)))
}

/// The header line: `oxpit <project> · N agents (M active)`.
pub fn header(s: &StatusSnapshot) -> String {
    let active = s
        .agents
        .iter()
        .filter(|a| a.liveness.state == LivenessState::Live)
        .count();
    let alive = s
        .agents
        .iter()
        .filter(|a| a.liveness.state.is_alive())
        .count();
    let project = match &s.project_root {
        Some(p) => project_label(p),
        None => "all projects".to_string(),
    };
    let n = s.agents.len();
    format!(
        "{project} · {n} agent{} ({active} active, {alive} alive)",
        if n == 1 { "" } else { "s" }
    )
}

/// The last path component of a project root, or the root itself.
pub fn project_label(p: &str) -> String {
    base_name(p).unwrap_or(p).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(age(10_000, Some(2_000)), "8s");
        assert_eq!(age(200_000, Some(20_000)), "3m");
        assert_eq!(age(3_600_000 * 5 + 1, Some(0)), "5h");
        assert_eq!(age(86_400_000 * 2, Some(0)), "2d");
        assert_eq!(age(1, Some(5)), "0s");
        assert_eq!(age(1, None), "-");
    }

    #[test]
    fn badges_for_client_tool_names() {
        assert_eq!(tool_badge_label("Bash"), "⚙ bash");
        assert_eq!(tool_badge_label("Edit"), "✎ edit");
        assert_eq!(tool_badge_label("Read"), "▤ read");
        assert_eq!(tool_badge_label("mcp__oxtail__send_message"), "↔ oxtail");
        assert_eq!(tool_badge_label("mcp__github__create_pr"), "⇄ github");
        assert_eq!(tool_badge_label("Frobnicate"), "• frobnicate");
        let t = ToolBadge {
            tool: "Edit".into(),
            file_path: Some("/r/src/main.rs".into()),
            since_ms: 0,
        };
        assert_eq!(tool_badge(&t), "✎ edit main.rs");
    }

    #[test]
    fn widths_and_truncation() {
        assert_eq!(width("🟢"), 2);
        assert_eq!(width("⚑1"), 2);
        assert_eq!(truncate("hello world", 6), "hello…");
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(width(&pad("🟢🟢🟢", 5)), 5);
    }
}
