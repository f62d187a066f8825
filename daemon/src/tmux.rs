//! tmux at the edge: find the pane that the live process tree says hosts a
//! seat, and type into it.
//!
//! Keystrokes only ever go to a pane whose `pane_pid` is the seat process or
//! one of its ancestors — never to a pane id an agent reported about itself —
//! and pane ids are shape-checked (`%N`) before use.

use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

/// The default time limit of one tmux command (`OXTAIL_TMUX_TIMEOUT_MS`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// One tmux pane.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pane {
    /// `%N`.
    pub id: String,
    /// The pane's process (usually a shell, or the client itself).
    pub pid: u32,
    /// The tmux session name.
    pub session: String,
    /// The window index.
    pub window: String,
    /// The tmux server socket this pane lives on.
    pub socket: Option<PathBuf>,
    /// The window name.
    pub window_name: String,
    /// `pane_current_command`.
    pub command: String,
    /// `pane_current_path`.
    pub cwd: String,
    /// The pane index within its window (`#{pane_index}`).
    pub index: String,
    /// The agent name a fleet gave the pane (`@oxtail_agent`), if any.
    pub label: Option<String>,
    /// Its session's facts, as CONTRACT §1 lists them.
    pub session_facts: SessionFacts,
}

/// What tmux says of a pane's session (`#{session_path}`,
/// `#{session_attached}`, `#{session_created}`, `#{session_windows}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SessionFacts {
    /// The session's start directory.
    pub path: String,
    /// Whether a client is attached to it.
    pub attached: bool,
    /// When it was created, Unix seconds.
    pub created_at: Option<u64>,
    /// How many windows it has.
    pub windows: Option<u64>,
}

/// True for a pane id of the shape `%N`.
pub fn valid_pane_id(id: &str) -> bool {
    id.len() > 1 && id.starts_with('%') && id[1..].bytes().all(|b| b.is_ascii_digit())
}

/// The server socket from a `TMUX` environment value
/// (`/tmp/tmux-1000/default,1234,0`).
pub fn socket_from_env(tmux: &str) -> Option<PathBuf> {
    let path = tmux.split(',').next()?;
    (!path.is_empty()).then(|| PathBuf::from(path))
}

fn tmux(socket: Option<&Path>) -> Command {
    let mut c = Command::new("tmux");
    // The daemon may have inherited a TMUX from whichever shim started it;
    // never let that choose the server.
    c.env_remove("TMUX");
    if let Some(s) = socket {
        c.arg("-S").arg(s);
    }
    c
}

/// Runs `cmd` (stdin from /dev/null, output captured) in a process group
/// of its own and waits at most `limit`. A command still running then is
/// killed, with every process of its group, and reaped.
///
/// # Errors
/// `TimedOut` past the limit; otherwise when the command cannot start.
pub fn output_within(mut cmd: Command, limit: Duration) -> io::Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    // Read on a thread so a full pipe cannot stall the child, and a child
    // that hangs cannot stall us.
    let reader = std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        if let Some(s) = out.as_mut() {
            let _ = s.read_to_end(&mut o);
        }
        if let Some(s) = err.as_mut() {
            let _ = s.read_to_end(&mut e);
        }
        (o, e)
    });
    match child.wait_timeout(limit)? {
        Some(status) => {
            let (stdout, stderr) = reader.join().unwrap_or_default();
            Ok(Output {
                status,
                stdout,
                stderr,
            })
        }
        None => {
            // SAFETY: signals the process group we created for the child
            // (pgid = its pid), and nothing else.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "tmux gave no answer within {} ms; killed",
                    limit.as_millis()
                ),
            ))
        }
    }
}

/// Every pane of the server at `socket` (the default server when `None`),
/// waiting at most `limit` for tmux.
///
/// # Errors
/// When tmux is not installed, no server runs there, or it does not answer
/// within `limit` (`TimedOut`; the tmux client is killed).
pub fn list_panes(socket: Option<&Path>, limit: Duration) -> io::Result<Vec<Pane>> {
    let mut cmd = tmux(socket);
    cmd.args([
            "list-panes",
            "-a",
            "-F",
            "#{pane_id}\t#{pane_pid}\t#{session_name}\t#{window_index}\t#{window_name}\t#{pane_current_command}\t#{pane_current_path}\t#{socket_path}\t#{pane_index}\t#{@oxtail_agent}\t#{session_path}\t#{session_attached}\t#{session_created}\t#{session_windows}",
        ]);
    let out = output_within(cmd, limit)?;
    if !out.status.success() {
        return Err(io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let id = f.next()?.to_string();
            let pid = f.next()?.parse().ok()?;
            Some(Pane {
                id,
                pid,
                session: f.next()?.to_string(),
                window: f.next()?.to_string(),
                window_name: f.next().unwrap_or_default().to_string(),
                command: f.next().unwrap_or_default().to_string(),
                cwd: f.next().unwrap_or_default().to_string(),
                // The server's own socket path, so later commands reach the
                // same server whatever the environment says.
                socket: f
                    .next()
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| socket.map(Path::to_path_buf)),
                index: f.next().unwrap_or_default().to_string(),
                label: f.next().filter(|s| !s.is_empty()).map(str::to_string),
                session_facts: SessionFacts {
                    path: f.next().unwrap_or_default().to_string(),
                    attached: f.next().is_some_and(|a| a.trim() != "0" && !a.is_empty()),
                    created_at: f.next().and_then(|c| c.trim().parse().ok()),
                    windows: f.next().and_then(|w| w.trim().parse().ok()),
                },
            })
        })
        .filter(|p| valid_pane_id(&p.id))
        .collect())
}

/// The pane among `panes` whose process is `seat_pid` or its nearest
/// ancestor (a pane running the client beats the pane of an outer shell).
///
/// A seat at or under a Codex app-server has no pane: that server hosts
/// several TUIs' threads, and the tree above it leads only to the TUI that
/// started it (see [`crate::procinfo::is_codex_app_server`]).
pub fn match_seat(seat_pid: u32, panes: &[Pane]) -> Option<&Pane> {
    let chain = oxtail_proto::process::ancestry(seat_pid);
    match_chain(
        until_codex_app_server(&chain, crate::procinfo::is_codex_app_server),
        panes,
    )
}

/// `chain` (a pid and its ancestors, nearest first) up to and including the
/// first Codex app-server: above it is the TUI that happened to start the
/// shared server, not this agent's (issue 15). Every pane binding walks
/// only this much of a seat's ancestry.
pub fn until_codex_app_server(chain: &[u32], mut is_app_server: impl FnMut(u32) -> bool) -> &[u32] {
    let end = chain
        .iter()
        .position(|p| is_app_server(*p))
        .map_or(chain.len(), |i| i + 1);
    &chain[..end]
}

/// The pane among `panes` whose process comes first in `chain` (a seat pid
/// and its ancestors, nearest first, from
/// [`oxtail_proto::process::Inspector::ancestry`]). Pure.
pub fn match_chain<'a>(chain: &[u32], panes: &'a [Pane]) -> Option<&'a Pane> {
    chain
        .iter()
        .find_map(|pid| panes.iter().find(|p| p.pid == *pid))
}

/// The composer line of a TUI screen: the text after the last line that
/// starts with the prompt marker (`❯` in Claude Code 2.1.329, `›` in Codex
/// 0.169.0; earlier prompts stay above it in the transcript with the same
/// marker). `None` when no line has a marker.
pub fn composer_line(screen: &str) -> Option<&str> {
    screen.lines().rev().find_map(|l| {
        let t = l.trim_start();
        t.strip_prefix('❯')
            .or_else(|| t.strip_prefix('›'))
            .map(str::trim)
    })
}

/// The visible text of `pane`, waiting at most `limit` for tmux.
///
/// # Errors
/// When tmux fails or does not answer within `limit`.
pub fn capture(pane: &Pane, limit: Duration) -> io::Result<String> {
    let mut cmd = tmux(pane.socket.as_deref());
    cmd.args(["capture-pane", "-p", "-t", &pane.id]);
    let out = output_within(cmd, limit)?;
    if !out.status.success() {
        return Err(io::Error::other("capture-pane failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Types a wake line into `pane`, presses Enter after `enter_delay`, then
/// makes sure it was submitted: a TUI busy when the keys arrive (a turn just
/// ending, a starting session, a loaded machine) can take text and Enter as
/// one paste and leave the line sitting in its composer (seen with Claude Code
/// 2.1.329). So up to `retries` times, `check_after` later, if the composer
/// still holds the start of `text`, press Enter again. Each tmux command
/// waits at most `limit`.
///
/// # Errors
/// As [`send_keys`].
pub fn send_wake(
    pane: &Pane,
    text: &str,
    enter_delay: Duration,
    check_after: Duration,
    retries: u32,
    limit: Duration,
) -> io::Result<()> {
    send_keys(pane, text, enter_delay, limit)?;
    let probe: String = text.chars().take(24).collect();
    for _ in 0..retries {
        std::thread::sleep(check_after);
        let screen = capture(pane, limit)?;
        match composer_line(&screen) {
            Some(line) if line.contains(&probe) => {
                tracing::info!(pane = %pane.id, "wake line still in the composer; pressing Enter again");
                let mut cmd = tmux(pane.socket.as_deref());
                cmd.args(["send-keys", "-t", &pane.id, "Enter"]);
                if !output_within(cmd, limit)?.status.success() {
                    return Err(io::Error::other("tmux send-keys Enter failed"));
                }
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// Types `text` into `pane` and presses Enter after `enter_delay`. Codex's
/// composer turns an Enter within ~120 ms of a typed burst into a newline
/// (Codex 0.169), and Claude Code can swallow an Enter that arrives with the
/// text as one paste, so both get a pause. Each tmux command waits at most
/// `limit`.
///
/// # Errors
/// When the pane id is malformed, tmux fails or does not answer in time.
pub fn send_keys(
    pane: &Pane,
    text: &str,
    enter_delay: Duration,
    limit: Duration,
) -> io::Result<()> {
    if !valid_pane_id(&pane.id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing malformed pane id {:?}", pane.id),
        ));
    }
    let run = |args: &[&str]| -> io::Result<()> {
        let mut cmd = tmux(pane.socket.as_deref());
        cmd.args(args);
        if output_within(cmd, limit)?.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("tmux {args:?} failed")))
        }
    };
    run(&["send-keys", "-t", &pane.id, "-l", text])?;
    if !enter_delay.is_zero() {
        std::thread::sleep(enter_delay);
    }
    run(&["send-keys", "-t", &pane.id, "Enter"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composer_line_is_the_last_prompt() {
        let stuck = "❯ earlier prompt\n⏺ answer\n\n──────\n❯ [oxtail] You have 1 new message\n──────\n  ⏵⏵ bypass permissions on";
        assert_eq!(
            composer_line(stuck),
            Some("[oxtail] You have 1 new message")
        );
        let submitted = "❯ [oxtail] You have 1 new message\n⏺ Reading…\n──────\n❯ \n──────";
        assert_eq!(composer_line(submitted), Some(""));
        assert_eq!(composer_line("› hello codex"), Some("hello codex"));
        assert_eq!(composer_line("no prompt here"), None);
    }

    #[test]
    fn pane_ids_are_shape_checked() {
        assert!(valid_pane_id("%0"));
        assert!(valid_pane_id("%123"));
        for bad in ["", "%", "0", "%1;rm", "%1 ", "$1", "%-1", "@2"] {
            assert!(!valid_pane_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn socket_parsing_and_matching() {
        assert_eq!(
            socket_from_env("/tmp/tmux-0/default,1234,0"),
            Some(PathBuf::from("/tmp/tmux-0/default"))
        );
        assert_eq!(socket_from_env(""), None);
        let pane = |id: &str, pid| Pane {
            id: id.into(),
            pid,
            ..Pane::default()
        };
        let panes = [pane("%1", 10), pane("%2", 20)];
        // The nearest ancestor's pane wins: a pane running the client beats
        // the pane of an outer shell.
        assert_eq!(match_chain(&[30, 20, 10], &panes).unwrap().id, "%2");
        assert_eq!(match_chain(&[30, 10], &panes).unwrap().id, "%1");
        assert!(match_chain(&[30, 40], &panes).is_none());
    }
}
