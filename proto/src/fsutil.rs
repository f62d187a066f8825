//! Small file-system helpers shared by every role.

use std::io::{self, Write};
use std::path::Path;

/// The permissions [`write_atomic`] gives the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// Keep the existing file's permissions; a new file gets these.
    KeepOr(u32),
    /// Always these.
    Exactly(u32),
}

/// Writes `text` to `path` atomically: a temp file in the same directory
/// (`tempfile`), fsync, renamed over the target (`persist`), then the
/// directory fsynced. Follows a symlink to write its target (dotfile
/// managers link these files). Creates missing parent directories.
///
/// # Errors
/// Any I/O error; the original file is untouched then and the temp file is
/// removed.
pub fn write_atomic(path: &Path, text: &str, mode: FileMode) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mode = match mode {
        FileMode::Exactly(m) => m,
        FileMode::KeepOr(m) => std::fs::metadata(&target)
            .map(|meta| meta.permissions().mode() & 0o7777)
            .unwrap_or(m),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.oxtail-"))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(&target).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_keeps_mode_and_follows_links() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sub/a.json");
        write_atomic(&f, "one", FileMode::KeepOr(0o600)).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "one");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&f, "two", FileMode::KeepOr(0o600)).unwrap();
        assert_eq!(mode(&f), 0o640);
        write_atomic(&f, "three", FileMode::Exactly(0o644)).unwrap();
        assert_eq!(mode(&f), 0o644);
        let link = d.path().join("link.json");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        write_atomic(&link, "four", FileMode::KeepOr(0o600)).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "four");
        // No temp file left behind.
        let left: Vec<_> = std::fs::read_dir(d.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}
