//! File-conflict awareness, as pure functions (issue 14).
//!
//! Two sources say who works on which file of a project:
//!
//! * **Touches**, seen automatically by the PreToolUse/PostToolUse hooks
//!   ([`touched_paths`]): edits (Claude Code `Edit`, `MultiEdit`, `Write`,
//!   `NotebookEdit`; Codex `apply_patch`, whose patch headers
//!   [`parse_patch`] reads) and reads (`Read`). They live in [`Touches`], an
//!   ephemeral index by `(project, path)` held by the actor, forgotten
//!   [`Config::touch_window_ms`](crate::config::Config) after the agent's
//!   last touch of the file and at once when the agent ends, at most
//!   [`TOUCHES_PER_AGENT`] per agent. Journaled only as far as the warnings
//!   need across a restart: an edit seen by PostToolUse is journaled
//!   ([`Command::TouchFiles`](crate::state::Command::TouchFiles), into
//!   [`State::edits`](crate::state::State)) when that agent's file has no
//!   journaled edit younger than [`JOURNAL_EDIT_EVERY_MS`], so an agent
//!   editing one file all afternoon writes one small record a minute at
//!   most, and PreToolUse (the edit not made yet) writes nothing. Reads are
//!   never journaled: they warn nobody. At start the index is seeded from
//!   the journaled edits ([`Touches::seed`]).
//! * **Leases**, taken on purpose with `claim_files` ([`Lease`], durable in
//!   [`State::leases`](crate::state::State)): shared or exclusive, on a path
//!   or a glob, with a TTL; released by `release_files` or when the holder
//!   ends.
//!
//! Paths are relative to the work tree's root, `/`-separated. The same path
//! in two work trees is two different files: never a conflict, only "also
//! being edited on branch X" ([`Conflict::same_worktree`]).

use crate::state::{Agent, Lease, SessionId, State};
use crate::tools::Live;
use globset::GlobBuilder;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};

/// Default touch window (`OXTAIL_TOUCH_WINDOW_S`): 30 minutes, in ms.
pub const DEFAULT_TOUCH_WINDOW_MS: u64 = 30 * 60 * 1000;
/// Most touched files remembered per agent; the oldest go first.
pub const TOUCHES_PER_AGENT: usize = 256;
/// An agent's edit of a file is journaled again only when its last
/// journaled edit of that file is older than this (1 minute): after a
/// restart an edit may look up to this much older than it was.
pub const JOURNAL_EDIT_EVERY_MS: u64 = 60_000;
/// Default lease TTL, seconds (1 hour).
pub const DEFAULT_LEASE_TTL_S: u64 = 3600;
/// Longest lease TTL, seconds (1 day).
pub const MAX_LEASE_TTL_S: u64 = 86_400;
/// Most path entries in one `claim_files` / `release_files` call.
pub const MAX_PATHS_PER_CALL: usize = 100;

/// What an agent did to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TouchKind {
    /// It edited (or created, deleted, moved) it.
    Edit,
    /// It read it.
    Read,
}

impl TouchKind {
    /// `"edit"` or `"read"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TouchKind::Edit => "edit",
            TouchKind::Read => "read",
        }
    }
}

/// The file paths a tool call touches, as the client wrote them (absolute,
/// or relative to the call's `cwd`), from the hook payload's `tool_name` and
/// `tool_input`. Claude Code: `Edit`/`MultiEdit`/`Write` (`file_path`) and
/// `NotebookEdit` (`notebook_path`) are edits, `Read` (`file_path`) a read.
/// Codex: `apply_patch`, and any tool whose string input holds a
/// `*** Begin Patch` block (a shell heredoc), are edits of the patch's
/// files. Everything else, Codex's shell (`Bash`) included, touches nothing
/// oxtail can know: empty.
pub fn touched_paths(tool_name: &str, tool_input: &Value) -> Vec<(TouchKind, String)> {
    let field = |k: &str| {
        tool_input
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match tool_name {
        "Edit" | "MultiEdit" | "Write" => field("file_path")
            .map(|p| vec![(TouchKind::Edit, p)])
            .unwrap_or_default(),
        "NotebookEdit" => field("notebook_path")
            .or_else(|| field("file_path"))
            .map(|p| vec![(TouchKind::Edit, p)])
            .unwrap_or_default(),
        "Read" => field("file_path")
            .map(|p| vec![(TouchKind::Read, p)])
            .unwrap_or_default(),
        _ => {
            let mut out = Vec::new();
            let texts: Vec<&str> = match tool_input {
                Value::String(s) => vec![s.as_str()],
                Value::Object(m) => m.values().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for t in texts {
                if tool_name == "apply_patch" || t.contains("*** Begin Patch") {
                    out.extend(parse_patch(t).into_iter().map(|p| (TouchKind::Edit, p)));
                }
            }
            out
        }
    }
}

/// The header line prefixes of Codex's patch format that name a file.
pub const PATCH_HEADERS: [&str; 4] = [
    "*** Add File: ",
    "*** Update File: ",
    "*** Delete File: ",
    "*** Move to: ",
];

/// The files a Codex `apply_patch` patch touches, in order, without
/// duplicates: every `*** Add File:`, `*** Update File:`, `*** Delete
/// File:` and `*** Move to:` header (a rename touches both names).
pub fn parse_patch(patch: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in patch.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(p) = PATCH_HEADERS.iter().find_map(|h| line.strip_prefix(h)) {
            let p = p.trim();
            if !p.is_empty() && !out.iter().any(|o| o == p) {
                out.push(p.to_string());
            }
        }
    }
    out
}

/// Lexically normalizes `/`-separated `path` (drops `.` and empty
/// components, resolves `..`). `None` when `..` climbs above the start.
fn normalize(path: &str) -> Option<Vec<&str>> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts)
}

/// `raw` (absolute, or relative to `cwd`) as a path relative to the work
/// tree `worktree`. `None` when it is outside the work tree.
pub fn relative_to(cwd: &str, worktree: &str, raw: &str) -> Option<String> {
    let abs = if raw.starts_with('/') {
        raw.to_string()
    } else {
        format!("{}/{raw}", cwd.trim_end_matches('/'))
    };
    let abs = normalize(&abs)?;
    let root = normalize(worktree)?;
    if abs.len() <= root.len() || abs[..root.len()] != root[..] {
        return None;
    }
    Some(abs[root.len()..].join("/"))
}

fn has_glob_meta(p: &str) -> bool {
    p.contains(['*', '?', '[', '{'])
}

/// Whether lease `pattern` covers `path` (both work-tree relative): a glob
/// (`*` stays within one directory, `**` crosses them), or a literal path
/// that is the file itself or a directory holding it.
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    if !has_glob_meta(pattern) {
        return path == pattern
            || path
                .strip_prefix(pattern)
                .is_some_and(|r| r.starts_with('/'));
    }
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher().is_match(path))
        .unwrap_or(false)
}

/// Whether two lease patterns may cover a common file. Exact for literal
/// paths; for two globs an approximation: equal, or one matches the other's
/// text.
pub fn patterns_overlap(a: &str, b: &str) -> bool {
    a == b || pattern_matches(a, b) || pattern_matches(b, a)
}

/// Checks a `claim_files` / `release_files` path or glob and returns it
/// relative to the work tree root.
///
/// # Errors
/// A sentence for the caller (the field is named by the tool): empty,
/// a `..` component, an absolute path outside the work tree (another
/// repository), a glob that does not parse, or one that matches everything
/// (`**`, `**/*`, …).
pub fn check_pattern(cwd: &str, worktree: &str, raw: &str) -> Result<String, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err("an entry is empty".into());
    }
    if t.split('/').any(|c| c == "..") {
        return Err(format!(
            "`{t}` has a `..` component; give paths inside the project, relative to its root"
        ));
    }
    let rel = if t.starts_with('/') {
        relative_to(cwd, worktree, t).ok_or_else(|| {
            format!("`{t}` is outside this project's work tree `{worktree}` (another repository?)")
        })?
    } else {
        normalize(t)
            .map(|p| p.join("/"))
            .ok_or_else(|| format!("`{t}` escapes the project"))?
    };
    if rel.is_empty() {
        return Err(format!(
            "`{t}` is the whole project; name files, directories or a narrower glob"
        ));
    }
    if has_glob_meta(&rel) {
        GlobBuilder::new(&rel)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("`{t}` is not a valid glob: {e}"))?;
        let everything = ["oxtail_probe", ".probe/x", "a/b/c/d/oxtail_probe.zz"];
        if everything.iter().all(|p| pattern_matches(&rel, p)) {
            return Err(format!(
                "`{t}` matches every file of the project; name files, directories or a narrower glob"
            ));
        }
    }
    Ok(rel)
}

/// One remembered touch of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TouchRec {
    /// The agent.
    pub session: SessionId,
    /// Its work tree (absolute).
    pub worktree: String,
    /// Its branch then.
    pub branch: Option<String>,
    /// Edit or read.
    pub kind: TouchKind,
    /// When it last did so, ms since the epoch.
    pub at_ms: u64,
}

/// The ephemeral touch index: `(project, path)` → who touched it, plus each
/// agent's touched keys in order (for the per-agent bound and for "what is
/// this agent editing"). Lookups by file are one hash probe.
#[derive(Debug, Clone, Default)]
pub struct Touches {
    by_path: HashMap<(String, String), Vec<TouchRec>>,
    per_agent: HashMap<SessionId, VecDeque<(String, String)>>,
}

impl Touches {
    /// Records that `rec.session` touched `path` in `project` at
    /// `rec.at_ms`. One record per (agent, work tree, kind) and file: a
    /// repeat refreshes its time. Beyond [`TOUCHES_PER_AGENT`] files the
    /// agent's oldest is forgotten.
    pub fn record(&mut self, project: &str, path: &str, rec: TouchRec) {
        let key = (project.to_string(), path.to_string());
        let order = self.per_agent.entry(rec.session.clone()).or_default();
        if let Some(i) = order.iter().position(|k| *k == key) {
            order.remove(i);
        }
        order.push_back(key.clone());
        let evicted = if order.len() > TOUCHES_PER_AGENT {
            order.pop_front()
        } else {
            None
        };
        let session = rec.session.clone();
        let list = self.by_path.entry(key).or_default();
        match list
            .iter_mut()
            .find(|r| r.session == rec.session && r.worktree == rec.worktree && r.kind == rec.kind)
        {
            Some(r) => *r = rec,
            None => list.push(rec),
        }
        if let Some(k) = evicted {
            self.forget(&session, &k);
        }
    }

    fn forget(&mut self, session: &str, key: &(String, String)) {
        if let Some(list) = self.by_path.get_mut(key) {
            list.retain(|r| r.session != session);
            if list.is_empty() {
                self.by_path.remove(key);
            }
        }
    }

    /// The index after a restart: every journaled edit of
    /// [`State::edits`] not older than `window_ms` before `now_ms`.
    pub fn seed(state: &State, now_ms: u64, window_ms: u64) -> Touches {
        let cut = now_ms.saturating_sub(window_ms);
        let mut t = Touches::default();
        for (session, list) in &state.edits {
            for e in list.iter().filter(|e| e.at_ms >= cut) {
                t.record(
                    &e.project,
                    &e.path,
                    TouchRec {
                        session: session.clone(),
                        worktree: e.worktree.clone(),
                        branch: e.branch.clone(),
                        kind: TouchKind::Edit,
                        at_ms: e.at_ms,
                    },
                );
            }
        }
        t
    }

    /// Forgets everything `session` touched (it ended).
    pub fn end(&mut self, session: &str) {
        if let Some(keys) = self.per_agent.remove(session) {
            for k in keys {
                self.forget(session, &k);
            }
        }
    }

    /// Forgets touches older than `window_ms` before `now_ms`.
    pub fn expire(&mut self, now_ms: u64, window_ms: u64) {
        let cut = now_ms.saturating_sub(window_ms);
        self.by_path.retain(|_, list| {
            list.retain(|r| r.at_ms >= cut);
            !list.is_empty()
        });
        let by_path = &self.by_path;
        self.per_agent.retain(|s, keys| {
            keys.retain(|k| {
                by_path
                    .get(k)
                    .is_some_and(|l| l.iter().any(|r| &r.session == s))
            });
            !keys.is_empty()
        });
    }

    /// Who touched `path` in `project` (any age: filter by the window).
    pub fn of_path(&self, project: &str, path: &str) -> &[TouchRec] {
        self.by_path
            .get(&(project.to_string(), path.to_string()))
            .map_or(&[], Vec::as_slice)
    }

    /// The files `session` edited since `since_ms`, newest first: `(path,
    /// at_ms)`.
    pub fn edits_of(&self, session: &str, since_ms: u64) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .per_agent
            .get(session)
            .into_iter()
            .flatten()
            .filter_map(|k| {
                self.by_path.get(k)?.iter().find_map(|r| {
                    (r.session == session && r.kind == TouchKind::Edit && r.at_ms >= since_ms)
                        .then(|| (k.1.clone(), r.at_ms))
                })
            })
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// Every touch in `project` since `since_ms`: `(path, record)`.
    pub fn in_project(&self, project: &str, since_ms: u64) -> Vec<(&str, &TouchRec)> {
        let mut v: Vec<(&str, &TouchRec)> = self
            .by_path
            .iter()
            .filter(|((p, _), _)| p == project)
            .flat_map(|((_, path), l)| l.iter().map(move |r| (path.as_str(), r)))
            .filter(|(_, r)| r.at_ms >= since_ms)
            .collect();
        v.sort_by(|a, b| b.1.at_ms.cmp(&a.1.at_ms).then_with(|| a.0.cmp(b.0)));
        v
    }

    /// How many (file, agent, kind) records are held.
    pub fn len(&self) -> usize {
        self.by_path.values().map(Vec::len).sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }
}

/// Whether an edit of `path` by `session` at `now_ms` should be journaled:
/// no journaled edit of that file (same project and work tree) younger
/// than [`JOURNAL_EDIT_EVERY_MS`].
pub fn edit_needs_journal(
    state: &State,
    session: &str,
    site: EditSite<'_>,
    path: &str,
    now_ms: u64,
) -> bool {
    !state.edits.get(session).is_some_and(|l| {
        l.iter().any(|e| {
            e.path == path
                && e.worktree == site.worktree
                && e.project == site.project
                && now_ms.saturating_sub(e.at_ms) < JOURNAL_EDIT_EVERY_MS
        })
    })
}

/// Whether `a` is a live peer: not ended, and either connected or hosted by
/// a process not known to be dead.
pub fn is_live(a: &Agent, live: &Live) -> bool {
    if a.ended_ms.is_some() {
        return false;
    }
    if live.shims.get(&a.session_id).copied().unwrap_or(0) > 0 {
        return true;
    }
    a.seat
        .as_ref()
        .and_then(|s| live.seat_alive.get(&s.key()))
        .copied()
        != Some(false)
}

/// The name peers address `a` by: its `name`, else its session id.
pub fn display_name(a: &Agent) -> &str {
    a.name.as_deref().unwrap_or(&a.session_id)
}

/// Why an edit meets a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The peer edited the file at `at_ms`.
    Edited {
        /// When, ms since the epoch.
        at_ms: u64,
    },
    /// The peer holds an exclusive lease covering the file.
    Lease(Lease),
}

/// A peer met by an edit of `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The file, relative to the work tree.
    pub path: String,
    /// The peer.
    pub peer: SessionId,
    /// What it did.
    pub cause: Cause,
    /// Same work tree: a real conflict. Otherwise only information for the
    /// later merge ("also being edited on branch X").
    pub same_worktree: bool,
    /// The peer's branch.
    pub branch: Option<String>,
}

/// Where an edit happens.
#[derive(Debug, Clone, Copy)]
pub struct EditSite<'a> {
    /// The editing agent.
    pub me: &'a str,
    /// Its project.
    pub project: &'a str,
    /// Its work tree (absolute).
    pub worktree: &'a str,
}

/// The live leases covering `path` in `project` held by others than `me`
/// (expired ones and those of ended or dead holders excluded).
pub fn leases_on<'a>(
    state: &'a State,
    live: &Live,
    site: EditSite<'_>,
    path: &str,
    now_ms: u64,
) -> impl Iterator<Item = &'a Lease> + 'a {
    let me = site.me.to_string();
    let project = site.project.to_string();
    let path = path.to_string();
    let alive: Vec<&'a str> = state
        .leases
        .values()
        .filter(|l| l.holder != me && l.project == project && l.expires_ms > now_ms)
        .filter(|l| {
            state
                .agents
                .get(&l.holder)
                .is_some_and(|a| is_live(a, live))
        })
        .map(|l| l.id.as_str())
        .collect();
    state
        .leases
        .values()
        .filter(move |l| alive.contains(&l.id.as_str()) && pattern_matches(&l.pattern, &path))
}

/// The peers an edit of `path` by `site.me` meets: live peers holding an
/// exclusive lease on it, or that edited it within `window_ms`, in any work
/// tree of the project (see [`Conflict::same_worktree`]). Oldest cause
/// first per peer; one entry per (peer, cause kind).
pub fn conflicts_for_edit(
    state: &State,
    live: &Live,
    touches: &Touches,
    site: EditSite<'_>,
    path: &str,
    now_ms: u64,
    window_ms: u64,
) -> Vec<Conflict> {
    let mut out = Vec::new();
    for l in leases_on(state, live, site, path, now_ms).filter(|l| l.exclusive) {
        out.push(Conflict {
            path: path.to_string(),
            peer: l.holder.clone(),
            cause: Cause::Lease(l.clone()),
            same_worktree: l.worktree == site.worktree,
            branch: l.branch.clone(),
        });
    }
    let cut = now_ms.saturating_sub(window_ms);
    for r in touches.of_path(site.project, path) {
        if r.session == site.me || r.kind != TouchKind::Edit || r.at_ms < cut {
            continue;
        }
        if !state
            .agents
            .get(&r.session)
            .is_some_and(|a| is_live(a, live))
        {
            continue;
        }
        out.push(Conflict {
            path: path.to_string(),
            peer: r.session.clone(),
            cause: Cause::Edited { at_ms: r.at_ms },
            same_worktree: r.worktree == site.worktree,
            branch: r.branch.clone(),
        });
    }
    out
}

/// Most conflict warnings kept for the comms log ([`ConflictLog`]).
pub const CONFLICT_LOG_MAX: usize = 500;

/// One file-conflict warning, as the comms log shows it (ephemeral).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictNote {
    /// `conflict-<n>`, unique while the daemon runs.
    pub id: String,
    /// When the warning was given, ms since the epoch.
    pub at_ms: u64,
    /// The project.
    pub project: String,
    /// The agent about to edit.
    pub editor: SessionId,
    /// The live peer it met.
    pub peer: SessionId,
    /// One line: the file, what the peer did, what the warning did.
    pub text: String,
}

/// The newest [`CONFLICT_LOG_MAX`] conflict warnings, oldest first, merged
/// into the status snapshot's comms log (`CommsKind::Conflict`). Memory
/// only: the warning reached the agent in its hook; the log is for people.
#[derive(Debug, Clone, Default)]
pub struct ConflictLog {
    /// The notes, oldest first.
    pub notes: VecDeque<ConflictNote>,
    next: u64,
}

impl ConflictLog {
    /// Logs that `editor` met `c` at `now_ms`; `mode` is what the hook did
    /// (`warn`, `ask`, `deny`).
    pub fn push(&mut self, project: &str, editor: &str, c: &Conflict, mode: &str, now_ms: u64) {
        self.next += 1;
        let what = match &c.cause {
            Cause::Edited { at_ms } => format!("which the peer edited {}", ago(now_ms, *at_ms)),
            Cause::Lease(l) => format!("under the peer's exclusive lease on `{}`", l.pattern),
        };
        let did = match mode {
            "deny" => "edit denied",
            "ask" => "user asked",
            _ => "warned",
        };
        self.notes.push_back(ConflictNote {
            id: format!("conflict-{}", self.next),
            at_ms: now_ms,
            project: project.to_string(),
            editor: editor.to_string(),
            peer: c.peer.clone(),
            text: format!("file conflict: about to edit `{}`, {what} ({did})", c.path),
        });
        while self.notes.len() > CONFLICT_LOG_MAX {
            self.notes.pop_front();
        }
    }
}

/// "3 min ago", "40 s ago", "2 h ago".
pub fn ago(now_ms: u64, at_ms: u64) -> String {
    let s = now_ms.saturating_sub(at_ms) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

fn cause_text(c: &Conflict, now_ms: u64) -> String {
    match &c.cause {
        Cause::Edited { at_ms } => format!("edited `{}` {}", c.path, ago(now_ms, *at_ms)),
        Cause::Lease(l) => {
            let mins = l.expires_ms.saturating_sub(now_ms).div_ceil(60_000);
            let why = l
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            format!(
                "holds an exclusive lease on `{}` (for {mins} more min{why})",
                l.pattern
            )
        }
    }
}

/// The context added before an edit: for each real conflict the peer's
/// name, client, what it did and when, its state card and how to reach it;
/// other-work-tree touches as "also being edited on branch X". Empty when
/// `conflicts` is.
pub fn render_warning(state: &State, conflicts: &[Conflict], now_ms: u64) -> String {
    let mut lines = Vec::new();
    for c in conflicts.iter().filter(|c| c.same_worktree) {
        let Some(a) = state.agents.get(&c.peer) else {
            continue;
        };
        let name = display_name(a);
        let card = a
            .purpose
            .as_deref()
            .map(|p| format!(" Its state card: \"{p}\"."))
            .unwrap_or_default();
        lines.push(format!(
            "[oxtail] File conflict: peer `{name}` ({}) {}.{card} Coordinate before you overwrite its work: ask_peer {{target: \"{name}\"}}.",
            a.client_type,
            cause_text(c, now_ms)
        ));
    }
    for c in conflicts.iter().filter(|c| !c.same_worktree) {
        let Some(a) = state.agents.get(&c.peer) else {
            continue;
        };
        let branch = c.branch.as_deref().unwrap_or("(detached)");
        lines.push(format!(
            "[oxtail] Note: `{}` is also being edited on branch `{branch}` by `{}` in another work tree (not a conflict now; mind it at merge time).",
            c.path,
            display_name(a)
        ));
    }
    lines.dedup();
    lines.join("\n")
}

/// What the peer learns at its next hook: "`codex-1` is about to edit
/// `src/db.rs`, which you edited 3 min ago".
pub fn render_notice(editor: &Agent, c: &Conflict, now_ms: u64) -> String {
    let what = match &c.cause {
        Cause::Edited { at_ms } => format!("which you edited {}", ago(now_ms, *at_ms)),
        Cause::Lease(l) => format!("which your exclusive lease on `{}` covers", l.pattern),
    };
    let name = display_name(editor);
    format!(
        "[oxtail] `{name}` ({}) is about to edit `{}`, {what}. To coordinate: ask_peer {{target: \"{name}\"}}.",
        editor.client_type, c.path
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_headers_cover_add_update_delete_and_move() {
        let p = "*** Begin Patch\n*** Add File: src/new.rs\n+fn x() {}\n*** Update File: src/a.rs\n*** Move to: src/b.rs\n@@\n-a\n+b\n*** Delete File: old.txt\n*** Update File: src/a.rs\n*** End Patch\n";
        assert_eq!(
            parse_patch(p),
            vec!["src/new.rs", "src/a.rs", "src/b.rs", "old.txt"]
        );
        let t = touched_paths("apply_patch", &json!({"command": p}));
        assert_eq!(t.len(), 4);
        assert!(t.iter().all(|(k, _)| *k == TouchKind::Edit));
        // A heredoc through the shell is an edit too; a plain command is not.
        let sh = format!("apply_patch <<'EOF'\n{p}EOF");
        assert_eq!(touched_paths("Bash", &json!({"command": sh})).len(), 4);
        assert!(touched_paths("Bash", &json!({"command": "cargo test"})).is_empty());
    }

    #[test]
    fn claude_tools() {
        let e = touched_paths("Edit", &json!({"file_path": "/r/src/a.rs"}));
        assert_eq!(e, vec![(TouchKind::Edit, "/r/src/a.rs".to_string())]);
        let n = touched_paths("NotebookEdit", &json!({"notebook_path": "n.ipynb"}));
        assert_eq!(n, vec![(TouchKind::Edit, "n.ipynb".to_string())]);
        let r = touched_paths("Read", &json!({"file_path": "/r/x"}));
        assert_eq!(r[0].0, TouchKind::Read);
        assert!(touched_paths("Grep", &json!({"pattern": "x"})).is_empty());
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_to("/r", "/r", "/r/src/a.rs").as_deref(),
            Some("src/a.rs")
        );
        assert_eq!(
            relative_to("/r/src", "/r", "a.rs").as_deref(),
            Some("src/a.rs")
        );
        assert_eq!(
            relative_to("/r/src", "/r", "../b.rs").as_deref(),
            Some("b.rs")
        );
        assert_eq!(relative_to("/r", "/r", "/rx/a.rs"), None);
        assert_eq!(relative_to("/r", "/r", "/other/a.rs"), None);
        assert_eq!(relative_to("/r", "/r", "../../x"), None);
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("src/a.rs", "src/a.rs"));
        assert!(pattern_matches("src", "src/a.rs"));
        assert!(!pattern_matches("src", "srcx/a.rs"));
        assert!(pattern_matches("src/*.rs", "src/a.rs"));
        assert!(!pattern_matches("src/*.rs", "src/x/a.rs"));
        assert!(pattern_matches("src/**", "src/x/a.rs"));
        assert!(patterns_overlap("src/**", "src/a.rs"));
        assert!(!patterns_overlap("src/a.rs", "src/b.rs"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "",
            "**",
            "**/*",
            "/**",
            "../x",
            "a/../../b",
            "/elsewhere/x",
            "/r",
            "[",
        ] {
            assert!(check_pattern("/r", "/r", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_pattern("/r", "/r", "/r/src/a.rs").unwrap(),
            "src/a.rs"
        );
        assert_eq!(check_pattern("/r", "/r", "./src/*.rs").unwrap(), "src/*.rs");
        assert_eq!(check_pattern("/r", "/r", "*").unwrap(), "*");
    }

    fn rec(s: &str, at: u64) -> TouchRec {
        TouchRec {
            session: s.into(),
            worktree: "/r".into(),
            branch: None,
            kind: TouchKind::Edit,
            at_ms: at,
        }
    }

    /// The daemon-side cost of the PreToolUse conflict check at 50 live
    /// agents and 10 000 recent touches (BENCHMARKS.md). Run with
    /// `cargo test --release -p oxtail-daemon --lib files::tests::conflict_check_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn conflict_check_cost() {
        use crate::state::{Agent, Scope};
        let mut state = State::default();
        let mut t = Touches::default();
        for i in 0..50 {
            let id = format!("s{i}");
            state.agents.insert(
                id.clone(),
                Agent {
                    session_id: id.clone(),
                    client_type: "claude-code".into(),
                    name: Some(format!("agent-{i}")),
                    purpose: Some("working".into()),
                    purpose_at_ms: None,
                    scope: Scope::default(),
                    cwd: "/r".into(),
                    seat: None,
                    resolved_by: "t".into(),
                    first_seen_ms: 0,
                    previous_ids: vec![],
                    ended_ms: None,
                    tmux_socket: None,
                    name_source: None,
                    launch_name: None,
                    tmux_session: None,
                },
            );
            for f in 0..200 {
                t.record(
                    "p",
                    &format!("src/m{}/f{f}.rs", (i + f) % 100),
                    rec(&id, 1_000),
                );
            }
        }
        assert!(t.len() >= 10_000);
        let live = Live::default();
        let site = EditSite {
            me: "s0",
            project: "p",
            worktree: "/r",
        };
        let n = 20_000;
        for (label, path) in [("conflict", "src/m8/f7.rs"), ("no conflict", "src/none.rs")] {
            let start = std::time::Instant::now();
            let mut hits = 0;
            for _ in 0..n {
                let c = conflicts_for_edit(&state, &live, &t, site, path, 2_000, 60_000);
                if !c.is_empty() {
                    hits += render_warning(&state, &c, 2_000).len().min(1);
                }
            }
            let per = start.elapsed().as_nanos() as f64 / n as f64 / 1000.0;
            eprintln!("{label}: {per:.2} us per check ({hits} warned)");
        }
        let start = std::time::Instant::now();
        for k in 0..n {
            t.record("p", &format!("src/x/{}.rs", k % 200), rec("s1", 1_500));
        }
        let per = start.elapsed().as_nanos() as f64 / n as f64 / 1000.0;
        eprintln!("record: {per:.2} us per touch");
    }

    #[test]
    fn journaled_edits_are_coarse_bounded_seeded_and_pruned() {
        use crate::state::{apply, Command};
        let mut state = State::default();
        let site = EditSite {
            me: "A",
            project: "p",
            worktree: "/r",
        };
        let touch = |paths: Vec<String>, at_ms| Command::TouchFiles {
            session_id: "A".into(),
            project: "p".into(),
            worktree: "/r".into(),
            branch: Some("main".into()),
            paths,
            at_ms,
        };
        assert!(edit_needs_journal(&state, "A", site, "a.rs", 1_000));
        apply(
            &mut state,
            &touch(vec!["a.rs".into()], 1_000),
            &mut Vec::new(),
        );
        // Within a minute the same file is not journaled again; later it is,
        // and elsewhere (another work tree) it is.
        assert!(!edit_needs_journal(
            &state,
            "A",
            site,
            "a.rs",
            1_000 + JOURNAL_EDIT_EVERY_MS - 1
        ));
        assert!(edit_needs_journal(
            &state,
            "A",
            site,
            "a.rs",
            1_000 + JOURNAL_EDIT_EVERY_MS
        ));
        let other = EditSite {
            worktree: "/w2",
            ..site
        };
        assert!(edit_needs_journal(&state, "A", other, "a.rs", 1_001));
        // Bounded per agent, oldest first out.
        let many: Vec<String> = (0..TOUCHES_PER_AGENT + 5)
            .map(|i| format!("f{i}"))
            .collect();
        apply(&mut state, &touch(many, 2_000), &mut Vec::new());
        assert_eq!(state.edits["A"].len(), TOUCHES_PER_AGENT);
        assert!(!state.edits["A"].iter().any(|e| e.path == "a.rs"));
        // Seeding keeps what is inside the window.
        let t = Touches::seed(&state, 3_000, 1_500);
        assert_eq!(t.edits_of("A", 0).len(), TOUCHES_PER_AGENT);
        assert_eq!(t.of_path("p", "f9")[0].branch.as_deref(), Some("main"));
        assert!(Touches::seed(&state, 3_000, 500).is_empty());
        apply(
            &mut state,
            &Command::PruneEdits { before_ms: 2_001 },
            &mut Vec::new(),
        );
        assert!(state.edits.is_empty());
        apply(
            &mut state,
            &touch(vec!["b.rs".into()], 4_000),
            &mut Vec::new(),
        );
        apply(
            &mut state,
            &Command::EndSession {
                session_id: "A".into(),
                at_ms: 5_000,
            },
            &mut Vec::new(),
        );
        assert!(state.edits.is_empty(), "an ended agent's edits go");
    }

    #[test]
    fn touches_are_bounded_refreshed_and_forgotten() {
        let mut t = Touches::default();
        t.record("p", "a", rec("A", 1));
        t.record("p", "a", rec("A", 5));
        assert_eq!(t.of_path("p", "a"), &[rec("A", 5)]);
        for i in 0..(TOUCHES_PER_AGENT + 10) {
            t.record("p", &format!("f{i}"), rec("B", 10));
        }
        assert_eq!(t.edits_of("B", 0).len(), TOUCHES_PER_AGENT);
        assert!(t.of_path("p", "f0").is_empty());
        t.end("B");
        assert_eq!(t.len(), 1);
        t.expire(100, 50);
        assert!(t.is_empty());
    }
}
