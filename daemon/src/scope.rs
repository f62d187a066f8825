//! Project scope from the file system (SPEC §3): a directory inside a git
//! work tree belongs to its repository, identified by the repository's common
//! git dir, so every linked worktree of one repository is one project.
//! Read straight from `.git` files; no `git` process is spawned.

use crate::state::Scope;
use std::path::{Path, PathBuf};

/// The scope of `dir`. With `per_worktree`, the project is the work tree.
/// Outside git, the canonical directory is the project.
///
/// # Errors
/// When `dir` does not exist or cannot be canonicalized.
pub fn scope_of(dir: &Path, per_worktree: bool) -> std::io::Result<Scope> {
    let dir = dir.canonicalize()?;
    for anc in dir.ancestors() {
        let dotgit = anc.join(".git");
        let Ok(meta) = std::fs::metadata(&dotgit) else {
            continue;
        };
        let gitdir = if meta.is_dir() {
            dotgit
        } else {
            match read_gitdir_file(&dotgit, anc) {
                Some(g) => g,
                None => continue,
            }
        };
        let common = common_dir(&gitdir);
        let worktree = anc.to_path_buf();
        let project_root = if common.file_name().is_some_and(|n| n == ".git") {
            common
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| common.clone())
        } else {
            common.clone()
        };
        let branch = read_branch(&gitdir);
        let project = if per_worktree {
            format!("worktree:{}", worktree.display())
        } else {
            format!("git:{}", common.display())
        };
        return Ok(Scope {
            project,
            project_root: if per_worktree {
                worktree.display().to_string()
            } else {
                project_root.display().to_string()
            },
            worktree: worktree.display().to_string(),
            branch,
        });
    }
    Ok(Scope {
        project: format!("dir:{}", dir.display()),
        project_root: dir.display().to_string(),
        worktree: dir.display().to_string(),
        branch: None,
    })
}

/// A `.git` file of a linked worktree or submodule: `gitdir: <path>`.
fn read_gitdir_file(dotgit: &Path, base: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(dotgit).ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
    let p = base.join(rel);
    p.canonicalize().ok()
}

/// `<gitdir>/commondir` points (usually relatively) at the shared git dir.
fn common_dir(gitdir: &Path) -> PathBuf {
    let gitdir = gitdir
        .canonicalize()
        .unwrap_or_else(|_| gitdir.to_path_buf());
    match std::fs::read_to_string(gitdir.join("commondir")) {
        Ok(rel) => {
            let p = gitdir.join(rel.trim());
            p.canonicalize().unwrap_or(p)
        }
        Err(_) => gitdir,
    }
}

fn read_branch(gitdir: &Path) -> Option<String> {
    let head = std::fs::read_to_string(gitdir.join("HEAD")).ok()?;
    head.trim()
        .strip_prefix("ref: refs/heads/")
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let st = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .expect("git runs");
        assert!(
            st.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    }

    #[test]
    fn worktrees_share_a_project_and_dirs_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join("sub")).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["commit", "-q", "--allow-empty", "-m", "init"]);
        git(&repo, &["worktree", "add", "-q", "-b", "feature", "../wt"]);
        let a = scope_of(&repo.join("sub"), false).unwrap();
        let b = scope_of(&tmp.path().join("wt"), false).unwrap();
        assert_eq!(a.project, b.project);
        assert_eq!(a.branch.as_deref(), Some("main"));
        assert_eq!(b.branch.as_deref(), Some("feature"));
        assert_ne!(a.worktree, b.worktree);
        assert_eq!(
            a.project_root,
            repo.canonicalize().unwrap().display().to_string()
        );
        // Per-worktree scope separates them.
        let aw = scope_of(&repo, true).unwrap();
        let bw = scope_of(&tmp.path().join("wt"), true).unwrap();
        assert_ne!(aw.project, bw.project);
        // Outside git: the directory itself.
        let plain = tmp.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        let p = scope_of(&plain, false).unwrap();
        assert!(p.project.starts_with("dir:"));
        assert_ne!(p.project, a.project);
    }
}
