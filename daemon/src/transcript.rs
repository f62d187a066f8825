//! Transcript reading for `read_session` (SPEC §4): a peer's recent turns
//! from its client's session file, newest first, within budgets.
//!
//! Sources (formats verified against `shared/fixtures/`):
//!
//! * Claude Code 2.1.329: `~/.claude/projects/<cwd with every
//!   non-alphanumeric char as '-'>/<session id>.jsonl`. One JSON object per
//!   line; `type: "user"` / `"assistant"` records carry `message.content`
//!   (a string, or blocks `text` / `tool_use` / `tool_result` / `thinking`),
//!   `timestamp`, `isSidechain`, `isMeta`. Other types (`attachment`,
//!   `api-request*`, `queue-operation`, `system`, `cost-state`, …) are
//!   bookkeeping and skipped. One API response is written as several
//!   `assistant` lines (one per content block) sharing `message.id`.
//! * Codex 0.169.0: `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread
//!   id>.jsonl`. Lines are `{timestamp, type, payload}`; the conversation is
//!   in `type: "response_item"`: `message` (role user / assistant /
//!   developer), `function_call` (`name`, optional `namespace`, `arguments`
//!   as a JSON string), `custom_tool_call`, `local_shell_call`,
//!   `web_search_call`, `tool_search_call`, and their `*_output` items.
//!   `event_msg` repeats the same content for UIs and is skipped.
//!
//! # Turns
//!
//! A [`Turn`] is a user prompt, or one model step: the consecutive
//! assistant records between two tool results or prompts (its text and its
//! tool calls, each summarized on one line). Tool results are omitted by
//! default ([`ReadOpts::include_tool_results`]).
//!
//! # Budgets
//!
//! The file is read backwards in chunks from its end, so a long transcript
//! costs only its tail: reading stops at `limit` turns, at `max_bytes` of
//! turn content, or after `tail_scan` bytes; [`TranscriptRead::budget_hit`]
//! says which one stopped it. Malformed lines (a torn last line while the
//! client is writing, garbage) are skipped and counted, never fatal.

use serde::Serialize;
use serde_json::Value;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Default number of turns (`read_session` `limit`).
pub const DEFAULT_LIMIT: usize = 20;
/// Default content budget in bytes (`read_session` `max_bytes`, 24 KB).
pub const DEFAULT_MAX_BYTES: usize = 24 * 1024;
/// Default bytes read from the end of the file (`tail_scan`, 4 MiB). Claude
/// Code transcripts carry large bookkeeping lines (request shapes, prompt
/// snapshots of ~100 KB), so a turn can cost far more file than text.
pub const DEFAULT_TAIL_SCAN: u64 = 4 << 20;
/// Bytes read per backward step.
const CHUNK: u64 = 64 * 1024;
/// Longest one-line tool call summary, in chars.
const TOOL_SUMMARY_CHARS: usize = 160;
/// Longest tool result summary, in chars.
const TOOL_RESULT_CHARS: usize = 200;

/// Reading options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOpts {
    /// At most this many turns.
    pub limit: usize,
    /// At most this many bytes of turn content (text + tool summaries +
    /// timestamps, UTF-8 bytes).
    pub max_bytes: usize,
    /// Read at most this many bytes from the end of the file.
    pub tail_scan: u64,
    /// Also return tool results as `tool` turns (one line each).
    pub include_tool_results: bool,
}

impl Default for ReadOpts {
    fn default() -> Self {
        ReadOpts {
            limit: DEFAULT_LIMIT,
            max_bytes: DEFAULT_MAX_BYTES,
            tail_scan: DEFAULT_TAIL_SCAN,
            include_tool_results: false,
        }
    }
}

/// Which client wrote the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TranscriptFormat {
    /// A Claude Code session transcript.
    ClaudeCode,
    /// A Codex rollout file.
    Codex,
}

/// Who speaks in a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The user's prompt.
    User,
    /// A model step.
    Assistant,
    /// A tool result (only with [`ReadOpts::include_tool_results`]).
    Tool,
}

/// One turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Turn {
    /// Who.
    pub role: Role,
    /// The text (may be empty for a step that only called tools).
    pub text: String,
    /// Tool calls of a model step, one line each: `Bash: cargo test`,
    /// `Edit: src/lib.rs`, `mcp__oxtail__send_message: {"target":…}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<String>,
    /// RFC 3339 time of the turn's first record, as the client wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The text was cut to fit `max_bytes`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Turn {
    /// Bytes this turn counts against `max_bytes`.
    pub fn size(&self) -> usize {
        self.text.len()
            + self.tool_calls.iter().map(|t| t.len() + 1).sum::<usize>()
            + self.timestamp.as_ref().map_or(0, String::len)
    }
}

/// Which budget stopped the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetHit {
    /// `limit` turns were returned and older ones exist.
    Limit,
    /// The next turn did not fit in `max_bytes` (or the newest was cut).
    MaxBytes,
    /// `tail_scan` bytes were read before reaching the file's start.
    TailScan,
}

/// Where the turns came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The file read.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Its modification time, ms since the Unix epoch.
    pub mtime_ms: Option<u64>,
    /// How long ago it was modified, ms (the client's last write).
    pub age_ms: Option<u64>,
}

/// The answer of [`read_turns`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TranscriptRead {
    /// Detected from the records; `None` when no record was recognized.
    pub format: Option<TranscriptFormat>,
    /// Newest first.
    pub turns: Vec<Turn>,
    /// Which budget stopped the read; `None` when the whole file was read.
    pub budget_hit: Option<BudgetHit>,
    /// Lines that were not valid JSON (torn or garbage), skipped.
    pub skipped_lines: usize,
    /// Bytes read from the end of the file.
    pub bytes_scanned: u64,
    /// The read reached the start of the file.
    pub reached_start: bool,
    /// File facts.
    pub provenance: Provenance,
}

/// Claude Code's project folder name for a working directory: every
/// character that is not ASCII alphanumeric becomes `-`
/// (`/home/user/project` → `-home-user-project`).
pub fn claude_project_dir_name(cwd: &Path) -> String {
    cwd.to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Whether `id` is safe to use as a file name component (session and
/// thread ids are UUIDs; anything with `/`, `..` or odd characters is
/// refused so an id from a peer cannot escape the transcript folders).
pub fn safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Claude Code's configuration folder: `CLAUDE_CONFIG_DIR` when set and
/// not empty (pass the client's own value when known), else
/// `<home>/.claude`. The one place this rule lives.
pub fn claude_dir(config_dir: Option<&str>, home: &Path) -> PathBuf {
    match config_dir.filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => home.join(".claude"),
    }
}

/// The folder Claude Code writes `cwd`'s transcripts to:
/// `<claude_dir>/projects/<mangled cwd>` (see [`claude_dir`]).
pub fn claude_project_dir(claude_dir: &Path, cwd: &Path) -> PathBuf {
    claude_dir
        .join("projects")
        .join(claude_project_dir_name(cwd))
}

/// `<claude_dir>/projects/<mangled cwd>/<session_id>.jsonl` (not checked
/// for existence); `None` for an unsafe id.
pub fn claude_transcript_path(claude_dir: &Path, cwd: &Path, session_id: &str) -> Option<PathBuf> {
    safe_id(session_id)
        .then(|| claude_project_dir(claude_dir, cwd).join(format!("{session_id}.jsonl")))
}

/// The `*.jsonl` files directly in `dir` with their creation times (session
/// id = file stem, seconds since the epoch), for the birth-time fallback
/// ([`crate::identity::birth_time_pick`]).
///
/// # Errors
/// When `dir` cannot be read, or the file system does not record creation
/// times.
pub fn created_transcripts(dir: &Path) -> Result<Vec<(String, u64)>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        let created = meta
            .created()
            .map_err(|_| "this file system does not record creation times".to_string())?;
        let secs = created
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
            out.push((stem.to_string(), secs));
        }
    }
    Ok(out)
}

/// Finds `<session_id>.jsonl` in any project folder under
/// `<claude_dir>/projects` (for when the cwd is unknown or Claude Code
/// shortened a long folder name). `claude_dir` is `~/.claude` or
/// `CLAUDE_CONFIG_DIR`.
pub fn find_claude_transcript(claude_dir: &Path, session_id: &str) -> Option<PathBuf> {
    if !safe_id(session_id) {
        return None;
    }
    let name = format!("{session_id}.jsonl");
    std::fs::read_dir(claude_dir.join("projects"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join(&name))
        .find(|p| p.is_file())
}

fn sorted_desc(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v.reverse();
    v
}

fn rollout_matches(p: &Path, thread_id: &str) -> bool {
    p.file_name().is_some_and(|n| {
        let n = n.to_string_lossy();
        n.starts_with("rollout-") && n.ends_with(&format!("-{thread_id}.jsonl"))
    })
}

/// Finds the rollout file of Codex thread `thread_id`:
/// `<codex_home>/sessions/YYYY/MM/DD/rollout-*-<thread_id>.jsonl`, newest
/// day first, then `<codex_home>/archived_sessions/`. `None` when absent or
/// the id is unsafe.
pub fn find_codex_rollout(codex_home: &Path, thread_id: &str) -> Option<PathBuf> {
    if !safe_id(thread_id) {
        return None;
    }
    for y in sorted_desc(&codex_home.join("sessions")) {
        for m in sorted_desc(&y) {
            for d in sorted_desc(&m) {
                if let Some(p) = sorted_desc(&d)
                    .into_iter()
                    .find(|p| rollout_matches(p, thread_id))
                {
                    return Some(p);
                }
            }
        }
    }
    sorted_desc(&codex_home.join("archived_sessions"))
        .into_iter()
        .find(|p| rollout_matches(p, thread_id))
}

/// Cuts `s` to at most `max` chars, marking a cut with `…`.
fn cut_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary.
fn cut_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The one-line summary of a tool call: `name: <main argument>`, where the
/// main argument is the first of `command`, `cmd`, `file_path`, `path`,
/// `notebook_path`, `pattern`, `query`, `url`, `description`, `prompt`,
/// `target` present in `input`; otherwise the compact JSON of `input`.
pub fn summarize_tool_call(name: &str, input: &Value) -> String {
    const KEYS: &[&str] = &[
        "command",
        "cmd",
        "file_path",
        "path",
        "notebook_path",
        "pattern",
        "query",
        "url",
        "description",
        "prompt",
        "target",
    ];
    let arg = KEYS.iter().find_map(|k| match input.get(*k)? {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => Some(
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    });
    let arg = match arg {
        Some(a) => a,
        None => match input {
            Value::Object(m) if m.is_empty() => String::new(),
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    };
    let arg = one_line(&arg);
    if arg.is_empty() {
        name.to_string()
    } else {
        cut_chars(&format!("{name}: {arg}"), TOOL_SUMMARY_CHARS)
    }
}

/// One conversational record, format-independent.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Prompt {
        text: String,
        ts: Option<String>,
    },
    Step {
        text: String,
        tools: Vec<String>,
        ts: Option<String>,
    },
    ToolResult {
        text: String,
        ts: Option<String>,
    },
}

fn ts_of(v: &Value) -> Option<String> {
    v.get("timestamp")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn blocks_text(content: &Value, kinds: &[&str]) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter(|b| {
                b.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| kinds.contains(&t))
            })
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn claude_entry(v: &Value) -> Option<Entry> {
    if v.get("isSidechain") == Some(&Value::Bool(true))
        || v.get("isMeta") == Some(&Value::Bool(true))
    {
        return None;
    }
    let ts = ts_of(v);
    let content = v.get("message")?.get("content")?;
    match v.get("type")?.as_str()? {
        "user" => {
            if let Value::Array(blocks) = content {
                if let Some(r) = blocks
                    .iter()
                    .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                {
                    let text = match r.get("content") {
                        Some(c @ Value::Array(_)) => blocks_text(c, &["text"]),
                        Some(Value::String(s)) => s.clone(),
                        _ => String::new(),
                    };
                    let err = if r.get("is_error") == Some(&Value::Bool(true)) {
                        "error: "
                    } else {
                        ""
                    };
                    return Some(Entry::ToolResult {
                        text: cut_chars(&format!("{err}{}", one_line(&text)), TOOL_RESULT_CHARS),
                        ts,
                    });
                }
            }
            let text = blocks_text(content, &["text"]);
            if text.trim().is_empty() || v.get("isCompactSummary") == Some(&Value::Bool(true)) {
                return None;
            }
            Some(Entry::Prompt { text, ts })
        }
        "assistant" => {
            let text = blocks_text(content, &["text"]);
            let tools = match content {
                Value::Array(a) => a
                    .iter()
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
                    .map(|b| {
                        summarize_tool_call(
                            b.get("name").and_then(Value::as_str).unwrap_or("tool"),
                            b.get("input").unwrap_or(&Value::Null),
                        )
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if text.trim().is_empty() && tools.is_empty() {
                return None;
            }
            Some(Entry::Step { text, tools, ts })
        }
        _ => None,
    }
}

/// Whether a Codex user message is context Codex injected (environment,
/// instructions), not something the user typed: a single `<tag>…</tag>`
/// block, or the AGENTS.md preamble.
fn codex_injected(text: &str) -> bool {
    let t = text.trim();
    if t.starts_with("# AGENTS.md instructions") {
        return true;
    }
    let Some(rest) = t.strip_prefix('<') else {
        return false;
    };
    let tag: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    !tag.is_empty() && t.ends_with(&format!("</{tag}>"))
}

fn codex_entry(v: &Value) -> Option<Entry> {
    if v.get("type")?.as_str()? != "response_item" {
        return None;
    }
    let ts = ts_of(v);
    let p = v.get("payload")?;
    let kind = p.get("type")?.as_str()?;
    let tool = |name: String, input: Value| Entry::Step {
        text: String::new(),
        tools: vec![summarize_tool_call(&name, &input)],
        ts: ts.clone(),
    };
    match kind {
        "message" => {
            let content = p.get("content")?;
            match p.get("role")?.as_str()? {
                "user" => {
                    let text = blocks_text(content, &["input_text", "text"]);
                    (!text.trim().is_empty() && !codex_injected(&text))
                        .then_some(Entry::Prompt { text, ts })
                }
                "assistant" => {
                    let text = blocks_text(content, &["output_text", "text"]);
                    (!text.trim().is_empty()).then(|| Entry::Step {
                        text,
                        tools: Vec::new(),
                        ts,
                    })
                }
                _ => None,
            }
        }
        "function_call" => {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("tool");
            let name = match p.get("namespace").and_then(Value::as_str) {
                Some(ns) if !ns.is_empty() => format!("{ns}__{name}"),
                _ => name.to_string(),
            };
            let args = match p.get("arguments") {
                Some(Value::String(s)) => {
                    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
                }
                Some(other) => other.clone(),
                None => Value::Null,
            };
            Some(tool(name, args))
        }
        "custom_tool_call" => {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("tool");
            let input = p
                .get("input")
                .and_then(Value::as_str)
                .map(|s| {
                    s.lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_default();
            Some(tool(name.to_string(), Value::String(input)))
        }
        "local_shell_call" => Some(tool(
            "shell".into(),
            p.get("action").cloned().unwrap_or(Value::Null),
        )),
        "web_search_call" => Some(tool(
            "web_search".into(),
            p.get("action").cloned().unwrap_or(Value::Null),
        )),
        "tool_search_call" => Some(tool(
            "tool_search".into(),
            p.get("arguments").cloned().unwrap_or(Value::Null),
        )),
        k if k.ends_with("_output") => {
            let text = match p.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(o @ Value::Array(_)) => blocks_text(o, &["input_text", "output_text", "text"]),
                Some(Value::Object(o)) => o
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                _ => String::new(),
            };
            Some(Entry::ToolResult {
                text: cut_chars(&one_line(&text), TOOL_RESULT_CHARS),
                ts,
            })
        }
        _ => None,
    }
}

/// Reads a file backwards, line by line, newest first.
struct RevLines {
    file: File,
    /// File offset of `buf[0]`.
    pos: u64,
    /// Lowest offset to read (file size − tail_scan).
    floor: u64,
    /// Unprocessed bytes `[pos, pos + buf.len())`.
    buf: Vec<u8>,
}

/// One line from [`RevLines`].
enum Line {
    /// A whole line.
    Whole(Vec<u8>),
    /// The oldest bytes of the scan window: the line was cut by `tail_scan`.
    Cut,
}

impl RevLines {
    fn new(file: File, size: u64, tail_scan: u64) -> RevLines {
        RevLines {
            file,
            pos: size,
            floor: size.saturating_sub(tail_scan),
            buf: Vec::new(),
        }
    }

    fn read_more(&mut self) -> io::Result<bool> {
        if self.pos <= self.floor {
            return Ok(false);
        }
        let start = self.pos.saturating_sub(CHUNK).max(self.floor);
        let mut chunk = vec![0; (self.pos - start) as usize];
        self.file.seek(SeekFrom::Start(start))?;
        self.file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&self.buf);
        self.buf = chunk;
        self.pos = start;
        Ok(true)
    }

    fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            if let Some(i) = self.buf.iter().rposition(|b| *b == b'\n') {
                let line = self.buf.split_off(i + 1);
                self.buf.truncate(i);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(Line::Whole(line)));
            }
            if !self.read_more()? {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.buf);
                return Ok(Some(if self.floor == 0 {
                    Line::Whole(rest)
                } else {
                    Line::Cut
                }));
            }
        }
    }

    fn scanned(&self, size: u64) -> u64 {
        size - self.pos
    }
}

fn provenance(path: &Path, meta: &std::fs::Metadata) -> Provenance {
    let mtime_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64);
    let age_ms = meta.modified().ok().map(|t| {
        SystemTime::now()
            .duration_since(t)
            .map_or(0, |d| d.as_millis() as u64)
    });
    Provenance {
        path: path.to_path_buf(),
        size_bytes: meta.len(),
        mtime_ms,
        age_ms,
    }
}

/// Collects turns newest first under the budgets.
struct Collector<'a> {
    opts: &'a ReadOpts,
    turns: Vec<Turn>,
    used: usize,
    hit: Option<BudgetHit>,
    /// The model step being assembled (its newest parts first seen).
    pending: Option<Turn>,
}

impl Collector<'_> {
    fn done(&self) -> bool {
        self.hit.is_some()
    }

    fn emit(&mut self, mut t: Turn) {
        if self.done() {
            return;
        }
        if self.turns.len() >= self.opts.limit {
            self.hit = Some(BudgetHit::Limit);
            return;
        }
        let size = t.size();
        if self.used + size > self.opts.max_bytes {
            if self.turns.is_empty() {
                // The newest turn is always shown, cut to fit: first its
                // timestamp and trailing tool lines if they alone overflow,
                // then its text.
                let max = self.opts.max_bytes;
                if t.size() - t.text.len() > max {
                    t.timestamp = None;
                    while t.size() - t.text.len() > max && t.tool_calls.pop().is_some() {}
                }
                let room = max.saturating_sub(t.size() - t.text.len());
                t.text = cut_bytes(&t.text, room).to_string();
                t.truncated = true;
                self.used += t.size();
                self.turns.push(t);
            }
            self.hit = Some(BudgetHit::MaxBytes);
            return;
        }
        self.used += size;
        self.turns.push(t);
    }

    fn flush(&mut self) {
        if let Some(t) = self.pending.take() {
            self.emit(t);
        }
    }

    fn push(&mut self, e: Entry) {
        match e {
            Entry::Step { text, tools, ts } => {
                let p = self.pending.get_or_insert_with(|| Turn {
                    role: Role::Assistant,
                    text: String::new(),
                    tool_calls: Vec::new(),
                    timestamp: None,
                    truncated: false,
                });
                // Reading backwards: this part precedes what is pending.
                if !text.trim().is_empty() {
                    p.text = if p.text.is_empty() {
                        text
                    } else {
                        format!("{text}\n{}", p.text)
                    };
                }
                if !tools.is_empty() {
                    let mut t = tools;
                    t.append(&mut p.tool_calls);
                    p.tool_calls = t;
                }
                if ts.is_some() {
                    p.timestamp = ts;
                }
            }
            Entry::Prompt { text, ts } => {
                self.flush();
                self.emit(Turn {
                    role: Role::User,
                    text,
                    tool_calls: Vec::new(),
                    timestamp: ts,
                    truncated: false,
                });
            }
            Entry::ToolResult { text, ts } => {
                self.flush();
                if self.opts.include_tool_results {
                    self.emit(Turn {
                        role: Role::Tool,
                        text,
                        tool_calls: Vec::new(),
                        timestamp: ts,
                        truncated: false,
                    });
                }
            }
        }
    }
}

/// Reads the newest turns of a Claude Code transcript or Codex rollout.
///
/// # Errors
/// Only when the file cannot be opened or read; malformed content never
/// fails (it is skipped and counted in [`TranscriptRead::skipped_lines`]).
pub fn read_turns(path: &Path, opts: &ReadOpts) -> io::Result<TranscriptRead> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let size = meta.len();
    let mut lines = RevLines::new(file, size, opts.tail_scan);
    let mut c = Collector {
        opts,
        turns: Vec::new(),
        used: 0,
        hit: None,
        pending: None,
    };
    let mut format = None;
    let mut skipped = 0;
    let mut reached_start = false;
    while !c.done() {
        let Some(line) = lines.next_line()? else {
            reached_start = true;
            break;
        };
        let bytes = match line {
            Line::Whole(b) => b,
            Line::Cut => break,
        };
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            skipped += 1;
            continue;
        };
        let entry = if v.get("payload").is_some() {
            format.get_or_insert(TranscriptFormat::Codex);
            codex_entry(&v)
        } else if v.get("type").is_some() {
            if v.get("sessionId").is_some() || v.get("message").is_some() {
                format.get_or_insert(TranscriptFormat::ClaudeCode);
            }
            claude_entry(&v)
        } else {
            None
        };
        if let Some(e) = entry {
            c.push(e);
        }
    }
    c.flush();
    if c.hit.is_none() && !reached_start {
        c.hit = Some(BudgetHit::TailScan);
    }
    Ok(TranscriptRead {
        format,
        turns: c.turns,
        budget_hit: c.hit,
        skipped_lines: skipped,
        bytes_scanned: lines.scanned(size),
        reached_start,
        provenance: provenance(path, &meta),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
    }

    fn claude_fixture() -> PathBuf {
        fixtures()
            .join("claude-code-2.1.329/transcripts/0cf6bf8d-ddf3-4f94-96b5-206f7b134357.jsonl")
    }

    fn codex_fixture() -> PathBuf {
        fixtures().join(
            "codex-0.169.0/rollouts/rollout-2026-11-21T05-03-28-01a1fc7c-f019-7f70-bd45-c4e66d586f46.jsonl",
        )
    }

    fn all(path: &Path) -> TranscriptRead {
        read_turns(
            path,
            &ReadOpts {
                limit: 1000,
                max_bytes: usize::MAX / 2,
                tail_scan: u64::MAX,
                include_tool_results: false,
            },
        )
        .unwrap()
    }

    #[test]
    fn claude_fixture_turns_newest_first() {
        let r = all(&claude_fixture());
        assert_eq!(r.format, Some(TranscriptFormat::ClaudeCode));
        assert_eq!(r.skipped_lines, 0);
        assert!(r.reached_start);
        assert_eq!(r.budget_hit, None);
        let got: Vec<(Role, &str, Vec<&str>)> = r
            .turns
            .iter()
            .map(|t| {
                (
                    t.role,
                    t.text.as_str(),
                    t.tool_calls.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Role::Assistant, "all done", vec![]),
                (
                    Role::Assistant,
                    "",
                    vec!["Bash: echo $CLAUDE_CODE_SESSION_ID"]
                ),
                (
                    Role::Assistant,
                    "",
                    vec!["Edit: /home/user/project/hello.txt"]
                ),
                (
                    Role::Assistant,
                    "",
                    vec!["Write: /home/user/project/hello.txt"]
                ),
                (
                    Role::Assistant,
                    "",
                    vec![r#"mcp__oxtail__set_my_state: {"purpose":"capturing fixtures"}"#]
                ),
                (Role::User, "capture please", vec![]),
            ]
        );
        assert_eq!(
            r.turns[0].timestamp.as_deref(),
            Some("2026-11-21T04:52:15.829Z")
        );
        assert_eq!(
            r.turns[5].timestamp.as_deref(),
            Some("2026-11-21T04:52:14.735Z")
        );
        assert_eq!(r.provenance.size_bytes, 226_193);
        assert!(r.provenance.mtime_ms.is_some() && r.provenance.age_ms.is_some());
        assert_eq!(r.bytes_scanned, 226_193);
    }

    #[test]
    fn codex_rollouts_turns_newest_first() {
        let r = all(&codex_fixture());
        assert_eq!(r.format, Some(TranscriptFormat::Codex));
        assert_eq!(r.skipped_lines, 0);
        let got: Vec<(Role, &str, Vec<&str>)> = r
            .turns
            .iter()
            .map(|t| {
                (
                    t.role,
                    t.text.as_str(),
                    t.tool_calls.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    Role::Assistant,
                    "Done: ping answered pong and the shell command ran.",
                    vec![]
                ),
                (
                    Role::Assistant,
                    "",
                    vec!["exec_command: env | grep -E '^(CODEX|TMUX)' | sort"]
                ),
                (
                    Role::Assistant,
                    "",
                    vec!["mcp__envmcp__ping: {\"msg\":\"fixture\"}"]
                ),
                (
                    Role::Assistant,
                    "Looking for the ping tool.",
                    vec!["tool_search: envmcp ping"]
                ),
                (
                    Role::User,
                    "Call the envmcp ping tool, then run a shell command.",
                    vec![]
                ),
            ]
        );
        let tui = all(&fixtures().join(
            "codex-0.169.0/tui/rollouts/rollout-2026-11-21T05-03-30-01a1fc7c-f540-7033-8c3a-01ebdd2d4f8e.jsonl",
        ));
        let texts: Vec<&str> = tui.turns.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, vec!["pong received", "Calling ping.", "hello"]);
        assert_eq!(
            tui.turns[1].tool_calls,
            vec!["mcp__envmcp__ping: {\"msg\":\"from tui\"}"]
        );
    }

    #[test]
    fn tool_results_on_request() {
        let o = ReadOpts {
            include_tool_results: true,
            ..ReadOpts::default()
        };
        let r = read_turns(&claude_fixture(), &o).unwrap();
        let tools: Vec<&str> = r
            .turns
            .iter()
            .filter(|t| t.role == Role::Tool)
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(tools.len(), 4);
        assert_eq!(tools[0], "0cf6bf8d-ddf3-4f94-96b5-206f7b134357");
        let r = read_turns(&codex_fixture(), &o).unwrap();
        assert!(r
            .turns
            .iter()
            .any(|t| t.role == Role::Tool && t.text.contains("pong")));
    }

    #[test]
    fn limit_budget() {
        let o = ReadOpts {
            limit: 2,
            ..ReadOpts::default()
        };
        let r = read_turns(&claude_fixture(), &o).unwrap();
        assert_eq!(r.turns.len(), 2);
        assert_eq!(r.budget_hit, Some(BudgetHit::Limit));
        assert_eq!(r.turns[0].text, "all done");
        assert!(!r.reached_start);
        assert!(r.bytes_scanned < r.provenance.size_bytes, "stopped early");
        // Exactly as many turns as exist: no budget bit.
        let o = ReadOpts {
            limit: 6,
            ..ReadOpts::default()
        };
        let r = read_turns(&claude_fixture(), &o).unwrap();
        assert_eq!((r.turns.len(), r.budget_hit), (6, None));
    }

    #[test]
    fn a_cut_turn_never_exceeds_max_bytes() {
        let opts = ReadOpts {
            max_bytes: 64,
            ..ReadOpts::default()
        };
        let mut c = Collector {
            opts: &opts,
            turns: Vec::new(),
            used: 0,
            hit: None,
            pending: None,
        };
        c.emit(Turn {
            role: Role::Assistant,
            text: "t".repeat(100),
            tool_calls: vec![
                "Bash: ".to_string() + &"x".repeat(50),
                "Edit: src/main.rs".into(),
            ],
            timestamp: Some("2026-11-21T04:52:26.186Z".into()),
            truncated: false,
        });
        assert_eq!(c.turns.len(), 1);
        assert!(c.turns[0].size() <= 64, "{}", c.turns[0].size());
        assert!(c.turns[0].truncated);
    }

    #[test]
    fn max_bytes_budget() {
        let o = ReadOpts {
            max_bytes: 90,
            ..ReadOpts::default()
        };
        let r = read_turns(&claude_fixture(), &o).unwrap();
        assert_eq!(r.budget_hit, Some(BudgetHit::MaxBytes));
        let used: usize = r.turns.iter().map(Turn::size).sum();
        assert!(used <= 90, "{used}");
        assert!(!r.turns.is_empty());
        // A single turn bigger than the budget is cut, not dropped.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.jsonl");
        let big = "é".repeat(5000);
        std::fs::write(
            &p,
            format!(
                "{}\n",
                json!({"type":"user","timestamp":"t","sessionId":"s","message":{"role":"user","content":big}})
            ),
        )
        .unwrap();
        let r = read_turns(
            &p,
            &ReadOpts {
                max_bytes: 101,
                ..ReadOpts::default()
            },
        )
        .unwrap();
        assert_eq!(r.turns.len(), 1);
        assert!(r.turns[0].truncated);
        assert!(r.turns[0].size() <= 101);
        assert!(r.turns[0].text.chars().all(|c| c == 'é'));
        assert_eq!(r.budget_hit, Some(BudgetHit::MaxBytes));
    }

    #[test]
    fn tail_scan_budget_reads_only_the_end() {
        let o = ReadOpts {
            tail_scan: 2000,
            ..ReadOpts::default()
        };
        let r = read_turns(&claude_fixture(), &o).unwrap();
        assert_eq!(r.budget_hit, Some(BudgetHit::TailScan));
        assert_eq!(r.bytes_scanned, 2000);
        assert!(!r.reached_start);
        // The window's first line is cut by the window, not malformed.
        assert_eq!(r.skipped_lines, 0);
        let big = read_turns(
            &claude_fixture(),
            &ReadOpts {
                tail_scan: 60_000,
                ..ReadOpts::default()
            },
        )
        .unwrap();
        assert!(big.turns.len() >= r.turns.len());
        assert_eq!(big.turns[0].text, "all done");
    }

    #[test]
    fn torn_and_garbage_lines_are_skipped_and_counted() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("rollout.jsonl");
        let mut text = std::fs::read_to_string(codex_fixture()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let torn = &lines[26][..lines[26].len() / 2];
        let mut body = lines[..26].join("\n");
        body.push_str("\nnot json at all\n\n{\"half\": \n");
        body.push_str(torn); // the client is mid-write: no newline
        text = body;
        std::fs::File::create(&p)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let r = all(&p);
        assert_eq!(r.skipped_lines, 3);
        assert_eq!(r.format, Some(TranscriptFormat::Codex));
        assert_eq!(
            r.turns[0].tool_calls,
            vec!["exec_command: env | grep -E '^(CODEX|TMUX)' | sort"]
        );
        // Empty and all-garbage files are fine too.
        std::fs::write(&p, "").unwrap();
        let r = all(&p);
        assert!(r.turns.is_empty() && r.reached_start && r.format.is_none());
        std::fs::write(&p, "\u{0}\u{1}garbage").unwrap();
        assert_eq!(all(&p).skipped_lines, 1);
        assert!(read_turns(&d.path().join("missing.jsonl"), &ReadOpts::default()).is_err());
    }

    #[test]
    fn paths_and_lookup() {
        assert_eq!(
            claude_project_dir_name(Path::new("/home/user/project")),
            "-home-user-project"
        );
        assert_eq!(
            claude_project_dir_name(Path::new("/a/my repo.v2/x_y")),
            "-a-my-repo-v2-x-y"
        );
        assert_eq!(
            claude_transcript_path(
                &claude_dir(None, Path::new("/home/user")),
                Path::new("/home/user/project"),
                "0cf6"
            ),
            Some(PathBuf::from(
                "/home/user/.claude/projects/-home-user-project/0cf6.jsonl"
            ))
        );
        assert_eq!(
            claude_dir(Some("/cfg/claude"), Path::new("/home/user")),
            PathBuf::from("/cfg/claude")
        );
        assert_eq!(
            claude_dir(Some(""), Path::new("/home/user")),
            PathBuf::from("/home/user/.claude")
        );
        assert_eq!(
            claude_transcript_path(Path::new("/h"), Path::new("/p"), "../x"),
            None
        );
        assert_eq!(
            claude_transcript_path(Path::new("/h"), Path::new("/p"), ""),
            None
        );

        let d = tempfile::tempdir().unwrap();
        let id = "01a1fc7c-f019-7f70-bd45-c4e66d586f46";
        let day = d.path().join("sessions/2026/11/21");
        std::fs::create_dir_all(&day).unwrap();
        let older = d.path().join("sessions/2026/10/02");
        std::fs::create_dir_all(&older).unwrap();
        std::fs::write(
            older.join(format!("rollout-2026-10-02T01-00-00-{id}.jsonl")),
            "",
        )
        .unwrap();
        let want = day.join(format!("rollout-2026-11-21T05-03-28-{id}.jsonl"));
        std::fs::write(&want, "").unwrap();
        std::fs::write(day.join("rollout-2026-11-21T05-03-28-other.jsonl"), "").unwrap();
        assert_eq!(find_codex_rollout(d.path(), id), Some(want));
        assert_eq!(find_codex_rollout(d.path(), "nope"), None);
        assert_eq!(find_codex_rollout(d.path(), "../../etc"), None);
        let arch = d.path().join("archived_sessions");
        std::fs::create_dir_all(&arch).unwrap();
        let a = arch.join("rollout-2025-01-01T00-00-00-abc.jsonl");
        std::fs::write(&a, "").unwrap();
        assert_eq!(find_codex_rollout(d.path(), "abc"), Some(a));

        let proj = d.path().join("claude/projects/-x");
        std::fs::create_dir_all(&proj).unwrap();
        std::fs::write(proj.join("sess-1.jsonl"), "").unwrap();
        assert_eq!(
            find_claude_transcript(&d.path().join("claude"), "sess-1"),
            Some(proj.join("sess-1.jsonl"))
        );
        assert_eq!(
            find_claude_transcript(&d.path().join("claude"), "sess-2"),
            None
        );
    }

    #[test]
    fn tool_summaries() {
        assert_eq!(
            summarize_tool_call("Read", &json!({"file_path": "/a/b"})),
            "Read: /a/b"
        );
        assert_eq!(
            summarize_tool_call("shell", &json!({"command": ["bash", "-lc", "ls\n-la"]})),
            "shell: bash -lc ls -la"
        );
        assert_eq!(summarize_tool_call("TodoWrite", &json!({})), "TodoWrite");
        let long = summarize_tool_call("Bash", &json!({"command": "x".repeat(500)}));
        assert!(long.chars().count() <= TOOL_SUMMARY_CHARS + 1 && long.ends_with('…'));
        assert!(codex_injected(
            "<environment_context>\n<cwd>/</cwd>\n</environment_context>"
        ));
        assert!(!codex_injected("<b>bold</b> is what I want"));
        assert!(!codex_injected("hello"));
    }
}
