//! The tmux commands the cockpit and fleets run. Every command goes to one
//! server: the default one, a named one (`-L NAME`, as `--tmux-socket` and
//! tests use), or a socket path (`-S PATH`, from an agent's verified
//! location).

use anyhow::{bail, Context, Result};
use oxtail_proto::status::TmuxLocation;
use std::process::{Command, Stdio};

/// Which tmux server to talk to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tmux {
    /// `-L NAME`.
    pub socket_name: Option<String>,
    /// `-S PATH` (wins over `socket_name`).
    pub socket_path: Option<String>,
}

impl Tmux {
    /// The server named `name` (`tmux -L name`), or the default one.
    pub fn named(name: Option<&str>) -> Tmux {
        Tmux {
            socket_name: name.map(str::to_string),
            socket_path: None,
        }
    }

    /// The server hosting `loc`: its socket path when known, else `self`.
    pub fn for_location(&self, loc: &TmuxLocation) -> Tmux {
        match &loc.socket {
            Some(p) if !p.is_empty() => Tmux {
                socket_name: None,
                socket_path: Some(p.clone()),
            },
            _ => self.clone(),
        }
    }

    /// A `tmux` command with the server arguments.
    pub fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        if let Some(p) = &self.socket_path {
            c.arg("-S").arg(p);
        } else if let Some(n) = &self.socket_name {
            c.arg("-L").arg(n);
        }
        c
    }

    /// Runs tmux with `args` and returns its stdout.
    ///
    /// # Errors
    /// When tmux cannot be run, or exits non-zero (the error carries its
    /// stderr).
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("could not run tmux (is it installed and on PATH?)")?;
        if !out.status.success() {
            bail!(
                "tmux {} failed: {}",
                args.first().copied().unwrap_or(""),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The last `lines` lines of a pane's screen, trailing blank lines
    /// dropped.
    ///
    /// # Errors
    /// As [`Tmux::run`] (e.g. the pane is gone).
    pub fn capture_tail(&self, pane_id: &str, lines: usize) -> Result<Vec<String>> {
        check_pane_id(pane_id)?;
        let start = format!("-{lines}");
        let out = self.run(&["capture-pane", "-p", "-J", "-t", pane_id, "-S", &start])?;
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        while v.last().is_some_and(|l| l.trim().is_empty()) {
            v.pop();
        }
        let n = v.len();
        Ok(v.split_off(n.saturating_sub(lines)))
    }

    /// Moves the tmux client this process runs in to `pane_id`:
    /// `switch-client`, `select-window`, `select-pane`.
    ///
    /// # Errors
    /// As [`Tmux::run`].
    pub fn switch_to(&self, pane_id: &str) -> Result<()> {
        check_pane_id(pane_id)?;
        self.run(&[
            "switch-client",
            "-t",
            pane_id,
            ";",
            "select-window",
            "-t",
            pane_id,
            ";",
            "select-pane",
            "-t",
            pane_id,
        ])?;
        Ok(())
    }

    /// Whether `loc` (reported without a socket) is a pane of the server
    /// this process runs inside: we are inside tmux, `self` names no other
    /// server, and the pane id exists there in the reported session.
    pub fn is_own_pane(&self, loc: &TmuxLocation) -> bool {
        if loc.socket.as_deref().is_some_and(|s| !s.is_empty())
            || self.socket_name.is_some()
            || self.socket_path.is_some()
            || current_socket().is_none()
            || check_pane_id(&loc.pane_id).is_err()
        {
            return false;
        }
        self.run(&[
            "display-message",
            "-p",
            "-t",
            &loc.pane_id,
            "#{session_name}",
        ])
        .is_ok_and(|s| s.trim_end() == loc.session_name)
    }

    /// A command that selects `pane_id` and attaches this terminal to its
    /// session (for a cockpit outside tmux, or on another tmux server). The
    /// caller runs it with the terminal restored and waits for it.
    pub fn attach_command(&self, pane_id: &str) -> Command {
        let mut c = self.command();
        c.env_remove("TMUX").args([
            "select-window",
            "-t",
            pane_id,
            ";",
            "select-pane",
            "-t",
            pane_id,
            ";",
            "attach-session",
            "-t",
            pane_id,
        ]);
        c
    }
}

/// Pane ids are `%N`; anything else is refused before it reaches tmux.
///
/// # Errors
/// When `id` is not `%` followed by digits.
pub fn check_pane_id(id: &str) -> Result<()> {
    let ok = id.len() > 1 && id.starts_with('%') && id[1..].bytes().all(|b| b.is_ascii_digit());
    if !ok {
        bail!("`{id}` is not a tmux pane id (expected %N)");
    }
    Ok(())
}

/// The socket path of the tmux server this process runs inside (first
/// field of `$TMUX`), if any.
pub fn current_socket() -> Option<String> {
    let t = std::env::var("TMUX").ok()?;
    let p = t.split(',').next()?.to_string();
    (!p.is_empty()).then_some(p)
}

/// Whether a jump to `loc` can switch this process's own tmux client (we
/// run inside tmux, on the same server as the pane).
pub fn can_switch(loc: &TmuxLocation, own: &Tmux) -> bool {
    let Some(cur) = current_socket() else {
        return false;
    };
    match &loc.socket {
        Some(p) if !p.is_empty() => same_path(p, &cur),
        // No socket reported: the pane is on the server `own` points at.
        _ => match (&own.socket_path, &own.socket_name) {
            (Some(p), _) => same_path(p, &cur),
            (None, Some(n)) => cur.rsplit('/').next() == Some(n.as_str()),
            (None, None) => cur.rsplit('/').next() == Some("default"),
        },
    }
}

fn same_path(a: &str, b: &str) -> bool {
    let ca = std::fs::canonicalize(a).ok();
    let cb = std::fs::canonicalize(b).ok();
    a == b || (ca.is_some() && ca == cb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pane_ids_are_shape_checked() {
        assert!(check_pane_id("%0").is_ok());
        assert!(check_pane_id("%123").is_ok());
        for bad in ["", "%", "0", "%1;kill-server", "%a", "main:1.2"] {
            assert!(check_pane_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_arguments() {
        let t = Tmux::named(Some("x"));
        let c = t.command();
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, ["-L", "x"]);
        let loc = TmuxLocation {
            socket: Some("/tmp/s".into()),
            pane_id: "%1".into(),
            ..Default::default()
        };
        let c = t.for_location(&loc).command();
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, ["-S", "/tmp/s"]);
    }
}
