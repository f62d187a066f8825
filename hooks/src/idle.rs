//! `oxtail hook idle-wait`: the Claude Code async rewake (SPEC §5).
//!
//! Installed as an async Stop hook with `"async": true, "asyncRewake":
//! true`. Claude Code does not wait for it; when it exits 2, Claude Code
//! starts a turn in the idle session with the hook's stderr as a system
//! notification. This process long-polls the daemon ([`IdleWait`](oxtail_proto::IdleWait)) and:
//!
//! * on mail: prints it on stderr, exits 2;
//! * retired by a newer waiter for the same session, session ended, client
//!   process dead, or timed out: exits 0 silently;
//! * daemon gone or restarting mid-wait: reconnects (with backoff, spawning
//!   only on the first attempt) and keeps waiting for the time left.
//!
//! It also checks the client process itself between attempts, because an
//! async hook is not killed when Claude Code exits. Under a headless Claude
//! Code (`claude -p`, the Agent SDKs) it exits at once: see
//! [`idle_wait_applies`].

use crate::hook::{
    idle_connect_retryable, idle_wait_applies, idle_wait_request, idle_wait_step, HookOutcome,
    IdleStep,
};
use oxtail_proto::client::{connect_or_spawn, Client};
use oxtail_proto::wire::{Request, Role};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Time allowed to connect (and, on the first attempt, start the daemon).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest pause between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How much longer than the daemon's own deadline the socket read may block
/// (a stopped daemon must not hold the hook past its timeout for long).
const READ_GRACE: Duration = Duration::from_secs(30);

/// The idle-wait process body: returns what to print and the exit code.
/// The connection that answered is left in `conn`, so the caller can ack
/// the hand-over once the mail is printed.
pub fn idle_wait_main(
    stdin: &[u8],
    env: &BTreeMap<String, String>,
    conn: &mut Option<Client>,
) -> HookOutcome {
    let req = match idle_wait_applies(env).and_then(|()| idle_wait_request(stdin, env)) {
        Ok(r) => r,
        Err(e) => return HookOutcome::silent(e),
    };
    let start = Instant::now();
    let deadline = start + Duration::from_millis(req.timeout_ms);
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 0u32;
    let mut last_problem = String::new();
    loop {
        if let Some(pid) = req.client_pid {
            if !oxtail_proto::process::alive(pid) {
                return HookOutcome::silent(format!("client process {pid} is gone"));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return HookOutcome::silent(format!("idle-wait timed out ({last_problem})"));
        }
        match connect_or_spawn(Role::Hook, attempt == 0, CONNECT_TIMEOUT.min(left)) {
            Ok(client) => {
                let client = conn.insert(client);
                let mut r = req.clone();
                r.timeout_ms = left.as_millis().max(1) as u64;
                let _ = client.set_timeout(Some(left + READ_GRACE));
                match client.call(Request::IdleWait(r)) {
                    Ok(reply) => match idle_wait_step(reply) {
                        IdleStep::Exit(out) => return out,
                        IdleStep::Retry(why) => last_problem = why,
                    },
                    Err(e) => {
                        last_problem = format!("connection lost: {e}");
                        backoff = Duration::from_millis(100);
                    }
                }
            }
            Err(e) if idle_connect_retryable(&e) => last_problem = e.to_string(),
            Err(e) => return HookOutcome::silent(e.to_string()),
        }
        attempt += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(backoff.min(left));
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
