//! The hook process itself: read stdin, talk to the daemon within the
//! budget, print, ack. [`hook_main`] dispatches to the pure planner
//! ([`crate::hook::run_hook`]) or to idle-wait ([`crate::idle`]); both
//! depend on [`crate::hook`], never on this module, so the modules form no
//! cycle.

use crate::hook::{
    hook_env_from_process, parse_event_arg, run_hook, HookKind, HookOutcome, ENV_DEBUG,
    HOOK_DAEMON_BUDGET, HOOK_EVENT_ARGS, MAX_STDIN_BYTES,
};
use oxtail_proto::client::{connect_or_spawn, Client};
use oxtail_proto::wire::{HookEvent, Reply, Request, Role};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn stdin_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(0) == 1 }
}

/// Reads all of stdin (at most [`MAX_STDIN_BYTES`]). A terminal on stdin
/// (a person running the hook by hand) reads as empty rather than waiting.
fn read_stdin() -> Vec<u8> {
    if stdin_is_tty() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = std::io::stdin()
        .lock()
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut buf);
    if buf.len() as u64 > MAX_STDIN_BYTES {
        buf.clear();
    }
    buf
}

/// Prints `out`; returns the exit code and whether the mail (if any) was
/// written whole, so the hand-over can be acked truthfully.
fn emit(out: &HookOutcome, debug: bool) -> (i32, bool) {
    let mut written = true;
    if let Some(s) = &out.stdout {
        let mut o = std::io::stdout().lock();
        written &= o.write_all(s.as_bytes()).and_then(|()| o.flush()).is_ok();
    }
    let mut e = std::io::stderr().lock();
    if let Some(s) = &out.stderr {
        let mut w = e.write_all(s.as_bytes());
        if !s.ends_with('\n') {
            w = w.and_then(|()| e.write_all(b"\n"));
        }
        written &= w.and_then(|()| e.flush()).is_ok();
    }
    if debug {
        if let Some(n) = &out.note {
            let _ = writeln!(e, "oxtail hook: {n}");
        }
    }
    let _ = e.flush();
    (out.exit_code, written)
}

/// Tells the daemon the printed mail reached the client (or not). A failed
/// ack only means the daemon puts the mail back when the connection closes,
/// and a later hand-over flags it `redelivered`.
fn ack(client: Option<&mut Client>, out: &HookOutcome, written: bool) {
    if let (Some(c), Some(h)) = (client, out.handover) {
        let _ = c.ack(h, written);
    }
}

/// One request to the daemon within what is left of `budget` since `start`:
/// connecting (and the handshake) gets only what is left, not a fresh
/// `budget`, so a stopped daemon costs the whole hook at most `budget`. The
/// connection is left in `slot`, for the ack after printing.
fn call_within(
    start: Instant,
    budget: Duration,
    spawn: bool,
    request: Request,
    slot: &mut Option<Client>,
) -> Result<Reply, String> {
    let left = budget.saturating_sub(start.elapsed());
    if left.is_zero() {
        return Err("budget spent before connecting".into());
    }
    let client = slot.insert(connect_or_spawn(Role::Hook, spawn, left).map_err(|e| e.to_string())?);
    let left = budget.saturating_sub(start.elapsed());
    if left.is_zero() {
        return Err("budget spent before the request".into());
    }
    client.set_timeout(Some(left)).map_err(|e| e.to_string())?;
    client.call(request).map_err(|e| e.to_string())
}

/// `oxtail hook <event_arg>`: the whole hook process. Returns the exit
/// code; the caller exits with it. Prints nothing and returns 0 on any
/// failure (unknown event names get one line on stderr, for people).
pub fn hook_main(event_arg: &str) -> i32 {
    let start = Instant::now();
    let env = hook_env_from_process();
    let debug = env.contains_key(ENV_DEBUG);
    let Some(kind) = parse_event_arg(event_arg) else {
        eprintln!(
            "oxtail hook: unknown event {event_arg:?}; expected one of {}",
            HOOK_EVENT_ARGS.join(", ")
        );
        return 0;
    };
    if stdin_is_tty() {
        eprintln!(
            "oxtail hook {event_arg}: reads the client's hook JSON on stdin; \
             it is launched by Claude Code or Codex (see `oxtail install-hook`)"
        );
        return 0;
    }
    let stdin = read_stdin();
    let mut conn: Option<Client> = None;
    let out = match kind {
        HookKind::IdleWait => crate::idle::idle_wait_main(&stdin, &env, &mut conn),
        HookKind::Event(event) => {
            let spawn = event == HookEvent::SessionStart;
            let ppid = std::os::unix::process::parent_id();
            run_hook(event, &stdin, &env, ppid, &mut |req| {
                call_within(start, HOOK_DAEMON_BUDGET, spawn, req, &mut conn)
            })
        }
    };
    let (code, written) = emit(&out, debug);
    ack(conn.as_mut(), &out, written);
    code
}
