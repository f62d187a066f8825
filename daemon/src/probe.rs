//! The probe worker: every look at tmux and at the process table that the
//! actor needs, made on a thread of its own so the core thread never spawns
//! or waits on a process.
//!
//! The actor sends a [`ProbeRequest`] (which tmux servers, which seats,
//! which idle-wait client pids) and goes on; the worker answers with a
//! [`ProbeReport`] posted to the actor's queue as
//! [`crate::actor::ToActor::Probe`]. Requests that pile up while a probe
//! runs (a hung tmux, held until its timeout) are merged into one. A hung
//! tmux therefore costs a stale pane list, never a stalled request.
//!
//! The scope walk of a non-agent pane's directory is cached here for
//! [`SCOPE_CACHE_TTL`], so a steady pane costs no file-system walk.

use crate::state::Seat;
use crate::tmux::{self, Pane};
use oxtail_proto::process::Inspector;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a pane directory's project (the scope walk) is reused.
pub const SCOPE_CACHE_TTL: Duration = Duration::from_secs(30);

/// What the actor wants looked at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeRequest {
    /// Refresh the pane cache: list these tmux servers (`None` is the
    /// default server) and find the pane of each seat. `None`: no tmux.
    pub panes: Option<PaneQuery>,
    /// Client pids of armed idle waiters: the report says which are gone.
    pub client_pids: Vec<u32>,
}

/// A pane refresh.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaneQuery {
    /// The tmux servers to list, by socket (`None`: the default server).
    pub sockets: Vec<Option<PathBuf>>,
    /// The seats of live agents, by [`Seat::key`].
    pub seats: Vec<(String, Seat)>,
    /// `OXTAIL_SCOPE=worktree` (from `Config`).
    pub scope_worktree: bool,
    /// Each tmux command's time limit; a command still running then is
    /// killed (with its process group).
    pub tmux_timeout: Duration,
}

/// What the worker found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeReport {
    /// The pane refresh, when one was asked for.
    pub panes: Option<PaneReport>,
    /// Which of the asked client pids no longer exist.
    pub dead_pids: Vec<u32>,
}

/// The result of a [`PaneQuery`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaneReport {
    /// The verified pane of each seat that has one, by seat key.
    pub seat_panes: HashMap<String, Pane>,
    /// Every other pane, with the project of its directory.
    pub other_panes: Vec<(Pane, Option<String>)>,
    /// Whether each seat's process is still the one that started then.
    pub seat_alive: HashMap<String, bool>,
    /// tmux missing, or failing on the default server for another reason
    /// than "no server running".
    pub tmux_error: Option<String>,
}

/// The actor's handle on the worker thread.
pub struct Probe {
    tx: mpsc::Sender<ProbeRequest>,
}

impl Probe {
    /// Starts the worker. Each report goes to `post`; when `post` returns
    /// false (the actor is gone) the worker ends.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn spawn(post: impl Fn(ProbeReport) -> bool + Send + 'static) -> std::io::Result<Probe> {
        let (tx, rx) = mpsc::channel::<ProbeRequest>();
        std::thread::Builder::new()
            .name("oxtail-probe".into())
            .spawn(move || {
                let mut worker = Worker::default();
                while let Ok(first) = rx.recv() {
                    let mut req = first;
                    // Merge whatever queued meanwhile: the newest pane
                    // query, every pid.
                    while let Ok(next) = rx.try_recv() {
                        req = merge(req, next);
                    }
                    let report = worker.run(&req);
                    if !post(report) {
                        return;
                    }
                }
            })?;
        Ok(Probe { tx })
    }

    /// Queues `req`; never blocks. False when the worker is gone.
    pub fn request(&self, req: ProbeRequest) -> bool {
        self.tx.send(req).is_ok()
    }
}

/// Two queued requests as one: the later pane query wins, pids add up.
fn merge(a: ProbeRequest, b: ProbeRequest) -> ProbeRequest {
    let mut pids = a.client_pids;
    for p in b.client_pids {
        if !pids.contains(&p) {
            pids.push(p);
        }
    }
    ProbeRequest {
        panes: b.panes.or(a.panes),
        client_pids: pids,
    }
}

#[derive(Default)]
struct Worker {
    inspector: Inspector,
    scopes: HashMap<String, (Option<String>, Instant, bool)>,
}

impl Worker {
    fn run(&mut self, req: &ProbeRequest) -> ProbeReport {
        let dead_pids = req
            .client_pids
            .iter()
            .copied()
            .filter(|p| !oxtail_proto::process::alive(*p))
            .collect();
        ProbeReport {
            panes: req.panes.as_ref().map(|q| self.panes(q)),
            dead_pids,
        }
    }

    fn panes(&mut self, q: &PaneQuery) -> PaneReport {
        let mut all: Vec<Pane> = Vec::new();
        let mut tmux_error = None;
        for s in &q.sockets {
            match tmux::list_panes(s.as_deref(), q.tmux_timeout) {
                Ok(found) => {
                    for p in found {
                        if !all.iter().any(|o| o.id == p.id && o.socket == p.socket) {
                            all.push(p);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tmux_error = Some("tmux not found".to_string());
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    tracing::warn!(socket = ?s, error = %e, "tmux list-panes timed out; keeping the last pane list");
                    if s.is_none() {
                        tmux_error = Some(e.to_string());
                    }
                }
                // No server on the default socket is no panes, not an error.
                Err(e) if s.is_none() => {
                    let msg = e.to_string();
                    if !(msg.contains("no server running") || msg.contains("error connecting")) {
                        tmux_error = Some(msg);
                    }
                }
                Err(_) => {}
            }
        }
        let mut seat_alive = HashMap::new();
        let mut seat_panes = HashMap::new();
        for (key, seat) in &q.seats {
            let alive = crate::procinfo::seat_alive_with(&mut self.inspector, seat);
            seat_alive.insert(key.clone(), alive);
            let chain = self.inspector.ancestry(seat.pid);
            let inspector = &mut self.inspector;
            let chain = tmux::until_codex_app_server(&chain, |pid| {
                inspector
                    .cmdline(pid)
                    .is_some_and(|argv| crate::procinfo::argv_is_codex_app_server(&argv))
            });
            if let Some(p) = tmux::match_chain(chain, &all) {
                seat_panes.insert(key.clone(), p.clone());
            }
        }
        let now = Instant::now();
        self.scopes.retain(|_, (_, at, wt)| {
            now.duration_since(*at) < SCOPE_CACHE_TTL && *wt == q.scope_worktree
        });
        let mut seen = HashSet::new();
        let other_panes: Vec<(Pane, Option<String>)> = all
            .into_iter()
            .filter(|p| {
                !seat_panes
                    .values()
                    .any(|o| o.id == p.id && o.socket == p.socket)
            })
            .map(|p| {
                seen.insert(p.cwd.clone());
                let proj = self
                    .scopes
                    .entry(p.cwd.clone())
                    .or_insert_with(|| {
                        let proj =
                            crate::scope::scope_of(std::path::Path::new(&p.cwd), q.scope_worktree)
                                .ok()
                                .map(|s| s.project);
                        (proj, now, q.scope_worktree)
                    })
                    .0
                    .clone();
                (p, proj)
            })
            .collect();
        self.scopes.retain(|cwd, _| seen.contains(cwd));
        PaneReport {
            seat_panes,
            other_panes,
            seat_alive,
            tmux_error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_requests_merge() {
        let q = |n: usize| PaneQuery {
            sockets: vec![None; n],
            ..PaneQuery::default()
        };
        let a = ProbeRequest {
            panes: Some(q(1)),
            client_pids: vec![1, 2],
        };
        let b = ProbeRequest {
            panes: None,
            client_pids: vec![2, 3],
        };
        let m = merge(a.clone(), b.clone());
        assert_eq!(m.panes, Some(q(1)));
        assert_eq!(m.client_pids, vec![1, 2, 3]);
        let c = ProbeRequest {
            panes: Some(q(2)),
            client_pids: vec![],
        };
        assert_eq!(merge(m, c).panes, Some(q(2)));
    }
}
