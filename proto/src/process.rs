//! One way to see processes, on Linux and macOS: whether a pid is alive,
//! when a process started, and its parent chain.
//!
//! Liveness is a signal-0 probe (`kill(pid, 0)`, POSIX); start times and
//! parents come from `sysinfo`, which reads `/proc` on Linux and `sysctl`/
//! `proc_pidinfo` on macOS. No other module reads `/proc` directly.
//!
//! These calls inspect the process table, so the daemon makes them off its
//! core thread (the probe worker and the connection tasks).

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Whether process `pid` exists. A process of another user counts (`EPERM`
/// means it exists); pid 0 and pids beyond `i32::MAX` never do. A zombie
/// (exited, not yet reaped by its parent) still counts.
pub fn alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks the pid.
    let r = unsafe { libc::kill(pid as i32, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Facts about one live process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcFacts {
    /// When it started, seconds since the Unix epoch (as the kernel reports
    /// it; a reused pid has a different start time).
    pub start_time: u64,
    /// Its parent's pid, when it has one.
    pub parent: Option<u32>,
}

/// Reads process facts, reusing one `sysinfo` handle across calls.
pub struct Inspector {
    sys: Option<System>,
}

impl Default for Inspector {
    fn default() -> Self {
        Inspector::new()
    }
}

impl Inspector {
    /// A fresh inspector (cheap: it reads nothing until asked).
    pub fn new() -> Inspector {
        Inspector {
            sys: System::new().ok(),
        }
    }

    /// The start time and parent of `pid`, or `None` when no such process
    /// exists (or the platform cannot say).
    pub fn facts(&mut self, pid: u32) -> Option<ProcFacts> {
        if pid == 0 {
            return None;
        }
        let sys = self.sys.as_mut()?;
        let p = Pid::from_u32(pid);
        sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[p]),
            true,
            ProcessRefreshKind::nothing(),
        );
        sys.process(p).map(|proc_| ProcFacts {
            start_time: proc_.start_time(),
            parent: proc_.parent().map(|pp| pp.as_u32()),
        })
    }

    /// The command line (argv) of `pid`, or `None` when no such process
    /// exists or the platform does not show it.
    pub fn cmdline(&mut self, pid: u32) -> Option<Vec<String>> {
        if pid == 0 {
            return None;
        }
        let sys = self.sys.as_mut()?;
        let p = Pid::from_u32(pid);
        sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[p]),
            true,
            ProcessRefreshKind::nothing().with_cmd(sysinfo::UpdateKind::Always),
        );
        sys.process(p).map(|proc_| {
            proc_
                .cmd()
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        })
    }

    /// `pid` and its ancestors, nearest first, stopping before pid 1 (init
    /// or launchd) and after 64 steps. A pid that does not exist gives just
    /// `[pid]`.
    pub fn ancestry(&mut self, pid: u32) -> Vec<u32> {
        let mut chain = vec![pid];
        let mut cur = pid;
        for _ in 0..64 {
            match self.facts(cur).and_then(|f| f.parent) {
                Some(p) if p > 1 && !chain.contains(&p) => {
                    chain.push(p);
                    cur = p;
                }
                _ => break,
            }
        }
        chain
    }
}

/// The start time of `pid`, seconds since the epoch; `None` when it does not
/// exist. See [`Inspector::facts`].
pub fn start_time(pid: u32) -> Option<u64> {
    Inspector::new().facts(pid).map(|f| f.start_time)
}

/// The command line of `pid`. See [`Inspector::cmdline`].
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    Inspector::new().cmdline(pid)
}

/// `pid` and its ancestors, nearest first. See [`Inspector::ancestry`].
pub fn ancestry(pid: u32) -> Vec<u32> {
    Inspector::new().ancestry(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alive_and_gone() {
        assert!(alive(std::process::id()));
        assert!(!alive(0));
        assert!(!alive(u32::MAX));
        // A child that has exited and been reaped is gone.
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        assert!(!alive(pid));
        assert_eq!(start_time(pid), None);
    }

    #[test]
    fn facts_and_parent_chain() {
        let me = std::process::id();
        let f = Inspector::new().facts(me).expect("own process");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(f.start_time > 0 && f.start_time <= now + 1, "{f:?}");
        assert_eq!(f.parent, Some(std::os::unix::process::parent_id()));
        let chain = ancestry(me);
        assert_eq!(chain[0], me);
        assert_eq!(
            chain.get(1).copied(),
            Some(std::os::unix::process::parent_id())
        );
        assert!(!chain.contains(&1));
    }
}
