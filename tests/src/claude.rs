//! Helpers for running the real Claude Code CLI offline in tests.
//!
//! * [`claude_available`] / [`claude_or_skip`] find the `claude` binary (via
//!   `PATH`, then `npm root -g`) so tests can skip cleanly when it is absent.
//! * [`ClaudeHome`] is a throwaway `HOME` with onboarding done and project MCP
//!   servers pre-approved.
//! * [`write_mcp_json`] registers stdio MCP servers ([`McpServer`]) in a
//!   project's `.mcp.json`, with `alwaysLoad: true` so their tools are offered
//!   up front instead of behind tool search.
//! * [`ClaudeRun`] runs `claude -p PROMPT --output-format json
//!   --dangerously-skip-permissions` headless against a fake model server (see
//!   [`crate::fake_anthropic`]) with a clean environment and a timeout.
//! * [`claude_env`] is that environment, for launching the interactive TUI
//!   yourself (e.g. in tmux).

use std::collections::BTreeMap;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::proc::{run_with_timeout, RunOutput};
use serde_json::{json, Value};

/// Why [`claude_or_skip`] skips (or, under `OXTAIL_E2E_REQUIRED=1`, fails).
pub const SKIP_MESSAGE: &str = "claude CLI not installed; .ci/run installs it";

/// Environment variable naming an explicit `claude` binary to use.
pub const CLAUDE_BIN_ENV: &str = "OXTAIL_TEST_CLAUDE";

/// API key handed to the CLI; the fake server accepts anything.
pub const FAKE_API_KEY: &str = "sk-ant-oxtail-test-key";

/// Default for [`ClaudeRun::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Default for [`ClaudeRun::mcp_startup_wait`]. Without it, `claude -p` waits
/// only about 7 s for MCP servers before the first model request and then
/// proceeds without their tools.
pub const DEFAULT_MCP_STARTUP_WAIT: Duration = Duration::from_secs(60);

/// Variables passed through from the test's environment; everything else is
/// cleared so an outer Claude Code session or API credentials cannot leak in.
const PASSTHROUGH_ENV: &[&str] = &[
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR", "USER", "LOGNAME", "SHELL", "TZ",
];

/// Path to a working `claude` binary, or `None` if it is not installed.
///
/// Looks at `$OXTAIL_TEST_CLAUDE`, then `claude` on `PATH`, then the global npm
/// package (`$(npm root -g)/@anthropic-ai/claude-code/bin/claude.exe` and the
/// platform package's `claude`). A candidate counts only if `claude --version`
/// answers within a few seconds. The result is cached for the process.
pub fn claude_available() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            candidates()
                .into_iter()
                .find(|p| claude_version(p).is_some())
        })
        .clone()
}

/// [`claude_available`], for
/// `let Some(claude) = claude_or_skip() else { return };`. When it is
/// `None`: [`crate::skip::skip_or_fail`] with [`SKIP_MESSAGE`] (a failure
/// under `OXTAIL_E2E_REQUIRED=1`).
///
/// # Panics
/// When the CLI is missing and `OXTAIL_E2E_REQUIRED=1`.
#[track_caller]
pub fn claude_or_skip() -> Option<PathBuf> {
    let found = claude_available();
    if found.is_none() {
        crate::skip::skip_or_fail(SKIP_MESSAGE);
    }
    found
}

/// The output of `claude --version` (e.g. `2.1.329 (Claude Code)`), or `None`
/// if `binary` does not run or does not look like Claude Code.
pub fn claude_version(binary: &Path) -> Option<String> {
    let mut cmd = Command::new(binary);
    cmd.arg("--version");
    let home = tempfile::tempdir().ok()?;
    base_env(&mut cmd, home.path());
    let out = run_with_timeout(cmd, Duration::from_secs(20)).ok()?;
    let text = out.stdout.trim().to_owned();
    (out.status.is_some_and(|s| s.success()) && text.contains("Claude Code")).then_some(text)
}

fn candidates() -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(explicit) = std::env::var_os(CLAUDE_BIN_ENV) {
        found.push(PathBuf::from(explicit));
    }
    if let Some(path) = std::env::var_os("PATH") {
        found.extend(
            std::env::split_paths(&path)
                .map(|dir| dir.join("claude"))
                .filter(|p| p.is_file()),
        );
    }
    let npm_root = Command::new("npm")
        .args(["root", "-g"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(root) = npm_root {
        let pkg = root.join("@anthropic-ai/claude-code");
        found.push(pkg.join("bin/claude.exe"));
        // When the postinstall step did not run, the native binary is only in
        // the platform-specific optional dependency.
        for scope in [
            pkg.join("node_modules/@anthropic-ai"),
            root.join("@anthropic-ai"),
        ] {
            if let Ok(entries) = std::fs::read_dir(&scope) {
                for entry in entries.flatten() {
                    if entry
                        .file_name()
                        .to_string_lossy()
                        .starts_with("claude-code-")
                    {
                        found.push(entry.path().join("claude"));
                    }
                }
            }
        }
    }
    found.retain(|p| p.is_file());
    found
}

/// A throwaway `HOME` for Claude Code, deleted on drop.
///
/// Created with `~/.claude/settings.json` = `{"enableAllProjectMcpServers":
/// true}` (so a project's `.mcp.json` servers are approved) and
/// `~/.claude.json` with onboarding completed, a theme, the bypass
/// permissions warning accepted and [`FAKE_API_KEY`] approved, so the
/// interactive TUI starts straight at the prompt. Trust individual project directories for the
/// interactive TUI with [`ClaudeHome::trust_project`].
#[derive(Debug)]
pub struct ClaudeHome {
    dir: tempfile::TempDir,
}

impl ClaudeHome {
    /// Create a fresh home under the system temp directory.
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("oxtail-claude-home-")
            .tempdir()
            .context("create temp HOME")?;
        let home = ClaudeHome { dir };
        std::fs::create_dir_all(home.claude_dir()).context("create ~/.claude")?;
        write_json(
            &home.settings_path(),
            &json!({ "enableAllProjectMcpServers": true }),
        )?;
        write_json(
            &home.claude_json_path(),
            &json!({
                "hasCompletedOnboarding": true,
                "theme": "dark",
                "bypassPermissionsModeAccepted": true,
                "customApiKeyResponses": {
                    "approved": [api_key_fingerprint(FAKE_API_KEY)],
                    "rejected": [],
                },
                "projects": {},
            }),
        )?;
        Ok(home)
    }

    /// The home directory (the value for `HOME`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `~/.claude`.
    pub fn claude_dir(&self) -> PathBuf {
        self.path().join(".claude")
    }

    /// `~/.claude/settings.json` (user settings: hooks, permissions, ...).
    pub fn settings_path(&self) -> PathBuf {
        self.claude_dir().join("settings.json")
    }

    /// `~/.claude.json` (global state: onboarding, per-project trust).
    pub fn claude_json_path(&self) -> PathBuf {
        self.path().join(".claude.json")
    }

    /// Edit `~/.claude/settings.json` in place, e.g. to install hooks.
    pub fn update_settings(&self, edit: impl FnOnce(&mut Value)) -> Result<()> {
        update_json(&self.settings_path(), edit)
    }

    /// Edit `~/.claude.json` in place.
    pub fn update_claude_json(&self, edit: impl FnOnce(&mut Value)) -> Result<()> {
        update_json(&self.claude_json_path(), edit)
    }

    /// Pre-approve `key` as a custom `ANTHROPIC_API_KEY` so the interactive
    /// TUI does not ask about it. [`FAKE_API_KEY`] is approved from the start;
    /// call this if you pass a different key. Not needed for `claude -p`.
    pub fn approve_api_key(&self, key: &str) -> Result<()> {
        let fingerprint = api_key_fingerprint(key);
        self.update_claude_json(|v| {
            let approved = &mut v["customApiKeyResponses"]["approved"];
            if !approved.is_array() {
                *approved = json!([]);
            }
            if let Some(list) = approved.as_array_mut() {
                if !list.iter().any(|k| k == &fingerprint) {
                    list.push(json!(fingerprint));
                }
            }
            if !v["customApiKeyResponses"]["rejected"].is_array() {
                v["customApiKeyResponses"]["rejected"] = json!([]);
            }
        })
    }

    /// Mark `project` as trusted (no trust dialog in the interactive TUI) with
    /// its project MCP servers enabled. Not needed for `claude -p`.
    pub fn trust_project(&self, project: &Path) -> Result<()> {
        let key = project.to_string_lossy().into_owned();
        self.update_claude_json(|v| {
            if !v["projects"].is_object() {
                v["projects"] = json!({});
            }
            v["projects"][key] = json!({
                "hasTrustDialogAccepted": true,
                "hasCompletedProjectOnboarding": true,
                "enableAllProjectMcpServers": true,
            });
        })
    }

    /// Session transcripts Claude Code wrote (`~/.claude/projects/*/*.jsonl`),
    /// sorted; useful when debugging a failed run.
    pub fn transcripts(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(projects) = std::fs::read_dir(self.claude_dir().join("projects")) {
            for project in projects.flatten() {
                if let Ok(files) = std::fs::read_dir(project.path()) {
                    out.extend(
                        files
                            .flatten()
                            .map(|f| f.path())
                            .filter(|p| p.extension().is_some_and(|e| e == "jsonl")),
                    );
                }
            }
        }
        out.sort();
        out
    }
}

/// A stdio MCP server entry for `.mcp.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpServer {
    /// Server name; its tools appear to the model as `mcp__<name>__<tool>`.
    pub name: String,
    /// Program to run (absolute path, or a name looked up on `PATH`).
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment, on top of the environment Claude Code itself has.
    pub env: BTreeMap<String, String>,
}

impl McpServer {
    /// A server `name` started as `command` with no arguments.
    pub fn new(name: impl Into<String>, command: impl AsRef<std::ffi::OsStr>) -> Self {
        McpServer {
            name: name.into(),
            command: command.as_ref().to_string_lossy().into_owned(),
            args: Vec::new(),
            env: BTreeMap::new(),
        }
    }

    /// Append one argument.
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.args.push(arg.as_ref().to_string_lossy().into_owned());
        self
    }

    /// Append several arguments.
    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(
            args.into_iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        );
        self
    }

    /// Set one environment variable for the server.
    pub fn env(mut self, key: impl Into<String>, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.env
            .insert(key.into(), value.as_ref().to_string_lossy().into_owned());
        self
    }

    /// The `.mcp.json` entry (without the name).
    pub fn to_json(&self) -> Value {
        json!({
            "type": "stdio",
            "command": self.command,
            "args": self.args,
            "env": self.env,
            "alwaysLoad": true,
        })
    }
}

/// Write `<project_dir>/.mcp.json` registering `servers` (replacing any
/// existing file) and return its path.
pub fn write_mcp_json(project_dir: &Path, servers: &[McpServer]) -> Result<PathBuf> {
    let entries: serde_json::Map<String, Value> = servers
        .iter()
        .map(|s| (s.name.clone(), s.to_json()))
        .collect();
    let path = project_dir.join(".mcp.json");
    write_json(&path, &json!({ "mcpServers": entries }))?;
    Ok(path)
}

/// The environment for running Claude Code offline against `base_url` with
/// `home` as `HOME`: `ANTHROPIC_BASE_URL`, a fake `ANTHROPIC_API_KEY`,
/// `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`, `DISABLE_AUTOUPDATER=1`,
/// telemetry off, and `IS_SANDBOX=1` when running as root (required for
/// `--dangerously-skip-permissions`). Does not include passthrough variables
/// such as `PATH`; [`ClaudeRun`] adds those.
pub fn claude_env(home: &Path, base_url: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("HOME", home.to_string_lossy().as_ref()),
        ("ANTHROPIC_BASE_URL", base_url),
        ("ANTHROPIC_API_KEY", FAKE_API_KEY),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("DISABLE_AUTOUPDATER", "1"),
        ("DISABLE_TELEMETRY", "1"),
        ("DISABLE_ERROR_REPORTING", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        env.push(("IS_SANDBOX".to_owned(), "1".to_owned()));
    }
    env
}

/// Clear `cmd`'s environment except [`PASSTHROUGH_ENV`], then set `HOME` and
/// switch off update checks and telemetry (no model server configured).
fn base_env(cmd: &mut Command, home: &Path) {
    cmd.env_clear();
    for key in PASSTHROUGH_ENV {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.env("HOME", home)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1");
}

/// A headless `claude -p` invocation; configure with the builder methods, then
/// [`ClaudeRun::run`] (blocking) or [`ClaudeRun::run_async`].
#[derive(Clone, Debug)]
pub struct ClaudeRun {
    binary: PathBuf,
    home: PathBuf,
    cwd: PathBuf,
    base_url: String,
    prompt: String,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    timeout: Duration,
    mcp_startup_wait: Option<Duration>,
    skip_permissions: bool,
}

impl ClaudeRun {
    /// `binary -p prompt --output-format json --dangerously-skip-permissions`,
    /// run in `cwd` with `HOME=home` against the model server at `base_url`.
    pub fn new(
        binary: impl Into<PathBuf>,
        home: &ClaudeHome,
        cwd: impl Into<PathBuf>,
        base_url: impl Into<String>,
        prompt: impl Into<String>,
    ) -> Self {
        ClaudeRun {
            binary: binary.into(),
            home: home.path().to_owned(),
            cwd: cwd.into(),
            base_url: base_url.into(),
            prompt: prompt.into(),
            extra_args: Vec::new(),
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            mcp_startup_wait: Some(DEFAULT_MCP_STARTUP_WAIT),
            skip_permissions: true,
        }
    }

    /// Run in Claude Code's default permission mode: no
    /// `--dangerously-skip-permissions`, so a tool that is not allowed in
    /// the settings is denied (`permission_denials` in the JSON output).
    pub fn default_permission_mode(mut self) -> Self {
        self.skip_permissions = false;
        self
    }

    /// Append an extra CLI argument (e.g. `--verbose`, `--mcp-debug`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Set an environment variable for the CLI; its MCP servers and hooks
    /// inherit it too.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Kill the CLI (and its process group) after `timeout`. Default 120 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the first model request may wait for MCP servers to connect
    /// (`CLAUDE_CODE_MCP_STARTUP_WAIT_MS`); `None` keeps Claude Code's default
    /// of roughly 7 s. Default: [`DEFAULT_MCP_STARTUP_WAIT`].
    pub fn mcp_startup_wait(mut self, wait: Option<Duration>) -> Self {
        self.mcp_startup_wait = wait;
        self
    }

    /// The fully configured command (own process group, clean environment,
    /// stdin from `/dev/null`), for callers that want to spawn it themselves.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("-p")
            .arg(&self.prompt)
            .args(["--output-format", "json"])
            .args(
                self.skip_permissions
                    .then_some("--dangerously-skip-permissions"),
            )
            .args(&self.extra_args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .process_group(0);
        base_env(&mut cmd, &self.home);
        cmd.envs(claude_env(&self.home, &self.base_url));
        if let Some(wait) = self.mcp_startup_wait {
            cmd.env(
                "CLAUDE_CODE_MCP_STARTUP_WAIT_MS",
                wait.as_millis().to_string(),
            );
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Run to completion (or timeout), blocking the calling thread.
    pub fn run(&self) -> Result<ClaudeOutput> {
        run_with_timeout(self.command(), self.timeout)
            .map(ClaudeOutput)
            .with_context(|| format!("run {}", self.binary.display()))
    }

    /// Run to completion (or timeout) without blocking the async runtime.
    pub async fn run_async(&self) -> Result<ClaudeOutput> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.run())
            .await
            .context("claude runner thread panicked")?
    }
}

/// What a [`ClaudeRun`] produced: the runner's [`RunOutput`] (status,
/// stdout, stderr, elapsed, timed_out; `success`, `describe`), read as
/// Claude Code's `--output-format json` result.
#[derive(Clone, Debug)]
pub struct ClaudeOutput(pub RunOutput);

impl std::ops::Deref for ClaudeOutput {
    type Target = RunOutput;
    fn deref(&self) -> &RunOutput {
        &self.0
    }
}

impl ClaudeOutput {
    /// stdout parsed as JSON: the `--output-format json` result object
    /// (`type: "result"`, `subtype`, `is_error`, `result`, `num_turns`,
    /// `session_id`, ...). Falls back to the last line that parses.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(self.stdout.trim()).ok().or_else(|| {
            self.stdout
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str(l.trim()).ok())
        })
    }

    /// The final assistant text (`result` of the JSON output).
    pub fn result_text(&self) -> Option<String> {
        self.json()?.get("result")?.as_str().map(str::to_owned)
    }
}

/// How `~/.claude.json` identifies an approved API key: its last 20
/// characters (after trimming).
fn api_key_fingerprint(key: &str) -> String {
    let key = key.trim();
    let skip = key.chars().count().saturating_sub(20);
    key.chars().skip(skip).collect()
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))
}

fn update_json(path: &Path, edit: impl FnOnce(&mut Value)) -> Result<()> {
    let mut value = match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    edit(&mut value);
    write_json(path, &value)
}
