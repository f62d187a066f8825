//! End to end with the real Codex CLI (0.169.0), offline: Codex talks to a
//! scripted Responses-API server on 127.0.0.1 (tests/src/fake_openai.rs) and
//! loads oxtail as `[mcp_servers.oxtail]` from a throwaway `CODEX_HOME`
//! (plugins, remote plugins and apps off, so nothing leaves loopback; SPEC
//! §10). Hooks are installed with the real `oxtail install-hook --client
//! codex` and run with `--dangerously-bypass-hook-trust`.
//!
//! * `codex exec` calls `send_message`; a peer (a real shim driven by rmcp)
//!   reads it, and the sender is Codex's thread id, which Codex gives its MCP
//!   servers only in each call's `_meta` (no hooks installed here, so nothing
//!   else can have told oxtail).
//! * A peer's message sent while `codex exec` is mid-turn reaches the model
//!   through the PreToolUse hook: the request after the next tool call
//!   carries it.
//! * An idle Codex TUI in a private tmux server is woken by keys typed into
//!   its own pane (text, pause, Enter: the turn starts, so the Enter was not
//!   swallowed as a newline), and its Stop hook hands the mail over at the end
//!   of that turn; a decoy pane on the same server stays clean.
//!
//! Each test skips with a message when `codex` (or tmux) is not installed.

use std::path::Path;
use std::time::{Duration, Instant};

use oxtail_tests::claude::McpServer;
use oxtail_tests::codex::{codex_or_skip, CodexExec, CodexHome, CodexTui};
use oxtail_tests::e2e::{install_hooks, instance_with_peer, nonce, trace_events, wait_row, Gate};
use oxtail_tests::fake_openai::{
    item_text, items_after_last_call, response_index, user_texts, FakeOpenAi, ScriptedResponse,
};
use oxtail_tests::harness::{Agent, Instance};
use oxtail_tests::tui::{composer_line, tmux_or_skip, trim_screen, SessionSpec, TmuxServer};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// Generous bound for anything a Codex process does.
const DEADLINE: Duration = Duration::from_secs(90);

/// The oxtail shim entry for `ox`: Codex passes its MCP servers only a few
/// variables, so `OXTAIL_HOME` goes in the server's own `env` table.
fn oxtail_server(ox: &Instance) -> McpServer {
    McpServer::new("oxtail", BIN)
        .arg("mcp")
        .env("OXTAIL_HOME", ox.home())
}

/// A started instance with a git project and a peer agent named `peer`.
async fn setup(env: &[(&str, &str)]) -> (Instance, std::path::PathBuf, Agent) {
    instance_with_peer(BIN, env, "peer of codex").await
}

fn codex_home(server: &FakeOpenAi, ox: &Instance, repo: &Path) -> CodexHome {
    let home = CodexHome::new(&server.base_url()).unwrap();
    home.add_mcp_server(&oxtail_server(ox)).unwrap();
    home.trust_project(repo).unwrap();
    home
}

fn install_codex_hooks(home: &CodexHome) {
    let report = install_hooks(
        Path::new(BIN),
        "codex",
        home.path(),
        Some(&home.codex_home()),
    )
    .unwrap();
    let hooks = std::fs::read_to_string(home.hooks_path()).unwrap();
    for event in ["session-start", "pre-tool-use", "stop"] {
        assert!(
            hooks.contains(&format!("hook {event}")),
            "install-hook did not install {event}: {report}\n{hooks}"
        );
    }
}

/// The structured result of the completed `oxtail` MCP call `tool` in
/// Codex's `--json` events.
fn mcp_result(out: &oxtail_tests::codex::CodexOutput, tool: &str) -> Value {
    let calls = out.mcp_calls("oxtail", tool);
    let call = calls
        .first()
        .unwrap_or_else(|| panic!("no completed oxtail.{tool} call:\n{}", out.describe()));
    assert_eq!(call["status"], "completed", "{call}");
    call["result"]["structured_content"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_exec_sends_as_its_thread_from_call_meta() {
    let Some(codex) = codex_or_skip() else {
        return;
    };
    let (ox, repo, peer) = setup(&[]).await;
    let body = nonce("hello-from-codex");
    let server = FakeOpenAi::start(vec![
        ScriptedResponse::mcp("oxtail", "get_my_session", json!({})),
        ScriptedResponse::mcp(
            "oxtail",
            "send_message",
            json!({"target": "peer", "body": body}),
        ),
        ScriptedResponse::text("done"),
    ]);
    let home = codex_home(&server, &ox, &repo);
    let out = CodexExec::new(&codex, &home, &repo, "agent-C: say hello to your peer")
        .env("OXTAIL_HOME", ox.home().to_string_lossy())
        .timeout(DEADLINE)
        .run_async()
        .await
        .unwrap();
    assert!(out.success(), "{}\n{}", out.describe(), server.transcript());
    let thread = out
        .thread_id()
        .unwrap_or_else(|| panic!("no thread.started event:\n{}", out.describe()));

    // Codex's own view of its identity: resolved from the call's _meta.
    let me = mcp_result(&out, "get_my_session");
    assert_eq!(
        me["detect_diagnosis"]["winning"]["session_id"],
        json!(thread),
        "{me}"
    );
    assert_eq!(me["entry"]["client"]["session_id"], json!(thread), "{me}");
    assert_eq!(
        me["detect_diagnosis"]["winning"]["detail"], "codex_meta",
        "{me}"
    );
    assert_eq!(me["entry"]["client"]["type"], "codex", "{me}");
    let sent = mcp_result(&out, "send_message");
    assert_eq!(sent["ok"], true, "{sent}");
    // The model saw the tool results (namespaced MCP calls went through).
    let outputs = server.function_outputs_for("send_message");
    assert_eq!(outputs.len(), 1, "{}", server.transcript());
    assert_eq!(outputs[0].namespace.as_deref(), Some("mcp__oxtail"));
    assert!(outputs[0]
        .text
        .contains(sent["message_id"].as_str().unwrap()));

    // The peer reads it, from the Codex thread.
    let inbox = peer.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(inbox["count"], 1, "{inbox}");
    assert_eq!(inbox["messages"][0]["body"], json!(body));
    assert_eq!(
        inbox["messages"][0]["from_session_id"],
        json!(thread),
        "{inbox}"
    );
    let list = peer.ok("list_project_sessions", json!({})).await.unwrap();
    let row = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["client_session_id"] == json!(thread))
        .unwrap_or_else(|| panic!("no row for the Codex thread: {list}"))
        .clone();
    assert_eq!(row["client_type"], "codex", "{row}");
    // It is the same id Codex named its rollout after.
    assert!(
        home.rollouts()
            .iter()
            .any(|p| p.to_string_lossy().contains(&thread)),
        "rollouts {:?} do not include {thread}",
        home.rollouts()
    );
    eprintln!("codex exec took {:.2?}", out.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_pre_tool_use_hook_hands_peer_mail_over_mid_turn() {
    let Some(codex) = codex_or_skip() else {
        return;
    };
    let (ox, repo, peer) = setup(&[]).await;
    let body = nonce("mid-turn-note");
    let named = Gate::new();
    let peer_sent = Gate::new();
    let server = {
        let (named, peer_sent) = (named.clone(), peer_sent.clone());
        FakeOpenAi::start_with(move |req| match response_index(req) {
            0 => ScriptedResponse::mcp(
                "oxtail",
                "set_my_state",
                json!({"purpose": "working", "name": "cdx"}),
            ),
            1 => {
                // Codex is mid-turn: let the peer send now, then call a tool.
                named.open();
                peer_sent.wait(DEADLINE);
                ScriptedResponse::shell("true")
            }
            2 => ScriptedResponse::text("done"),
            _ => ScriptedResponse::text("(unexpected extra turn)"),
        })
    };
    let home = codex_home(&server, &ox, &repo);
    install_codex_hooks(&home);
    let run = CodexExec::new(&codex, &home, &repo, "agent-C: do some work")
        .arg("--dangerously-bypass-hook-trust")
        .env("OXTAIL_HOME", ox.home().to_string_lossy())
        .timeout(DEADLINE);
    let codex_run = tokio::spawn(async move { run.run_async().await });

    let named_ok = {
        let named = named.clone();
        tokio::task::spawn_blocking(move || named.wait(DEADLINE))
            .await
            .unwrap()
    };
    assert!(
        named_ok,
        "Codex never named itself:\n{}",
        server.transcript()
    );
    let sent = peer
        .ok("send_message", json!({"target": "cdx", "body": body}))
        .await;
    peer_sent.open();
    let sent = sent.unwrap();
    // Mid-turn (fresh busy mark): no wake, and no outlook (CONTRACT §8 (4)).
    assert!(sent.get("delivery_outlook").is_none(), "{sent}");
    assert!(sent.get("wake_status").is_none(), "{sent}");
    let out = codex_run.await.unwrap().unwrap();
    assert!(out.success(), "{}\n{}", out.describe(), server.transcript());

    // The request after the shell call carries the mail, after the call
    // (hook context), framed as peer mail led by its message_id.
    let after = server
        .agent_requests()
        .into_iter()
        .find(|r| response_index(r) == 2)
        .unwrap_or_else(|| panic!("no request after the tool call:\n{}", server.transcript()));
    let delivered: Vec<String> = items_after_last_call(&after)
        .iter()
        .filter(|i| i["type"] == "message")
        .map(item_text)
        .filter(|t| t.contains(&body))
        .collect();
    assert_eq!(
        delivered.len(),
        1,
        "mail not in the context after the tool call:\n{}",
        server.transcript()
    );
    let text = &delivered[0];
    assert!(
        text.contains(sent["message_id"].as_str().unwrap()),
        "{text}"
    );
    assert!(text.contains("peer-session"), "{text}");
    assert!(text.to_lowercase().contains("peer agents"), "{text}");
    // Not before: the request that preceded the call did not have it.
    let before = server
        .agent_requests()
        .into_iter()
        .find(|r| response_index(r) == 1)
        .unwrap();
    assert!(!oxtail_tests::fake_openai::value_contains(&before, &body));
    // Handed over exactly once: nothing left queued for Codex.
    let thread = out.thread_id().unwrap();
    let inbox = ox.ctl(&["inbox", &thread]).unwrap();
    assert_eq!(inbox["queued"], json!([]), "{inbox}");
    let st = peer
        .ok("message_status", json!({"message_id": sent["message_id"]}))
        .await
        .unwrap();
    assert_eq!(st["status"], "delivered", "{st}");
    eprintln!("codex exec took {:.2?}", out.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_codex_tui_is_woken_by_keys_and_its_stop_hook_delivers() {
    let Some(codex) = codex_or_skip() else {
        return;
    };
    if !tmux_or_skip() {
        return;
    }
    let trace_dir = tempfile::tempdir().unwrap();
    let trace = trace_dir.path().join("trace.ndjson");
    let (ox, repo, peer) = setup(&[("MCP_TRACE_FILE", trace.to_str().unwrap())]).await;
    let body = nonce("wake-up-codex");
    let server = FakeOpenAi::start(vec![
        ScriptedResponse::text("ready"),
        ScriptedResponse::text("woken"),
        ScriptedResponse::text("read the mail"),
    ]);
    let home = codex_home(&server, &ox, &repo);
    install_codex_hooks(&home);

    let tmux = TmuxServer::new();
    let decoy = tmux
        .new_session(&SessionSpec::new("decoy", &repo, ["cat"]).window("codex"))
        .unwrap();
    let tui = CodexTui::new(&codex, &home, &repo)
        .arg("--dangerously-bypass-hook-trust")
        .env("OXTAIL_HOME", ox.home().to_string_lossy());
    let pane = {
        let tmux = &tmux;
        tokio::task::block_in_place(|| tui.start(tmux, "agent", DEADLINE)).unwrap()
    };
    // First prompt: SessionStart (Codex runs it at the first prompt) binds
    // the thread to its seat; the turn ends idle.
    tokio::task::block_in_place(|| {
        tmux.submit_verified(
            &pane,
            "agent-X: hello",
            Duration::from_millis(600),
            |s| composer_line(s, '›').is_some_and(|l| l.contains("agent-X: hello")),
            DEADLINE,
        )
    })
    .unwrap();
    let first = server
        .wait_for_request_async(DEADLINE, |r| response_index(r) == 0)
        .await
        .unwrap_or_else(|| {
            panic!(
                "no first turn:\n{}",
                trim_screen(&tmux.capture(&pane).unwrap())
            )
        });
    let thread =
        oxtail_tests::fake_openai::thread_id(&first).expect("turn metadata has the thread id");
    let ready = {
        let (tmux, pane) = (&tmux, &pane);
        tokio::task::block_in_place(|| {
            tmux.wait_for(
                pane,
                DEADLINE,
                "the first answer and an idle composer",
                |s| s.contains("ready") && s.contains("Ask Codex to do anything"),
            )
        })
    };
    ready.unwrap();
    // Wait until the Stop hook marked it idle.
    let row = wait_row(&ox, &peer, "the Codex row", DEADLINE, |r| {
        r["client_session_id"] == json!(thread) && r["activity"]["state"] == "idle"
    })
    .await;
    assert_eq!(row["client_type"], "codex", "{row}");

    let sent_at = Instant::now();
    let sent = peer
        .ok(
            "send_message",
            json!({"target": thread, "body": body, "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(sent["wake_status"], "fired_unconfirmed", "{sent}");

    // The typed line starts a turn: the keys reached the composer and the
    // Enter submitted it.
    let woken = server
        .wait_for_request_async(DEADLINE, |r| response_index(r) == 1)
        .await
        .unwrap_or_else(|| {
            panic!(
                "the idle TUI never started a turn:\n{}\n{}",
                trim_screen(&tmux.capture(&pane).unwrap()),
                server.transcript()
            )
        });
    eprintln!(
        "peer send -> model request with the typed wake line (keys): {:.2?}",
        sent_at.elapsed()
    );
    let typed = user_texts(&woken).last().cloned().unwrap_or_default();
    assert!(typed.starts_with("[oxtail]"), "woken by {typed:?}");
    assert!(typed.contains("read_my_messages"), "woken by {typed:?}");
    assert!(
        !typed.contains('\n'),
        "the Enter became a newline: {typed:?}"
    );
    // At the end of that turn the Stop hook hands the mail over: Codex
    // continues with it as the next prompt.
    let cont = server
        .wait_for_request_async(DEADLINE, |r| response_index(r) == 2)
        .await
        .unwrap_or_else(|| panic!("no Stop-hook continuation:\n{}", server.transcript()));
    let last = user_texts(&cont).last().cloned().unwrap_or_default();
    assert!(
        last.contains(&body),
        "continuation without the mail: {last:?}"
    );
    assert!(
        last.contains(sent["message_id"].as_str().unwrap()),
        "{last}"
    );
    eprintln!("wake to delivered mail: {:.2?}", sent_at.elapsed());

    // Keys went to this pane only.
    let keys: Vec<Value> = trace_events(&trace)
        .into_iter()
        .filter(|e| e["event"] == "keys")
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["pane"], json!(pane.id), "{keys:?}");
    let decoy_screen = trim_screen(&tmux.capture(&decoy).unwrap());
    assert!(
        decoy_screen.is_empty(),
        "decoy pane got input:\n{decoy_screen}"
    );
    let screen = tmux.capture(&pane).unwrap();
    assert!(
        screen
            .lines()
            .any(|l| l.trim_start().starts_with("› [oxtail]")),
        "{}",
        trim_screen(&screen)
    );
}
