//! End to end with real Codex 0.169.0 TUIs in their default daemon mode
//! (issue 15): the TUIs host their threads in one shared background
//! app-server, and oxtail reaches them through its control socket, with
//! nothing typed into a terminal. Offline: Codex talks to a scripted
//! Responses-API server on 127.0.0.1 (tests/src/fake_openai.rs).
//!
//! * Two TUIs sharing one app-server, beside a real Claude Code TUI: each
//!   is listed (a valid target) with its own pane before its first prompt;
//!   a peer's message to the idle second one starts its turn through
//!   `turn/start` (the model request carries the framed mail; no keys are
//!   sent; neither the first Codex nor Claude Code sees anything); after its TUI closes the agent is ended within 5 s although
//!   the app-server keeps its thread loaded.
//! * Mid-turn: a Codex running a slow shell command gets a peer message,
//!   delivered with `turn/steer` into the same turn's next model request.
//! * A person interrupts a Codex turn (what cockpit `i` sends once
//!   confirmed): the turn ends; nothing else can be interrupted.
//! * With the app-server gone, a wake falls back to keys into the agent's
//!   own pane and says why (`wake_note`). (`daemon_auto_start = false`: the
//!   keys test in tests/e2e_codex.rs.)
//!
//! Each test skips with a message when `codex` (or tmux) is not installed,
//! and fails instead under `OXTAIL_E2E_REQUIRED=1`. The app-server daemon
//! Codex starts outlives its TUIs: [`CodexHome`]'s drop kills it by the
//! pids Codex recorded.

use std::path::Path;
use std::time::{Duration, Instant};

use oxtail_tests::claude::{claude_env, claude_or_skip, write_mcp_json, ClaudeHome, McpServer};
use oxtail_tests::codex::{codex_or_skip, CodexHome, CodexTui};
use oxtail_tests::e2e::{install_hooks, instance_with_peer, nonce, trace_events, Gate};
use oxtail_tests::fake_anthropic::{FakeAnthropic, ScriptedTurn};
use oxtail_tests::fake_openai::{
    item_text, items_after_last_call, response_index, thread_id, user_texts, value_contains,
    FakeOpenAi, ScriptedResponse,
};
use oxtail_tests::harness::{Agent, Instance};
use oxtail_tests::tui::{start_claude_tui, tmux_or_skip, trim_screen, Pane, TmuxServer};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// Generous bound for anything a Codex process does.
const DEADLINE: Duration = Duration::from_secs(90);

/// A Codex home in daemon mode whose model is `server`.
fn daemon_home(server: &FakeOpenAi) -> CodexHome {
    let home = CodexHome::new(&server.base_url()).unwrap();
    home.use_app_server_daemon().unwrap();
    home
}

/// Registers `ox`'s oxtail as an MCP server of `home`, trusting `repo`.
fn add_oxtail(home: &CodexHome, ox: &Instance, repo: &Path) {
    home.add_mcp_server(
        &McpServer::new("oxtail", BIN)
            .arg("mcp")
            .env("OXTAIL_HOME", ox.home()),
    )
    .unwrap();
    home.trust_project(repo).unwrap();
}

/// An oxtail instance whose daemon (started here, with this environment)
/// watches `codex_home`'s app-server, with a git project and a peer agent
/// named `peer` in it.
async fn setup(codex_home: &Path, trace: &Path) -> (Instance, std::path::PathBuf, Agent) {
    let env = [
        ("CODEX_HOME", codex_home.to_str().unwrap()),
        ("MCP_TRACE_FILE", trace.to_str().unwrap()),
        ("OXTAIL_LOG", "info,oxtail_daemon::codex_app=debug"),
    ];
    instance_with_peer(BIN, &env, "peer of codex").await
}

/// Polls the peer's `list_project_sessions` until a row satisfies `pred`.
async fn wait_row(ox: &Instance, peer: &Agent, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    oxtail_tests::e2e::wait_row(ox, peer, what, DEADLINE, pred).await
}

/// Submits `prompt` in the Codex TUI in `pane` and waits until its turn's
/// first model request reached `server` (the script opens `started` then).
async fn start_turn(
    tmux: &TmuxServer,
    pane: &Pane,
    prompt: &str,
    started: &Gate,
    server: &FakeOpenAi,
) {
    tokio::task::block_in_place(|| {
        tmux.submit_verified(
            pane,
            prompt,
            Duration::from_millis(600),
            |s| oxtail_tests::tui::composer_line(s, '›').is_some_and(|l| l.contains(prompt)),
            DEADLINE,
        )
    })
    .unwrap();
    let started = started.clone();
    let ok = tokio::task::spawn_blocking(move || started.wait(DEADLINE))
        .await
        .unwrap();
    assert!(ok, "no first model request:\n{}", server.transcript());
}

fn start_tui(tmux: &TmuxServer, tui: &CodexTui, session: &str) -> Pane {
    tokio::task::block_in_place(|| tui.start(tmux, session, DEADLINE)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_second_codex_is_woken_by_turn_start_with_nothing_typed() {
    let Some(codex) = codex_or_skip() else {
        return;
    };
    let Some(claude) = claude_or_skip() else {
        return;
    };
    if !tmux_or_skip() {
        return;
    }
    let answer = nonce("codex-b-answered");
    let server = {
        let answer = answer.clone();
        FakeOpenAi::start_with(move |_| ScriptedResponse::text(answer.clone()))
    };
    let trace_dir = tempfile::tempdir().unwrap();
    let trace = trace_dir.path().join("trace.ndjson");
    // The Codex home first (oxtail's daemon watches it), then oxtail.
    let home = daemon_home(&server);
    let (ox, repo, peer) = setup(&home.codex_home(), &trace).await;
    add_oxtail(&home, &ox, &repo);
    // oxtail's hooks too: in daemon mode they run inside the app-server,
    // with the environment (TMUX_PANE) of the TUI that started it.
    install_hooks(
        Path::new(BIN),
        "codex",
        home.path(),
        Some(&home.codex_home()),
    )
    .unwrap();
    // Trusted as a person would (a TUI given --dangerously-bypass-hook-trust
    // does not use the shared app-server).
    let trusted = home.trust_hooks(&codex, &repo).unwrap();
    assert!(trusted >= 3, "trusted {trusted} hooks");

    let tmux = TmuxServer::new();
    let tui = CodexTui::new(&codex, &home, &repo).env("OXTAIL_HOME", ox.home().to_string_lossy());
    let pane_a = start_tui(&tmux, &tui, "cdx-a");
    // Presence before the first prompt, seated in its own pane.
    let row_a = wait_row(&ox, &peer, "the first Codex listed with its pane", |r| {
        r["client_type"] == "codex" && r["tmux_pane"] == json!(pane_a.id)
    })
    .await;
    let pane_b = start_tui(&tmux, &tui, "cdx-b");
    let row_b = wait_row(
        &ox,
        &peer,
        "the second Codex listed with its own pane",
        |r| r["client_type"] == "codex" && r["tmux_pane"] == json!(pane_b.id),
    )
    .await;
    let (a_id, b_id) = (
        row_a["client_session_id"].as_str().unwrap().to_string(),
        row_b["client_session_id"].as_str().unwrap().to_string(),
    );
    assert_ne!(a_id, b_id, "{row_a}\n{row_b}");
    assert_eq!(row_b["liveness"], "live", "{row_b}");
    let row_a_now = wait_row(&ox, &peer, "the first Codex row", |r| {
        r["client_session_id"] == json!(a_id)
    })
    .await;
    assert_eq!(
        row_a_now["tmux_pane"],
        json!(pane_a.id),
        "the first Codex lost its pane: {row_a_now}"
    );

    // A real Claude Code TUI in the same project and tmux server, with
    // oxtail as its MCP server: seated in its own pane, never confused with
    // the Codex panes, and untouched by the Codex wake.
    let anthropic = FakeAnthropic::start(vec![ScriptedTurn::text("claude-idle")]);
    let claude_home = ClaudeHome::new().unwrap();
    claude_home.trust_project(&repo).unwrap();
    write_mcp_json(
        &repo,
        &[McpServer::new("oxtail", BIN)
            .arg("mcp")
            .env("OXTAIL_HOME", ox.home())],
    )
    .unwrap();
    let mut claude_env = claude_env(claude_home.path(), &anthropic.base_url());
    claude_env.push((
        "OXTAIL_HOME".into(),
        ox.home().to_string_lossy().into_owned(),
    ));
    let pane_c = tokio::task::block_in_place(|| {
        start_claude_tui(&tmux, "cc", &claude, &repo, &claude_env, &[], DEADLINE)
    })
    .unwrap();
    let row_c = wait_row(&ox, &peer, "Claude Code listed with its own pane", |r| {
        r["client_type"] == "claude-code" && r["tmux_pane"] == json!(pane_c.id)
    })
    .await;
    assert_ne!(pane_c.id, pane_a.id);
    assert_ne!(pane_c.id, pane_b.id);
    assert_ne!(row_c["client_session_id"], json!(b_id), "{row_c}");
    let watch_c = tmux.watch(&pane_c, Duration::from_millis(100));
    let watch_a = tmux.watch(&pane_a, Duration::from_millis(100));
    let watch_b = tmux.watch(&pane_b, Duration::from_millis(100));
    let body = nonce("hello-codex-b");
    let sent_ms = now_ms();
    let sent_at = Instant::now();
    let sent = peer
        .ok(
            "send_message",
            json!({"target": b_id, "body": body, "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(sent["wake_status"], "fired", "{sent}");
    assert_eq!(sent["wake_route"], "app_server_turn_start", "{sent}");

    // The model request of B's new turn carries the mail, framed.
    let req = server
        .wait_for_request_async(DEADLINE, |r| value_contains(r, &body))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no model request with the mail:\n{}\n{}",
                server.transcript(),
                trim_screen(&tmux.capture(&pane_b).unwrap())
            )
        });
    let elapsed = sent_at.elapsed();
    assert_eq!(thread_id(&req).as_deref(), Some(b_id.as_str()), "{req}");
    let text = user_texts(&req).last().cloned().unwrap_or_default();
    assert!(text.contains(&body), "{text}");
    assert!(
        text.starts_with("[oxtail] Messages from peer agents"),
        "{text}"
    );
    assert!(
        text.contains(sent["message_id"].as_str().unwrap()),
        "{text}"
    );
    // B's TUI shows the turn and its answer.
    tokio::task::block_in_place(|| {
        tmux.wait_for(&pane_b, DEADLINE, "B's answer", |s| s.contains(&answer))
    })
    .unwrap();
    eprintln!("peer send -> model request with the mail (idle, turn/start): {elapsed:.2?}");
    eprintln!(
        "peer send -> app-server accepted turn/start: {} ms",
        accepted_ms(&trace).saturating_sub(sent_ms)
    );

    // Handed over on the app-server's acceptance.
    let st = peer
        .ok("message_status", json!({"message_id": sent["message_id"]}))
        .await
        .unwrap();
    assert_eq!(st["status"], "delivered", "{st}");
    assert_eq!(st["via_detail"], "app_server_turn_start", "{st}");
    let inbox = ox.ctl(&["inbox", &b_id]).unwrap();
    assert_eq!(inbox["queued"], json!([]), "{inbox}");
    // B's hooks ran inside the app-server (started from A's pane): B keeps
    // its own pane.
    let row_b_after = wait_row(&ox, &peer, "B after its turn, idle", |r| {
        r["client_session_id"] == json!(b_id) && r["activity"]["state"] == "idle"
    })
    .await;
    assert_eq!(row_b_after["tmux_pane"], json!(pane_b.id), "{row_b_after}");
    let hooks: Vec<Value> = events_of(&trace, "hook")
        .into_iter()
        .filter(|e| e["session"] == json!(b_id))
        .collect();
    assert!(
        hooks.iter().any(|e| e["hook_event"] == "Stop"),
        "B's Stop hook never reached oxtail: {hooks:?}"
    );
    // They ran inside the shared app-server, which is nobody's seat.
    assert!(hooks.iter().all(|e| e["seat"].is_null()), "{hooks:?}");

    // Nothing was typed anywhere: no keys route, and A never saw it.
    let events = trace_events(&trace);
    let keys: Vec<&Value> = events.iter().filter(|e| e["event"] == "keys").collect();
    assert!(keys.is_empty(), "keys were sent: {keys:?}");
    let a_screens = watch_a.stop();
    assert!(
        !a_screens
            .iter()
            .any(|s| s.contains(&body) || s.contains("[oxtail]")),
        "the first TUI's pane showed oxtail text"
    );
    let c_screens = watch_c.stop();
    assert!(
        !c_screens
            .iter()
            .any(|s| s.contains(&body) || s.contains("[oxtail]")),
        "the Claude Code pane showed oxtail text"
    );
    let b_screens = watch_b.stop();
    assert!(
        !b_screens.iter().any(|s| s.contains("new message")),
        "a keys wake text appeared in B's pane"
    );

    // Liveness: B's TUI closes; its agent is ended within 5 s, although
    // the app-server still has the thread loaded.
    tmux.run(&["kill-session", "-t", "cdx-b"]).unwrap();
    let closed = Instant::now();
    let deadline = closed + Duration::from_secs(5);
    loop {
        let list = peer.ok("list_project_sessions", json!({})).await.unwrap();
        let row = list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["client_session_id"] == json!(b_id))
            .cloned();
        match row {
            None => break,
            Some(r) if r["liveness"] == "ended" => break,
            Some(r) => assert!(
                Instant::now() < deadline,
                "B still shows {} 5 s after its TUI closed: {r}",
                r["liveness"]
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("TUI closed -> agent ended: {:.2?}", closed.elapsed());
    // A is untouched and still live.
    let row_a_end = wait_row(&ox, &peer, "A still listed", |r| {
        r["client_session_id"] == json!(a_id)
    })
    .await;
    assert_eq!(row_a_end["liveness"], "live", "{row_a_end}");
    assert_eq!(row_a_end["wake_route"], "app_server", "{row_a_end}");
    let loaded = events_of(&trace, "codex_app_deliver");
    assert_eq!(loaded.len(), 1, "{loaded:?}");

    // Fallback: the app-server goes away; a wake for A says so and falls
    // back to keys into A's own pane (or says why it cannot).
    home.kill_app_server();
    let row = wait_row(&ox, &peer, "A's route no longer the app-server", |r| {
        r["client_session_id"] == json!(a_id) && r["wake_route"] != "app_server"
    })
    .await;
    eprintln!("after the app-server died, A: {row}");
    let sent = peer
        .ok(
            "send_message",
            json!({"target": a_id, "body": nonce("to-a"), "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_ne!(sent["wake_route"], "app_server_turn_start", "{sent}");
    let note = sent["wake_note"].as_str().unwrap_or_default();
    assert!(
        note.contains("app-server is unreachable") && note.contains("fell back to keys"),
        "{sent}"
    );
    for k in events_of(&trace, "keys") {
        assert_eq!(k["pane"], json!(pane_a.id), "keys went elsewhere: {k}");
    }
    drop(tmux);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// When the daemon saw the app-server accept the (one) delivery, ms since
/// the epoch (its `codex_app_accepted` trace event).
fn accepted_ms(trace: &Path) -> u64 {
    let ev = events_of(trace, "codex_app_accepted");
    assert_eq!(ev.len(), 1, "{ev:?}");
    ev[0]["at_ms"].as_u64().unwrap()
}

fn events_of(trace: &Path, event: &str) -> Vec<Value> {
    trace_events(trace)
        .into_iter()
        .filter(|e| e["event"] == event)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_turn_codex_gets_mail_by_turn_steer_in_the_same_turn() {
    let Some(codex) = codex_or_skip() else {
        return;
    };
    if !tmux_or_skip() {
        return;
    }
    let started = Gate::new();
    let server = {
        let started = started.clone();
        FakeOpenAi::start_with(move |req| match response_index(req) {
            0 => {
                started.open();
                ScriptedResponse::shell("sleep 6")
            }
            1 => ScriptedResponse::text("done"),
            _ => ScriptedResponse::text("(unexpected extra turn)"),
        })
    };
    let trace_dir = tempfile::tempdir().unwrap();
    let trace = trace_dir.path().join("trace.ndjson");
    let home = daemon_home(&server);
    let (ox, repo, peer) = setup(&home.codex_home(), &trace).await;
    add_oxtail(&home, &ox, &repo);

    let tmux = TmuxServer::new();
    let tui = CodexTui::new(&codex, &home, &repo).env("OXTAIL_HOME", ox.home().to_string_lossy());
    let pane = start_tui(&tmux, &tui, "cdx");
    let row = wait_row(&ox, &peer, "the Codex listed", |r| {
        r["client_type"] == "codex" && r["tmux_pane"] == json!(pane.id)
    })
    .await;
    let id = row["client_session_id"].as_str().unwrap().to_string();
    // The shell command runs now (6 s). Let the app-server's turn/started
    // reach oxtail (the row shows it busy), then send.
    start_turn(
        &tmux,
        &pane,
        "agent-X: run the slow check",
        &started,
        &server,
    )
    .await;
    wait_row(&ox, &peer, "the Codex busy", |r| {
        r["client_session_id"] == json!(id) && r["activity"]["state"] == "busy"
    })
    .await;
    let body = nonce("steer-note");
    let sent_ms = now_ms();
    let sent_at = Instant::now();
    // A plain send, no wake asked for: mail for a Codex that is mid-turn
    // is delivered into the turn all the same, as Claude Code's PreToolUse
    // hook hands mail over mid-turn.
    let sent = peer
        .ok("send_message", json!({"target": id, "body": body}))
        .await
        .unwrap();
    assert_ne!(
        sent["wake_status"], "fired",
        "no wake was asked for: {sent}"
    );
    let after = server
        .wait_for_request_async(DEADLINE, |r| response_index(r) == 1)
        .await
        .unwrap_or_else(|| panic!("no request after the tool call:\n{}", server.transcript()));
    eprintln!(
        "peer send -> model request with the mail (mid-turn, turn/steer, during a 6 s tool call): {:.2?}",
        sent_at.elapsed()
    );
    eprintln!(
        "peer send -> app-server accepted turn/steer: {} ms",
        accepted_ms(&trace).saturating_sub(sent_ms)
    );
    // Same turn: the request after the tool output, with the mail after it.
    let delivered: Vec<String> = items_after_last_call(&after)
        .iter()
        .filter(|i| i["type"] == "message")
        .map(item_text)
        .filter(|t| t.contains(&body))
        .collect();
    assert_eq!(
        delivered.len(),
        1,
        "mail not after the tool output:\n{}",
        server.transcript()
    );
    assert!(
        delivered[0].contains(sent["message_id"].as_str().unwrap()),
        "{}",
        delivered[0]
    );
    let first = server
        .agent_requests()
        .into_iter()
        .find(|r| response_index(r) == 0)
        .unwrap();
    assert_eq!(
        oxtail_tests::fake_openai::turn_metadata(&first)["turn_id"],
        oxtail_tests::fake_openai::turn_metadata(&after)["turn_id"],
        "the mail started another turn"
    );
    let st = peer
        .ok("message_status", json!({"message_id": sent["message_id"]}))
        .await
        .unwrap();
    assert_eq!(st["status"], "delivered", "{st}");
    assert_eq!(st["via_detail"], "app_server_turn_steer", "{st}");
    assert!(events_of(&trace, "keys").is_empty());
    drop(tmux);
}

/// `Ctl::Interrupt` (what cockpit `i` sends after the person confirms)
/// through the daemon's socket.
fn interrupt(ox: &Instance, target: &str) -> Value {
    use oxtail_proto::client::connect_at;
    use oxtail_proto::{Ctl, Reply, Request, Role};
    let sock = ox.home().join("run").join("daemon.sock");
    let mut c = connect_at(&sock, Role::Ctl, Duration::from_secs(5)).unwrap();
    match c
        .call(Request::Ctl(Ctl::Interrupt {
            target: target.to_string(),
            project_root: None,
        }))
        .unwrap()
    {
        Reply::Ok { value } => value,
        other => panic!("interrupt refused: {other:?}"),
    }
}

/// A person interrupts a Codex turn (a 30 s shell call) through the
/// app-server: the turn ends and the model is not asked again; a turn is
/// never interrupted otherwise, and only Codex agents on the app-server
/// can be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_interrupts_a_codex_turn_through_the_app_server() {
    let Some(codex) = codex_or_skip() else {
        return;
    };
    if !tmux_or_skip() {
        return;
    }
    let started = Gate::new();
    let server = {
        let started = started.clone();
        FakeOpenAi::start_with(move |req| match response_index(req) {
            0 => {
                started.open();
                ScriptedResponse::shell("sleep 30")
            }
            _ => ScriptedResponse::text("(not interrupted)"),
        })
    };
    let trace_dir = tempfile::tempdir().unwrap();
    let trace = trace_dir.path().join("trace.ndjson");
    let home = daemon_home(&server);
    let (ox, repo, peer) = setup(&home.codex_home(), &trace).await;
    add_oxtail(&home, &ox, &repo);
    let tmux = TmuxServer::new();
    let tui = CodexTui::new(&codex, &home, &repo).env("OXTAIL_HOME", ox.home().to_string_lossy());
    let pane = start_tui(&tmux, &tui, "cdx");
    let row = wait_row(&ox, &peer, "the Codex listed", |r| {
        r["client_type"] == "codex" && r["tmux_pane"] == json!(pane.id)
    })
    .await;
    let id = row["client_session_id"].as_str().unwrap().to_string();
    // Not a Codex on the app-server: refused.
    let refused = tokio::task::block_in_place(|| interrupt(&ox, "peer-session"));
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["error"], "not-interruptible", "{refused}");
    // Idle: nothing to interrupt.
    let idle = tokio::task::block_in_place(|| interrupt(&ox, &id));
    assert_eq!(idle["error"], "not-in-a-turn", "{idle}");

    start_turn(
        &tmux,
        &pane,
        "agent-X: run the long check",
        &started,
        &server,
    )
    .await;
    wait_row(&ox, &peer, "the Codex busy", |r| {
        r["client_session_id"] == json!(id) && r["activity"]["state"] == "busy"
    })
    .await;
    // The turn id may take a tick to be known (the thread subscribes once
    // its first turn wrote its rollout).
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let a = tokio::task::block_in_place(|| interrupt(&ox, &id));
        if a["ok"] == true || Instant::now() >= deadline {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(answer["ok"], true, "{answer}");
    let asked = Instant::now();
    wait_row(&ox, &peer, "the Codex idle after the interrupt", |r| {
        r["client_session_id"] == json!(id) && r["activity"]["state"] == "idle"
    })
    .await;
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "the turn ran on for {took:?}: not interrupted"
    );
    eprintln!("interrupt -> idle: {took:.2?}");
    assert!(
        !server.saw("(not interrupted)")
            && server
                .agent_requests()
                .iter()
                .all(|r| response_index(r) == 0),
        "the model was asked again:\n{}",
        server.transcript()
    );
    assert_eq!(events_of(&trace, "codex_app_interrupt").len(), 1);
    drop(tmux);
}
