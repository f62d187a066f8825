//! "Delivered" means the mail reached the agent (issue 9): mail leaves a
//! mailbox only when the receiving side acks the hand-over. Real shims,
//! a real daemon, real faults: a stalled daemon (SIGSTOP) under a read that
//! times out or is cancelled, a shim killed mid-call, a kill -9 loop with
//! several senders and readers, and malformed MCP input.
//!
//! Every wait is on state (a bounded loop that fails with what it saw), or a
//! liveness watchdog; the figures live in RELIABILITY.md.

use oxtail_tests::harness::{kill_pid, Agent, AgentOpts, Instance};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

async fn agent(ox: &Instance, id: &str, env: &[(&str, &str)]) -> Agent {
    let mut o = AgentOpts::claude(&ox.workdir("repo"), id);
    o.env
        .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let a = ox.agent(o).await.unwrap();
    // Registered before anyone addresses it.
    a.ok("set_my_state", json!({"purpose": id})).await.unwrap();
    a
}

/// Messages in a read_my_messages result: (body, redelivered).
fn bodies(v: &Value) -> Vec<(String, bool)> {
    v["messages"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["body"].as_str().unwrap_or_default().to_string(),
                        m["redelivered"] == json!(true),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads until `want` bodies arrived (bounded), returning every hand-over.
async fn read_all(b: &Agent, want: usize) -> Vec<(String, bool)> {
    let end = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < want {
        let v = b.call("read_my_messages", json!({})).await.unwrap();
        got.extend(bodies(&v));
        assert!(Instant::now() < end, "only {got:?} of {want} arrived");
    }
    got
}

async fn send3(a: &Agent) -> Vec<Value> {
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = a
            .ok(
                "send_message",
                json!({"target": "sess-b", "body": format!("m{i}")}),
            )
            .await
            .unwrap();
        ids.push(r["message_id"].clone());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_times_out_in_a_stall_keeps_the_mail() {
    let ox = Instance::new(BIN);
    let a = agent(&ox, "sess-a", &[]).await;
    let b = agent(&ox, "sess-b", &[("OXTAIL_SHIM_CALL_TIMEOUT_MS", "1000")]).await;
    let ids = send3(&a).await;
    let pid = ox.daemon_pid().unwrap();
    kill_pid(pid, libc::SIGSTOP);
    let r = b.call_raw("read_my_messages", json!({})).await.unwrap();
    kill_pid(pid, libc::SIGCONT);
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let got = read_all(&b, 3).await;
    // The stalled read's reply reached no one; the next one hands all three
    // over, in order, flagged because a hand-over may have happened.
    assert_eq!(
        got,
        vec![
            ("m0".to_string(), true),
            ("m1".to_string(), true),
            ("m2".to_string(), true)
        ]
    );
    for id in &ids {
        let st = a.delivered(id).await.unwrap();
        assert_eq!(st["via"], "read_my_messages", "{st}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_read_in_a_stall_keeps_the_mail() {
    let ox = Instance::new(BIN);
    let a = agent(&ox, "sess-a", &[]).await;
    let b = agent(&ox, "sess-b", &[]).await;
    send3(&a).await;
    let pid = ox.daemon_pid().unwrap();
    kill_pid(pid, libc::SIGSTOP);
    // Abandoning the call makes rmcp send notifications/cancelled.
    let r = tokio::time::timeout(
        Duration::from_millis(300),
        b.call("read_my_messages", json!({})),
    )
    .await;
    assert!(r.is_err(), "the read should still be waiting: {r:?}");
    kill_pid(pid, libc::SIGCONT);
    let got = read_all(&b, 3).await;
    assert_eq!(
        got.iter().map(|(b, _)| b.as_str()).collect::<Vec<_>>(),
        ["m0", "m1", "m2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shim_killed_mid_read_keeps_the_mail() {
    let ox = Instance::new(BIN);
    let a = agent(&ox, "sess-a", &[]).await;
    let b = agent(&ox, "sess-b", &[]).await;
    send3(&a).await;
    let pid = ox.daemon_pid().unwrap();
    kill_pid(pid, libc::SIGSTOP);
    let b_pid = b.pid.unwrap();
    let pending = tokio::spawn(async move {
        let _ = b.call("read_my_messages", json!({})).await;
    });
    // The request is on its way (or queued in the socket); kill the shim
    // (its sh host and the shim itself) while the daemon cannot answer.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = Command::new("pkill")
        .args(["-KILL", "-P", &b_pid.to_string()])
        .status();
    kill_pid(b_pid, libc::SIGKILL);
    kill_pid(pid, libc::SIGCONT);
    let _ = pending.await;
    // The same session comes back in a new shim and gets everything.
    let b2 = agent(&ox, "sess-b", &[]).await;
    let got = read_all(&b2, 3).await;
    assert_eq!(
        got.iter().map(|(b, _)| b.as_str()).collect::<Vec<_>>(),
        ["m0", "m1", "m2"]
    );
}

/// What the kill loop saw: per reader, every hand-over in order.
#[derive(Default)]
struct Seen {
    acked: HashMap<usize, Vec<u64>>, // sender → acknowledged seqs, in order
    handed: Vec<(usize, u64, bool)>, // (sender, seq, redelivered)
    kills: usize,
    stalls: usize,
}

fn parse_body(b: &str) -> Option<(usize, u64)> {
    let (s, q) = b.strip_prefix('s')?.split_once(':')?;
    Some((s.parse().ok()?, q.parse().ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_loop_loses_nothing_and_flags_every_repeat() {
    const SENDERS: usize = 6;
    const READERS: usize = 3;
    const KILLS: usize = 20;
    let ox = Instance::with_env(
        BIN,
        &[
            // Short budgets so calls caught by a stall time out or are
            // cancelled, as an agent's would.
            ("OXTAIL_SHIM_CALL_TIMEOUT_MS", "400"),
            ("OXTAIL_HANDOVER_TTL_MS", "2000"),
        ],
    );
    let mut readers = Vec::new();
    for r in 0..READERS {
        readers.push(Arc::new(agent(&ox, &format!("sess-r{r}"), &[]).await));
    }
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        senders.push(Arc::new(agent(&ox, &format!("sess-s{s}"), &[]).await));
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (s, a) in senders.iter().enumerate() {
        let (a, seen, stop) = (a.clone(), seen.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut seq = 0u64;
            while !stop.load(Ordering::SeqCst) {
                seq += 1;
                let body = format!("s{s}:{seq}");
                let to = format!("sess-r{}", s % READERS);
                if let Ok(v) = a
                    .call("send_message", json!({"target": to, "body": body}))
                    .await
                {
                    if v["ok"] == json!(true) {
                        seen.lock().unwrap().acked.entry(s).or_default().push(seq);
                    }
                }
            }
        }));
    }
    for (i, b) in readers.iter().enumerate() {
        let (b, seen, stop) = (b.clone(), seen.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                // Reader 0 sometimes abandons its call (notifications/cancelled).
                let v = if i == 0 && n.is_multiple_of(3) {
                    match tokio::time::timeout(
                        Duration::from_millis(5),
                        b.call("read_my_messages", json!({})),
                    )
                    .await
                    {
                        Ok(Ok(v)) => v,
                        _ => continue,
                    }
                } else {
                    match b.call("read_my_messages", json!({})).await {
                        Ok(v) => v,
                        Err(_) => continue,
                    }
                };
                let mut s = seen.lock().unwrap();
                for (body, re) in bodies(&v) {
                    if let Some((snd, seq)) = parse_body(&body) {
                        s.handed.push((snd, seq, re));
                    }
                }
            }
        }));
    }
    // The faults: kill -9 the daemon, and now and then stall it long enough
    // for calls to time out. Any client call starts a new daemon.
    let end = Instant::now() + Duration::from_secs(90);
    let mut k = 0;
    while seen.lock().unwrap().kills < KILLS {
        assert!(Instant::now() < end, "could not make {KILLS} kills in 90 s");
        // Long enough between kills for some hand-overs to be acked (the
        // shim acks 250 ms after writing), short enough to catch many.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Some(pid) = ox.daemon_pid() else { continue };
        k += 1;
        if k % 4 == 1 {
            kill_pid(pid, libc::SIGSTOP);
            tokio::time::sleep(Duration::from_millis(600)).await;
            kill_pid(pid, libc::SIGCONT);
            seen.lock().unwrap().stalls += 1;
        }
        kill_pid(pid, libc::SIGKILL);
        let _ = oxtail_tests::harness::wait_gone(pid, Duration::from_secs(5));
        seen.lock().unwrap().kills += 1;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    // Drain what is left, unhurried.
    for (r, b) in readers.iter().enumerate() {
        let me = format!("sess-r{r}");
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let Ok(v) = b.call("read_my_messages", json!({})).await else {
                continue;
            };
            let got = bodies(&v);
            let mut s = seen.lock().unwrap();
            for (body, re) in &got {
                if let Some((snd, seq)) = parse_body(body) {
                    s.handed.push((snd, seq, *re));
                }
            }
            drop(s);
            // Empty, and nothing held for an unconfirmed hand-over.
            if got.is_empty()
                && ox
                    .ctl(&["inbox", &me])
                    .is_ok_and(|i| i["queued"].as_array().is_some_and(|q| q.is_empty()))
            {
                break;
            }
            assert!(Instant::now() < end, "mail still queued after 20 s");
        }
    }
    let s = seen.lock().unwrap();
    assert!(s.kills >= KILLS, "only {} kills", s.kills);
    let mut first: HashMap<(usize, u64), usize> = HashMap::new();
    let mut unflagged = Vec::new();
    let mut flagged = 0;
    for (i, (snd, seq, re)) in s.handed.iter().enumerate() {
        if let Some(_prev) = first.get(&(*snd, *seq)) {
            if *re {
                flagged += 1;
            } else {
                unflagged.push((*snd, *seq));
            }
        } else {
            first.insert((*snd, *seq), i);
        }
    }
    let mut lost = Vec::new();
    let mut acked = 0;
    for (snd, seqs) in &s.acked {
        for q in seqs {
            acked += 1;
            if !first.contains_key(&(*snd, *q)) {
                lost.push((*snd, *q));
            }
        }
    }
    // Per-sender order: first hand-overs of one sender's messages ascend.
    let mut order_breaks = Vec::new();
    let mut last: HashMap<usize, u64> = HashMap::new();
    for (snd, seq, re) in &s.handed {
        if *re {
            continue;
        }
        if let Some(l) = last.get(snd) {
            if seq < l {
                order_breaks.push((*snd, *l, *seq));
            }
        }
        last.insert(*snd, *seq);
    }
    eprintln!(
        "kill loop: {} kills, {} stalls, {acked} acknowledged, {} handed over, {} distinct, {flagged} flagged duplicates, {} unflagged, {} lost",
        s.kills,
        s.stalls,
        s.handed.len(),
        first.len(),
        unflagged.len(),
        lost.len()
    );
    assert!(acked > 100, "too little traffic to mean anything: {acked}");
    assert!(
        lost.is_empty(),
        "lost {} acknowledged: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    assert!(unflagged.is_empty(), "unflagged duplicates: {unflagged:?}");
    assert!(order_breaks.is_empty(), "order broken: {order_breaks:?}");
}

/// A raw `oxtail mcp` on pipes: write lines, read answers.
struct RawShim {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl RawShim {
    fn start(ox: &Instance) -> RawShim {
        let mut c: Command = ox.command();
        let mut child = c
            .arg("mcp")
            .current_dir(ox.workdir("repo"))
            .env("CLAUDE_CODE_SESSION_ID", "sess-raw")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut s = RawShim { child, out };
        s.send(br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#);
        let init = s.answer();
        assert_eq!(init["id"], 0, "{init}");
        s.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        s
    }

    fn send(&mut self, line: &[u8]) {
        let w = self.child.stdin.as_mut().unwrap();
        w.write_all(line).unwrap();
        w.write_all(b"\n").unwrap();
        w.flush().unwrap();
    }

    /// The next line the shim writes (the test fails if none comes: the
    /// shim ends when its stdin closes, and a watchdog thread kills it).
    fn answer(&mut self) -> Value {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }
}

impl Drop for RawShim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn malformed_input_gets_an_error_and_the_shim_keeps_serving() {
    let ox = Instance::new(BIN);
    let mut s = RawShim::start(&ox);
    let pid = s.child.id();
    // A hang fails the test instead of blocking the suite.
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        if !d2.load(Ordering::SeqCst) {
            kill_pid(pid, libc::SIGKILL);
        }
    });
    let split_emoji: &[u8] = br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"send_message","arguments":{"target":"x","body":"\ud83d"}}}"#;
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let huge = vec![b'x'; (16 << 20) + 10];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("plain text", b"hello there".to_vec()),
        ("lone surrogate", split_emoji.to_vec()),
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\",\"x\":\"\xff\xfe\"}".to_vec(),
        ),
        ("10 000-deep nesting", deep.into_bytes()),
        ("a line over 16 MiB", huge),
        ("truncated JSON", br#"{"jsonrpc":"2.0","id":7,"#.to_vec()),
    ];
    for (i, (what, line)) in cases.iter().enumerate() {
        s.send(line);
        let a = s.answer();
        assert_eq!(a["error"]["code"], -32700, "{what}: {a}");
        assert_eq!(a["id"], Value::Null, "{what}: {a}");
        // And it still serves.
        let id = 100 + i;
        s.send(format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#).as_bytes());
        let a = s.answer();
        assert_eq!(a["id"], id, "{what}: after it, {a}");
        assert!(a["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()));
    }
    done.store(true, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_argument_over_the_frame_limit_is_refused_alone() {
    let ox = Instance::new(BIN);
    let a = Arc::new(agent(&ox, "sess-a", &[]).await);
    let _b = agent(&ox, "sess-b", &[]).await;
    // An ask waits on the same shim while the oversized call is refused.
    let a2 = a.clone();
    let ask = tokio::spawn(async move {
        a2.call(
            "ask_peer",
            json!({"target": "sess-b", "body": "still there?", "timeout_ms": 1500}),
        )
        .await
    });
    let big = "z".repeat(2 << 20);
    let v = a
        .call("send_message", json!({"target": "sess-b", "body": big}))
        .await
        .unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"], "body-too-large", "{v}");
    assert!(v["size_bytes"].as_u64().unwrap() > 2 << 20, "{v}");
    let r = ask.await.unwrap().unwrap();
    assert_eq!(r["ok"], true, "the concurrent ask was disturbed: {r}");
    // The connection is intact: the next call works.
    a.ok("send_message", json!({"target": "sess-b", "body": "small"}))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_over_budget_defers_the_rest_whole_and_in_order() {
    let ox = Instance::with_env(BIN, &[("OXTAIL_READ_MAX_MESSAGES", "2")]);
    let a = agent(&ox, "sess-a", &[]).await;
    let b = agent(&ox, "sess-b", &[]).await;
    for i in 0..5 {
        a.ok(
            "send_message",
            json!({"target": "sess-b", "body": format!("m{i}")}),
        )
        .await
        .unwrap();
    }
    let mut got = Vec::new();
    for (want, deferred) in [(2, Some(3)), (2, Some(1)), (1, None)] {
        let v = b.ok("read_my_messages", json!({})).await.unwrap();
        assert_eq!(v["count"], want, "{v}");
        assert_eq!(v["deferred_count"].as_u64(), deferred, "{v}");
        assert_eq!(
            v["budget_truncated"] == json!(true),
            deferred.is_some(),
            "{v}"
        );
        got.extend(bodies(&v).into_iter().map(|(b, re)| {
            assert!(!re, "nothing was lost, so nothing is flagged");
            b
        }));
    }
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
}
