//! `oxtail doctor`: checks everything a user can get wrong when wiring
//! oxtail into Claude Code and Codex, each failed check with the command or
//! step that fixes it.
//!
//! The checks, in order (each is a [`Check`] with a stable `name`):
//!
//! | name | looks at |
//! |---|---|
//! | `binary` | `oxtail` on this shell's `PATH` (the PATH the clients inherit) and this binary's version |
//! | `claude_mcp` | `mcpServers.oxtail` in `~/.claude.json` or the project's `.mcp.json`; its command runs |
//! | `claude_hooks` | every hook `install-hook` writes, in `~/.claude/settings.json`, of this [`HOOKS_VERSION`] |
//! | `claude_permissions` | `"mcp__oxtail"` in `permissions.allow` (no approval prompt per call) |
//! | `codex_mcp` | `[mcp_servers.oxtail]` in `$CODEX_HOME/config.toml`; its command runs |
//! | `codex_approval` | `default_tools_approval_mode = "approve"` in that table |
//! | `codex_hooks` | every hook in `$CODEX_HOME/hooks.json`, of this version |
//! | `codex_hooks_trusted` | a `[hooks.state."<hooks.json>:<event>:<group>:<handler>"]` trust record for each of them (Codex 0.169 runs only trusted hooks; the hash itself is not recomputed) |
//! | `codex_app_server` | Codex's default `daemon_auto_start` is on (not `false`), and the app-server control socket under `$CODEX_HOME`, once a TUI started it, is the user's own and private: then oxtail wakes an idle Codex with `turn/start` and reaches a busy one with `turn/steer`, nothing typed |
//! | `daemon` | the daemon answers on its socket (never started by doctor), and its version |
//! | `federation` | whether the daemon federates through NATS (`OXTAIL_FEDERATION_URL`, issue 16), to which server, the link's state, and a warning when bodies would cross the network in the clear |
//! | `state_dir` | the state dir is writable |
//! | `tmux` | `tmux -V` runs (wakes by keys and the cockpit's panes need it) |
//!
//! Doctor only reads; the one file it writes is a probe in the state dir,
//! removed at once.

use crate::config::{read_optional, ClientPaths, Clients};
use crate::install::{
    classify_command, desired_groups, HookClient, Ownership, CLAUDE_ALLOW_RULE, CLAUDE_EVENTS,
    CODEX_EVENTS, HOOKS_VERSION,
};
use crate::setup::{project_root, CODEX_APPROVAL_KEY, CODEX_APPROVAL_VALUE};
use oxtail_proto::wire::HookEvent;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// As it should be.
    Ok,
    /// Works, but not as well as it could (e.g. the daemon is not running
    /// yet: it starts on demand).
    Warn,
    /// Broken: oxtail will not work as expected until fixed.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier (`claude_hooks`, …), see the module docs.
    pub name: &'static str,
    /// Ok, warn or fail.
    pub status: Status,
    /// What was found, in a sentence.
    pub detail: String,
    /// What to run or do when the status is not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The whole report (`oxtail doctor --json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct Doctor {
    /// True when no check failed (warnings allowed).
    pub ok: bool,
    /// This oxtail's version.
    pub version: &'static str,
    /// Every check, in the order of the module docs.
    pub checks: Vec<Check>,
}

fn ok(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        status: Status::Ok,
        detail: detail.into(),
        fix: None,
    }
}

fn bad(
    name: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// Where to look, so tests and the binary share one entry point.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// The clients' config files.
    pub paths: ClientPaths,
    /// Which clients to check.
    pub clients: Clients,
    /// The directory doctor runs in (project `.mcp.json` is looked up from
    /// its git top).
    pub cwd: PathBuf,
    /// This oxtail binary.
    pub exe: PathBuf,
    /// `PATH` as the clients will see it (this process's).
    pub path_var: Option<std::ffi::OsString>,
}

/// Runs every check.
pub fn run(opts: &DoctorOptions) -> Doctor {
    let mut checks = vec![check_binary(opts)];
    if opts.clients.claude {
        checks.push(check_claude_mcp(opts));
        let settings = opts.paths.claude_settings();
        let text = read_optional(&settings).ok().flatten();
        checks.push(check_hooks(
            "claude_hooks",
            HookClient::Claude,
            &opts.paths,
            &settings,
            text.as_deref(),
            &opts.exe,
        ));
        checks.push(check_claude_permissions(&opts.paths, text.as_deref()));
    }
    if opts.clients.codex {
        let config = opts.paths.codex_config();
        let config_text = read_optional(&config).ok().flatten();
        let doc = config_text
            .as_deref()
            .and_then(|t| t.parse::<toml_edit::DocumentMut>().ok());
        checks.push(check_codex_mcp(
            opts,
            &config,
            config_text.as_deref(),
            doc.as_ref(),
        ));
        checks.push(check_codex_approval(doc.as_ref()));
        let hooks = opts.paths.codex_hooks();
        let hooks_text = read_optional(&hooks).ok().flatten();
        checks.push(check_hooks(
            "codex_hooks",
            HookClient::Codex,
            &opts.paths,
            &hooks,
            hooks_text.as_deref(),
            &opts.exe,
        ));
        checks.push(check_codex_trust(
            &opts.paths,
            &hooks,
            hooks_text.as_deref(),
            doc.as_ref(),
        ));
        checks.push(check_codex_app_server(&opts.paths, &config, doc.as_ref()));
    }
    checks.push(check_daemon());
    checks.push(check_federation());
    checks.push(check_state_dir());
    checks.push(check_tmux());
    Doctor {
        ok: checks.iter().all(|c| c.status != Status::Fail),
        version: oxtail_proto::VERSION,
        checks,
    }
}

/// The report for people: one line per check, the fix indented under a
/// failed or warned one, and a closing count.
pub fn render(d: &Doctor) -> String {
    let mut s = format!("oxtail doctor (oxtail {})\n", d.version);
    for c in &d.checks {
        let mark = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        let _ = writeln!(s, "{mark} {:<20} {}", c.name, c.detail);
        if let Some(f) = &c.fix {
            let _ = writeln!(s, "     {:<20} fix: {f}", "");
        }
    }
    let fails = d.checks.iter().filter(|c| c.status == Status::Fail).count();
    let warns = d.checks.iter().filter(|c| c.status == Status::Warn).count();
    let _ = match (fails, warns) {
        (0, 0) => writeln!(s, "all {} checks passed", d.checks.len()),
        (0, w) => writeln!(s, "no problems; {w} warning{}", plural(w)),
        (f, w) => writeln!(s, "{f} problem{} and {w} warning{}", plural(f), plural(w)),
    };
    s
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The first `name` on `path_var`, as a shell would find it.
fn which(name: &str, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path_var?)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `<binary> --version` → `oxtail 0.1.0`.
fn version_of(binary: &Path) -> Option<String> {
    let out = std::process::Command::new(binary)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn check_binary(opts: &DoctorOptions) -> Check {
    const N: &str = "binary";
    let ours = format!("oxtail {}", oxtail_proto::VERSION);
    match which("oxtail", opts.path_var.as_deref()) {
        None => bad(
            N,
            Status::Warn,
            format!(
                "no `oxtail` on PATH (the clients run the absolute path setup wrote, but you \
                 need it on PATH for `oxtail status`); this binary is {}",
                opts.exe.display()
            ),
            "install it on PATH, e.g. `cargo install --path .` (into ~/.cargo/bin), or add its \
             directory to PATH in your shell profile",
        ),
        Some(p) if same_file(&p, &opts.exe) => ok(N, format!("{} ({ours})", p.display())),
        Some(p) => match version_of(&p) {
            Some(v) if v == ours => ok(N, format!("{} ({v})", p.display())),
            v => bad(
                N,
                Status::Warn,
                format!(
                    "`oxtail` on PATH is {} ({}), not this {ours}",
                    p.display(),
                    v.unwrap_or_else(|| "does not run".into())
                ),
                "install this version on PATH (`cargo install --path .`), then run `oxtail setup` \
                 again so the clients run it too",
            ),
        },
    }
}

/// Checks a registered MCP command: it exists, runs, and says our version.
fn command_check(
    name: &'static str,
    where_: &str,
    command: Option<&str>,
    args_ok: bool,
    fix: &str,
) -> Check {
    let Some(cmd) = command else {
        return bad(
            name,
            Status::Fail,
            format!("{where_} has no \"command\""),
            fix,
        );
    };
    if !args_ok {
        return bad(
            name,
            Status::Fail,
            format!("{where_} does not run `{cmd} mcp`"),
            fix,
        );
    }
    let p = Path::new(cmd);
    if !is_executable(p) {
        return bad(
            name,
            Status::Fail,
            format!("{where_} runs {cmd}, which is not an executable file"),
            fix,
        );
    }
    let ours = format!("oxtail {}", oxtail_proto::VERSION);
    match version_of(p) {
        Some(v) if v == ours => ok(name, format!("{where_}: {cmd} ({v})")),
        v => bad(
            name,
            Status::Warn,
            format!(
                "{where_} runs {cmd} ({}), not this {ours}",
                v.unwrap_or_else(|| "no version".into())
            ),
            fix,
        ),
    }
}

fn args_are_mcp(args: Option<&Value>) -> bool {
    args.and_then(Value::as_array)
        .is_some_and(|a| a.len() == 1 && a[0] == "mcp")
}

fn check_claude_mcp(opts: &DoctorOptions) -> Check {
    const N: &str = "claude_mcp";
    let fix = "oxtail setup --client claude";
    let user = &opts.paths.claude_json;
    let project = project_root(&opts.cwd).join(".mcp.json");
    for file in [user, &project] {
        let Ok(Some(text)) = read_optional(file) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            return bad(
                N,
                Status::Fail,
                format!("{} is not valid JSON", opts.paths.display(file)),
                "fix the file by hand (Claude Code cannot read it either)",
            );
        };
        if let Some(e) = v.pointer("/mcpServers/oxtail") {
            return command_check(
                N,
                &format!("mcpServers.oxtail in {}", opts.paths.display(file)),
                e["command"].as_str(),
                args_are_mcp(e.get("args")),
                fix,
            );
        }
    }
    bad(
        N,
        Status::Fail,
        format!(
            "Claude Code has no oxtail MCP server: none in {} or {}",
            opts.paths.display(user),
            opts.paths.display(&project)
        ),
        fix,
    )
}

fn check_claude_permissions(paths: &ClientPaths, text: Option<&str>) -> Check {
    const N: &str = "claude_permissions";
    let fix = "oxtail setup --client claude (it adds \"mcp__oxtail\" to permissions.allow)";
    let file = paths.display(&paths.claude_settings());
    let allowed = text
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .and_then(|v| v.pointer("/permissions/allow").cloned())
        .and_then(|a| a.as_array().cloned())
        .is_some_and(|a| {
            a.iter()
                .any(|r| r == CLAUDE_ALLOW_RULE || r == "mcp__oxtail__*")
        });
    if allowed {
        ok(N, format!("{file} allows {CLAUDE_ALLOW_RULE}"))
    } else {
        bad(
            N,
            Status::Fail,
            format!(
                "{file} does not allow {CLAUDE_ALLOW_RULE}: in its default permission mode \
                 Claude Code asks (or, with -p, refuses) before every oxtail tool call"
            ),
            fix,
        )
    }
}

/// Every handler `install-hook` writes for `client`, as (event key, hook
/// argument).
fn expected_handlers(client: HookClient, exe: &Path) -> Vec<(String, String)> {
    let events: &[HookEvent] = match client {
        HookClient::Claude => CLAUDE_EVENTS,
        HookClient::Codex => CODEX_EVENTS,
    };
    let mut out = Vec::new();
    for &e in events {
        for g in desired_groups(client, e, exe) {
            let v = crate::config::input_to_value(&g);
            for h in v["hooks"].as_array().into_iter().flatten() {
                if let Ownership::Ours { event_arg, .. } =
                    classify_command(h["command"].as_str().unwrap_or(""))
                {
                    out.push((crate::install::event_key(e).to_string(), event_arg));
                }
            }
        }
    }
    out
}

/// Our handlers found in a hooks file: (event key, hook argument, version,
/// group index, handler index, command).
fn found_handlers(v: &Value) -> Vec<(String, String, u32, usize, usize, String)> {
    let mut out = Vec::new();
    let Some(hooks) = v.get("hooks").and_then(Value::as_object) else {
        return out;
    };
    for (event, groups) in hooks {
        for (gi, g) in groups.as_array().into_iter().flatten().enumerate() {
            for (hi, h) in g
                .get("hooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let cmd = h["command"].as_str().unwrap_or("");
                if let Ownership::Ours { event_arg, version } = classify_command(cmd) {
                    out.push((event.clone(), event_arg, version, gi, hi, cmd.to_string()));
                }
            }
        }
    }
    out
}

fn check_hooks(
    name: &'static str,
    client: HookClient,
    paths: &ClientPaths,
    file: &Path,
    text: Option<&str>,
    exe: &Path,
) -> Check {
    let which = match client {
        HookClient::Claude => "claude",
        HookClient::Codex => "codex",
    };
    let fix = format!("oxtail install-hook --client {which}");
    let shown = paths.display(file);
    let Some(text) = text else {
        return bad(name, Status::Fail, format!("{shown} does not exist"), fix);
    };
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return bad(
            name,
            Status::Fail,
            format!("{shown} is not valid JSON"),
            "fix the file by hand, then run `oxtail install-hook`",
        );
    };
    let found = found_handlers(&v);
    let missing: Vec<String> = expected_handlers(client, exe)
        .into_iter()
        .filter(|(e, a)| !found.iter().any(|f| &f.0 == e && &f.1 == a))
        .map(|(e, a)| format!("{e} {a}"))
        .collect();
    let old: Vec<String> = found
        .iter()
        .filter(|f| f.2 != HOOKS_VERSION)
        .map(|f| format!("{} {} (version {})", f.0, f.1, f.2))
        .collect();
    let gone: Vec<String> = found
        .iter()
        .filter_map(|f| {
            let words = crate::config::shell_words(&f.5)?;
            let bin = words.first()?;
            (!is_executable(Path::new(bin))).then(|| bin.clone())
        })
        .collect();
    if !missing.is_empty() {
        bad(
            name,
            Status::Fail,
            format!("{shown} lacks oxtail hooks: {}", missing.join(", ")),
            fix,
        )
    } else if !old.is_empty() {
        bad(
            name,
            Status::Fail,
            format!(
                "{shown} has hooks older than this oxtail (hooks version {HOOKS_VERSION}): {}",
                old.join(", ")
            ),
            fix,
        )
    } else if let Some(bin) = gone.first() {
        bad(
            name,
            Status::Fail,
            format!("{shown}: the hooks run {bin}, which is not an executable file"),
            fix,
        )
    } else {
        ok(
            name,
            format!(
                "{shown}: {} oxtail hooks, version {HOOKS_VERSION}",
                found.len()
            ),
        )
    }
}

fn check_codex_mcp(
    opts: &DoctorOptions,
    file: &Path,
    text: Option<&str>,
    doc: Option<&toml_edit::DocumentMut>,
) -> Check {
    const N: &str = "codex_mcp";
    let fix = "oxtail setup --client codex";
    let shown = opts.paths.display(file);
    if text.is_none() {
        return bad(N, Status::Fail, format!("{shown} does not exist"), fix);
    }
    let Some(doc) = doc else {
        return bad(
            N,
            Status::Fail,
            format!("{shown} is not valid TOML"),
            "fix the file by hand (Codex cannot read it either)",
        );
    };
    let Some(entry) = doc.get("mcp_servers").and_then(|s| s.get("oxtail")) else {
        return bad(
            N,
            Status::Fail,
            format!("{shown} has no [mcp_servers.oxtail]"),
            fix,
        );
    };
    let args_ok = entry
        .get("args")
        .and_then(|a| a.as_array())
        .is_some_and(|a| a.len() == 1 && a.get(0).and_then(|v| v.as_str()) == Some("mcp"));
    command_check(
        N,
        &format!("[mcp_servers.oxtail] in {shown}"),
        entry.get("command").and_then(|c| c.as_str()),
        args_ok,
        fix,
    )
}

fn check_codex_approval(doc: Option<&toml_edit::DocumentMut>) -> Check {
    const N: &str = "codex_approval";
    let mode = doc
        .and_then(|d| d.get("mcp_servers"))
        .and_then(|s| s.get("oxtail"))
        .and_then(|e| e.get(CODEX_APPROVAL_KEY))
        .and_then(|v| v.as_str());
    match mode {
        Some(CODEX_APPROVAL_VALUE) => ok(
            N,
            format!("[mcp_servers.oxtail] {CODEX_APPROVAL_KEY} = \"{CODEX_APPROVAL_VALUE}\""),
        ),
        other => bad(
            N,
            Status::Fail,
            format!(
                "[mcp_servers.oxtail] {CODEX_APPROVAL_KEY} is {}: the Codex TUI asks a person before every oxtail \
                 tool calls",
                other.map_or("unset".to_string(), |m| format!("\"{m}\""))
            ),
            "oxtail setup --client codex",
        ),
    }
}

/// Whether oxtail can reach Codex through its app-server (issue 15): Codex's
/// default `daemon_auto_start` is on, and the control socket, when a TUI
/// has started the app-server, is this user's own and closed to others.
fn check_codex_app_server(
    paths: &ClientPaths,
    config: &Path,
    doc: Option<&toml_edit::DocumentMut>,
) -> Check {
    const N: &str = "codex_app_server";
    let auto_start = doc
        .and_then(|d| d.get("features"))
        .and_then(|f| f.get("daemon_auto_start"))
        .and_then(|v| v.as_bool());
    if auto_start == Some(false) {
        return bad(
            N,
            Status::Warn,
            format!(
                "[features] daemon_auto_start = false in {}: Codex runs without its app-server, so oxtail \
                 wakes an idle Codex only by typing into its tmux pane, and reaches a busy one only at its hooks",
                paths.display(config)
            ),
            format!(
                "remove `daemon_auto_start = false` from [features] in {} (`oxtail setup \
                 --codex-no-daemon` sets it), then restart your Codex TUIs",
                paths.display(config)
            ),
        );
    }
    let home = config.parent().unwrap_or(Path::new("."));
    let socket = oxtail_proto::paths::codex_socket_path(home);
    if std::fs::symlink_metadata(&socket).is_err() {
        return ok(
            N,
            format!(
                "usable: the first Codex TUI starts its app-server ({} appears then); oxtail wakes an idle \
                 Codex with turn/start and reaches a busy one with turn/steer, nothing typed",
                paths.display(&socket)
            ),
        );
    }
    match oxtail_proto::paths::check_codex_socket(home) {
        Ok(target) => ok(
            N,
            format!(
                "usable: {} ({}) is yours and private; oxtail wakes an idle Codex with turn/start and reaches a \
                 busy one with turn/steer, nothing typed",
                paths.display(&socket),
                target.display()
            ),
        ),
        Err(e) => bad(
            N,
            Status::Fail,
            format!("oxtail will not use the Codex app-server: {e}"),
            "close every Codex TUI and stop the app-server (the pid is in \
             $CODEX_HOME/app-server-daemon/daemon.pid); the next TUI recreates the socket",
        ),
    }
}

/// Codex's event key in trust records (`pre_tool_use`).
fn snake(event: &str) -> String {
    let mut s = String::new();
    for (i, c) in event.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

fn check_codex_trust(
    paths: &ClientPaths,
    hooks_file: &Path,
    hooks_text: Option<&str>,
    doc: Option<&toml_edit::DocumentMut>,
) -> Check {
    const N: &str = "codex_hooks_trusted";
    let fix = "open codex, review oxtail's hooks with /hooks and trust them";
    let Some(v) = hooks_text.and_then(|t| serde_json::from_str::<Value>(t).ok()) else {
        return bad(
            N,
            Status::Fail,
            "no Codex hooks to trust yet",
            "oxtail install-hook --client codex, then open codex and trust them with /hooks",
        );
    };
    let state = doc
        .and_then(|d| d.get("hooks"))
        .and_then(|h| h.get("state"))
        .and_then(|s| s.as_table_like());
    let prefixes: Vec<String> = {
        let mut p = vec![hooks_file.display().to_string()];
        if let Ok(c) = std::fs::canonicalize(hooks_file) {
            p.push(c.display().to_string());
        }
        p
    };
    let found = found_handlers(&v);
    let untrusted: Vec<String> = found
        .iter()
        .filter(|f| {
            !prefixes.iter().any(|pre| {
                let key = format!("{pre}:{}:{}:{}", snake(&f.0), f.3, f.4);
                state
                    .and_then(|s| s.get(&key))
                    .and_then(|e| e.get("trusted_hash"))
                    .is_some()
            })
        })
        .map(|f| format!("{} {}", f.0, f.1))
        .collect();
    if found.is_empty() {
        bad(
            N,
            Status::Fail,
            format!("{} holds no oxtail hooks", paths.display(hooks_file)),
            "oxtail install-hook --client codex, then open codex and trust them with /hooks",
        )
    } else if untrusted.is_empty() {
        ok(
            N,
            format!("all {} oxtail hooks have trust records", found.len()),
        )
    } else {
        bad(
            N,
            Status::Fail,
            format!(
                "Codex will not run these oxtail hooks until you trust them: {}",
                untrusted.join(", ")
            ),
            fix,
        )
    }
}

fn check_daemon() -> Check {
    use oxtail_proto::client::{connect_at, ConnectError};
    use oxtail_proto::{paths, Ctl, Reply, Request, Role};
    const N: &str = "daemon";
    let sock = paths::socket_path();
    let mut c = match connect_at(&sock, Role::Ctl, Duration::from_secs(2)) {
        Ok(c) => c,
        Err(ConnectError::NoDaemon(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return bad(
                N,
                Status::Fail,
                format!("permission denied on {} ({e})", sock.display()),
                "the socket belongs to another user: check OXTAIL_SOCKET / OXTAIL_HOME",
            )
        }
        Err(ConnectError::NoDaemon(_)) => {
            return bad(
                N,
                Status::Warn,
                format!(
                    "no daemon running on {} (the first agent starts it on demand)",
                    sock.display()
                ),
                "`oxtail ctl ping` starts it now; `oxtail service install` keeps one running",
            )
        }
        Err(e) => {
            return bad(
                N,
                Status::Fail,
                format!("the daemon on {} did not answer: {e}", sock.display()),
                format!(
                    "see {}; `oxtail ctl shutdown` then `oxtail ctl ping` restarts it",
                    paths::log_path().display()
                ),
            )
        }
    };
    let _ = c.set_timeout(Some(Duration::from_secs(5)));
    match c.call(Request::Ctl(Ctl::Ping)) {
        Ok(Reply::Ok { value }) => {
            let v = value["version"].as_str().unwrap_or("?").to_string();
            if v == oxtail_proto::VERSION {
                ok(N, format!("running, version {v}, pid {}", value["pid"]))
            } else {
                bad(
                    N,
                    Status::Warn,
                    format!("running version {v}, not this {}", oxtail_proto::VERSION),
                    "`oxtail ctl ping` with this binary makes it take over",
                )
            }
        }
        Ok(Reply::Error { code, message }) => bad(
            N,
            Status::Fail,
            format!("the daemon answered {code}: {message}"),
            format!("see {}", paths::log_path().display()),
        ),
        Err(e) => bad(
            N,
            Status::Fail,
            format!("the daemon did not answer a ping: {e}"),
            format!("see {}", paths::log_path().display()),
        ),
    }
}

/// Federation (issue 16): what the running daemon says (its ping carries
/// the status snapshot's `federation` section), else what this shell's
/// `OXTAIL_FEDERATION_URL` would make a daemon started from it do.
fn check_federation() -> Check {
    use oxtail_proto::client::connect_at;
    use oxtail_proto::status::{federation_warning, redact_url, FederationStatus};
    use oxtail_proto::{paths, Ctl, Reply, Request, Role};
    const N: &str = "federation";
    let env_url = std::env::var("OXTAIL_FEDERATION_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let env_creds = std::env::var_os("OXTAIL_FEDERATION_CREDS").is_some_and(|c| !c.is_empty());
    let running = connect_at(&paths::socket_path(), Role::Ctl, Duration::from_secs(2))
        .ok()
        .and_then(|mut c| {
            let _ = c.set_timeout(Some(Duration::from_secs(5)));
            match c.call(Request::Ctl(Ctl::Ping)) {
                Ok(Reply::Ok { value }) => Some(value),
                _ => None,
            }
        });
    let Some(ping) = running else {
        return match env_url {
            None => ok(
                N,
                "off: the daemon opens no network socket (OXTAIL_FEDERATION_URL is not set)",
            ),
            Some(u) => match federation_warning(&u, env_creds) {
                Some(w) => bad(
                    N,
                    Status::Warn,
                    format!("on when the daemon starts, to {}: {w}", redact_url(&u)),
                    "use a tls:// URL or set OXTAIL_FEDERATION_CREDS to a NATS .creds file",
                ),
                None => ok(
                    N,
                    format!(
                        "on when the daemon starts: one outbound connection to {}",
                        redact_url(&u)
                    ),
                ),
            },
        };
    };
    let fed: Option<FederationStatus> = serde_json::from_value(ping["federation"].clone())
        .ok()
        .flatten();
    match (fed, env_url) {
        (None, None) => ok(N, "off: the daemon opens no network socket (OXTAIL_FEDERATION_URL is not set)"),
        (None, Some(u)) => bad(
            N,
            Status::Warn,
            format!("OXTAIL_FEDERATION_URL={} is set here, but the running daemon was started without it", redact_url(&u)),
            "`oxtail ctl shutdown` (the next agent starts a daemon from its environment), or `oxtail service install` from this shell",
        ),
        (Some(f), _) => {
            let what = format!(
                "on: one outbound connection to {}, link {}, {} federated project(s), {} remote agent(s){}",
                f.url,
                if f.link_up { "up" } else { "down" },
                f.projects,
                f.remote_agents,
                if f.outbox > 0 { format!(", {} message(s) waiting in the outbox", f.outbox) } else { String::new() },
            );
            if let Some(w) = f.warning {
                bad(N, Status::Warn, format!("{what}; {w}"), "use a tls:// URL or set OXTAIL_FEDERATION_CREDS to a NATS .creds file")
            } else if !f.link_up {
                bad(
                    N,
                    Status::Warn,
                    format!("{what} ({})", f.error.unwrap_or_default()),
                    format!("is the NATS server at {} running with JetStream (`nats-server -js`)? sends wait in the journal meanwhile", f.url),
                )
            } else {
                ok(N, what)
            }
        }
    }
}

fn check_state_dir() -> Check {
    const N: &str = "state_dir";
    let dir = oxtail_proto::paths::state_dir();
    if !dir.exists() {
        // Created (0700) by the first daemon; doctor creates nothing.
        let parent = dir.ancestors().skip(1).find(|a| a.exists());
        let writable = parent.is_some_and(|p| {
            let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
                return false;
            };
            // SAFETY: access(2) on a valid NUL-terminated path; no memory is shared.
            unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
        });
        return if writable {
            ok(
                N,
                format!(
                    "{} does not exist yet; the daemon creates it on first start",
                    dir.display()
                ),
            )
        } else {
            bad(
                N,
                Status::Fail,
                format!(
                    "{} does not exist and its parent is not writable",
                    dir.display()
                ),
                "point OXTAIL_HOME at a directory this user can write",
            )
        };
    }
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    match std::fs::write(&probe, b"probe") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            ok(N, format!("{} is writable", dir.display()))
        }
        Err(e) => bad(
            N,
            Status::Fail,
            format!("{} is not writable: {e}", dir.display()),
            "make the directory writable for this user, or point OXTAIL_HOME elsewhere",
        ),
    }
}

fn check_tmux() -> Check {
    const N: &str = "tmux";
    match std::process::Command::new("tmux")
        .arg("-V")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => ok(N, String::from_utf8_lossy(&o.stdout).trim().to_string()),
        _ => bad(
            N,
            Status::Warn,
            "tmux is not installed: oxtail cannot wake an idle agent by keys or show its pane",
            "install tmux (apt install tmux / brew install tmux) and run your agents inside it",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_event_keys_are_snake_case() {
        assert_eq!(snake("PreToolUse"), "pre_tool_use");
        assert_eq!(snake("SessionStart"), "session_start");
        assert_eq!(snake("Stop"), "stop");
    }

    #[test]
    fn expected_claude_handlers_include_the_async_rewake() {
        let e = expected_handlers(HookClient::Claude, Path::new("/b/oxtail"));
        assert!(e.contains(&("Stop".into(), "idle-wait".into())), "{e:?}");
        assert!(e.contains(&("Stop".into(), "stop".into())));
        assert_eq!(e.len(), CLAUDE_EVENTS.len() + 1);
    }
}
