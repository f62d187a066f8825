//! What the two scripted model servers share, whatever their dialect
//! ([`crate::fake_anthropic`]: the Messages API for Claude Code;
//! [`crate::fake_openai`]: the Responses API for Codex): the request log
//! ([`Recorder`], [`RecordedRequest`]), waiting for a request that satisfies
//! a predicate, the one-line-per-request transcript, and running a
//! test's responder so that its panic becomes an answer instead of a hung
//! client. Each dialect keeps its own request classification (`K`), its
//! answers and its body readers.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::HttpRequest;

/// How often the waits look at the log again.
const POLL: Duration = Duration::from_millis(25);

/// One HTTP request as received, with a summary of the answer; `K` is the
/// dialect's classification (`RequestKind`).
#[derive(Clone, Debug)]
pub struct RecordedRequest<K> {
    /// Arrival order, from 0.
    pub index: usize,
    /// Arrival time, relative to the server's start.
    pub at: Duration,
    /// HTTP method.
    pub method: String,
    /// Request target including the query string, e.g. `/v1/messages?beta=true`.
    pub target: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Value::Null` if empty or not JSON).
    pub body: Value,
    /// Length of the raw body in bytes.
    pub body_len: usize,
    /// How the request was classified.
    pub kind: K,
    /// One-line summary of the answer (`None` while it is being computed).
    pub reply: Option<String>,
}

impl<K> RecordedRequest<K> {
    /// The request path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The request log of one fake server, shared by its handler threads and
/// its handle.
#[derive(Debug)]
pub struct Recorder<K> {
    started: Instant,
    log: Mutex<Vec<RecordedRequest<K>>>,
}

impl<K: Copy + std::fmt::Debug> Default for Recorder<K> {
    fn default() -> Self {
        Recorder {
            started: Instant::now(),
            log: Mutex::new(Vec::new()),
        }
    }
}

impl<K: Copy + std::fmt::Debug> Recorder<K> {
    /// Logs `request` (its body already parsed as `body`) as `kind`;
    /// returns its index, for [`Recorder::answered`].
    pub fn record(&self, request: &HttpRequest, body: &Value, kind: K) -> usize {
        let mut log = self.lock();
        let index = log.len();
        log.push(RecordedRequest {
            index,
            at: self.started.elapsed(),
            method: request.method.clone(),
            target: request.target.clone(),
            headers: request.headers.clone(),
            body: body.clone(),
            body_len: request.body.len(),
            kind,
            reply: None,
        });
        index
    }

    /// Notes the one-line summary of request `index`'s answer.
    pub fn answered(&self, index: usize, summary: String) {
        if let Some(e) = self.lock().get_mut(index) {
            e.reply = Some(summary);
        }
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<RecordedRequest<K>> {
        self.lock().clone()
    }

    /// Runs `f` on the log without copying it.
    pub fn with_log<T>(&self, f: impl FnOnce(&[RecordedRequest<K>]) -> T) -> T {
        f(&self.lock())
    }

    /// The bodies of the requests whose kind `keep` accepts, in arrival
    /// order.
    pub fn bodies(&self, keep: impl Fn(K) -> bool) -> Vec<Value> {
        self.with_log(|log| {
            log.iter()
                .filter(|r| keep(r.kind))
                .map(|r| r.body.clone())
                .collect()
        })
    }

    /// Blocks until a request whose kind `keep` accepts satisfies `pred`
    /// (earlier ones count) and returns its body, or `None` after `timeout`.
    /// Not on the only thread of a runtime that must make progress: see
    /// [`Recorder::wait_for_async`].
    pub fn wait_for(
        &self,
        timeout: Duration,
        keep: impl Fn(K) -> bool,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.find(&keep, &pred) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Async form of [`Recorder::wait_for`].
    pub async fn wait_for_async(
        &self,
        timeout: Duration,
        keep: impl Fn(K) -> bool,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.find(&keep, &pred) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn find(&self, keep: &impl Fn(K) -> bool, pred: &impl Fn(&Value) -> bool) -> Option<Value> {
        self.with_log(|log| {
            log.iter()
                .find(|r| keep(r.kind) && pred(&r.body))
                .map(|r| r.body.clone())
        })
    }

    /// One line per request: `#index +secs METHOD target Kind`, then what
    /// `detail` says of it (the dialect's view of the model input), then
    /// `=> answer`. For assertion messages.
    pub fn transcript(&self, detail: impl Fn(&RecordedRequest<K>) -> Option<String>) -> String {
        let mut out = String::new();
        for r in self.log() {
            let _ = write!(
                out,
                "#{} +{:.3}s {} {} {:?}",
                r.index,
                r.at.as_secs_f64(),
                r.method,
                r.target,
                r.kind
            );
            if let Some(d) = detail(&r) {
                let _ = write!(out, " {d}");
            }
            let _ = writeln!(out, " => {}", r.reply.as_deref().unwrap_or("(pending)"));
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest<K>>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A responder answering `turns[index(request)]` (each dialect counts the
/// model's earlier turns in a request its own way), and `exhausted()` once
/// the script is used up.
pub fn script<T: Clone + Send + Sync>(
    turns: Vec<T>,
    index: fn(&Value) -> usize,
    exhausted: fn() -> T,
) -> impl Fn(&Value) -> T + Send + Sync {
    move |req| turns.get(index(req)).cloned().unwrap_or_else(exhausted)
}

/// A responder for several conversations at once: a request belongs to the
/// first `(marker, turns)` whose marker occurs in one of `prompts(request)`
/// (the prompt the CLI was started with), answered like [`script`];
/// requests matching no marker get `exhausted()`.
pub fn scripts_by_prompt<T: Clone + Send + Sync>(
    conversations: Vec<(String, Vec<T>)>,
    prompts: fn(&Value) -> Vec<String>,
    index: fn(&Value) -> usize,
    exhausted: fn() -> T,
) -> impl Fn(&Value) -> T + Send + Sync {
    move |req| {
        let prompts = prompts(req);
        conversations
            .iter()
            .find(|(marker, _)| prompts.iter().any(|p| p.contains(marker.as_str())))
            .and_then(|(_, turns)| turns.get(index(req)).cloned())
            .unwrap_or_else(exhausted)
    }
}

/// Runs a test's responder on `body`. A panic in it (a failed assertion in
/// a scripted conversation) becomes `Err` with its message, logged to
/// stderr under `server`, so the client gets an answer and the test fails
/// on its own assertion instead of hanging.
///
/// # Errors
/// The panic's message.
pub fn run_responder<T>(server: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let msg = format!("({server}: responder panicked: {why})");
        eprintln!("[{server}] {msg}");
        msg
    })
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}
