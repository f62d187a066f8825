//! Tunables from the environment (SPEC §8). Invalid values fall back to the
//! default with a logged warning, never a crash.

use crate::wake::{Strategy, WakeConfig};
use std::time::Duration;

/// Daemon tunables, read once at start.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `OXTAIL_RECEIVED_MAX`: received-ledger entries kept per session (1000).
    pub received_max: usize,
    /// `OXTAIL_DAEMON_IDLE_EXIT_S`: exit after this long with no shim
    /// connected (600 s); `None` under `--foreground`.
    pub idle_exit: Option<Duration>,
    /// `OXTAIL_SCOPE=worktree`: a project is one work tree, not a repository.
    pub scope_worktree: bool,
    /// `OXTAIL_JOURNAL_COMPACT_BYTES`: snapshot and compact once this many
    /// journal bytes accumulate (64 MiB).
    pub compact_bytes: u64,
    /// `OXTAIL_RETENTION_MS`: receipts and sent messages are kept this long
    /// (7 days, in ms).
    pub retention_ms: u64,
    /// `OXTAIL_RETAINED_MAX`: delivered messages (and their receipts) kept
    /// at most (100 000); beyond it the oldest are pruned first, whatever
    /// their age. Queued messages and open obligations are never pruned.
    pub retained_max: usize,
    /// `OXTAIL_RETENTION_INTERVAL_MS`: how often the retention pass runs
    /// (60 000 ms).
    pub retention_interval_ms: u64,
    /// `OXTAIL_FAULT_JOURNAL_FULL_AFTER_BYTES` (tests only): the journal
    /// reports "no space left" after this many bytes.
    pub fault_journal_full_after: Option<u64>,
    /// `OXTAIL_ASK_PEER_TIMEOUT_MS`: default `ask_peer` wait (50 000 ms,
    /// under Codex's default 60 s tool timeout).
    pub ask_timeout_ms: u64,
    /// `OXTAIL_ASK_PEER_MAX_TIMEOUT_MS`: a per-call `timeout_ms` is clamped
    /// to this (100 000 ms).
    pub ask_max_timeout_ms: u64,
    /// `OXTAIL_ASK_WAKE_GRACE_MS`: how long an `ask_peer` waits for an
    /// answer before it wakes the peer (500 ms, CONTRACT §11); an answer
    /// within it reports `wake_status: "skipped_busy"` and types nothing.
    pub ask_wake_grace_ms: u64,
    /// `OXTAIL_PENDING_ASK_TTL_MS`: how long an unanswered ask waits for a
    /// late reply after its wait ended (3 600 000 ms).
    pub pending_ask_ttl_ms: u64,
    /// `OXTAIL_HOOK_BUDGET_CHARS`: rendered mail per hook handoff (9000).
    pub hook_budget_chars: usize,
    /// `OXTAIL_READ_MAX_MESSAGES`: most messages one `read_my_messages`
    /// returns (50; at least one is always returned).
    pub read_max_messages: usize,
    /// `OXTAIL_READ_MAX_BODY_BYTES`: most body bytes one `read_my_messages`
    /// returns (65 536; a single larger message still goes out alone).
    pub read_max_body_bytes: usize,
    /// `OXTAIL_HANDOVER_TTL_MS`: how long mail handed to a client waits for
    /// its ack before it is put back in the mailbox (30 000 ms). A shim acks
    /// as soon as it wrote the tool result; a hook, once it printed.
    pub handover_ttl_ms: u64,
    /// How long an edit keeps warning peers, ms after the agent's last edit
    /// of the file (`OXTAIL_TOUCH_WINDOW_S`, default 30 min).
    pub touch_window_ms: u64,
    /// `OXTAIL_TMUX_TIMEOUT_MS`: the most one tmux command may take before
    /// it is killed (3000 ms). The probe worker and the keys thread wait on
    /// tmux, never the core thread.
    pub tmux_timeout: Duration,
    /// Wake engine tunables.
    pub wake: crate::wake::WakeConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            received_max: 1000,
            idle_exit: Some(Duration::from_secs(600)),
            scope_worktree: false,
            compact_bytes: 64 << 20,
            retention_ms: 7 * 24 * 3600 * 1000,
            retained_max: 100_000,
            retention_interval_ms: 60_000,
            fault_journal_full_after: None,
            ask_timeout_ms: 50_000,
            ask_max_timeout_ms: 100_000,
            pending_ask_ttl_ms: 3_600_000,
            ask_wake_grace_ms: 500,
            hook_budget_chars: 9000,
            handover_ttl_ms: 30_000,
            touch_window_ms: crate::files::DEFAULT_TOUCH_WINDOW_MS,
            read_max_messages: 50,
            read_max_body_bytes: 65_536,
            tmux_timeout: crate::tmux::DEFAULT_TIMEOUT,
            wake: crate::wake::WakeConfig::default(),
        }
    }
}

/// Reads `name` as a positive integer; unset gives `None`, an invalid value
/// logs a warning and gives `None`.
pub fn env_u64(name: &str) -> Option<u64> {
    let raw = std::env::var(name).ok()?;
    match raw.trim().parse::<u64>() {
        Ok(v) if v > 0 => Some(v),
        _ => {
            tracing::warn!(variable = name, value = %raw, "invalid value (want a positive integer); using the default");
            None
        }
    }
}

impl Config {
    /// Reads every variable; `foreground` disables the idle exit.
    pub fn from_env(foreground: bool) -> Config {
        let d = Config::default();
        let scope = std::env::var("OXTAIL_SCOPE").ok();
        let scope_worktree = match scope.as_deref() {
            None | Some("") | Some("repo") | Some("repository") => false,
            Some("worktree") => true,
            Some(other) => {
                tracing::warn!(
                    value = other,
                    "OXTAIL_SCOPE must be `worktree` or `repository`; using repository"
                );
                false
            }
        };
        Config {
            received_max: env_u64("OXTAIL_RECEIVED_MAX").map_or(d.received_max, |v| v as usize),
            idle_exit: if foreground {
                None
            } else {
                Some(
                    env_u64("OXTAIL_DAEMON_IDLE_EXIT_S")
                        .map_or(d.idle_exit.unwrap(), Duration::from_secs),
                )
            },
            scope_worktree,
            compact_bytes: env_u64("OXTAIL_JOURNAL_COMPACT_BYTES").unwrap_or(d.compact_bytes),
            retention_ms: env_u64("OXTAIL_RETENTION_MS").unwrap_or(d.retention_ms),
            retained_max: env_u64("OXTAIL_RETAINED_MAX").map_or(d.retained_max, |v| v as usize),
            retention_interval_ms: env_u64("OXTAIL_RETENTION_INTERVAL_MS")
                .unwrap_or(d.retention_interval_ms),
            fault_journal_full_after: env_u64("OXTAIL_FAULT_JOURNAL_FULL_AFTER_BYTES"),
            ask_timeout_ms: env_u64("OXTAIL_ASK_PEER_TIMEOUT_MS").unwrap_or(d.ask_timeout_ms),
            ask_max_timeout_ms: env_u64("OXTAIL_ASK_PEER_MAX_TIMEOUT_MS")
                .unwrap_or(d.ask_max_timeout_ms),
            pending_ask_ttl_ms: env_u64("OXTAIL_PENDING_ASK_TTL_MS")
                .unwrap_or(d.pending_ask_ttl_ms),
            ask_wake_grace_ms: env_u64("OXTAIL_ASK_WAKE_GRACE_MS").unwrap_or(d.ask_wake_grace_ms),
            hook_budget_chars: env_u64("OXTAIL_HOOK_BUDGET_CHARS")
                .map_or(d.hook_budget_chars, |v| v as usize),
            handover_ttl_ms: env_u64("OXTAIL_HANDOVER_TTL_MS").unwrap_or(d.handover_ttl_ms),
            touch_window_ms: env_u64("OXTAIL_TOUCH_WINDOW_S")
                .map_or(d.touch_window_ms, |s| s.saturating_mul(1000)),
            read_max_messages: env_u64("OXTAIL_READ_MAX_MESSAGES")
                .map_or(d.read_max_messages, |v| v as usize),
            read_max_body_bytes: env_u64("OXTAIL_READ_MAX_BODY_BYTES")
                .map_or(d.read_max_body_bytes, |v| v as usize),
            tmux_timeout: env_u64("OXTAIL_TMUX_TIMEOUT_MS")
                .map_or(d.tmux_timeout, Duration::from_millis),
            wake: wake_from_env(),
        }
    }
}

/// The wake tunables from the environment; invalid values log a warning
/// and keep the default.
fn wake_from_env() -> WakeConfig {
    let d = WakeConfig::default();
    let strategy = match std::env::var("OXTAIL_ASK_PEER_WAKE_STRATEGY")
        .ok()
        .as_deref()
    {
        None | Some("") | Some("auto") => Strategy::Auto,
        Some("legacy") => Strategy::Legacy,
        Some("off") => Strategy::Off,
        Some(other) => {
            tracing::warn!(
                value = other,
                "OXTAIL_ASK_PEER_WAKE_STRATEGY must be auto, legacy or off; using auto"
            );
            Strategy::Auto
        }
    };
    let autowake_off = match std::env::var("OXTAIL_AUTOWAKE").ok().as_deref() {
        None | Some("") | Some("on") | Some("1") | Some("true") => false,
        Some("off") | Some("0") | Some("false") => true,
        Some(other) => {
            tracing::warn!(value = other, "OXTAIL_AUTOWAKE must be on or off; using on");
            false
        }
    };
    WakeConfig {
        autowake_off,
        strategy,
        busy_ttl_ms: env_u64("OXTAIL_ACTIVITY_BUSY_TTL_MS").unwrap_or(d.busy_ttl_ms),
        fresh_idle_ms: env_u64("OXTAIL_AUTOWAKE_FRESH_IDLE_MS").unwrap_or(d.fresh_idle_ms),
        min_interval_ms: env_u64("OXTAIL_AUTOWAKE_MIN_INTERVAL_MS").unwrap_or(d.min_interval_ms),
        debounce_ms: env_u64("OXTAIL_WAKE_DEBOUNCE_MS").unwrap_or(d.debounce_ms),
    }
}
