//! Rendering tests: the TUI drawn on ratatui's `TestBackend` and the text
//! view of `oxtail status`, compared exactly with the plain-text snapshot
//! files in `tests/snapshots/`. Regenerate them after an intended change
//! with `OXTAIL_UPDATE_SNAPSHOTS=1 cargo test -p oxtail-cockpit --test
//! render` and review the diff.

use oxtail_cockpit::text::{render_text, TextOpts};
use oxtail_cockpit::tui::{buffer_text, draw, App, Feed, View};
use oxtail_proto::status::*;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use std::path::PathBuf;

const NOW: u64 = 1_750_000_000_000;

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("OXTAIL_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with OXTAIL_UPDATE_SNAPSHOTS=1 to create it\n--- actual ---\n{actual}",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "snapshot {name} differs (OXTAIL_UPDATE_SNAPSHOTS=1 regenerates)\n--- expected ---\n{expected}\n--- actual ---\n{actual}"
        );
    }
}

fn screen(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, app, NOW)).unwrap();
    buffer_text(t.backend().buffer())
}

fn agent(id: &str, name: &str, client: &str, state: LivenessState, age_s: u64) -> AgentRow {
    AgentRow {
        client_session_id: id.into(),
        name: Some(name.into()),
        client_type: client.into(),
        project_root: "/src/app".into(),
        liveness: Liveness {
            state,
            since_ms: Some(NOW - age_s * 1000),
        },
        worktree: Some("/src/app".into()),
        branch: Some("main".into()),
        ..Default::default()
    }
}

fn card(s: &str) -> Option<StateCard> {
    Some(StateCard {
        purpose: s.into(),
        set_at_ms: Some(NOW - 60_000),
    })
}

fn tool(t: &str, file: Option<&str>) -> Option<ToolBadge> {
    Some(ToolBadge {
        tool: t.into(),
        file_path: file.map(Into::into),
        since_ms: NOW - 2000,
    })
}

fn wait(from: &str, to: &str, age_s: u64, kind: WaitKind) -> WaitEdge {
    WaitEdge {
        from: from.into(),
        to: to.into(),
        request_id: format!("req_{from}{to}"),
        since_ms: NOW - age_s * 1000,
        kind,
        ..Default::default()
    }
}

#[allow(clippy::too_many_arguments)]
fn msg(
    i: usize,
    age_s: u64,
    from: (&str, &str),
    to: (&str, &str),
    kind: CommsKind,
    body: &str,
    request_id: Option<&str>,
    reply_to: Option<&str>,
) -> CommsEntry {
    CommsEntry {
        at_ms: NOW - age_s * 1000,
        message_id: format!("msg_{i:04}"),
        from: from.0.into(),
        from_name: Some(from.1.into()),
        to: to.0.into(),
        to_name: Some(to.1.into()),
        kind,
        body_preview: body.into(),
        body_bytes: body.len() as u64,
        request_id: request_id.map(Into::into),
        reply_to: reply_to.map(Into::into),
        obligation: None,
        delivered: true,
    }
}

fn snap(agents: Vec<AgentRow>, waits: Vec<WaitEdge>, comms: Vec<CommsEntry>) -> StatusSnapshot {
    StatusSnapshot {
        schema_version: STATUS_SCHEMA_VERSION,
        generated_at_ms: NOW,
        project_root: Some("/src/app".into()),
        comms_total: comms.len() as u64,
        agents,
        panes: vec![],
        waits,
        comms,
        files: vec![],
        federation: None,
    }
}

/// main (live, awaiting codex), codex (idle, an open obligation), tests
/// (dead, two unread).
fn three() -> StatusSnapshot {
    let mut main = agent(
        "11111111-aaaa",
        "main",
        "claude-code",
        LivenessState::Live,
        8,
    );
    main.current_tool = tool("mcp__oxtail__ask_peer", None);
    main.purpose = card("token-refresh audit");
    main.awaiting = Some(Awaiting {
        request_id: "req_1".into(),
        target: "22222222-bbbb".into(),
        target_name: Some("codex".into()),
        since_ms: NOW - 120_000,
        kind: WaitKind::InFlight,
    });
    main.tmux = Some(TmuxLocation {
        socket: None,
        pane_id: "%3".into(),
        session_name: "work".into(),
        window_index: 1,
        window_name: Some("main".into()),
    });
    let mut codex = agent("22222222-bbbb", "codex", "codex", LivenessState::Idle, 30);
    codex.current_tool = tool("Bash", None);
    codex.open_obligations = 1;
    codex.purpose = card("auditing the token refresh path");
    let mut tests = agent(
        "33333333-cccc",
        "tests",
        "claude-code",
        LivenessState::Dead,
        480,
    );
    tests.unread = 2;
    tests.current_tool = tool("Edit", Some("/src/app/tests/refresh.rs"));
    let m = ("11111111-aaaa", "main");
    let c = ("22222222-bbbb", "codex");
    let t = ("33333333-cccc", "tests");
    let mut deleg = msg(
        1,
        300,
        m,
        c,
        CommsKind::Delegation,
        "please audit the token refresh path and report findings",
        None,
        None,
    );
    deleg.obligation = Some(ObligationState::Open);
    let comms = vec![
        deleg,
        msg(
            2,
            200,
            c,
            m,
            CommsKind::Reply,
            "on it — tracing the refresh path now",
            None,
            Some("msg_0001"),
        ),
        msg(
            3,
            120,
            m,
            c,
            CommsKind::Ask,
            "does refresh() retry on 401?",
            Some("req_1"),
            None,
        ),
        msg(
            4,
            60,
            m,
            t,
            CommsKind::Message,
            "please rerun the suite when you are back",
            None,
            None,
        ),
        msg(
            5,
            20,
            ("operator", "operator"),
            t,
            CommsKind::Operator,
            "tests: you crashed, restart when you can",
            None,
            None,
        ),
    ];
    snap(
        vec![main, codex, tests],
        vec![wait(
            "11111111-aaaa",
            "22222222-bbbb",
            120,
            WaitKind::InFlight,
        )],
        comms,
    )
}

#[test]
fn empty_fleet() {
    let mut app = App::new(Feed::Live);
    app.set_snapshot(snap(vec![], vec![], vec![]));
    check("empty_fleet", &screen(&app, 100, 20));
    check(
        "status_empty",
        &render_text(
            &app.snapshot,
            NOW,
            TextOpts {
                width: None,
                comms: 10,
            },
        ),
    );
}

#[test]
fn three_agents_mixed_liveness() {
    let mut app = App::new(Feed::Live);
    app.set_snapshot(three());
    app.pane_tail = vec![
        "$ cargo test".into(),
        "running 12 tests".into(),
        "test refresh::retries ... ok".into(),
    ];
    check("three_agents", &screen(&app, 120, 30));
    check(
        "status_three_agents",
        &render_text(
            &app.snapshot,
            NOW,
            TextOpts {
                width: None,
                comms: 10,
            },
        ),
    );
}

#[test]
fn narrow_80_columns() {
    let mut app = App::new(Feed::Live);
    app.set_snapshot(three());
    // Select the second agent (j), as a person would.
    app.on_key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE));
    assert_eq!(app.selected, 1);
    let s = screen(&app, 80, 24);
    for line in s.lines() {
        assert!(oxtail_cockpit::model::width(line) <= 80, "{line}");
    }
    check("narrow_80", &s);
    check(
        "status_narrow_80",
        &render_text(
            &app.snapshot,
            NOW,
            TextOpts {
                width: Some(80),
                comms: 3,
            },
        ),
    );
}

#[test]
fn deadlock() {
    let a = agent("a1", "alpha", "claude-code", LivenessState::Live, 5);
    let b = agent("b1", "beta", "codex", LivenessState::Idle, 50);
    let c = agent("c1", "gamma", "claude-code", LivenessState::Live, 1);
    let waits = vec![
        wait("a1", "b1", 90, WaitKind::InFlight),
        wait("b1", "c1", 80, WaitKind::InFlight),
        wait("c1", "a1", 70, WaitKind::Pending),
    ];
    let mut app = App::new(Feed::Live);
    app.set_snapshot(snap(vec![a, b, c], waits, vec![]));
    let s = screen(&app, 110, 20);
    assert!(
        s.contains("⛔ DEADLOCK alpha → beta → gamma → alpha"),
        "{s}"
    );
    check("deadlock", &s);
    // The same cycle with a dead member is not a deadlock.
    let mut sn = app.snapshot.clone();
    sn.agents[1].liveness.state = LivenessState::Dead;
    let t = render_text(
        &sn,
        NOW,
        TextOpts {
            width: None,
            comms: 0,
        },
    );
    assert!(!t.contains("DEADLOCK"), "{t}");
    assert!(
        t.contains("⚠ orphaned: alpha awaits beta, who is dead"),
        "{t}"
    );
    check("status_cycle_with_dead_member", &t);
}

#[test]
fn orphaned_wait() {
    let a = agent("a1", "alpha", "claude-code", LivenessState::Live, 5);
    let b = agent("b1", "beta", "codex", LivenessState::Ended, 600);
    let mut app = App::new(Feed::Live);
    app.set_snapshot(snap(
        vec![a, b],
        vec![wait("a1", "b1", 400, WaitKind::Pending)],
        vec![],
    ));
    let s = screen(&app, 110, 16);
    assert!(
        s.contains("orphaned: alpha awaits beta, who is ended"),
        "{s}"
    );
    assert!(!s.contains("DEADLOCK"));
    check("orphaned_wait", &s);
}

fn long_log() -> StatusSnapshot {
    let names = [("a1", "alpha"), ("b1", "beta"), ("c1", "gamma")];
    let agents = names
        .iter()
        .map(|(id, n)| agent(id, n, "claude-code", LivenessState::Live, 3))
        .collect();
    let mut comms = Vec::new();
    for i in 0..300usize {
        let from = names[i % 3];
        let to = names[(i + 1) % 3];
        let age = (300 - i as u64) * 37;
        let e = match i % 5 {
            0 => {
                let mut d = msg(
                    i,
                    age,
                    from,
                    to,
                    CommsKind::Delegation,
                    &format!("task {i}: port module {i} to the new API"),
                    None,
                    None,
                );
                d.obligation = Some(match i % 3 {
                    0 => ObligationState::Open,
                    1 => ObligationState::Done,
                    _ => ObligationState::Blocked,
                });
                d
            }
            1 => msg(
                i,
                age,
                from,
                to,
                CommsKind::Ask,
                &format!("question {i}: which branch has the fix?"),
                Some(&format!("req_{i}")),
                None,
            ),
            2 => msg(
                i,
                age,
                from,
                to,
                CommsKind::Reply,
                &format!("answer to {}: feature/x", i - 1),
                None,
                Some(&format!("req_{}", i - 1)),
            ),
            3 => msg(
                i,
                age,
                from,
                to,
                CommsKind::Done,
                &format!("done with task {}", i - 3),
                None,
                Some(&format!("msg_{:04}", i - 3)),
            ),
            _ => msg(
                i,
                age,
                from,
                to,
                CommsKind::Message,
                &format!("status update {i}\nsecond line"),
                None,
                None,
            ),
        };
        comms.push(e);
    }
    let mut s = snap(agents, vec![], comms);
    s.comms_total = 10_000;
    s
}

#[test]
fn long_comms_log() {
    let mut app = App::new(Feed::Live);
    app.set_snapshot(long_log());
    app.on_key(KeyEvent::new(KeyCode::Char('l'), KeyModifiers::NONE));
    assert_eq!(app.view, View::Log);
    assert_eq!(app.log_selected, 299, "the log opens on the newest entry");
    check("long_comms_log", &screen(&app, 120, 24));
    // Up three, then the thread of that entry (an ask, 296 = 1 mod 5).
    for _ in 0..3 {
        app.on_key(KeyEvent::new(KeyCode::Char('k'), KeyModifiers::NONE));
    }
    app.on_key(KeyEvent::new(KeyCode::Char('w'), KeyModifiers::NONE));
    assert_eq!(app.view, View::Thread(vec![296, 297]));
    check("thread_view", &screen(&app, 120, 14));
    // The agents view shows only the newest entries that fit.
    app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    check("long_comms_agents_view", &screen(&app, 120, 24));
}

#[test]
fn help_and_compose() {
    let mut app = App::new(Feed::Live);
    app.set_snapshot(three());
    app.on_key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
    check("help", &screen(&app, 100, 20));
    app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    let mut s = three();
    s.files = vec![
        oxtail_proto::status::FileRow {
            path: "src/db.rs".into(),
            agent: "main".into(),
            what: "edited".into(),
            branch: Some("main".into()),
            at_ms: NOW - 180_000,
            conflict: true,
        },
        oxtail_proto::status::FileRow {
            path: "src/**".into(),
            agent: "codex".into(),
            what: "exclusive".into(),
            branch: None,
            at_ms: NOW + 2_400_000,
            conflict: false,
        },
    ];
    app.set_snapshot(s);
    app.on_key(KeyEvent::new(KeyCode::Char('f'), KeyModifiers::NONE));
    assert_eq!(app.view, View::Files);
    let files = screen(&app, 100, 8);
    assert!(
        files.contains("! src/db.rs  main  edited 3m ago  (main)"),
        "{files}"
    );
    assert!(
        files.contains("  src/**  codex  exclusive lease, 40m left"),
        "{files}"
    );
    app.set_snapshot(three());
    app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    app.on_key(KeyEvent::new(KeyCode::Char('m'), KeyModifiers::NONE));
    for c in "hi there".chars() {
        app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    let s = screen(&app, 100, 12);
    assert!(
        s.contains("message to main (⏎ send, Esc cancel): hi there▏"),
        "{s}"
    );
    let act = app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(
        act,
        oxtail_cockpit::tui::Action::Send {
            target: "11111111-aaaa".into(),
            name: "main".into(),
            body: "hi there".into()
        }
    );
}

/// `i` interrupts only a Codex reached through its app-server, and only
/// after `y`; any other key cancels. The route shows beside the client.
#[test]
fn interrupt_asks_for_confirmation_and_only_for_app_server_codex() {
    use oxtail_cockpit::tui::Action;
    let mut s = three();
    s.agents[1].wake_route = Some("app_server".into());
    s.agents[0].wake_route = Some("keys".into());
    let mut app = App::new(Feed::Live);
    app.set_snapshot(s);
    let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    // The first row (main, Claude Code over keys) cannot be interrupted.
    let first = app.selected_agent().unwrap().client_session_id.clone();
    assert_eq!(first, "11111111-aaaa");
    assert_eq!(app.on_key(key('i')), Action::None);
    assert!(app.confirm_interrupt.is_none());
    assert!(app
        .flash
        .as_deref()
        .unwrap()
        .contains("cannot be interrupted"));
    let rows = screen(&app, 120, 24);
    assert!(rows.contains("claude keys"), "{rows}");
    assert!(rows.contains("codex app"), "{rows}");
    // The Codex row: i asks, n cancels, i then y interrupts.
    while app.selected_agent().unwrap().client_session_id != "22222222-bbbb" {
        app.on_key(key('j'));
    }
    assert_eq!(app.on_key(key('i')), Action::None);
    assert!(app.flash.as_deref().unwrap().contains("y to confirm"));
    assert_eq!(app.on_key(key('n')), Action::None);
    assert_eq!(app.flash.as_deref(), Some("interrupt cancelled"));
    assert_eq!(app.on_key(key('i')), Action::None);
    assert_eq!(
        app.on_key(key('y')),
        Action::Interrupt {
            target: "22222222-bbbb".into(),
            name: "codex".into()
        }
    );
}

#[test]
fn federation_shows_where_and_remote_agents_show_their_host() {
    let mut remote = agent("r1", "bob", "claude-code", LivenessState::Live, 5);
    remote.host = Some("laptop".into());
    remote.wake_route = Some("remote".into());
    let mut s = snap(vec![remote], vec![], vec![]);
    s.federation = Some(FederationStatus {
        url: "nats://nats.example.com:4222".into(),
        link_up: false,
        error: Some("not connected".into()),
        daemon: "d1".into(),
        projects: 1,
        remote_agents: 1,
        outbox: 2,
        warning: Some("in the clear".into()),
    });
    let t = render_text(
        &s,
        NOW,
        TextOpts {
            width: None,
            comms: 10,
        },
    );
    assert!(t.contains("federation: on → nats://nats.example.com:4222 · link DOWN · 1 federated project · 1 remote agent · 2 waiting in the outbox (not connected)"), "{t}");
    assert!(t.contains("warning: in the clear"), "{t}");
    assert!(t.contains("bob@laptop"), "{t}");
}
