//! The one way a test skips for want of a real component (the `claude` or
//! `codex` CLI, tmux, root and `setpriv`, a mount): it prints why and
//! returns, unless `OXTAIL_E2E_REQUIRED=1` (set by `.ci/run`), in which
//! case the test fails instead, so CI cannot be green with tests skipped.

/// Environment variable: `1` turns every skip into a failure.
pub const REQUIRED_ENV: &str = "OXTAIL_E2E_REQUIRED";

/// True when `OXTAIL_E2E_REQUIRED=1`.
pub fn required() -> bool {
    std::env::var(REQUIRED_ENV).is_ok_and(|v| v.trim() == "1")
}

/// Reports that the calling test cannot run because `why` (a sentence
/// naming what is missing and how to get it). Prints `skipping: <why>` on
/// stderr and returns, so the caller returns; under
/// `OXTAIL_E2E_REQUIRED=1` it panics, failing the test.
///
/// # Panics
/// Under `OXTAIL_E2E_REQUIRED=1`, always.
#[track_caller]
pub fn skip_or_fail(why: &str) {
    skip_or_fail_when(required(), why);
}

#[track_caller]
fn skip_or_fail_when(required: bool, why: &str) {
    if required {
        panic!("{REQUIRED_ENV}=1 and this test cannot run: {why}");
    }
    eprintln!("skipping: {why}");
}

/// `Some(())` when the process is root and `setpriv` runs (what a test
/// needs to act as uid 65534); else [`skip_or_fail`] and `None`.
pub fn root_with_setpriv_or_skip() -> Option<()> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if root && setpriv {
        return Some(());
    }
    skip_or_fail(&format!(
        "needs root and setpriv to act as uid 65534 (root={root}, setpriv={setpriv}); CI runs as root"
    ));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_the_variable_a_missing_component_skips() {
        skip_or_fail_when(false, "nothing is missing really");
    }

    #[test]
    #[should_panic(expected = "OXTAIL_E2E_REQUIRED=1 and this test cannot run: tmux")]
    fn with_the_variable_a_missing_component_fails() {
        skip_or_fail_when(true, "tmux is not installed");
    }
}
