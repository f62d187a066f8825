//! After `oxtail setup`, the real clients use oxtail in their DEFAULT
//! permission modes, offline against the scripted model servers:
//!
//! * Claude Code (`claude -p` without `--dangerously-skip-permissions`):
//!   before setup's permission entry its oxtail call is denied
//!   (`permission_denials`), after it the call runs.
//! * Codex with no `approval_policy` in its config: `codex exec` calls
//!   oxtail after setup, and the TUI asks a person ("Allow the oxtail MCP
//!   server to run tool …") without setup's `default_tools_approval_mode`
//!   and runs the call at once with it.
//! * The person's voice: `oxtail send` reaches the real Claude Code model
//!   framed as the user's own words (checked in the scripted model's
//!   recorded request), and `oxtail nudge` with nothing queued answers
//!   `nothing_to_deliver` without costing a turn.
//!
//! Each test skips with a message when its client is not installed.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use oxtail_tests::claude::{claude_or_skip, ClaudeHome, ClaudeRun};
use oxtail_tests::codex::{codex_or_skip, CodexExec, CodexHome};
use oxtail_tests::e2e::{instance_with_peer, nonce, Gate};
use oxtail_tests::fake_anthropic::{
    assistant_turns, first_user_text, text_after_last_assistant, FakeAnthropic, ScriptedTurn,
};
use oxtail_tests::fake_openai::{FakeOpenAi, ScriptedResponse};
use oxtail_tests::harness::Instance;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// Generous bound for anything a client process does.
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs the real `oxtail <args>` as a user would: `HOME` (and `CODEX_HOME`)
/// the throwaway ones, `OXTAIL_HOME` the test instance's, in `cwd`.
fn oxtail(
    ox: &Instance,
    home: &Path,
    codex_home: Option<&Path>,
    cwd: &Path,
    args: &[&str],
) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("HOME", home)
        .env("OXTAIL_HOME", ox.home())
        .stdin(Stdio::null());
    if let Some(p) = std::env::var_os("PATH") {
        c.env("PATH", p);
    }
    if let Some(ch) = codex_home {
        c.env("CODEX_HOME", ch);
    }
    c.output().unwrap()
}

fn ok_stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One `claude -p` turn in the default permission mode that calls
/// `get_my_session`: its JSON output and the tool's result as the model saw
/// it.
async fn claude_calls_get_my_session(
    claude: &Path,
    home: &ClaudeHome,
    repo: &Path,
    ox: &Instance,
) -> (Value, oxtail_tests::fake_anthropic::ToolResult, String) {
    let server = FakeAnthropic::start(vec![
        ScriptedTurn::tool_use("mcp__oxtail__get_my_session", json!({})),
        ScriptedTurn::text("done"),
    ]);
    let out = ClaudeRun::new(claude, home, repo, server.base_url(), "who am I?")
        .default_permission_mode()
        .env("OXTAIL_HOME", ox.home().to_string_lossy())
        .timeout(DEADLINE)
        .run_async()
        .await
        .unwrap();
    assert!(out.success(), "{}\n{}", out.describe(), server.transcript());
    let result = server
        .tool_results_for("mcp__oxtail__get_my_session")
        .pop()
        .unwrap_or_else(|| panic!("no get_my_session result:\n{}", server.transcript()));
    (out.json().unwrap(), result, server.transcript())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_in_its_default_mode_calls_oxtail_after_setup() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let home = ClaudeHome::new().unwrap();

    // Without the permission entry, the default mode refuses the call: this
    // is what setup's entry fixes (and what makes this test able to fail).
    ok_stdout(&oxtail(
        &ox,
        home.path(),
        None,
        &repo,
        &["setup", "--client", "claude", "--no-allow"],
    ));
    let (out, result, transcript) = claude_calls_get_my_session(&claude, &home, &repo, &ox).await;
    assert!(result.is_error, "denied without the entry: {}", result.text);
    let denials = out["permission_denials"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        denials
            .iter()
            .any(|d| d["tool_name"] == "mcp__oxtail__get_my_session"),
        "{out}\n{transcript}"
    );

    // Plain setup adds "mcp__oxtail" to permissions.allow: no denial.
    let report = ok_stdout(&oxtail(
        &ox,
        home.path(),
        None,
        &repo,
        &["setup", "--client", "claude"],
    ));
    assert!(
        report.contains("permissions.allow += \"mcp__oxtail\""),
        "{report}"
    );
    let (out, result, transcript) = claude_calls_get_my_session(&claude, &home, &repo, &ox).await;
    assert!(!result.is_error, "{}\n{transcript}", result.text);
    assert!(result.text.contains("session_id"), "{}", result.text);
    assert_eq!(out["permission_denials"], json!([]), "{out}");

    // --undo takes the entry away again (and the server and hooks with it).
    let undo = ok_stdout(&oxtail(
        &ox,
        home.path(),
        None,
        &repo,
        &["setup", "--client", "claude", "--undo"],
    ));
    assert!(undo.contains("removed \"mcp__oxtail\""), "{undo}");
    let settings = std::fs::read_to_string(home.settings_path()).unwrap();
    assert!(!settings.contains("oxtail"), "{settings}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_with_its_default_approval_policy_calls_oxtail_after_setup() {
    let Some(codex) = codex_or_skip() else {
        return;
    };
    let (ox, repo, peer) = instance_with_peer(BIN, &[], "peer of codex").await;

    let body = nonce("codex-default-approval");
    let server = FakeOpenAi::start(vec![
        ScriptedResponse::mcp(
            "oxtail",
            "send_message",
            json!({"target": "peer", "body": body}),
        ),
        ScriptedResponse::text("done"),
    ]);
    let home = CodexHome::new(&server.base_url()).unwrap();
    home.use_default_approval_policy().unwrap();
    home.trust_project(&repo).unwrap();
    let report = ok_stdout(&oxtail(
        &ox,
        home.path(),
        Some(&home.codex_home()),
        &repo,
        &["setup", "--client", "codex"],
    ));
    assert!(
        report.contains("default_tools_approval_mode = \"approve\""),
        "{report}"
    );
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    assert!(
        !config.contains("approval_policy ="),
        "default policy: {config}"
    );
    let out = CodexExec::new(&codex, &home, &repo, "say hello to your peer")
        .timeout(DEADLINE)
        .run_async()
        .await
        .unwrap();
    let calls = out.mcp_calls("oxtail", "send_message");
    let call = calls.first().unwrap_or_else(|| {
        panic!(
            "no oxtail.send_message call:\n{}\n{}",
            out.describe(),
            server.transcript()
        )
    });
    assert_eq!(call["status"], "completed", "{call}\n{}", out.describe());
    assert_eq!(call["result"]["structured_content"]["ok"], true, "{call}");
    let inbox = peer.ok("read_my_messages", json!({})).await.unwrap();
    assert_eq!(inbox["messages"][0]["body"], json!(body), "{inbox}");

    // (`codex exec` does not ask even without the approval mode; the TUI
    // test below is the one where a missing approval mode shows.)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_message_reaches_claude_as_the_users_own_words() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let ox = Instance::new(BIN);
    ox.ctl(&["ping"]).expect("daemon starts");
    let repo = ox.git_repo("proj");
    let body = nonce("please-rebase-on-main");

    // Claude names itself, then (mid-turn) waits until the test has nudged
    // and messaged it, then calls one more oxtail tool: its PreToolUse hook
    // hands the operator message over.
    let named = Gate::new();
    let sent = Gate::new();
    let server = {
        let (named, sent) = (named.clone(), sent.clone());
        FakeAnthropic::start_with(move |req| {
            if !first_user_text(req).contains("agent-B") {
                return ScriptedTurn::text("(unknown conversation)");
            }
            match assistant_turns(req) {
                0 => ScriptedTurn::tool_use(
                    "mcp__oxtail__set_my_state",
                    json!({"purpose": "busy with a task", "name": "bee"}),
                ),
                1 => {
                    named.open();
                    sent.wait(DEADLINE);
                    ScriptedTurn::tool_use("mcp__oxtail__get_my_session", json!({}))
                }
                _ => ScriptedTurn::text("B done"),
            }
        })
    };
    let home = ClaudeHome::new().unwrap();
    ok_stdout(&oxtail(
        &ox,
        home.path(),
        None,
        &repo,
        &["setup", "--client", "claude"],
    ));
    let run = ClaudeRun::new(
        &claude,
        &home,
        &repo,
        server.base_url(),
        "agent-B: do your task",
    )
    .default_permission_mode()
    .env("OXTAIL_HOME", ox.home().to_string_lossy())
    .timeout(DEADLINE);
    let claude_task = tokio::spawn(async move { run.run_async().await });

    let gate = named.clone();
    assert!(
        tokio::task::spawn_blocking(move || gate.wait(DEADLINE))
            .await
            .unwrap(),
        "Claude never named itself:\n{}",
        server.transcript()
    );
    // Nothing queued: a nudge costs no turn and says so, in words too.
    let nudge = ok_stdout(&oxtail(
        &ox,
        home.path(),
        None,
        &repo,
        &["nudge", "bee", "--json"],
    ));
    let nudge: Value = serde_json::from_str(&nudge).unwrap();
    assert_eq!(nudge["wake_status"], "nothing_to_deliver", "{nudge}");
    assert!(
        nudge["wake_status_text"]
            .as_str()
            .unwrap()
            .contains("nothing is queued"),
        "{nudge}"
    );
    // The person's message.
    let answer = ok_stdout(&oxtail(
        &ox,
        home.path(),
        None,
        &repo,
        &["send", "bee", &body, "--json"],
    ));
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(answer["wake_status_text"].is_string(), "{answer}");
    sent.open();

    let out = claude_task.await.unwrap().unwrap();
    assert!(out.success(), "{}\n{}", out.describe(), server.transcript());
    assert_eq!(out.json().unwrap()["permission_denials"], json!([]));
    let after = server
        .agent_requests()
        .into_iter()
        .find(|r| assistant_turns(r) == 2)
        .unwrap_or_else(|| panic!("no request after the second call:\n{}", server.transcript()));
    let added = text_after_last_assistant(&after);
    let block = added
        .split("PreToolUse:")
        .skip(1)
        .find(|b| b.contains(&body))
        .unwrap_or_else(|| panic!("the message is not PreToolUse context:\n{added}"));
    assert!(block.contains(&format!("[user] {body}")), "{block}");
    assert!(block.contains("the user's own words"), "{block}");
    assert!(
        !block.contains("not instructions from your user"),
        "{block}"
    );
    assert!(!block.to_lowercase().contains("peer agent"), "{block}");
    // The envelope says where it came from.
    let msg_id = answer["message_id"].as_str().unwrap();
    assert!(block.contains(msg_id), "{block}");
}

/// The Codex TUI (default approval policy, in a private tmux server) after
/// `oxtail setup` (`allow`) or `oxtail setup --no-allow`: the model calls
/// `send_message`. Returns whether the peer got the message without anyone
/// touching the TUI, and the last screen.
async fn codex_tui_sends(
    codex: &Path,
    ox: &Instance,
    repo: &Path,
    peer: &oxtail_tests::harness::Agent,
    allow: bool,
) -> (bool, String) {
    use oxtail_tests::codex::CodexTui;
    use oxtail_tests::tui::{composer_line, trim_screen, TmuxServer};
    let body = nonce("codex-tui-default-approval");
    let server = FakeOpenAi::start(vec![
        ScriptedResponse::mcp(
            "oxtail",
            "send_message",
            json!({"target": "peer", "body": body}),
        ),
        ScriptedResponse::text("sent it"),
    ]);
    let home = CodexHome::new(&server.base_url()).unwrap();
    home.use_default_approval_policy().unwrap();
    home.trust_project(repo).unwrap();
    // Hooks need Codex's own trust step (`oxtail doctor` checks it); this
    // test is about tool approval only.
    let mut args = vec!["setup", "--client", "codex", "--no-hooks"];
    if !allow {
        args.push("--no-allow");
    }
    ok_stdout(&oxtail(
        ox,
        home.path(),
        Some(&home.codex_home()),
        repo,
        &args,
    ));
    let tmux = TmuxServer::new();
    let tui = CodexTui::new(codex, &home, repo);
    let pane = tokio::task::block_in_place(|| tui.start(&tmux, "agent", DEADLINE)).unwrap();
    tokio::task::block_in_place(|| {
        tmux.submit_verified(
            &pane,
            "say hello to your peer",
            Duration::from_millis(600),
            |s| composer_line(s, '›').is_some_and(|l| l.contains("say hello")),
            DEADLINE,
        )
    })
    .unwrap();
    // Delivered, or (without the approval mode) still not delivered once
    // Codex sits waiting for a person.
    let deadline = std::time::Instant::now() + Duration::from_secs(if allow { 90 } else { 20 });
    let mut delivered = false;
    while std::time::Instant::now() < deadline {
        let inbox = peer.ok("read_my_messages", json!({})).await.unwrap();
        if inbox["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["body"] == json!(body)))
        {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let screen = trim_screen(&tmux.capture(&pane).unwrap());
    (delivered, format!("{screen}\n{}", server.transcript()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_tui_with_its_default_approval_policy_calls_oxtail_after_setup() {
    let Some(codex) = codex_or_skip() else {
        return;
    };
    if !oxtail_tests::tui::tmux_or_skip() {
        return;
    }
    let (ox, repo, peer) = instance_with_peer(BIN, &[], "peer of codex").await;
    const PROMPT: &str = "Allow the oxtail MCP server to run tool";
    // Without setup's approval mode the TUI stops and asks a person (this
    // is what makes the test able to fail).
    let (delivered, screen) = codex_tui_sends(&codex, &ox, &repo, &peer, false).await;
    assert!(!delivered, "ran without asking:\n{screen}");
    assert!(screen.contains(PROMPT), "{screen}");
    // With it, the call runs at once.
    let (delivered, screen) = codex_tui_sends(&codex, &ox, &repo, &peer, true).await;
    assert!(delivered, "{screen}");
    assert!(!screen.contains(PROMPT), "{screen}");
}
