//! `oxtail install-hook` / `oxtail uninstall-hook`: oxtail's entries in
//! Claude Code's `~/.claude/settings.json` and Codex's `$CODEX_HOME/hooks.json`.
//!
//! Both files share one shape (Claude Code hooks reference; Codex's
//! `HooksFile` in `codex-rs/config/src/hook_config.rs`):
//! `{"hooks": {"<Event>": [{"matcher"?: "...", "hooks": [{"type": "command",
//! "command": "...", "timeout": <s>, ...}]}]}}`.
//!
//! # The marker
//!
//! Our handlers are recognized by their command alone:
//! `<oxtail binary> hook <event> --hooks-version <N>`. A command is the one
//! field both clients keep verbatim (Codex's top level denies unknown keys,
//! and its trust hash covers the handler), it needs no shell comment, and it
//! tells the running hook which version was installed. A command that runs
//! `oxtail hook …` without the marker was written by someone else: it is
//! reported and left alone.
//!
//! # Editing rules
//!
//! * Only our handlers are removed or replaced; everything else, including
//!   formatting and key order, stays byte for byte (jsonc-parser CST).
//! * Our groups go at the end of each event's list. Codex keys its trust
//!   records by position (`<file>:<event>:<group>:<handler>`, see the
//!   fixtures' `config.toml`), so appending never moves a third-party
//!   handler and never voids its trust.
//! * Idempotent: when our groups are already the last ones and equal to what
//!   would be written, the file is not touched.

use crate::config::{
    input_to_value, node_value, obj, shell_quote, shell_words, ClientPaths, Clients, JsonDoc,
    Report,
};
use crate::hook::event_arg;
use jsonc_parser::cst::{CstArray, CstInputValue, CstObject};
use oxtail_proto::wire::HookEvent;
use serde_json::Value;
use std::path::Path;

/// Version of the hook entries this binary installs. Bump it whenever the
/// installed entries change (events, flags, timeouts) so the shim can tell
/// users with older entries to run `oxtail install-hook` again.
pub const HOOKS_VERSION: u32 = 1;

/// The marker flag in our hook commands.
pub const VERSION_FLAG: &str = "--hooks-version";

/// Timeout (seconds) of the synchronous hooks: a safety net only, the hook
/// itself gives up after 300 ms.
pub const SYNC_TIMEOUT_S: u64 = 10;

/// Timeout (seconds) of the async idle-wait Stop hook: one day. The hook
/// exits on its own after 23 hours (`OXTAIL_IDLE_WAIT_TIMEOUT_MS`).
pub const IDLE_WAIT_TIMEOUT_S: u64 = 86_400;

/// The hook events installed for Claude Code (SessionStart, UserPromptSubmit,
/// PreToolUse, PostToolUse, Stop, SessionEnd; Stop also gets idle-wait).
pub const CLAUDE_EVENTS: &[HookEvent] = &[
    HookEvent::SessionStart,
    HookEvent::UserPromptSubmit,
    HookEvent::PreToolUse,
    HookEvent::PostToolUse,
    HookEvent::Stop,
    HookEvent::SessionEnd,
];

/// The hook events installed for Codex 0.169 (it has no SessionEnd and no
/// async rewake; an idle Codex is woken by keys).
pub const CODEX_EVENTS: &[HookEvent] = &[
    HookEvent::SessionStart,
    HookEvent::UserPromptSubmit,
    HookEvent::PreToolUse,
    HookEvent::PostToolUse,
    HookEvent::Stop,
];

/// The sentence telling the user to trust Codex hooks (Codex 0.169 runs
/// hooks from `hooks.json` only once trusted).
pub const CODEX_TRUST_NOTE: &str = "Codex runs new or changed hooks only after you trust them: \
open codex and review them with /hooks (or start it with --dangerously-bypass-hook-trust \
in a sandbox you control)";

/// The client's name for `event` in the hooks file.
pub(crate) fn event_key(event: HookEvent) -> &'static str {
    match event {
        HookEvent::SessionStart => "SessionStart",
        HookEvent::UserPromptSubmit => "UserPromptSubmit",
        HookEvent::PreToolUse => "PreToolUse",
        HookEvent::PostToolUse => "PostToolUse",
        HookEvent::Stop => "Stop",
        HookEvent::SessionEnd => "SessionEnd",
    }
}

/// The command line of one of our hooks.
pub fn hook_command(exe: &Path, event_arg: &str) -> String {
    format!(
        "{} hook {event_arg} {VERSION_FLAG} {HOOKS_VERSION}",
        shell_quote(&exe.to_string_lossy())
    )
}

/// How a hook handler's command relates to oxtail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// One of ours: `<oxtail> hook <event> --hooks-version <version>`.
    Ours {
        /// The `hook` argument (`pre-tool-use`, `idle-wait`, …).
        event_arg: String,
        /// The installed [`HOOKS_VERSION`].
        version: u32,
    },
    /// Runs `oxtail hook …` but lacks our marker: someone wrote it by hand.
    Unmarked,
    /// Anything else.
    Foreign,
}

/// Classifies a hook command string.
pub fn classify_command(command: &str) -> Ownership {
    let Some(words) = shell_words(command) else {
        return Ownership::Foreign;
    };
    let is_oxtail = words.first().is_some_and(|w| {
        Path::new(w)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("oxtail"))
    });
    if !is_oxtail || words.get(1).map(String::as_str) != Some("hook") {
        return Ownership::Foreign;
    }
    let version = words
        .iter()
        .position(|w| w == VERSION_FLAG)
        .and_then(|i| words.get(i + 1))
        .and_then(|v| v.parse::<u32>().ok());
    match (words.get(2), version) {
        (Some(ev), Some(version)) => Ownership::Ours {
            event_arg: ev.clone(),
            version,
        },
        _ => Ownership::Unmarked,
    }
}

fn handler(exe: &Path, event_arg: &str, timeout: u64, is_async: bool) -> CstInputValue {
    let mut fields = vec![
        ("type", CstInputValue::from("command")),
        ("command", CstInputValue::from(hook_command(exe, event_arg))),
        ("timeout", CstInputValue::from(timeout)),
    ];
    if is_async {
        fields.push(("async", CstInputValue::Bool(true)));
        fields.push(("asyncRewake", CstInputValue::Bool(true)));
    }
    obj(fields)
}

/// Which client a hooks file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookClient {
    /// `~/.claude/settings.json`.
    Claude,
    /// `$CODEX_HOME/hooks.json`.
    Codex,
}

/// The groups we install for one event, in order.
///
/// Claude Code: tool events use matcher `"*"` (all tools); Stop gets two
/// groups, the synchronous `stop` and the async `idle-wait` with
/// `"async": true, "asyncRewake": true` and a one-day timeout. Codex: no
/// matcher (Codex reads `matcher` as a regex and omitting it matches all).
pub fn desired_groups(client: HookClient, event: HookEvent, exe: &Path) -> Vec<CstInputValue> {
    let sync = handler(exe, event_arg(event), SYNC_TIMEOUT_S, false);
    let tool_event = matches!(event, HookEvent::PreToolUse | HookEvent::PostToolUse);
    let mut groups = Vec::new();
    let group = |h: CstInputValue, matcher: bool| {
        let mut f = Vec::new();
        if matcher {
            f.push(("matcher", CstInputValue::from("*")));
        }
        f.push(("hooks", CstInputValue::Array(vec![h])));
        obj(f)
    };
    groups.push(group(sync, client == HookClient::Claude && tool_event));
    if client == HookClient::Claude && event == HookEvent::Stop {
        groups.push(group(
            handler(exe, "idle-wait", IDLE_WAIT_TIMEOUT_S, true),
            false,
        ));
    }
    groups
}

fn events_for(client: HookClient) -> &'static [HookEvent] {
    match client {
        HookClient::Claude => CLAUDE_EVENTS,
        HookClient::Codex => CODEX_EVENTS,
    }
}

/// What one group of an event list holds.
#[derive(Debug, PartialEq, Eq)]
enum GroupKind {
    /// Only our handlers.
    Ours,
    /// Our handlers and others' together.
    Mixed,
    /// No handler of ours.
    Theirs,
}

fn handler_ownership(h: &Value) -> Ownership {
    match h.get("command").and_then(Value::as_str) {
        Some(c) => classify_command(c),
        None => Ownership::Foreign,
    }
}

fn group_kind(group: &Value) -> GroupKind {
    let Some(hs) = group.get("hooks").and_then(Value::as_array) else {
        return GroupKind::Theirs;
    };
    let ours = hs
        .iter()
        .filter(|h| matches!(handler_ownership(h), Ownership::Ours { .. }))
        .count();
    match ours {
        0 => GroupKind::Theirs,
        n if n == hs.len() => GroupKind::Ours,
        _ => GroupKind::Mixed,
    }
}

/// Removes our handlers from `arr` (whole groups when they hold only ours).
/// Returns how many handlers were removed.
fn strip_ours(arr: &CstArray, label: &str, warnings: &mut Vec<String>) -> usize {
    let mut removed = 0;
    for el in arr.elements() {
        let v = node_value(&el);
        match group_kind(&v) {
            GroupKind::Theirs => {}
            GroupKind::Ours => {
                removed += v["hooks"].as_array().map_or(0, Vec::len);
                el.remove();
            }
            GroupKind::Mixed => {
                let Some(hooks) = el.as_object().and_then(|o| o.array_value("hooks")) else {
                    continue;
                };
                for h in hooks.elements() {
                    if matches!(handler_ownership(&node_value(&h)), Ownership::Ours { .. }) {
                        h.remove();
                        removed += 1;
                    }
                }
                warnings.push(format!(
                    "{label}: removed oxtail's handler from a group shared with other hooks; \
                     the other handlers were kept"
                ));
            }
        }
    }
    removed
}

fn warn_unmarked(arr_value: &Value, label: &str, warnings: &mut Vec<String>) {
    for g in arr_value.as_array().into_iter().flatten() {
        for h in g
            .get("hooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if handler_ownership(h) == Ownership::Unmarked {
                warnings.push(format!(
                    "{label}: left alone a hand-written `{}` (no {VERSION_FLAG} marker); \
                     remove it if oxtail's own entry replaces it",
                    h["command"].as_str().unwrap_or("")
                ));
            }
        }
    }
}

/// Edits the hooks object of one settings document. `install`: put our
/// groups in place; else remove them. Returns one line per change.
fn edit_hooks(
    doc: &JsonDoc,
    client: HookClient,
    exe: &Path,
    install: bool,
    label: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    let root = doc.root.object_value().expect("checked at parse");
    let hooks: CstObject = match root.get("hooks") {
        Some(p) => match p.object_value() {
            Some(o) => o,
            None => {
                return Err(format!(
                    "{label}: \"hooks\" is not an object; left the file alone"
                ))
            }
        },
        None if install => root.object_value_or_create("hooks").expect("just created"),
        None => return Ok(Vec::new()),
    };
    let mut details = Vec::new();
    for &event in events_for(client) {
        let key = event_key(event);
        let desired: Vec<CstInputValue> = if install {
            desired_groups(client, event, exe)
        } else {
            Vec::new()
        };
        let desired_values: Vec<Value> = desired.iter().map(input_to_value).collect();
        let arr = match hooks.get(key) {
            Some(p) => match p.array_value() {
                Some(a) => a,
                None => {
                    warnings.push(format!(
                        "{label}: hooks.{key} is not a list; oxtail's {key} hook was not {}",
                        if install { "installed" } else { "looked for" }
                    ));
                    continue;
                }
            },
            None if install => hooks.array_value_or_create(key).expect("just created"),
            None => continue,
        };
        let current: Vec<Value> = arr.elements().iter().map(node_value).collect();
        warn_unmarked(
            &Value::Array(current.clone()),
            &format!("{label} {key}"),
            warnings,
        );
        let kinds: Vec<GroupKind> = current.iter().map(group_kind).collect();
        let n = desired_values.len();
        let already = install
            && !kinds.contains(&GroupKind::Mixed)
            && kinds.iter().filter(|k| **k == GroupKind::Ours).count() == n
            && current.len() >= n
            && current[current.len() - n..] == desired_values[..];
        if already {
            continue;
        }
        let removed = strip_ours(&arr, &format!("{label} {key}"), warnings);
        for g in desired {
            arr.append(g);
        }
        let verb = if removed == 0 { "added" } else { "replaced" };
        if install {
            for h in desired_values
                .iter()
                .filter_map(|g| g.get("hooks").and_then(Value::as_array))
                .flatten()
            {
                details.push(format!("{verb} {key} hook: {}", describe_handler(h)));
            }
        } else if removed > 0 {
            details.push(format!(
                "removed oxtail {key} hook{} ({removed} handler{})",
                if removed == 1 { "" } else { "s" },
                if removed == 1 { "" } else { "s" }
            ));
        }
        if !install && arr.elements().is_empty() {
            if let Some(p) = hooks.get(key) {
                p.remove();
            }
        }
    }
    if !install && hooks.properties().is_empty() && !details.is_empty() {
        if let Some(p) = root.get("hooks") {
            p.remove();
        }
    }
    Ok(details)
}

/// One handler for a report line: `oxtail hook stop (sync, 10 s)` or
/// `oxtail hook idle-wait (async rewake, 86400 s)`.
fn describe_handler(h: &Value) -> String {
    let cmd = h["command"].as_str().unwrap_or("");
    let event = match classify_command(cmd) {
        Ownership::Ours { event_arg, version } => {
            format!("oxtail hook {event_arg} (hooks version {version}")
        }
        _ => format!("{cmd} ("),
    };
    let mode = if h["asyncRewake"] == Value::Bool(true) {
        "async rewake"
    } else {
        "sync"
    };
    format!(
        "{event}, {mode}, timeout {} s)",
        h["timeout"].as_u64().unwrap_or(0)
    )
}

/// The Claude Code permission rule that allows every tool of oxtail's MCP
/// server (`mcp__<server>` matches all of that server's tools; Claude Code
/// permissions reference, verified with Claude Code 2.1.329).
pub const CLAUDE_ALLOW_RULE: &str = "mcp__oxtail";

/// Plans [`CLAUDE_ALLOW_RULE`] in `permissions.allow` of a Claude Code
/// settings document: `install` adds it when missing; else it is removed
/// (and `allow` / `permissions` too when that leaves them empty). Other
/// rules stay byte for byte.
///
/// # Errors
/// A sentence when `permissions` is not an object or `allow` not a list.
pub fn plan_claude_allow(doc: &JsonDoc, install: bool, label: &str) -> Result<Vec<String>, String> {
    let root = doc.root.object_value().expect("checked at parse");
    let perms = match root.get("permissions") {
        Some(p) => p.object_value().ok_or_else(|| {
            format!("{label}: \"permissions\" is not an object; left the file alone")
        })?,
        None if install => root
            .object_value_or_create("permissions")
            .expect("just created"),
        None => return Ok(Vec::new()),
    };
    let allow = match perms.get("allow") {
        Some(p) => p.array_value().ok_or_else(|| {
            format!("{label}: \"permissions.allow\" is not a list; left the file alone")
        })?,
        None if install => perms.array_value_or_create("allow").expect("just created"),
        None => return Ok(Vec::new()),
    };
    let ours: Vec<_> = allow
        .elements()
        .into_iter()
        .filter(|e| e.to_serde_value() == Some(Value::String(CLAUDE_ALLOW_RULE.into())))
        .collect();
    let mut details = Vec::new();
    if install {
        if ours.is_empty() {
            allow.append(CstInputValue::from(CLAUDE_ALLOW_RULE));
            details.push(format!(
                "allowed oxtail's tools without a prompt: permissions.allow += \"{CLAUDE_ALLOW_RULE}\""
            ));
        }
    } else if !ours.is_empty() {
        for e in ours {
            e.remove();
        }
        details.push(format!(
            "removed \"{CLAUDE_ALLOW_RULE}\" from permissions.allow"
        ));
        if allow.elements().is_empty() {
            if let Some(p) = perms.get("allow") {
                p.remove();
            }
        }
        if perms.properties().is_empty() {
            if let Some(p) = root.get("permissions") {
                p.remove();
            }
        }
    }
    Ok(details)
}

/// Plans the change of one hooks file (text in → new text + details).
///
/// # Errors
/// A sentence when the file cannot be edited safely (not JSON, `hooks` not
/// an object); nothing should be written then.
pub fn plan_hooks_file(
    path: &Path,
    old: Option<&str>,
    client: HookClient,
    exe: &Path,
    install: bool,
    warnings: &mut Vec<String>,
) -> Result<(String, Vec<String>), String> {
    plan_hooks_file_with(path, old, client, exe, install, false, warnings)
}

/// [`plan_hooks_file`], and with `permissions` on a Claude Code file also
/// [`plan_claude_allow`] in the same document.
///
/// # Errors
/// As [`plan_hooks_file`] and [`plan_claude_allow`].
pub fn plan_hooks_file_with(
    path: &Path,
    old: Option<&str>,
    client: HookClient,
    exe: &Path,
    install: bool,
    permissions: bool,
    warnings: &mut Vec<String>,
) -> Result<(String, Vec<String>), String> {
    let doc = JsonDoc::parse(path, old)?;
    if !install && old.is_none() {
        return Ok((String::new(), Vec::new()));
    }
    let label = path.display().to_string();
    let mut details = edit_hooks(&doc, client, exe, install, &label, warnings)?;
    if permissions && client == HookClient::Claude {
        details.extend(plan_claude_allow(&doc, install, &label)?);
    }
    Ok((doc.text(), details))
}

/// Options of `install-hook` / `uninstall-hook`.
#[derive(Debug, Clone)]
pub struct HookOptions {
    /// Which clients.
    pub clients: Clients,
    /// Print only.
    pub dry_run: bool,
    /// The oxtail binary the hooks run (absolute).
    pub exe: std::path::PathBuf,
    /// Also add (install) or remove (uninstall) oxtail's tool permission:
    /// `"mcp__oxtail"` in `permissions.allow` of `~/.claude/settings.json`
    /// (see [`plan_claude_allow`]). Codex's per-server approval lives in
    /// `config.toml` and is handled by `setup` / [`hooks_command`].
    pub permissions: bool,
}

fn hook_targets(paths: &ClientPaths, clients: Clients) -> Vec<(HookClient, std::path::PathBuf)> {
    let mut t = Vec::new();
    if clients.claude {
        t.push((HookClient::Claude, paths.claude_settings()));
    }
    if clients.codex {
        t.push((HookClient::Codex, paths.codex_hooks()));
    }
    t
}

/// Plans (and unless `dry_run`, applies) `install-hook` or `uninstall-hook`.
///
/// # Errors
/// A sentence when any target file cannot be read or edited safely; then
/// no file is written at all.
pub fn hooks_command(
    paths: &ClientPaths,
    opts: &HookOptions,
    install: bool,
) -> Result<Report, String> {
    let mut report = Report {
        dry_run: opts.dry_run,
        ..Report::default()
    };
    plan_hooks(paths, opts, install, &mut report)?;
    if !install && opts.permissions && opts.clients.codex {
        let p = paths.codex_config();
        if let Some(old) = crate::config::read_optional(&p).map_err(|e| e.to_string())? {
            let (new, d) = crate::setup::plan_codex_undo(&p, &old, false)?;
            report.push_file(&p, Some(&old), new, d);
        }
    }
    report.apply().map_err(|e| e.to_string())?;
    Ok(report)
}

/// Adds the hook edits of `install-hook`/`uninstall-hook` to `report`
/// without writing (also used by `oxtail setup`).
///
/// # Errors
/// As [`hooks_command`].
pub fn plan_hooks(
    paths: &ClientPaths,
    opts: &HookOptions,
    install: bool,
    report: &mut Report,
) -> Result<(), String> {
    for (client, path) in hook_targets(paths, opts.clients) {
        let old = crate::config::read_optional(&path).map_err(|e| e.to_string())?;
        if !install && old.is_none() {
            continue;
        }
        let (new, details) = plan_hooks_file_with(
            &path,
            old.as_deref(),
            client,
            &opts.exe,
            install,
            opts.permissions,
            &mut report.warnings,
        )?;
        report.push_file(&path, old.as_deref(), new, details);
        if client == HookClient::Codex && install {
            let changed = report.changes.last().is_some_and(|c| c.new_text.is_some());
            if changed {
                report.notes.push(CODEX_TRUST_NOTE.to_string());
            }
        }
    }
    Ok(())
}

/// The oldest version of our hooks installed in a hooks file's text, or
/// `None` when it holds none (or cannot be parsed).
pub fn installed_version(text: &str) -> Option<u32> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("hooks")?
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|g| g.get("hooks").and_then(Value::as_array))
        .flatten()
        .filter_map(|h| match handler_ownership(h) {
            Ownership::Ours { version, .. } => Some(version),
            _ => None,
        })
        .min()
}

/// For the shim: a warning when the hooks installed for Claude Code or Codex
/// are older than this binary's [`HOOKS_VERSION`], naming the file and the
/// command that fixes it; `None` when they are current or not installed.
/// Reads two small files; costs no daemon round trip.
pub fn outdated_hooks_warning(paths: &ClientPaths) -> Option<String> {
    let mut stale = Vec::new();
    for (_, path) in hook_targets(paths, Clients::ALL) {
        let Ok(Some(text)) = crate::config::read_optional(&path) else {
            continue;
        };
        if let Some(v) = installed_version(&text) {
            if v < HOOKS_VERSION {
                stale.push(format!("{} (version {v})", paths.display(&path)));
            }
        }
    }
    (!stale.is_empty()).then(|| {
        format!(
            "oxtail: the hooks installed in {} are older than this oxtail (hooks version \
             {HOOKS_VERSION}); run `oxtail install-hook` to update them",
            stale.join(" and ")
        )
    })
}

/// [`outdated_hooks_warning`] for this process's environment (`HOME`,
/// `CLAUDE_CONFIG_DIR`, `CODEX_HOME`).
pub fn outdated_hooks_warning_from_env() -> Option<String> {
    outdated_hooks_warning(&ClientPaths::from_env().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_marker_round_trips() {
        let exe = Path::new("/opt/my tools/oxtail");
        let c = hook_command(exe, "pre-tool-use");
        assert_eq!(
            c,
            "'/opt/my tools/oxtail' hook pre-tool-use --hooks-version 1"
        );
        assert_eq!(
            classify_command(&c),
            Ownership::Ours {
                event_arg: "pre-tool-use".into(),
                version: 1
            }
        );
        assert_eq!(
            classify_command("oxtail hook stop --hooks-version 7"),
            Ownership::Ours {
                event_arg: "stop".into(),
                version: 7
            }
        );
        assert_eq!(classify_command("oxtail hook stop"), Ownership::Unmarked);
        assert_eq!(
            classify_command("/usr/bin/oxtail hook stop --hooks-version x"),
            Ownership::Unmarked
        );
        assert_eq!(
            classify_command("node oxtail hook stop"),
            Ownership::Foreign
        );
        assert_eq!(classify_command("python3 hook.py"), Ownership::Foreign);
        assert_eq!(classify_command("'unbalanced"), Ownership::Foreign);
    }

    #[test]
    fn claude_stop_has_the_async_rewake() {
        let g = desired_groups(HookClient::Claude, HookEvent::Stop, Path::new("/b/oxtail"));
        let v: Vec<Value> = g.iter().map(input_to_value).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[0]["hooks"][0]["command"],
            "/b/oxtail hook stop --hooks-version 1"
        );
        assert_eq!(v[0]["hooks"][0].get("async"), None);
        let idle = &v[1]["hooks"][0];
        assert_eq!(
            idle["command"],
            "/b/oxtail hook idle-wait --hooks-version 1"
        );
        assert_eq!(idle["async"], true);
        assert_eq!(idle["asyncRewake"], true);
        assert_eq!(idle["timeout"], 86_400);
        let codex = desired_groups(HookClient::Codex, HookEvent::Stop, Path::new("/b/oxtail"));
        assert_eq!(codex.len(), 1);
        let pre = input_to_value(
            &desired_groups(
                HookClient::Codex,
                HookEvent::PreToolUse,
                Path::new("/b/oxtail"),
            )[0],
        );
        assert_eq!(pre.get("matcher"), None);
        let pre = input_to_value(
            &desired_groups(
                HookClient::Claude,
                HookEvent::PreToolUse,
                Path::new("/b/oxtail"),
            )[0],
        );
        assert_eq!(pre["matcher"], "*");
    }

    #[test]
    fn installed_version_is_the_oldest() {
        let t = r#"{"hooks":{"Stop":[{"hooks":[
            {"type":"command","command":"/x/oxtail hook stop --hooks-version 3"},
            {"type":"command","command":"/x/oxtail hook idle-wait --hooks-version 2"},
            {"type":"command","command":"other"}]}]}}"#;
        assert_eq!(installed_version(t), Some(2));
        assert_eq!(installed_version(r#"{"hooks":{}}"#), None);
        assert_eq!(installed_version("not json"), None);
    }
}
