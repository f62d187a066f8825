//! Shared machinery for editing the clients' configuration files in place:
//! where they live, a plan-then-apply report, comment- and
//! formatting-preserving JSON edits (jsonc-parser's CST), atomic writes.
//!
//! Every command computes all its edits first and writes nothing when any
//! file cannot be parsed, so bad input changes no state.

use jsonc_parser::cst::{CstInputValue, CstNode, CstRootNode};
use jsonc_parser::ParseOptions;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// Which clients a command acts on (`--client claude|codex|all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Clients {
    /// Claude Code.
    pub claude: bool,
    /// Codex CLI.
    pub codex: bool,
}

impl Clients {
    /// Both clients.
    pub const ALL: Clients = Clients {
        claude: true,
        codex: true,
    };

    /// Parses `claude`, `codex` or `all` (also `claude-code`, `both`).
    ///
    /// # Errors
    /// A sentence naming the accepted values.
    pub fn parse(s: &str) -> Result<Clients, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "claude" | "claude-code" => Ok(Clients {
                claude: true,
                codex: false,
            }),
            "codex" => Ok(Clients {
                claude: false,
                codex: true,
            }),
            "all" | "both" => Ok(Clients::ALL),
            other => Err(format!(
                "unknown client {other:?}: expected claude, codex or all"
            )),
        }
    }
}

/// Where the clients keep their configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientPaths {
    /// The user's home directory (`HOME`).
    pub home: PathBuf,
    /// Claude Code's config dir: `CLAUDE_CONFIG_DIR`, else `~/.claude`.
    pub claude_dir: PathBuf,
    /// Claude Code's user state file with user-scope MCP servers:
    /// `$CLAUDE_CONFIG_DIR/.claude.json` when that variable is set, else
    /// `~/.claude.json`.
    pub claude_json: PathBuf,
    /// Codex's home: `CODEX_HOME`, else `~/.codex`.
    pub codex_home: PathBuf,
}

impl ClientPaths {
    /// Paths for a home directory and the optional overrides
    /// (`CLAUDE_CONFIG_DIR`, `CODEX_HOME`).
    pub fn new(home: &Path, claude_config_dir: Option<&Path>, codex_home: Option<&Path>) -> Self {
        let (claude_dir, claude_json) = match claude_config_dir {
            Some(d) => (d.to_path_buf(), d.join(".claude.json")),
            None => (home.join(".claude"), home.join(".claude.json")),
        };
        ClientPaths {
            home: home.to_path_buf(),
            claude_dir,
            claude_json,
            codex_home: codex_home
                .map(Path::to_path_buf)
                .unwrap_or_else(|| home.join(".codex")),
        }
    }

    /// Paths from this process's environment (`HOME`, `CLAUDE_CONFIG_DIR`,
    /// `CODEX_HOME`; empty values count as unset).
    ///
    /// # Errors
    /// When `HOME` is unset.
    pub fn from_env() -> io::Result<Self> {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let home = var("HOME").ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "HOME is not set; cannot find the clients' configuration",
            )
        })?;
        Ok(ClientPaths::new(
            &home,
            var("CLAUDE_CONFIG_DIR").as_deref(),
            var("CODEX_HOME").as_deref(),
        ))
    }

    /// `~/.claude/settings.json`: Claude Code user settings (hooks).
    pub fn claude_settings(&self) -> PathBuf {
        self.claude_dir.join("settings.json")
    }

    /// `$CODEX_HOME/hooks.json`: Codex user hooks.
    pub fn codex_hooks(&self) -> PathBuf {
        self.codex_home.join("hooks.json")
    }

    /// `$CODEX_HOME/config.toml`: Codex user config (MCP servers).
    pub fn codex_config(&self) -> PathBuf {
        self.codex_home.join("config.toml")
    }

    /// `path` with the home directory shown as `~` (for messages).
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.home) {
            Ok(rest) if !self.home.as_os_str().is_empty() => format!("~/{}", rest.display()),
            _ => path.display().to_string(),
        }
    }
}

/// What happens to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The file does not exist and is created.
    Create,
    /// The file is rewritten with the changes listed.
    Update,
    /// The file already says what it should.
    Unchanged,
}

/// One planned (or applied) file change.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    /// The file.
    pub path: PathBuf,
    /// Create, update, or leave alone.
    pub action: Action,
    /// One line per change made inside the file.
    pub details: Vec<String>,
    /// The new content (not serialized).
    #[serde(skip)]
    pub new_text: Option<String>,
}

/// The outcome of a configuration command, printed for the user.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Nothing was written.
    pub dry_run: bool,
    /// Every file looked at.
    pub changes: Vec<FileChange>,
    /// Things that could not be changed safely and were left alone.
    pub warnings: Vec<String>,
    /// Follow-up steps for the user (e.g. Codex hook trust).
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a file change computed from old and new text.
    pub fn push_file(&mut self, path: &Path, old: Option<&str>, new: String, details: Vec<String>) {
        let action = match old {
            None => Action::Create,
            Some(o) if o == new => Action::Unchanged,
            Some(_) => Action::Update,
        };
        let details = if action == Action::Unchanged {
            Vec::new()
        } else {
            details
        };
        self.changes.push(FileChange {
            path: path.to_path_buf(),
            action,
            details,
            new_text: (action != Action::Unchanged).then_some(new),
        });
    }

    /// Writes every created or updated file (unless `dry_run`).
    ///
    /// # Errors
    /// The first write that fails, naming the file. Files written before it
    /// stay written (each write is atomic on its own).
    pub fn apply(&mut self) -> io::Result<()> {
        if self.dry_run {
            return Ok(());
        }
        for c in &self.changes {
            if let Some(text) = &c.new_text {
                write_atomic(&c.path, text).map_err(|e| {
                    io::Error::new(e.kind(), format!("writing {}: {e}", c.path.display()))
                })?;
            }
        }
        Ok(())
    }

    /// The report for people: one block per file, then warnings and notes.
    pub fn render(&self, paths: &ClientPaths) -> String {
        let mut s = String::new();
        let verb = |a: Action| match (a, self.dry_run) {
            (Action::Create, false) => "created",
            (Action::Create, true) => "would create",
            (Action::Update, false) => "updated",
            (Action::Update, true) => "would update",
            (Action::Unchanged, _) => "unchanged",
        };
        for c in &self.changes {
            let _ = writeln!(s, "{}: {}", paths.display(&c.path), verb(c.action));
            for d in &c.details {
                let _ = writeln!(s, "  - {d}");
            }
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        if self.dry_run {
            let _ = writeln!(s, "(dry run: nothing was written)");
        }
        s
    }
}

/// Reads `path`: `Ok(None)` when it does not exist.
///
/// # Errors
/// Any other read error, or content that is not UTF-8.
pub fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b).map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not UTF-8 text", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("reading {}: {e}", path.display()),
        )),
    }
}

/// Writes `text` to `path` atomically, keeping the old file's permissions
/// (new files get 0600, since client config may hold credentials) and
/// following a symlink to write its target; see
/// [`oxtail_proto::fsutil::write_atomic`].
///
/// # Errors
/// Any I/O error; the original file is untouched then.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    oxtail_proto::fsutil::write_atomic(path, text, oxtail_proto::fsutil::FileMode::KeepOr(0o600))
}

/// A JSON document being edited: the strict parse (for meaning) and the
/// CST (for writing back with every byte we do not touch unchanged).
#[derive(Debug)]
pub struct JsonDoc {
    /// The CST; edit it, then [`JsonDoc::text`].
    pub root: CstRootNode,
    /// The file existed.
    pub existed: bool,
    /// Whether the text ends with a newline (kept as it was).
    trailing_newline: bool,
}

impl JsonDoc {
    /// Parses `text` (or starts an empty object when `None`). The text must
    /// be strict JSON with an object at the top, as the clients read it.
    ///
    /// # Errors
    /// A sentence naming `path` and what is wrong with it.
    pub fn parse(path: &Path, text: Option<&str>) -> Result<JsonDoc, String> {
        let existed = text.is_some();
        let text = match text {
            Some(t) if !t.trim().is_empty() => t,
            _ => "{}\n",
        };
        let strict: Value = serde_json::from_str(text).map_err(|e| {
            format!(
                "{} is not valid JSON ({e}); fix or move it, then run this again",
                path.display()
            )
        })?;
        if !strict.is_object() {
            return Err(format!(
                "{} does not hold a JSON object at the top; left alone",
                path.display()
            ));
        }
        let root = CstRootNode::parse(text, &ParseOptions::default())
            .map_err(|e| format!("{} could not be parsed: {e}", path.display()))?;
        if root.object_value().is_none() {
            return Err(format!("{} has no top-level object", path.display()));
        }
        Ok(JsonDoc {
            root,
            existed,
            trailing_newline: text.ends_with('\n'),
        })
    }

    /// The document as text; it ends with a newline when the original did
    /// (new files do).
    pub fn text(&self) -> String {
        let mut s = self.root.to_string();
        if self.trailing_newline && !s.ends_with('\n') {
            s.push('\n');
        }
        s
    }
}

/// Converts an ordered [`CstInputValue`] to a `serde_json::Value` (for
/// comparing what a file says with what we would write).
pub fn input_to_value(v: &CstInputValue) -> Value {
    match v {
        CstInputValue::Null => Value::Null,
        CstInputValue::Bool(b) => Value::Bool(*b),
        CstInputValue::Number(n) => serde_json::from_str(n).unwrap_or(Value::Null),
        CstInputValue::String(s) => Value::String(s.clone()),
        CstInputValue::Array(a) => Value::Array(a.iter().map(input_to_value).collect()),
        CstInputValue::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), input_to_value(v)))
                .collect(),
        ),
    }
}

/// Builds an ordered JSON object for CST insertion.
pub fn obj(fields: Vec<(&str, CstInputValue)>) -> CstInputValue {
    CstInputValue::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// The serde value of a CST node (`Value::Null` when it cannot be read).
pub fn node_value(n: &CstNode) -> Value {
    n.to_serde_value().unwrap_or(Value::Null)
}

/// Quotes `s` for a POSIX shell when needed (both clients run hook
/// commands through a shell: Claude Code through `sh -c`, Codex through
/// `$SHELL -lc`).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@%,".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Splits a shell command line into words with POSIX shell quoting
/// (`shlex`): reads back what [`shell_quote`] writes and what people
/// usually type. `None` when the quoting is unbalanced.
pub fn shell_words(s: &str) -> Option<Vec<String>> {
    shlex::split(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips() {
        for s in [
            "/usr/bin/oxtail",
            "/home/a b/oxtail",
            "/it's/here",
            "",
            "$(rm -rf ~)",
        ] {
            let q = shell_quote(s);
            assert_eq!(shell_words(&q).unwrap(), vec![s.to_string()], "{q}");
        }
        assert_eq!(
            shell_words(r#"a "b c" 'd e' f\ g"#).unwrap(),
            vec!["a", "b c", "d e", "f g"]
        );
        assert_eq!(shell_words("'open"), None);
    }

    #[test]
    fn clients_parse() {
        assert_eq!(Clients::parse("all").unwrap(), Clients::ALL);
        assert!(Clients::parse("claude").unwrap().claude);
        assert!(!Clients::parse("claude").unwrap().codex);
        assert!(Clients::parse("Codex").unwrap().codex);
        assert!(Clients::parse("gemini")
            .unwrap_err()
            .contains("claude, codex or all"));
    }

    #[test]
    fn paths_from_overrides() {
        let p = ClientPaths::new(Path::new("/h"), None, None);
        assert_eq!(p.claude_settings(), Path::new("/h/.claude/settings.json"));
        assert_eq!(p.claude_json, Path::new("/h/.claude.json"));
        assert_eq!(p.codex_hooks(), Path::new("/h/.codex/hooks.json"));
        assert_eq!(p.display(&p.codex_config()), "~/.codex/config.toml");
        let p = ClientPaths::new(
            Path::new("/h"),
            Some(Path::new("/c")),
            Some(Path::new("/x")),
        );
        assert_eq!(p.claude_settings(), Path::new("/c/settings.json"));
        assert_eq!(p.claude_json, Path::new("/c/.claude.json"));
        assert_eq!(p.codex_config(), Path::new("/x/config.toml"));
    }

    #[test]
    fn atomic_write_keeps_mode_and_follows_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.json");
        std::fs::write(&real, "{}").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = d.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, "{\"a\":1}\n").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "{\"a\":1}\n");
        assert_eq!(
            std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let fresh = d.path().join("sub/new.json");
        write_atomic(&fresh, "x").unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn json_doc_rejects_bad_input() {
        let p = Path::new("/x/settings.json");
        assert!(JsonDoc::parse(p, Some("{ nope"))
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(JsonDoc::parse(p, Some("[1]"))
            .unwrap_err()
            .contains("object"));
        assert!(JsonDoc::parse(p, Some("{} // c")).is_err());
        let d = JsonDoc::parse(p, None).unwrap();
        assert!(!d.existed);
        assert_eq!(d.text(), "{}\n");
    }
}
