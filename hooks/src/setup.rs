//! `oxtail setup`: register oxtail's MCP server with Claude Code and Codex,
//! then install the hooks (SPEC §6).
//!
//! * Claude Code, user scope: `mcpServers.oxtail` in `~/.claude.json`
//!   (`{"type":"stdio","command":…,"args":["mcp"],"alwaysLoad":true}`).
//! * Claude Code, project scope: `mcpServers.oxtail` in `<project>/.mcp.json`
//!   (the git work tree's top, else the current directory), plus `"oxtail"`
//!   in `enabledMcpjsonServers` of `<project>/.claude/settings.local.json`,
//!   which approves this one server for this one project (Claude Code asks
//!   before starting servers from a project `.mcp.json`).
//!   `alwaysLoad: true` keeps the tools offered up front instead of deferred
//!   behind tool search (verified with Claude Code 2.1.329, SPEC §10).
//! * Codex: `[mcp_servers.oxtail]` with `command` and `args` in
//!   `$CODEX_HOME/config.toml`, edited with toml_edit so comments and layout
//!   survive. Codex's default app-server daemon is kept: through it oxtail
//!   wakes an idle Codex (`turn/start`) and reaches a busy one
//!   (`turn/steer`) with nothing typed (issue 15); setup notes when the
//!   config turned it off. The hidden `--codex-no-daemon` still sets
//!   `[features] daemon_auto_start = false` (one Codex process per
//!   terminal), not recommended: Codex is then woken only by keys.
//! * Permissions (unless `--no-allow`): agents call oxtail's tools without
//!   a prompt. Claude Code: `"mcp__oxtail"` in `permissions.allow` of
//!   `~/.claude/settings.json` (without it, the default permission mode
//!   denies every `mcp__oxtail__*` call in `claude -p` and prompts in the
//!   TUI). Codex: `default_tools_approval_mode = "approve"` in
//!   `[mcp_servers.oxtail]` (Codex 0.169's `AppToolApproval`: `auto`,
//!   `prompt`, `approve`).
//! * `--undo` removes what setup adds: the MCP registrations, the hooks and
//!   the permission entries; nothing else.
//!
//! Only the keys oxtail manages inside its own entries are written; other
//! keys a user added there (`env`, timeouts, …) are kept.

use crate::config::{input_to_value, obj, read_optional, ClientPaths, Clients, JsonDoc, Report};
use crate::install::{plan_hooks, HookOptions};
use jsonc_parser::cst::{CstInputValue, CstObject};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where `oxtail setup` registers the Claude Code MCP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `~/.claude.json`: every project of this user.
    User,
    /// `<project>/.mcp.json`: this project only.
    Project,
}

impl Scope {
    /// Parses `user` or `project`.
    ///
    /// # Errors
    /// A sentence naming the accepted values.
    pub fn parse(s: &str) -> Result<Scope, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "user" => Ok(Scope::User),
            "project" => Ok(Scope::Project),
            other => Err(format!("unknown scope {other:?}: expected user or project")),
        }
    }
}

/// Options of `oxtail setup`.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// Which clients.
    pub clients: Clients,
    /// Claude Code MCP registration scope.
    pub scope: Scope,
    /// Print only.
    pub dry_run: bool,
    /// The oxtail binary (absolute).
    pub exe: PathBuf,
    /// The directory setup runs in (project scope looks for its project
    /// root from here).
    pub cwd: PathBuf,
    /// Also set Codex `features.daemon_auto_start = false` (not
    /// recommended: without its app-server Codex is woken only by keys).
    pub codex_no_daemon: bool,
    /// Skip installing hooks (MCP registration only).
    pub skip_hooks: bool,
    /// Allow oxtail's tools without approval prompts (Claude Code
    /// `permissions.allow`, Codex `default_tools_approval_mode`).
    pub allow: bool,
    /// Remove what setup adds instead of adding it.
    pub undo: bool,
}

/// Codex's per-server key for the approval of an MCP server's tools.
pub const CODEX_APPROVAL_KEY: &str = "default_tools_approval_mode";

/// The value oxtail sets: every oxtail tool runs without asking (Codex
/// 0.169 `AppToolApproval::Approve`).
pub const CODEX_APPROVAL_VALUE: &str = "approve";

/// The project root for project scope: the top of the git work tree that
/// holds `cwd`, else `cwd` itself.
pub fn project_root(cwd: &Path) -> PathBuf {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(cwd)
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if s.is_empty() {
                cwd.to_path_buf()
            } else {
                PathBuf::from(s)
            }
        }
        _ => cwd.to_path_buf(),
    }
}

/// The fields oxtail manages in its Claude Code MCP server entry.
pub fn claude_server_fields(exe: &Path, scope: Scope) -> Vec<(&'static str, CstInputValue)> {
    let mut f = Vec::new();
    if scope == Scope::User {
        f.push(("type", CstInputValue::from("stdio")));
    }
    f.push((
        "command",
        CstInputValue::from(exe.to_string_lossy().into_owned()),
    ));
    f.push((
        "args",
        CstInputValue::Array(vec![CstInputValue::from("mcp")]),
    ));
    f.push(("alwaysLoad", CstInputValue::Bool(true)));
    f
}

/// Sets `fields` on the object property `name` of `parent` (creating it),
/// leaving other keys alone. Returns whether anything changed.
fn set_fields(
    parent: &CstObject,
    name: &str,
    fields: Vec<(&'static str, CstInputValue)>,
) -> Result<bool, String> {
    match parent.get(name) {
        None => {
            parent.append(name, obj(fields));
            Ok(true)
        }
        Some(p) => {
            let Some(o) = p.object_value() else {
                return Err(format!("\"{name}\" is not an object"));
            };
            let mut changed = false;
            for (k, v) in fields {
                let want = input_to_value(&v);
                match o.get(k) {
                    Some(prop) => {
                        let have = prop.value().and_then(|n| n.to_serde_value());
                        if have.as_ref() != Some(&want) {
                            prop.set_value(v);
                            changed = true;
                        }
                    }
                    None => {
                        o.append(k, v);
                        changed = true;
                    }
                }
            }
            Ok(changed)
        }
    }
}

/// Plans `mcpServers.oxtail` in a Claude Code JSON file (`~/.claude.json`
/// or `.mcp.json`).
///
/// # Errors
/// A sentence when the file is not JSON or `mcpServers` is not an object.
pub fn plan_claude_mcp(
    path: &Path,
    old: Option<&str>,
    exe: &Path,
    scope: Scope,
) -> Result<(String, Vec<String>), String> {
    let doc = JsonDoc::parse(path, old)?;
    let root = doc.root.object_value().expect("checked at parse");
    let servers = root.object_value_or_create("mcpServers").ok_or_else(|| {
        format!(
            "{}: \"mcpServers\" is not an object; left the file alone",
            path.display()
        )
    })?;
    let existed = servers.get("oxtail").is_some();
    let changed = set_fields(&servers, "oxtail", claude_server_fields(exe, scope))
        .map_err(|e| format!("{}: mcpServers.{e}; left the file alone", path.display()))?;
    let mut details = Vec::new();
    if changed {
        details.push(format!(
            "{} MCP server \"oxtail\" ({} mcp)",
            if existed { "updated" } else { "added" },
            exe.display()
        ));
    }
    Ok((doc.text(), details))
}

/// Plans `"oxtail"` in `enabledMcpjsonServers` of a Claude Code settings
/// file (project approval of the `.mcp.json` server).
///
/// # Errors
/// A sentence when the file is not JSON or the key is not a list.
pub fn plan_claude_project_approval(
    path: &Path,
    old: Option<&str>,
) -> Result<(String, Vec<String>), String> {
    let doc = JsonDoc::parse(path, old)?;
    let root = doc.root.object_value().expect("checked at parse");
    let arr = root
        .array_value_or_create("enabledMcpjsonServers")
        .ok_or_else(|| {
            format!(
                "{}: \"enabledMcpjsonServers\" is not a list; left the file alone",
                path.display()
            )
        })?;
    let present = arr
        .elements()
        .iter()
        .any(|e| e.to_serde_value() == Some(Value::String("oxtail".into())));
    let mut details = Vec::new();
    if !present {
        arr.append(CstInputValue::from("oxtail"));
        details.push("approved the project's \"oxtail\" MCP server (enabledMcpjsonServers)".into());
    }
    Ok((doc.text(), details))
}

/// Plans `[mcp_servers.oxtail]` (and optionally `features.daemon_auto_start
/// = false`) in Codex's `config.toml`, keeping comments and layout.
///
/// # Errors
/// A sentence when the file is not TOML or `mcp_servers` / `features` is
/// not a table.
pub fn plan_codex_config(
    path: &Path,
    old: Option<&str>,
    exe: &Path,
    no_daemon: bool,
    allow: bool,
) -> Result<(String, Vec<String>), String> {
    use toml_edit::{value, Array, DocumentMut, Item, Table};
    let mut doc: DocumentMut = old.unwrap_or("").parse().map_err(|e| {
        format!(
            "{} is not valid TOML ({e}); fix or move it, then run this again",
            path.display()
        )
    })?;
    let mut details = Vec::new();
    let servers = doc
        .entry("mcp_servers")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_like_mut()
        .ok_or_else(|| {
            format!(
                "{}: mcp_servers is not a table; left the file alone",
                path.display()
            )
        })?;
    let exe_s = exe.to_string_lossy().into_owned();
    let existed = servers.get("oxtail").is_some();
    let entry = servers
        .entry("oxtail")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_like_mut()
        .ok_or_else(|| {
            format!(
                "{}: mcp_servers.oxtail is not a table; left the file alone",
                path.display()
            )
        })?;
    let mut changed = false;
    if entry.get("command").and_then(Item::as_str) != Some(exe_s.as_str()) {
        entry.insert("command", value(exe_s.clone()));
        changed = true;
    }
    let args_ok = entry
        .get("args")
        .and_then(Item::as_array)
        .is_some_and(|a| a.len() == 1 && a.get(0).and_then(|v| v.as_str()) == Some("mcp"));
    if !args_ok {
        let mut a = Array::new();
        a.push("mcp");
        entry.insert("args", value(a));
        changed = true;
    }
    // Codex 0.169 gives MCP servers only HOME, PATH, LANG, SHELL, TERM and
    // certificate variables, so a non-default state dir or socket must be
    // in the entry's own env table or the shim would find another daemon.
    for key in ["OXTAIL_HOME", "OXTAIL_SOCKET"] {
        let Some(v) = std::env::var(key).ok().filter(|v| !v.is_empty()) else {
            continue;
        };
        let env = entry
            .entry("env")
            .or_insert(Item::Value(toml_edit::Value::InlineTable(
                toml_edit::InlineTable::new(),
            )));
        if let Some(t) = env.as_table_like_mut() {
            if t.get(key).and_then(Item::as_str) != Some(v.as_str()) {
                t.insert(key, value(v.clone()));
                changed = true;
                details.push(format!("set [mcp_servers.oxtail] env {key} = {v:?}"));
            }
        }
    }
    if changed {
        details.push(format!(
            "{} [mcp_servers.oxtail] ({exe_s} mcp)",
            if existed { "updated" } else { "added" }
        ));
    }
    if allow && entry.get(CODEX_APPROVAL_KEY).and_then(Item::as_str) != Some(CODEX_APPROVAL_VALUE) {
        entry.insert(CODEX_APPROVAL_KEY, value(CODEX_APPROVAL_VALUE));
        details.push(format!(
            "allowed oxtail's tools without a prompt: [mcp_servers.oxtail] \
             {CODEX_APPROVAL_KEY} = \"{CODEX_APPROVAL_VALUE}\""
        ));
    }
    let auto_start = doc
        .get("features")
        .and_then(|f| f.get("daemon_auto_start"))
        .and_then(Item::as_bool);
    if no_daemon && auto_start != Some(false) {
        let features = doc
            .entry("features")
            .or_insert_with(|| Item::Table(Table::new()))
            .as_table_like_mut()
            .ok_or_else(|| {
                format!(
                    "{}: features is not a table; left the file alone",
                    path.display()
                )
            })?;
        features.insert("daemon_auto_start", value(false));
        details.push(
            "set [features] daemon_auto_start = false (one Codex process per terminal)".into(),
        );
    }
    Ok((doc.to_string(), details))
}

/// Plans the removal of what setup wrote to Codex's `config.toml`: the
/// whole `[mcp_servers.oxtail]` table (`remove_server`), or only its
/// `default_tools_approval_mode = "approve"` (what `uninstall-hook`
/// removes). Another value of that key was not ours and stays.
///
/// # Errors
/// A sentence when the file is not TOML.
pub fn plan_codex_undo(
    path: &Path,
    old: &str,
    remove_server: bool,
) -> Result<(String, Vec<String>), String> {
    use toml_edit::{DocumentMut, Item};
    let mut doc: DocumentMut = old.parse().map_err(|e| {
        format!(
            "{} is not valid TOML ({e}); fix or move it, then run this again",
            path.display()
        )
    })?;
    let mut details = Vec::new();
    if let Some(servers) = doc.get_mut("mcp_servers").and_then(Item::as_table_like_mut) {
        if remove_server {
            if servers.remove("oxtail").is_some() {
                details.push("removed [mcp_servers.oxtail]".to_string());
            }
        } else if let Some(entry) = servers.get_mut("oxtail").and_then(Item::as_table_like_mut) {
            if entry.get(CODEX_APPROVAL_KEY).and_then(Item::as_str) == Some(CODEX_APPROVAL_VALUE) {
                entry.remove(CODEX_APPROVAL_KEY);
                details.push(format!(
                    "removed {CODEX_APPROVAL_KEY} = \"{CODEX_APPROVAL_VALUE}\" from [mcp_servers.oxtail]"
                ));
            }
        }
    }
    Ok((doc.to_string(), details))
}

/// Plans the removal of `mcpServers.oxtail` from a Claude Code JSON file
/// and, for project scope, of `"oxtail"` from `enabledMcpjsonServers`.
///
/// # Errors
/// A sentence when the file is not JSON.
pub fn plan_claude_undo(path: &Path, old: &str) -> Result<(String, Vec<String>), String> {
    let doc = JsonDoc::parse(path, Some(old))?;
    let root = doc.root.object_value().expect("checked at parse");
    let mut details = Vec::new();
    if let Some(servers) = root.object_value("mcpServers") {
        if let Some(p) = servers.get("oxtail") {
            p.remove();
            details.push("removed MCP server \"oxtail\"".to_string());
        }
    }
    if let Some(arr) = root.array_value("enabledMcpjsonServers") {
        for e in arr.elements() {
            if e.to_serde_value() == Some(Value::String("oxtail".into())) {
                e.remove();
                details.push("removed \"oxtail\" from enabledMcpjsonServers".to_string());
            }
        }
    }
    Ok((doc.text(), details))
}

/// `oxtail setup --undo`: removes the MCP registrations (the given scope),
/// oxtail's hooks and its permission entries; writes nothing with
/// `dry_run`.
///
/// # Errors
/// As [`setup_command`].
fn undo_command(paths: &ClientPaths, opts: &SetupOptions) -> Result<Report, String> {
    let mut report = Report {
        dry_run: opts.dry_run,
        ..Report::default()
    };
    let read = |p: &Path| read_optional(p).map_err(|e| e.to_string());
    if opts.clients.claude {
        let files = match opts.scope {
            Scope::User => vec![paths.claude_json.clone()],
            Scope::Project => {
                let root = project_root(&opts.cwd);
                vec![
                    root.join(".mcp.json"),
                    root.join(".claude").join("settings.local.json"),
                ]
            }
        };
        for p in files {
            if let Some(old) = read(&p)? {
                let (new, d) = plan_claude_undo(&p, &old)?;
                report.push_file(&p, Some(&old), new, d);
            }
        }
    }
    if opts.clients.codex {
        let p = paths.codex_config();
        if let Some(old) = read(&p)? {
            let (new, d) = plan_codex_undo(&p, &old, true)?;
            let no_daemon = new.contains("daemon_auto_start");
            report.push_file(&p, Some(&old), new, d);
            if no_daemon {
                report.notes.push(
                    "left [features] daemon_auto_start in Codex's config.toml alone; remove it \
                     by hand if `oxtail setup --codex-no-daemon` set it"
                        .into(),
                );
            }
        }
    }
    let hopts = HookOptions {
        clients: opts.clients,
        dry_run: opts.dry_run,
        exe: opts.exe.clone(),
        permissions: true,
    };
    plan_hooks(paths, &hopts, false, &mut report)?;
    if report.changes.iter().any(|c| c.new_text.is_some()) {
        report.notes.push(
            "restart running Claude Code / Codex sessions so they drop oxtail's server and hooks"
                .into(),
        );
    }
    report.apply().map_err(|e| e.to_string())?;
    Ok(report)
}

/// Plans (and unless `dry_run`, applies) `oxtail setup`.
///
/// # Errors
/// A sentence when any file cannot be read or edited safely; then no file
/// is written at all.
pub fn setup_command(paths: &ClientPaths, opts: &SetupOptions) -> Result<Report, String> {
    if opts.undo {
        return undo_command(paths, opts);
    }
    let mut report = Report {
        dry_run: opts.dry_run,
        ..Report::default()
    };
    let read = |p: &Path| read_optional(p).map_err(|e| e.to_string());
    if opts.clients.claude {
        match opts.scope {
            Scope::User => {
                let p = paths.claude_json.clone();
                let old = read(&p)?;
                let (new, d) = plan_claude_mcp(&p, old.as_deref(), &opts.exe, Scope::User)?;
                report.push_file(&p, old.as_deref(), new, d);
            }
            Scope::Project => {
                let root = project_root(&opts.cwd);
                let p = root.join(".mcp.json");
                let old = read(&p)?;
                let (new, d) = plan_claude_mcp(&p, old.as_deref(), &opts.exe, Scope::Project)?;
                report.push_file(&p, old.as_deref(), new, d);
                let p = root.join(".claude").join("settings.local.json");
                let old = read(&p)?;
                let (new, d) = plan_claude_project_approval(&p, old.as_deref())?;
                report.push_file(&p, old.as_deref(), new, d);
            }
        }
    }
    if opts.clients.codex {
        let p = paths.codex_config();
        let old = read(&p)?;
        let (new, d) = plan_codex_config(
            &p,
            old.as_deref(),
            &opts.exe,
            opts.codex_no_daemon,
            opts.allow,
        )?;
        let off = new.parse::<toml_edit::DocumentMut>().ok().and_then(|d| {
            d.get("features")
                .and_then(|f| f.get("daemon_auto_start"))
                .and_then(toml_edit::Item::as_bool)
        }) == Some(false);
        report.push_file(&p, old.as_deref(), new, d);
        if off && !opts.codex_no_daemon {
            report.notes.push(format!(
                "Codex's app-server is off ([features] daemon_auto_start = false in {}): oxtail wakes an idle \
                 Codex only by typing into its tmux pane. Remove that line to let oxtail wake Codex and reach it \
                 mid-turn with nothing typed (Codex's default).",
                paths.display(&p)
            ));
        }
    }
    let hopts = HookOptions {
        clients: opts.clients,
        dry_run: opts.dry_run,
        exe: opts.exe.clone(),
        permissions: opts.allow,
    };
    if !opts.skip_hooks {
        plan_hooks(paths, &hopts, true, &mut report)?;
    } else if opts.allow && opts.clients.claude {
        // No hooks, but still the permission entry in the same file.
        let p = paths.claude_settings();
        let old = read(&p)?;
        let doc = JsonDoc::parse(&p, old.as_deref())?;
        let d = crate::install::plan_claude_allow(&doc, true, &p.display().to_string())?;
        report.push_file(&p, old.as_deref(), doc.text(), d);
    }
    if report.changes.iter().any(|c| c.new_text.is_some()) {
        report.notes.push(
            "restart running Claude Code / Codex sessions so they load the MCP server and hooks"
                .into(),
        );
    }
    report.apply().map_err(|e| e.to_string())?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parse() {
        assert_eq!(Scope::parse("user").unwrap(), Scope::User);
        assert_eq!(Scope::parse("Project").unwrap(), Scope::Project);
        assert!(Scope::parse("global")
            .unwrap_err()
            .contains("user or project"));
    }

    #[test]
    fn project_root_outside_git_is_cwd() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(project_root(d.path()), d.path());
    }
}
