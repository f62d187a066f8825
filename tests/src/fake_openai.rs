//! A scripted fake of the OpenAI Responses API, for driving the real Codex CLI
//! offline.
//!
//! [`FakeOpenAi`] is a small HTTP/1.1 server ([`crate::http`]) on
//! `127.0.0.1:0`; it stops, closing every connection, when dropped. Point Codex at it with a provider whose `base_url` is
//! [`FakeOpenAi::base_url`] and `wire_api = "responses"` (see
//! [`crate::codex::CodexHome`]); it answers every `POST /v1/responses` with a
//! [`ScriptedResponse`] streamed as server-sent events the way Codex 0.169.0
//! reads them: `response.created`, one `response.output_item.done` per output
//! item, then `response.completed` (with usage).
//!
//! Every request is recorded (see [`FakeOpenAi::requests`],
//! [`FakeOpenAi::http_log`]) so tests can assert on what the model would have
//! seen: a tool's `function_call_output`, or a developer message that a hook
//! added to the context.
//!
//! # Requests and turns
//!
//! * *Auxiliary* requests — Codex's thread-title generation (turn metadata
//!   `thread_source: "thread_title"`, or a `text.format` JSON schema) — get a
//!   fixed title ([`AUXILIARY_TITLE`]) and never consume a scripted turn.
//! * Every other `POST /v1/responses` is an *agent turn*, answered by the
//!   responder. [`sequential`] answers with `turns[n]` where `n` is
//!   [`response_index`]: how many of this server's earlier responses the
//!   request's `input` already holds. Codex echoes the ids of the output items
//!   it was given, and this server marks them (`fc_oxt<n>_…`, `msg_oxt<n>_…`),
//!   so the count is stateless, immune to retries, and separate per
//!   conversation. [`by_prompt`] scripts several conversations at once, keyed
//!   by a marker in their user messages.
//!
//! MCP tools reach the model under a namespace (Codex 0.169.0 defers them
//! behind `tool_search`, but a direct call works): script them with
//! [`ScriptedResponse::mcp`] (`namespace: "mcp__<server>"`, `name: <tool>`).
//! The shell tool is `exec_command` ([`ScriptedResponse::shell`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_model::{run_responder, truncate, Recorder};
use crate::http::{HttpRequest, HttpResponse, HttpServer};

/// The title answered to Codex's thread-title requests.
pub const AUXILIARY_TITLE: &str = "Scripted fake session";

/// Text answered to agent turns once the script has no turn left.
pub const SCRIPT_EXHAUSTED_REPLY: &str = "(fake-openai: script exhausted)";

/// Prefixes of the output item ids this server hands out; the number after
/// them is the response index ([`response_index`]).
const ID_PREFIXES: &[&str] = &["fc_oxt", "msg_oxt"];

/// One scripted model response.
#[derive(Clone, Debug, PartialEq)]
pub enum ScriptedResponse {
    /// One assistant message (`output_text`); ends the turn.
    Text(String),
    /// One or more function calls, in order; Codex runs them and asks again.
    Calls(Vec<FunctionCall>),
}

impl ScriptedResponse {
    /// A plain assistant message.
    pub fn text(text: impl Into<String>) -> Self {
        ScriptedResponse::Text(text.into())
    }

    /// A call of a built-in tool, e.g. `call("exec_command", json!({"cmd": "true"}))`.
    pub fn call(name: impl Into<String>, arguments: Value) -> Self {
        ScriptedResponse::Calls(vec![FunctionCall {
            namespace: None,
            name: name.into(),
            arguments,
        }])
    }

    /// A call of MCP server `server`'s tool `tool` (`namespace:
    /// "mcp__<server>"`, as Codex 0.169.0 exposes MCP tools).
    pub fn mcp(server: &str, tool: impl Into<String>, arguments: Value) -> Self {
        ScriptedResponse::Calls(vec![FunctionCall {
            namespace: Some(format!("mcp__{server}")),
            name: tool.into(),
            arguments,
        }])
    }

    /// A shell command through Codex's `exec_command` tool (its hooks see
    /// `tool_name: "Bash"`).
    pub fn shell(cmd: &str) -> Self {
        Self::call("exec_command", json!({ "cmd": cmd }))
    }
}

/// One `function_call` output item.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionCall {
    /// `mcp__<server>` for MCP tools; `None` for built-in tools.
    pub namespace: Option<String>,
    /// The tool name (within its namespace).
    pub name: String,
    /// Arguments (sent to Codex as a JSON string, as the real API does).
    pub arguments: Value,
}

/// A `function_call_output` found in a recorded request, with the call it
/// answers.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionOutput {
    /// The `call_id`.
    pub call_id: String,
    /// Name of the called function, from the matching `function_call`.
    pub name: Option<String>,
    /// Its namespace (`mcp__<server>`), if any.
    pub namespace: Option<String>,
    /// The output's text (a string output, or the `text` of its parts joined
    /// with newlines). Codex prefixes MCP results with `Wall time: …\nOutput:`.
    pub text: String,
}

/// How the server classified a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// `POST /v1/responses` of the agent loop: answered by the responder.
    AgentTurn,
    /// A thread-title request: answered with [`AUXILIARY_TITLE`].
    Auxiliary,
    /// Anything else: answered `404`.
    Other,
}

/// One HTTP request as received (the shared
/// [`crate::fake_model::RecordedRequest`]).
pub type RecordedRequest = crate::fake_model::RecordedRequest<RequestKind>;

/// Picks the answer to an agent-turn request from its JSON body.
pub type Responder = Arc<dyn Fn(&Value) -> ScriptedResponse + Send + Sync + 'static>;

/// A responder answering `turns[`[`response_index`]`(request)]`, and
/// [`SCRIPT_EXHAUSTED_REPLY`] after the last.
pub fn sequential(
    turns: Vec<ScriptedResponse>,
) -> impl Fn(&Value) -> ScriptedResponse + Send + Sync {
    crate::fake_model::script(turns, response_index, exhausted)
}

fn exhausted() -> ScriptedResponse {
    ScriptedResponse::text(SCRIPT_EXHAUSTED_REPLY)
}

/// A responder for several conversations: each `(marker, turns)` applies to
/// requests where some user message contains `marker` (the prompt Codex was
/// started with), answered like [`sequential`]. Others get
/// [`SCRIPT_EXHAUSTED_REPLY`].
pub fn by_prompt<M: Into<String>>(
    conversations: impl IntoIterator<Item = (M, Vec<ScriptedResponse>)>,
) -> impl Fn(&Value) -> ScriptedResponse + Send + Sync {
    crate::fake_model::scripts_by_prompt(
        conversations
            .into_iter()
            .map(|(m, t)| (m.into(), t))
            .collect(),
        user_texts,
        response_index,
        exhausted,
    )
}

struct Shared {
    responder: Responder,
    log: Recorder<RequestKind>,
    serial: AtomicU64,
}

/// A running fake Responses API server. Stops when dropped.
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Stops (closing every connection) when dropped.
    _server: HttpServer,
}

impl FakeOpenAi {
    /// Start a server answering agent turns from `turns` ([`sequential`]).
    ///
    /// Panics if it cannot bind `127.0.0.1:0`.
    pub fn start(turns: Vec<ScriptedResponse>) -> FakeOpenAi {
        Self::start_with(sequential(turns))
    }

    /// Start a server answering agent turns with `responder`, which sees the
    /// request body and may block (it runs on a blocking thread per request).
    ///
    /// Panics if it cannot bind `127.0.0.1:0`.
    pub fn start_with(
        responder: impl Fn(&Value) -> ScriptedResponse + Send + Sync + 'static,
    ) -> FakeOpenAi {
        let shared = Arc::new(Shared {
            responder: Arc::new(responder),
            log: Recorder::default(),
            serial: AtomicU64::new(1),
        });
        let handler_shared = shared.clone();
        let server = HttpServer::start(
            "fake-openai",
            move |request| answer(request, &handler_shared),
            bad_request,
        )
        .expect("fake-openai: serve on 127.0.0.1:0");
        FakeOpenAi {
            addr: server.addr(),
            shared,
            _server: server,
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`: the provider `base_url` for Codex.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every HTTP request received, with headers and answers.
    pub fn http_log(&self) -> Vec<RecordedRequest> {
        self.shared.log.log()
    }

    /// Bodies of every `POST /v1/responses` (agent turns and auxiliary).
    pub fn requests(&self) -> Vec<Value> {
        self.shared.log.bodies(|k| k != RequestKind::Other)
    }

    /// Bodies of the agent-turn requests only.
    pub fn agent_requests(&self) -> Vec<Value> {
        self.shared.log.bodies(|k| k == RequestKind::AgentTurn)
    }

    /// Whether any recorded request contains `needle` in any string.
    pub fn saw(&self, needle: &str) -> bool {
        self.requests().iter().any(|r| value_contains(r, needle))
    }

    /// Every distinct `function_call_output` in the recorded requests, in the
    /// order first seen.
    pub fn function_outputs(&self) -> Vec<FunctionOutput> {
        let mut seen = std::collections::HashSet::new();
        self.requests()
            .iter()
            .flat_map(function_outputs_in)
            .filter(|o| seen.insert(o.call_id.clone()))
            .collect()
    }

    /// The distinct outputs of calls to `name` (any namespace).
    pub fn function_outputs_for(&self, name: &str) -> Vec<FunctionOutput> {
        self.function_outputs()
            .into_iter()
            .filter(|o| o.name.as_deref() == Some(name))
            .collect()
    }

    /// Block until a recorded agent-turn request satisfies `pred` (earlier
    /// ones count) and return it, or `None` after `timeout`.
    pub fn wait_for_request(
        &self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        self.shared
            .log
            .wait_for(timeout, |k| k == RequestKind::AgentTurn, pred)
    }

    /// Async form of [`FakeOpenAi::wait_for_request`].
    pub async fn wait_for_request_async(
        &self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        self.shared
            .log
            .wait_for_async(timeout, |k| k == RequestKind::AgentTurn, pred)
            .await
    }

    /// One line per request and its answer, for assertion messages.
    pub fn transcript(&self) -> String {
        self.shared.log.transcript(|r| {
            (r.kind == RequestKind::AgentTurn).then(|| {
                let last = input(&r.body).last().map(describe_item).unwrap_or_default();
                format!(
                    "[{} items, response #{}] last: {}",
                    input(&r.body).len(),
                    response_index(&r.body),
                    truncate(&last, 200)
                )
            })
        })
    }
}

impl std::fmt::Debug for FakeOpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOpenAi")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// Request inspection (works on any Responses API request body).
// ---------------------------------------------------------------------------

/// The request's `input` items (empty if absent).
pub fn input(req: &Value) -> &[Value] {
    req.get("input")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// How many responses of this server the request's `input` already holds
/// (1 + the highest response number in the ids of its items), i.e. which
/// scripted turn answers it.
pub fn response_index(req: &Value) -> usize {
    input(req)
        .iter()
        .filter_map(|item| item.get("id").and_then(Value::as_str))
        .filter_map(|id| {
            let rest = ID_PREFIXES.iter().find_map(|p| id.strip_prefix(p))?;
            rest.split('_').next()?.parse::<usize>().ok()
        })
        .max()
        .map_or(0, |n| n + 1)
}

/// The text of an item's `content` (a string, or the `text` of its parts
/// joined with newlines).
pub fn item_text(item: &Value) -> String {
    match item.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The text of every `message` item with role `role` (`user`, `developer`,
/// `assistant`), in order.
pub fn message_texts(req: &Value, role: &str) -> Vec<String> {
    input(req)
        .iter()
        .filter(|i| {
            i.get("type").and_then(Value::as_str) == Some("message")
                && i.get("role").and_then(Value::as_str) == Some(role)
        })
        .map(item_text)
        .collect()
}

/// The text of every user message (environment context, prompts, Stop-hook
/// continuations), in order.
pub fn user_texts(req: &Value) -> Vec<String> {
    message_texts(req, "user")
}

/// The items after the last `function_call` (or all items if there is
/// none): what Codex added to the context since the model last called a tool
/// — the call's output and, e.g., a PreToolUse hook's `additionalContext`.
pub fn items_after_last_call(req: &Value) -> &[Value] {
    let items = input(req);
    let start = items
        .iter()
        .rposition(|i| i.get("type").and_then(Value::as_str) == Some("function_call"))
        .map_or(0, |i| i + 1);
    &items[start..]
}

/// Every `function_call_output` in the request, with the name of its call.
pub fn function_outputs_in(req: &Value) -> Vec<FunctionOutput> {
    let items = input(req);
    let calls: HashMap<&str, &Value> = items
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("function_call"))
        .filter_map(|i| Some((i.get("call_id")?.as_str()?, i)))
        .collect();
    items
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("function_call_output"))
        .map(|i| {
            let call_id = i
                .get("call_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let call = calls.get(call_id.as_str());
            let text = match i.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            FunctionOutput {
                name: call.and_then(|c| c.get("name")?.as_str().map(str::to_owned)),
                namespace: call.and_then(|c| c.get("namespace")?.as_str().map(str::to_owned)),
                call_id,
                text,
            }
        })
        .collect()
}

/// The parsed `x-codex-turn-metadata` of the request (`client_metadata`):
/// `thread_id`, `turn_id`, `thread_source`, … (Codex 0.169.0).
pub fn turn_metadata(req: &Value) -> Value {
    req.pointer("/client_metadata/x-codex-turn-metadata")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

/// The Codex thread id the request belongs to (from [`turn_metadata`]).
pub fn thread_id(req: &Value) -> Option<String> {
    turn_metadata(req)
        .get("thread_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Whether the request is Codex's thread-title generation rather than an
/// agent turn.
pub fn is_auxiliary(req: &Value) -> bool {
    turn_metadata(req)
        .get("thread_source")
        .and_then(Value::as_str)
        == Some("thread_title")
        || req.pointer("/text/format/type").and_then(Value::as_str) == Some("json_schema")
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

fn describe_item(item: &Value) -> String {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("?");
    match kind {
        "message" => format!(
            "{} message {:?}",
            item.get("role").and_then(Value::as_str).unwrap_or("?"),
            truncate(&item_text(item), 120)
        ),
        "function_call" => format!(
            "function_call {}{}",
            item.get("namespace")
                .and_then(Value::as_str)
                .map(|n| format!("{n}/"))
                .unwrap_or_default(),
            item.get("name").and_then(Value::as_str).unwrap_or("?")
        ),
        "function_call_output" => format!(
            "function_call_output {:?}",
            truncate(
                &item
                    .get("output")
                    .map(|o| o.to_string())
                    .unwrap_or_default(),
                120
            )
        ),
        other => other.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Answering requests (the HTTP layer is `crate::http`).
// ---------------------------------------------------------------------------

/// The answer to a request whose body the HTTP layer could not read.
fn bad_request(e: &std::io::Error) -> HttpResponse {
    HttpResponse::json(
        400,
        &json!({ "error": { "message": e.to_string(), "type": "invalid_request_error" } }),
    )
}

/// Record `request` and compute the answer (on a blocking thread).
fn answer(request: HttpRequest, shared: &Shared) -> HttpResponse {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let path = request.path().to_owned();
    let kind = if request.method == "POST" && path.ends_with("/responses") {
        if is_auxiliary(&body) {
            RequestKind::Auxiliary
        } else {
            RequestKind::AgentTurn
        }
    } else {
        RequestKind::Other
    };
    let index = shared.log.record(&request, &body, kind);
    let serial = shared.serial.fetch_add(1, Ordering::Relaxed);
    let (response, summary) = match kind {
        RequestKind::Other => {
            eprintln!(
                "[fake-openai] unexpected request #{index}: {} {}",
                request.method, request.target
            );
            let err = json!({ "error": { "message": format!("fake-openai: no route for {path}"), "type": "not_found" } });
            (HttpResponse::json(404, &err), "404".to_owned())
        }
        RequestKind::Auxiliary => {
            let title = json!({ "title": AUXILIARY_TITLE }).to_string();
            let items = vec![json!({
                "type": "message", "role": "assistant", "status": "completed",
                "id": format!("msg_aux_{serial}"),
                "content": [{ "type": "output_text", "text": title, "annotations": [] }],
            })];
            (
                HttpResponse::new(
                    200,
                    "text/event-stream",
                    sse(&format!("resp_fake_{serial}"), &items),
                ),
                "title".to_owned(),
            )
        }
        RequestKind::AgentTurn => {
            let n = response_index(&body);
            let responder = shared.responder.clone();
            let turn = run_responder("fake-openai", || responder(&body))
                .unwrap_or_else(ScriptedResponse::text);
            let items = output_items(&turn, n, serial);
            (
                HttpResponse::new(
                    200,
                    "text/event-stream",
                    sse(&format!("resp_fake_{serial}"), &items),
                ),
                summarize(&turn),
            )
        }
    };
    shared.log.answered(index, summary);
    response
}

/// The output items of response number `n` (ids carry `n`, see
/// [`response_index`]; `serial` keeps them unique across conversations).
fn output_items(turn: &ScriptedResponse, n: usize, serial: u64) -> Vec<Value> {
    match turn {
        ScriptedResponse::Text(text) => vec![json!({
            "type": "message", "role": "assistant", "status": "completed",
            "id": format!("msg_oxt{n}_0_{serial}"),
            "content": [{ "type": "output_text", "text": text, "annotations": [] }],
        })],
        ScriptedResponse::Calls(calls) => calls
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let mut item = json!({
                    "type": "function_call", "status": "completed",
                    "id": format!("fc_oxt{n}_{k}_{serial}"),
                    "call_id": format!("call_oxt_{serial}_{k}"),
                    "name": c.name,
                    "arguments": c.arguments.to_string(),
                });
                if let Some(ns) = &c.namespace {
                    item["namespace"] = json!(ns);
                }
                item
            })
            .collect(),
    }
}

fn summarize(turn: &ScriptedResponse) -> String {
    match turn {
        ScriptedResponse::Text(t) => format!("text {:?}", truncate(t, 80)),
        ScriptedResponse::Calls(calls) => calls
            .iter()
            .map(|c| {
                format!(
                    "call {}{} {}",
                    c.namespace
                        .as_deref()
                        .map(|n| format!("{n}/"))
                        .unwrap_or_default(),
                    c.name,
                    truncate(&c.arguments.to_string(), 80)
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The SSE stream of one response: `response.created`, one
/// `response.output_item.done` per item, `response.completed`.
fn sse(response_id: &str, items: &[Value]) -> String {
    let mut events = vec![json!({
        "type": "response.created",
        "response": { "id": response_id },
    })];
    for (i, item) in items.iter().enumerate() {
        events
            .push(json!({ "type": "response.output_item.done", "output_index": i, "item": item }));
    }
    events.push(json!({
        "type": "response.completed",
        "response": {
            "id": response_id,
            "usage": {
                "input_tokens": 10, "input_tokens_details": null,
                "output_tokens": 5, "output_tokens_details": null,
                "total_tokens": 15,
            },
        },
    }));
    let mut out = String::new();
    for e in events {
        let _ = write!(
            out,
            "event: {}\ndata: {e}\n\n",
            e["type"].as_str().unwrap_or("")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::send_raw;

    fn post(server: &FakeOpenAi, body: &Value) -> String {
        let body = body.to_string();
        let raw = format!(
            "POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        send_raw(server.addr(), raw.as_bytes()).unwrap()
    }

    /// The `item` of the first `response.output_item.done` event.
    fn first_item(answer: &str) -> Value {
        let data = answer
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .find(|e| e["type"] == "response.output_item.done")
            .unwrap();
        data["item"].clone()
    }

    #[test]
    fn scripted_turns_follow_echoed_item_ids() {
        let server = FakeOpenAi::start(vec![
            ScriptedResponse::mcp(
                "oxtail",
                "send_message",
                json!({"target": "x", "body": "hi"}),
            ),
            ScriptedResponse::text("done"),
        ]);
        let first = json!({"input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}]});
        let out = post(&server, &first);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.contains("event: response.completed"), "{out}");
        let call = first_item(&out);
        assert_eq!(call["namespace"], "mcp__oxtail");
        assert_eq!(call["name"], "send_message");
        assert_eq!(
            serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap()["body"],
            "hi"
        );
        // Codex echoes the call and adds its output.
        let mut second = first.clone();
        second["input"].as_array_mut().unwrap().extend([
            call.clone(),
            json!({"type": "function_call_output", "call_id": call["call_id"], "output": "Output:\n{\"ok\":true}"}),
        ]);
        assert_eq!(response_index(&second), 1);
        let out = post(&server, &second);
        assert_eq!(first_item(&out)["content"][0]["text"], "done");
        let outs = server.function_outputs_for("send_message");
        assert_eq!(outs.len(), 1);
        assert_eq!(outs[0].namespace.as_deref(), Some("mcp__oxtail"));
        assert!(outs[0].text.contains("\"ok\":true"));
        assert!(server.saw("Output:"));
        assert!(!server.saw("never sent"));
    }

    #[test]
    fn title_requests_do_not_consume_the_script() {
        let server = FakeOpenAi::start(vec![ScriptedResponse::text("only turn")]);
        let title = json!({
            "input": [],
            "text": {"format": {"type": "json_schema", "name": "codex_output_schema"}},
            "client_metadata": {"x-codex-turn-metadata": "{\"thread_source\":\"thread_title\",\"thread_id\":\"t1\"}"},
        });
        let out = post(&server, &title);
        assert!(first_item(&out)["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains(AUXILIARY_TITLE));
        let out = post(&server, &json!({"input": []}));
        assert_eq!(first_item(&out)["content"][0]["text"], "only turn");
        let log = server.http_log();
        assert_eq!(log[0].kind, RequestKind::Auxiliary);
        assert_eq!(log[1].kind, RequestKind::AgentTurn);
        assert_eq!(thread_id(&log[0].body).as_deref(), Some("t1"));
    }

    #[test]
    fn malformed_and_unknown_requests_get_openai_errors() {
        let server = FakeOpenAi::start(vec![]);
        let out = send_raw(
            server.addr(),
            b"GET /v1/models HTTP/1.1\r\n\r\nPOST /v1/responses HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nnope\r\n",
        )
        .unwrap();
        assert!(out.starts_with("HTTP/1.1 404 Not Found\r\n"), "{out}");
        assert!(
            out.contains("fake-openai: no route for /v1/models"),
            "{out}"
        );
        let bad = &out[out.find("HTTP/1.1 400 Bad Request\r\n").expect(&out)..];
        let body: Value = serde_json::from_str(bad.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("bad body")),
            "{body}"
        );
        let log = server.http_log();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].kind, RequestKind::Other);
        assert_eq!(log[0].reply.as_deref(), Some("404"));
    }

    #[test]
    fn by_prompt_separates_conversations() {
        let r = by_prompt([
            ("agent-A", vec![ScriptedResponse::text("A")]),
            ("agent-B", vec![ScriptedResponse::text("B")]),
        ]);
        let req = |p: &str| json!({"input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": p}]}]});
        assert_eq!(r(&req("I am agent-B")), ScriptedResponse::text("B"));
        assert_eq!(r(&req("I am agent-A")), ScriptedResponse::text("A"));
        assert_eq!(
            r(&req("nobody")),
            ScriptedResponse::text(SCRIPT_EXHAUSTED_REPLY)
        );
    }
}
