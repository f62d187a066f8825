//! A minimal HTTP/1.1 server for the scripted fake model APIs
//! ([`crate::fake_anthropic`], [`crate::fake_openai`]).
//!
//! [`HttpServer::start`] binds `127.0.0.1:0` and answers every request with a
//! handler `Fn(HttpRequest) -> HttpResponse`. It supports what the real Claude
//! Code and Codex CLIs send: keep-alive connections (HTTP/1.1 by default,
//! HTTP/1.0 with `Connection: keep-alive`), `Content-Length` and
//! `Transfer-Encoding: chunked` request bodies (trailers are skipped) and
//! `Expect: 100-continue`. Responses are fully buffered and sent with a
//! `content-length`; a server-sent-event stream is simply a buffered
//! `text/event-stream` body, which both CLIs read the same way.
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

use serde_json::Value;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head (request line plus headers) accepted, in bytes.
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
    /// Headers in arrival order, names lower-cased, values trimmed.
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

/// Answers a request that could not be parsed (the error says why); the
/// connection is closed after this answer.
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
    /// request that cannot be parsed (malformed request line or header, head
    /// over [`MAX_HEAD_BYTES`], body over [`MAX_BODY_BYTES`], bad chunk size or
    /// `content-length`); that connection is then closed. If `handler` panics
    /// the connection is closed without an answer.
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
                        tokio::spawn(handle_connection(stream, conn.clone()));
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

/// Serve requests on one connection until EOF, error, or `Connection: close`.
async fn handle_connection(stream: TcpStream, conn: Arc<Connection>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let request = match read_request(&mut reader, &mut write).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(e) => {
                eprintln!("[{}] bad request: {e}", conn.name);
                let _ = write_response(&mut write, (conn.bad_request)(&e), false).await;
                return;
            }
        };
        let keep_alive = request.keep_alive();
        let handler = conn.handler.clone();
        let response = match tokio::task::spawn_blocking(move || handler(request)).await {
            Ok(response) => response,
            Err(e) => {
                eprintln!("[{}] handler failed: {e}", conn.name);
                return;
            }
        };
        if write_response(&mut write, response, keep_alive)
            .await
            .is_err()
            || !keep_alive
        {
            return;
        }
    }
}

/// Read one request. `Ok(None)` means the peer closed the connection cleanly
/// before a new request began.
async fn read_request<R, W>(reader: &mut R, write: &mut W) -> std::io::Result<Option<HttpRequest>>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut head_bytes = 0usize;
    let mut line = String::new();
    // Request line (tolerating stray blank lines between requests).
    loop {
        if !read_head_line(reader, &mut line, &mut head_bytes).await? {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v)) => (m.to_owned(), t.to_owned(), v.to_owned()),
        _ => return Err(invalid("malformed request line")),
    };
    let mut headers = Vec::new();
    loop {
        if !read_head_line(reader, &mut line, &mut head_bytes).await? {
            return Err(invalid("connection closed inside headers"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (name, value) = l
            .split_once(':')
            .ok_or_else(|| invalid("malformed header"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut request = HttpRequest {
        method,
        target,
        version,
        headers,
        body: Vec::new(),
    };
    if request
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        write.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        write.flush().await?;
    }
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked_body(reader).await?;
    } else if let Some(len) = request.header("content-length") {
        let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
        if len > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).await?;
        request.body = body;
    }
    Ok(Some(request))
}

/// Read one line of the request head into `line` (replacing its contents),
/// counting it against [`MAX_HEAD_BYTES`]. `Ok(false)` means EOF.
async fn read_head_line<R>(
    reader: &mut R,
    line: &mut String,
    head_bytes: &mut usize,
) -> std::io::Result<bool>
where
    R: AsyncBufRead + Unpin,
{
    line.clear();
    let n = reader.read_line(line).await?;
    *head_bytes += n;
    if *head_bytes > MAX_HEAD_BYTES {
        return Err(invalid("request head too large"));
    }
    Ok(n > 0)
}

/// Read a `Transfer-Encoding: chunked` body, including any trailers.
async fn read_chunked_body<R>(reader: &mut R) -> std::io::Result<Vec<u8>>
where
    R: AsyncBufRead + Unpin,
{
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(invalid("connection closed inside chunked body"));
        }
        let size_text = line.trim().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailer section, ended by an empty line.
            loop {
                line.clear();
                if reader.read_line(&mut line).await? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).await?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).await?;
    }
}

async fn write_response<W>(
    write: &mut W,
    response: HttpResponse,
    keep_alive: bool,
) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\ncache-control: no-cache\r\n",
        response.status,
        response.content_type,
        response.body.len(),
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(if keep_alive {
        "connection: keep-alive\r\n\r\n"
    } else {
        "connection: close\r\n\r\n"
    });
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&response.body);
    write.write_all(&bytes).await?;
    write.flush().await
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
    fn malformed_requests_get_the_bad_request_answer_and_a_close() {
        let server = echo_server();
        for (raw, why) in [
            (&b"NONSENSE\r\n\r\n"[..], "malformed request line"),
            (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", "malformed header"),
            (
                b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                "bad content-length",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "bad chunk size",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n",
                "body too large",
            ),
        ] {
            let out = roundtrip(&server, raw);
            assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
            assert!(out.contains(why), "{why}: {out}");
            assert!(out.contains("connection: close\r\n"), "{out}");
        }
        // (Nothing after the long line, so no unread bytes turn the close into a reset.)
        let huge = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        let out = roundtrip(&server, huge.as_bytes());
        assert!(out.contains("request head too large"), "{out}");
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
