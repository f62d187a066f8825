//! Seats from process facts: a seat is a pid plus its start time, so a
//! reused pid is a different seat. Built on [`oxtail_proto::process`], the
//! one process helper (Linux and macOS). These calls read the process
//! table: the daemon makes them off the core thread.

use crate::state::Seat;
use oxtail_proto::process::Inspector;
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

/// The seat for process `pid`: its pid and start time (seconds since the
/// epoch), or `None` when no such process exists.
pub fn seat_of(pid: u32) -> Option<Seat> {
    Inspector::new().facts(pid).map(|f| Seat {
        pid,
        start_time: f.start_time,
    })
}

/// Whether the process of `seat` is still the one that started at
/// `seat.start_time`, reusing `inspector`.
pub fn seat_alive_with(inspector: &mut Inspector, seat: &Seat) -> bool {
    inspector
        .facts(seat.pid)
        .is_some_and(|f| f.start_time == seat.start_time)
}

/// Whether the process of `seat` is still the one that started at
/// `seat.start_time`.
pub fn seat_alive(seat: &Seat) -> bool {
    seat_alive_with(&mut Inspector::new(), seat)
}

/// Whether process `pid` is a Codex app-server (`codex app-server …`, e.g.
/// the shared daemon `codex app-server --listen unix:// --managed-daemon`
/// that Codex 0.169 TUIs start by default). Such a process hosts the
/// threads of several TUIs and hooks run inside it, so it has no pane of
/// its own: the process tree above it leads to the TUI that happened to
/// start it, not to the agent's TUI (issue 15). False when the process is
/// gone or its command line cannot be read.
pub fn is_codex_app_server(pid: u32) -> bool {
    oxtail_proto::process::cmdline(pid).is_some_and(|argv| argv_is_codex_app_server(&argv))
}

/// Whether `argv` is a Codex app-server's: the program is `codex…` and one
/// of its arguments is `app-server`. Pure.
pub fn argv_is_codex_app_server(argv: &[String]) -> bool {
    let codex = argv.first().is_some_and(|a| {
        let name = a.rsplit('/').next().unwrap_or(a);
        name.starts_with("codex")
    });
    codex && argv.iter().skip(1).any(|a| a == "app-server")
}

/// The seat of a client process `pid`, for identity and pane binding: as
/// [`seat_of`], but `None` for a Codex app-server ([`is_codex_app_server`]).
/// In Codex's default daemon mode MCP servers and hooks run inside the one
/// shared app-server, which is nobody's seat: its threads belong to
/// different TUIs (bound later by [`crate::codex_app`]).
pub fn client_seat_of(pid: u32) -> Option<Seat> {
    if is_codex_app_server(pid) {
        return None;
    }
    seat_of(pid)
}

/// A running interactive Codex TUI process (the native `codex` binary, not
/// its node launcher, not `codex exec` or an app-server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexTuiProc {
    /// Its seat (pid and start time, seconds since the epoch).
    pub seat: Seat,
    /// Its working directory.
    pub cwd: String,
    /// The `CODEX_HOME` it uses (its `CODEX_HOME`, else `$HOME/.codex`).
    pub codex_home: Option<String>,
    /// Its `TMUX` variable (the tmux server hint), when set.
    pub tmux: Option<String>,
}

/// Codex subcommands that are not the interactive TUI.
const CODEX_NOT_TUI: &[&str] = &[
    "exec",
    "e",
    "app-server",
    "mcp-server",
    "mcp",
    "queue",
    "login",
    "logout",
    "apply",
    "a",
    "completion",
    "sandbox",
    "debug",
    "cloud",
    "features",
    "review",
];

/// Every running Codex TUI process of this user (one scan of the process
/// table).
pub fn codex_tuis() -> Vec<CodexTuiProc> {
    let Some(mut sys) = System::new().ok() else {
        return Vec::new();
    };
    sys.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing()
            .with_cmd(sysinfo::UpdateKind::Always)
            .with_cwd(sysinfo::UpdateKind::Always)
            .with_environ(sysinfo::UpdateKind::Always),
    );
    let mut out = Vec::new();
    for (pid, p) in sys.processes() {
        // Threads of a process are listed too on Linux; keep processes.
        if p.thread_kind().is_some() {
            continue;
        }
        let cmd = p.cmd();
        let Some(first) = cmd.first() else { continue };
        let name = std::path::Path::new(first)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name != "codex" {
            continue;
        }
        if cmd
            .iter()
            .skip(1)
            .any(|a| CODEX_NOT_TUI.contains(&a.to_string_lossy().as_ref()))
        {
            continue;
        }
        let env = |k: &str| {
            p.environ().iter().find_map(|kv| {
                let kv = kv.to_string_lossy();
                kv.strip_prefix(k)
                    .and_then(|r| r.strip_prefix('='))
                    .map(str::to_string)
            })
        };
        let Some(cwd) = p.cwd() else { continue };
        out.push(CodexTuiProc {
            seat: Seat {
                pid: pid.as_u32(),
                start_time: p.start_time(),
            },
            cwd: cwd.display().to_string(),
            codex_home: crate::codex_app::codex_home_of(
                env("CODEX_HOME").as_deref(),
                env("HOME").as_deref(),
            ),
            tmux: env("TMUX"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_codex_app_server_is_nobodys_seat() {
        // This test process is not a Codex app-server.
        let me = std::process::id();
        assert!(!is_codex_app_server(me));
        assert!(client_seat_of(me).is_some());
        // A process whose argv is `codex app-server …` is (argv[0] is what
        // counts; `exec -a` sets it).
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("bash")
            .args([
                "-c",
                "exec -a /x/codex bash -c 'sleep 30; :' app-server --listen unix://",
            ])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !is_codex_app_server(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let seen = is_codex_app_server(pid);
        let seat = client_seat_of(pid);
        // SAFETY: kill(2) on the process group of our own unreaped child
        // (it and its `sleep`).
        unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
        let _ = child.wait();
        assert!(seen);
        assert!(seat.is_none());
    }
}
