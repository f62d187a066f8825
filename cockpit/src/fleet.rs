//! Fleets: `.oxtail/fleet.json` describes agents; `oxtail fleet
//! plan|up|sync|reset` stands them up in tmux, converges them, or tears them
//! down.
//!
//! Safety model:
//! * Every pane a fleet creates carries tmux **pane** user options
//!   `@oxtail_fleet` (fleet name), `@oxtail_agent` (agent name),
//!   `@oxtail_root` (the project root) and `@oxtail_spec` (a hash of what the
//!   spec asked for, so `sync` can see drift). Only panes carrying the
//!   fleet's marks are ever killed, and each mark is re-read right before
//!   the kill. Options are set on panes only, never on windows or sessions,
//!   so a hand-made pane never inherits them.
//! * Everything is a dry run unless `--apply`.
//! * Worktrees are created when missing but never removed (they may hold
//!   work); `reset` says so.
//!
//! The planner is pure ([`plan`] over a [`Spec`] and observed [`PaneInfo`]s);
//! [`apply`] runs the plan's steps through [`Tmux`].

use crate::tmux::Tmux;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The fleet file, as written.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FleetFile {
    /// The fleet's name: `[A-Za-z0-9_.-]`, 1–64 characters. It marks every
    /// pane the fleet creates (`@oxtail_fleet`).
    pub name: String,
    /// The tmux session agents go in unless they name their own (default
    /// `oxtail-<name>`).
    #[serde(default)]
    pub session: Option<String>,
    /// tmux layout for windows holding several agents: `tiled` (default),
    /// `even-horizontal`, `even-vertical`, `main-horizontal`,
    /// `main-vertical`.
    #[serde(default)]
    pub layout: Option<String>,
    /// The agents (at least one).
    pub agents: Vec<AgentSpec>,
}

/// One agent of the fleet file.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Unique in the fleet: `[A-Za-z0-9_.-]`, 1–64 characters.
    pub name: String,
    /// `claude` or `codex`.
    pub client: ClientKind,
    /// The command that starts the client (default `claude` / `codex`);
    /// run by tmux through `sh -c`. The prompt, if any, is appended as one
    /// shell-quoted argument.
    #[serde(default)]
    pub command: Option<String>,
    /// Working directory, relative to the project root (default: the
    /// project root). Not together with `worktree`.
    #[serde(default)]
    pub cwd: Option<String>,
    /// A git worktree to work in, relative to the project root; created
    /// with `git worktree add` when missing.
    #[serde(default)]
    pub worktree: Option<String>,
    /// The branch for a new `worktree` (created when it does not exist).
    #[serde(default)]
    pub branch: Option<String>,
    /// The first prompt, passed to the client on its command line.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The tmux session (default: the fleet's).
    #[serde(default)]
    pub session: Option<String>,
    /// The tmux window (default: the agent's name). Agents naming the same
    /// window share it, split and laid out with the fleet's `layout`.
    #[serde(default)]
    pub window: Option<String>,
}

/// Which client an agent runs.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// Claude Code (`claude`).
    Claude,
    /// Codex CLI (`codex`).
    Codex,
}

/// A validated, resolved fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Fleet name.
    pub name: String,
    /// The project root (relative paths resolve against it; `@oxtail_root`).
    pub root: PathBuf,
    /// Window layout.
    pub layout: String,
    /// Agents in file order.
    pub agents: Vec<Planned>,
}

/// One resolved agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Agent name.
    pub name: String,
    /// tmux session.
    pub session: String,
    /// tmux window name.
    pub window: String,
    /// Absolute working directory.
    pub cwd: PathBuf,
    /// The shell command tmux runs.
    pub command_line: String,
    /// A worktree to create first, with its branch.
    pub worktree: Option<(PathBuf, Option<String>)>,
    /// Hash of (command_line, cwd, session, window): `@oxtail_spec`.
    pub hash: String,
}

const LAYOUTS: &[&str] = &[
    "tiled",
    "even-horizontal",
    "even-vertical",
    "main-horizontal",
    "main-vertical",
];

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Where the fleet file is by default: `<project root>/.oxtail/fleet.json`,
/// the project root being the git work tree's top level containing `cwd`,
/// else `cwd`.
pub fn default_file(cwd: &Path) -> PathBuf {
    project_root_of(cwd).join(".oxtail").join("fleet.json")
}

fn project_root_of(cwd: &Path) -> PathBuf {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(cwd)
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string())
        }
        _ => cwd.to_path_buf(),
    }
}

/// The project root for a fleet file: the parent of its `.oxtail`
/// directory, else the file's own directory.
pub fn root_for_file(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if dir.file_name().is_some_and(|n| n == ".oxtail") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// Reads and validates a fleet file.
///
/// # Errors
/// A missing or unreadable file, JSON syntax errors, unknown keys and wrong
/// types (naming the field path, line and column), and every semantic
/// problem at once (each naming its field, e.g. `agents[1].name`).
pub fn load(file: &Path) -> Result<Spec> {
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "cannot read the fleet file {} (create it, or pass --file)",
            file.display()
        )
    })?;
    let parsed = parse(&text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    resolve(&parsed, &root_for_file(file)).map_err(|e| anyhow!("{}: {e}", file.display()))
}

/// Parses fleet JSON; errors name the field path.
///
/// # Errors
/// Syntax errors, unknown keys, wrong types, missing keys.
pub fn parse(text: &str) -> Result<FleetFile> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            anyhow!("{inner}")
        } else {
            anyhow!("at `{path}`: {inner}")
        }
    })
}

/// Validates a parsed fleet and resolves paths against `root`.
///
/// # Errors
/// Every problem found, one per line, each naming its field.
pub fn resolve(f: &FleetFile, root: &Path) -> Result<Spec> {
    let mut errs: Vec<String> = Vec::new();
    if !valid_name(&f.name) {
        errs.push(format!(
            "name: `{}` must be 1-64 letters, digits, '-', '_' or '.'",
            f.name
        ));
    }
    let session = f
        .session
        .clone()
        .unwrap_or_else(|| format!("oxtail-{}", f.name));
    if f.session.is_some() && !valid_name(&session) {
        errs.push(format!(
            "session: `{session}` must be 1-64 letters, digits, '-', '_' or '.' (tmux reserves ':')"
        ));
    }
    let layout = f.layout.clone().unwrap_or_else(|| "tiled".into());
    if !LAYOUTS.contains(&layout.as_str()) {
        errs.push(format!(
            "layout: `{layout}` is not one of: {}",
            LAYOUTS.join(", ")
        ));
    }
    if f.agents.is_empty() {
        errs.push("agents: the fleet has no agents; list at least one".into());
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut agents = Vec::new();
    for (i, a) in f.agents.iter().enumerate() {
        let at = format!("agents[{i}]");
        if !valid_name(&a.name) {
            errs.push(format!(
                "{at}.name: `{}` must be 1-64 letters, digits, '-', '_' or '.'",
                a.name
            ));
        } else if let Some(j) = seen.insert(a.name.as_str(), i) {
            errs.push(format!(
                "{at}.name: `{}` is already the name of agents[{j}]; names must be unique",
                a.name
            ));
        }
        if let Some(c) = &a.command {
            if c.trim().is_empty() {
                errs.push(format!(
                    "{at}.command: must not be empty (omit it for the default)"
                ));
            }
        }
        if let Some(p) = &a.prompt {
            if p.len() > 8192 {
                errs.push(format!(
                    "{at}.prompt: is {} bytes; the limit is 8192",
                    p.len()
                ));
            }
        }
        if a.cwd.is_some() && a.worktree.is_some() {
            errs.push(format!(
                "{at}.worktree: give either `cwd` or `worktree`, not both"
            ));
        }
        if a.branch.is_some() && a.worktree.is_none() {
            errs.push(format!("{at}.branch: only meaningful with `worktree`"));
        }
        let a_session = a.session.clone().unwrap_or_else(|| session.clone());
        if a.session.is_some() && !valid_name(&a_session) {
            errs.push(format!(
                "{at}.session: `{a_session}` must be 1-64 letters, digits, '-', '_' or '.'"
            ));
        }
        let window = a.window.clone().unwrap_or_else(|| a.name.clone());
        if a.window.is_some() && !valid_name(&window) {
            errs.push(format!(
                "{at}.window: `{window}` must be 1-64 letters, digits, '-', '_' or '.'"
            ));
        }
        let (cwd, worktree) = match (&a.cwd, &a.worktree) {
            (_, Some(w)) => {
                let p = root.join(w);
                let exists = p.is_dir();
                (p.clone(), (!exists).then(|| (p, a.branch.clone())))
            }
            (Some(c), None) => {
                let p = root.join(c);
                if !p.is_dir() {
                    errs.push(format!("{at}.cwd: {} is not a directory", p.display()));
                }
                (p, None)
            }
            (None, None) => (root.to_path_buf(), None),
        };
        let base = a.command.clone().unwrap_or_else(|| {
            match a.client {
                ClientKind::Claude => "claude",
                ClientKind::Codex => "codex",
            }
            .to_string()
        });
        let command_line = match &a.prompt {
            Some(p) if !p.is_empty() => format!("{base} {}", shell_quote(p)),
            _ => base,
        };
        let hash = fnv_hex(&[
            command_line.as_str(),
            &cwd.display().to_string(),
            &a_session,
            &window,
        ]);
        agents.push(Planned {
            name: a.name.clone(),
            session: a_session,
            window,
            cwd,
            command_line,
            worktree,
            hash,
        });
    }
    if !errs.is_empty() {
        bail!("the fleet spec is invalid:\n  {}", errs.join("\n  "));
    }
    Ok(Spec {
        name: f.name.clone(),
        root: root.to_path_buf(),
        layout,
        agents,
    })
}

/// `s` as one POSIX shell word.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn fnv_hex(parts: &[&str]) -> String {
    let h = oxtail_proto::paths::fnv1a64(parts.iter().flat_map(|p| p.bytes().chain([0u8])));
    format!("{h:016x}")
}

/// A tmux pane as observed, with its fleet marks (empty when unmarked).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaneInfo {
    /// `%N`.
    pub pane_id: String,
    /// Session name.
    pub session: String,
    /// Window id `@N`.
    pub window_id: String,
    /// Window name.
    pub window_name: String,
    /// `@oxtail_fleet`.
    pub fleet: String,
    /// `@oxtail_agent`.
    pub agent: String,
    /// `@oxtail_root`.
    pub root: String,
    /// `@oxtail_spec`.
    pub spec_hash: String,
    /// The pane's process has exited (remain-on-exit).
    pub dead: bool,
}

impl PaneInfo {
    /// Whether the pane belongs to `spec`'s fleet.
    pub fn is_ours(&self, spec: &Spec) -> bool {
        self.fleet == spec.name && self.root == spec.root.display().to_string()
    }
}

const PANE_FORMAT: &str = "#{pane_id}\t#{session_name}\t#{window_id}\t#{window_name}\t#{@oxtail_fleet}\t#{@oxtail_agent}\t#{@oxtail_root}\t#{@oxtail_spec}\t#{pane_dead}";

/// Every pane on the server (none when no server runs).
///
/// # Errors
/// When tmux fails for another reason.
pub fn observe(t: &Tmux) -> Result<Vec<PaneInfo>> {
    let out = match t.run(&["list-panes", "-a", "-F", PANE_FORMAT]) {
        Ok(o) => o,
        Err(e) => {
            let m = format!("{e:#}");
            if m.contains("no server running")
                || m.contains("error connecting")
                || m.contains("No such file")
            {
                return Ok(Vec::new());
            }
            return Err(e);
        }
    };
    Ok(out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 9).then(|| PaneInfo {
                pane_id: f[0].into(),
                session: f[1].into(),
                window_id: f[2].into(),
                window_name: f[3].into(),
                fleet: f[4].into(),
                agent: f[5].into(),
                root: f[6].into(),
                spec_hash: f[7].into(),
                dead: f[8] == "1",
            })
        })
        .collect())
}

/// Which fleet command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Print what `sync` would change.
    Plan,
    /// Create what is missing; leave the rest.
    Up,
    /// Converge: create missing, recreate drifted or dead, remove agents no
    /// longer in the spec and duplicates.
    Sync,
    /// Remove every pane of the fleet.
    Reset,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do for this agent.
    Keep {
        /// Agent.
        agent: String,
        /// Its pane.
        pane_id: String,
    },
    /// `git worktree add` before creating the agent.
    CreateWorktree {
        /// Agent.
        agent: String,
        /// Where.
        path: PathBuf,
        /// Branch, if named.
        branch: Option<String>,
    },
    /// Kill a marked pane.
    Kill {
        /// Agent mark.
        agent: String,
        /// The pane.
        pane_id: String,
        /// Why.
        reason: String,
    },
    /// Start an agent in a new pane.
    Create {
        /// The agent (index into the spec).
        index: usize,
        /// Why (`missing`, `command changed`, …).
        reason: String,
    },
}

/// Plans `op` for `spec` against the observed panes. Pure.
pub fn plan(op: Op, spec: &Spec, panes: &[PaneInfo]) -> Vec<Step> {
    let ours: Vec<&PaneInfo> = panes.iter().filter(|p| p.is_ours(spec)).collect();
    let mut steps = Vec::new();
    if op == Op::Reset {
        for p in ours {
            steps.push(Step::Kill {
                agent: p.agent.clone(),
                pane_id: p.pane_id.clone(),
                reason: "reset".into(),
            });
        }
        return steps;
    }
    let converge = matches!(op, Op::Sync | Op::Plan);
    let mut kills = Vec::new();
    let mut rest = Vec::new();
    let wanted: BTreeSet<&str> = spec.agents.iter().map(|a| a.name.as_str()).collect();
    if converge {
        for p in &ours {
            if !wanted.contains(p.agent.as_str()) {
                kills.push(Step::Kill {
                    agent: p.agent.clone(),
                    pane_id: p.pane_id.clone(),
                    reason: "not in the spec any more".into(),
                });
            }
        }
    }
    for (i, a) in spec.agents.iter().enumerate() {
        let mine: Vec<&&PaneInfo> = ours.iter().filter(|p| p.agent == a.name).collect();
        let create = |reason: &str, rest: &mut Vec<Step>| {
            if let Some((path, branch)) = &a.worktree {
                rest.push(Step::CreateWorktree {
                    agent: a.name.clone(),
                    path: path.clone(),
                    branch: branch.clone(),
                });
            }
            rest.push(Step::Create {
                index: i,
                reason: reason.into(),
            });
        };
        let Some(first) = mine.first() else {
            create("missing", &mut rest);
            continue;
        };
        if !converge {
            rest.push(Step::Keep {
                agent: a.name.clone(),
                pane_id: first.pane_id.clone(),
            });
            continue;
        }
        for dup in mine.iter().skip(1) {
            kills.push(Step::Kill {
                agent: a.name.clone(),
                pane_id: dup.pane_id.clone(),
                reason: "duplicate pane for this agent".into(),
            });
        }
        let drift = if first.dead {
            Some("its process exited")
        } else if first.spec_hash != a.hash {
            Some("the spec changed (command, cwd, session or window)")
        } else {
            None
        };
        match drift {
            Some(why) => {
                kills.push(Step::Kill {
                    agent: a.name.clone(),
                    pane_id: first.pane_id.clone(),
                    reason: why.into(),
                });
                create(&format!("recreate: {why}"), &mut rest);
            }
            None => rest.push(Step::Keep {
                agent: a.name.clone(),
                pane_id: first.pane_id.clone(),
            }),
        }
    }
    steps.extend(kills);
    steps.extend(rest);
    steps
}

/// Whether a plan changes anything.
pub fn changes(steps: &[Step]) -> usize {
    steps
        .iter()
        .filter(|s| !matches!(s, Step::Keep { .. }))
        .count()
}

/// The plan as text, one line per step.
pub fn describe(spec: &Spec, steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        let line = match s {
            Step::Keep { agent, pane_id } => format!("  = keep      {agent} ({pane_id})"),
            Step::CreateWorktree {
                agent,
                path,
                branch,
            } => format!(
                "  + worktree  {agent}: git worktree add {}{}",
                path.display(),
                branch
                    .as_deref()
                    .map(|b| format!(" (branch {b})"))
                    .unwrap_or_default()
            ),
            Step::Kill {
                agent,
                pane_id,
                reason,
            } => format!("  - remove    {agent} ({pane_id}): {reason}"),
            Step::Create { index, reason } => {
                let a = &spec.agents[*index];
                format!(
                    "  + create    {} in {}:{} ({reason})\n      cwd {}\n      $ {}",
                    a.name,
                    a.session,
                    a.window,
                    a.cwd.display(),
                    a.command_line
                )
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Runs the plan. Kills re-check the pane's marks first and skip a pane
/// that no longer carries this fleet's marks.
///
/// # Errors
/// The first tmux or git failure (steps before it have been carried out).
pub fn apply(t: &Tmux, spec: &Spec, steps: &[Step]) -> Result<Vec<String>> {
    let mut log = Vec::new();
    for s in steps {
        match s {
            Step::Keep { .. } => {}
            Step::Kill { agent, pane_id, .. } => {
                crate::tmux::check_pane_id(pane_id)?;
                let marks = t.run(&[
                    "display-message",
                    "-p",
                    "-t",
                    pane_id,
                    "#{@oxtail_fleet}\t#{@oxtail_agent}\t#{@oxtail_root}",
                ]);
                let expect = format!("{}\t{agent}\t{}", spec.name, spec.root.display());
                match marks {
                    Ok(m) if m.trim_end_matches('\n') == expect => {
                        t.run(&["kill-pane", "-t", pane_id])?;
                        log.push(format!("removed {agent} ({pane_id})"));
                    }
                    _ => log.push(format!(
                        "skipped {pane_id}: it no longer carries this fleet's marks"
                    )),
                }
            }
            Step::CreateWorktree {
                agent,
                path,
                branch,
            } => {
                if path.is_dir() {
                    continue;
                }
                let mut c = std::process::Command::new("git");
                c.arg("-C").arg(&spec.root).args(["worktree", "add"]);
                let path_s = path.display().to_string();
                match branch {
                    Some(b) if branch_exists(&spec.root, b) => {
                        c.arg(&path_s).arg(b);
                    }
                    Some(b) => {
                        c.args(["-b", b]).arg(&path_s);
                    }
                    None => {
                        c.arg(&path_s);
                    }
                }
                let out = c.output().context("could not run git")?;
                if !out.status.success() {
                    bail!(
                        "git worktree add for {agent} failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                log.push(format!("created worktree {}", path.display()));
            }
            Step::Create { index, .. } => {
                let a = &spec.agents[*index];
                let pane = create_pane(t, spec, a)?;
                log.push(format!(
                    "created {} ({pane}) in {}:{}",
                    a.name, a.session, a.window
                ));
            }
        }
    }
    Ok(log)
}

fn branch_exists(root: &Path, b: &str) -> bool {
    std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("refs/heads/{b}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn create_pane(t: &Tmux, spec: &Spec, a: &Planned) -> Result<String> {
    let panes = observe(t)?;
    let cwd = a.cwd.display().to_string();
    let session_exists = panes.iter().any(|p| p.session == a.session);
    // Split only a window that already holds this fleet's panes; never
    // split a hand-made window.
    let window = panes
        .iter()
        .find(|p| p.is_ours(spec) && p.session == a.session && p.window_name == a.window)
        .map(|p| p.window_id.clone());
    let out = if !session_exists {
        t.run(&[
            "new-session",
            "-d",
            "-s",
            &a.session,
            "-n",
            &a.window,
            "-c",
            &cwd,
            "-P",
            "-F",
            "#{pane_id}",
            &a.command_line,
        ])?
    } else if let Some(w) = &window {
        t.run(&[
            "split-window",
            "-d",
            "-t",
            w,
            "-c",
            &cwd,
            "-P",
            "-F",
            "#{pane_id}",
            &a.command_line,
        ])?
    } else {
        let target = format!("{}:", a.session);
        t.run(&[
            "new-window",
            "-d",
            "-t",
            &target,
            "-n",
            &a.window,
            "-c",
            &cwd,
            "-P",
            "-F",
            "#{pane_id}",
            &a.command_line,
        ])?
    };
    let pane = out.trim().to_string();
    crate::tmux::check_pane_id(&pane)?;
    let root = spec.root.display().to_string();
    t.run(&[
        "set-option",
        "-p",
        "-t",
        &pane,
        "@oxtail_fleet",
        &spec.name,
        ";",
        "set-option",
        "-p",
        "-t",
        &pane,
        "@oxtail_agent",
        &a.name,
        ";",
        "set-option",
        "-p",
        "-t",
        &pane,
        "@oxtail_root",
        &root,
        ";",
        "set-option",
        "-p",
        "-t",
        &pane,
        "@oxtail_spec",
        &a.hash,
    ])?;
    if let Some(w) = window {
        let _ = t.run(&["select-layout", "-t", &w, &spec.layout]);
    }
    Ok(pane)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<Spec> {
        resolve(&parse(json)?, Path::new("/"))
    }

    #[test]
    fn unknown_keys_and_bad_clients_name_the_field() {
        let e = parse(r#"{"name":"f","agents":[{"name":"a","client":"claude","comand":"x"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("agents[0]") && e.contains("unknown field `comand`"),
            "{e}"
        );
        let e = parse(r#"{"name":"f","agents":[{"name":"a","client":"gpt"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("agents[0].client") && e.contains("gpt"), "{e}");
        let e = parse(r#"{"name":"f"}"#).unwrap_err().to_string();
        assert!(e.contains("missing field `agents`"), "{e}");
    }

    #[test]
    fn semantic_errors_are_all_reported() {
        let e = spec(
            r#"{"name":"bad name","layout":"zigzag","agents":[
                {"name":"a","client":"claude"},
                {"name":"a","client":"codex","cwd":"x","worktree":"y"},
                {"name":"b","client":"codex","branch":"z","command":" "}]}"#,
        )
        .unwrap_err()
        .to_string();
        for want in [
            "name: `bad name`",
            "layout: `zigzag`",
            "agents[1].name: `a` is already the name of agents[0]",
            "agents[1].worktree: give either",
            "agents[2].branch",
            "agents[2].command",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
    }

    #[test]
    fn prompt_is_one_quoted_word() {
        let s =
            spec(r#"{"name":"f","agents":[{"name":"a","client":"codex","prompt":"it's a test"}]}"#)
                .unwrap();
        assert_eq!(s.agents[0].command_line, r"codex 'it'\''s a test'");
        assert_eq!(s.agents[0].session, "oxtail-f");
        assert_eq!(s.agents[0].window, "a");
    }

    fn pane(id: &str, s: &Spec, agent: &str, hash: &str) -> PaneInfo {
        PaneInfo {
            pane_id: id.into(),
            session: "oxtail-f".into(),
            window_id: "@1".into(),
            window_name: agent.into(),
            fleet: s.name.clone(),
            agent: agent.into(),
            root: s.root.display().to_string(),
            spec_hash: hash.into(),
            dead: false,
        }
    }

    #[test]
    fn plans() {
        let s = spec(r#"{"name":"f","agents":[{"name":"a","client":"claude"},{"name":"b","client":"codex"}]}"#)
            .unwrap();
        // Nothing running: up creates both.
        let p = plan(Op::Up, &s, &[]);
        assert_eq!(changes(&p), 2);
        // a running and current, b missing; plus a hand-made pane and a
        // pane of another fleet.
        let mut other = pane("%9", &s, "a", "x");
        other.fleet = "g".into();
        let hand = PaneInfo {
            pane_id: "%8".into(),
            session: "oxtail-f".into(),
            ..Default::default()
        };
        let obs = vec![pane("%1", &s, "a", &s.agents[0].hash), other, hand];
        let p = plan(Op::Sync, &s, &obs);
        assert_eq!(
            p,
            vec![
                Step::Keep {
                    agent: "a".into(),
                    pane_id: "%1".into()
                },
                Step::Create {
                    index: 1,
                    reason: "missing".into()
                },
            ]
        );
        // Drift, a stale agent and a duplicate under sync; up leaves them.
        let obs = vec![
            pane("%1", &s, "a", "old"),
            pane("%2", &s, "b", &s.agents[1].hash),
            pane("%3", &s, "b", &s.agents[1].hash),
            pane("%4", &s, "gone", "h"),
        ];
        let p = plan(Op::Sync, &s, &obs);
        let kills: Vec<&str> = p
            .iter()
            .filter_map(|x| match x {
                Step::Kill { pane_id, .. } => Some(pane_id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(kills, ["%4", "%1", "%3"]);
        assert!(p.contains(&Step::Create {
            index: 0,
            reason: "recreate: the spec changed (command, cwd, session or window)".into()
        }));
        assert_eq!(changes(&plan(Op::Up, &s, &obs)), 0);
        // Reset kills only this fleet's panes.
        let p = plan(Op::Reset, &s, &obs);
        assert_eq!(p.len(), 4);
    }
}
