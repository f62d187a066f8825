//! A private tmux server for end-to-end tests of terminal clients (the Claude
//! Code and Codex TUIs) and of oxtail's keys wake.
//!
//! * [`TmuxServer::new`] picks a unique socket name `oxt-e2e-<pid>-<n>`
//!   (`tmux -L <name>`, so the user's own tmux server is never touched). The
//!   server starts with the first [`TmuxServer::new_session`] and is killed —
//!   by that name, never by a process pattern — when the value is dropped
//!   (its socket file removed too).
//! * Every tmux command runs with a cleared environment (only
//!   [`PASSTHROUGH_ENV`]) and `-f /dev/null`, so the server's global
//!   environment and options do not depend on the machine or on an outer tmux
//!   session; a pane's program gets exactly the variables passed to
//!   [`SessionSpec::env`] on top of those (tmux adds `TMUX` and `TMUX_PANE`).
//! * [`TmuxServer::capture`] / [`TmuxServer::wait_for`] read a pane's text
//!   (`capture-pane`, scrollback included) and poll it; [`ScreenWatch`]
//!   records every distinct screen of a pane on a background thread, so a test
//!   can assert that some text *never* appeared.
//! * [`start_claude_tui`] launches the real Claude Code TUI in a pane and
//!   waits for its prompt.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Variables the tmux server (and so every pane) inherits from the test
/// process; everything else is cleared.
pub const PASSTHROUGH_ENV: &[&str] = &["PATH", "USER", "LOGNAME", "SHELL", "TZ", "TMPDIR"];

/// Why [`tmux_or_skip`] skips (or, under `OXTAIL_E2E_REQUIRED=1`, fails).
pub const SKIP_MESSAGE: &str = "tmux is not installed (.ci/run installs it)";

/// Default pane size: wide enough that the TUIs do not wrap their prompt
/// lines (columns × rows).
pub const DEFAULT_SIZE: (u16, u16) = (200, 50);

/// How often [`TmuxServer::wait_for`] polls the pane.
const POLL: Duration = Duration::from_millis(100);

/// Whether a working `tmux` is on `PATH`.
pub fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// [`tmux_available`]; when it is false, [`crate::skip::skip_or_fail`]
/// with [`SKIP_MESSAGE`] (a failure under `OXTAIL_E2E_REQUIRED=1`).
///
/// # Panics
/// When tmux is missing and `OXTAIL_E2E_REQUIRED=1`.
#[track_caller]
pub fn tmux_or_skip() -> bool {
    let ok = tmux_available();
    if !ok {
        crate::skip::skip_or_fail(SKIP_MESSAGE);
    }
    ok
}

/// One tmux pane of a [`TmuxServer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pane {
    /// The pane id, `%N`.
    pub id: String,
    /// The tmux session the pane belongs to.
    pub session: String,
}

/// What to run in a new tmux session.
#[derive(Clone, Debug)]
pub struct SessionSpec {
    /// Session name (also the window's name unless [`SessionSpec::window`]).
    pub name: String,
    /// Window name; default: tmux's own (the program's name).
    pub window: Option<String>,
    /// The pane's working directory.
    pub cwd: PathBuf,
    /// Extra environment for the pane's program (`new-session -e`).
    pub env: Vec<(String, String)>,
    /// The program and its arguments, executed directly (no shell).
    pub argv: Vec<String>,
    /// Pane size in columns and rows; default [`DEFAULT_SIZE`].
    pub size: (u16, u16),
}

impl SessionSpec {
    /// Run `argv` in a session called `name`, in `cwd`.
    pub fn new<S: AsRef<str>>(
        name: impl Into<String>,
        cwd: impl Into<PathBuf>,
        argv: impl IntoIterator<Item = S>,
    ) -> Self {
        SessionSpec {
            name: name.into(),
            window: None,
            cwd: cwd.into(),
            env: Vec::new(),
            argv: argv.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            size: DEFAULT_SIZE,
        }
    }

    /// Add environment variables for the program.
    pub fn envs<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Name the window.
    pub fn window(mut self, name: impl Into<String>) -> Self {
        self.window = Some(name.into());
        self
    }
}

/// A tmux server on a private socket (`tmux -L oxt-e2e-<pid>-<n>`), killed on
/// drop.
#[derive(Debug)]
pub struct TmuxServer {
    name: String,
}

impl TmuxServer {
    /// A new, not yet started, server with a name unique to this process.
    pub fn new() -> TmuxServer {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        TmuxServer {
            name: format!(
                "oxt-e2e-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    /// The socket name (the `-L` argument).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `tmux -L <name> -f /dev/null` with a cleared environment (plus
    /// [`PASSTHROUGH_ENV`] and a UTF-8 locale, so the TUIs' box-drawing and
    /// prompt characters survive `capture-pane`).
    pub fn command(&self) -> Command {
        tmux_command(&self.name)
    }

    /// Run one tmux command and return its stdout.
    ///
    /// # Errors
    /// When tmux cannot be run or exits non-zero (stderr is in the error).
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<String> {
        let out = self.command().args(args).output().context("run tmux")?;
        if !out.status.success() {
            bail!(
                "tmux -L {} {:?} failed: {}",
                self.name,
                args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// [`TmuxServer::run`] for tests: the stdout with trailing whitespace
    /// trimmed.
    ///
    /// # Panics
    /// When tmux fails, with its stderr.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        match self.run(args) {
            Ok(out) => out.trim_end().to_owned(),
            Err(e) => panic!("{e:#}"),
        }
    }

    /// One tmux command's whole output, success or not (for probes such as
    /// `list-panes` on a server that may not be running).
    ///
    /// # Panics
    /// When tmux cannot be run at all.
    pub fn output(&self, args: &[&str]) -> std::process::Output {
        self.command().args(args).output().expect("tmux runs")
    }

    /// Start a detached session running `spec.argv` and return its pane.
    ///
    /// # Errors
    /// When tmux refuses (e.g. a duplicate session name).
    pub fn new_session(&self, spec: &SessionSpec) -> Result<Pane> {
        if spec.argv.is_empty() {
            bail!("SessionSpec::argv is empty");
        }
        let mut args: Vec<String> = vec![
            "new-session".into(),
            "-d".into(),
            "-P".into(),
            "-F".into(),
            "#{pane_id}".into(),
            "-s".into(),
            spec.name.clone(),
            "-x".into(),
            spec.size.0.to_string(),
            "-y".into(),
            spec.size.1.to_string(),
            "-c".into(),
            spec.cwd.to_string_lossy().into_owned(),
        ];
        if let Some(w) = &spec.window {
            args.extend(["-n".into(), w.clone()]);
        }
        for (k, v) in &spec.env {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
        args.extend(spec.argv.iter().cloned());
        let id = self.run(&args)?.trim().to_owned();
        if !(id.starts_with('%') && id[1..].bytes().all(|b| b.is_ascii_digit()) && id.len() > 1) {
            bail!("tmux printed no pane id for session {}: {id:?}", spec.name);
        }
        Ok(Pane {
            id,
            session: spec.name.clone(),
        })
    }

    /// The pane's text: the visible screen plus scrollback, wrapped lines
    /// joined (`capture-pane -p -J -S -`).
    ///
    /// # Errors
    /// When the pane no longer exists.
    pub fn capture(&self, pane: &Pane) -> Result<String> {
        capture_on(&self.name, pane)
    }

    /// Poll [`TmuxServer::capture`] until `pred` accepts the text; return that
    /// text.
    ///
    /// # Errors
    /// After `timeout`, with the last screen in the message; or when the pane
    /// is gone.
    pub fn wait_for(
        &self,
        pane: &Pane,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.capture(pane)?;
            if pred(&screen) {
                return Ok(screen);
            }
            if Instant::now() >= deadline {
                bail!(
                    "pane {} ({}) did not show {what} within {timeout:?}; screen:\n{}",
                    pane.id,
                    pane.session,
                    trim_screen(&screen)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Wait until the pane's text has not changed for `quiet` (a TUI done
    /// redrawing: spinners stopped, nothing streaming); return that text.
    ///
    /// # Errors
    /// When it keeps changing past `timeout`, or the pane is gone.
    pub fn wait_quiet(&self, pane: &Pane, quiet: Duration, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut last = self.capture(pane)?;
        let mut since = Instant::now();
        loop {
            std::thread::sleep(POLL);
            let screen = self.capture(pane)?;
            if screen != last {
                last = screen;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return Ok(last);
            }
            if Instant::now() >= deadline {
                bail!(
                    "pane {} never stayed unchanged for {quiet:?} within {timeout:?}; screen:\n{}",
                    pane.id,
                    trim_screen(&last)
                );
            }
        }
    }

    /// Type `text` literally (`send-keys -l`), without pressing Enter.
    ///
    /// # Errors
    /// When tmux fails.
    pub fn type_text(&self, pane: &Pane, text: &str) -> Result<()> {
        self.run(&["send-keys", "-t", &pane.id, "-l", text])
            .map(|_| ())
    }

    /// Press tmux keys by name (`Enter`, `Down`, `C-c`, …).
    ///
    /// # Errors
    /// When tmux fails.
    pub fn press(&self, pane: &Pane, keys: &[&str]) -> Result<()> {
        let mut args = vec!["send-keys", "-t", &pane.id];
        args.extend_from_slice(keys);
        self.run(&args).map(|_| ())
    }

    /// Type `text`, wait `pause`, press Enter: how a person submits a prompt.
    /// (Codex 0.169 turns an Enter that follows a typed burst within ~120 ms
    /// into a newline, so give it a few hundred ms.)
    ///
    /// # Errors
    /// When tmux fails.
    pub fn submit(&self, pane: &Pane, text: &str, pause: Duration) -> Result<()> {
        self.type_text(pane, text)?;
        std::thread::sleep(pause);
        self.press(pane, &["Enter"])
    }

    /// [`TmuxServer::submit`], then make sure the prompt was taken: while
    /// `pending(screen)` still holds a second after each Enter, press Enter
    /// again (at most three more times), and wait for `pending` to clear
    /// within `timeout`.
    ///
    /// Claude Code 2.1.329 reads a long text and an Enter that reach it in
    /// one read (it was busy: starting up, or starved of CPU) as a paste and
    /// leaves the text in its composer; a person would press Enter again.
    /// Use [`composer_line`] to write `pending`.
    ///
    /// # Errors
    /// When tmux fails or the text is still pending after `timeout`.
    pub fn submit_verified(
        &self,
        pane: &Pane,
        text: &str,
        pause: Duration,
        pending: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<()> {
        self.submit(pane, text, pause)?;
        let deadline = Instant::now() + timeout;
        let mut retries = 0;
        let mut last_enter = Instant::now();
        loop {
            let screen = self.capture(pane)?;
            if !pending(&screen) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "pane {}: {text:?} was not submitted within {timeout:?}; screen:\n{}",
                    pane.id,
                    trim_screen(&screen)
                );
            }
            if retries < 3 && last_enter.elapsed() >= Duration::from_secs(1) {
                self.press(pane, &["Enter"])?;
                retries += 1;
                last_enter = Instant::now();
            }
            std::thread::sleep(POLL);
        }
    }

    /// The pane's process id (`#{pane_pid}`: the program the session runs).
    ///
    /// # Errors
    /// When the pane is gone.
    pub fn pane_pid(&self, pane: &Pane) -> Result<u32> {
        let out = self.run(&["display-message", "-p", "-t", &pane.id, "#{pane_pid}"])?;
        out.trim()
            .parse()
            .with_context(|| format!("pane_pid of {}: {out:?}", pane.id))
    }

    /// The server's socket path (`#{socket_path}`), as it appears in the
    /// first field of the `TMUX` variable its panes get.
    ///
    /// # Errors
    /// When no server runs yet.
    pub fn socket_path(&self) -> Result<PathBuf> {
        let out = self.run(&["display-message", "-p", "#{socket_path}"])?;
        Ok(PathBuf::from(out.trim()))
    }

    /// Start recording every distinct screen of `pane`, every `interval`.
    pub fn watch(&self, pane: &Pane, interval: Duration) -> ScreenWatch {
        ScreenWatch::start(self.name.clone(), pane.clone(), interval)
    }

    /// Kill the server (`kill-server`; panes' programs get SIGHUP) and
    /// remove its socket file, which tmux 3.3 leaves behind.
    pub fn kill(&self) {
        let socket = self.socket_path().ok();
        let _ = self
            .command()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(path) =
            socket.filter(|p| p.file_name().is_some_and(|n| n == self.name.as_str()))
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Default for TmuxServer {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Records a pane's distinct screens on a background thread until stopped
/// (or dropped).
pub struct ScreenWatch {
    stop: Arc<AtomicBool>,
    screens: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ScreenWatch {
    fn start(server: String, pane: Pane, interval: Duration) -> ScreenWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let screens = Arc::new(Mutex::new(Vec::<String>::new()));
        let (s, out) = (stop.clone(), screens.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(screen) = capture_on(&server, &pane) {
                    let mut list = out.lock().unwrap_or_else(|e| e.into_inner());
                    if list.last() != Some(&screen) {
                        list.push(screen);
                    }
                }
                std::thread::sleep(interval);
            }
        });
        ScreenWatch {
            stop,
            screens,
            thread: Some(thread),
        }
    }

    /// The distinct screens seen so far, oldest first.
    pub fn screens(&self) -> Vec<String> {
        self.screens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The first recorded screen containing `needle`, if any.
    pub fn find(&self, needle: &str) -> Option<String> {
        self.screens().into_iter().find(|s| s.contains(needle))
    }

    /// Stop recording and return every distinct screen seen.
    pub fn stop(mut self) -> Vec<String> {
        self.halt();
        self.screens()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ScreenWatch {
    fn drop(&mut self) {
        self.halt();
    }
}

/// `tmux -L <name> -f /dev/null` with a cleared environment (see
/// [`TmuxServer::command`]).
fn tmux_command(name: &str) -> Command {
    let mut c = Command::new("tmux");
    c.env_clear();
    for key in PASSTHROUGH_ENV {
        if let Some(v) = std::env::var_os(key) {
            c.env(key, v);
        }
    }
    c.env("LANG", "C.UTF-8")
        .args(["-L", name, "-f", "/dev/null"])
        .stdin(Stdio::null());
    c
}

/// `capture-pane -p -J -S -` of `pane` on the server `name`.
fn capture_on(name: &str, pane: &Pane) -> Result<String> {
    let out = tmux_command(name)
        .args(["capture-pane", "-p", "-J", "-S", "-", "-t", &pane.id])
        .output()
        .context("run tmux capture-pane")?;
    if !out.status.success() {
        bail!(
            "tmux -L {name} capture-pane -t {} failed: {}",
            pane.id,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A screen with trailing blank lines and trailing spaces removed, for
/// assertion messages.
pub fn trim_screen(screen: &str) -> String {
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    let end = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    lines[..end]
        .iter()
        .filter(|l| !l.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// Launch the real Claude Code TUI (`claude --dangerously-skip-permissions`
/// plus `extra_args`) in a new session of `tmux`, working in `cwd`, and wait
/// until it shows its prompt. `env` is the client's environment (see
/// [`crate::claude::claude_env`]) plus whatever its MCP servers and hooks
/// need (e.g. `OXTAIL_HOME`).
///
/// Answers the first-start dialogs Claude Code 2.1.329 may still show with a
/// prepared [`crate::claude::ClaudeHome`]: the bypass-permissions warning
/// (Down, Enter: "Yes, I accept") and the folder trust prompt (Enter).
///
/// # Errors
/// When tmux fails or no prompt appears within `timeout`.
pub fn start_claude_tui(
    tmux: &TmuxServer,
    session: &str,
    claude: &Path,
    cwd: &Path,
    env: &[(String, String)],
    extra_args: &[&str],
    timeout: Duration,
) -> Result<Pane> {
    let mut argv = vec![
        claude.to_string_lossy().into_owned(),
        "--dangerously-skip-permissions".to_owned(),
    ];
    argv.extend(extra_args.iter().map(|a| (*a).to_owned()));
    let pane = tmux.new_session(&SessionSpec::new(session, cwd, argv).envs(env.iter().cloned()))?;
    let deadline = Instant::now() + timeout;
    let mut answered = Vec::new();
    loop {
        let screen = tmux.capture(&pane)?;
        if screen.contains("Yes, I accept") && !answered.contains(&"bypass") {
            tmux.press(&pane, &["Down"])?;
            std::thread::sleep(Duration::from_millis(200));
            tmux.press(&pane, &["Enter"])?;
            answered.push("bypass");
        } else if screen.contains("trust this folder") && !answered.contains(&"trust") {
            tmux.press(&pane, &["Enter"])?;
            answered.push("trust");
        } else if claude_prompt_ready(&screen) {
            return Ok(pane);
        }
        if Instant::now() >= deadline {
            bail!(
                "Claude Code TUI did not reach its prompt within {timeout:?}; screen:\n{}",
                trim_screen(&screen)
            );
        }
        std::thread::sleep(POLL);
    }
}

/// The text after the last line that starts with `marker` (the TUIs'
/// composer: `❯` in Claude Code 2.1.329, `›` in Codex 0.169.0; earlier
/// prompts stay above it in the transcript with the same marker), trimmed.
/// `None` when no line has the marker.
pub fn composer_line(screen: &str, marker: char) -> Option<String> {
    screen
        .lines()
        .rev()
        .find_map(|l| l.trim_start().strip_prefix(marker))
        .map(|rest| rest.trim().to_owned())
}

/// Whether a Claude Code 2.1.329 screen shows the prompt box ready for input
/// (the `❯` composer and the permission-mode footer).
pub fn claude_prompt_ready(screen: &str) -> bool {
    screen.lines().any(|l| l.trim_start().starts_with('❯'))
        && screen.contains("bypass permissions on")
}
