//! A scripted fake of the Anthropic Messages API, for driving the real Claude
//! Code CLI offline.
//!
//! [`FakeAnthropic`] is a tiny HTTP/1.1 server ([`crate::http`]) bound to
//! `127.0.0.1:0`. Point Claude Code at it with
//! `ANTHROPIC_BASE_URL=`[`FakeAnthropic::base_url`] and it answers every
//! `POST /v1/messages` with a [`ScriptedTurn`] streamed as server-sent events,
//! exactly like the real API: `message_start`, then per content block
//! `content_block_start` / `content_block_delta` / `content_block_stop`, then
//! `message_delta` (with the stop reason) and `message_stop`.
//!
//! Every request is recorded (see [`FakeAnthropic::requests`] and
//! [`FakeAnthropic::http_log`]) so tests can assert on what the model would
//! have seen, e.g. the `tool_result` of an MCP tool call, or that a message
//! relayed by oxtail reached the other agent's next request.
//!
//! # Choosing the answer
//!
//! Requests that offer tools (`tools` is a non-empty array) are the agent loop
//! ("agent turns") and go to the responder. Anything else — a tool-less side
//! request such as a title or summary — is *auxiliary*: it gets the short text
//! [`AUXILIARY_REPLY`] and is logged, so it never consumes a scripted turn.
//!
//! * [`FakeAnthropic::start`] takes a plain list of turns (see [`sequential`]):
//!   the reply to a request is the turn whose index is the number of assistant
//!   messages already in that request's history. This is stateless, so it is
//!   immune to client retries, and two CLI processes sharing one server each
//!   walk the same script independently.
//! * [`FakeAnthropic::start_with`] takes any `Fn(&Value) -> ScriptedTurn`,
//!   which sees the whole request body. [`by_prompt`] builds one that gives each
//!   conversation its own script, keyed by a marker in its first prompt. The
//!   responder runs on a blocking thread, so it may wait (e.g. until another
//!   agent's request has arrived) without stalling other connections.
//!
//! When a script runs out, the reply is the text [`SCRIPT_EXHAUSTED_REPLY`]
//! (stop reason `end_turn`), so the CLI finishes instead of hanging.
//!
//! The server runs on its own thread with its own Tokio runtime, so it works
//! the same from plain `#[test]`s and from `#[tokio::test]`s. It stops when the
//! [`FakeAnthropic`] is dropped.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_model::{run_responder, truncate, Recorder};
use crate::http::{HttpRequest, HttpResponse, HttpServer};

/// Text answered to auxiliary (tool-less) model requests.
pub const AUXILIARY_REPLY: &str = "ok";

/// Text answered to agent turns once the script has no turn left.
pub const SCRIPT_EXHAUSTED_REPLY: &str = "(fake-anthropic: script exhausted)";

/// One scripted model response.
#[derive(Clone, Debug, PartialEq)]
pub enum ScriptedTurn {
    /// A single text block; stop reason `end_turn`.
    Text(String),
    /// One or more `tool_use` blocks, in order; stop reason `tool_use`.
    ToolUse(Vec<ToolCall>),
}

impl ScriptedTurn {
    /// A plain text answer that ends the turn.
    pub fn text(text: impl Into<String>) -> Self {
        ScriptedTurn::Text(text.into())
    }

    /// A single tool call, e.g. `ScriptedTurn::tool_use("mcp__oxtail__send", json!({...}))`.
    pub fn tool_use(name: impl Into<String>, input: Value) -> Self {
        ScriptedTurn::ToolUse(vec![ToolCall::new(name, input)])
    }

    /// Several tool calls in one assistant message (parallel tool use).
    pub fn tool_uses<N: Into<String>>(calls: impl IntoIterator<Item = (N, Value)>) -> Self {
        ScriptedTurn::ToolUse(
            calls
                .into_iter()
                .map(|(name, input)| ToolCall::new(name, input))
                .collect(),
        )
    }

    /// The `stop_reason` this turn is answered with.
    pub fn stop_reason(&self) -> &'static str {
        match self {
            ScriptedTurn::Text(_) => "end_turn",
            ScriptedTurn::ToolUse(_) => "tool_use",
        }
    }
}

/// One `tool_use` block of a [`ScriptedTurn::ToolUse`].
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    /// Fixed `tool_use` id; when `None` the server assigns a unique `toolu_fake_NNNNNN`.
    pub id: Option<String>,
    /// Tool name as the model sees it, e.g. `mcp__probe__echo`.
    pub name: String,
    /// The tool input (a JSON object).
    pub input: Value,
}

impl ToolCall {
    /// A call of `name` with `input`; the id is assigned by the server.
    pub fn new(name: impl Into<String>, input: Value) -> Self {
        ToolCall {
            id: None,
            name: name.into(),
            input,
        }
    }

    /// Use a fixed `tool_use` id instead of a generated one.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// A `tool_result` block found in a recorded request.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolResult {
    /// The `tool_use_id` it answers.
    pub tool_use_id: String,
    /// Name of the tool that was called, resolved from the matching `tool_use`
    /// in the same request's history (`None` if it could not be found).
    pub tool_name: Option<String>,
    /// All text of the result joined with newlines (the `content` string, or
    /// the `text` of its text blocks).
    pub text: String,
    /// The block's `is_error` flag.
    pub is_error: bool,
    /// The raw `content` value.
    pub content: Value,
}

/// How the server classified (and therefore answered) a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// `POST /v1/messages` offering tools: answered by the responder.
    AgentTurn,
    /// `POST /v1/messages` without tools: answered with [`AUXILIARY_REPLY`].
    Auxiliary,
    /// `POST /v1/messages/count_tokens`: answered with a rough estimate.
    CountTokens,
    /// Anything else: answered `404` with an Anthropic-style error body.
    Other,
}

/// One HTTP request as received, with a summary of the answer (the shared
/// [`crate::fake_model::RecordedRequest`]).
pub type RecordedRequest = crate::fake_model::RecordedRequest<RequestKind>;

/// Picks the answer to an agent-turn request from its JSON body.
pub type Responder = Arc<dyn Fn(&Value) -> ScriptedTurn + Send + Sync + 'static>;

/// A responder that answers with `turns[n]`, where `n` is the number of
/// assistant messages already in the request (see [`assistant_turns`]), and
/// with [`SCRIPT_EXHAUSTED_REPLY`] once the script is used up.
pub fn sequential(turns: Vec<ScriptedTurn>) -> impl Fn(&Value) -> ScriptedTurn + Send + Sync {
    crate::fake_model::script(turns, assistant_turns, exhausted)
}

fn exhausted() -> ScriptedTurn {
    ScriptedTurn::text(SCRIPT_EXHAUSTED_REPLY)
}

/// A responder that scripts several conversations at once.
///
/// Each entry is `(marker, turns)`: a request belongs to the first entry whose
/// marker occurs in the request's first user message (see
/// [`first_user_text`]), i.e. in the prompt the CLI was started with, and is
/// answered from that entry's turns like [`sequential`]. Requests matching no
/// marker get [`SCRIPT_EXHAUSTED_REPLY`].
pub fn by_prompt<M: Into<String>>(
    conversations: impl IntoIterator<Item = (M, Vec<ScriptedTurn>)>,
) -> impl Fn(&Value) -> ScriptedTurn + Send + Sync {
    crate::fake_model::scripts_by_prompt(
        conversations
            .into_iter()
            .map(|(marker, turns)| (marker.into(), turns))
            .collect(),
        |req| vec![first_user_text(req)],
        assistant_turns,
        exhausted,
    )
}

/// State shared between the server thread and the [`FakeAnthropic`] handle.
struct Shared {
    responder: Responder,
    log: Recorder<RequestKind>,
    next_id: AtomicU64,
}

impl Shared {
    fn fresh_id(&self, prefix: &str) -> String {
        format!(
            "{prefix}_fake_{:06}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// A running fake Anthropic API server. Stops when dropped.
pub struct FakeAnthropic {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Stops (closing every connection) when dropped.
    _server: HttpServer,
}

impl FakeAnthropic {
    /// Start a server answering agent turns from `script` (see [`sequential`]).
    ///
    /// Panics if it cannot bind `127.0.0.1:0`.
    pub fn start(script: Vec<ScriptedTurn>) -> FakeAnthropic {
        Self::start_with(sequential(script))
    }

    /// Start a server answering agent turns with `responder`, which receives
    /// the request body. It runs on a blocking thread and may block.
    ///
    /// Panics if it cannot bind `127.0.0.1:0`.
    pub fn start_with(
        responder: impl Fn(&Value) -> ScriptedTurn + Send + Sync + 'static,
    ) -> FakeAnthropic {
        let shared = Arc::new(Shared {
            responder: Arc::new(responder),
            log: Recorder::default(),
            next_id: AtomicU64::new(1),
        });
        let handler_shared = shared.clone();
        let server = HttpServer::start(
            "fake-anthropic",
            move |request| with_request_id(answer(request, &handler_shared)),
            bad_request,
        )
        .expect("fake-anthropic: serve on 127.0.0.1:0");
        FakeAnthropic {
            addr: server.addr(),
            shared,
            _server: server,
        }
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the value for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Bodies of every `POST /v1/messages` request (agent turns and auxiliary),
    /// in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.log.bodies(is_model_turn)
    }

    /// Bodies of the agent-turn requests only (those answered by the responder).
    pub fn agent_requests(&self) -> Vec<Value> {
        self.shared.log.bodies(|k| k == RequestKind::AgentTurn)
    }

    /// Every HTTP request received, on any path, with headers and answers.
    pub fn http_log(&self) -> Vec<RecordedRequest> {
        self.shared.log.log()
    }

    /// Every distinct `tool_result` in the recorded requests, in the order
    /// first seen (histories repeat, so each `tool_use_id` is reported once).
    pub fn tool_results(&self) -> Vec<ToolResult> {
        let mut seen = HashSet::new();
        self.requests()
            .iter()
            .flat_map(tool_results_in)
            .filter(|r| seen.insert(r.tool_use_id.clone()))
            .collect()
    }

    /// The distinct `tool_result`s of calls to the tool named `tool_name`
    /// (e.g. `mcp__probe__echo`).
    pub fn tool_results_for(&self, tool_name: &str) -> Vec<ToolResult> {
        self.tool_results()
            .into_iter()
            .filter(|r| r.tool_name.as_deref() == Some(tool_name))
            .collect()
    }

    /// Whether any recorded model request contains `needle` in any string
    /// (message text, tool results, system prompt, ...).
    pub fn saw(&self, needle: &str) -> bool {
        self.shared
            .log
            .with_log(|log| log.iter().any(|r| value_contains(&r.body, needle)))
    }

    /// The recorded model request bodies that contain `needle` in any string.
    pub fn requests_mentioning(&self, needle: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| value_contains(r, needle))
            .collect()
    }

    /// Block until a model request satisfying `pred` has been recorded (looking
    /// at earlier ones too) and return its body, or `None` after `timeout`.
    ///
    /// Do not call this on the only thread of a runtime that must make progress
    /// meanwhile; use [`FakeAnthropic::wait_for_request_async`] there.
    pub fn wait_for_request(
        &self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        self.shared.log.wait_for(timeout, is_model_turn, pred)
    }

    /// Async form of [`FakeAnthropic::wait_for_request`].
    pub async fn wait_for_request_async(
        &self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        self.shared
            .log
            .wait_for_async(timeout, is_model_turn, pred)
            .await
    }

    /// A human-readable account of every request and its answer, one line
    /// each; handy in assertion messages.
    pub fn transcript(&self) -> String {
        self.shared.log.transcript(|r| {
            is_model_turn(r.kind).then(|| {
                let last = messages(&r.body)
                    .last()
                    .map(describe_message)
                    .unwrap_or_default();
                format!(
                    "[{} msgs, {} tools] last: {}",
                    messages(&r.body).len(),
                    tool_names(&r.body).len(),
                    truncate(&last, 160)
                )
            })
        })
    }
}

/// Agent turns and auxiliary requests: the `POST /v1/messages` a model
/// answers.
fn is_model_turn(k: RequestKind) -> bool {
    matches!(k, RequestKind::AgentTurn | RequestKind::Auxiliary)
}

impl std::fmt::Debug for FakeAnthropic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAnthropic")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// Request inspection helpers (work on any request body).
// ---------------------------------------------------------------------------

/// The `messages` array of a request body (empty if absent).
pub fn messages(req: &Value) -> &[Value] {
    req.get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Number of assistant messages in the request's history, i.e. how many model
/// turns this conversation has already had.
pub fn assistant_turns(req: &Value) -> usize {
    messages(req)
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .count()
}

/// The last message of the request. Note that in Claude Code's first request
/// of a session this is a `system`-role message (environment details) that
/// follows the user's prompt.
pub fn last_message(req: &Value) -> Option<&Value> {
    messages(req).last()
}

/// All text of the first user message, blocks joined with newlines. For Claude
/// Code this is some `<system-reminder>` text followed by the prompt.
pub fn first_user_text(req: &Value) -> String {
    messages(req)
        .iter()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| content_text(m.get("content").unwrap_or(&Value::Null)))
        .unwrap_or_default()
}

/// Names of the tools the request offers (e.g. `Bash`, `mcp__probe__echo`).
pub fn tool_names(req: &Value) -> Vec<String> {
    req.get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every `tool_result` block anywhere in the request's history, in order.
pub fn tool_results_in(req: &Value) -> Vec<ToolResult> {
    collect_tool_results(messages(req), messages(req))
}

/// The `tool_result` blocks after the last assistant message, i.e. the
/// results the model is being shown for the first time. (Claude Code may put
/// a `system`-role message after them, so this is not just the last message.)
pub fn latest_tool_results(req: &Value) -> Vec<ToolResult> {
    let all = messages(req);
    let start = all
        .iter()
        .rposition(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .map_or(0, |i| i + 1);
    collect_tool_results(&all[start..], all)
}

/// All text of the messages after the last assistant message, blocks
/// joined with newlines (a `tool_result`'s content included): what Claude
/// Code added since the model's last turn (tool results, hook context).
pub fn text_after_last_assistant(req: &Value) -> String {
    let all = messages(req);
    let start = all
        .iter()
        .rposition(|m| m["role"] == "assistant")
        .map_or(0, |i| i + 1);
    all[start..]
        .iter()
        .flat_map(|m| match &m["content"] {
            Value::Array(blocks) => blocks
                .iter()
                .map(|b| match b["type"].as_str() {
                    Some("tool_result") => content_text(&b["content"]),
                    _ => b["text"].as_str().unwrap_or_default().to_owned(),
                })
                .collect(),
            other => vec![content_text(other)],
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether any string inside `value` (keys excluded) contains `needle`.
pub fn value_contains(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(s) => s.contains(needle),
        Value::Array(items) => items.iter().any(|v| value_contains(v, needle)),
        Value::Object(map) => map.values().any(|v| value_contains(v, needle)),
        _ => false,
    }
}

/// Text of a message `content` (a string, or an array of blocks whose `text`
/// fields are joined with newlines).
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn collect_tool_results(scan: &[Value], history: &[Value]) -> Vec<ToolResult> {
    let names: HashMap<&str, &str> = history
        .iter()
        .flat_map(blocks)
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        .filter_map(|b| Some((b.get("id")?.as_str()?, b.get("name")?.as_str()?)))
        .collect();
    scan.iter()
        .flat_map(blocks)
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        .map(|b| {
            let tool_use_id = b
                .get("tool_use_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let content = b.get("content").cloned().unwrap_or(Value::Null);
            ToolResult {
                tool_name: names.get(tool_use_id.as_str()).map(|n| (*n).to_owned()),
                tool_use_id,
                text: content_text(&content),
                is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                content,
            }
        })
        .collect()
}

/// The content blocks of a message (a string content yields none).
fn blocks(message: &Value) -> &[Value] {
    message
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn describe_message(m: &Value) -> String {
    let role = m.get("role").and_then(Value::as_str).unwrap_or("?");
    let content = m.get("content").unwrap_or(&Value::Null);
    let mut parts = Vec::new();
    match content {
        Value::String(s) => parts.push(format!("{s:?}")),
        Value::Array(items) => {
            for b in items {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => parts.push(format!(
                        "text {:?}",
                        truncate(b.get("text").and_then(Value::as_str).unwrap_or(""), 60)
                    )),
                    Some("tool_result") => parts.push(format!(
                        "tool_result {:?}",
                        truncate(&content_text(b.get("content").unwrap_or(&Value::Null)), 60)
                    )),
                    Some("tool_use") => parts.push(format!(
                        "tool_use {}",
                        b.get("name").and_then(Value::as_str).unwrap_or("?")
                    )),
                    Some(other) => parts.push(other.to_owned()),
                    None => parts.push("?".to_owned()),
                }
            }
        }
        _ => {}
    }
    format!("{role}: {}", parts.join(", "))
}

// ---------------------------------------------------------------------------
// Answering requests (the HTTP layer is `crate::http`).
// ---------------------------------------------------------------------------

/// `response` with a unique `request-id: req_fake_NNNNNN` header, as the real
/// API sends on every answer.
fn with_request_id(response: HttpResponse) -> HttpResponse {
    static REQUEST_ID: AtomicU64 = AtomicU64::new(1);
    let id = REQUEST_ID.fetch_add(1, Ordering::Relaxed);
    response.with_header("request-id", format!("req_fake_{id:06}"))
}

/// The answer to a request whose body the HTTP layer could not read.
fn bad_request(e: &std::io::Error) -> HttpResponse {
    with_request_id(HttpResponse::json(
        400,
        &error_body("invalid_request_error", &e.to_string()),
    ))
}

/// Record `request` and compute the answer (on a blocking thread).
fn answer(request: HttpRequest, shared: &Shared) -> HttpResponse {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let path = request.path().to_owned();
    let kind = match (request.method.as_str(), path.as_str()) {
        ("POST", "/v1/messages") => {
            if tool_names(&body).is_empty() {
                RequestKind::Auxiliary
            } else {
                RequestKind::AgentTurn
            }
        }
        ("POST", "/v1/messages/count_tokens") => RequestKind::CountTokens,
        _ => RequestKind::Other,
    };
    let index = shared.log.record(&request, &body, kind);

    let (response, summary) = match kind {
        RequestKind::AgentTurn | RequestKind::Auxiliary => {
            let turn = if kind == RequestKind::AgentTurn {
                let responder = &shared.responder;
                run_responder("fake-anthropic", || responder(&body))
                    .unwrap_or_else(ScriptedTurn::text)
            } else {
                eprintln!(
                    "[fake-anthropic] auxiliary request #{index} (no tools), answering {AUXILIARY_REPLY:?}"
                );
                ScriptedTurn::text(AUXILIARY_REPLY)
            };
            if turn == ScriptedTurn::text(SCRIPT_EXHAUSTED_REPLY) {
                eprintln!("[fake-anthropic] request #{index}: script exhausted");
            }
            let model = body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("claude-fake")
                .to_owned();
            let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
            let content = content_blocks(&turn, shared);
            let summary = summarize(&content, turn.stop_reason());
            let message_id = shared.fresh_id("msg");
            let response = if stream {
                HttpResponse::new(
                    200,
                    "text/event-stream; charset=utf-8",
                    sse_body(&message_id, &model, &content, turn.stop_reason()),
                )
            } else {
                HttpResponse::json(
                    200,
                    &json!({
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": content,
                        "stop_reason": turn.stop_reason(),
                        "stop_sequence": null,
                        "usage": usage(5),
                    }),
                )
            };
            (response, summary)
        }
        RequestKind::CountTokens => {
            let estimate = (request.body.len() / 4).max(1);
            (
                HttpResponse::json(200, &json!({ "input_tokens": estimate })),
                format!("count_tokens {estimate}"),
            )
        }
        RequestKind::Other => {
            eprintln!(
                "[fake-anthropic] unexpected request #{index}: {} {}",
                request.method, request.target
            );
            (
                HttpResponse::json(
                    404,
                    &error_body(
                        "not_found_error",
                        &format!("fake-anthropic: no route for {path}"),
                    ),
                ),
                "404".to_owned(),
            )
        }
    };

    shared.log.answered(index, summary);
    response
}

/// The content blocks of `turn`, with tool-use ids filled in.
fn content_blocks(turn: &ScriptedTurn, shared: &Shared) -> Vec<Value> {
    match turn {
        ScriptedTurn::Text(text) => vec![json!({ "type": "text", "text": text })],
        ScriptedTurn::ToolUse(calls) => calls
            .iter()
            .map(|call| {
                json!({
                    "type": "tool_use",
                    "id": call.id.clone().unwrap_or_else(|| shared.fresh_id("toolu")),
                    "name": call.name,
                    "input": call.input,
                })
            })
            .collect(),
    }
}

fn summarize(content: &[Value], stop_reason: &str) -> String {
    let parts: Vec<String> = content
        .iter()
        .map(|b| match b.get("type").and_then(Value::as_str) {
            Some("tool_use") => format!(
                "tool_use {} {}",
                b["name"].as_str().unwrap_or("?"),
                truncate(&b["input"].to_string(), 80)
            ),
            _ => format!("text {:?}", truncate(b["text"].as_str().unwrap_or(""), 80)),
        })
        .collect();
    format!("{} ({stop_reason})", parts.join(", "))
}

fn usage(output_tokens: u64) -> Value {
    json!({
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    })
}

fn error_body(kind: &str, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": kind, "message": message } })
}

/// The full server-sent-event stream for one assistant message.
fn sse_body(message_id: &str, model: &str, content: &[Value], stop_reason: &str) -> String {
    fn event(out: &mut String, name: &str, data: Value) {
        let _ = write!(out, "event: {name}\ndata: {data}\n\n");
    }
    let mut out = String::new();
    event(
        &mut out,
        "message_start",
        json!({
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": usage(1),
            }
        }),
    );
    for (index, block) in content.iter().enumerate() {
        let (start, delta) = if block["type"] == "tool_use" {
            (
                json!({
                    "type": "tool_use",
                    "id": block["id"],
                    "name": block["name"],
                    "input": {},
                }),
                json!({ "type": "input_json_delta", "partial_json": block["input"].to_string() }),
            )
        } else {
            (
                json!({ "type": "text", "text": "" }),
                json!({ "type": "text_delta", "text": block["text"] }),
            )
        };
        event(
            &mut out,
            "content_block_start",
            json!({ "type": "content_block_start", "index": index, "content_block": start }),
        );
        event(
            &mut out,
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": index, "delta": delta }),
        );
        event(
            &mut out,
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": index }),
        );
    }
    event(
        &mut out,
        "message_delta",
        json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop_reason, "stop_sequence": null },
            "usage": { "output_tokens": 5 },
        }),
    );
    event(&mut out, "message_stop", json!({ "type": "message_stop" }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Send raw HTTP to the server and return everything it answered until it
    /// closes the connection (the last request says `Connection: close`).
    fn roundtrip(server: &FakeAnthropic, raw: &[u8]) -> String {
        crate::http::send_raw(server.addr(), raw).unwrap()
    }

    fn agent_request(messages: Value) -> String {
        json!({
            "model": "m",
            "stream": true,
            "tools": [{ "name": "mcp__probe__echo" }],
            "messages": messages,
        })
        .to_string()
    }

    #[test]
    fn keep_alive_chunked_and_content_length() {
        let server = FakeAnthropic::start(vec![
            ScriptedTurn::tool_use("mcp__probe__echo", json!({ "text": "hi" })),
            ScriptedTurn::text("done"),
        ]);
        let first = agent_request(json!([{ "role": "user", "content": "go" }]));
        let second = agent_request(json!([
            { "role": "user", "content": "go" },
            { "role": "assistant", "content": [
                { "type": "tool_use", "id": "toolu_x", "name": "mcp__probe__echo", "input": {} }
            ]},
            { "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "toolu_x",
                  "content": [{ "type": "text", "text": "echo: hi" }] }
            ]},
        ]));
        let (a, b) = second.split_at(second.len() / 2);
        let raw = format!(
            "POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{}\
             POST /v1/messages?beta=true HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             {:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            first.len(),
            first,
            a.len(),
            a,
            b.len(),
            b
        );
        let out = roundtrip(&server, raw.as_bytes());
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        assert!(out.contains("\"stop_reason\":\"tool_use\""), "{out}");
        assert!(out.contains("input_json_delta"), "{out}");
        assert!(out.contains("\"text\":\"done\""), "{out}");
        assert!(out.contains("event: message_stop"), "{out}");
        assert_eq!(out.matches("\r\nrequest-id: req_fake_").count(), 2, "{out}");

        assert_eq!(server.requests().len(), 2);
        let results = server.tool_results_for("mcp__probe__echo");
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].text, "echo: hi");
        assert!(server.saw("echo: hi"));
        assert!(!server.saw("never sent"));
    }

    #[test]
    fn auxiliary_and_unknown_requests() {
        let server = FakeAnthropic::start(vec![ScriptedTurn::tool_use("x", json!({}))]);
        let aux = json!({ "model": "m", "messages": [{ "role": "user", "content": "title?" }] })
            .to_string();
        let raw = format!(
            "POST /v1/messages HTTP/1.1\r\nContent-Length: {}\r\n\r\n{}\
             GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n",
            aux.len(),
            aux
        );
        let out = roundtrip(&server, raw.as_bytes());
        assert!(out.contains("\"text\":\"ok\""), "{out}");
        assert!(out.contains("HTTP/1.1 404"), "{out}");
        let log = server.http_log();
        assert_eq!(log[0].kind, RequestKind::Auxiliary);
        assert_eq!(log[1].kind, RequestKind::Other);
        assert!(server.transcript().contains("/v1/models"));
    }

    #[test]
    fn malformed_requests_get_an_anthropic_error() {
        let server = FakeAnthropic::start(vec![]);
        let out = roundtrip(
            &server,
            b"POST /v1/messages HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("\r\nrequest-id: req_fake_"), "{out}");
        let body: Value = serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["message"], "body too large");
        // What the HTTP layer cannot parse gets its plain 400.
        let out = roundtrip(&server, b"POST /v1/messages HTTP/1.1\r\nno colon\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(server.http_log().is_empty());
    }

    #[test]
    fn by_prompt_scripts_each_conversation() {
        let responder = by_prompt([
            ("agent-A", vec![ScriptedTurn::text("I am A")]),
            ("agent-B", vec![ScriptedTurn::text("I am B")]),
        ]);
        let req = |prompt: &str| {
            json!({ "messages": [{ "role": "user", "content": [
                { "type": "text", "text": "<system-reminder>x</system-reminder>" },
                { "type": "text", "text": prompt },
            ]}]})
        };
        assert_eq!(
            responder(&req("you are agent-B")),
            ScriptedTurn::text("I am B")
        );
        assert_eq!(
            responder(&req("you are agent-A")),
            ScriptedTurn::text("I am A")
        );
        assert_eq!(
            responder(&req("nobody")),
            ScriptedTurn::text(SCRIPT_EXHAUSTED_REPLY)
        );
    }
}
