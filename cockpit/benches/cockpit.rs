//! Cockpit performance with 50 agents and 10 000 comms-log entries (the
//! targets of issue 5): a `status` (parse the daemon's JSON + render text)
//! under 20 ms, a TUI frame under 5 ms, resident memory under 10 MB.
//!
//! `cargo bench -p oxtail-cockpit` prints medians; results go in
//! cockpit/BENCHMARKS.md.

use oxtail_cockpit::text::{render_text, TextOpts};
use oxtail_cockpit::tui::{draw, App, Feed};
use oxtail_proto::status::*;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use std::time::{Duration, Instant};

const NOW: u64 = 1_750_000_000_000;

fn fleet(agents: usize, comms: usize) -> StatusSnapshot {
    let ids: Vec<String> = (0..agents)
        .map(|i| format!("{i:08}-0000-4000-8000-000000000000"))
        .collect();
    let states = [
        LivenessState::Live,
        LivenessState::Idle,
        LivenessState::Dead,
    ];
    let rows = (0..agents)
        .map(|i| AgentRow {
            client_session_id: ids[i].clone(),
            name: Some(format!("agent-{i:02}")),
            client_type: if i % 2 == 0 { "claude-code" } else { "codex" }.into(),
            project_root: "/src/app".into(),
            liveness: Liveness {
                state: states[i % 3],
                since_ms: Some(NOW - i as u64 * 7000),
            },
            activity: Activity {
                state: ActivityState::Busy,
                since_ms: Some(NOW - 1000),
            },
            current_tool: Some(ToolBadge {
                tool: "Edit".into(),
                file_path: Some(format!("/src/app/m{i}.rs")),
                since_ms: NOW,
            }),
            purpose: Some(StateCard {
                purpose: format!("porting module {i} to the new API, then tests"),
                set_at_ms: Some(NOW),
            }),
            unread: (i % 4) as u64,
            open_obligations: (i % 3) as u64,
            awaiting: None,
            worktree: Some("/src/app".into()),
            branch: Some("main".into()),
            tmux: Some(TmuxLocation {
                socket: None,
                pane_id: format!("%{i}"),
                session_name: "fleet".into(),
                window_index: i as u32,
                window_name: None,
            }),
            wake_route: Some("keys".into()),
            host: None,
        })
        .collect();
    let waits = (0..agents / 5)
        .map(|i| WaitEdge {
            from: ids[i].clone(),
            to: ids[(i + 1) % agents].clone(),
            request_id: format!("req_{i}"),
            since_ms: NOW - 5000,
            kind: WaitKind::InFlight,
            ..Default::default()
        })
        .collect();
    let kinds = [
        CommsKind::Message,
        CommsKind::Ask,
        CommsKind::Reply,
        CommsKind::Delegation,
        CommsKind::Done,
    ];
    let n = comms;
    let comms = (0..n)
        .map(|i| CommsEntry {
            at_ms: NOW - (n - i) as u64 * 1000,
            message_id: format!("msg_{i:08}"),
            from: ids[i % agents].clone(),
            from_name: Some(format!("agent-{:02}", i % agents)),
            to: ids[(i + 7) % agents].clone(),
            to_name: Some(format!("agent-{:02}", (i + 7) % agents)),
            kind: kinds[i % 5],
            body_preview: "x".repeat(120),
            body_bytes: 600,
            request_id: (i % 5 == 1).then(|| format!("req_{i}")),
            reply_to: (i % 5 == 2).then(|| format!("req_{}", i - 1)),
            obligation: (i % 5 == 3).then_some(ObligationState::Open),
            delivered: true,
        })
        .collect();
    StatusSnapshot {
        schema_version: STATUS_SCHEMA_VERSION,
        generated_at_ms: NOW,
        project_root: Some("/src/app".into()),
        agents: rows,
        panes: vec![],
        waits,
        comms,
        comms_total: n as u64,
        files: vec![],
        federation: None,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(n: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
}

fn main() {
    let rss0 = rss_kib();
    {
        // What `oxtail oxpit` holds: the pushed snapshot with its default
        // --comms 1000 newest of the daemon's 10 000, drawn at 200x60.
        let json = serde_json::to_vec(&fleet(50, 1000)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let s = oxtail_cockpit::daemon::parse_snapshot(v).unwrap();
        drop(json);
        let mut app = App::new(Feed::Live);
        app.set_snapshot(s);
        let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
        term.draw(|f| draw(f, &app, NOW)).unwrap();
        println!(
            "RSS: {rss0} KiB at start, {} KiB holding what oxpit keeps (50 agents, 1000 comms) after a frame",
            rss_kib()
        );
    }
    let snap = fleet(50, 10_000);
    let json_full = serde_json::to_vec(&snap).unwrap();
    let mut small = snap.clone();
    small.comms.drain(..small.comms.len() - 10);
    let json_status = serde_json::to_vec(&small).unwrap();

    // `oxtail status`: what it receives (default --comms 10) parsed and rendered.
    let d = time(200, || {
        let v: serde_json::Value = serde_json::from_slice(&json_status).unwrap();
        let s = oxtail_cockpit::daemon::parse_snapshot(v).unwrap();
        std::hint::black_box(render_text(
            &s,
            NOW,
            TextOpts {
                width: Some(160),
                comms: 10,
            },
        ));
    });
    println!("status (50 agents, 10 comms of 10000): parse+render median {d:?}");
    // Worst case: the whole 10 000-entry log in one status answer.
    let d = time(20, || {
        let v: serde_json::Value = serde_json::from_slice(&json_full).unwrap();
        let s = oxtail_cockpit::daemon::parse_snapshot(v).unwrap();
        std::hint::black_box(render_text(
            &s,
            NOW,
            TextOpts {
                width: Some(160),
                comms: 10_000,
            },
        ));
    });
    println!(
        "status (50 agents, all 10000 comms, {} KiB JSON): parse+render median {d:?}",
        json_full.len() / 1024
    );

    let mut app = App::new(Feed::Live);
    app.set_snapshot(snap);
    for (label, w, h) in [
        ("agents view 200x60", 200u16, 60u16),
        ("agents view 80x24", 80, 24),
    ] {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        let d = time(300, || {
            term.draw(|f| draw(f, &app, NOW)).unwrap();
        });
        println!("frame, {label}: median {d:?}");
    }
    app.on_key(KeyEvent::new(KeyCode::Char('l'), KeyModifiers::NONE));
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let d = time(300, || {
        term.draw(|f| draw(f, &app, NOW)).unwrap();
    });
    println!("frame, comms log view 200x60 (10000 entries): median {d:?}");
    let d = time(300, || {
        let mut a = app.clone();
        a.on_key(KeyEvent::new(KeyCode::Char('k'), KeyModifiers::NONE));
        a.on_key(KeyEvent::new(KeyCode::Char('w'), KeyModifiers::NONE));
        term.draw(|f| draw(f, &a, NOW)).unwrap();
    });
    println!("thread open + frame (incl. cloning the app): median {d:?}");
    println!(
        "RSS: {} KiB after holding all 10000 entries (snapshot, two JSON copies, app clones)",
        rss_kib()
    );
}
