//! The shim's stdio, between the MCP client and rmcp.
//!
//! * **In**: every line the client writes is checked before rmcp sees it.
//!   rmcp (3.9) silently drops a line that is not JSON, so the client's call
//!   would hang until its own timeout. Here such a line — not JSON, invalid
//!   UTF-8, a lone surrogate escape (`"\ud800"`, which JavaScript emits for a
//!   split emoji), nesting deeper than serde_json's limit (128), or a line
//!   over [`MAX_LINE_BYTES`] — gets a JSON-RPC error `-32700` with
//!   `id: null`, and the shim keeps serving. JSON of the wrong shape goes on
//!   to rmcp, which answers `-32600` itself.
//! * **Out**: rmcp's output goes through one writer task that owns stdout.
//!   After a response line is written and flushed, the writer acks the
//!   daemon's hand-over for that request, if the result carried mail: this is
//!   the moment the mail reached the client. The ack waits
//!   [`CANCEL_WINDOW`] first: a client that cancelled the call
//!   (`notifications/cancelled`) while the result was on its way discards
//!   the result, so a cancel seen in that window acks `delivered: false`
//!   and the daemon puts the mail back.

use serde_json::Value;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The longest line the shim reads from its client: 16 MiB, as rmcp.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// How long after writing a result that carried mail the shim waits for a
/// `notifications/cancelled` of that call before acking it as delivered:
/// 100 ms (`OXTAIL_SHIM_ACK_DELAY_MS` overrides it). A cancel crosses the
/// result on a local pipe within a few ms.
pub const CANCEL_WINDOW: std::time::Duration = std::time::Duration::from_millis(100);

fn cancel_window() -> std::time::Duration {
    std::env::var("OXTAIL_SHIM_ACK_DELAY_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(CANCEL_WINDOW, std::time::Duration::from_millis)
}

/// Acks the daemon's hand-over once the response is out: called with
/// `true` after the line was written and flushed, `false` if the write
/// failed.
pub type AckFn = Box<dyn FnOnce(bool) + Send>;

#[derive(Default)]
struct Acks {
    /// Results not written yet.
    unwritten: HashMap<String, AckFn>,
    /// Written, inside their cancel window.
    written: HashMap<String, AckFn>,
    /// Requests the client cancelled before their result was registered
    /// (the cancel can overtake the daemon's reply), newest last, bounded.
    cancelled: std::collections::VecDeque<String>,
}

/// How many early cancels [`Acks::cancelled`] remembers.
const CANCELS_KEPT: usize = 1024;

/// Responses whose write must be acked, by JSON-RPC id (its JSON text:
/// `7`, `"abc"`).
#[derive(Clone, Default)]
pub struct Confirms(Arc<Mutex<Acks>>);

impl Confirms {
    /// Acks with `ack` once the response to request `id` has been written
    /// and not cancelled within [`CANCEL_WINDOW`].
    pub fn register(&self, id: &Value, ack: AckFn) {
        let key = id.to_string();
        let mut a = self.0.lock().unwrap();
        if a.cancelled.contains(&key) {
            // Cancelled already: the client discards this result.
            drop(a);
            ack(false);
            return;
        }
        a.unwritten.insert(key, ack);
    }

    /// The response to `id` was written (`ok`) or could not be.
    fn written(&self, id: &Value, ok: bool) {
        let key = id.to_string();
        let Some(ack) = self.0.lock().unwrap().unwritten.remove(&key) else {
            return;
        };
        if !ok {
            ack(false);
            return;
        }
        self.0.lock().unwrap().written.insert(key.clone(), ack);
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(cancel_window()).await;
            let ack = me.0.lock().unwrap().written.remove(&key);
            if let Some(ack) = ack {
                ack(true);
            }
        });
    }

    /// The client cancelled request `id`: whatever it was handed is undone.
    fn cancelled(&self, id: &Value) {
        let key = id.to_string();
        let ack = {
            let mut a = self.0.lock().unwrap();
            let found = a.written.remove(&key).or_else(|| a.unwritten.remove(&key));
            if found.is_none() {
                if a.cancelled.len() >= CANCELS_KEPT {
                    a.cancelled.pop_front();
                }
                a.cancelled.push_back(key);
            }
            found
        };
        if let Some(ack) = ack {
            ack(false);
        }
    }

    /// Acks every written result now (the client closed its stdin, so no
    /// cancel can follow), and every unwritten one as undelivered. Returns
    /// how many acks went out.
    pub fn flush_written(&self) -> usize {
        let (written, unwritten) = {
            let mut a = self.0.lock().unwrap();
            (
                std::mem::take(&mut a.written),
                std::mem::take(&mut a.unwritten),
            )
        };
        let n = written.len() + unwritten.len();
        for (_, ack) in written {
            ack(true);
        }
        for (_, ack) in unwritten {
            ack(false);
        }
        n
    }

    fn is_empty(&self) -> bool {
        self.0.lock().unwrap().unwritten.is_empty()
    }
}

/// What rmcp writes into: whole lines go to the writer task.
pub struct LineOut {
    buf: Vec<u8>,
    tx: mpsc::UnboundedSender<Vec<u8>>,
}

impl AsyncWrite for LineOut {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        // Only the new bytes can hold a newline: scanning the whole buffer
        // on every write made a large response quadratic in its chunks.
        let mut from = self.buf.len();
        self.buf.extend_from_slice(data);
        while let Some(nl) = self.buf[from..].iter().position(|b| *b == b'\n') {
            let rest = self.buf.split_off(from + nl + 1);
            let line = std::mem::replace(&mut self.buf, rest);
            from = 0;
            if self.tx.send(line).is_err() {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "stdout is closed",
                )));
            }
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[derive(serde::Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    result: Option<serde::de::IgnoredAny>,
}

/// Starts the writer task on `out` and returns the sender lines go to.
/// After each line it acks the hand-over registered for that response.
fn spawn_writer(
    mut out: impl AsyncWrite + Unpin + Send + 'static,
    confirms: Confirms,
) -> mpsc::UnboundedSender<Vec<u8>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            let written = out.write_all(&line).await.is_ok() && out.flush().await.is_ok();
            if confirms.is_empty() {
                if !written {
                    break;
                }
                continue;
            }
            if let Ok(IdOnly {
                id: Some(id),
                result: Some(_),
            }) = serde_json::from_slice::<IdOnly>(&line)
            {
                confirms.written(&id, written);
            }
            if !written {
                break;
            }
        }
    });
    tx
}

/// The request a `notifications/cancelled` line cancels, if it is one.
fn cancelled_request(line: &[u8]) -> Option<Value> {
    const NEEDLE: &[u8] = b"notifications/cancelled";
    if !line.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
        return None;
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    if v["method"] != "notifications/cancelled" {
        return None;
    }
    v["params"].get("requestId").cloned()
}

/// The JSON-RPC answer to a line that is not a message.
fn parse_error(message: &str) -> Vec<u8> {
    let mut v = serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32700, "message": format!("Parse error: {message}")},
    }))
    .unwrap_or_default();
    v.push(b'\n');
    v
}

/// Why `line` is not JSON, if it is not. Shape errors (valid JSON that is
/// not an MCP message) are left to rmcp, which answers them.
fn syntax_problem(line: &[u8]) -> Option<String> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    match serde_json::from_slice::<rmcp::model::ClientJsonRpcMessage>(line) {
        Ok(_) => None,
        Err(e) => match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                Some(e.to_string())
            }
            _ => None,
        },
    }
}

/// Reads `input` line by line, answers lines that are not JSON on `out_tx`,
/// and passes the rest to `to_rmcp`. Ends at EOF (closing `to_rmcp`, so rmcp
/// sees EOF too).
async fn pump_in(
    input: impl tokio::io::AsyncRead + Unpin,
    mut to_rmcp: tokio::io::DuplexStream,
    out_tx: mpsc::UnboundedSender<Vec<u8>>,
    confirms: Confirms,
) {
    let mut r = BufReader::with_capacity(64 << 10, input);
    let mut line: Vec<u8> = Vec::new();
    let mut discarding = false;
    loop {
        let (take, found) = {
            let avail = match r.fill_buf().await {
                Ok(a) if !a.is_empty() => a,
                _ => break,
            };
            let nl = avail.iter().position(|b| *b == b'\n');
            let take = nl.map_or(avail.len(), |i| i + 1);
            if !discarding {
                if line.len() + take > MAX_LINE_BYTES {
                    discarding = true;
                    line = Vec::new();
                } else {
                    line.extend_from_slice(&avail[..take]);
                }
            }
            (take, nl.is_some())
        };
        r.consume(take);
        if !found {
            continue;
        }
        if discarding {
            discarding = false;
            let _ = out_tx.send(parse_error(&format!(
                "message over the {} MiB line limit",
                MAX_LINE_BYTES >> 20
            )));
            continue;
        }
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if !body.iter().all(u8::is_ascii_whitespace) {
            match syntax_problem(body) {
                Some(why) => {
                    let _ = out_tx.send(parse_error(&why));
                }
                None => {
                    if let Some(id) = cancelled_request(body) {
                        confirms.cancelled(&id);
                    }
                    if to_rmcp.write_all(&line).await.is_err() {
                        break;
                    }
                }
            }
        }
        line.clear();
    }
    let _ = to_rmcp.shutdown().await;
}

/// The transport rmcp serves on, over this process's stdin and stdout, and
/// the table of responses whose write acks a hand-over.
pub fn transport() -> ((tokio::io::DuplexStream, LineOut), Confirms) {
    wrap(tokio::io::stdin(), tokio::io::stdout())
}

/// As [`transport`], over any reader and writer (tests).
pub fn wrap(
    input: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    output: impl AsyncWrite + Unpin + Send + 'static,
) -> ((tokio::io::DuplexStream, LineOut), Confirms) {
    let confirms = Confirms::default();
    let tx = spawn_writer(output, confirms.clone());
    let (rmcp_side, our_side) = tokio::io::duplex(256 << 10);
    tokio::spawn(pump_in(input, our_side, tx.clone(), confirms.clone()));
    (
        (
            rmcp_side,
            LineOut {
                buf: Vec::new(),
                tx,
            },
        ),
        confirms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_problems() {
        let ok = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        assert_eq!(syntax_problem(ok), None);
        assert!(syntax_problem(b"hello").is_some());
        assert!(syntax_problem(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"b":"\ud800"}}}"#).is_some());
        assert!(syntax_problem(b"{\"a\":\"\xff\"}").is_some());
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(syntax_problem(deep.as_bytes()).is_some());
        // Valid JSON of the wrong shape is rmcp's to answer.
        assert_eq!(syntax_problem(br#"{"x":1}"#), None);
    }
}
