//! End to end with the real Claude Code (2.1.329) TUI in tmux panes on a
//! private tmux server (`tmux -L oxt-e2e-<pid>-<n>`), offline against a
//! scripted model server on 127.0.0.1. oxtail is loaded from the project's
//! `.mcp.json`, so each shim's parent is the `claude` process in its pane.
//!
//! * Keys wake (issue 3, "Real TUI"): an idle TUI without hooks is woken by
//!   `send_message {wake: "auto"}` from a peer: `wake_status:
//!   fired_unconfirmed`, the typed line starts a turn (the model request
//!   carries it), and a decoy pane on the same server gets nothing.
//! * Rewake (issue 4): with the hooks installed by `oxtail install-hook
//!   --client claude`, an idle TUI is woken by its async `idle-wait` Stop
//!   hook instead (`wake_status: fired`), with the message in the model's
//!   context framed as peer mail, and no keys typed into its pane.
//! * ask_peer (issue 4): a headless `claude -p` asks the idle TUI session;
//!   the TUI is rewoken, answers with `reply_to_message`, and the asker's
//!   tool result carries the answer.
//! * File conflicts (issue 14): under `OXTAIL_CONFLICT=deny`, the TUI's Edit
//!   of a file a live peer just edited is blocked by the installed
//!   PreToolUse hook, the file is unchanged, the scripted model's next
//!   request carries the reason naming the peer, and the comms log marks
//!   the denied edit.
//!
//! Each test skips with a message when `claude` or tmux is not installed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oxtail_tests::claude::{
    claude_env, claude_or_skip, write_mcp_json, ClaudeHome, ClaudeRun, McpServer,
};
use oxtail_tests::e2e::{
    claude_edited, install_hooks, nonce, rendered_message_id, trace_events, Gate,
};
use oxtail_tests::fake_anthropic::{
    assistant_turns, content_text, first_user_text, messages, value_contains, FakeAnthropic,
    ScriptedTurn,
};
use oxtail_tests::harness::{Agent, AgentOpts, Instance};
use oxtail_tests::tui::{
    composer_line, start_claude_tui, tmux_or_skip, trim_screen, Pane, SessionSpec, TmuxServer,
};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// The tests of this file take turns: each runs one or two Claude Code
/// processes plus oxtail, and on a small machine several TUIs starting at
/// once starve each other of CPU. A busy Claude Code TUI (starting up, just
/// finishing a turn, starved of CPU) that reads its terminal late can take a
/// keys wake's text and Enter as one paste and leave the text unsubmitted in
/// its composer: oxtail types them back to back and never checks (a known
/// weakness of its keys strategy, reported with a reproduction). The keys
/// test wakes a TUI that is really idle.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Generous bound for anything a Claude Code process does.
const DEADLINE: Duration = Duration::from_secs(120);

/// One test's world: an oxtail instance whose daemon writes its trace to
/// `trace`, a git project with oxtail in its `.mcp.json`, a Claude Code home
/// trusting it, and a private tmux server.
struct World {
    ox: Instance,
    repo: PathBuf,
    home: ClaudeHome,
    tmux: TmuxServer,
    trace: PathBuf,
    _trace_dir: tempfile::TempDir,
}

impl World {
    fn new(hooks: bool) -> World {
        let trace_dir = tempfile::tempdir().unwrap();
        let trace = trace_dir.path().join("trace.ndjson");
        let ox = Instance::with_env(BIN, &[("MCP_TRACE_FILE", trace.to_str().unwrap())]);
        // Started by us, so the daemon has the instance's environment (a
        // shim spawning it would pass on Claude Code's).
        ox.ctl(&["ping"]).expect("daemon starts");
        let repo = ox.git_repo("proj");
        let home = ClaudeHome::new().unwrap();
        home.trust_project(&repo).unwrap();
        write_mcp_json(
            &repo,
            &[McpServer::new("oxtail", BIN)
                .arg("mcp")
                .env("OXTAIL_HOME", ox.home())],
        )
        .unwrap();
        if hooks {
            let report = install_hooks(Path::new(BIN), "claude", home.path(), None).unwrap();
            let settings: Value =
                serde_json::from_str(&std::fs::read_to_string(home.settings_path()).unwrap())
                    .unwrap();
            let stop = settings["hooks"]["Stop"].to_string();
            assert!(
                stop.contains("idle-wait") && stop.contains("asyncRewake"),
                "install-hook did not add the idle-wait rewake hook: {report}\n{settings}"
            );
        }
        World {
            ox,
            repo,
            home,
            tmux: TmuxServer::new(),
            trace,
            _trace_dir: trace_dir,
        }
    }

    /// Claude Code's environment for this world (its hooks need
    /// `OXTAIL_HOME` too).
    fn env(&self, server: &FakeAnthropic) -> Vec<(String, String)> {
        let mut env = claude_env(self.home.path(), &server.base_url());
        env.push((
            "OXTAIL_HOME".into(),
            self.ox.home().to_string_lossy().into_owned(),
        ));
        env
    }

    /// Start the Claude Code TUI in a new session `name` and wait for its
    /// prompt.
    fn start_tui(&self, name: &str, server: &FakeAnthropic) -> Pane {
        start_claude_tui(
            &self.tmux,
            name,
            &claude_or_skip().unwrap(),
            &self.repo,
            &self.env(server),
            &[],
            DEADLINE,
        )
        .unwrap()
    }

    /// The daemon's rows (`ctl sessions`).
    fn sessions(&self) -> Vec<Value> {
        self.ox.ctl(&["sessions"]).unwrap()["sessions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Wait until a session row satisfies `pred`.
    fn wait_session(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let rows = self.sessions();
            if let Some(r) = rows.iter().find(|r| pred(r)) {
                return r.clone();
            }
            assert!(Instant::now() < deadline, "no session {what}: {rows:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until the daemon counts `n` armed idle-wait hooks.
    fn wait_idle_waiters(&self, n: u64) {
        self.ox.wait_stat("idle_waiters", n, DEADLINE).unwrap();
    }
}

/// A peer agent (a real shim driven by rmcp) in the world's project.
async fn peer(w: &World) -> Agent {
    let p =
        w.ox.agent(AgentOpts::claude(&w.repo, "peer-session"))
            .await
            .unwrap();
    p.ok("set_my_state", json!({"purpose": "peer", "name": "peer"}))
        .await
        .unwrap();
    p
}

/// Type `text` into a Claude Code TUI's composer and submit it, pressing
/// Enter again if the TUI took text and Enter as one paste.
fn submit_prompt(w: &World, pane: &Pane, text: &str) {
    w.tmux
        .submit_verified(
            pane,
            text,
            Duration::from_millis(300),
            |s| composer_line(s, '❯').is_some_and(|l| l.contains(text)),
            DEADLINE,
        )
        .unwrap();
}

/// Text of the last message of the request whose role is `user` (for a
/// woken Claude Code session: the typed line, or the system notification a
/// rewake produces).
fn last_user_text(req: &Value) -> String {
    messages(req)
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| content_text(&m["content"]))
        .unwrap_or_default()
}

/// Start a Claude Code TUI in session `name`, wait until its shim
/// registered it with the pane's `claude` process as its seat (resolved from
/// `CLAUDE_CODE_SESSION_ID`), and return the pane and the session id.
fn registered_tui(w: &World, name: &str, server: &FakeAnthropic) -> (Pane, String) {
    let pane = w.start_tui(name, server);
    let claude_pid = w.tmux.pane_pid(&pane).unwrap();
    let row = w.wait_session("seated in the TUI's claude process", |r| {
        r["client_type"] == "claude-code" && r["seat"]["pid"] == json!(claude_pid)
    });
    assert_eq!(row["resolved_by"], "env:CLAUDE_CODE_SESSION_ID", "{row}");
    (pane, row["client_session_id"].as_str().unwrap().to_owned())
}

/// [`registered_tui`] (session `agent`), then one turn of work (the
/// script's first turn must answer `ready-for-work`), woken the moment that
/// answer shows.
fn idle_tui_without_hooks(w: &World, server: &FakeAnthropic) -> (Pane, String) {
    let (pane, session) = registered_tui(w, "agent", server);
    submit_prompt(w, &pane, "agent-K: look around");
    w.tmux
        .wait_for(&pane, DEADLINE, "the first answer", |s| {
            s.contains("ready-for-work")
        })
        .unwrap();
    // No wait for a quiet screen: waking it right as its turn ends is the
    // common case (a peer replying), and the daemon re-presses Enter when the
    // wake line is left sitting in the composer.
    assert_eq!(server.agent_requests().len(), 1, "{}", server.transcript());
    (pane, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_claude_tui_is_woken_by_keys_into_its_own_pane() {
    if claude_or_skip().is_none() || !tmux_or_skip() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let w = World::new(false);
    let server = FakeAnthropic::start(vec![
        ScriptedTurn::text("ready-for-work"),
        ScriptedTurn::text("woken: reading my mail"),
    ]);
    // A decoy first (so it is %0): a pane in the same project, named like the
    // client, echoing anything typed into it.
    let decoy = w
        .tmux
        .new_session(&SessionSpec::new("decoy", &w.repo, ["cat"]).window("claude"))
        .unwrap();
    let (pane, session) = tokio::task::block_in_place(|| idle_tui_without_hooks(&w, &server));
    let peer = peer(&w).await;
    let body = nonce("wake-by-keys");
    let sent = peer
        .ok(
            "send_message",
            json!({"target": session, "body": body, "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(sent["wake_status"], "fired_unconfirmed", "{sent}");

    // The idle TUI starts a turn with the typed line as the user's prompt.
    let woken = server
        .wait_for_request_async(DEADLINE, |r| assistant_turns(r) == 1)
        .await
        .unwrap_or_else(|| {
            panic!(
                "the idle TUI never started a turn:\n{}\n{}",
                trim_screen(&w.tmux.capture(&pane).unwrap()),
                server.transcript()
            )
        });
    let screen = tokio::task::block_in_place(|| {
        w.tmux
            .wait_for(&pane, DEADLINE, "the typed wake line and the answer", |s| {
                s.contains("woken: reading my mail")
            })
    })
    .unwrap();
    let typed = screen
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("❯ [oxtail]"))
        .map(|rest| format!("[oxtail]{}", rest.trim_end()))
        .unwrap_or_else(|| panic!("no typed wake line on screen:\n{}", trim_screen(&screen)));
    assert!(typed.contains("read_my_messages"), "{typed}");
    assert!(
        last_user_text(&woken).contains(&typed),
        "the turn was not started by the typed line {typed:?}: {}",
        last_user_text(&woken)
    );
    // Keys only tell it to look: the body itself is not typed.
    assert!(!value_contains(&woken, &body));

    // Nothing went anywhere else.
    let decoy_screen = trim_screen(&w.tmux.capture(&decoy).unwrap());
    assert!(
        decoy_screen.is_empty(),
        "decoy pane got input:\n{decoy_screen}"
    );
    let keys: Vec<Value> = trace_events(&w.trace)
        .into_iter()
        .filter(|e| e["event"] == "keys")
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["pane"], json!(pane.id), "{keys:?}");
    assert_eq!(keys[0]["target"], json!(session), "{keys:?}");
}

/// B's part of the rewake tests: `agent-B` names itself `bee`, says
/// `ready-for-work`, then answers a wake with `on_wake(request)`.
fn bee_script(
    req: &Value,
    on_wake: &(dyn Fn(&Value) -> ScriptedTurn + Send + Sync),
) -> ScriptedTurn {
    match assistant_turns(req) {
        0 => ScriptedTurn::tool_use(
            "mcp__oxtail__set_my_state",
            json!({"purpose": "idle between tasks", "name": "bee"}),
        ),
        1 => ScriptedTurn::text("ready-for-work"),
        2 => on_wake(req),
        3 => ScriptedTurn::text("answered"),
        _ => ScriptedTurn::text("(bee: unexpected extra turn)"),
    }
}

/// Start B's TUI, give it its first prompt, and wait until the turn ended
/// and its idle-wait hook is armed. Returns the pane and B's session id.
fn start_idle_bee(w: &World, server: &FakeAnthropic) -> (Pane, String) {
    let pane = w.start_tui("bee", server);
    submit_prompt(w, &pane, "agent-B: get ready");
    w.tmux
        .wait_for(&pane, DEADLINE, "B's first answer", |s| {
            s.contains("ready-for-work")
        })
        .unwrap();
    let row = w.wait_session("named bee", |r| r["name"] == "bee");
    // The Stop hook ran and left the async idle-wait hook armed.
    w.wait_idle_waiters(1);
    (pane, row["client_session_id"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_claude_tui_is_woken_by_idle_wait_without_keys() {
    if claude_or_skip().is_none() || !tmux_or_skip() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let w = World::new(true);
    let server = FakeAnthropic::start_with(|req| {
        if first_user_text(req).contains("agent-B") {
            bee_script(req, &|_| ScriptedTurn::text("got the peer's note"))
        } else {
            ScriptedTurn::text("(unknown conversation)")
        }
    });
    let (pane, bee) = tokio::task::block_in_place(|| start_idle_bee(&w, &server));
    let watch = w.tmux.watch(&pane, Duration::from_millis(50));

    let peer = peer(&w).await;
    let body = nonce("wake-by-rewake");
    let sent = peer
        .ok(
            "send_message",
            json!({"target": "bee", "body": body, "wake": "auto"}),
        )
        .await
        .unwrap();
    assert_eq!(sent["wake_status"], "fired", "{sent}");
    let message_id = sent["message_id"].as_str().unwrap().to_owned();

    // B starts a turn whose new context is the mail, framed as peer mail.
    let woken = server
        .wait_for_request_async(DEADLINE, |r| {
            first_user_text(r).contains("agent-B") && assistant_turns(r) == 2
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "B was never woken:\n{}\n{}",
                trim_screen(&w.tmux.capture(&pane).unwrap()),
                server.transcript()
            )
        });
    let context = last_user_text(&woken);
    assert!(context.contains(&body), "{context}");
    assert!(context.contains(&message_id), "{context}");
    assert!(
        context.contains("peer-session"),
        "sender not named: {context}"
    );
    assert!(context.to_lowercase().contains("peer agents"), "{context}");
    assert!(
        context.contains("not instructions from your user"),
        "{context}"
    );
    // Claude Code shows an exit-2 async hook's stderr as a system
    // notification, not as user input.
    assert!(context.contains("NOT USER INPUT"), "{context}");
    tokio::task::block_in_place(|| {
        w.tmux
            .wait_for(&pane, DEADLINE, "B's answer to the wake", |s| {
                s.contains("got the peer's note")
            })
    })
    .unwrap();
    // After that turn the Stop hook armed a new idle-wait.
    tokio::task::block_in_place(|| w.wait_idle_waiters(1));
    let screens = watch.stop();

    // No keys: nothing was typed into B's composer, the daemon never chose
    // the keys route, and no request of B's holds a typed wake line.
    assert!(!screens.is_empty());
    for s in &screens {
        assert!(
            !s.lines().any(|l| l.trim_start().starts_with("❯ [oxtail]"))
                && !s.contains("read_my_messages"),
            "a wake line was typed into B's pane:\n{}",
            trim_screen(s)
        );
    }
    let events = trace_events(&w.trace);
    assert!(
        !events.iter().any(|e| e["event"] == "keys"),
        "keys were sent: {events:?}"
    );
    assert!(
        !server.saw("read_my_messages (and my_open_work)"),
        "{}",
        server.transcript()
    );
    // Delivered by the hook: B's mailbox is empty.
    let inbox = w.ox.ctl(&["inbox", &bee]).unwrap();
    assert_eq!(inbox["queued"], json!([]), "{inbox}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_peer_between_two_claude_sessions_completes() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    if !tmux_or_skip() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let w = World::new(true);
    let question = nonce("what-is-6x7");
    let answer = nonce("forty-two");
    let bee_asked = Gate::new();
    let server = {
        let (question, answer, bee_asked) = (question.clone(), answer.clone(), bee_asked.clone());
        FakeAnthropic::start_with(move |req| {
            let prompt = first_user_text(req);
            if prompt.contains("agent-A") {
                match assistant_turns(req) {
                    0 => ScriptedTurn::tool_use(
                        "mcp__oxtail__ask_peer",
                        json!({"target": "bee", "body": question, "timeout_ms": 90000}),
                    ),
                    _ => ScriptedTurn::text("A got its answer"),
                }
            } else if prompt.contains("agent-B") {
                bee_script(req, &|req| {
                    let mail = last_user_text(req);
                    bee_asked.open();
                    match rendered_message_id(&mail) {
                        Some(id) if mail.contains(question.as_str()) => ScriptedTurn::tool_use(
                            "mcp__oxtail__reply_to_message",
                            json!({"message_id": id, "body": answer}),
                        ),
                        _ => ScriptedTurn::text(format!("no question in: {mail}")),
                    }
                })
            } else {
                ScriptedTurn::text("(unknown conversation)")
            }
        })
    };
    let (_pane, bee) = tokio::task::block_in_place(|| start_idle_bee(&w, &server));

    // A: a headless session of the same user in the same project.
    let a = ClaudeRun::new(
        &claude,
        &w.home,
        &w.repo,
        server.base_url(),
        "agent-A: ask bee",
    )
    .env("OXTAIL_HOME", w.ox.home().to_string_lossy())
    .timeout(DEADLINE);
    let out = a.run_async().await.unwrap();
    assert!(
        out.success(),
        "A: {}\n{}",
        out.describe(),
        server.transcript()
    );
    assert!(
        bee_asked.is_open(),
        "B was never woken:\n{}",
        server.transcript()
    );

    let result = server
        .tool_results_for("mcp__oxtail__ask_peer")
        .pop()
        .unwrap_or_else(|| panic!("no ask_peer result:\n{}", server.transcript()));
    assert!(!result.is_error, "{}", result.text);
    let v: Value = serde_json::from_str(&result.text)
        .unwrap_or_else(|e| panic!("ask_peer result is not JSON ({e}): {}", result.text));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["timed_out"], false, "{v}");
    assert_eq!(v["reply"]["body"], json!(answer), "{v}");
    assert_eq!(v["reply"]["from_session_id"], json!(bee), "{v}");
    // B's reply call succeeded and was the correlated answer (B's request
    // after the call may arrive after A is done).
    server
        .wait_for_request_async(DEADLINE, |r| {
            first_user_text(r).contains("agent-B") && assistant_turns(r) == 3
        })
        .await
        .unwrap_or_else(|| panic!("B never got its reply's result:\n{}", server.transcript()));
    let reply = server
        .tool_results_for("mcp__oxtail__reply_to_message")
        .pop()
        .unwrap_or_else(|| panic!("B never replied:\n{}", server.transcript()));
    let r: Value = serde_json::from_str(&reply.text).unwrap();
    assert_eq!(r["correlated"], "answered_waiting_ask", "{r}");
    assert_eq!(r["reply_to"], v["request_id"], "{r}\n{v}");
    // The ask was handed over by ask_peer itself: nothing queued for A, and
    // B's obligation is closed.
    let a_id = out.json().unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The reply leaves A's mailbox when A's shim acks the hand-over, 100 ms
    // after writing it. `claude -p` can end its shim inside that window
    // (it exits as soon as its last turn is done), and a hand-over that may
    // have reached the agent but was never confirmed stays queued, flagged
    // `redelivered` (issue 9: flagged, never lost). So: nothing else is
    // queued, and the reply, if still there, is flagged.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    let inbox = loop {
        let inbox = w.ox.ctl(&["inbox", &a_id]).unwrap();
        if inbox["queued"] == json!([]) || std::time::Instant::now() > end {
            break inbox;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for m in inbox["queued"].as_array().unwrap() {
        assert_eq!(
            m["body"],
            json!(answer),
            "only the reply may remain: {inbox}"
        );
        assert_eq!(m["redelivered"], true, "and it is flagged: {inbox}");
    }
    assert_eq!(w.ox.ctl(&["stats"]).unwrap()["open_obligations"], 0);
    eprintln!(
        "A's whole run (start, ask, B woken and answering) took {:.2?}",
        out.elapsed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_mode_blocks_the_tui_edit_of_a_peers_file_with_the_reason() {
    if claude_or_skip().is_none() || !tmux_or_skip() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let w = World::new(true);
    let file = w.repo.join("src/a.rs");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "fn old() {}\n").unwrap();
    // A live peer (its own shim) edited src/a.rs, as its hooks report it.
    let alice = peer(&w).await;
    claude_edited(&w.ox, "peer-session", alice.pid.unwrap(), &w.repo, &file).unwrap();

    let path = file.to_str().unwrap().to_owned();
    let server = FakeAnthropic::start_with(move |req: &Value| match assistant_turns(req) {
        0 => ScriptedTurn::tool_use("Read", json!({"file_path": path})),
        1 => ScriptedTurn::tool_use(
            "Edit",
            json!({"file_path": path, "old_string": "fn old() {}", "new_string": "fn new() {}"}),
        ),
        _ => ScriptedTurn::text("edit-was-refused"),
    });
    let mut env = w.env(&server);
    env.push(("OXTAIL_CONFLICT".into(), "deny".into()));
    let pane = tokio::task::block_in_place(|| {
        let pane = start_claude_tui(
            &w.tmux,
            "editor",
            &claude_or_skip().unwrap(),
            &w.repo,
            &env,
            &[],
            DEADLINE,
        )
        .unwrap();
        submit_prompt(&w, &pane, "change old to new in src/a.rs");
        pane
    });
    let after = server
        .wait_for_request_async(DEADLINE, |r| assistant_turns(r) == 2)
        .await
        .unwrap_or_else(|| {
            panic!(
                "no request after the Edit:\n{}\n{}",
                trim_screen(&w.tmux.capture(&pane).unwrap()),
                server.transcript()
            )
        });
    let last = messages(&after).last().cloned().unwrap_or_default();
    assert!(
        value_contains(
            &last,
            "File conflict: peer `peer` (claude-code) edited `src/a.rs`"
        ),
        "the deny reason reaches the model: {last}\n{}",
        server.transcript()
    );
    assert!(
        value_contains(&last, "ask_peer {target: \"peer\"}"),
        "{last}"
    );
    tokio::task::block_in_place(|| {
        w.tmux
            .wait_for(&pane, DEADLINE, "the turn's end", |s| {
                s.contains("edit-was-refused")
            })
            .unwrap();
    });
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "fn old() {}\n",
        "the edit was blocked"
    );
    // The comms log marks it: editor → peer, denied.
    let st =
        w.ox.command()
            .args(["status", "--json"])
            .current_dir(&w.repo)
            .output()
            .unwrap();
    let snap: Value = serde_json::from_slice(&st.stdout).unwrap();
    let conflict = snap["comms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "conflict")
        .cloned()
        .unwrap_or_else(|| panic!("no conflict entry in the comms log: {snap}"));
    assert_eq!(conflict["to"], "peer-session", "{conflict}");
    assert!(
        conflict["body_preview"]
            .as_str()
            .unwrap()
            .ends_with("(edit denied)"),
        "{conflict}"
    );
}
