//! oxtail whole-process benchmarks (BENCHMARKS.md): the real `oxtail`
//! release binary, real daemons in temp state dirs, real Unix sockets, real
//! shim and hook processes. Every figure is a median over repeated runs.
//!
//! Usage: `oxtail-bench --oxtail PATH [--quick] [--json FILE] [--only a,b]`
//! (`bench/run.sh` builds everything and passes the release binary).
//! Figures: shim, rtt, read50, ask, hooks, conflicts, list200, throughput,
//! deep, rss, replay, recovery.

mod mcp;
mod raw;

use mcp::{rss_kib, wait4_maxrss, Shim, ShimOpts};
use oxtail_journal::{Journal, Options, Replay};
use raw::{is_ok, tool, Raw};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// One reported figure.
struct Fig {
    key: &'static str,
    what: String,
    median: f64,
    p90: Option<f64>,
    unit: &'static str,
    n: usize,
    /// (text, limit, lower_is_better)
    target: Option<(&'static str, f64, bool)>,
    method: String,
}

impl Fig {
    fn met(&self) -> Option<bool> {
        self.target.map(|(_, lim, lower)| {
            if lower {
                self.median < lim
            } else {
                self.median >= lim
            }
        })
    }
    fn json(&self) -> Value {
        json!({
            "key": self.key, "figure": self.what, "median": self.median, "p90": self.p90,
            "unit": self.unit, "n": self.n, "target": self.target.map(|t| t.0),
            "met": self.met(), "method": self.method,
        })
    }
}

fn median_p90(v: &mut [f64]) -> (f64, f64) {
    assert!(!v.is_empty());
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let med = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    let p90 = v[((v.len() as f64 * 0.9).ceil() as usize).clamp(1, v.len()) - 1];
    (med, p90)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A fresh oxtail instance: temp OXTAIL_HOME, a git repository as the
/// project, a daemon started with `oxtail ctl ping` (as a first client
/// would).
struct Env {
    _tmp: tempfile::TempDir,
    bin: PathBuf,
    home: PathBuf,
    repo: PathBuf,
    socket: PathBuf,
    daemon: u32,
    /// Variables the daemon starts with (it is spawned by the first `ctl`).
    daemon_env: Vec<(String, String)>,
}

impl Env {
    fn new(bin: &Path) -> Env {
        Env::with_env(bin, Vec::new())
    }

    /// As [`Env::new`], with `daemon_env` in the daemon's environment.
    fn with_env(bin: &Path, daemon_env: Vec<(String, String)>) -> Env {
        let tmp = tempfile::Builder::new().prefix("oxb").tempdir().unwrap();
        let home = tmp.path().join("home");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        for args in [
            &["init", "-q", "-b", "main"][..],
            &[
                "-c",
                "user.name=b",
                "-c",
                "user.email=b@example.invalid",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "init",
            ],
        ] {
            let ok = Command::new("git")
                .args(args)
                .current_dir(&repo)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let mut env = Env {
            _tmp: tmp,
            bin: bin.to_path_buf(),
            socket: home.join("run").join("daemon.sock"),
            home,
            repo,
            daemon: 0,
            daemon_env,
        };
        let v = env.ctl(&["ping"]);
        env.daemon = v["pid"].as_u64().expect("daemon pid") as u32;
        env
    }

    fn ctl(&self, args: &[&str]) -> Value {
        let out = Command::new(&self.bin)
            .env("OXTAIL_HOME", &self.home)
            .env_remove("OXTAIL_SOCKET")
            .envs(self.daemon_env.iter().map(|(k, v)| (k, v)))
            .arg("ctl")
            .args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn shim(&self, session: &str, own_seat: bool) -> Shim {
        let mut s = Shim::spawn(&ShimOpts {
            bin: &self.bin,
            home: &self.home,
            cwd: &self.repo,
            session,
            own_seat,
        });
        if own_seat {
            s.resolve_pid();
        }
        s
    }

    fn raw(&self, session: &str) -> Raw {
        Raw::shim(&self.socket, session, &self.repo)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = Command::new(&self.bin)
            .env("OXTAIL_HOME", &self.home)
            .args(["ctl", "shutdown"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end && !exited(self.daemon) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether process `pid` is gone or a zombie (exited, not yet reaped).
fn exited(pid: u32) -> bool {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    st.is_empty()
        || st
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
}

struct Args {
    bin: PathBuf,
    quick: bool,
    only: Option<Vec<String>>,
    json: Option<PathBuf>,
}

fn n(a: &Args, full: usize, quick: usize) -> usize {
    if a.quick {
        quick
    } else {
        full
    }
}

// ------------------------------------------------------------------ shims

fn bench_shim(a: &Args, figs: &mut Vec<Fig>) {
    let env = Env::new(&a.bin);
    let runs = n(a, 40, 10);
    let (mut init, mut rss, mut hwm, mut maxrss) = (vec![], vec![], vec![], vec![]);
    let (mut uss_v, mut anon_v) = (vec![], vec![]);
    for i in 0..=runs {
        let t = Instant::now();
        let mut s = env.shim(&format!("init-{i}"), false);
        s.initialize();
        let dt = t.elapsed();
        // Connected and warmed: one real tool call through the daemon.
        s.ok("set_my_state", json!({"purpose": "measuring"}));
        s.ok("list_project_sessions", json!({}));
        let (r, h) = rss_kib(s.pid);
        let (uss, anon) = smaps_private_kib(s.pid);
        let peak = s.close();
        if i == 0 {
            continue; // warm-up: page cache, daemon first contact
        }
        init.push(ms(dt));
        uss_v.push(uss as f64 / 1024.0);
        anon_v.push(anon as f64 / 1024.0);
        rss.push(r as f64 / 1024.0);
        hwm.push(h as f64 / 1024.0);
        if let Some(p) = peak {
            maxrss.push(p as f64 / 1024.0);
        }
    }
    let (m, p) = median_p90(&mut init);
    figs.push(Fig {
        key: "shim_initialize",
        what: "shim `initialize` latency from spawn (daemon running)".into(),
        median: m,
        p90: Some(p),
        unit: "ms",
        n: init.len(),
        target: Some(("< 15 ms", 15.0, true)),
        method: "fork+exec `oxtail mcp`, write Claude Code's initialize request, read the response line; wall time from before spawn to the response".into(),
    });
    let (m, p) = median_p90(&mut rss);
    figs.push(Fig {
        key: "shim_rss",
        what: "shim resident memory (VmRSS) after initialize + 2 tool calls".into(),
        median: m,
        p90: Some(p),
        unit: "MiB",
        n: rss.len(),
        target: Some(("< 6 MB (5.72 MiB)", 6e6 / 1048576.0, true)),
        method: "/proc/<pid>/status VmRSS of the `oxtail mcp` process, connected to the daemon"
            .into(),
    });
    let (m, p) = median_p90(&mut hwm);
    figs.push(Fig {
        key: "shim_hwm",
        what: "shim peak resident memory (VmHWM)".into(),
        median: m,
        p90: Some(p),
        unit: "MiB",
        n: hwm.len(),
        target: Some(("< 6 MB (5.72 MiB)", 6e6 / 1048576.0, true)),
        method: "/proc/<pid>/status VmHWM at the same moment; wait4 ru_maxrss at exit agrees"
            .into(),
    });
    let (m, p) = median_p90(&mut uss_v);
    let (am, _) = median_p90(&mut anon_v);
    figs.push(Fig {
        key: "shim_uss",
        what: "shim unique memory (USS: pages no other process shares)".into(),
        median: m,
        p90: Some(p),
        unit: "MiB",
        n: uss_v.len(),
        target: None,
        method: format!(
            "/proc/<pid>/smaps_rollup Private_Clean + Private_Dirty, same moment; of it {am:.2} MiB anonymous (heap, stacks); the rest of VmRSS is the binary's code pages, shared by every oxtail process"
        ),
    });
    if !maxrss.is_empty() {
        let (m, _) = median_p90(&mut maxrss);
        eprintln!("  (shim wait4 ru_maxrss median {m:.2} MiB)");
    }
}

/// (Private_Clean + Private_Dirty, Anonymous) of `pid` in KiB, from
/// /proc/<pid>/smaps_rollup.
fn smaps_private_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        field("Private_Clean:") + field("Private_Dirty:"),
        field("Anonymous:"),
    )
}

fn two_agents(env: &Env) -> (Shim, Shim) {
    let mut x = env.shim("agent-a", true);
    let mut y = env.shim("agent-b", true);
    x.initialize();
    y.initialize();
    x.ok(
        "set_my_state",
        json!({"purpose": "sending", "name": "alpha"}),
    );
    y.ok(
        "set_my_state",
        json!({"purpose": "receiving", "name": "beta"}),
    );
    (x, y)
}

/// `runs` timed `send_message` calls from `x` to `beta` (`y`), which drains
/// every 100; µs per round trip.
fn send_rounds(x: &mut Shim, y: &mut Shim, body: &str, runs: usize) -> Vec<f64> {
    let mut v = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        let r = x.call("send_message", json!({"target": "beta", "body": body}));
        v.push(us(t.elapsed()));
        assert_eq!(r["ok"], true, "{r}");
        if i % 100 == 99 {
            y.ok("read_my_messages", json!({}));
        }
    }
    v
}

fn bench_rtt(a: &Args, figs: &mut Vec<Fig>) {
    let env = Env::new(&a.bin);
    let (mut x, mut y) = two_agents(&env);
    let body = "x".repeat(100);
    for _ in 0..50 {
        x.ok("send_message", json!({"target": "beta", "body": body}));
    }
    y.ok("read_my_messages", json!({}));
    let mut v = send_rounds(&mut x, &mut y, &body, n(a, 2000, 300));
    let (m, p) = median_p90(&mut v);
    figs.push(Fig {
        key: "send_rtt",
        what: "`send_message` round trip through a shim (100-byte body)".into(),
        median: m,
        p90: Some(p),
        unit: "µs",
        n: v.len(),
        target: Some(("< 1 ms", 1000.0, true)),
        method: "tools/call written to the shim's stdin until its response line is read; durable (fsync) before the answer; receiver drains every 100".into(),
    });

    let runs = n(a, 40, 10);
    let mut v = Vec::new();
    for r in 0..runs {
        for i in 0..50 {
            x.ok(
                "send_message",
                json!({"target": "beta", "body": format!("{r}/{i} {body}")}),
            );
        }
        let t = Instant::now();
        let got = y.call("read_my_messages", json!({}));
        v.push(us(t.elapsed()));
        assert_eq!(got["count"], 50, "{got}");
    }
    let (m, p) = median_p90(&mut v);
    figs.push(Fig {
        key: "read50",
        what: "`read_my_messages` returning 50 queued messages".into(),
        median: m,
        p90: Some(p),
        unit: "µs",
        n: v.len(),
        target: None,
        method: "tools/call round trip through the shim; the drain (receipts) is journaled and fsynced before the answer".into(),
    });
}

/// `runs` + 1 rounds of `ask_peer` from `x` to `beta` (`y`), which polls
/// for the question and replies; the first round warms up. Returns the
/// asker and, per round, µs from the reply's call to the ask's return.
fn ask_rounds(x: Shim, y: &mut Shim, runs: usize) -> (Shim, Vec<f64>) {
    let mut v = Vec::new();
    let mut x = Some(x);
    for r in 0..=runs {
        let mut asker = x.take().unwrap();
        let th = std::thread::spawn(move || {
            let res = asker.call(
                "ask_peer",
                json!({"target": "beta", "body": format!("question {r}"), "wake": "off", "timeout_ms": 30000}),
            );
            (asker, res, Instant::now())
        });
        // The peer polls for the question, then replies.
        let msg = loop {
            let got = y.ok("read_my_messages", json!({}));
            if let Some(m) = got["messages"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["request_id"].is_string()).cloned())
            {
                break m;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let sent = Instant::now();
        y.ok(
            "reply_to_message",
            json!({"message_id": msg["id"], "body": "answer"}),
        );
        let (asker, res, returned) = th.join().unwrap();
        assert_eq!(res["ok"], true, "{res}");
        x = Some(asker);
        if r > 0 {
            v.push(us(returned.duration_since(sent)));
        }
    }
    (x.unwrap(), v)
}

fn bench_ask(a: &Args, figs: &mut Vec<Fig>) {
    let env = Env::new(&a.bin);
    let (x, mut y) = two_agents(&env);
    let (_, mut v) = ask_rounds(x, &mut y, n(a, 40, 10));
    let (m, p) = median_p90(&mut v);
    figs.push(Fig {
        key: "ask_reply_to_return",
        what: "`ask_peer` returns after the reply is sent".into(),
        median: m,
        p90: Some(p),
        unit: "µs",
        n: v.len(),
        target: Some(("< 2 ms", 2000.0, true)),
        method: "from the moment the peer writes its reply_to_message call to its shim until the asker reads the ask_peer response from its own shim (two shims, same clock)".into(),
    });
}

// ------------------------------------------------------------------ hooks

fn bench_hooks(a: &Args, figs: &mut Vec<Fig>) {
    let env = Env::new(&a.bin);
    let mut me = env.raw("hook-me");
    assert_eq!(
        me.tool("set_my_state", json!({"purpose": "hooked"}))["ok"],
        true
    );
    let mut peer = env.raw("hook-peer");
    assert_eq!(
        peer.tool("set_my_state", json!({"purpose": "peer"}))["ok"],
        true
    );
    let payload = json!({
        "session_id": "hook-me",
        "hook_event_name": "PreToolUse",
        "cwd": env.repo,
        "tool_name": "Bash",
        "tool_input": {"command": "ls"},
        "tool_use_id": "toolu_1",
        "transcript_path": env.repo.join("t.jsonl"),
        "permission_mode": "default",
    })
    .to_string();
    let run_hook = || -> (Duration, Option<u64>, String) {
        let t = Instant::now();
        let mut c = Command::new(&env.bin)
            .args(["hook", "pre-tool-use"])
            .env("OXTAIL_HOME", &env.home)
            .env_remove("OXTAIL_SOCKET")
            .env("CLAUDECODE", "1")
            .env("CLAUDE_PID", std::process::id().to_string())
            .current_dir(&env.repo)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(payload.as_bytes())
            .unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(c.stdout.as_mut().unwrap(), &mut out).unwrap();
        let peak = wait4_maxrss(&mut c);
        (t.elapsed(), peak, out)
    };
    let runs = n(a, 60, 15);
    // The floor: what any process start costs here.
    for (label, prog, args) in [
        ("/bin/true", PathBuf::from("/bin/true"), vec![]),
        ("oxtail --version", env.bin.clone(), vec!["--version"]),
    ] {
        let mut v = Vec::new();
        for _ in 0..=runs {
            let t = Instant::now();
            let ok = Command::new(&prog)
                .args(&args)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            v.push(ms(t.elapsed()));
            assert!(ok.success());
        }
        v.remove(0);
        let (m, p) = median_p90(&mut v);
        figs.push(Fig {
            key: if args.is_empty() {
                "floor_true"
            } else {
                "floor_version"
            },
            what: format!("process floor: `{label}` spawn to exit"),
            median: m,
            p90: Some(p),
            unit: "ms",
            n: v.len(),
            target: None,
            method: "std::process::Command spawn + wait from the benchmark, same as for the hook"
                .into(),
        });
    }
    for waiting in [0usize, 5] {
        let (mut wall, mut peak) = (vec![], vec![]);
        let mut delivered = 0;
        for r in 0..=runs {
            for i in 0..waiting {
                let v = peer.tool(
                    "send_message",
                    json!({"target": "hook-me", "body": format!("note {r}/{i}")}),
                );
                assert_eq!(v["ok"], true, "{v}");
            }
            let (dt, p, out) = run_hook();
            if waiting > 0 && out.contains("note ") {
                delivered += 1;
            }
            if waiting == 0 {
                assert!(out.trim().is_empty() || !out.contains("note "), "{out}");
            }
            // Whatever the hook did not deliver is drained here.
            me.tool("read_my_messages", json!({}));
            if r == 0 {
                continue;
            }
            wall.push(ms(dt));
            if let Some(p) = p {
                peak.push(p as f64 / 1024.0);
            }
        }
        if waiting > 0 {
            assert!(delivered > 0, "the hook never delivered mail");
        }
        let (m, p) = median_p90(&mut wall);
        figs.push(Fig {
            key: if waiting == 0 { "hook_pre_tool_use_empty" } else { "hook_pre_tool_use_5" },
            what: format!("`oxtail hook pre-tool-use` wall time, {waiting} messages waiting"),
            median: m,
            p90: Some(p),
            unit: "ms",
            n: wall.len(),
            target: if waiting == 0 { Some(("< 2 ms", 2.0, true)) } else { None },
            method: format!(
                "spawn → stdin payload → exit, as Claude Code runs it (no shell); {} of {} runs delivered the mail",
                if waiting == 0 { 0 } else { delivered },
                runs + 1
            ),
        });
        if waiting == 0 {
            let (m, p) = median_p90(&mut peak);
            figs.push(Fig {
                key: "hook_rss",
                what: "hook peak resident memory".into(),
                median: m,
                p90: Some(p),
                unit: "MiB",
                n: peak.len(),
                target: None,
                method: "wait4 ru_maxrss of the hook process".into(),
            });
        }
    }
}

// ---------------------------------------------------------------- daemon

/// Issue 14: the PreToolUse hook with and without the file-conflict check,
/// at 50 live agents and 10 000 recent touches, through `sh -c` as Claude
/// Code runs hook commands. Variants run interleaved (one of each per
/// round) so load drifts hit them alike; the figure with the target is the
/// median of the per-round differences.
fn bench_conflicts(a: &Args, figs: &mut Vec<Fig>) {
    use oxtail_proto::{HookCall, HookEvent, Request};
    const AGENTS: usize = 50;
    const FILES: usize = 200; // per agent: 50 × 200 = 10 000 touches
    let env = Env::new(&a.bin);
    let mut shims: Vec<Raw> = (0..AGENTS)
        .map(|i| {
            let mut r = env.raw(&format!("c{i}"));
            assert_eq!(
                r.tool(
                    "set_my_state",
                    json!({"purpose": format!("agent {i}"), "name": format!("agent-{i}")})
                )["ok"],
                true
            );
            r
        })
        .collect();
    // 10 000 edits, as PostToolUse hook requests on a raw hook connection
    // (pipelined: the seeding is not what is measured).
    let mut hook = Raw::hook(&env.socket);
    let t = Instant::now();
    let mut ids = Vec::new();
    for i in 0..AGENTS {
        for f in 0..FILES {
            let payload = json!({
                "session_id": format!("c{i}"),
                "hook_event_name": "PostToolUse",
                "cwd": env.repo,
                "tool_name": "Edit",
                "tool_input": {"file_path": env.repo.join(format!("src/a{i}/f{f}.rs")), "old_string": "a", "new_string": "b"},
                "tool_use_id": "toolu_1",
                "transcript_path": env.repo.join("t.jsonl"),
            });
            ids.push(hook.send(Request::Hook(HookCall {
                event: HookEvent::PostToolUse,
                client: "claude-code".into(),
                payload,
                env: Default::default(),
                ppid: std::process::id(),
                deliver_budget_chars: None,
                deliver_deadline_ms: None,
                conflict_mode: None,
            })));
        }
        // One agent's edits in flight at a time: the replies must not
        // back up while we are still writing.
        hook.flush();
        for _ in 0..FILES {
            let (_, r) = hook.recv();
            assert!(matches!(r, oxtail_proto::Reply::Ok { .. }), "{r:?}");
        }
    }
    eprintln!(
        "bench: conflicts: {} touches seeded in {:.1}s",
        ids.len(),
        t.elapsed().as_secs_f64()
    );
    for (i, f) in [(1, 0), (AGENTS - 1, FILES - 1)] {
        let lc = shims[0].tool("list_claims", json!({"path": format!("src/a{i}/f{f}.rs")}));
        assert_eq!(
            lc["recent_edits"][0]["agent"],
            format!("agent-{i}"),
            "seeded touch missing: {lc}"
        );
    }
    let payload = |tool: &str, input: Value| {
        json!({
            "session_id": "c0",
            "hook_event_name": "PreToolUse",
            "cwd": env.repo,
            "tool_name": tool,
            "tool_input": input,
            "tool_use_id": "toolu_1",
            "transcript_path": env.repo.join("t.jsonl"),
            "permission_mode": "default",
        })
        .to_string()
    };
    let edit = |p: &str| {
        payload(
            "Edit",
            json!({"file_path": env.repo.join(p), "old_string": "a", "new_string": "b"}),
        )
    };
    // (label, payload, OXTAIL_CONFLICT, expect a warning)
    let variants: [(&str, String, &str, bool); 4] = [
        (
            "Bash (no file: nothing to check)",
            payload("Bash", json!({"command": "ls"})),
            "warn",
            false,
        ),
        (
            "Edit, OXTAIL_CONFLICT=off (no check)",
            edit("src/a1/f0.rs"),
            "off",
            false,
        ),
        (
            "Edit of a file nobody touched, check on",
            edit("src/untouched.rs"),
            "warn",
            false,
        ),
        (
            "Edit of a peer's file, check on, warning rendered",
            edit("src/a1/f0.rs"),
            "warn",
            true,
        ),
    ];
    let cmd = format!("'{}' hook pre-tool-use", env.bin.display());
    let run = |body: &str, mode: &str| -> (Duration, String) {
        let t = Instant::now();
        let mut c = Command::new("sh")
            .args(["-c", &cmd])
            .env("OXTAIL_HOME", &env.home)
            .env_remove("OXTAIL_SOCKET")
            .env("CLAUDECODE", "1")
            .env("CLAUDE_PID", std::process::id().to_string())
            .env("OXTAIL_CONFLICT", mode)
            .current_dir(&env.repo)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(c.stdout.as_mut().unwrap(), &mut out).unwrap();
        c.wait().unwrap();
        (t.elapsed(), out)
    };
    // The daemon's share: the same PreToolUse requests on the raw hook
    // connection, no process start (what the check costs the daemon).
    let mut raw_us: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for r in 0..=n(a, 400, 50) {
        for (k, (_, body, mode, _)) in variants.iter().enumerate() {
            let payload: Value = serde_json::from_str(body).unwrap();
            let call = HookCall {
                event: HookEvent::PreToolUse,
                client: "claude-code".into(),
                payload,
                env: Default::default(),
                ppid: std::process::id(),
                deliver_budget_chars: Some(9000),
                deliver_deadline_ms: None,
                conflict_mode: Some((*mode).to_string()),
            };
            let t = Instant::now();
            let reply = hook.call(Request::Hook(call));
            if r > 0 {
                raw_us[k].push(us(t.elapsed()));
            }
            assert!(matches!(reply, oxtail_proto::Reply::Ok { .. }), "{reply:?}");
        }
    }
    let runs = n(a, 200, 20);
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for r in 0..=runs {
        for (k, (label, body, mode, warns)) in variants.iter().enumerate() {
            let (dt, out) = run(body, mode);
            assert_eq!(
                out.contains("File conflict"),
                *warns,
                "{label}: unexpected hook output {out:?}"
            );
            if r > 0 {
                wall[k].push(ms(dt));
            }
        }
        // The peer's notices would grow its next hook; nobody reads them
        // here, and they are bounded (20), so leave them.
    }
    drop(shims.drain(..));
    let keys = [
        "conflict_hook_bash",
        "conflict_hook_off",
        "conflict_hook_untouched",
        "conflict_hook_warned",
    ];
    for (k, (label, ..)) in variants.iter().enumerate() {
        let (m, p) = median_p90(&mut wall[k].clone());
        figs.push(Fig {
            key: keys[k],
            what: format!("PreToolUse hook via `sh -c`, 50 agents, 10 000 touches: {label}"),
            median: m,
            p90: Some(p),
            unit: "ms",
            n: wall[k].len(),
            target: None,
            method: "sh -c '<oxtail> hook pre-tool-use', payload on stdin, spawn to exit; variants interleaved".into(),
        });
    }
    let raw_keys = [
        "conflict_raw_bash",
        "conflict_raw_off",
        "conflict_raw_untouched",
        "conflict_raw_warned",
    ];
    for (k, (label, ..)) in variants.iter().enumerate() {
        let (m, p) = median_p90(&mut raw_us[k].clone());
        figs.push(Fig {
            key: raw_keys[k],
            what: format!("daemon share (raw hook connection, no process): {label}"),
            median: m,
            p90: Some(p),
            unit: "µs",
            n: raw_us[k].len(),
            target: None,
            method: "Request::Hook round trip on one raw hook connection; variants interleaved"
                .into(),
        });
    }
    for (k, key, what) in [
        (
            2,
            "conflict_check_cost_untouched",
            "check on minus off, file nobody touched",
        ),
        (
            3,
            "conflict_check_cost_warned",
            "check on minus off, peer's file (warning rendered)",
        ),
    ] {
        let mut d: Vec<f64> = wall[k].iter().zip(&wall[1]).map(|(x, y)| x - y).collect();
        let (m, p) = median_p90(&mut d);
        figs.push(Fig {
            key,
            what: format!("PreToolUse conflict-check cost through real hooks: {what}"),
            median: m,
            p90: Some(p),
            unit: "ms",
            n: d.len(),
            target: Some(("< 0.3 ms", 0.3, true)),
            method: "median of per-round differences (same round, interleaved runs)".into(),
        });
    }
}

fn bench_list200(a: &Args, figs: &mut Vec<Fig>) {
    bench_list(
        a,
        figs,
        200,
        ["list200_shim", "list200_socket"],
        ("< 2 ms", 2000.0),
    );
}

fn bench_list1000(a: &Args, figs: &mut Vec<Fig>) {
    bench_list(
        a,
        figs,
        1000,
        ["list1000_shim", "list1000_socket"],
        ("≤ 5 ms", 5000.0),
    );
}

/// `list_project_sessions` with `agents` live agents (raw connections) plus
/// the lister, through a shim and at the daemon socket.
fn bench_list(
    a: &Args,
    figs: &mut Vec<Fig>,
    agents: usize,
    keys: [&'static str; 2],
    goal: (&'static str, f64),
) {
    let env = Env::new(&a.bin);
    let mut conns: Vec<Raw> = (0..agents)
        .map(|i| {
            let mut r = env.raw(&format!("agent-{i:03}"));
            let v = r.tool(
                "set_my_state",
                json!({"purpose": format!("working on part {i} of the refactor")}),
            );
            assert_eq!(v["ok"], true, "{v}");
            r
        })
        .collect();
    let mut lister = env.shim("agent-lister", true);
    lister.initialize();
    lister.ok("set_my_state", json!({"purpose": "listing"}));
    let rows = agents + 1;
    let first = lister.ok("list_project_sessions", json!({}));
    assert_eq!(first["count"], rows, "{}", first["count"]);
    let runs = n(a, 400, 100);
    let mut v = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let r = lister.call("list_project_sessions", json!({}));
        v.push(us(t.elapsed()));
        assert_eq!(r["count"], rows);
    }
    let (m, p) = median_p90(&mut v);
    figs.push(Fig {
        key: keys[0],
        what: format!("`list_project_sessions` with {agents} agents ({rows} rows), through a shim"),
        median: m,
        p90: Some(p),
        unit: "µs",
        n: v.len(),
        target: Some((goal.0, goal.1, true)),
        method: "tools/call round trip through the shim; 200 agents connected over raw sockets, all live".into(),
    });
    let mut v = Vec::new();
    let c = &mut conns[0];
    for _ in 0..runs {
        let t = Instant::now();
        let r = c.call(tool("list_project_sessions", json!({})));
        v.push(us(t.elapsed()));
        assert!(is_ok(&r));
    }
    let (m, p) = median_p90(&mut v);
    figs.push(Fig {
        key: keys[1],
        what: format!("`list_project_sessions` with {agents} agents, daemon socket round trip"),
        median: m,
        p90: Some(p),
        unit: "µs",
        n: v.len(),
        target: None,
        method: "one request/reply on a raw connection (no shim): the daemon's share".into(),
    });
}

/// `clients` connections send `per_client` messages each, `window` in
/// flight per connection; every `read_every` sends a client drains its own
/// mailbox (0: never). Returns (acknowledged sends, elapsed).
fn send_storm(
    env: &Env,
    prefix: &str,
    clients: usize,
    per_client: usize,
    window: usize,
    read_every: usize,
) -> (usize, Duration) {
    let mut conns: Vec<Raw> = (0..clients)
        .map(|i| {
            let mut r = env.raw(&format!("{prefix}-{i}"));
            assert_eq!(
                r.tool("set_my_state", json!({"purpose": "storm"}))["ok"],
                true
            );
            r
        })
        .collect();
    let barrier = Arc::new(Barrier::new(clients + 1));
    let body = "m".repeat(100);
    let handles: Vec<_> = conns
        .drain(..)
        .enumerate()
        .map(|(i, mut c)| {
            let barrier = barrier.clone();
            let target = format!("{prefix}-{}", (i + 1) % clients);
            let body = body.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut ok = 0;
                let mut sent = 0;
                while sent < per_client {
                    let w = window.min(per_client - sent);
                    for _ in 0..w {
                        c.send(tool(
                            "send_message",
                            json!({"target": target, "body": body}),
                        ));
                    }
                    c.flush();
                    for _ in 0..w {
                        let (_, r) = c.recv();
                        if is_ok(&r) {
                            ok += 1;
                        }
                    }
                    let before = sent;
                    sent += w;
                    if read_every > 0 && sent / read_every != before / read_every {
                        c.tool("read_my_messages", json!({}));
                    }
                }
                (ok, c)
            })
        })
        .collect();
    barrier.wait();
    let t = Instant::now();
    let mut ok = 0;
    let mut keep = Vec::new();
    for h in handles {
        let (o, c) = h.join().unwrap();
        ok += o;
        keep.push(c);
    }
    (ok, t.elapsed())
}

/// Send latency at the daemon socket to a receiver with an empty mailbox
/// and to one that never reads (`depth` messages queued).
fn bench_deep(a: &Args, figs: &mut Vec<Fig>) {
    let env = Env::new(&a.bin);
    let mut tx = env.raw("deep-sender");
    let mut idle = env.raw("deep-idle");
    let mut busy = env.raw("deep-reader");
    for r in [&mut tx, &mut idle, &mut busy] {
        assert_eq!(
            r.tool("set_my_state", json!({"purpose": "deep"}))["ok"],
            true
        );
    }
    let depth = n(a, 5000, 2000);
    let body = "d".repeat(100);
    let mut sent = 0;
    while sent < depth {
        let w = 64.min(depth - sent);
        for _ in 0..w {
            tx.send(tool(
                "send_message",
                json!({"target": "deep-idle", "body": body}),
            ));
        }
        tx.flush();
        for _ in 0..w {
            assert!(is_ok(&tx.recv().1));
        }
        sent += w;
    }
    let runs = n(a, 200, 50);
    for (target, label) in [
        ("deep-reader", "an empty mailbox"),
        ("deep-idle", "a mailbox that never drains"),
    ] {
        let mut v = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let r = tx.call(tool(
                "send_message",
                json!({"target": target, "body": body}),
            ));
            v.push(us(t.elapsed()));
            assert!(is_ok(&r));
            if target == "deep-reader" {
                busy.tool("read_my_messages", json!({}));
            }
        }
        let (m, p) = median_p90(&mut v);
        figs.push(Fig {
            key: if target == "deep-idle" {
                "send_to_deep_mailbox"
            } else {
                "send_to_empty_mailbox"
            },
            what: if target == "deep-idle" {
                format!(
                    "`send_message` to {label} ({}+ queued), socket round trip",
                    depth
                )
            } else {
                format!("`send_message` to {label}, socket round trip")
            },
            median: m,
            p90: Some(p),
            unit: "µs",
            n: v.len(),
            target: None,
            method: "one request at a time on a raw daemon connection; fsync included".into(),
        });
    }
}

/// Issue 12's depth sweep on one mailbox that never drains: the send round
/// trip at 0, 1 k, 10 k, 100 k (and 1 M) queued; the time to fill 100 k;
/// daemon memory per queued message; p99 send latency while compaction
/// snapshots are written; and a restart after kill -9 at the full depth.
fn bench_depth(a: &Args, figs: &mut Vec<Fig>) {
    let env = Env::new(&a.bin);
    let mut tx = env.raw("depth-sender");
    let mut rx = env.raw("depth-idle");
    for r in [&mut tx, &mut rx] {
        assert_eq!(
            r.tool("set_my_state", json!({"purpose": "depth"}))["ok"],
            true
        );
    }
    let (rss0, _) = rss_kib(env.daemon);
    let body = "d".repeat(100);
    let send = json!({"target": "depth-idle", "body": body});
    let steps: &[(usize, &'static str, &'static str)] = if a.quick {
        &[
            (0, "send_depth_0", "0"),
            (1_000, "send_depth_1k", "1 k"),
            (10_000, "send_depth_10k", "10 k"),
            (100_000, "send_depth_100k", "100 k"),
        ]
    } else {
        &[
            (0, "send_depth_0", "0"),
            (1_000, "send_depth_1k", "1 k"),
            (10_000, "send_depth_10k", "10 k"),
            (100_000, "send_depth_100k", "100 k"),
            (1_000_000, "send_depth_1m", "1 M"),
        ]
    };
    let mut queued = 0usize;
    let mut fill = Duration::ZERO;
    let mut fill_100k = None;
    // Single timed sends between fill batches past 100 k: what a request
    // sees while compaction snapshots are built and written.
    let mut during = Vec::new();
    let mut batches = 0u64;
    for &(depth, key, label) in steps {
        while queued < depth {
            let w = 64.min(depth - queued);
            let t = Instant::now();
            for _ in 0..w {
                tx.send(tool("send_message", send.clone()));
            }
            tx.flush();
            for _ in 0..w {
                assert!(is_ok(&tx.recv().1));
            }
            fill += t.elapsed();
            queued += w;
            batches += 1;
            if queued >= 100_000 && fill_100k.is_none() {
                fill_100k = Some(fill);
            }
            if queued > 100_000 && batches.is_multiple_of(8) {
                let t = Instant::now();
                assert!(is_ok(&tx.call(tool("send_message", send.clone()))));
                during.push(us(t.elapsed()) / 1000.0);
                queued += 1;
            }
        }
        let mut v = Vec::new();
        for _ in 0..n(a, 200, 100) {
            let t = Instant::now();
            assert!(is_ok(&tx.call(tool("send_message", send.clone()))));
            v.push(us(t.elapsed()) / 1000.0);
            queued += 1;
        }
        let (m, p) = median_p90(&mut v);
        figs.push(Fig {
            key,
            what: format!("`send_message` round trip with {label} unread in the receiver's mailbox"),
            median: m,
            p90: Some(p),
            unit: "ms",
            n: v.len(),
            target: (depth >= 100_000).then_some(("≤ 0.6 ms", 0.6, true)),
            method: "one request at a time on a raw daemon connection after filling the mailbox (pipelined, 64 in flight); fsync included".into(),
        });
    }
    if let Some(f) = fill_100k {
        figs.push(Fig {
            key: "fill_100k",
            what: "filling one mailbox from 0 to 100 k unread".into(),
            median: f.as_secs_f64(),
            p90: None,
            unit: "s",
            n: 1,
            target: Some(("< 10 s", 10.0, true)),
            method: "pipelined sends (64 in flight) on one raw connection, each acknowledged after its fsync".into(),
        });
    }
    let (rss, _) = rss_kib(env.daemon);
    let per = (rss.saturating_sub(rss0) as f64 * 1024.0) / queued as f64;
    figs.push(Fig {
        key: "bytes_per_queued_message",
        what: format!(
            "daemon memory per queued 100-byte message beyond the body, at {queued} queued"
        ),
        median: per - 100.0,
        p90: None,
        unit: "B",
        n: 1,
        target: Some(("≤ 300 B", 300.0, true)),
        method: format!(
            "(VmRSS after − VmRSS before) / queued − 100; VmRSS {:.0} MiB",
            rss as f64 / 1024.0
        ),
    });
    let log = std::fs::read_to_string(env.home.join("daemon.log")).unwrap_or_default();
    let snaps: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("snapshot written off the core thread"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("bytes="))
                .and_then(|b| b.parse().ok())
        })
        .collect();
    if !during.is_empty() {
        during.sort_by(f64::total_cmp);
        let p99 = during[((during.len() as f64 * 0.99).ceil() as usize).clamp(1, during.len()) - 1];
        let (m, _) = median_p90(&mut during.clone());
        figs.push(Fig {
            key: "send_p99_during_snapshots",
            what: format!(
                "p99 `send_message` round trip while filling past 100 k, through {} compaction snapshots (largest {:.0} MiB)",
                snaps.len(),
                snaps.iter().max().copied().unwrap_or(0) as f64 / 1048576.0
            ),
            median: p99,
            p90: Some(m),
            unit: "ms",
            n: during.len(),
            target: Some(("≤ 10 ms (with a ≥ 64 MB snapshot)", 10.0, true)),
            method: "a timed single send every 8 fill batches; the p90 column holds the median".into(),
        });
    }
    // kill -9 at full depth, then the first request of the next daemon.
    drop((tx, rx));
    let (steady, _) = rss_kib(env.daemon);
    // SAFETY: kill has no memory-safety preconditions; the pid is our daemon.
    unsafe { libc::kill(env.daemon as i32, libc::SIGKILL) };
    let t = Instant::now();
    while !exited(env.daemon) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let dead = t.elapsed();
    let t = Instant::now();
    let v = env.ctl(&["ping"]);
    let restart = t.elapsed();
    let pid = v["pid"].as_u64().unwrap() as u32;
    let (_, hwm) = rss_kib(pid);
    figs.push(Fig {
        key: "restart_after_kill9",
        what: format!("first `ctl ping` answered after kill -9 with {queued} queued"),
        median: restart.as_secs_f64(),
        p90: None,
        unit: "s",
        n: 1,
        target: Some(("< 1 s", 1.0, true)),
        method: format!("`oxtail ctl ping` starting the daemon, which recovers the journal (old daemon reaped in {:.0} ms first)", ms(dead)),
    });
    figs.push(Fig {
        key: "recovery_peak_ratio",
        what: "peak memory during recovery / steady memory before the kill".into(),
        median: hwm as f64 / steady.max(1) as f64,
        p90: None,
        unit: "×",
        n: 1,
        target: Some(("≤ 1.2×", 1.2, true)),
        method: format!("VmHWM of the new daemon after its first answer ({:.0} MiB) / VmRSS of the old one ({:.0} MiB)", hwm as f64 / 1024.0, steady as f64 / 1024.0),
    });
}

fn bench_throughput(a: &Args, figs: &mut Vec<Fig>) {
    let rounds = n(a, 3, 1);
    for (label, clients, window, per_client) in [
        ("pipelined", 16usize, 64usize, n(a, 6250, 1250)),
        ("one-in-flight", 16, 1, n(a, 1250, 250)),
    ] {
        let mut rates = Vec::new();
        for r in 0..rounds {
            let env = Env::new(&a.bin);
            let (ok, dt) = send_storm(&env, &format!("tput{r}"), clients, per_client, window, 500);
            assert_eq!(ok, clients * per_client, "every send acknowledged");
            rates.push(ok as f64 / dt.as_secs_f64());
        }
        let (m, _) = median_p90(&mut rates);
        figs.push(Fig {
            key: if window > 1 { "durable_msgs_per_s" } else { "durable_msgs_per_s_unpipelined" },
            what: format!("durable messages per second, {clients} clients, {window} in flight each ({label})"),
            median: m,
            p90: None,
            unit: "msg/s",
            n: rates.len(),
            target: if window > 1 { Some(("≥ 20 000/s", 20000.0, false)) } else { None },
            method: format!(
                "{} send_message tool requests over raw daemon sockets per round, each acknowledged only after its journal record is fsynced (group commit); receivers drain every 500 sends; median over rounds of total/elapsed",
                clients * per_client
            ),
        });
    }
}

fn bench_rss(a: &Args, figs: &mut Vec<Fig>) {
    let env = Env::new(&a.bin);
    let per = n(a, 1000, 200);
    let (ok, dt) = send_storm(&env, "rss", 100, per, 64, 0);
    assert_eq!(ok, 100 * per);
    let stats = env.ctl(&["stats"]);
    let (rss, hwm) = rss_kib(env.daemon);
    eprintln!(
        "  (rss storm: {ok} messages in {:.1}s; stats queued={} journal_bytes={})",
        dt.as_secs_f64(),
        stats["queued_messages"],
        stats["journal_bytes"]
    );
    figs.push(Fig {
        key: "daemon_rss_100x100k",
        what: format!(
            "daemon resident memory, 100 agents, {} queued messages (100-byte bodies)",
            100 * per
        ),
        median: rss as f64 / 1024.0,
        p90: Some(hwm as f64 / 1024.0),
        unit: "MiB",
        n: 1,
        target: None,
        method: "/proc/<pid>/status VmRSS after the sends (p90 column: VmHWM, the peak)".into(),
    });
}

/// Bytes of the snapshot files (`*.snap`) under `dir`, recursively.
fn snapshot_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                snapshot_bytes(&p)
            } else if p.extension().is_some_and(|x| x == "snap") {
                e.metadata().map_or(0, |m| m.len())
            } else {
                0
            }
        })
        .sum()
}

/// The soak (issue 12): a constant fleet of agents sends and drains at a
/// steady rate for `OXTAIL_SOAK_SECS` (1 800 s; 120 s with `--quick`),
/// while the daemon's memory, snapshot size and journal size are sampled
/// every 10 s. The state is bounded by the retention caps, so each should
/// reach a plateau: the figures compare the last third of the run with the
/// end of the middle third.
fn bench_soak(a: &Args, figs: &mut Vec<Fig>) {
    let secs: u64 = std::env::var("OXTAIL_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if a.quick { 120 } else { 1800 });
    let agents = 10usize;
    // Per agent: one send every 20 ms at most (≤ 50/s each, 500/s in
    // all), draining its own mailbox every 50 sends: the default retention
    // cap (100 k delivered messages) is reached after about 200 s.
    let pace = Duration::from_millis(20);
    let env = Env::new(&a.bin);
    let stop = Instant::now() + Duration::from_secs(secs);
    let body = "s".repeat(100);
    let conns: Vec<Raw> = (0..agents)
        .map(|i| {
            let mut c = env.raw(&format!("soak-{i}"));
            assert_eq!(
                c.tool("set_my_state", json!({"purpose": "soak"}))["ok"],
                true
            );
            c
        })
        .collect();
    let handles: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let target = format!("soak-{}", (i + 1) % agents);
            let body = body.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut sent = 0u64;
                while Instant::now() < stop {
                    let t = Instant::now();
                    let r = c.call(tool(
                        "send_message",
                        json!({"target": target, "body": body}),
                    ));
                    lat.push(us(t.elapsed()) / 1000.0);
                    assert!(is_ok(&r), "{r:?}");
                    sent += 1;
                    if sent.is_multiple_of(50) {
                        let r = c.drain();
                        assert!(r["ok"] == true || r["count"].is_u64(), "{r}");
                    }
                    if let Some(rest) = pace.checked_sub(t.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
                (sent, lat)
            })
        })
        .collect();
    // (elapsed s, RSS KiB, snapshot bytes, journal bytes, retained)
    let mut samples: Vec<(f64, u64, u64, u64, u64)> = Vec::new();
    let started = Instant::now();
    while Instant::now() < stop {
        std::thread::sleep(Duration::from_secs(10).min(stop - Instant::now()));
        let st = env.ctl(&["stats"]);
        let (rss, _) = rss_kib(env.daemon);
        let s = (
            started.elapsed().as_secs_f64(),
            rss,
            snapshot_bytes(&env.home),
            st["journal_bytes"].as_u64().unwrap_or(0),
            st["retained_messages"].as_u64().unwrap_or(0),
        );
        eprintln!(
            "  soak {:>5.0}s rss {:>7.1} MiB snapshots {:>7.1} MiB journal {:>7.1} MiB retained {}",
            s.0,
            s.1 as f64 / 1024.0,
            s.2 as f64 / 1048576.0,
            s.3 as f64 / 1048576.0,
            s.4
        );
        samples.push(s);
    }
    let mut lat = Vec::new();
    let mut sent = 0;
    for h in handles {
        let (n, l) = h.join().unwrap();
        sent += n;
        lat.extend(l);
    }
    // The journal and snapshots are a sawtooth (compaction keeps two
    // generations), so compare peaks: the middle third's against the last
    // third's.
    let end = samples.last().expect("a sample").0;
    let peak = |from: f64, to: f64, f: fn(&(f64, u64, u64, u64, u64)) -> u64| {
        samples
            .iter()
            .filter(|s| s.0 > from && s.0 <= to)
            .map(f)
            .max()
            .unwrap_or(0)
    };
    let (a3, b3) = (end / 3.0, end * 2.0 / 3.0);
    let method = format!(
        "{agents} agents over raw daemon sockets, each sending one 100-byte message at most every 20 ms to the next and draining every 50 sends, for {secs} s ({sent} messages); sampled every 10 s; growth = peak over the last third / peak over the middle third"
    );
    let mib = |b: u64| b as f64 / 1048576.0;
    for (key, what, at_mid, pk) in [
        (
            "soak_rss",
            "daemon RSS",
            peak(a3, b3, |s| s.1) * 1024,
            peak(b3, end, |s| s.1) * 1024,
        ),
        (
            "soak_snapshot",
            "snapshot files",
            peak(a3, b3, |s| s.2),
            peak(b3, end, |s| s.2),
        ),
        (
            "soak_journal",
            "journal segments",
            peak(a3, b3, |s| s.3),
            peak(b3, end, |s| s.3),
        ),
    ] {
        let growth = (pk as f64 / (at_mid.max(1)) as f64 - 1.0) * 100.0;
        figs.push(Fig {
            key,
            what: format!(
                "soak: growth of the {what}, peak of the last third of {secs} s over the middle third's ({:.1} → {:.1} MiB)",
                mib(at_mid),
                mib(pk)
            ),
            median: growth.max(0.0),
            p90: None,
            unit: "%",
            n: samples.len(),
            target: Some(("plateau: ≤ 10 % growth", 10.0, true)),
            method: method.clone(),
        });
    }
    let (m, p) = median_p90(&mut lat);
    lat.sort_by(f64::total_cmp);
    let p99 = lat[(lat.len() * 99 / 100).min(lat.len() - 1)];
    figs.push(Fig {
        key: "soak_send",
        what: format!("soak: `send_message` round trip over {secs} s (p99 {p99:.2} ms)"),
        median: m,
        p90: Some(p),
        unit: "ms",
        n: lat.len(),
        target: None,
        method,
    });
}

/// A nats-server with JetStream on a free 127.0.0.1 port and a temp store,
/// killed on drop.
struct Nats {
    child: std::process::Child,
    _store: tempfile::TempDir,
    port: u16,
}

impl Nats {
    /// `None` (and a note) when no nats-server is installed.
    fn start() -> Option<Nats> {
        let bin = ["nats-server", "/usr/sbin/nats-server", "/usr/local/bin/nats-server"]
            .into_iter()
            .find(|b| {
                Command::new(b)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = tempfile::tempdir().unwrap();
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Nats {
            child,
            _store: store,
            port,
        })
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Federation (issue 16): two daemons (separate homes and sockets, as two
/// machines) joined through one nats-server on 127.0.0.1.
fn bench_federation(a: &Args, figs: &mut Vec<Fig>) {
    let Some(nats) = Nats::start() else {
        eprintln!("  federation: skipped, no nats-server on PATH (apt install nats-server)");
        return;
    };
    let fed = |host: &str| {
        vec![
            (
                "OXTAIL_FEDERATION_URL".to_string(),
                format!("nats://127.0.0.1:{}", nats.port),
            ),
            ("OXTAIL_FEDERATION_PROJECT".into(), "oxtail-bench".into()),
            ("OXTAIL_FEDERATION_HOST".into(), host.into()),
            ("OXTAIL_FEDERATION_HEARTBEAT_MS".into(), "200".into()),
        ]
    };
    let env_a = Env::with_env(&a.bin, fed("host-a"));
    let env_b = Env::with_env(&a.bin, fed("host-b"));
    let mut x = env_a.shim("fed-a", true);
    x.initialize();
    x.ok("set_my_state", json!({"purpose": "sending", "name": "alpha"}));
    // Presence: from the remote agent's registration to its row here.
    let t = Instant::now();
    let mut y = env_b.shim("fed-b", true);
    y.initialize();
    y.ok("set_my_state", json!({"purpose": "receiving", "name": "beta"}));
    loop {
        let l = x.call("list_project_sessions", json!({}));
        let seen = l["sessions"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r["name"] == "beta" && r["remote"] == true));
        if seen {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "no presence: {l}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let converged = t.elapsed();
    figs.push(Fig {
        key: "fed_presence",
        what: "federation: presence convergence (a new remote agent appears in list_project_sessions)".into(),
        median: ms(converged),
        p90: None,
        unit: "ms",
        n: 1,
        target: None,
        method: "from the remote agent's set_my_state until the local list shows its row (remote: true), polling every 5 ms; heartbeat OXTAIL_FEDERATION_HEARTBEAT_MS=200".into(),
    });
    // Send round trip: acknowledged once JetStream stored the publish.
    let body = "f".repeat(100);
    for _ in 0..20 {
        x.ok("send_message", json!({"target": "beta", "body": body}));
    }
    let mut v = send_rounds(&mut x, &mut y, &body, n(a, 500, 100));
    let (m, p) = median_p90(&mut v);
    figs.push(Fig {
        key: "fed_send_rtt",
        what: "federation: `send_message` round trip to an agent on the other daemon, through a shim".into(),
        median: m / 1000.0,
        p90: Some(p / 1000.0),
        unit: "ms",
        n: v.len(),
        target: Some(("≤ 2 ms", 2.0, true)),
        method: "tools/call round trip; the result waits for JetStream's publish ack (stored by the nats-server on 127.0.0.1, file store)".into(),
    });
    // Drain what is queued so the ask's question is found at once.
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        let got = y.ok("read_my_messages", json!({}));
        if got["count"] == 0 {
            break;
        }
    }
    let (_, mut v) = ask_rounds(x, &mut y, n(a, 40, 10));
    let (m, p) = median_p90(&mut v);
    figs.push(Fig {
        key: "fed_ask_reply_to_return",
        what: "federation: `ask_peer` returns after the remote peer's reply is sent".into(),
        median: m / 1000.0,
        p90: Some(p / 1000.0),
        unit: "ms",
        n: v.len(),
        target: Some(("≤ 3 ms", 3.0, true)),
        method: "from the moment the remote peer writes its reply_to_message call to its shim until the asker reads the ask_peer response (two daemons, one nats-server, same clock)".into(),
    });
    // Durable cross-daemon messages/s, pipelined on a raw connection.
    let mut raw = env_a.raw("fed-a-raw");
    assert_eq!(raw.tool("set_my_state", json!({"purpose": "storm"}))["ok"], true);
    let total = n(a, 5000, 1000);
    let t = Instant::now();
    let mut sent = 0;
    while sent < total {
        let w = 64.min(total - sent);
        for _ in 0..w {
            raw.send(tool("send_message", json!({"target": "beta", "body": body})));
        }
        raw.flush();
        for _ in 0..w {
            let (_, r) = raw.recv();
            assert!(is_ok(&r), "{r:?}");
        }
        sent += w;
    }
    let rate = total as f64 / t.elapsed().as_secs_f64();
    figs.push(Fig {
        key: "fed_throughput",
        what: format!("federation: durable cross-daemon messages/s ({total} sends, 64 in flight)"),
        median: rate,
        p90: None,
        unit: "msg/s",
        n: 1,
        target: None,
        method: "send_message to the remote agent on a raw daemon socket, each acknowledged after the local journal fsync and JetStream's publish ack".into(),
    });
}

// --------------------------------------------------------------- journal

fn bench_replay(a: &Args, figs: &mut Vec<Fig>) {
    let records = n(a, 1_000_000, 100_000) as u64;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let mut payload = [0x5au8; 108];
    let (mut j, _) = Journal::open(&dir, Options::default(), |_| Ok(())).unwrap();
    let t = Instant::now();
    for i in 0..records {
        payload[..8].copy_from_slice(&i.to_le_bytes());
        j.append(&payload[..92 + (i % 17) as usize]).unwrap();
        if (i + 1) % 1000 == 0 {
            j.sync().unwrap();
        }
    }
    j.sync().unwrap();
    let append = t.elapsed();
    let bytes = j.disk_bytes();
    drop(j);
    let mut v = Vec::new();
    for _ in 0..n(a, 5, 3) {
        let t = Instant::now();
        let mut count = 0u64;
        let (j, _) = Journal::open(&dir, Options::default(), |r| {
            if let Replay::Record { .. } = r {
                count += 1;
            }
            Ok(())
        })
        .unwrap();
        v.push(t.elapsed().as_secs_f64());
        drop(j);
        assert_eq!(count, records);
    }
    let (m, p) = median_p90(&mut v);
    figs.push(Fig {
        key: "journal_replay_1m",
        what: format!("journal replay of {records} records (~100 B payloads, {:.0} MiB)", bytes as f64 / 1048576.0),
        median: m,
        p90: Some(p),
        unit: "s",
        n: v.len(),
        target: Some(("< 2 s", 2.0, true)),
        method: format!(
            "oxtail_journal::Journal::open with a counting callback (CRC check + framing), warm page cache; appending them took {:.2} s with an fsync per 1000",
            append.as_secs_f64()
        ),
    });
}

/// Renames message and request ids in a command record so copy `k` of it
/// is a distinct, consistent set of commands.
fn rename_ids(v: &mut Value, k: usize) {
    match v {
        Value::String(s) if s.starts_with("msg_") || s.starts_with("req_") => {
            s.push_str(&format!("_{k}"));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rename_ids(x, k)),
        Value::Object(o) => o.values_mut().for_each(|x| rename_ids(x, k)),
        _ => {}
    }
}

fn bench_recovery(a: &Args, figs: &mut Vec<Fig>) {
    // 1. Real command records from a real daemon: 20 agents sending and
    //    reading.
    let env = Env::new(&a.bin);
    let (ok, _) = send_storm(&env, "rec", 20, 200, 16, 50);
    assert_eq!(ok, 4000);
    // kill -9: keep the records in the segments (a shutdown would snapshot).
    // SAFETY: kill has no memory-safety preconditions; the pid is our daemon.
    unsafe { libc::kill(env.daemon as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(300));
    let mut sample: Vec<Value> = Vec::new();
    let (j, _) = Journal::open(&env.home.join("journal"), Options::default(), |r| {
        if let Replay::Record { payload, .. } = r {
            let cmds = oxtail_daemon::codec::decode_record(payload).unwrap();
            sample.push(serde_json::to_value(cmds).unwrap());
        }
        Ok(())
    })
    .unwrap();
    drop(j);
    let kinds: std::collections::BTreeMap<String, usize> = sample
        .iter()
        .flat_map(|r| r.as_array().cloned().unwrap_or_default())
        .fold(Default::default(), |mut m, c| {
            // Externally tagged: `{"enqueue": {…}}`.
            let kind = c.as_object().and_then(|o| o.keys().next().cloned());
            *m.entry(kind.unwrap_or_else(|| "?".into())).or_default() += 1;
            m
        });
    // 2. Replicate them to N records.
    let records = n(a, 1_000_000, 100_000);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let (mut j, _) = Journal::open(&dir, Options::default(), |_| Ok(())).unwrap();
    let mut written = 0;
    let mut k = 0;
    while written < records {
        for rec in &sample {
            if written == records {
                break;
            }
            let mut r = rec.clone();
            if k > 0 {
                rename_ids(&mut r, k);
            }
            let cmds: Vec<oxtail_daemon::state::Command> = serde_json::from_value(r).unwrap();
            j.append(&oxtail_daemon::codec::encode_record(&cmds).unwrap())
                .unwrap();
            written += 1;
            if written % 1000 == 0 {
                j.sync().unwrap();
            }
        }
        k += 1;
    }
    j.sync().unwrap();
    let bytes = j.disk_bytes();
    drop(j);
    // 3. Where the time goes: framing + CRC only, then + decode (postcard, codec::decode_record).
    let mut frame_only = Vec::new();
    let mut decode = Vec::new();
    for _ in 0..n(a, 3, 1) {
        let t = Instant::now();
        let (j, _) = Journal::open(&dir, Options::default(), |_| Ok(())).unwrap();
        frame_only.push(t.elapsed().as_secs_f64());
        drop(j);
        let t = Instant::now();
        let (j, _) = Journal::open(&dir, Options::default(), |r| {
            if let Replay::Record { payload, .. } = r {
                let cmds = oxtail_daemon::codec::decode_record(payload).unwrap();
                std::hint::black_box(cmds);
            }
            Ok(())
        })
        .unwrap();
        decode.push(t.elapsed().as_secs_f64());
        drop(j);
    }
    let (frame_med, _) = median_p90(&mut frame_only);
    let (decode_med, _) = median_p90(&mut decode);
    if let Ok(keep) = std::env::var("OXB_KEEP_RECOVERY_DIR") {
        let _ = std::fs::remove_dir_all(&keep);
        std::fs::rename(&dir, &keep)
            .or_else(|_| {
                Command::new("cp")
                    .arg("-r")
                    .arg(&dir)
                    .arg(&keep)
                    .status()
                    .map(|_| ())
            })
            .unwrap();
        eprintln!("  (kept the journal in {keep})");
        return recover_only(
            Path::new(&keep),
            a,
            figs,
            frame_med,
            decode_med,
            records,
            bytes,
            sample.len(),
            &kinds,
        );
    }
    recover_only(
        &dir,
        a,
        figs,
        frame_med,
        decode_med,
        records,
        bytes,
        sample.len(),
        &kinds,
    )
}

#[allow(clippy::too_many_arguments)]
fn recover_only(
    dir: &Path,
    a: &Args,
    figs: &mut Vec<Fig>,
    frame_med: f64,
    decode_med: f64,
    records: usize,
    bytes: u64,
    sample_len: usize,
    kinds: &std::collections::BTreeMap<String, usize>,
) {
    // 4. Time the daemon's own recovery.
    let config = oxtail_daemon::config::Config::default();
    let mut v = Vec::new();
    let mut msgs = 0;
    for _ in 0..n(a, 3, 1) {
        let t = Instant::now();
        let (state, journal) = oxtail_daemon::server::open_state(dir, &config).unwrap();
        v.push(t.elapsed().as_secs_f64());
        msgs = state.messages.len();
        drop(journal);
        drop(state);
    }
    // The same state restored from a snapshot (what a restart after
    // compaction or `ctl shutdown` reads).
    let (state, mut journal) = oxtail_daemon::server::open_state(dir, &config).unwrap();
    let snap = oxtail_daemon::codec::encode_snapshot(&state).unwrap();
    journal.snapshot(&snap).unwrap();
    drop((state, journal));
    let mut sv = Vec::new();
    for _ in 0..n(a, 3, 1) {
        let t = Instant::now();
        let (state, journal) = oxtail_daemon::server::open_state(dir, &config).unwrap();
        sv.push(t.elapsed().as_secs_f64());
        assert_eq!(state.messages.len(), msgs);
        drop((state, journal));
    }
    let (sm, sp) = median_p90(&mut sv);
    figs.push(Fig {
        key: "daemon_restore_snapshot",
        what: format!("daemon recovery from a snapshot of the recovered state ({msgs} messages, {:.0} MiB)", snap.len() as f64 / 1048576.0),
        median: sm,
        p90: Some(sp),
        unit: "s",
        n: sv.len(),
        target: None,
        method: "open_state after Journal::snapshot of the recovered state (codec::encode_snapshot: postcard), no records after it".into(),
    });
    let (m, p) = median_p90(&mut v);
    figs.push(Fig {
        key: "daemon_recovery_1m",
        what: format!("daemon recovery (`open_state`) of {records} real command records ({:.0} MiB)", bytes as f64 / 1048576.0),
        median: m,
        p90: Some(p),
        unit: "s",
        n: v.len(),
        target: Some(("< 2 s", 2.0, true)),
        method: format!(
            "records captured from a real daemon ({sample_len} records; commands {kinds:?}), replicated with fresh ids, replayed by oxtail_daemon::server::open_state; the state ends with {msgs} messages. Split: framing + CRC {frame_med:.2} s, + postcard decode of Vec<Command> {decode_med:.2} s, the rest ({:.2} s) is applying the commands",
            m - decode_med
        ),
    });
}

// ------------------------------------------------------------------- main

fn main() {
    let mut args = std::env::args().skip(1);
    let mut a = Args {
        bin: PathBuf::new(),
        quick: false,
        only: None,
        json: None,
    };
    while let Some(x) = args.next() {
        match x.as_str() {
            "--oxtail" => a.bin = PathBuf::from(args.next().expect("--oxtail PATH")),
            "--quick" => a.quick = true,
            "--only" => {
                a.only = Some(
                    args.next()
                        .expect("--only a,b")
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                )
            }
            "--json" => a.json = Some(PathBuf::from(args.next().expect("--json FILE"))),
            "--recover-dir" => {
                // Profiling aid: only time open_state on a kept journal
                // (OXB_KEEP_RECOVERY_DIR from an earlier run).
                let dir = PathBuf::from(args.next().expect("--recover-dir DIR"));
                // CPU time too: on a loaded machine wall time says little.
                let cpu = || {
                    // SAFETY: getrusage only writes the struct we pass.
                    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
                    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
                    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
                    tv(ru.ru_utime) + tv(ru.ru_stime)
                };
                let (t, c) = (Instant::now(), cpu());
                let (state, _j) =
                    oxtail_daemon::server::open_state(&dir, &Default::default()).unwrap();
                eprintln!(
                    "open_state: {:.2} s wall, {:.2} s CPU, {} messages, VmHWM {} KiB",
                    t.elapsed().as_secs_f64(),
                    cpu() - c,
                    state.messages.len(),
                    rss_kib(std::process::id()).1
                );
                return;
            }
            "-h" | "--help" => {
                println!("oxtail-bench --oxtail PATH [--quick] [--json FILE] [--only shim,rtt,read50,ask,hooks,conflicts,list200,list1000,throughput,deep,depth,rss,replay,recovery]");
                return;
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.bin.is_file(), "--oxtail must name the oxtail binary");
    let wanted = |k: &str| a.only.as_ref().is_none_or(|o| o.iter().any(|x| x == k));
    let mut figs = Vec::new();
    type Bench = fn(&Args, &mut Vec<Fig>);
    let all: [(&str, Bench); 15] = [
        ("shim", bench_shim),
        ("rtt", bench_rtt),
        ("ask", bench_ask),
        ("hooks", bench_hooks),
        ("conflicts", bench_conflicts),
        ("list200", bench_list200),
        ("list1000", bench_list1000),
        ("throughput", bench_throughput),
        ("deep", bench_deep),
        ("depth", bench_depth),
        ("rss", bench_rss),
        ("soak", bench_soak),
        ("federation", bench_federation),
        ("replay", bench_replay),
        ("recovery", bench_recovery),
    ];
    for (k, f) in all {
        if !(wanted(k) || (k == "rtt" && wanted("read50"))) {
            continue;
        }
        eprintln!("bench: {k}");
        let t = Instant::now();
        f(&a, &mut figs);
        eprintln!("bench: {k} took {:.1}s", t.elapsed().as_secs_f64());
    }
    println!("| figure | median | p90 | n | target (SPEC §9) | met |");
    println!("|---|---|---|---|---|---|");
    for f in &figs {
        let fmt = |x: f64| {
            if x >= 1000.0 {
                format!("{x:.0}")
            } else if x >= 10.0 {
                format!("{x:.1}")
            } else {
                format!("{x:.3}")
            }
        };
        println!(
            "| {} | {} {} | {} | {} | {} | {} |",
            f.what,
            fmt(f.median),
            f.unit,
            f.p90
                .map(|p| format!("{} {}", fmt(p), f.unit))
                .unwrap_or("–".into()),
            f.n,
            f.target.map(|t| t.0).unwrap_or("–"),
            match f.met() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            }
        );
    }
    if let Some(p) = &a.json {
        let v = json!({
            "quick": a.quick,
            "figures": figs.iter().map(Fig::json).collect::<Vec<_>>(),
        });
        std::fs::write(p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    }
}
