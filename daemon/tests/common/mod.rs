//! What the daemon's pure-core tests share: a caller, and one tool call
//! through the planner as the actor makes it (default config, no live
//! facts, a test clock and counted ids).

use oxtail_daemon::config::Config;
use oxtail_daemon::identity::Caller;
use oxtail_daemon::state::{Scope, Seat, State};
use oxtail_daemon::tools::{self, Ctx, Live, Outcome};
use serde_json::Value;
use std::collections::BTreeMap;

/// Agent `i`: Claude Code session `s<i>`, seat pid `1000 + i`, in the
/// project `/p` on branch `main`.
pub fn caller(i: usize) -> Caller {
    let mut env = BTreeMap::new();
    env.insert("CLAUDE_CODE_SESSION_ID".to_string(), format!("s{i}"));
    Caller {
        seat: Some(Seat {
            pid: 1000 + i as u32,
            start_time: 7,
        }),
        scope: Scope {
            project: "git:/p/.git".into(),
            project_root: "/p".into(),
            worktree: "/p".into(),
            branch: Some("main".into()),
        },
        requested_scope: None,
        shim_pid: 0,
        cwd: "/p".into(),
        env,
        client_name: Some("claude-code".into()),
        birth_time: None,
    }
}

/// Plans `tool` with `args` for agent `who` against `state` at `now_ms`
/// (ms); new ids are `<prefix>_<n>`, counting on from `*next`.
pub fn plan(
    state: &State,
    now_ms: u64,
    next: &mut u64,
    who: usize,
    tool: &str,
    args: &Value,
) -> Outcome {
    let config = Config::default();
    let live = Live::default();
    let mut new_id = |p: &str| {
        *next += 1;
        format!("{p}_{next}")
    };
    let mut ctx = Ctx {
        now_ms,
        config: &config,
        live: &live,
        home: None,
        new_id: &mut new_id,
    };
    tools::call(state, &caller(who), tool, args, None, &mut ctx)
}

/// Plans hook `call` for agent `who` (its seat and scope, as the edge looks
/// them up) against `state` and the ephemeral facts `live` at `now_ms`,
/// with no mail in unconfirmed hand-overs.
///
/// # Errors
/// The planner's error reply (a payload without `session_id`).
#[allow(dead_code)] // catalog.rs shares this module and plans no hook
pub fn plan_hook(
    state: &State,
    live: &Live,
    now_ms: u64,
    who: usize,
    call: &oxtail_proto::HookCall,
) -> Result<oxtail_daemon::hookplan::HookOutcome, oxtail_proto::Reply> {
    let config = Config::default();
    let held = std::collections::HashMap::new();
    let ctx = oxtail_daemon::hookplan::HookCtx {
        now_ms,
        config: &config,
        live,
        held_by_session: &held,
    };
    let c = caller(who);
    oxtail_daemon::hookplan::plan(state, &ctx, call, c.seat, Some(c.scope))
}
