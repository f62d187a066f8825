//! Where oxtail keeps its state and its socket.
//!
//! * State dir: `OXTAIL_HOME`, else the platform data dir
//!   (`~/.local/share/oxtail` on Linux, `~/Library/Application Support/oxtail`
//!   on macOS). It holds the journal, the log, the daemon lock.
//! * Socket: `OXTAIL_SOCKET`; else, when `OXTAIL_HOME` is set (an isolated
//!   instance, as tests use), `$OXTAIL_HOME/run/daemon.sock`; else
//!   `$XDG_RUNTIME_DIR/oxtail/daemon.sock`; else `<state dir>/run/daemon.sock`.
//!   A path longer than [`MAX_SOCKET_PATH`] bytes (the platform's `sun_path`
//!   limit is 104–108) falls back to `/tmp/oxtail-<uid>/<hash>.sock`
//!   (`/tmp` is replaced by `OXTAIL_SOCKET_FALLBACK_BASE` when set, so tests
//!   never touch a real user's directory). The daemon binds only in a
//!   directory owned by its user and not writable by group or others, and
//!   clients check the listener's uid before sending anything (see
//!   `client::connect_at`), so another local user who creates that
//!   directory first cannot pose as the daemon.

use std::path::{Path, PathBuf};

/// Longest socket path used as is, in bytes.
pub const MAX_SOCKET_PATH: usize = 100;

/// The state directory (not created here).
pub fn state_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("OXTAIL_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    if let Some(dirs) = directories::ProjectDirs::from("", "", "oxtail") {
        return dirs.data_dir().to_path_buf();
    }
    // No home directory at all: a per-user path under /tmp.
    PathBuf::from(format!("/tmp/oxtail-{}-state", uid()))
}

/// The daemon socket path (not created here).
pub fn socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os("OXTAIL_SOCKET").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let preferred = if std::env::var_os("OXTAIL_HOME").is_some_and(|v| !v.is_empty()) {
        state_dir().join("run").join("daemon.sock")
    } else if let Some(rt) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        PathBuf::from(rt).join("oxtail").join("daemon.sock")
    } else {
        state_dir().join("run").join("daemon.sock")
    };
    shorten_socket_path(&preferred)
}

/// Returns `p` if it fits [`MAX_SOCKET_PATH`], else a short per-user path
/// derived from it (stable: the same long path always maps to the same short
/// one).
pub fn shorten_socket_path(p: &Path) -> PathBuf {
    if p.as_os_str().len() <= MAX_SOCKET_PATH {
        return p.to_path_buf();
    }
    let base = std::env::var_os(FALLBACK_BASE_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    fallback_socket_path(&base, p)
}

/// Environment variable: the directory that holds the per-user fallback
/// socket directory (`<base>/oxtail-<uid>/`) instead of `/tmp`. For tests.
pub const FALLBACK_BASE_ENV: &str = "OXTAIL_SOCKET_FALLBACK_BASE";

/// The fallback socket for the too-long path `long`:
/// `<base>/oxtail-<uid>/<16 hex digits of FNV-1a of long>.sock`.
pub fn fallback_socket_path(base: &Path, long: &Path) -> PathBuf {
    let h = fnv1a64(long.as_os_str().as_encoded_bytes().iter().copied());
    base.join(format!("oxtail-{}", uid()))
        .join(format!("{h:016x}.sock"))
}

/// 64-bit FNV-1a of `bytes`: stable across runs, versions and platforms,
/// unlike std's hasher (so names derived from it stay the same).
pub fn fnv1a64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// Checks that `dir` may hold the daemon socket: a directory owned by this
/// process's user and not writable by group or others (else another local
/// user could replace the socket, or listen there first).
///
/// # Errors
/// `PermissionDenied` with a sentence naming the directory, its owner or
/// mode, and what to do; any error from reading its metadata.
pub fn check_socket_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir)?;
    let denied = |why: String| {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "refusing to use {} for the daemon socket: {why}; remove it or choose another OXTAIL_SOCKET",
                dir.display()
            ),
        ))
    };
    if !m.is_dir() {
        return denied("it is not a directory".into());
    }
    if m.uid() != uid() {
        return denied(format!(
            "it is owned by uid {}, not by you (uid {})",
            m.uid(),
            uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return denied(format!(
            "it is writable by group or others (mode {:o})",
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// The daemon's lock file; holding an exclusive lock on it makes a process
/// the one daemon of this state dir.
pub fn lock_path() -> PathBuf {
    state_dir().join("daemon.lock")
}

/// The daemon's log file.
pub fn log_path() -> PathBuf {
    state_dir().join("daemon.log")
}

/// Rotate the daemon log past this size, in bytes (8 MiB).
pub const LOG_ROTATE_BYTES: u64 = 8 << 20;

/// Keeps the daemon log bounded: when it has grown past
/// [`LOG_ROTATE_BYTES`], it becomes `daemon.log.1` (replacing the previous
/// one). Called before a daemon is started, which is when the log is opened;
/// a running daemon rotates its own with [`rotate_own_log`].
pub fn rotate_log() {
    let log = log_path();
    if std::fs::metadata(&log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let _ = std::fs::rename(&log, log.with_extension("log.1"));
    }
}

/// The daemon's own rotation, for a log it did not open itself (launchd's
/// `StandardErrorPath`) and for a long-running daemon: when this process's
/// stderr is the daemon log ([`log_path`], same device and inode) and it has
/// grown past [`LOG_ROTATE_BYTES`], the log becomes `daemon.log.1` and a
/// fresh `daemon.log` (0600, append) replaces stderr, and stdout when that
/// was the log too. Anything else (a terminal, journald's socket under
/// systemd) is left alone. Returns whether it rotated.
///
/// # Errors
/// When the rename or the new file fails (the old log stays in use).
pub fn rotate_own_log() -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let log = log_path();
    let Ok(meta) = std::fs::metadata(&log) else {
        return Ok(false);
    };
    if meta.len() <= LOG_ROTATE_BYTES {
        return Ok(false);
    }
    let is_log = |fd: i32| {
        // SAFETY: fstat writes into a zeroed struct we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(fd, &mut st) } == 0)
            && st.st_dev as u64 == meta.dev()
            && st.st_ino as u64 == meta.ino()
    };
    if !is_log(2) {
        return Ok(false);
    }
    let stdout_too = is_log(1);
    std::fs::rename(&log, log.with_extension("log.1"))?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log)?;
    // SAFETY: dup2 onto the standard descriptors; `f` stays valid for the
    // call and the duplicates outlive it.
    unsafe {
        libc::dup2(f.as_raw_fd(), 2);
        if stdout_too {
            libc::dup2(f.as_raw_fd(), 1);
        }
    }
    Ok(true)
}

/// The journal directory.
pub fn journal_dir() -> PathBuf {
    state_dir().join("journal")
}

/// The effective uid of this process.
pub fn uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates `dir` (and parents) and sets it to mode 0700.
///
/// # Errors
/// Any error from creating the directory or setting its mode.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// The Codex app-server control socket, relative to `CODEX_HOME`.
pub const CODEX_SOCKET_REL: &str = "app-server-control/app-server-control.sock";

/// The Codex app-server's control socket (Codex 0.169, default
/// `daemon_auto_start`): `$CODEX_HOME/app-server-control/app-server-control.sock`,
/// a symlink into a private directory under `/tmp`.
pub fn codex_socket_path(codex_home: &Path) -> PathBuf {
    codex_home.join(CODEX_SOCKET_REL)
}

/// The `CODEX_HOME` a process uses, from its `CODEX_HOME` and `HOME`
/// variables: the first, else `$HOME/.codex`. `None` when neither is set.
pub fn codex_home_of(codex_home: Option<&str>, home: Option<&str>) -> Option<String> {
    match (codex_home, home) {
        (Some(c), _) if !c.is_empty() => Some(c.to_string()),
        (_, Some(h)) if !h.is_empty() => Some(format!("{}/.codex", h.trim_end_matches('/'))),
        _ => None,
    }
}

/// Checks that the control socket under `codex_home` may be trusted: the
/// link (if it is one) and the socket it names are owned by this user, the
/// target is a Unix socket, and the socket grants nothing to group or
/// others. Returns the resolved socket path.
///
/// # Errors
/// A sentence saying what is missing or wrong (for statuses and `doctor`).
pub fn check_codex_socket(codex_home: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let link = codex_socket_path(codex_home);
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let lmeta = std::fs::symlink_metadata(&link).map_err(|e| {
        format!(
            "no Codex app-server socket at {} ({e}): is a Codex TUI running with the default daemon?",
            link.display()
        )
    })?;
    if lmeta.uid() != uid {
        return Err(format!("{} is not owned by this user", link.display()));
    }
    let target = std::fs::canonicalize(&link)
        .map_err(|e| format!("{} points nowhere ({e})", link.display()))?;
    let meta = std::fs::metadata(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    if !meta.file_type().is_socket() {
        return Err(format!("{} is not a socket", target.display()));
    }
    if meta.uid() != uid {
        return Err(format!("{} is not owned by this user", target.display()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is open to other users (mode {:o})",
            target.display(),
            meta.mode() & 0o777
        ));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_values() {
        assert_eq!(fnv1a64([]), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(*b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(*b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn the_log_rotates_past_its_limit() {
        let dir = tempfile_dir();
        std::env::set_var("OXTAIL_HOME", &dir);
        std::fs::write(log_path(), vec![b'x'; LOG_ROTATE_BYTES as usize + 1]).unwrap();
        rotate_log();
        assert!(!log_path().exists());
        assert!(dir.join("daemon.log.1").exists());
        std::fs::write(log_path(), b"small").unwrap();
        rotate_log();
        assert!(log_path().exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("oxtail-paths-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn long_paths_are_shortened_stably() {
        let long = PathBuf::from(format!("/{}/daemon.sock", "x".repeat(120)));
        let a = shorten_socket_path(&long);
        assert!(a.as_os_str().len() <= MAX_SOCKET_PATH, "{a:?}");
        assert_eq!(a, shorten_socket_path(&long));
        let short = PathBuf::from("/tmp/a/daemon.sock");
        assert_eq!(shorten_socket_path(&short), short);
        let base = PathBuf::from("/some/base");
        let f = fallback_socket_path(&base, &long);
        assert_eq!(f.parent().unwrap(), base.join(format!("oxtail-{}", uid())));
        assert_eq!(f.file_name(), a.file_name());
    }

    #[test]
    fn socket_dirs_must_be_private_and_ours() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile_dir().join("sockdir");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_socket_dir(&dir).unwrap();
        for mode in [0o770, 0o777, 0o1777, 0o702] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = check_socket_dir(&dir).unwrap_err();
            assert!(e.to_string().contains("writable by group or others"), "{e}");
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_socket_dir(&dir).unwrap();
    }
}
