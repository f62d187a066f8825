//! `oxtail service install|uninstall|status` (SPEC §2, §6): run the daemon
//! under the user's service manager instead of starting it on demand.
//!
//! * Linux: a systemd **user** unit, `$XDG_CONFIG_HOME/systemd/user/oxtail.service`
//!   (`~/.config/systemd/user/oxtail.service`), enabled with
//!   `systemctl --user enable` and started at once.
//! * macOS: a launchd agent, `~/Library/LaunchAgents/dev.oxtail.daemon.plist`,
//!   loaded with `launchctl bootstrap gui/<uid>`.
//!
//! Both run `<absolute path of this binary> daemon --foreground` (which never
//! idles out) and restart it when it fails (systemd `Restart=on-failure`,
//! launchd `KeepAlive`). The templates are `packaging/systemd/oxtail.service`
//! and `packaging/launchd/dev.oxtail.daemon.plist`, embedded at build time.
//! Under systemd the daemon logs to the journal (rotated by journald:
//! `journalctl --user -u oxtail`); under launchd to `<state dir>/daemon.log`.
//! Every `OXTAIL_*` variable set when installing (`OXTAIL_HOME`,
//! `OXTAIL_SOCKET`, tunables, `OXTAIL_FEDERATION_URL` and the other
//! federation settings) is written into the unit, so the service's
//! daemon and the agents' shims agree on the state dir and socket; test-only
//! `OXTAIL_FAULT_*` variables and `OXTAIL_DAEMON_IDLE_EXIT_S` (meaningless
//! under `--foreground`) are left out. The daemon's log stays
//! `<state dir>/daemon.log`.
//!
//! When no service manager can be reached (no `systemctl`, or no user bus as
//! in containers and CI), `install` still writes the unit file and says that
//! it could not enable it and how to; `status` and `uninstall` say so too.
//! oxtail keeps working without a service: the first client starts the daemon
//! on demand.

use anyhow::{bail, Context as _};
use oxtail_proto::client::{connect_at, ConnectError};
use oxtail_proto::{paths, Ctl, Reply, Request, Role};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The systemd unit template (`packaging/systemd/oxtail.service`), with
/// `{{VERSION}}`, `{{EXEC}}` and `{{ENVIRONMENT}}` placeholders.
pub const SYSTEMD_TEMPLATE: &str = include_str!("../../packaging/systemd/oxtail.service");
/// The launchd agent template (`packaging/launchd/dev.oxtail.daemon.plist`),
/// with `{{VERSION}}`, `{{LABEL}}`, `{{EXEC}}`, `{{ENVIRONMENT}}` and
/// `{{LOG}}` placeholders.
pub const LAUNCHD_TEMPLATE: &str = include_str!("../../packaging/launchd/dev.oxtail.daemon.plist");
/// The systemd unit name.
pub const SYSTEMD_UNIT: &str = "oxtail.service";
/// The launchd job label (also the plist's file stem).
pub const LAUNCHD_LABEL: &str = "dev.oxtail.daemon";

/// Which service manager a platform uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// systemd user units (Linux).
    Systemd,
    /// launchd user agents (macOS).
    Launchd,
}

impl Manager {
    /// The manager of the platform this binary was built for: systemd on
    /// Linux, launchd on macOS, `None` elsewhere.
    pub fn for_this_platform() -> Option<Manager> {
        if cfg!(target_os = "macos") {
            Some(Manager::Launchd)
        } else if cfg!(target_os = "linux") {
            Some(Manager::Systemd)
        } else {
            None
        }
    }

    /// What a person calls this kind of service.
    pub fn describe(self) -> &'static str {
        match self {
            Manager::Systemd => "systemd user unit",
            Manager::Launchd => "launchd agent",
        }
    }

    /// Where the unit file goes, given the user's directories.
    pub fn unit_path(self, dirs: &Dirs) -> PathBuf {
        match self {
            Manager::Systemd => dirs.config.join("systemd").join("user").join(SYSTEMD_UNIT),
            Manager::Launchd => dirs
                .home
                .join("Library")
                .join("LaunchAgents")
                .join(format!("{LAUNCHD_LABEL}.plist")),
        }
    }
}

/// The user's home and configuration directories (`HOME`, and
/// `XDG_CONFIG_HOME` or `~/.config` on Linux), from the `directories` crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    /// The home directory.
    pub home: PathBuf,
    /// The configuration directory.
    pub config: PathBuf,
}

impl Dirs {
    /// The current user's directories.
    ///
    /// # Errors
    /// When no home directory can be found.
    pub fn from_env() -> anyhow::Result<Dirs> {
        let base = directories::BaseDirs::new()
            .context("cannot find your home directory (is HOME set?)")?;
        Ok(Dirs {
            home: base.home_dir().to_path_buf(),
            config: base.config_dir().to_path_buf(),
        })
    }
}

/// What a unit runs: the binary, its environment, where it logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitSpec {
    /// Absolute path of the `oxtail` binary.
    pub exe: PathBuf,
    /// Environment written into the unit, sorted by name.
    pub env: BTreeMap<String, String>,
    /// The daemon's log file (`<state dir>/daemon.log`); launchd only
    /// (systemd units log to the journal).
    pub log: PathBuf,
}

impl UnitSpec {
    /// The spec for this process: its own executable (symlinks resolved),
    /// the `OXTAIL_*` variables of its environment (see the crate docs;
    /// plus `PATH` for launchd, whose default PATH lacks Homebrew and
    /// `~/.cargo/bin`), and the state dir's log.
    ///
    /// Variables whose value holds a newline cannot be written into a unit;
    /// they are skipped and named in the returned warnings.
    ///
    /// # Errors
    /// When the executable's path cannot be found.
    pub fn for_this_process(manager: Manager) -> anyhow::Result<(UnitSpec, Vec<String>)> {
        let exe = std::env::current_exe().context("cannot find the path of this oxtail binary")?;
        let exe = exe.canonicalize().unwrap_or(exe);
        let mut warnings = Vec::new();
        let mut env = BTreeMap::new();
        for (k, v) in std::env::vars_os() {
            let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else {
                continue;
            };
            let wanted = (k.starts_with("OXTAIL_")
                && !k.starts_with("OXTAIL_FAULT_")
                && k != "OXTAIL_DAEMON_IDLE_EXIT_S")
                || (manager == Manager::Launchd && k == "PATH");
            if !wanted || v.is_empty() {
                continue;
            }
            if v.contains('\n') || v.contains('\r') {
                warnings.push(format!(
                    "{k} holds a line break and cannot go into the unit; it was left out"
                ));
                continue;
            }
            env.insert(k.to_string(), v.to_string());
        }
        // Federation (issue 16) carries message bodies off the machine: say
        // so when the unit would send them in the clear.
        if let Some(url) = env.get("OXTAIL_FEDERATION_URL") {
            if let Some(w) = oxtail_proto::status::federation_warning(
                url,
                env.contains_key("OXTAIL_FEDERATION_CREDS"),
            ) {
                warnings.push(w);
            }
        }
        Ok((
            UnitSpec {
                exe,
                env,
                log: paths::log_path(),
            },
            warnings,
        ))
    }
}

/// Quotes `s` as one systemd command-line word: double quotes, with `\` and
/// `"` backslash-escaped, `%` doubled (specifiers) and `$` doubled (variable
/// expansion), per systemd.service(5) "Command lines".
pub fn systemd_quote_exec(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Escapes `s` for XML text (`&`, `<`, `>`, `"`, `'`).
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders the unit file for `manager` from its embedded template.
///
/// # Errors
/// When a path is not UTF-8 or holds a line break (it could not be written
/// into the unit faithfully).
pub fn render(manager: Manager, spec: &UnitSpec) -> anyhow::Result<String> {
    let text = |p: &Path, what: &str| -> anyhow::Result<String> {
        let s = p
            .to_str()
            .with_context(|| format!("the {what} path {} is not UTF-8", p.display()))?;
        if s.contains('\n') || s.contains('\r') {
            bail!("the {what} path {s:?} holds a line break");
        }
        Ok(s.to_string())
    };
    let exe = text(&spec.exe, "oxtail binary")?;
    let log = text(&spec.log, "log file")?;
    let out = match manager {
        Manager::Systemd => {
            let mut env = String::new();
            for (k, v) in &spec.env {
                // Environment= takes C-style escapes and specifiers, but no
                // $-expansion.
                let esc = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('%', "%%");
                let _ = writeln!(env, "Environment=\"{k}={esc}\"");
            }
            SYSTEMD_TEMPLATE
                .replace("{{VERSION}}", oxtail_proto::VERSION)
                .replace("{{EXEC}}", &systemd_quote_exec(&exe))
                .replace("{{ENVIRONMENT}}", &env)
        }
        Manager::Launchd => {
            let mut env = String::new();
            for (k, v) in &spec.env {
                let _ = writeln!(
                    env,
                    "    <key>{}</key>\n    <string>{}</string>",
                    xml_escape(k),
                    xml_escape(v)
                );
            }
            LAUNCHD_TEMPLATE
                .replace("{{VERSION}}", oxtail_proto::VERSION)
                .replace("{{LABEL}}", LAUNCHD_LABEL)
                .replace("{{EXEC}}", &xml_escape(&exe))
                .replace("{{ENVIRONMENT}}", &env)
                .replace("{{LOG}}", &xml_escape(&log))
        }
    };
    Ok(out)
}

/// The program a unit file runs (the first word of systemd's `ExecStart=`,
/// or the first `ProgramArguments` string of a plist), unescaped.
pub fn installed_exec(manager: Manager, unit_text: &str) -> Option<String> {
    match manager {
        Manager::Systemd => {
            let line = unit_text
                .lines()
                .find_map(|l| l.trim().strip_prefix("ExecStart="))?;
            let mut out = String::new();
            let mut chars = line.chars().peekable();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => out.push(chars.next()?),
                        '"' => break,
                        c => out.push(c),
                    }
                }
            } else {
                out = line.split_whitespace().next()?.to_string();
            }
            Some(out.replace("%%", "%").replace("$$", "$"))
        }
        Manager::Launchd => {
            let after = unit_text.split("<key>ProgramArguments</key>").nth(1)?;
            let start = after.find("<string>")? + "<string>".len();
            let end = after[start..].find("</string>")? + start;
            Some(
                after[start..end]
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&"),
            )
        }
    }
}

/// Whether the service manager can be reached, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagerState {
    /// Which manager.
    pub kind: Manager,
    /// `systemctl --user` reached a user manager / `launchctl` reached the
    /// GUI domain.
    pub available: bool,
    /// A sentence: what was tried and what it answered.
    pub detail: String,
}

/// The result of running one external command.
struct Ran {
    found: bool,
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn first_error_line(&self) -> String {
        let s = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        s.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no output")
            .to_string()
    }
}

fn run_cmd(program: &str, args: &[&str]) -> Ran {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => Ran {
            found: true,
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Err(e) => Ran {
            found: e.kind() != io::ErrorKind::NotFound,
            ok: false,
            stdout: String::new(),
            stderr: e.to_string(),
        },
    }
}

fn systemctl(args: &[&str]) -> Ran {
    let mut all = vec!["--user"];
    all.extend_from_slice(args);
    run_cmd("systemctl", &all)
}

fn launchctl(args: &[&str]) -> Ran {
    run_cmd("launchctl", args)
}

fn gui_domain() -> String {
    format!("gui/{}", paths::uid())
}

/// Probes the service manager without changing anything
/// (`systemctl --user show-environment` / `launchctl print gui/<uid>`).
pub fn probe(manager: Manager) -> ManagerState {
    let (ran, what) = match manager {
        Manager::Systemd => (systemctl(&["show-environment"]), "systemctl --user"),
        Manager::Launchd => (launchctl(&["print", &gui_domain()]), "launchctl"),
    };
    let detail = if !ran.found {
        match manager {
            Manager::Systemd => {
                "systemctl is not installed (this system does not run systemd)".to_string()
            }
            Manager::Launchd => "launchctl is not installed".to_string(),
        }
    } else if ran.ok {
        match manager {
            Manager::Systemd => "systemctl --user reached your user service manager".to_string(),
            Manager::Launchd => format!("launchctl reached the {} domain", gui_domain()),
        }
    } else {
        match manager {
            Manager::Systemd => format!(
                "{what} cannot reach a user service manager ({}); this happens in containers, CI and sessions without a login (try `loginctl enable-linger $USER` and a fresh login)",
                ran.first_error_line()
            ),
            Manager::Launchd => format!(
                "{what} cannot reach the {} domain ({}); run this from a logged-in GUI session",
                gui_domain(),
                ran.first_error_line()
            ),
        }
    };
    ManagerState {
        kind: manager,
        available: ran.found && ran.ok,
        detail,
    }
}

/// What happened (or would happen, under `--dry-run`) to the unit file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileChange {
    /// There was none; it was written.
    Created,
    /// There was one with other content; it was replaced.
    Updated,
    /// It already had exactly this content.
    Unchanged,
    /// It was deleted.
    Removed,
    /// There was none to delete.
    Absent,
}

/// One step taken (or planned) against the service manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The command line, e.g. `systemctl --user enable oxtail.service`.
    pub command: String,
    /// `Some(true/false)` when it ran; `None` when only planned (dry run) or
    /// skipped.
    pub ok: Option<bool>,
    /// Its error output, or why it was skipped.
    pub detail: Option<String>,
}

/// What `install` / `uninstall` did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `install` or `uninstall`.
    pub action: &'static str,
    /// Nothing was changed; `file` and `steps` say what would be.
    pub dry_run: bool,
    /// The service manager.
    pub manager: ManagerState,
    /// The unit file.
    pub unit_path: PathBuf,
    /// What happened to it.
    pub file: FileChange,
    /// The program the unit runs (install only).
    pub exec: Option<PathBuf>,
    /// Environment written into the unit (install only).
    pub environment: BTreeMap<String, String>,
    /// Commands run against the manager, in order.
    pub steps: Vec<Step>,
    /// Whether the service is enabled afterwards (`None`: unknown, e.g. no
    /// manager or dry run).
    pub enabled: Option<bool>,
    /// Whether it is running afterwards (`None`: unknown).
    pub active: Option<bool>,
    /// Things a person should know.
    pub warnings: Vec<String>,
    /// Commands a person can run to finish the job by hand.
    pub next_steps: Vec<String>,
    /// The rendered unit (install only).
    pub unit_text: Option<String>,
}

/// The daemon behind the socket, as far as a read-only `ctl stats` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaemonState {
    /// Something answered on the socket.
    pub running: bool,
    /// The socket tried.
    pub socket: PathBuf,
    /// Its pid.
    pub pid: Option<u32>,
    /// Its version.
    pub version: Option<String>,
    /// It runs with `--foreground` (never idles out), as a service does.
    pub foreground: Option<bool>,
    /// Why it is not running or could not be asked.
    pub detail: Option<String>,
}

/// What `status` found.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The service manager.
    pub manager: ManagerState,
    /// The unit file.
    pub unit_path: PathBuf,
    /// The unit file exists.
    pub installed: bool,
    /// It has exactly what `install` would write now (same binary, same
    /// environment, same version); `None` when not installed.
    pub up_to_date: Option<bool>,
    /// The program it runs.
    pub installed_exec: Option<String>,
    /// That program exists.
    pub installed_exec_exists: Option<bool>,
    /// `systemctl --user is-enabled` (`enabled`, `disabled`, …) or
    /// `loaded`/`not loaded` for launchd; `None` without a manager.
    pub enabled: Option<String>,
    /// `systemctl --user is-active` (`active`, `inactive`, `failed`, …) or
    /// launchd's `state`; `None` without a manager.
    pub active: Option<String>,
    /// The service's main pid, when it runs.
    pub main_pid: Option<u32>,
    /// The daemon on the socket.
    pub daemon: DaemonState,
    /// What to do next, if anything.
    pub next_steps: Vec<String>,
}

fn manual_enable_steps(manager: Manager, unit: &Path) -> Vec<String> {
    match manager {
        Manager::Systemd => vec![
            "systemctl --user daemon-reload".into(),
            format!("systemctl --user enable --now {SYSTEMD_UNIT}"),
        ],
        Manager::Launchd => vec![format!(
            "launchctl bootstrap gui/$(id -u) {}",
            unit.display()
        )],
    }
}

fn manual_disable_steps(manager: Manager) -> Vec<String> {
    match manager {
        Manager::Systemd => vec![
            format!("systemctl --user disable --now {SYSTEMD_UNIT}"),
            "systemctl --user daemon-reload".into(),
        ],
        Manager::Launchd => vec![format!("launchctl bootout gui/$(id -u)/{LAUNCHD_LABEL}")],
    }
}

/// Writes `text` to `path` atomically, mode 0644, creating the directory
/// ([`oxtail_proto::fsutil::write_atomic`]).
fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    oxtail_proto::fsutil::write_atomic(path, text, oxtail_proto::fsutil::FileMode::Exactly(0o644))
}

/// Asks the daemon on the socket for `ctl stats`, without starting one.
pub fn daemon_state() -> DaemonState {
    let socket = paths::socket_path();
    let mut st = DaemonState {
        running: false,
        socket: socket.clone(),
        pid: None,
        version: None,
        foreground: None,
        detail: None,
    };
    let mut client = match connect_at(&socket, Role::Ctl, Duration::from_secs(2)) {
        Ok(c) => c,
        Err(ConnectError::NoDaemon(e)) => {
            st.detail = Some(match e.kind() {
                io::ErrorKind::NotFound => "no socket file".to_string(),
                io::ErrorKind::ConnectionRefused => {
                    "a stale socket file, nothing listens (the next daemon replaces it)".to_string()
                }
                _ => format!("cannot connect: {e}"),
            });
            return st;
        }
        Err(e) => {
            st.running = true;
            st.detail = Some(e.to_string());
            return st;
        }
    };
    st.running = true;
    st.pid = Some(client.welcome.daemon_pid);
    st.version = Some(client.welcome.version.clone());
    let _ = client.set_timeout(Some(Duration::from_secs(2)));
    match client.call(Request::Ctl(Ctl::Stats)) {
        Ok(Reply::Ok { value }) => {
            st.foreground = value.get("foreground").and_then(Value::as_bool);
        }
        Ok(Reply::Error { code, message }) => st.detail = Some(format!("{code}: {message}")),
        Err(e) => st.detail = Some(format!("stats failed: {e}")),
    }
    st
}

/// Asks an on-demand daemon (not `--foreground`) to snapshot and exit, so
/// the service's daemon can take the lock; waits up to 5 s for it to go.
/// Returns a step describing what happened, or `None` when there was none.
fn hand_over_on_demand_daemon() -> Option<Step> {
    let st = daemon_state();
    if !st.running || st.foreground != Some(false) {
        return None;
    }
    let command = format!(
        "oxtail ctl shutdown (on-demand daemon, pid {})",
        st.pid.unwrap_or(0)
    );
    let mut client = match connect_at(&st.socket, Role::Ctl, Duration::from_secs(2)) {
        Ok(c) => c,
        Err(e) => {
            return Some(Step {
                command,
                ok: Some(false),
                detail: Some(e.to_string()),
            })
        }
    };
    let _ = client.set_timeout(Some(Duration::from_secs(5)));
    let asked = client.call(Request::Ctl(Ctl::Shutdown));
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !daemon_state().running {
            return Some(Step {
                command,
                ok: Some(true),
                detail: None,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Step {
        command,
        ok: Some(false),
        detail: Some(match asked {
            Ok(_) => "it did not exit within 5 s".into(),
            Err(e) => e.to_string(),
        }),
    })
}

fn step(command: String, ran: &Ran) -> Step {
    Step {
        command,
        ok: Some(ran.ok),
        detail: (!ran.ok).then(|| ran.first_error_line()),
    }
}

fn planned(command: String) -> Step {
    Step {
        command,
        ok: None,
        detail: Some("dry run: not run".into()),
    }
}

/// Writes the unit for this binary and enables and starts it.
///
/// Idempotent: a second run with the same binary and environment leaves the
/// file untouched (`FileChange::Unchanged`) and only makes sure the service
/// is enabled and running. An on-demand daemon already running is asked to
/// shut down (it snapshots first) so the service's daemon takes over.
///
/// # Errors
/// When the unit cannot be rendered or written. A service manager that
/// cannot be reached is not an error: the report says so and how to enable
/// the unit by hand.
pub fn install(manager: Manager, dirs: &Dirs, dry_run: bool) -> anyhow::Result<Report> {
    let (spec, mut warnings) = UnitSpec::for_this_process(manager)?;
    let text = render(manager, &spec)?;
    let unit_path = manager.unit_path(dirs);
    let file = match std::fs::read_to_string(&unit_path) {
        Ok(old) if old == text => FileChange::Unchanged,
        Ok(_) => FileChange::Updated,
        Err(e) if e.kind() == io::ErrorKind::NotFound => FileChange::Created,
        Err(e) => return Err(e).with_context(|| format!("reading {}", unit_path.display())),
    };
    let mgr = probe(manager);
    let mut steps = Vec::new();
    let mut next_steps = Vec::new();
    let (mut enabled, mut active) = (None, None);
    if !dry_run {
        if file != FileChange::Unchanged {
            write_atomic(&unit_path, &text)
                .with_context(|| format!("writing {}", unit_path.display()))?;
        }
        // launchd opens the log before starting the daemon: the state dir
        // must exist.
        if manager == Manager::Launchd {
            if let Some(dir) = spec.log.parent() {
                paths::ensure_private_dir(dir)
                    .with_context(|| format!("creating the state dir {}", dir.display()))?;
            }
        }
    }
    if !mgr.available {
        warnings.push(format!(
            "the unit file {} but could not be enabled: {}",
            if dry_run {
                "would be written"
            } else {
                "was written"
            },
            mgr.detail
        ));
        next_steps = manual_enable_steps(manager, &unit_path);
        next_steps.push(
            "until then oxtail still works: the first agent starts the daemon on demand".into(),
        );
    } else {
        match manager {
            Manager::Systemd => {
                let plan = [
                    vec!["daemon-reload"],
                    vec!["enable", SYSTEMD_UNIT],
                    vec![
                        if file == FileChange::Unchanged {
                            "start"
                        } else {
                            "restart"
                        },
                        SYSTEMD_UNIT,
                    ],
                ];
                for (i, args) in plan.iter().enumerate() {
                    let cmd = format!("systemctl --user {}", args.join(" "));
                    if dry_run {
                        steps.push(planned(cmd));
                        continue;
                    }
                    if i == 2 {
                        // The service's daemon can only start once an
                        // on-demand daemon has released the lock.
                        if let Some(s) = hand_over_on_demand_daemon() {
                            steps.push(s);
                        }
                    }
                    let ran = systemctl(args);
                    steps.push(step(cmd, &ran));
                }
                if !dry_run {
                    enabled = Some(systemctl(&["is-enabled", SYSTEMD_UNIT]).ok);
                    active = Some(systemctl(&["is-active", SYSTEMD_UNIT]).ok);
                }
            }
            Manager::Launchd => {
                let domain = gui_domain();
                let target = format!("{domain}/{LAUNCHD_LABEL}");
                let path = unit_path.display().to_string();
                let bootout = format!("launchctl bootout {target}");
                let bootstrap = format!("launchctl bootstrap {domain} {path}");
                if dry_run {
                    steps.push(planned(bootout));
                    steps.push(planned(bootstrap));
                } else {
                    // Reload so launchd reads the new plist; a job that was
                    // not loaded makes bootout fail harmlessly.
                    let out = launchctl(&["bootout", &target]);
                    steps.push(Step {
                        command: bootout,
                        ok: Some(out.ok),
                        detail: (!out.ok).then(|| "not loaded before (fine)".into()),
                    });
                    if let Some(s) = hand_over_on_demand_daemon() {
                        steps.push(s);
                    }
                    let ran = launchctl(&["bootstrap", &domain, &path]);
                    steps.push(step(bootstrap, &ran));
                    let loaded = launchctl(&["print", &target]);
                    enabled = Some(loaded.ok);
                    active = Some(loaded.ok && loaded.stdout.contains("state = running"));
                }
            }
        }
        if steps
            .iter()
            .any(|s| s.ok == Some(false) && !s.command.contains("bootout"))
        {
            warnings.push("some service manager steps failed; see `steps`".into());
            next_steps = manual_enable_steps(manager, &unit_path);
        }
    }
    Ok(Report {
        action: "install",
        dry_run,
        manager: mgr,
        unit_path,
        file,
        exec: Some(spec.exe),
        environment: spec.env,
        steps,
        enabled,
        active,
        warnings,
        next_steps,
        unit_text: Some(text),
    })
}

/// The `default.target.wants` link `systemctl --user enable` creates.
fn systemd_wants_link(dirs: &Dirs) -> PathBuf {
    dirs.config
        .join("systemd")
        .join("user")
        .join("default.target.wants")
        .join(SYSTEMD_UNIT)
}

/// Stops and disables the service and removes the unit file. Idempotent:
/// with nothing installed it reports `FileChange::Absent` and succeeds.
///
/// Without a reachable manager the file (and systemd's `default.target.wants`
/// link to it, if `enable` made one earlier) is still removed, and the report
/// says what to run where a manager is reachable.
///
/// # Errors
/// When the unit file exists but cannot be removed.
pub fn uninstall(manager: Manager, dirs: &Dirs, dry_run: bool) -> anyhow::Result<Report> {
    let unit_path = manager.unit_path(dirs);
    let exists = unit_path.exists();
    let mgr = probe(manager);
    let mut steps = Vec::new();
    let mut warnings = Vec::new();
    let mut next_steps = Vec::new();
    if mgr.available {
        let cmds: Vec<Vec<String>> = match manager {
            Manager::Systemd => vec![vec!["disable".into(), "--now".into(), SYSTEMD_UNIT.into()]],
            Manager::Launchd => vec![vec![
                "bootout".into(),
                format!("{}/{LAUNCHD_LABEL}", gui_domain()),
            ]],
        };
        for args in cmds {
            let prog = match manager {
                Manager::Systemd => "systemctl --user",
                Manager::Launchd => "launchctl",
            };
            let cmd = format!("{prog} {}", args.join(" "));
            if dry_run {
                steps.push(planned(cmd));
                continue;
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let ran = match manager {
                Manager::Systemd => systemctl(&argv),
                Manager::Launchd => launchctl(&argv),
            };
            // Not loaded / not installed is fine for an uninstall.
            steps.push(Step {
                command: cmd,
                ok: Some(ran.ok),
                detail: (!ran.ok).then(|| ran.first_error_line()),
            });
        }
    } else if exists {
        warnings.push(format!(
            "the service could not be stopped or disabled: {}",
            mgr.detail
        ));
        next_steps = manual_disable_steps(manager);
    }
    let file = if exists {
        FileChange::Removed
    } else {
        FileChange::Absent
    };
    if !dry_run {
        if exists {
            std::fs::remove_file(&unit_path)
                .with_context(|| format!("removing {}", unit_path.display()))?;
        }
        if manager == Manager::Systemd {
            let link = systemd_wants_link(dirs);
            if let Ok(target) = std::fs::read_link(&link) {
                if target == unit_path || target.file_name() == unit_path.file_name() {
                    let _ = std::fs::remove_file(&link);
                }
            }
            if mgr.available {
                let ran = systemctl(&["daemon-reload"]);
                steps.push(step("systemctl --user daemon-reload".into(), &ran));
            }
        }
    } else if manager == Manager::Systemd && mgr.available {
        steps.push(planned("systemctl --user daemon-reload".into()));
    }
    Ok(Report {
        action: "uninstall",
        dry_run,
        manager: mgr,
        unit_path,
        file,
        exec: None,
        environment: BTreeMap::new(),
        steps,
        enabled: None,
        active: None,
        warnings,
        next_steps,
        unit_text: None,
    })
}

/// Reports the unit file, the manager's view of the service and the daemon
/// on the socket. Changes nothing and never starts a daemon.
///
/// # Errors
/// When the unit file exists but cannot be read, or this binary's unit
/// cannot be rendered for comparison.
pub fn status(manager: Manager, dirs: &Dirs) -> anyhow::Result<Status> {
    let unit_path = manager.unit_path(dirs);
    let current = match std::fs::read_to_string(&unit_path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", unit_path.display())),
    };
    let (spec, _) = UnitSpec::for_this_process(manager)?;
    let want = render(manager, &spec)?;
    let installed_exec = current.as_deref().and_then(|t| installed_exec(manager, t));
    let mgr = probe(manager);
    let (mut enabled, mut active, mut main_pid) = (None, None, None);
    if mgr.available {
        match manager {
            Manager::Systemd => {
                let word = |r: Ran| {
                    let s = r.stdout.trim();
                    (!s.is_empty()).then(|| s.to_string())
                };
                enabled = word(systemctl(&["is-enabled", SYSTEMD_UNIT]));
                active = word(systemctl(&["is-active", SYSTEMD_UNIT]));
                main_pid = systemctl(&["show", "-p", "MainPID", "--value", SYSTEMD_UNIT])
                    .stdout
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|p| *p != 0);
            }
            Manager::Launchd => {
                let r = launchctl(&["print", &format!("{}/{LAUNCHD_LABEL}", gui_domain())]);
                enabled = Some(if r.ok { "loaded" } else { "not loaded" }.into());
                if r.ok {
                    active = r
                        .stdout
                        .lines()
                        .find_map(|l| l.trim().strip_prefix("state = "))
                        .map(str::to_string);
                    main_pid = r
                        .stdout
                        .lines()
                        .find_map(|l| l.trim().strip_prefix("pid = "))
                        .and_then(|p| p.parse().ok());
                }
            }
        }
    }
    let daemon = daemon_state();
    let mut next_steps = Vec::new();
    match (&current, mgr.available) {
        (None, _) => next_steps.push(
            "not installed: `oxtail service install` runs the daemon as a service (optional; without it the first agent starts the daemon on demand)".into(),
        ),
        (Some(t), _) if *t != want => next_steps.push(
            "the installed unit differs from what this binary would write (another binary, version or environment): run `oxtail service install` to update it".into(),
        ),
        (Some(_), false) => {
            next_steps.push("installed but not enabled here (no service manager); from a session where one is reachable, run:".into());
            next_steps.extend(manual_enable_steps(manager, &unit_path));
        }
        _ => {}
    }
    if daemon.running && daemon.foreground == Some(false) && current.is_some() && mgr.available {
        next_steps.push(
            "an on-demand daemon holds the state dir; the service's daemon takes over once it exits (or run `oxtail service install` again to hand over now)".into(),
        );
    }
    Ok(Status {
        manager: mgr,
        installed: current.is_some(),
        up_to_date: current.as_ref().map(|t| *t == want),
        installed_exec_exists: installed_exec.as_ref().map(|p| Path::new(p).exists()),
        installed_exec,
        unit_path,
        enabled,
        active,
        main_pid,
        daemon,
        next_steps,
    })
}

/// `oxtail service …` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = SERVICE_HELP)]
pub struct ServiceArgs {
    #[command(subcommand)]
    action: Action,
    /// Show what would change; write and run nothing.
    #[arg(long, global = true)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long, global = true)]
    json: bool,
}

const SERVICE_HELP: &str = "\
The service runs `<this binary> daemon --foreground`: it never idles out and is
restarted when it fails. Without a service the first agent starts the daemon on
demand, which works as well; a service keeps it warm and restarts it.

Files:
  Linux  ~/.config/systemd/user/oxtail.service  (systemctl --user; $XDG_CONFIG_HOME honoured)
  macOS  ~/Library/LaunchAgents/dev.oxtail.daemon.plist  (launchctl, gui/<uid>)

OXTAIL_* variables set now (OXTAIL_HOME, OXTAIL_SOCKET, tunables, and the
federation settings OXTAIL_FEDERATION_URL / _CREDS / _PROJECT) are written into
the unit, so run install from the same environment your agents use.

Examples:
  oxtail service install --dry-run   print the unit and the steps, change nothing
  oxtail service install             write, enable and start it
  oxtail service status --json       unit file, manager, daemon, as JSON
  oxtail service uninstall           stop, disable and remove it";

#[derive(clap::Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Write the unit for this binary, enable it and start it (idempotent).
    Install,
    /// Stop and disable the service and remove its unit (idempotent).
    Uninstall,
    /// Show the unit file, the service manager's view and the running daemon.
    Status,
}

/// Runs `oxtail service …`, printing a report for a person (or JSON).
///
/// # Errors
/// On an unsupported platform, or when a unit file cannot be read, written
/// or removed. An unreachable service manager is reported, not an error.
pub fn run(args: ServiceArgs) -> anyhow::Result<()> {
    let Some(manager) = Manager::for_this_platform() else {
        bail!("oxtail service supports systemd (Linux) and launchd (macOS); elsewhere, run `oxtail daemon --foreground` under your service manager");
    };
    let dirs = Dirs::from_env()?;
    match args.action {
        Action::Install | Action::Uninstall => {
            let report = if args.action == Action::Install {
                install(manager, &dirs, args.dry_run)?
            } else {
                uninstall(manager, &dirs, args.dry_run)?
            };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", human_report(&report));
                for w in &report.warnings {
                    eprintln!("warning: {w}");
                }
            }
        }
        Action::Status => {
            let st = status(manager, &dirs)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print!("{}", human_status(&st));
            }
        }
    }
    Ok(())
}

fn change_word(c: FileChange, dry_run: bool) -> &'static str {
    match (c, dry_run) {
        (FileChange::Created, false) => "created",
        (FileChange::Created, true) => "would be created",
        (FileChange::Updated, false) => "updated",
        (FileChange::Updated, true) => "would be updated",
        (FileChange::Unchanged, _) => "unchanged",
        (FileChange::Removed, false) => "removed",
        (FileChange::Removed, true) => "would be removed",
        (FileChange::Absent, _) => "not installed; nothing to remove",
    }
}

/// The text `oxtail service install|uninstall` prints for a person.
pub fn human_report(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "oxtail service {}{} ({})",
        r.action,
        if r.dry_run { " --dry-run" } else { "" },
        r.manager.kind.describe()
    );
    let _ = writeln!(
        s,
        "  unit file  {} ({})",
        r.unit_path.display(),
        change_word(r.file, r.dry_run)
    );
    if let Some(exe) = &r.exec {
        let _ = writeln!(s, "  runs       {} daemon --foreground", exe.display());
    }
    for (k, v) in &r.environment {
        let _ = writeln!(s, "  env        {k}={v}");
    }
    let _ = writeln!(
        s,
        "  manager    {}",
        if r.manager.available {
            r.manager.detail.clone()
        } else {
            format!("NOT AVAILABLE: {}", r.manager.detail)
        }
    );
    for st in &r.steps {
        let mark = match st.ok {
            Some(true) => "ok    ",
            Some(false) => "FAILED",
            None => "plan  ",
        };
        let _ = write!(s, "  {mark}     {}", st.command);
        if let (Some(d), Some(false)) = (&st.detail, st.ok) {
            let _ = write!(s, ": {d}");
        }
        s.push('\n');
    }
    if let Some(e) = r.enabled {
        let _ = writeln!(s, "  enabled    {}", if e { "yes" } else { "no" });
    }
    if let Some(a) = r.active {
        let _ = writeln!(s, "  running    {}", if a { "yes" } else { "no" });
    }
    if r.dry_run {
        if let Some(t) = &r.unit_text {
            let _ = writeln!(s, "\n--- {} ---\n{t}", r.unit_path.display());
        }
    }
    if !r.next_steps.is_empty() {
        let _ = writeln!(s, "To finish by hand:");
        for n in &r.next_steps {
            let _ = writeln!(s, "  {n}");
        }
    }
    s
}

/// The text `oxtail service status` prints for a person.
pub fn human_status(st: &Status) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "service    {}", st.manager.kind.describe());
    let unit = match (st.installed, st.up_to_date) {
        (false, _) => "not installed".to_string(),
        (true, Some(true)) => "installed, up to date".to_string(),
        _ => "installed, OUT OF DATE (run `oxtail service install`)".to_string(),
    };
    let _ = writeln!(s, "unit file  {} ({unit})", st.unit_path.display());
    if let Some(exe) = &st.installed_exec {
        let _ = writeln!(
            s,
            "runs       {exe}{}",
            if st.installed_exec_exists == Some(false) {
                " (MISSING: that binary no longer exists)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        s,
        "manager    {}",
        if st.manager.available {
            st.manager.detail.clone()
        } else {
            format!("NOT AVAILABLE: {}", st.manager.detail)
        }
    );
    if st.manager.available {
        let _ = writeln!(
            s,
            "enabled    {}",
            st.enabled.as_deref().unwrap_or("unknown")
        );
        let _ = writeln!(
            s,
            "active     {}{}",
            st.active.as_deref().unwrap_or("unknown"),
            st.main_pid
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default()
        );
    } else {
        let _ = writeln!(s, "enabled    unknown (no service manager)");
        let _ = writeln!(s, "active     unknown (no service manager)");
    }
    let d = &st.daemon;
    let daemon = if !d.running {
        format!(
            "not running ({})",
            d.detail.as_deref().unwrap_or("no answer")
        )
    } else {
        let how = match (d.foreground, st.main_pid, d.pid) {
            (_, Some(m), Some(p)) if m == p => "run by the service manager",
            (Some(true), _, _) => "running with --foreground",
            (Some(false), _, _) => "started on demand by a client",
            _ => "running",
        };
        let mut t = format!(
            "pid {} version {}, {how}",
            d.pid.map(|p| p.to_string()).unwrap_or("?".into()),
            d.version.as_deref().unwrap_or("?")
        );
        if let Some(det) = &d.detail {
            let _ = write!(t, " ({det})");
        }
        t
    };
    let _ = writeln!(s, "daemon     {daemon} [{}]", d.socket.display());
    let _ = writeln!(
        s,
        "logs       {}",
        match st.manager.kind {
            Manager::Systemd if st.installed => format!(
                "journalctl --user -u oxtail (service); {} (started on demand)",
                paths::log_path().display()
            ),
            _ => paths::log_path().display().to_string(),
        }
    );
    for n in &st.next_steps {
        let _ = writeln!(s, "next       {n}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(exe: &str) -> UnitSpec {
        UnitSpec {
            exe: PathBuf::from(exe),
            env: BTreeMap::from([
                (
                    "OXTAIL_HOME".to_string(),
                    "/home/u/a b/100%\"x\"".to_string(),
                ),
                ("OXTAIL_LOG".to_string(), "debug".to_string()),
            ]),
            log: PathBuf::from("/home/u/.local/share/oxtail/daemon.log"),
        }
    }

    #[test]
    fn systemd_unit_quotes_the_binary_and_keeps_every_directive() {
        let t = render(Manager::Systemd, &spec("/opt/my tools/ox$tail%1")).unwrap();
        assert!(
            t.contains("ExecStart=\"/opt/my tools/ox$$tail%%1\" daemon --foreground\n"),
            "{t}"
        );
        assert!(t.contains("\nRestart=on-failure\n"), "{t}");
        assert!(t.contains("\nWantedBy=default.target\n"), "{t}");
        assert!(
            t.contains("Environment=\"OXTAIL_HOME=/home/u/a b/100%%\\\"x\\\"\"\n"),
            "{t}"
        );
        assert!(t.contains("Environment=\"OXTAIL_LOG=debug\"\n# Logs go to the journal"));
        assert!(!t.contains("StandardOutput"), "systemd logs to the journal");
        assert!(!t.contains("{{"), "every placeholder is filled: {t}");
        assert_eq!(
            installed_exec(Manager::Systemd, &t).as_deref(),
            Some("/opt/my tools/ox$tail%1")
        );
    }

    #[test]
    fn launchd_plist_escapes_xml_and_keeps_keepalive() {
        let t = render(Manager::Launchd, &spec("/Users/a&b/<oxtail>")).unwrap();
        assert!(
            t.contains("<string>/Users/a&amp;b/&lt;oxtail&gt;</string>"),
            "{t}"
        );
        assert!(t.contains("<key>KeepAlive</key>\n  <true/>"), "{t}");
        assert!(t.contains(&format!("<string>{LAUNCHD_LABEL}</string>")));
        assert!(
            t.contains(
                "<key>OXTAIL_HOME</key>\n    <string>/home/u/a b/100%&quot;x&quot;</string>"
            ),
            "{t}"
        );
        assert!(!t.contains("{{"), "{t}");
        assert_eq!(
            installed_exec(Manager::Launchd, &t).as_deref(),
            Some("/Users/a&b/<oxtail>")
        );
    }

    /// A real plist parser (Python's plistlib) reads the rendered agent back
    /// with the intended values; skipped when python3 is missing.
    #[test]
    fn launchd_plist_parses_with_a_real_plist_reader() {
        let t = render(Manager::Launchd, &spec("/Users/a&b/<oxtail>")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.plist");
        std::fs::write(&p, &t).unwrap();
        let script =
            "import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))))";
        let out = match Command::new("python3")
            .args(["-c", script])
            .arg(&p)
            .output()
        {
            Ok(o) => o,
            Err(_) => {
                eprintln!("skipped: python3 is not installed");
                return;
            }
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Label"], LAUNCHD_LABEL);
        assert_eq!(
            v["ProgramArguments"],
            serde_json::json!(["/Users/a&b/<oxtail>", "daemon", "--foreground"])
        );
        assert_eq!(v["KeepAlive"], true);
        assert_eq!(v["RunAtLoad"], true);
        assert_eq!(
            v["EnvironmentVariables"]["OXTAIL_HOME"],
            "/home/u/a b/100%\"x\""
        );
        assert_eq!(
            v["StandardErrorPath"],
            "/home/u/.local/share/oxtail/daemon.log"
        );
    }

    #[test]
    fn a_path_with_a_line_break_is_refused() {
        let e = render(Manager::Systemd, &spec("/tmp/a\nExecStartPre=/bin/evil")).unwrap_err();
        assert!(e.to_string().contains("line break"), "{e}");
    }

    #[test]
    fn unit_paths_follow_the_platform_conventions() {
        let d = Dirs {
            home: PathBuf::from("/home/u"),
            config: PathBuf::from("/home/u/.config"),
        };
        assert_eq!(
            Manager::Systemd.unit_path(&d),
            PathBuf::from("/home/u/.config/systemd/user/oxtail.service")
        );
        assert_eq!(
            Manager::Launchd.unit_path(&d),
            PathBuf::from("/home/u/Library/LaunchAgents/dev.oxtail.daemon.plist")
        );
    }
}
