//! Drive real `oxtail` processes: an isolated instance (its own
//! `OXTAIL_HOME`, so its own daemon and socket), agents that are real shims
//! driven by rmcp's MCP client over stdio, and `oxtail ctl`.
//!
//! Every agent gets its own seat: the shim is started through a small `sh`
//! that stays alive as its parent, the way a client process hosts its MCP
//! servers. [`Instance::agent_same_seat`] starts a second shim under the
//! test process itself, for tests of several shims in one client.

use anyhow::{anyhow, bail, Context, Result};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A client handler that introduces itself with a chosen `clientInfo.name`
/// and counts the progress notifications it receives.
#[derive(Clone)]
pub struct NamedClient {
    name: String,
    progress: std::sync::Arc<std::sync::Mutex<Vec<rmcp::model::ProgressNotificationParam>>>,
}

impl ClientHandler for NamedClient {
    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    fn get_info(&self) -> ClientConfig {
        let mut c = ClientConfig::default();
        c.capabilities = ClientCapabilities::default();
        c.client_info = Implementation::new(self.name.clone(), "test");
        c
    }
}

/// An isolated oxtail instance: a temp state dir; its daemon starts on the
/// first connection and is shut down on drop.
pub struct Instance {
    /// The temp dir holding `home/` (OXTAIL_HOME) and `work/` (projects).
    pub dir: TempDir,
    bin: PathBuf,
    /// Extra environment for every process this instance starts (so the
    /// daemon, spawned by the first of them, sees it too).
    env: Vec<(String, String)>,
}

/// How to start an agent.
#[derive(Debug, Clone)]
pub struct AgentOpts {
    /// The agent's working directory.
    pub cwd: PathBuf,
    /// Extra environment (e.g. `CLAUDE_CODE_SESSION_ID`).
    pub env: Vec<(String, String)>,
    /// MCP `clientInfo.name` (`claude-code`, `codex-mcp-client`, …).
    pub client_name: String,
}

impl AgentOpts {
    /// A Claude Code-like agent with session id `id` working in `cwd`.
    pub fn claude(cwd: &Path, id: &str) -> AgentOpts {
        AgentOpts {
            cwd: cwd.to_path_buf(),
            env: vec![
                ("CLAUDE_CODE_SESSION_ID".into(), id.into()),
                ("CLAUDECODE".into(), "1".into()),
            ],
            client_name: "claude-code".into(),
        }
    }
}

/// One agent: a real shim process driven by an MCP client.
pub struct Agent {
    service: RunningService<RoleClient, NamedClient>,
    /// The shim's (or its `sh` host's) pid.
    pub pid: Option<u32>,
}

impl Agent {
    /// Calls `tool` and returns the raw MCP result.
    ///
    /// # Errors
    /// MCP-level errors (malformed arguments are these).
    pub async fn call_raw(
        &self,
        tool: &str,
        args: Value,
    ) -> Result<CallToolResult, rmcp::ServiceError> {
        let mut p = CallToolRequestParams::new(tool.to_string());
        if let Value::Object(m) = args {
            p = p.with_arguments(m);
        }
        self.service.call_tool(p).await
    }

    /// Calls `tool` with arguments that break its schema and returns the
    /// text of the answer, which CONTRACT §0 makes a tool result with
    /// `isError: true`, no structured content, and one text item starting
    /// `MCP error -32602: ` (then `Input validation error: Invalid
    /// arguments for tool <tool>: ` and the issue naming the field, or
    /// `Tool <tool> not found`).
    ///
    /// # Errors
    /// An MCP-level error, or any other answer (the tool ran).
    pub async fn schema_error(&self, tool: &str, args: Value) -> Result<String> {
        let r = self
            .call_raw(tool, args.clone())
            .await
            .with_context(|| format!("{tool}({args})"))?;
        let text = r
            .content
            .first()
            .and_then(|c| c.as_text())
            .map(|t| t.text.clone())
            .unwrap_or_default();
        if r.is_error != Some(true)
            || r.content.len() != 1
            || r.structured_content.is_some()
            || !text.starts_with("MCP error -32602: ")
        {
            bail!("{tool}({args}) was not a schema violation: {r:?}");
        }
        Ok(text)
    }

    /// Calls `tool` with `_meta` (as Codex sends it) and returns the
    /// structured result.
    ///
    /// # Errors
    /// MCP-level errors, or a result without structured content.
    pub async fn call_with_meta(&self, tool: &str, args: Value, meta: Value) -> Result<Value> {
        let mut p = CallToolRequestParams::new(tool.to_string());
        if let Value::Object(m) = args {
            p = p.with_arguments(m);
        }
        if let Value::Object(m) = meta {
            p.meta = Some(serde_json::from_value(Value::Object(m))?);
        }
        let r = self.service.call_tool(p).await?;
        structured(r)
    }

    /// Calls `tool` and returns its structured JSON result (`ok` may be
    /// false for errors the caller can act on).
    ///
    /// # Errors
    /// MCP-level errors, or a result without structured content.
    pub async fn call(&self, tool: &str, args: Value) -> Result<Value> {
        let r = self
            .call_raw(tool, args.clone())
            .await
            .with_context(|| format!("{tool}({args})"))?;
        structured(r)
    }

    /// Calls `tool` and insists on success: `ok: true`, or for the tools
    /// whose results have no `ok` (CONTRACT §1, §3, §6) no `error`.
    ///
    /// # Errors
    /// As [`Agent::call`], or when the result says `ok: false` or carries
    /// an `error`.
    pub async fn ok(&self, tool: &str, args: Value) -> Result<Value> {
        let v = self.call(tool, args.clone()).await?;
        let fine = match v.get("ok") {
            Some(ok) => *ok == json!(true),
            None => v.get("error").is_none_or(Value::is_null),
        };
        if !fine {
            bail!("{tool}({args}) was not ok: {v}");
        }
        Ok(v)
    }

    /// Waits until the sender's `message_status` of `message_id` says
    /// `delivered` (the receiver's client acked the hand-over, which
    /// happens just after its call returned), and returns that answer.
    ///
    /// # Errors
    /// When it is not delivered within 10 s (the last answer is named).
    pub async fn delivered(&self, message_id: &Value) -> Result<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let st = self
                .ok("message_status", json!({"message_id": message_id}))
                .await?;
            if st["status"] == "delivered" {
                return Ok(st);
            }
            if std::time::Instant::now() > deadline {
                bail!("{message_id} not delivered within 10 s: {st}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Progress notifications received so far (message texts).
    pub fn progress_messages(&self) -> Vec<String> {
        self.service
            .service()
            .progress
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.message.clone().unwrap_or_default())
            .collect()
    }

    /// Closes the client (the shim sees EOF on stdin and exits).
    pub async fn close(self) {
        let _ = self.service.cancel().await;
    }
}

fn structured(r: CallToolResult) -> Result<Value> {
    r.structured_content
        .ok_or_else(|| anyhow!("no structured content in {:?}", r.content))
}

impl Instance {
    /// A fresh instance using the `oxtail` binary at `bin`
    /// (`env!("CARGO_BIN_EXE_oxtail")` in integration tests).
    pub fn new(bin: &str) -> Instance {
        let dir = tempfile::Builder::new()
            .prefix("oxt")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        Instance {
            dir,
            bin: PathBuf::from(bin),
            env: Vec::new(),
        }
    }

    /// A fresh instance whose processes (and so its daemon) get `env`.
    pub fn with_env(bin: &str, env: &[(&str, &str)]) -> Instance {
        let mut i = Instance::new(bin);
        i.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        i
    }

    /// The instance's `OXTAIL_HOME`.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The oxtail binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// A directory under the instance's work area (created).
    pub fn workdir(&self, rel: &str) -> PathBuf {
        let p = self.dir.path().join("work").join(rel);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// A git repository under the work area with one commit on `main`.
    pub fn git_repo(&self, rel: &str) -> PathBuf {
        let p = self.workdir(rel);
        git(&p, &["init", "-q", "-b", "main"]);
        git(&p, &["commit", "-q", "--allow-empty", "-m", "init"]);
        p
    }

    /// A `std` command running this binary in this instance.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        self.isolate_std(&mut c);
        c
    }

    fn isolate_std(&self, c: &mut Command) {
        c.env("OXTAIL_HOME", self.home())
            .env_remove("OXTAIL_SOCKET")
            .env_remove("CLAUDE_CODE_SESSION_ID")
            .env_remove("CLAUDECODE")
            .env_remove("CODEX_THREAD_ID")
            .env_remove("TMUX_PANE")
            .env("OXTAIL_LOG", "info");
        for (k, v) in &self.env {
            c.env(k, v);
        }
    }

    /// Runs `oxtail ctl <args> --json` and parses the answer.
    ///
    /// # Errors
    /// When the command fails or prints no JSON.
    pub fn ctl(&self, args: &[&str]) -> Result<Value> {
        let out = self
            .command()
            .arg("ctl")
            .args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "oxtail ctl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Waits on the daemon's state instead of sleeping: polls `ctl stats`
    /// (every 10 ms) until `stat` equals `want` (e.g. `asks_in_flight` 1:
    /// the ask is registered; `idle_waiters` 1: the rewake hook is armed).
    ///
    /// # Errors
    /// After `timeout`, with the last stats; or when `ctl stats` fails.
    pub fn wait_stat(&self, stat: &str, want: u64, timeout: Duration) -> Result<Value> {
        let end = Instant::now() + timeout;
        loop {
            let stats = self.ctl(&["stats"])?;
            if stats[stat] == want {
                return Ok(stats);
            }
            if Instant::now() >= end {
                bail!("{stat} never reached {want} in {timeout:?}: {stats}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A raw protocol client on this instance's socket (for requests no MCP
    /// tool makes: idle-wait, marks).
    ///
    /// # Errors
    /// When no daemon answers.
    pub fn raw_client(&self, role: oxtail_proto::Role) -> Result<oxtail_proto::client::Client> {
        oxtail_proto::client::connect_at(
            &self.home().join("run/daemon.sock"),
            role,
            Duration::from_secs(5),
        )
        .map_err(|e| anyhow!("{e}"))
    }

    /// Sets `session`'s activity mark (`busy` or `idle`), as hooks do.
    ///
    /// # Errors
    /// When the daemon refuses.
    pub fn mark(&self, session: &str, state: &str) -> Result<()> {
        self.ctl(&["mark", session, state]).map(|_| ())
    }

    /// The running daemon's pid, if one answers.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.ctl(&["stats"]).ok()?["pid"].as_u64().map(|p| p as u32)
    }

    /// Starts an agent with its own seat.
    ///
    /// # Errors
    /// When the shim cannot be started or does not complete `initialize`.
    pub async fn agent(&self, opts: AgentOpts) -> Result<Agent> {
        // `; exit` keeps sh alive as the shim's parent (no exec of the last
        // command), so each agent has a seat of its own.
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg("\"$0\" mcp; exit $?").arg(&self.bin);
        self.start(cmd, opts).await
    }

    /// Starts an agent whose shim is a direct child of the test process,
    /// sharing the test process as its seat with every other such agent.
    ///
    /// # Errors
    /// As [`Instance::agent`].
    pub async fn agent_same_seat(&self, opts: AgentOpts) -> Result<Agent> {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.arg("mcp");
        self.start(cmd, opts).await
    }

    async fn start(&self, mut cmd: tokio::process::Command, opts: AgentOpts) -> Result<Agent> {
        cmd.env("OXTAIL_HOME", self.home())
            .env_remove("OXTAIL_SOCKET")
            .env_remove("CLAUDE_CODE_SESSION_ID")
            .env_remove("CLAUDECODE")
            .env_remove("CODEX_THREAD_ID")
            .env_remove("TMUX_PANE")
            .current_dir(&opts.cwd);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let transport = TokioChildProcess::builder(cmd)
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn shim")?
            .0;
        let pid = transport.id();
        let service = NamedClient {
            name: opts.client_name.clone(),
            progress: Default::default(),
        }
        .serve(transport)
        .await
        .context("MCP initialize")?;
        Ok(Agent { service, pid })
    }

    /// Kills the daemon with SIGKILL and waits until it is gone.
    ///
    /// # Errors
    /// When no daemon runs.
    pub fn kill_daemon(&self) -> Result<u32> {
        let pid = self.daemon_pid().ok_or_else(|| anyhow!("no daemon"))?;
        kill_pid(pid, libc::SIGKILL);
        wait_gone(pid, Duration::from_secs(5))?;
        Ok(pid)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid() {
            let _ = self.ctl(&["shutdown"]);
            if wait_gone(pid, Duration::from_secs(2)).is_err() {
                kill_pid(pid, libc::SIGKILL);
            }
        }
    }
}

/// Sends `sig` to `pid` (only processes this test started).
pub fn kill_pid(pid: u32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Whether `pid` exists (and is not a zombie).
///
/// A process counts as alive while any of its threads is: after SIGKILL the
/// main thread turns zombie first while the others are still exiting and
/// still hold the process's files (the daemon's locks and socket), so
/// checking only the main thread returns too early.
pub fn pid_alive(pid: u32) -> bool {
    let state = |stat: &str| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(|t| t.ok()).any(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|s| state(&s))
            .is_some_and(|c| c != 'Z' && c != 'X')
    })
}

/// Waits until `pid` is gone.
///
/// # Errors
/// When it is still alive after `timeout`.
pub fn wait_gone(pid: u32, timeout: Duration) -> Result<()> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if !pid_alive(pid) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("pid {pid} still alive after {timeout:?}")
}

/// Runs git in `dir` with a fixed identity.
///
/// # Panics
/// When git fails.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
