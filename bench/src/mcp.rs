//! A minimal MCP client over stdio (newline-delimited JSON-RPC), driving a
//! real `oxtail mcp` process the way Claude Code does.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// One shim process and its stdio.
pub struct Shim {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
    next: u64,
    /// Pid of the `oxtail mcp` process itself (not its `sh` host).
    pub pid: u32,
}

/// How a shim is started.
pub struct ShimOpts<'a> {
    pub bin: &'a Path,
    pub home: &'a Path,
    pub cwd: &'a Path,
    pub session: &'a str,
    /// Start it under `sh` so it has a seat (client process) of its own.
    pub own_seat: bool,
}

fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

impl Shim {
    /// Spawns the shim (no request sent yet).
    pub fn spawn(o: &ShimOpts<'_>) -> Shim {
        let mut cmd = if o.own_seat {
            let mut c = Command::new("sh");
            c.arg("-c").arg("\"$0\" mcp; exit $?").arg(o.bin);
            c
        } else {
            let mut c = Command::new(o.bin);
            c.arg("mcp");
            c
        };
        cmd.env("OXTAIL_HOME", o.home)
            .env_remove("OXTAIL_SOCKET")
            .env("CLAUDE_CODE_SESSION_ID", o.session)
            .env("CLAUDECODE", "1")
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .current_dir(o.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn oxtail mcp");
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().unwrap());
        let pid = child.id();
        Shim {
            child,
            stdin,
            out,
            next: 1,
            pid,
        }
    }

    /// Resolves `pid` to the `oxtail mcp` process when started under `sh`.
    pub fn resolve_pid(&mut self) {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Some(c) = children_of(self.child.id()).first() {
                self.pid = *c;
                return;
            }
            if std::fs::read_link(format!("/proc/{}/exe", self.child.id()))
                .is_ok_and(|e| e.to_string_lossy().contains("oxtail"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn write(&mut self, v: &Value) {
        let mut line = serde_json::to_vec(v).unwrap();
        line.push(b'\n');
        let w = self.stdin.as_mut().unwrap();
        w.write_all(&line).unwrap();
        w.flush().unwrap();
    }

    fn read_response(&mut self, id: u64) -> Value {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).unwrap();
            assert!(n > 0, "shim closed stdout");
            let v: Value = serde_json::from_str(&line).expect("JSON-RPC line");
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                return v;
            }
        }
    }

    /// Sends `initialize` (as Claude Code 2.1.329 does) and waits for the
    /// answer; then `notifications/initialized`.
    pub fn initialize(&mut self) -> Value {
        self.write(&json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {"roots": {"listChanged": true}},
                "clientInfo": {"name": "claude-code", "version": "2.1.329"}
            }
        }));
        let r = self.read_response(0);
        self.write(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        r
    }

    /// Writes a `tools/call` request; returns its id (see [`Shim::finish`]).
    pub fn start_call(&mut self, tool: &str, args: Value) -> u64 {
        let id = self.next;
        self.next += 1;
        self.write(&json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": args}
        }));
        id
    }

    /// Waits for the answer to `id`; returns its structured content.
    pub fn finish(&mut self, id: u64) -> Value {
        let mut r = self.read_response(id);
        if let Some(e) = r.get("error") {
            panic!("tools/call {id} failed: {e}");
        }
        r["result"]["structuredContent"].take()
    }

    /// Calls `tool` and returns its structured content.
    pub fn call(&mut self, tool: &str, args: Value) -> Value {
        let id = self.start_call(tool, args);
        self.finish(id)
    }

    /// Calls `tool` and insists on success: `ok: true`, or (for the tools
    /// whose contract result carries no `ok`, CONTRACT §1 and §3) no
    /// `ok: false` and no error code.
    pub fn ok(&mut self, tool: &str, args: Value) -> Value {
        let v = self.call(tool, args);
        let fine = v["ok"] == true || (v.get("ok").is_none() && !v["error"].is_string());
        assert!(fine, "{tool}: {v}");
        v
    }

    /// Closes stdin and waits for the process; returns its peak RSS (KiB)
    /// from `wait4` when it was a direct child running `oxtail`.
    pub fn close(mut self) -> Option<u64> {
        drop(self.stdin.take());
        wait4_maxrss(&mut self.child)
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` with `wait4` and returns its `ru_maxrss` in KiB.
pub fn wait4_maxrss(child: &mut Child) -> Option<u64> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own un-waited child.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r == pid {
        Some(ru.ru_maxrss as u64)
    } else {
        let _ = child.wait();
        None
    }
}

/// VmRSS and VmHWM of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
