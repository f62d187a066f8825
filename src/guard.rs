//! `oxtail guard install|uninstall|check`: a git pre-commit hook that
//! refuses a commit touching a file under a live peer's exclusive lease
//! (`claim_files {exclusive: true}`), naming the holder.
//!
//! * The hooks directory is git's own answer (`git rev-parse --git-path
//!   hooks`): it honors `core.hooksPath`, and in a linked work tree it is the
//!   shared one of the repository, so one install guards every work tree.
//! * An existing `pre-commit` that is not ours is kept as
//!   `pre-commit.oxtail-chained` and run first; `uninstall` puts it back.
//! * `check` reads the staged paths (`git diff --cached --name-only
//!   --no-renames`: both names of a rename), asks the daemon for the
//!   project's leases (`list_claims`), and refuses (exit 1) when a staged
//!   path is under another live agent's exclusive lease in this work tree.
//!   The committing agent's own leases never block it (`CLAUDE_CODE_SESSION_ID`
//!   / `CODEX_THREAD_ID`). `OXTAIL_GUARD=warn` only warns; no daemon, or
//!   no git, lets the commit through with a note (the guard fails open).
//!   `git commit --no-verify` skips it, as git users expect.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use oxtail_proto::client::connect_or_spawn;
use oxtail_proto::{Reply, Request, Role, ShimInfo};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The marker line that says a `pre-commit` is ours.
const MARKER: &str = "# oxtail guard: installed by `oxtail guard install`";
/// Where an earlier hook is kept.
const CHAINED: &str = "pre-commit.oxtail-chained";

/// `oxtail guard` subcommands.
#[derive(Subcommand, Debug)]
pub enum GuardCmd {
    /// Install the pre-commit guard in this repository (chains an existing hook).
    Install,
    /// Remove the guard, restoring a chained hook.
    Uninstall,
    /// Check the staged files against peers' exclusive leases (what the hook runs).
    Check,
}

fn git(args: &[&str]) -> Result<String> {
    let o = Command::new("git")
        .args(args)
        .output()
        .context("could not run git")?;
    if !o.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim_end().to_string())
}

fn hooks_dir() -> Result<PathBuf> {
    let p = PathBuf::from(git(&["rev-parse", "--git-path", "hooks"]).context(
        "oxtail guard works inside a git repository (git rev-parse --git-path hooks failed)",
    )?);
    Ok(if p.is_absolute() {
        p
    } else {
        std::env::current_dir()?.join(p)
    })
}

fn is_ours(p: &Path) -> bool {
    std::fs::read_to_string(p).is_ok_and(|s| s.contains(MARKER))
}

fn script(bin: &Path) -> String {
    format!(
        "#!/bin/sh\n{MARKER}; remove with `oxtail guard uninstall`.\n\
         # Refuses a commit touching a file under a live peer's exclusive lease.\n\
         # OXTAIL_GUARD=warn only warns; git commit --no-verify skips it.\n\
         hookdir=$(dirname \"$0\")\n\
         if [ -x \"$hookdir/{CHAINED}\" ]; then\n  \"$hookdir/{CHAINED}\" \"$@\" || exit $?\nfi\n\
         exec '{}' guard check\n",
        bin.display().to_string().replace('\'', "'\\''")
    )
}

fn install(json_out: bool) -> Result<()> {
    let dir = hooks_dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let hook = dir.join("pre-commit");
    let mut chained = false;
    if hook.exists() && !is_ours(&hook) {
        let keep = dir.join(CHAINED);
        if keep.exists() {
            bail!(
                "{} exists and so does {}: move one of them away first",
                hook.display(),
                keep.display()
            );
        }
        std::fs::rename(&hook, &keep)
            .with_context(|| format!("keeping the existing hook as {}", keep.display()))?;
        chained = true;
    }
    let bin = std::env::current_exe().context("locating the oxtail binary")?;
    std::fs::write(&hook, script(&bin)).with_context(|| format!("writing {}", hook.display()))?;
    set_exec(&hook)?;
    if json_out {
        println!(
            "{}",
            json!({"ok": true, "hook": hook, "chained": chained || dir.join(CHAINED).exists()})
        );
    } else {
        println!("installed the oxtail pre-commit guard: {}", hook.display());
        if chained {
            println!("your existing hook runs first (kept as {CHAINED})");
        }
    }
    Ok(())
}

fn set_exec(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(p)?.permissions();
    perm.set_mode(perm.mode() | 0o755);
    std::fs::set_permissions(p, perm)?;
    Ok(())
}

fn uninstall(json_out: bool) -> Result<()> {
    let dir = hooks_dir()?;
    let hook = dir.join("pre-commit");
    let ours = hook.exists() && is_ours(&hook);
    if ours {
        std::fs::remove_file(&hook)?;
    }
    let keep = dir.join(CHAINED);
    let restored = ours && keep.exists();
    if restored {
        std::fs::rename(&keep, &hook)?;
    }
    if json_out {
        println!(
            "{}",
            json!({"ok": true, "removed": ours, "restored": restored})
        );
    } else if ours {
        println!(
            "removed the oxtail pre-commit guard{}",
            if restored {
                "; your earlier hook is back"
            } else {
                ""
            }
        );
    } else {
        println!("no oxtail pre-commit guard installed in {}", dir.display());
    }
    Ok(())
}

/// The project's leases, as `list_claims` answers them for this directory.
fn claims(cwd: &Path) -> Result<Vec<Value>> {
    let mut c = connect_or_spawn(Role::Shim, true, Duration::from_secs(5))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    c.set_timeout(Some(Duration::from_secs(5)))?;
    let hello = ShimInfo {
        pid: std::process::id(),
        ppid: std::os::unix::process::parent_id(),
        cwd: cwd.to_path_buf(),
        env: Default::default(),
    };
    c.call(Request::ShimHello(hello))?;
    let r = c.call(Request::Tool {
        name: "list_claims".into(),
        args: json!({}),
        meta: None,
    })?;
    match r {
        Reply::Ok { value } => Ok(value["claims"].as_array().cloned().unwrap_or_default()),
        Reply::Error { message, .. } => bail!("the daemon answered: {message}"),
    }
}

/// The staged paths that fall under a peer's exclusive lease: (path, lease).
fn blocked(
    staged: &[String],
    leases: &[Value],
    worktree: &Path,
    me: &[String],
) -> Vec<(String, Value)> {
    let wt = std::fs::canonicalize(worktree).unwrap_or_else(|_| worktree.to_path_buf());
    let mut out = Vec::new();
    for l in leases {
        let holder = l["holder_session_id"].as_str().unwrap_or_default();
        if l["exclusive"] != true || me.iter().any(|m| m == holder) {
            continue;
        }
        let lwt = l["worktree"].as_str().map(PathBuf::from);
        if lwt.is_some_and(|p| std::fs::canonicalize(&p).unwrap_or(p) != wt) {
            continue;
        }
        let pat = l["path"].as_str().unwrap_or_default();
        for f in staged {
            if oxtail_daemon::files::pattern_matches(pat, f) {
                out.push((f.clone(), l.clone()));
            }
        }
    }
    out
}

fn check() -> Result<i32> {
    let warn_only = std::env::var("OXTAIL_GUARD").is_ok_and(|v| v.trim() == "warn");
    let top = match git(&["rev-parse", "--show-toplevel"]) {
        Ok(t) => PathBuf::from(t),
        Err(e) => {
            eprintln!("oxtail guard: skipped ({e})");
            return Ok(0);
        }
    };
    let staged: Vec<String> = git(&["diff", "--cached", "--name-only", "--no-renames", "-z"])?
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if staged.is_empty() {
        return Ok(0);
    }
    let leases = match claims(&top) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "oxtail guard: could not ask the oxtail daemon ({e}); letting the commit through"
            );
            return Ok(0);
        }
    };
    let me: Vec<String> = ["CLAUDE_CODE_SESSION_ID", "CODEX_THREAD_ID"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .filter(|v| !v.is_empty())
        .collect();
    let hits = blocked(&staged, &leases, &top, &me);
    if hits.is_empty() {
        return Ok(0);
    }
    eprintln!(
        "oxtail guard: {} staged file{} under a peer's exclusive lease:",
        hits.len(),
        if hits.len() == 1 { " is" } else { "s are" }
    );
    for (f, l) in &hits {
        let reason = l["reason"]
            .as_str()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        eprintln!(
            "  {f}: held by `{}` (lease on `{}`, {} s left){reason}",
            l["holder"].as_str().unwrap_or("?"),
            l["path"].as_str().unwrap_or("?"),
            l["expires_in_s"]
        );
    }
    if warn_only {
        eprintln!("oxtail guard: OXTAIL_GUARD=warn, committing anyway");
        return Ok(0);
    }
    eprintln!(
        "Ask the holder first (ask_peer {{target: \"<holder>\"}}), wait for its release, \
         or commit with --no-verify to bypass. OXTAIL_GUARD=warn only warns."
    );
    Ok(1)
}

/// Runs `oxtail guard <cmd>`; returns the exit code.
///
/// # Errors
/// Install/uninstall: not in a git repository, or the hooks directory
/// cannot be written. `check` fails open instead (exit 0 with a note).
pub fn run(cmd: GuardCmd, json_out: bool) -> Result<i32> {
    match cmd {
        GuardCmd::Install => install(json_out).map(|()| 0),
        GuardCmd::Uninstall => uninstall(json_out).map(|()| 0),
        GuardCmd::Check => check(),
    }
}
