//! The HTTP/1.1 server under the scripted fake model APIs
//! ([`crate::fake_anthropic`], [`crate::fake_openai`]), on hyper.
//!
//! [`HttpServer::start`] binds `127.0.0.1:0` and answers every request with a
//! handler `Fn(HttpRequest) -> HttpResponse`. hyper's HTTP/1 server speaks
//! what the real Claude Code and Codex CLIs send: keep-alive (HTTP/1.1 by
//! default, HTTP/1.0 with `Connection: keep-alive`), pipelining,
//! `Content-Length` and chunked request bodies, `Expect: 100-continue`.
//! Responses are fully buffered and sent with a `content-length`; a
//! server-sent-event stream is simply a buffered `text/event-stream` body,
//! which both CLIs read the same way.
//!
//! The server runs on its own thread with its own single-threaded Tokio
//! runtime, so it works the same from plain `#[test]`s and `#[tokio::test]`s.
//! The handler runs on a blocking thread per request, so it may block (e.g.
//! until another agent's request has arrived) without stalling other
//! connections. Dropping the [`HttpServer`] stops accepting and closes every
//! open connection; a handler still running is abandoned and its answer
//! discarded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::Value;
use tokio::net::TcpListener;

/// Largest request head (request line plus headers) accepted, in bytes
/// (hyper's read buffer); a larger head is answered `431` by hyper.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Largest request body accepted, in bytes (after de-chunking).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A parsed HTTP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method as sent, e.g. `POST`.
    pub method: String,
    /// Request target including the query string, e.g. `/v1/messages?beta=true`.
    pub target: String,
    /// Protocol version as sent, e.g. `HTTP/1.1`.
    pub version: String,
    /// Headers in arrival order (grouped by name), names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked; empty if the request had none).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// Whether the connection stays open after the answer: HTTP/1.0 only with
    /// `Connection: keep-alive`, later versions unless `Connection: close`.
    pub fn keep_alive(&self) -> bool {
        let conn = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.version == "HTTP/1.0" {
            conn.contains("keep-alive")
        } else {
            !conn.contains("close")
        }
    }
}

/// An HTTP response with a fully buffered body.
///
/// The server always adds `content-length`, `cache-control: no-cache` and
/// `connection` (`keep-alive` or `close`) headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code; the reason phrase is derived from it.
    pub status: u16,
    /// The `content-type` header value.
    pub content_type: &'static str,
    /// Extra headers, sent after `cache-control` in this order.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status`, `content_type` and `body`, no extra headers.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// An `application/json` response with `body` serialized compactly.
    pub fn json(status: u16, body: &Value) -> Self {
        Self::new(status, "application/json", body.to_string())
    }

    /// The same response with an extra header `name: value`.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Answers one request; runs on a blocking thread and may block.
type Handler = dyn Fn(HttpRequest) -> HttpResponse + Send + Sync + 'static;

/// Answers a request whose body could not be read (over
/// [`MAX_BODY_BYTES`], or the connection broke inside it; the error says
/// why); the connection is closed after this answer.
type BadRequest = dyn Fn(&std::io::Error) -> HttpResponse + Send + Sync + 'static;

/// A running HTTP/1.1 server on `127.0.0.1`. Stops when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Bind `127.0.0.1:0` and serve every request with `handler`.
    ///
    /// `name` names the server thread (`<name>-<port>`) and prefixes its log
    /// lines on stderr (`[<name>] …`). `bad_request` builds the answer to a
    /// request whose body cannot be read (a `content-length` or chunked body
    /// over [`MAX_BODY_BYTES`], or a broken body); that connection is then
    /// closed. A request hyper cannot parse at all (request line, header,
    /// `content-length` syntax, chunk size) gets hyper's own empty `400`
    /// (`431` for a head over [`MAX_HEAD_BYTES`]) and a close. If `handler`
    /// panics the connection is closed without an answer.
    ///
    /// Errors: binding the socket, or creating the runtime or thread, failed.
    pub fn start(
        name: &str,
        handler: impl Fn(HttpRequest) -> HttpResponse + Send + Sync + 'static,
        bad_request: impl Fn(&std::io::Error) -> HttpResponse + Send + Sync + 'static,
    ) -> std::io::Result<HttpServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _guard = rt.enter();
            TcpListener::from_std(listener)?
        };
        let conn = Arc::new(Connection {
            name: name.to_owned(),
            handler: Arc::new(handler),
            bad_request: Box::new(bad_request),
        });
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{}", addr.port()))
            .spawn(move || serve(rt, listener, conn, shutdown_rx))?;
        Ok(HttpServer {
            addr,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// The socket address the server listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// What every connection task needs.
struct Connection {
    name: String,
    handler: Arc<Handler>,
    bad_request: Box<BadRequest>,
}

/// Server thread body: accept connections until shutdown is signalled.
fn serve(
    rt: tokio::runtime::Runtime,
    listener: TcpListener,
    conn: Arc<Connection>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    rt.block_on(async {
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        let conn = conn.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |req| {
                                let conn = conn.clone();
                                async move { respond(req, &conn).await }
                            });
                            // Errors (a parse error hyper answered, a peer
                            // gone, a panicked handler) just end the connection.
                            let _ = hyper::server::conn::http1::Builder::new()
                                .max_buf_size(MAX_HEAD_BYTES)
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    Err(e) => {
                        eprintln!("[{}] accept failed: {e}", conn.name);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    });
    // Connection tasks are dropped (closing their sockets); a handler still
    // blocking is abandoned.
    rt.shutdown_background();
}

/// One request: read its body, run the handler on a blocking thread, and
/// build hyper's response. `Err` (the handler panicked) closes the
/// connection without an answer.
async fn respond(
    req: hyper::Request<Incoming>,
    conn: &Connection,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let mut request = HttpRequest {
        method: parts.method.as_str().to_owned(),
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.to_string(), |p| p.as_str().to_owned()),
        version: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
                (k.as_str().to_owned(), v)
            })
            .collect(),
        body: Vec::new(),
    };
    let declared = request
        .header("content-length")
        .and_then(|l| l.parse::<u64>().ok());
    let body = if declared.is_some_and(|l| l > MAX_BODY_BYTES as u64) {
        Err(invalid("body too large"))
    } else {
        Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    invalid("body too large")
                } else {
                    invalid(&format!("bad body: {e}"))
                }
            })
    };
    match body {
        Ok(b) => request.body = b,
        Err(e) => {
            eprintln!("[{}] bad request: {e}", conn.name);
            return Ok(to_hyper((conn.bad_request)(&e), false));
        }
    }
    let keep_alive = request.keep_alive();
    let handler = conn.handler.clone();
    match tokio::task::spawn_blocking(move || handler(request)).await {
        Ok(response) => Ok(to_hyper(response, keep_alive)),
        Err(e) => {
            eprintln!("[{}] handler failed: {e}", conn.name);
            Err(std::io::Error::other("handler failed"))
        }
    }
}

/// `response` as hyper sends it: `content-type`, `content-length`,
/// `cache-control: no-cache`, the extra headers in order, then
/// `connection` (`keep-alive` or `close`, which hyper honours).
fn to_hyper(response: HttpResponse, keep_alive: bool) -> hyper::Response<Full<Bytes>> {
    let len = response.body.len();
    let mut out = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = out.headers_mut();
    let mut put = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.append(n, v);
        }
    };
    put("content-type", response.content_type);
    put("content-length", &len.to_string());
    put("cache-control", "no-cache");
    for (name, value) in &response.headers {
        put(name, value);
    }
    put(
        "connection",
        if keep_alive { "keep-alive" } else { "close" },
    );
    out
}

/// Test client: connect to `addr`, send `raw` as is, and return everything
/// the server answers until it closes the connection (so the last request
/// should say `Connection: close`), lossily decoded as UTF-8.
///
/// Errors: connecting, writing or reading failed, or no byte arrived for 10 s.
pub fn send_raw(addr: SocketAddr, raw: &[u8]) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(raw)?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn invalid(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn roundtrip(server: &HttpServer, raw: &[u8]) -> String {
        send_raw(server.addr(), raw).unwrap()
    }

    /// A server answering `<method> <target> <body>` as text.
    fn echo_server() -> HttpServer {
        HttpServer::start(
            "http-test",
            |r: HttpRequest| {
                let text = format!(
                    "{} {} {}",
                    r.method,
                    r.target,
                    String::from_utf8_lossy(&r.body)
                );
                HttpResponse::new(200, "text/plain", text).with_header("x-test", "1")
            },
            |e| HttpResponse::json(400, &serde_json::json!({ "error": e.to_string() })),
        )
        .unwrap()
    }

    #[test]
    fn keep_alive_serves_content_length_and_chunked_bodies_in_order() {
        let server = echo_server();
        let raw = "POST /a?x=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
                   \r\n\
                   POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n\
                   3;ext=1\r\nwor\r\n2\r\nld\r\n0\r\nx-trailer: t\r\n\r\n";
        let out = roundtrip(&server, raw.as_bytes());
        let first = out.find("POST /a?x=1 hello").expect(&out);
        let cont = out.find("HTTP/1.1 100 Continue").expect(&out);
        let second = out.find("POST /b world").expect(&out);
        assert!(first < cont && cont < second, "{out}");
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        assert!(out.contains("connection: keep-alive\r\n"), "{out}");
        assert!(out.contains("x-test: 1\r\nconnection: close\r\n"), "{out}");
        assert!(out.contains("content-length: 17\r\n"), "{out}");
    }

    #[test]
    fn http_1_0_closes_unless_asked_to_keep_alive() {
        let server = echo_server();
        // Without keep-alive the server closes after the answer (or
        // `roundtrip` would time out).
        let out = roundtrip(&server, b"GET /one HTTP/1.0\r\n\r\n");
        assert!(out.contains("connection: close\r\n"), "{out}");
        assert!(out.ends_with("GET /one "), "{out}");
        let out = roundtrip(
            &server,
            b"GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /two HTTP/1.0\r\n\r\n",
        );
        assert!(
            out.contains("GET /one") && out.contains("GET /two"),
            "{out}"
        );
    }

    #[test]
    fn malformed_requests_get_a_400_and_a_close() {
        let server = echo_server();
        // What hyper cannot parse it answers itself, with an empty 400.
        for raw in [
            &b"NONSENSE\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        ] {
            let out = roundtrip(&server, raw);
            assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        }
        // A bad chunk: hyper has already called the service, whose body
        // read fails; the answer is `bad_request`'s.
        let out = roundtrip(
            &server,
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("bad body"), "{out}");
        assert!(out.contains("connection: close\r\n"), "{out}");
        // A body over the limit gets `bad_request`'s answer, then a close.
        let out = roundtrip(
            &server,
            b"POST / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains(r#"{"error":"body too large"}"#), "{out}");
        assert!(out.contains("connection: close\r\n"), "{out}");
        // (Nothing after the long line, so no unread bytes turn the close into a reset.)
        let huge = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        let out = roundtrip(&server, huge.as_bytes());
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
    }

    #[test]
    fn a_blocking_handler_does_not_stall_other_connections() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = std::sync::Mutex::new(rx);
        let server = HttpServer::start(
            "http-test",
            move |r: HttpRequest| {
                if r.path() == "/wait" {
                    let _ = rx.lock().unwrap().recv_timeout(Duration::from_secs(10));
                }
                HttpResponse::new(200, "text/plain", r.path().to_owned())
            },
            |_| HttpResponse::new(400, "text/plain", "bad"),
        )
        .unwrap();
        let addr = server.addr();
        let waiting = std::thread::spawn(move || {
            send_raw(addr, b"GET /wait HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap()
        });
        let out = roundtrip(&server, b"GET /now HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(out.ends_with("/now"), "{out}");
        tx.send(()).unwrap();
        assert!(waiting.join().unwrap().ends_with("/wait"));
    }

    #[test]
    fn drop_closes_open_connections_and_the_listener() {
        let server = echo_server();
        let addr = server.addr();
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\n\r\n").unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).contains("keep-alive"));
        drop(server);
        // The kept-alive connection is closed (EOF or reset), not left open.
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("connection still open after drop: {other:?}"),
        }
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
}
