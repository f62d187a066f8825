//! `oxtail fleet` against a real tmux server on a private socket
//! (`oxtail_tests::tui::TmuxServer`, killed by name when the test ends).

use oxtail_tests::tui::TmuxServer;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `(pane id, session, window name, @oxtail_fleet, @oxtail_agent)` of every
/// pane of `server`, sorted by agent then pane (none when no server runs).
fn list_panes(server: &TmuxServer) -> Vec<(String, String, String, String, String)> {
    let o = server.output(&[
        "list-panes",
        "-a",
        "-F",
        "#{pane_id}|#{session_name}|#{window_name}|#{@oxtail_fleet}|#{@oxtail_agent}",
    ]);
    if !o.status.success() {
        return Vec::new();
    }
    let mut v: Vec<_> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].to_string(),
                f[3].to_string(),
                f[4].to_string(),
            )
        })
        .collect();
    v.sort_by(|a, b| (&a.4, &a.0).cmp(&(&b.4, &b.0)));
    v
}

fn project(spec: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("oxtfleet")
        .tempdir()
        .unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir_all(root.join(".oxtail")).unwrap();
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join(".oxtail/fleet.json"), spec).unwrap();
    (dir, root)
}

fn fleet(root: &Path, server: &TmuxServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oxtail"))
        .arg("fleet")
        .args(args)
        .arg("--tmux-socket")
        .arg(server.name())
        .current_dir(root)
        .env_remove("TMUX")
        .env_remove("OXTAIL_TMUX_SOCKET")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "fleet failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

const SPEC: &str = r#"{
  "name": "t",
  "session": "flt",
  "agents": [
    {"name": "a", "client": "claude", "command": "sleep 600", "window": "w1"},
    {"name": "b", "client": "codex", "command": "sleep 601", "window": "w1", "cwd": "sub"},
    {"name": "c", "client": "claude", "command": "sh -c 'sleep 602' x", "prompt": "hello there"}
  ]
}"#;

#[test]
fn up_then_sync_is_idempotent_and_sync_converges() {
    let server = TmuxServer::new();
    let (_tmp, root) = project(SPEC);

    // plan and a dry-run up change nothing.
    let out = ok(fleet(&root, &server, &["plan"]));
    assert!(out.contains("+ create    a in flt:w1"), "{out}");
    assert!(out.contains("$ sh -c 'sleep 602' x 'hello there'"), "{out}");
    assert!(out.contains("dry run: 3 changes"), "{out}");
    ok(fleet(&root, &server, &["up"]));
    assert!(
        list_panes(&server).is_empty(),
        "a dry run started tmux panes"
    );

    let out = ok(fleet(&root, &server, &["up", "--apply"]));
    assert!(out.contains("created a"), "{out}");
    let panes = list_panes(&server);
    let summary: Vec<(&str, &str, &str, &str)> = panes
        .iter()
        .map(|p| (p.1.as_str(), p.2.as_str(), p.3.as_str(), p.4.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("flt", "w1", "t", "a"),
            ("flt", "w1", "t", "b"),
            ("flt", "c", "t", "c")
        ]
    );
    // b runs in its cwd.
    let b_cwd = server.ok(&[
        "display-message",
        "-p",
        "-t",
        &panes[1].0,
        "#{pane_current_path}",
    ]);
    assert_eq!(b_cwd.trim(), root.join("sub").display().to_string());

    // sync and up again: nothing to change, same panes.
    let out = ok(fleet(&root, &server, &["sync", "--apply"]));
    assert!(out.contains("nothing to change"), "{out}");
    let out = ok(fleet(&root, &server, &["up", "--apply"]));
    assert!(out.contains("nothing to change"), "{out}");
    assert_eq!(list_panes(&server), panes);

    // Change c's command and drop b: sync recreates c, removes b, keeps a.
    let spec2 = SPEC
        .replace("sleep 602", "sleep 603")
        .replace(
            r#"    {"name": "b", "client": "codex", "command": "sleep 601", "window": "w1", "cwd": "sub"},
"#,
            "",
        );
    std::fs::write(root.join(".oxtail/fleet.json"), spec2).unwrap();
    let out = ok(fleet(&root, &server, &["plan"]));
    assert!(out.contains("- remove    b"), "{out}");
    assert!(out.contains("recreate: the spec changed"), "{out}");
    assert!(out.contains("= keep      a"), "{out}");
    ok(fleet(&root, &server, &["sync", "--apply"]));
    let after = list_panes(&server);
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[0], panes[0], "a untouched");
    assert_eq!(after[1].4, "c");
    assert_ne!(after[1].0, panes[2].0, "c recreated in a new pane");
    let out = ok(fleet(&root, &server, &["sync", "--apply"]));
    assert!(out.contains("nothing to change"), "{out}");
}

#[test]
fn reset_removes_only_marked_panes() {
    let server = TmuxServer::new();
    let (_tmp, root) = project(SPEC);
    ok(fleet(&root, &server, &["up", "--apply"]));
    let fleet_panes = list_panes(&server);
    assert_eq!(fleet_panes.len(), 3);
    // A person adds a pane to the fleet's window and a window of their own.
    let hand = server.ok(&[
        "split-window",
        "-d",
        "-t",
        &fleet_panes[0].0,
        "-P",
        "-F",
        "#{pane_id}",
        "sleep 700",
    ]);
    let hand = hand.trim().to_string();
    let mine = server.ok(&[
        "new-window",
        "-d",
        "-t",
        "flt:",
        "-n",
        "mine",
        "-P",
        "-F",
        "#{pane_id}",
        "sleep 701",
    ]);
    let mine = mine.trim().to_string();
    // The hand-made pane inherits no mark.
    let mark = server.ok(&["display-message", "-p", "-t", &hand, "#{@oxtail_fleet}"]);
    assert_eq!(mark.trim(), "");

    // Dry run first: everything stays.
    let out = ok(fleet(&root, &server, &["reset"]));
    assert!(out.contains("dry run: 3 changes"), "{out}");
    assert_eq!(list_panes(&server).len(), 5);

    let out = ok(fleet(&root, &server, &["reset", "--apply"]));
    assert!(out.contains("removed a"), "{out}");
    let left: Vec<String> = list_panes(&server).into_iter().map(|p| p.0).collect();
    let mut want = vec![hand.clone(), mine.clone()];
    want.sort();
    let mut got = left.clone();
    got.sort();
    assert_eq!(got, want, "only the hand-made panes survive");
    let out = ok(fleet(&root, &server, &["reset", "--apply"]));
    assert!(out.contains("nothing to change"), "{out}");
}

#[test]
fn malformed_specs_give_clear_errors_and_touch_nothing() {
    let server = TmuxServer::new();
    let cases: &[(&str, &[&str])] = &[
        (
            r#"{"name":"t","agents":[{"name":"a","client":"claude","comand":"x"}]}"#,
            &[
                "at `agents[0].comand`",
                "unknown field `comand`",
                "expected one of",
            ],
        ),
        (
            r#"{"name":"t","agents":[{"name":"a","client":"gpt"}]}"#,
            &["agents[0].client", "unknown variant `gpt`", "`claude`"],
        ),
        (
            r#"{"name":"t","agents":[{"name":"a","client":"claude"},{"name":"a","client":"codex","cwd":"nope"}]}"#,
            &[
                "agents[1].name: `a` is already the name of agents[0]",
                "agents[1].cwd:",
                "is not a directory",
            ],
        ),
        (
            r#"{"name":"t","agents":[]}"#,
            &["agents: the fleet has no agents"],
        ),
        (
            r#"{"name":"t","agents":[{"name":"a",}]}"#,
            &["line 1", "column"],
        ),
        (
            r#"{"agents":[{"name":"a","client":"claude"}]}"#,
            &["missing field `name`"],
        ),
        (
            r#"{"name":"t","colour":"red","agents":[]}"#,
            &["unknown field `colour`"],
        ),
    ];
    for (spec, wants) in cases {
        let (_tmp, root) = project(spec);
        for op in ["plan", "up", "sync", "reset"] {
            let o = fleet(&root, &server, &[op, "--apply"]);
            assert!(!o.status.success(), "{op} accepted {spec}");
            let e = stderr(&o);
            assert!(e.contains("fleet.json"), "the error names the file: {e}");
            for w in *wants {
                assert!(e.contains(w), "{op}: missing {w:?} in:\n{e}");
            }
        }
    }
    // No file at all.
    let dir = tempfile::tempdir().unwrap();
    let o = fleet(dir.path(), &server, &["up"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot read the fleet file"),
        "{}",
        stderr(&o)
    );
    assert!(list_panes(&server).is_empty(), "nothing was started");
}
