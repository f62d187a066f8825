//! The wake engine's decision funnel (SPEC §5), pure.
//!
//! Every wake — an explicit `wake: "auto"`, an ask, a reply to a requester,
//! a late reply to a pending ask, a cockpit nudge — goes through [`gate`] in
//! this order: kill switches → one wake per `(session, reply_to)` → busy
//! gating → the strict reply rule → debounce → per-target rate limit. What
//! passes is then carried out by a strategy chosen in [`choose`]: `rewake`
//! (an armed Claude Code `idle-wait` hook takes the mail), else `keys`
//! (tmux send-keys into the process-tree-verified pane), else
//! `skipped_no_target`.
//!
//! [`WakeBook::decide`] is the whole decision (gates, route, and the
//! debounce bookkeeping) as a pure function of the facts and a clock value
//! the caller passes in; the actor carries the [`Decision`] out (the only
//! I/O) and reports the [`WakeStatus`] back with [`WakeBook::fired`].

use serde::Serialize;
use std::collections::HashMap;

/// Wake tunables (read from the environment by
/// [`crate::config::Config::from_env`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakeConfig {
    /// `OXTAIL_AUTOWAKE=off`: replies never wake their requester.
    pub autowake_off: bool,
    /// `OXTAIL_ASK_PEER_WAKE_STRATEGY`: `auto` (rewake, then keys), `legacy`
    /// (keys only), `off` (no wakes at all).
    pub strategy: Strategy,
    /// `OXTAIL_ACTIVITY_BUSY_TTL_MS` (600 000): a busy mark older than this
    /// is stale and the agent may be woken.
    pub busy_ttl_ms: u64,
    /// `OXTAIL_AUTOWAKE_FRESH_IDLE_MS` (300 000): a reply wakes a requester
    /// only if it went idle less than this long ago.
    pub fresh_idle_ms: u64,
    /// `OXTAIL_AUTOWAKE_MIN_INTERVAL_MS` (4 000): fired wakes per target are
    /// at least this far apart.
    pub min_interval_ms: u64,
    /// `OXTAIL_WAKE_DEBOUNCE_MS` (1 000): attempts closer than this to the
    /// previous attempt on the same target are coalesced.
    pub debounce_ms: u64,
}

/// Wake routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Prefer the Claude Code rewake hook, fall back to keys.
    Auto,
    /// Keys only.
    Legacy,
    /// Never wake.
    Off,
}

impl Default for WakeConfig {
    fn default() -> Self {
        WakeConfig {
            autowake_off: false,
            strategy: Strategy::Auto,
            busy_ttl_ms: 600_000,
            fresh_idle_ms: 300_000,
            min_interval_ms: 4_000,
            debounce_ms: 1_000,
        }
    }
}

/// Busy or idle, from hooks (UserPromptSubmit and PreToolUse mark busy, Stop
/// marks idle) or set directly (`oxtail ctl mark`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityState {
    /// In a turn.
    Busy,
    /// Between turns.
    Idle,
}

/// An agent's latest activity mark (ephemeral).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// Busy or idle.
    pub state: ActivityState,
    /// When it was marked, ms since the epoch.
    pub at_ms: u64,
    /// The tool of the latest PreToolUse (`Bash`, `Edit`, `mcp__oxtail__…`).
    pub tool: Option<String>,
    /// The file the tool works on, for edit/read tools.
    pub tool_path: Option<String>,
}

/// Why a wake is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `wake: "auto"` on a send, an ask, a delegation, a nudge.
    Explicit,
    /// A reply waking its requester: the strict reply rule applies.
    ReplyStrict,
    /// A late reply to a pending ask: the lenient path (no fresh-idle rule).
    LateLenient,
}

/// A wanted wake, as a tool planned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakeIntent {
    /// Whom to wake.
    pub target: String,
    /// Why.
    pub mode: Mode,
    /// `reply_to_default`, `late_reply_to_pending`,
    /// `late_reply_to_pending_suppressed`, or none for explicit wakes.
    pub reason: Option<&'static str>,
    /// `<session>|<reply_to>` for reply wakes: fired at most once.
    pub dedupe_key: Option<String>,
    /// The caller said `wake: "off"`: report `disabled` with the reason.
    pub suppressed: bool,
    /// The tool that asked (for `oxtail diagnose`).
    pub tool: String,
    /// The calling agent's own `OXTAIL_ASK_PEER_WAKE_STRATEGY` and
    /// `OXTAIL_AUTOWAKE` (passed by its shim), overriding the daemon's.
    pub agent: Option<AgentWake>,
}

/// Wake settings that follow the calling agent's environment, not the
/// daemon's (issue 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentWake {
    /// `OXTAIL_ASK_PEER_WAKE_STRATEGY`.
    pub strategy: Strategy,
    /// `OXTAIL_AUTOWAKE=off`.
    pub autowake_off: bool,
}

impl WakeConfig {
    /// This config with `intent`'s agent settings applied.
    pub fn for_intent(&self, intent: &WakeIntent) -> WakeConfig {
        let mut c = self.clone();
        if let Some(a) = intent.agent {
            c.strategy = a.strategy;
            c.autowake_off = a.autowake_off;
        }
        c
    }

    /// Parses `OXTAIL_ASK_PEER_WAKE_STRATEGY`; `None` when unset or invalid.
    pub fn parse_strategy(v: Option<&str>) -> Option<Strategy> {
        match v? {
            "auto" => Some(Strategy::Auto),
            "legacy" => Some(Strategy::Legacy),
            "off" => Some(Strategy::Off),
            _ => None,
        }
    }

    /// Parses `OXTAIL_AUTOWAKE` (true = off); `None` when unset or invalid.
    pub fn parse_autowake_off(v: Option<&str>) -> Option<bool> {
        match v? {
            "on" | "1" | "true" => Some(false),
            "off" | "0" | "false" => Some(true),
            _ => None,
        }
    }
}

/// Ephemeral per-target bookkeeping for debounce and rate limit.
#[derive(Debug, Default, Clone)]
pub struct WakeBook {
    /// Last attempt that passed the earlier gates, per target (ms).
    pub last_attempt: HashMap<String, u64>,
    /// Last fired wake, per target (ms).
    pub last_fired: HashMap<String, u64>,
}

/// A wake's outcome, reported as `wake_status` (CONTRACT §15); serialized
/// to the snake_case strings clients see (`fired`, `skipped_busy`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WakeStatus {
    /// Carried out and confirmed: the rewake hook took the mail.
    Fired,
    /// Keys were typed into the verified pane; whether the agent saw them
    /// is unknown.
    FiredUnconfirmed,
    /// A kill switch (`wake: "off"`, `OXTAIL_ASK_PEER_WAKE_STRATEGY=off`,
    /// `OXTAIL_AUTOWAKE=off` for reply wakes).
    Disabled,
    /// This `(session, reply_to)` already woke its requester once.
    SkippedDeduped,
    /// The target is mid-turn (a fresh busy mark).
    SkippedBusy,
    /// A reply wake whose requester did not go idle recently.
    SkippedNoFreshIdle,
    /// Within the debounce window of the previous attempt on this target.
    SkippedDebounced,
    /// Within the minimum interval since the last fired wake on it.
    SkippedRateLimited,
    /// No armed rewake hook and no verified tmux pane (or no such agent).
    SkippedNoTarget,
    /// An operator nudge with no mail queued (the cockpit's own status).
    NothingToDeliver,
    /// The hand-over of the mail could not be journaled, so no wake carried
    /// it (the mail stays queued).
    SkippedStoreError,
}

impl WakeStatus {
    /// The wire string (`fired`, `skipped_busy`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            WakeStatus::Fired => "fired",
            WakeStatus::FiredUnconfirmed => "fired_unconfirmed",
            WakeStatus::Disabled => "disabled",
            WakeStatus::SkippedDeduped => "skipped_deduped",
            WakeStatus::SkippedBusy => "skipped_busy",
            WakeStatus::SkippedNoFreshIdle => "skipped_no_fresh_idle",
            WakeStatus::SkippedDebounced => "skipped_debounced",
            WakeStatus::SkippedRateLimited => "skipped_rate_limited",
            WakeStatus::SkippedNoTarget => "skipped_no_target",
            WakeStatus::NothingToDeliver => "nothing_to_deliver",
            WakeStatus::SkippedStoreError => "skipped_store_error",
        }
    }

    /// Whether the wake was carried out (counts for the rate limit and the
    /// once-per-reply dedupe).
    pub fn fired(self) -> bool {
        matches!(self, WakeStatus::Fired | WakeStatus::FiredUnconfirmed)
    }
}

impl std::fmt::Display for WakeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Runs the gates. `Ok(())` means "carry it out"; `Err(status)` is the
/// `wake_status` to report.
///
/// # Errors
/// The status of the first gate that stops the wake.
pub fn gate(
    intent: &WakeIntent,
    activity: Option<&Activity>,
    book: &WakeBook,
    already_fired: bool,
    cfg: &WakeConfig,
    now_ms: u64,
) -> Result<(), WakeStatus> {
    if intent.suppressed || cfg.strategy == Strategy::Off {
        return Err(WakeStatus::Disabled);
    }
    if cfg.autowake_off && intent.mode != Mode::Explicit {
        return Err(WakeStatus::Disabled);
    }
    if already_fired {
        return Err(WakeStatus::SkippedDeduped);
    }
    if let Some(a) = activity {
        if a.state == ActivityState::Busy && now_ms.saturating_sub(a.at_ms) < cfg.busy_ttl_ms {
            return Err(WakeStatus::SkippedBusy);
        }
    }
    if intent.mode == Mode::ReplyStrict {
        let fresh = activity.is_some_and(|a| {
            a.state == ActivityState::Idle && now_ms.saturating_sub(a.at_ms) < cfg.fresh_idle_ms
        });
        if !fresh {
            return Err(WakeStatus::SkippedNoFreshIdle);
        }
    }
    if book
        .last_attempt
        .get(&intent.target)
        .is_some_and(|t| now_ms.saturating_sub(*t) < cfg.debounce_ms)
    {
        return Err(WakeStatus::SkippedDebounced);
    }
    if book
        .last_fired
        .get(&intent.target)
        .is_some_and(|t| now_ms.saturating_sub(*t) < cfg.min_interval_ms)
    {
        return Err(WakeStatus::SkippedRateLimited);
    }
    Ok(())
}

/// What the wake engine knows about a target when it decides.
#[derive(Debug, Clone, Copy, Default)]
pub struct WakeFacts<'a> {
    /// Its latest activity mark.
    pub activity: Option<&'a Activity>,
    /// The intent's dedupe key already fired (journaled, or fired and not
    /// yet journaled).
    pub already_fired: bool,
    /// An idle-wait (rewake) hook is armed for it.
    pub rewake_armed: bool,
    /// It is a Codex thread its app-server can take input for now (issue
    /// 15): the app-server knows the turn, so a busy mark does not skip it
    /// (the mail is steered into the running turn).
    pub app_server: bool,
}

/// The wake engine's verdict on one intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Report this status; nothing to carry out.
    Skip(WakeStatus),
    /// Carry it out by this route, then report with [`WakeBook::fired`].
    Go(Route),
}

impl WakeBook {
    /// Decides `intent` at `now_ms` (the caller's clock; tests inject it):
    /// runs the [`gate`]s, picks the [`Route`], and counts an attempt that
    /// passes the gates for the debounce window. Pure apart from `self`.
    pub fn decide(
        &mut self,
        intent: &WakeIntent,
        facts: &WakeFacts<'_>,
        cfg: &WakeConfig,
        now_ms: u64,
    ) -> Decision {
        let gated = match gate(
            intent,
            facts.activity,
            self,
            facts.already_fired,
            cfg,
            now_ms,
        ) {
            Err(WakeStatus::SkippedBusy) if facts.app_server => Ok(()),
            g => g,
        };
        match gated {
            Err(s) => Decision::Skip(s),
            Ok(()) => {
                self.last_attempt.insert(intent.target.clone(), now_ms);
                Decision::Go(if facts.app_server && cfg.strategy == Strategy::Auto {
                    Route::AppServer
                } else {
                    choose(facts.rewake_armed, cfg)
                })
            }
        }
    }

    /// Records how a [`Decision::Go`] ended: a fired wake starts the
    /// target's minimum interval.
    pub fn fired(&mut self, target: &str, status: WakeStatus, now_ms: u64) {
        if status.fired() {
            self.last_fired.insert(target.to_string(), now_ms);
        }
    }
}

/// How a wake that passed the gates is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Hand the mail to the session's armed idle-wait hook.
    Rewake,
    /// Type into the verified tmux pane.
    Keys,
    /// Start or steer a turn through the Codex app-server (issue 15).
    AppServer,
}

/// Picks the route: the rewake hook when one is armed and the strategy is
/// `auto`, otherwise keys.
pub fn choose(rewake_armed: bool, cfg: &WakeConfig) -> Route {
    if rewake_armed && cfg.strategy == Strategy::Auto {
        Route::Rewake
    } else {
        Route::Keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(mode: Mode) -> WakeIntent {
        WakeIntent {
            target: "t".into(),
            mode,
            reason: None,
            dedupe_key: None,
            suppressed: false,
            tool: "send_message".into(),
            agent: None,
        }
    }
    fn act(state: ActivityState, at_ms: u64) -> Activity {
        Activity {
            state,
            at_ms,
            tool: None,
            tool_path: None,
        }
    }

    #[test]
    fn every_gate_in_order() {
        let cfg = WakeConfig::default();
        let book = WakeBook::default();
        let now = 10_000_000;
        let idle = act(ActivityState::Idle, now - 1000);
        // passes
        assert_eq!(
            gate(
                &intent(Mode::Explicit),
                Some(&idle),
                &book,
                false,
                &cfg,
                now
            ),
            Ok(())
        );
        // kill switches
        let mut off = cfg.clone();
        off.strategy = Strategy::Off;
        assert_eq!(
            gate(
                &intent(Mode::Explicit),
                Some(&idle),
                &book,
                false,
                &off,
                now
            ),
            Err(WakeStatus::Disabled)
        );
        let mut no_auto = cfg.clone();
        no_auto.autowake_off = true;
        assert_eq!(
            gate(
                &intent(Mode::ReplyStrict),
                Some(&idle),
                &book,
                false,
                &no_auto,
                now
            ),
            Err(WakeStatus::Disabled)
        );
        assert_eq!(
            gate(
                &intent(Mode::Explicit),
                Some(&idle),
                &book,
                false,
                &no_auto,
                now
            ),
            Ok(())
        );
        let mut sup = intent(Mode::Explicit);
        sup.suppressed = true;
        assert_eq!(
            gate(&sup, Some(&idle), &book, false, &cfg, now),
            Err(WakeStatus::Disabled)
        );
        // dedupe
        assert_eq!(
            gate(
                &intent(Mode::ReplyStrict),
                Some(&idle),
                &book,
                true,
                &cfg,
                now
            ),
            Err(WakeStatus::SkippedDeduped)
        );
        // busy, and a stale busy mark is wakeable
        let busy = act(ActivityState::Busy, now - 1000);
        assert_eq!(
            gate(
                &intent(Mode::Explicit),
                Some(&busy),
                &book,
                false,
                &cfg,
                now
            ),
            Err(WakeStatus::SkippedBusy)
        );
        let stale = act(ActivityState::Busy, now - cfg.busy_ttl_ms - 1);
        assert_eq!(
            gate(
                &intent(Mode::Explicit),
                Some(&stale),
                &book,
                false,
                &cfg,
                now
            ),
            Ok(())
        );
        // strict reply rule: idle too long, or unknown
        let old_idle = act(ActivityState::Idle, now - cfg.fresh_idle_ms - 1);
        assert_eq!(
            gate(
                &intent(Mode::ReplyStrict),
                Some(&old_idle),
                &book,
                false,
                &cfg,
                now
            ),
            Err(WakeStatus::SkippedNoFreshIdle)
        );
        assert_eq!(
            gate(&intent(Mode::ReplyStrict), None, &book, false, &cfg, now),
            Err(WakeStatus::SkippedNoFreshIdle)
        );
        // ... but the lenient path wakes it
        assert_eq!(
            gate(
                &intent(Mode::LateLenient),
                Some(&old_idle),
                &book,
                false,
                &cfg,
                now
            ),
            Ok(())
        );
        // debounce, then rate limit
        let mut b = WakeBook::default();
        b.last_attempt.insert("t".into(), now - 500);
        assert_eq!(
            gate(&intent(Mode::Explicit), Some(&idle), &b, false, &cfg, now),
            Err(WakeStatus::SkippedDebounced)
        );
        b.last_attempt.insert("t".into(), now - 2000);
        b.last_fired.insert("t".into(), now - 2000);
        assert_eq!(
            gate(&intent(Mode::Explicit), Some(&idle), &b, false, &cfg, now),
            Err(WakeStatus::SkippedRateLimited)
        );
        b.last_fired.insert("t".into(), now - 5000);
        assert_eq!(
            gate(&intent(Mode::Explicit), Some(&idle), &b, false, &cfg, now),
            Ok(())
        );
    }

    /// The debounce (300 ms) and rate-limit (3 s) windows, on an injected
    /// clock: exactly at each window's edge, with no real time passing.
    #[test]
    fn time_windows_on_an_injected_clock() {
        let cfg = WakeConfig {
            debounce_ms: 300,
            min_interval_ms: 3000,
            ..WakeConfig::default()
        };
        let mut book = WakeBook::default();
        let t0 = 50_000_000u64;
        let idle = act(ActivityState::Idle, t0 - 10);
        let mut now = t0;
        let attempt = |book: &mut WakeBook, at: u64, armed: bool, carried: WakeStatus| {
            let facts = WakeFacts {
                activity: Some(&idle),
                already_fired: false,
                rewake_armed: armed,
                app_server: false,
            };
            match book.decide(&intent(Mode::Explicit), &facts, &cfg, at) {
                Decision::Skip(s) => s,
                Decision::Go(_) => {
                    book.fired("t", carried, at);
                    carried
                }
            }
        };
        // No route: the attempt counts for the debounce, not the interval.
        assert_eq!(
            attempt(&mut book, now, false, WakeStatus::SkippedNoTarget),
            WakeStatus::SkippedNoTarget
        );
        now += 299;
        assert_eq!(
            attempt(&mut book, now, true, WakeStatus::Fired),
            WakeStatus::SkippedDebounced
        );
        // A debounced attempt does not move the window.
        now = t0 + 300;
        assert_eq!(
            attempt(&mut book, now, true, WakeStatus::Fired),
            WakeStatus::Fired
        );
        let fired_at = now;
        now += 300;
        assert_eq!(
            attempt(&mut book, now, true, WakeStatus::Fired),
            WakeStatus::SkippedRateLimited
        );
        now = fired_at + 2999;
        assert_eq!(
            attempt(&mut book, now, true, WakeStatus::Fired),
            WakeStatus::SkippedRateLimited
        );
        now = fired_at + 3000;
        assert_eq!(
            attempt(&mut book, now, true, WakeStatus::FiredUnconfirmed),
            WakeStatus::FiredUnconfirmed
        );
        // ... and an unconfirmed (keys) wake starts the interval too.
        now += 300;
        assert_eq!(
            attempt(&mut book, now, true, WakeStatus::Fired),
            WakeStatus::SkippedRateLimited
        );
    }

    #[test]
    fn statuses_serialize_to_their_wire_strings() {
        for s in [
            WakeStatus::Fired,
            WakeStatus::FiredUnconfirmed,
            WakeStatus::Disabled,
            WakeStatus::SkippedDeduped,
            WakeStatus::SkippedBusy,
            WakeStatus::SkippedNoFreshIdle,
            WakeStatus::SkippedDebounced,
            WakeStatus::SkippedRateLimited,
            WakeStatus::SkippedNoTarget,
            WakeStatus::NothingToDeliver,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(s.to_string(), s.as_str());
        }
    }

    #[test]
    fn routes() {
        let cfg = WakeConfig::default();
        assert_eq!(choose(true, &cfg), Route::Rewake);
        assert_eq!(choose(false, &cfg), Route::Keys);
        let legacy = WakeConfig {
            strategy: Strategy::Legacy,
            ..cfg
        };
        assert_eq!(choose(true, &legacy), Route::Keys);
    }
}
