//! Who is who: every agent has a name people can use, from its first second.
//!
//! Real shims (rmcp client over stdio) against a real auto-spawned daemon in
//! a temp `OXTAIL_HOME`; real tmux on a private server for pane-derived
//! names; a real `oxtail hook session-start` for `/clear`.

use oxtail_tests::e2e::claude_session_start as session_start;
use oxtail_tests::harness::{AgentOpts, Instance};
use oxtail_tests::tui::{tmux_or_skip, SessionSpec, TmuxServer};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// Name by session id, from `list_project_sessions`.
fn names(list: &Value) -> std::collections::BTreeMap<String, Value> {
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["client_session_id"].as_str().unwrap().to_string(),
                r["name"].clone(),
            )
        })
        .collect()
}

fn with_env(mut o: AgentOpts, k: &str, v: &str) -> AgentOpts {
    o.env.push((k.into(), v.into()));
    o
}

/// Time from writing `initialize` to reading its answer, for a fresh
/// `oxtail mcp` on an instance whose daemon is already up.
fn initialize_ms(ox: &Instance, cwd: &std::path::Path, id: &str) -> (f64, std::process::Child) {
    let mut child = ox
        .command()
        .arg("mcp")
        .env("CLAUDE_CODE_SESSION_ID", id)
        .env("CLAUDECODE", "1")
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // Let the process start and connect first: the figure is the
    // initialize round trip alone, not process start-up.
    std::thread::sleep(Duration::from_millis(300));
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "claude-code", "version": "test"}}});
    let t = Instant::now();
    stdin.write_all(format!("{init}\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(line.contains("\"result\""), "{line}");
    // Keep stdin open (the shim lives until it sees EOF): hand both back.
    child.stdin = Some(stdin);
    (ms, child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_is_a_target_in_the_very_next_request_after_initialize() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    // A running daemon, as usual: the shim that has to start one answers
    // initialize before its registration (the 15 ms budget wins).
    ox.ctl(&["ping"]).unwrap();
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    for i in 0..5 {
        let id = format!("sess-new-{i}");
        // `agent` returns once the shim answered initialize; no sleep after.
        let b = ox.agent(AgentOpts::claude(&repo, &id)).await.unwrap();
        let sent = a
            .call("send_message", json!({"target": id, "body": "hello"}))
            .await
            .unwrap();
        assert_eq!(sent["ok"], true, "round {i}: {sent}");
        // Its default name is a target at once too.
        let name = format!("claude-{}", i + 2);
        let sent = a
            .call("send_message", json!({"target": name, "body": "hi"}))
            .await
            .unwrap();
        assert_eq!(sent["ok"], true, "round {i}: {sent}");
        assert_eq!(sent["target_session_id"], id.as_str());
        assert_eq!(
            b.ok("read_my_messages", json!({})).await.unwrap()["count"],
            2
        );
    }
    // initialize stays quick although it now waits for the registration.
    let mut times = Vec::new();
    let mut children = Vec::new();
    for i in 0..5 {
        let (ms, child) = initialize_ms(&ox, &repo, &format!("sess-timed-{i}"));
        times.push(ms);
        children.push(child);
    }
    times.sort_by(|x, y| x.partial_cmp(y).unwrap());
    eprintln!("initialize answer times (ms): {times:?}");
    let list = a.ok("list_project_sessions", json!({})).await.unwrap();
    for i in 0..5 {
        assert!(
            names(&list).contains_key(&format!("sess-timed-{i}")),
            "registered before initialize answered: {list}"
        );
    }
    assert!(
        times[2] < 15.0,
        "median initialize {} ms; the budget is 15 ms",
        times[2]
    );
    for mut c in children {
        drop(c.stdin.take());
        let _ = c.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_names_clashes_restart_and_clear() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    // A running daemon, as usual: the shim that has to start one answers
    // initialize before its registration (the 15 ms budget wins).
    ox.ctl(&["ping"]).unwrap();
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    // Outside tmux: client and number.
    let list = a.ok("list_project_sessions", json!({})).await.unwrap();
    let n = names(&list);
    assert_eq!(n["sess-a"], "claude-1", "{list}");
    assert_eq!(n["sess-b"], "claude-2", "{list}");
    let sent = a
        .ok(
            "send_message",
            json!({"target": "claude-2", "body": "to b"}),
        )
        .await
        .unwrap();
    assert_eq!(sent["target_session_id"], "sess-b");
    // Names given at launch; a clash gets a suffix, never a shared name.
    let c = ox
        .agent(with_env(
            AgentOpts::claude(&repo, "sess-c"),
            "OXTAIL_NAME",
            "lead",
        ))
        .await
        .unwrap();
    let d = ox
        .agent(with_env(
            AgentOpts::claude(&repo, "sess-d"),
            "OXTAIL_NAME",
            "lead",
        ))
        .await
        .unwrap();
    let list = a.ok("list_project_sessions", json!({})).await.unwrap();
    let n = names(&list);
    assert_eq!(n["sess-c"], "lead", "{list}");
    assert_eq!(n["sess-d"], "lead-2", "{list}");
    let sent = a
        .ok("send_message", json!({"target": "lead-2", "body": "to d"}))
        .await
        .unwrap();
    assert_eq!(sent["target_session_id"], "sess-d");
    // Delivered mail names its sender; message_status names the receiver.
    let got = b.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(got["messages"][0]["from_name"], "claude-1", "{got}");
    let st = a
        .ok("message_status", json!({"message_id": sent["message_id"]}))
        .await
        .unwrap();
    assert_eq!(st["to_name"], "lead-2", "{st}");
    // `set_my_state {name}` overrides a default name.
    c.ok("set_my_state", json!({"name": "boss"})).await.unwrap();

    // A daemon restart keeps every name.
    ox.kill_daemon().unwrap();
    let list = a.ok("list_project_sessions", json!({})).await.unwrap();
    let n = names(&list);
    assert_eq!(
        (&n["sess-a"], &n["sess-b"], &n["sess-c"], &n["sess-d"]),
        (
            &json!("claude-1"),
            &json!("claude-2"),
            &json!("boss"),
            &json!("lead-2")
        ),
        "{list}"
    );
    // `/clear` gives the seat a new session id; the name stays with it.
    session_start(&ox, b.pid.unwrap(), "sess-b-cleared", "clear", &repo);
    let list = a.ok("list_project_sessions", json!({})).await.unwrap();
    let n = names(&list);
    assert_eq!(n.get("sess-b-cleared"), Some(&json!("claude-2")), "{list}");
    assert!(!n.contains_key("sess-b"), "{list}");
    let sent = a
        .ok(
            "send_message",
            json!({"target": "claude-2", "body": "after clear"}),
        )
        .await
        .unwrap();
    assert_eq!(sent["target_session_id"], "sess-b-cleared");
    drop((c, d));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_agent_is_named_and_its_mail_is_stranded() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    // A running daemon, as usual: the shim that has to start one answers
    // initialize before its registration (the 15 ms budget wins).
    ox.ctl(&["ping"]).unwrap();
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    let seat = b.pid.unwrap();
    b.close().await;
    oxtail_tests::harness::wait_gone(seat, Duration::from_secs(5)).unwrap();
    // The daemon notices the seat is gone at its next seat check (5 s).
    let end = Instant::now() + Duration::from_secs(15);
    let row = loop {
        let list = a.ok("list_project_sessions", json!({})).await.unwrap();
        let row = list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["client_session_id"] == "sess-b")
            .cloned();
        match row {
            Some(r) if r["liveness"] == "dead" => break r,
            _ if Instant::now() > end => panic!("sess-b never became dead: {list}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert_eq!(
        row["name"], "claude-2",
        "the name outlives the client: {row}"
    );
    let sent = a
        .ok(
            "send_message",
            json!({"target": "claude-2", "body": "later"}),
        )
        .await
        .unwrap();
    assert_eq!(sent["delivery_outlook"], "stranded_until_read", "{sent}");
    assert!(sent["hint"].as_str().unwrap().contains("ended"), "{sent}");
    let off = a
        .ok(
            "send_message",
            json!({"target": "claude-2", "body": "quiet", "wake": "off"}),
        )
        .await
        .unwrap();
    assert!(off.get("delivery_outlook").is_none(), "{off}");
    let inbox = ox.ctl(&["inbox", "sess-b"]).unwrap();
    assert_eq!(
        inbox["queued"].as_array().map(Vec::len),
        Some(2),
        "the mail waits: {inbox}"
    );
}

const FAKE_CLIENT: &str = r#"
import json, subprocess, sys, time
p = subprocess.Popen([sys.argv[1], "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
p.stdin.write((json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "claude-code", "version": "1"}}}) + "\n").encode())
p.stdin.flush()
p.stdout.readline()
print("READY", flush=True)
while True:
    time.sleep(3600)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmux_sessions_windows_and_panes_are_targets() {
    if !tmux_or_skip() {
        return;
    }
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox
        .agent(AgentOpts::claude(&repo, "sess-out"))
        .await
        .unwrap();
    let script = ox.dir.path().join("client.py");
    std::fs::write(&script, FAKE_CLIENT).unwrap();
    let tmux = TmuxServer::new();
    let env = |id: &str| {
        vec![
            ("OXTAIL_HOME".to_string(), ox.home().display().to_string()),
            ("CLAUDE_CODE_SESSION_ID".to_string(), id.to_string()),
            ("CLAUDECODE".to_string(), "1".to_string()),
        ]
    };
    let argv = ["python3", script.to_str().unwrap(), BIN];
    // A fake client process per pane, hosting a real shim: pane → client
    // (the seat) → shim, as with a real Claude Code.
    let api = tmux
        .new_session(&SessionSpec::new("api", &repo, argv).envs(env("sess-api")))
        .unwrap();
    let web = tmux
        .new_session(&SessionSpec::new("web", &repo, argv).envs(env("sess-web")))
        .unwrap();
    tmux.new_session(&SessionSpec::new("duo", &repo, argv).envs(env("sess-duo-0")))
        .unwrap();
    let mut args: Vec<String> = vec!["new-window".into(), "-t".into(), "duo".into()];
    args.extend(["-c".into(), repo.display().to_string()]);
    for (k, v) in env("sess-duo-1") {
        args.extend(["-e".into(), format!("{k}={v}")]);
    }
    args.extend(argv.iter().map(|s| s.to_string()));
    tmux.run(&args).unwrap();
    // Wait for the four registrations (state, not time).
    let end = Instant::now() + Duration::from_secs(20);
    let list = loop {
        let list = a.ok("list_project_sessions", json!({})).await.unwrap();
        let n = names(&list);
        let want = [
            ("sess-api", "api"),
            ("sess-web", "web"),
            ("sess-duo-0", "duo:0"),
            ("sess-duo-1", "duo:1"),
        ];
        if want
            .iter()
            .all(|(id, name)| n.get(*id) == Some(&json!(name)))
        {
            break list;
        }
        assert!(Instant::now() < end, "names never settled: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let row = |id: &str| {
        list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["client_session_id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("sess-duo-1")["tmux_session"], "duo", "{list}");
    assert_eq!(row("sess-api")["tmux_pane"], api.id.as_str(), "{list}");
    // The agents' panes are not listed as panes without an agent.
    let listed_panes: Vec<&str> = list["panes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["pane_id"].as_str())
        .collect();
    assert!(!listed_panes.contains(&api.id.as_str()), "{list}");
    let target_of = |v: &Value| v["target_session_id"].as_str().unwrap().to_string();
    for (target, want) in [
        ("api", "sess-api"),
        ("web", "sess-web"),
        ("duo:1", "sess-duo-1"),
        ("duo:0", "sess-duo-0"),
        (api.id.as_str(), "sess-api"),
        ("sess-duo", "sess-duo-0"), // not unique: checked below
    ] {
        let r = a
            .call("send_message", json!({"target": target, "body": "x"}))
            .await
            .unwrap();
        if target == "sess-duo" {
            assert_eq!(r["error"], "ambiguous-target", "{r}");
            let mut c: Vec<&str> = r["candidates"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            c.sort();
            assert_eq!(c, ["sess-duo-0", "sess-duo-1"], "{r}");
            continue;
        }
        assert_eq!(r["ok"], true, "{target}: {r}");
        assert_eq!(target_of(&r), want, "{target}: {r}");
    }
    // A tmux session hosting two agents is no single target.
    let r = a
        .call("send_message", json!({"target": "duo", "body": "x"}))
        .await
        .unwrap();
    assert_eq!(r["error"], "ambiguous-target", "{r}");
    let details = r["candidate_details"].as_array().unwrap();
    assert!(details.iter().all(|d| d["tmux_session"] == "duo"), "{r}");
    // A fleet names the panes it starts (`@oxtail_agent`); the name follows
    // the pane (picked up at the daemon's next pane refresh, every 5 s).
    tmux.run(&["set-option", "-p", "-t", &web.id, "@oxtail_agent", "rev"])
        .unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let list = a.ok("list_project_sessions", json!({})).await.unwrap();
        if names(&list).get("sess-web") == Some(&json!("rev")) {
            break;
        }
        assert!(Instant::now() < end, "the fleet name never arrived: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = a
        .ok("send_message", json!({"target": "rev", "body": "review"}))
        .await
        .unwrap();
    assert_eq!(target_of(&r), "sess-web", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codex_agent_is_named_in_its_first_answer() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    ox.ctl(&["ping"]).unwrap();
    let codex = ox
        .agent(AgentOpts {
            cwd: repo.clone(),
            env: Vec::new(),
            client_name: "codex-mcp-client".into(),
        })
        .await
        .unwrap();
    // Codex 0.169 names its thread only per call, in `_meta`.
    let me = codex
        .call_with_meta(
            "get_my_session",
            json!({}),
            json!({"threadId": "019a-thread-x"}),
        )
        .await
        .unwrap();
    assert_eq!(me["entry"]["name"], "codex-1", "{me}");
    assert_eq!(me["entry"]["client"]["type"], "codex", "{me}");
    let list = ox.ctl(&["sessions"]).unwrap();
    assert_eq!(list["sessions"][0]["name"], "codex-1", "{list}");
}
