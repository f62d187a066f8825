//! A raw daemon client: the wire protocol straight over the Unix socket,
//! with pipelining (many requests in flight on one connection), standing in
//! for many shims without paying for their processes.

use oxtail_proto::client::connect_at;
use oxtail_proto::frame::{self, MAX_SERVER_FRAME};
use oxtail_proto::{ClientFrame, Reply, Request, Role, ServerFrame, ShimInfo};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A handshaken connection that introduced itself as a shim of `session`.
pub struct Raw {
    rd: BufReader<UnixStream>,
    wr: BufWriter<UnixStream>,
    next: u64,
}

impl Raw {
    /// Connects as a shim whose client session is `session` (via
    /// `CLAUDE_CODE_SESSION_ID`, as Claude Code 2.1.329 passes it), working
    /// in `cwd`.
    pub fn shim(socket: &Path, session: &str, cwd: &Path) -> Raw {
        let c = connect_at(socket, Role::Shim, Duration::from_secs(10)).expect("connect");
        let s = c.into_stream();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let mut raw = Raw {
            rd: BufReader::with_capacity(1 << 16, s.try_clone().unwrap()),
            wr: BufWriter::with_capacity(1 << 16, s),
            next: 1,
        };
        let env = BTreeMap::from([
            ("CLAUDE_CODE_SESSION_ID".to_string(), session.to_string()),
            ("CLAUDECODE".to_string(), "1".to_string()),
        ]);
        // `..Default::default()`: fields added to ShimInfo later keep their
        // defaults without breaking this driver.
        #[allow(clippy::needless_update)]
        let info = ShimInfo {
            pid: std::process::id(),
            ppid: std::process::id(),
            cwd: cwd.to_path_buf(),
            env,
            ..Default::default()
        };
        raw.call(Request::ShimHello(info));
        raw
    }

    /// Connects as a hook process does (no hello: each request is a
    /// `Request::Hook`).
    pub fn hook(socket: &Path) -> Raw {
        let c = connect_at(socket, Role::Hook, Duration::from_secs(10)).expect("connect");
        let s = c.into_stream();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        Raw {
            rd: BufReader::with_capacity(1 << 16, s.try_clone().unwrap()),
            wr: BufWriter::with_capacity(1 << 16, s),
            next: 1,
        }
    }

    /// Queues one request (sent at the next [`Raw::flush`]).
    pub fn send(&mut self, request: Request) -> u64 {
        let id = self.next;
        self.next += 1;
        self.wr
            .write_all(&frame::encode(&ClientFrame::Request { id, request }))
            .unwrap();
        id
    }

    /// Writes everything queued.
    pub fn flush(&mut self) {
        self.wr.flush().unwrap();
    }

    /// Reads the next reply (skipping events).
    pub fn recv(&mut self) -> (u64, Reply) {
        loop {
            match frame::read_blocking::<ServerFrame>(&mut self.rd, MAX_SERVER_FRAME).unwrap() {
                ServerFrame::Reply { id, reply } => return (id, reply),
                _ => continue,
            }
        }
    }

    /// One request, one reply.
    pub fn call(&mut self, request: Request) -> Reply {
        let id = self.send(request);
        self.flush();
        loop {
            let (rid, r) = self.recv();
            if rid == id {
                return r;
            }
        }
    }

    /// `read_my_messages`, then the ack a shim sends once the result reached
    /// its client, so the mail leaves the mailbox. Returns the result.
    pub fn drain(&mut self) -> Value {
        let v = self.tool("read_my_messages", json!({}));
        if let Some(h) = v["handover"].as_u64() {
            self.wr
                .write_all(&frame::encode(&ClientFrame::Ack {
                    handover: h,
                    delivered: true,
                }))
                .unwrap();
            self.flush();
        }
        v
    }

    /// Runs a tool and returns its JSON value.
    pub fn tool(&mut self, name: &str, args: Value) -> Value {
        match self.call(tool(name, args)) {
            Reply::Ok { value } => value,
            Reply::Error { code, message } => {
                json!({"ok": false, "error": code, "message": message})
            }
        }
    }
}

/// A tool request.
pub fn tool(name: &str, args: Value) -> Request {
    Request::Tool {
        name: name.to_string(),
        args,
        meta: None,
    }
}

/// Whether a reply is a tool success: `ok: true`, or no `ok` and no error
/// code (the tools whose contract result carries no `ok`, CONTRACT §1, §3).
pub fn is_ok(r: &Reply) -> bool {
    matches!(r, Reply::Ok { value }
        if value["ok"] == true || (value.get("ok").is_none() && !value["error"].is_string()))
}
