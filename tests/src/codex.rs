//! Helpers for running the real Codex CLI offline in tests.
//!
//! * [`codex_available`] / [`codex_or_skip`] find the `codex` binary so tests
//!   can skip cleanly when it is absent.
//! * [`CodexHome`] is a throwaway `HOME` whose `.codex/` (the `CODEX_HOME`)
//!   holds a `config.toml` that keeps Codex 0.169.0 on loopback and talking to
//!   a scripted model server ([`crate::fake_openai::FakeOpenAi`]): the fake
//!   provider, `[features] plugins = false`, `remote_plugin = false`, `apps =
//!   false` (otherwise it runs `git ls-remote` against a public plugins
//!   repository at start), `daemon_auto_start = false` (one Codex process per
//!   TUI, a child of its pane, instead of a shared background app-server),
//!   the model-migration notice pre-answered, analytics and feedback off.
//!   Register MCP servers with [`CodexHome::add_mcp_server`].
//! * [`CodexExec`] runs `codex exec --json` headless with a clean environment
//!   and a timeout; [`CodexOutput::events`] parses its JSONL events and
//!   [`CodexOutput::thread_id`] reads the thread id.
//! * [`codex_env`] is the environment for launching the interactive TUI
//!   yourself; [`CodexTui`] starts the TUI in a tmux pane and waits for the
//!   composer.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::claude::McpServer;
use crate::proc::{run_with_timeout, RunOutput};
use crate::tui::{trim_screen, Pane, SessionSpec, TmuxServer};

/// Why [`codex_or_skip`] skips (or, under `OXTAIL_E2E_REQUIRED=1`, fails).
pub const SKIP_MESSAGE: &str =
    "codex CLI not installed (npm install -g @openai/codex@0.169.0; .ci/run installs it)";

/// Environment variable naming an explicit `codex` binary to use.
pub const CODEX_BIN_ENV: &str = "OXTAIL_TEST_CODEX";

/// The provider's `env_key`: the variable Codex reads its API key from.
pub const FAKE_KEY_ENV: &str = "OXTAIL_FAKE_OPENAI_KEY";

/// The model named in the config (any name works with the fake server; this
/// one matches the fixtures).
pub const MODEL: &str = "gpt-5.5";

/// Default for [`CodexExec::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Variables passed through from the test's environment; everything else is
/// cleared so an outer session's settings or credentials cannot leak in.
const PASSTHROUGH_ENV: &[&str] = &["PATH", "LANG", "LC_ALL", "USER", "LOGNAME", "SHELL", "TZ"];

/// Path to a working `codex` binary, or `None` if it is not installed.
///
/// Looks at `$OXTAIL_TEST_CODEX`, then `codex` on `PATH`. A candidate counts
/// only if `codex --version` answers `codex-cli …` within a few seconds.
/// Cached for the process.
pub fn codex_available() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let mut candidates = Vec::new();
            if let Some(p) = std::env::var_os(CODEX_BIN_ENV) {
                candidates.push(PathBuf::from(p));
            }
            if let Some(path) = std::env::var_os("PATH") {
                candidates.extend(std::env::split_paths(&path).map(|d| d.join("codex")));
            }
            candidates
                .into_iter()
                .filter(|p| p.is_file())
                .find(|p| codex_version(p).is_some())
        })
        .clone()
}

/// [`codex_available`]; when it is `None`, [`crate::skip::skip_or_fail`]
/// with [`SKIP_MESSAGE`] (a failure under `OXTAIL_E2E_REQUIRED=1`).
///
/// # Panics
/// When the CLI is missing and `OXTAIL_E2E_REQUIRED=1`.
#[track_caller]
pub fn codex_or_skip() -> Option<PathBuf> {
    let found = codex_available();
    if found.is_none() {
        crate::skip::skip_or_fail(SKIP_MESSAGE);
    }
    found
}

/// The output of `codex --version` (e.g. `codex-cli 0.169.0`), or `None`.
pub fn codex_version(binary: &Path) -> Option<String> {
    let home = tempfile::tempdir().ok()?;
    let mut cmd = Command::new(binary);
    cmd.arg("--version")
        .env_clear()
        .env("HOME", home.path())
        .env("CODEX_HOME", home.path())
        .stdin(Stdio::null())
        .process_group(0);
    if let Some(p) = std::env::var_os("PATH") {
        cmd.env("PATH", p);
    }
    let out = run_with_timeout(cmd, Duration::from_secs(20)).ok()?;
    let text = out.stdout.trim().to_owned();
    (out.success() && text.starts_with("codex")).then_some(text)
}

/// A throwaway `HOME` with a prepared `CODEX_HOME` (`<home>/.codex`),
/// deleted on drop.
#[derive(Debug)]
pub struct CodexHome {
    dir: tempfile::TempDir,
    base_url: String,
    extra: Mutex<String>,
    approval_never: std::sync::atomic::AtomicBool,
    app_server_daemon: std::sync::atomic::AtomicBool,
}

impl CodexHome {
    /// A fresh home whose config points Codex at the Responses API server at
    /// `base_url` (e.g. [`crate::fake_openai::FakeOpenAi::base_url`]).
    ///
    /// # Errors
    /// When the temp directory or the config cannot be written.
    pub fn new(base_url: &str) -> Result<CodexHome> {
        let dir = tempfile::Builder::new()
            .prefix("oxtail-codex-home-")
            .tempdir()
            .context("create temp HOME")?;
        let home = CodexHome {
            dir,
            base_url: base_url.to_owned(),
            extra: Mutex::new(String::new()),
            approval_never: std::sync::atomic::AtomicBool::new(true),
            app_server_daemon: std::sync::atomic::AtomicBool::new(false),
        };
        std::fs::create_dir_all(home.codex_home()).context("create CODEX_HOME")?;
        home.write_config()?;
        Ok(home)
    }

    /// The home directory (the value for `HOME`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `CODEX_HOME`: `<home>/.codex`.
    pub fn codex_home(&self) -> PathBuf {
        self.path().join(".codex")
    }

    /// `$CODEX_HOME/config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.codex_home().join("config.toml")
    }

    /// `$CODEX_HOME/hooks.json`.
    pub fn hooks_path(&self) -> PathBuf {
        self.codex_home().join("hooks.json")
    }

    /// Register a stdio MCP server as `[mcp_servers.<name>]`. Codex 0.169.0
    /// gives MCP servers only a few variables of its own environment (`HOME`,
    /// `PATH`, `LANG`, `SHELL`, `TERM`, certificates), so anything else they
    /// need (e.g. `OXTAIL_HOME`) must be in `server.env`.
    ///
    /// # Errors
    /// When the config cannot be written.
    pub fn add_mcp_server(&self, server: &McpServer) -> Result<()> {
        let mut t = format!(
            "\n[mcp_servers.{}]\ncommand = {}\nargs = [{}]\n",
            toml_key(&server.name),
            toml_str(&server.command),
            server
                .args
                .iter()
                .map(|a| toml_str(a))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !server.env.is_empty() {
            t.push_str(&format!("\n[mcp_servers.{}.env]\n", toml_key(&server.name)));
            for (k, v) in &server.env {
                t.push_str(&format!("{} = {}\n", toml_key(k), toml_str(v)));
            }
        }
        self.append_config(&t)
    }

    /// Mark `project` trusted (`[projects."<dir>"] trust_level = "trusted"`),
    /// so the TUI does not ask.
    ///
    /// # Errors
    /// When the config cannot be written.
    pub fn trust_project(&self, project: &Path) -> Result<()> {
        self.append_config(&format!(
            "\n[projects.{}]\ntrust_level = \"trusted\"\n",
            toml_str(&project.to_string_lossy())
        ))
    }

    /// Drop `approval_policy = "never"` from the base settings, so Codex
    /// runs with its default approval policy.
    ///
    /// # Errors
    /// When the config cannot be written.
    pub fn use_default_approval_policy(&self) -> Result<()> {
        self.approval_never
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.write_config()
    }

    /// Keep Codex's default `daemon_auto_start`: the first TUI starts the
    /// shared background app-server (its control socket under
    /// `CODEX_HOME/app-server-control/`), later TUIs attach to it. The
    /// daemon outlives the TUIs; dropping the home kills it (and its
    /// `pid-update-loop`) by the pids in `CODEX_HOME/app-server-daemon/`.
    ///
    /// # Errors
    /// When the config cannot be written.
    pub fn use_app_server_daemon(&self) -> Result<()> {
        self.app_server_daemon
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.write_config()
    }

    /// The pids of the app-server daemon and its updater loop Codex started
    /// for this home (`app-server-daemon/daemon.pid` and
    /// `daemon-updater.pid`, JSON `{"pid": N, …}`), those that exist.
    pub fn app_server_pids(&self) -> Vec<u32> {
        ["daemon.pid", "daemon-updater.pid"]
            .iter()
            .filter_map(|f| {
                let p = self.codex_home().join("app-server-daemon").join(f);
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
                v["pid"].as_u64().map(|n| n as u32)
            })
            .collect()
    }

    /// Kills the app-server daemon and updater loop this home started
    /// (SIGTERM, then SIGKILL after 2 s), by the pids Codex recorded, and
    /// only when their command line names this home (a recycled pid is left
    /// alone).
    pub fn kill_app_server(&self) {
        let home = self.codex_home().to_string_lossy().into_owned();
        let ours: Vec<u32> = self
            .app_server_pids()
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&home))
            })
            .collect();
        for pid in &ours {
            // SAFETY: a plain kill(2) on a pid whose command line names our home.
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline
            && ours.iter().any(|p| {
                std::path::Path::new(&format!("/proc/{p}/cmdline")).exists() && !zombie(*p)
            })
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in &ours {
            if std::path::Path::new(&format!("/proc/{pid}")).exists() && !zombie(*pid) {
                // SAFETY: as above.
                unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
            }
        }
    }

    /// Trust every hook Codex finds for `cwd`, as a person does in the TUI's
    /// `/hooks`: asks `codex app-server` (stdio, one JSON-RPC message a
    /// line) for `hooks/list` and appends a `[hooks.state."<key>"]
    /// trusted_hash = "<currentHash>"` record for each. Needed where
    /// `--dangerously-bypass-hook-trust` is not an option: a TUI given that
    /// flag does not use the shared app-server daemon. Returns how many
    /// hooks it trusted.
    ///
    /// # Errors
    /// When Codex does not answer within 20 s, or the config cannot be
    /// written.
    pub fn trust_hooks(&self, binary: &Path, cwd: &Path) -> Result<usize> {
        use std::io::{BufRead, Write};
        let mut cmd = Command::new(binary);
        cmd.arg("app-server")
            .env_clear()
            .envs(codex_env(self))
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some(p) = std::env::var_os("PATH") {
            cmd.env("PATH", p);
        }
        let mut child = cmd.spawn().context("spawn codex app-server")?;
        let mut stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let cwd_s = cwd.to_string_lossy().into_owned();
        let msgs = [
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"clientInfo": {"name": "oxtail-tests", "version": "1"}, "capabilities": {"experimentalApi": true}}}),
            serde_json::json!({"jsonrpc": "2.0", "method": "initialized"}),
            serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "hooks/list", "params": {"cwds": [cwd_s]}}),
        ];
        for m in msgs {
            writeln!(stdin, "{m}").context("write to codex app-server")?;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(|l| l.ok())
            {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["id"] == 2 {
                        let _ = tx.send(v);
                        return;
                    }
                }
            }
        });
        let answer = rx.recv_timeout(Duration::from_secs(20));
        drop(stdin);
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill(2) on the process group of our own unreaped child.
        unsafe { libc::killpg(pid, libc::SIGKILL) };
        let _ = child.wait();
        let answer = answer.context("codex app-server did not answer hooks/list")?;
        let mut toml = String::new();
        let mut n = 0;
        for entry in answer["result"]["data"].as_array().into_iter().flatten() {
            for h in entry["hooks"].as_array().into_iter().flatten() {
                if let (Some(key), Some(hash)) = (h["key"].as_str(), h["currentHash"].as_str()) {
                    toml.push_str(&format!(
                        "\n[hooks.state.{}]\ntrusted_hash = {}\n",
                        toml_str(key),
                        toml_str(hash)
                    ));
                    n += 1;
                }
            }
        }
        self.append_config(&toml)?;
        Ok(n)
    }

    /// Append raw TOML tables to `config.toml` (after the base settings).
    ///
    /// # Errors
    /// When the config cannot be written.
    pub fn append_config(&self, toml: &str) -> Result<()> {
        self.extra
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_str(toml);
        self.write_config()
    }

    /// Rollout files Codex wrote (`$CODEX_HOME/sessions/**/rollout-*.jsonl`),
    /// sorted; handy when debugging a failed run.
    pub fn rollouts(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, out);
                    } else if p.extension().is_some_and(|x| x == "jsonl") {
                        out.push(p);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.codex_home().join("sessions"), &mut out);
        out.sort();
        out
    }

    fn write_config(&self) -> Result<()> {
        let extra = self.extra.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let text = format!(
            r#"# Written by oxtail's test harness (tests/src/codex.rs).
model = {model}
model_provider = "fake"
{approval}sandbox_mode = "danger-full-access"
check_for_update_on_startup = false
web_search = "disabled"

[model_providers.fake]
name = "fake"
base_url = {base_url}
env_key = {key}
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[features]
# on by default: at start Codex runs `git ls-remote` against a public plugins repository
plugins = false
remote_plugin = false
apps = false
{daemon}
[analytics]
enabled = false

[feedback]
enabled = false

[notice.model_migrations]
{model} = "gpt-6-sol"

[tui]
screen_reader_detection_done = true

[tui.model_availability_nux]
"gpt-6.1-sol" = 99
{extra}"#,
            model = toml_str(MODEL),
            approval = if self
                .approval_never
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                "approval_policy = \"never\"\n"
            } else {
                ""
            },
            base_url = toml_str(&self.base_url),
            key = toml_str(FAKE_KEY_ENV),
            daemon = if self
                .app_server_daemon
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                ""
            } else {
                "# on by default: the TUI hosts its threads in a shared background app-server outside any pane\ndaemon_auto_start = false\n"
            },
        );
        std::fs::write(self.config_path(), text)
            .with_context(|| format!("write {}", self.config_path().display()))
    }
}

impl Drop for CodexHome {
    fn drop(&mut self) {
        if self
            .app_server_daemon
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            self.kill_app_server();
        }
    }
}

/// Whether `pid` is a zombie (exited, not reaped: nothing left to kill).
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// A TOML basic string (JSON string escapes are valid TOML escapes).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A TOML key: bare when it can be, quoted otherwise.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_owned()
    } else {
        toml_str(k)
    }
}

/// The environment for running Codex offline with `home` as `HOME` (and
/// `<home>/.codex` as `CODEX_HOME`): those two and the fake provider's key.
/// Does not include passthrough variables such as `PATH`; [`CodexExec`]
/// adds those.
pub fn codex_env(home: &CodexHome) -> Vec<(String, String)> {
    vec![
        ("HOME".into(), home.path().to_string_lossy().into_owned()),
        (
            "CODEX_HOME".into(),
            home.codex_home().to_string_lossy().into_owned(),
        ),
        (FAKE_KEY_ENV.into(), "sk-oxtail-fake".into()),
    ]
}

/// A headless `codex exec --json` run; configure, then [`CodexExec::run`].
#[derive(Clone, Debug)]
pub struct CodexExec {
    binary: PathBuf,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    prompt: String,
    extra_args: Vec<String>,
    timeout: Duration,
}

impl CodexExec {
    /// `binary exec --json --skip-git-repo-check PROMPT` in `cwd` with
    /// `home`'s environment ([`codex_env`]).
    pub fn new(
        binary: impl Into<PathBuf>,
        home: &CodexHome,
        cwd: impl Into<PathBuf>,
        prompt: impl Into<String>,
    ) -> Self {
        CodexExec {
            binary: binary.into(),
            env: codex_env(home),
            cwd: cwd.into(),
            prompt: prompt.into(),
            extra_args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Append a CLI argument (before the prompt), e.g.
    /// `--dangerously-bypass-hook-trust` so hooks run without trust records.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Set an environment variable for Codex (its hooks inherit it; its MCP
    /// servers do not, see [`CodexHome::add_mcp_server`]).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Kill Codex (and its process group) after `timeout`. Default 120 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The configured command (own process group, clean environment, stdin
    /// from `/dev/null`).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(["exec", "--json", "--skip-git-repo-check"])
            .args(&self.extra_args)
            .arg(&self.prompt)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .process_group(0)
            .env_clear();
        for key in PASSTHROUGH_ENV {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Run to completion (or timeout), blocking the calling thread.
    ///
    /// # Errors
    /// When Codex cannot be started.
    pub fn run(&self) -> Result<CodexOutput> {
        run_with_timeout(self.command(), self.timeout)
            .map(CodexOutput)
            .with_context(|| format!("run {}", self.binary.display()))
    }

    /// [`CodexExec::run`] on a blocking thread, for async tests.
    ///
    /// # Errors
    /// As [`CodexExec::run`].
    pub async fn run_async(&self) -> Result<CodexOutput> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.run())
            .await
            .context("codex runner thread panicked")?
    }
}

/// What a [`CodexExec`] produced: the runner's [`RunOutput`] (status,
/// stdout, stderr, elapsed, timed_out; `success`, `describe`), read as
/// Codex's `--json` event stream.
#[derive(Clone, Debug)]
pub struct CodexOutput(pub RunOutput);

impl std::ops::Deref for CodexOutput {
    type Target = RunOutput;
    fn deref(&self) -> &RunOutput {
        &self.0
    }
}

impl CodexOutput {
    /// The `--json` events, one per stdout line that parses (`thread.started`,
    /// `turn.started`, `item.started`/`item.completed` with `mcp_tool_call`,
    /// `command_execution`, `agent_message` items, `turn.completed`).
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l.trim()).ok())
            .collect()
    }

    /// The thread id from the `thread.started` event: Codex's session id, the
    /// one its hooks report as `session_id` and its MCP calls as `_meta.threadId`.
    pub fn thread_id(&self) -> Option<String> {
        self.events()
            .iter()
            .find(|e| e["type"] == "thread.started")
            .and_then(|e| e["thread_id"].as_str().map(str::to_owned))
    }

    /// The completed `mcp_tool_call` items of MCP server `server`'s `tool`.
    pub fn mcp_calls(&self, server: &str, tool: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == "item.completed")
            .map(|e| e["item"].clone())
            .filter(|i| i["type"] == "mcp_tool_call" && i["server"] == server && i["tool"] == tool)
            .collect()
    }
}

/// The interactive Codex TUI, to be started in a tmux pane with
/// [`CodexTui::start`].
#[derive(Clone, Debug)]
pub struct CodexTui {
    binary: PathBuf,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    args: Vec<String>,
}

impl CodexTui {
    /// `binary` in `cwd` with `home`'s environment ([`codex_env`]).
    pub fn new(binary: impl Into<PathBuf>, home: &CodexHome, cwd: impl Into<PathBuf>) -> Self {
        CodexTui {
            binary: binary.into(),
            env: codex_env(home),
            cwd: cwd.into(),
            args: Vec::new(),
        }
    }

    /// Append a CLI argument, e.g. `--dangerously-bypass-hook-trust`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Set an environment variable for Codex (and its hooks).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Start it in a new session `session` of `tmux` and wait until its
    /// composer shows. The pane runs Codex directly (no shell), so with
    /// `daemon_auto_start = false` the pane's process is the Codex launcher
    /// whose descendants are the Codex core and its MCP servers (see
    /// `fixtures/codex-0.169.0/tui/tui_ps.txt`).
    ///
    /// # Errors
    /// When tmux fails or the composer does not appear within `timeout`.
    pub fn start(&self, tmux: &TmuxServer, session: &str, timeout: Duration) -> Result<Pane> {
        let mut argv = vec![self.binary.to_string_lossy().into_owned()];
        argv.extend(self.args.iter().cloned());
        let pane = tmux.new_session(
            &SessionSpec::new(session, &self.cwd, argv).envs(self.env.iter().cloned()),
        )?;
        let deadline = Instant::now() + timeout;
        loop {
            let screen = tmux.capture(&pane)?;
            if codex_composer_ready(&screen) {
                return Ok(pane);
            }
            if Instant::now() >= deadline {
                bail!(
                    "Codex TUI did not show its composer within {timeout:?}; screen:\n{}",
                    trim_screen(&screen)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Whether a Codex 0.169.0 screen shows the idle composer (`› Ask Codex to do
/// anything` placeholder).
pub fn codex_composer_ready(screen: &str) -> bool {
    screen.contains("Ask Codex to do anything")
}
