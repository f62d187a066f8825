//! File-conflict awareness through the real `oxtail hook` processes, real
//! shims and the real daemon: touches recorded from PreToolUse/PostToolUse
//! (Claude Code edit tools, Codex `apply_patch`), the warning before a
//! peer's file is edited (and the notice the peer gets), `OXTAIL_CONFLICT`
//! decisions, and `claim_files` / `release_files` / `list_claims` leases.

use oxtail_tests::e2e;
use oxtail_tests::harness::{git, AgentOpts, Instance};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

fn run_hook(ox: &Instance, event: &str, payload: &Value, env: &[(&str, String)]) -> Output {
    e2e::run_hook(ox, &["hook", event], payload, env).unwrap()
}

/// The hook's stdout JSON (`None` when it printed nothing).
fn out(o: &Output) -> Option<Value> {
    e2e::hook_json(o)
}

fn context(o: &Output) -> String {
    out(o)
        .and_then(|v| {
            v["hookSpecificOutput"]["additionalContext"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// A Claude Code tool hook payload (shape of the 2.1.329 fixtures).
fn tool(event: &str, session: &str, cwd: &Path, name: &str, input: Value) -> Value {
    json!({
        "session_id": session,
        "transcript_path": format!("/nonexistent/{session}.jsonl"),
        "cwd": cwd,
        "permission_mode": "bypassPermissions",
        "hook_event_name": event,
        "tool_name": name,
        "tool_input": input,
        "tool_use_id": "toolu_1",
    })
}

struct Claude<'a> {
    ox: &'a Instance,
    session: &'static str,
    env: Vec<(&'static str, String)>,
    cwd: std::path::PathBuf,
}

impl Claude<'_> {
    fn edit(&self, event: &str, file: &str) -> Output {
        let p = tool(
            event,
            self.session,
            &self.cwd,
            "Edit",
            json!({"file_path": self.cwd.join(file), "old_string": "a", "new_string": "b"}),
        );
        let ev = if event == "PreToolUse" {
            "pre-tool-use"
        } else {
            "post-tool-use"
        };
        run_hook(self.ox, ev, &p, &self.env)
    }
    fn edited(&self, file: &str) {
        assert_eq!(out(&self.edit("PreToolUse", file)), None);
        assert_eq!(out(&self.edit("PostToolUse", file)), None);
    }
    fn bash(&self) -> Output {
        let p = tool(
            "PreToolUse",
            self.session,
            &self.cwd,
            "Bash",
            json!({"command": "ls"}),
        );
        run_hook(self.ox, "pre-tool-use", &p, &self.env)
    }
    fn end(&self) {
        let mut p = tool("SessionEnd", self.session, &self.cwd, "", json!({}));
        p["reason"] = json!("other");
        run_hook(self.ox, "session-end", &p, &self.env);
    }
    fn with(&self, k: &'static str, v: &str) -> Claude<'_> {
        let mut env = self.env.clone();
        env.push((k, v.to_string()));
        Claude {
            ox: self.ox,
            session: self.session,
            env,
            cwd: self.cwd.clone(),
        }
    }
}

fn claude<'a>(ox: &'a Instance, session: &'static str, pid: Option<u32>, cwd: &Path) -> Claude<'a> {
    Claude {
        ox,
        session,
        env: vec![
            ("CLAUDECODE", "1".into()),
            ("CLAUDE_PID", pid.unwrap().to_string()),
        ],
        cwd: cwd.to_path_buf(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_of_a_peers_file_is_warned_and_the_peer_learns() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    a.ok(
        "set_my_state",
        json!({"purpose": "refactoring the parser", "name": "alice"}),
    )
    .await
    .unwrap();
    b.ok(
        "set_my_state",
        json!({"purpose": "fixing tests", "name": "bob"}),
    )
    .await
    .unwrap();
    let ha = claude(&ox, "sess-a", a.pid, &repo);
    let hb = claude(&ox, "sess-b", b.pid, &repo);

    ha.edited("src/a.rs");
    // B's edit of another file: nothing to say.
    hb.edited("src/other.rs");
    // B's edit of A's file: the warning names A, what it did, its card and
    // how to reach it.
    let w = context(&hb.edit("PreToolUse", "src/a.rs"));
    assert!(w.contains("`alice` (claude-code) edited `src/a.rs`"), "{w}");
    assert!(w.contains("refactoring the parser"), "{w}");
    assert!(w.contains("ask_peer {target: \"alice\"}"), "{w}");
    // A learns at its next hook, once.
    let n = context(&ha.bash());
    assert!(
        n.contains("`bob` (claude-code) is about to edit `src/a.rs`, which you edited"),
        "{n}"
    );
    assert_eq!(out(&ha.bash()), None);
    // The rows and list_claims show the edits.
    let rows = b.ok("list_project_sessions", json!({})).await.unwrap();
    let row_a = rows["sessions"]
        .as_array()
        .or_else(|| rows["agents"].as_array())
        .unwrap()
        .iter()
        .find(|r| r["client_session_id"] == "sess-a")
        .unwrap()
        .clone();
    assert_eq!(row_a["editing"][0]["path"], "src/a.rs", "{row_a}");
    let lc = b
        .ok("list_claims", json!({"path": "src/a.rs"}))
        .await
        .unwrap();
    let who: Vec<&str> = lc["recent_edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["agent"].as_str().unwrap())
        .collect();
    assert!(who.contains(&"alice") && who.contains(&"bob"), "{lc}");

    // Modes: deny blocks with the reason (and no mail or context field);
    // ask asks.
    let d = out(&hb
        .with("OXTAIL_CONFLICT", "deny")
        .edit("PreToolUse", "src/a.rs"))
    .unwrap();
    let h = &d["hookSpecificOutput"];
    assert_eq!(h["permissionDecision"], "deny", "{d}");
    assert!(
        h["permissionDecisionReason"]
            .as_str()
            .unwrap()
            .contains("alice"),
        "{d}"
    );
    assert!(h.get("additionalContext").is_none(), "{d}");
    let q = out(&hb
        .with("OXTAIL_CONFLICT", "ask")
        .edit("PreToolUse", "src/a.rs"))
    .unwrap();
    assert_eq!(q["hookSpecificOutput"]["permissionDecision"], "ask", "{q}");
    // off: no check at all.
    assert_eq!(
        out(&hb
            .with("OXTAIL_CONFLICT", "off")
            .edit("PreToolUse", "src/a.rs")),
        None
    );

    // `oxtail status` shows the files section, with the conflict marked.
    let st = ox
        .command()
        .arg("status")
        .current_dir(&repo)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(text.contains("! src/a.rs  alice  edited"), "{text}");
    assert!(text.contains("! src/a.rs  bob  edited"), "{text}");
    assert!(text.contains("  src/other.rs  bob  edited"), "{text}");
    // The comms log marks the conflict warnings (⚠), with what each did.
    assert!(
        text.contains(
            "bob → alice  ⚠  file conflict: about to edit `src/a.rs`, which the peer edited"
        ),
        "{text}"
    );
    assert!(
        text.contains("(warned)") && text.contains("(edit denied)"),
        "{text}"
    );
    let js = ox
        .command()
        .args(["status", "--json"])
        .current_dir(&repo)
        .output()
        .unwrap();
    let snap: Value = serde_json::from_slice(&js.stdout).expect("status --json");
    let kinds: Vec<&str> = snap["comms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "conflict")
        .map(|e| e["body_preview"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 3, "warn, deny, ask: {snap}");
    assert!(kinds[2].ends_with("(user asked)"), "{kinds:?}");

    // Once A ends, its touches go: no warning.
    ha.end();
    assert_eq!(out(&hb.edit("PreToolUse", "src/a.rs")), None);
}

/// The daemon, restarted after a kill -9, still warns of an edit made
/// before it (edits are journaled at PostToolUse), and forgets the edits of
/// an agent that ended before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_warn_across_a_daemon_crash() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    let c = ox.agent(AgentOpts::claude(&repo, "sess-c")).await.unwrap();
    a.ok("set_my_state", json!({"name": "alice"}))
        .await
        .unwrap();
    c.ok("set_my_state", json!({"name": "carol"}))
        .await
        .unwrap();
    let ha = claude(&ox, "sess-a", a.pid, &repo);
    let hb = claude(&ox, "sess-b", b.pid, &repo);
    let hc = claude(&ox, "sess-c", c.pid, &repo);
    ha.edited("src/a.rs");
    hc.edited("src/c.rs");
    hc.end();
    // A PreToolUse alone (the edit not made yet) is not journaled.
    assert_eq!(out(&ha.edit("PreToolUse", "src/pre-only.rs")), None);

    ox.kill_daemon().unwrap();
    // Wait on state: a fresh daemon, recovered from the journal, answers.
    let end = Instant::now() + Duration::from_secs(10);
    while !b
        .call("list_claims", json!({}))
        .await
        .is_ok_and(|v| v["ok"] == true)
    {
        assert!(Instant::now() < end, "no answer after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let w = context(&hb.edit("PreToolUse", "src/a.rs"));
    assert!(w.contains("`alice` (claude-code) edited `src/a.rs`"), "{w}");
    assert_eq!(out(&hb.edit("PreToolUse", "src/c.rs")), None, "carol ended");
    assert_eq!(out(&hb.edit("PreToolUse", "src/pre-only.rs")), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touches_expire_after_the_window() {
    let ox = Instance::with_env(BIN, &[("OXTAIL_TOUCH_WINDOW_S", "1")]);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    a.ok("set_my_state", json!({"name": "alice"}))
        .await
        .unwrap();
    let ha = claude(&ox, "sess-a", a.pid, &repo);
    let hb = claude(&ox, "sess-b", b.pid, &repo);
    ha.edited("src/a.rs");
    let t0 = Instant::now();
    let w = context(&hb.edit("PreToolUse", "src/a.rs"));
    // The warning can only be missing if this machine took over a second.
    assert!(
        w.contains("alice") || t0.elapsed() > Duration::from_millis(900),
        "{w}"
    );
    // Wait on state: until list_claims shows no edit of A's.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let lc = b.ok("list_claims", json!({})).await.unwrap();
        if !lc["recent_edits"].to_string().contains("sess-a") {
            break;
        }
        assert!(Instant::now() < end, "A's edit never expired: {lc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!context(&hb.edit("PreToolUse", "src/a.rs")).contains("alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_apply_patch_records_every_file_and_codex_cannot_ask() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let mut copts = AgentOpts::claude(&repo, "thread-c");
    copts.env = vec![("CODEX_THREAD_ID".into(), "thread-c".into())];
    copts.client_name = "codex-mcp-client".into();
    let c = ox.agent(copts).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    b.ok("set_my_state", json!({"name": "bob"})).await.unwrap();
    c.ok(
        "set_my_state",
        json!({"purpose": "patching", "name": "codex-1"}),
    )
    .await
    .unwrap();
    let patch = "*** Begin Patch\n*** Add File: src/new.rs\n+pub fn n() {}\n*** Update File: src/old.rs\n*** Move to: src/renamed.rs\n@@\n-a\n+b\n*** Delete File: docs/gone.md\n*** Update File: src/lib.rs\n@@\n-x\n+y\n*** End Patch\n";
    // Codex 0.169 hook payload shape (fixtures/codex-0.169.0/hooks), with
    // the apply_patch tool's input.
    let payload = |event: &str| {
        json!({
            "session_id": "thread-c",
            "turn_id": "turn-1",
            "transcript_path": "/nonexistent/rollout.jsonl",
            "cwd": repo,
            "hook_event_name": event,
            "model": "gpt-5.5",
            "permission_mode": "bypassPermissions",
            "tool_name": "apply_patch",
            "tool_input": {"command": patch},
            "tool_use_id": "call_1",
        })
    };
    let cenv = vec![("CODEX_HOME", "/nonexistent".to_string())];
    assert_eq!(
        out(&run_hook(
            &ox,
            "pre-tool-use",
            &payload("PreToolUse"),
            &cenv
        )),
        None
    );
    let lc = b.ok("list_claims", json!({})).await.unwrap();
    let mut paths: Vec<&str> = lc["recent_edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "docs/gone.md",
            "src/lib.rs",
            "src/new.rs",
            "src/old.rs",
            "src/renamed.rs"
        ],
        "{lc}"
    );
    // B edits the renamed file: warned about codex-1.
    let hb = claude(&ox, "sess-b", b.pid, &repo);
    let w = context(&hb.edit("PreToolUse", "src/renamed.rs"));
    assert!(
        w.contains("`codex-1` (codex) edited `src/renamed.rs`"),
        "{w}"
    );
    context(&hb.edit("PreToolUse", "src/lib.rs"));
    context(&hb.edit("PostToolUse", "src/lib.rs"));
    // Codex's next patch of src/lib.rs under ask: Codex has no ask, so a
    // warning that says so; under deny, Codex's deny.
    let mut ask_env = cenv.clone();
    ask_env.push(("OXTAIL_CONFLICT", "ask".into()));
    let a = out(&run_hook(
        &ox,
        "pre-tool-use",
        &payload("PreToolUse"),
        &ask_env,
    ))
    .unwrap();
    let h = &a["hookSpecificOutput"];
    assert!(h.get("permissionDecision").is_none(), "{a}");
    let ctx = h["additionalContext"].as_str().unwrap();
    assert!(
        ctx.contains("only a warning") && ctx.contains("`bob`"),
        "{a}"
    );
    let mut deny_env = cenv.clone();
    deny_env.push(("OXTAIL_CONFLICT", "deny".into()));
    let d = out(&run_hook(
        &ox,
        "pre-tool-use",
        &payload("PreToolUse"),
        &deny_env,
    ))
    .unwrap();
    assert_eq!(d["hookSpecificOutput"]["permissionDecision"], "deny", "{d}");
    assert!(!d["hookSpecificOutput"]["permissionDecisionReason"]
        .as_str()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_path_in_another_worktree_is_information_not_a_conflict() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let wt = ox.dir.path().join("work").join("proj-feat");
    git(
        &repo,
        &["worktree", "add", "-q", "-b", "feat", wt.to_str().unwrap()],
    );
    let a = ox.agent(AgentOpts::claude(&wt, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    claude(&ox, "sess-a", a.pid, &wt).edited("src/a.rs");
    let hb = claude(&ox, "sess-b", b.pid, &repo);
    let d = out(&hb
        .with("OXTAIL_CONFLICT", "deny")
        .edit("PreToolUse", "src/a.rs"))
    .unwrap();
    let h = &d["hookSpecificOutput"];
    assert!(h.get("permissionDecision").is_none(), "not a conflict: {d}");
    let ctx = h["additionalContext"].as_str().unwrap();
    assert!(ctx.contains("also being edited on branch `feat`"), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_conflict_coexist_expire_release_and_survive_a_crash() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    a.ok(
        "set_my_state",
        json!({"purpose": "db work", "name": "alice"}),
    )
    .await
    .unwrap();

    // Bad input: an error naming the field, and no lease.
    for (args, field) in [
        (json!({"paths": ["../x"]}), "paths"),
        (json!({"paths": ["**"]}), "paths"),
        (json!({"paths": ["/etc/passwd"]}), "paths"),
        (json!({"paths": []}), "paths"),
        (json!({"paths": ["src/a.rs"], "ttl_s": 0}), "ttl_s"),
        (json!({"paths": ["src/a.rs"], "ttl_s": 86401}), "ttl_s"),
    ] {
        let e = a
            .schema_error("claim_files", args.clone())
            .await
            .unwrap_or_else(|e| panic!("{args}: {e}"));
        assert!(e.contains(&format!("`{field}`")), "{args}: {e}");
    }
    let lc = b.ok("list_claims", json!({})).await.unwrap();
    assert_eq!(lc["claims"], json!([]), "{lc}");

    // Exclusive against exclusive: the second names the holder.
    let g = a
        .ok(
            "claim_files",
            json!({"paths": ["src/db/**"], "exclusive": true, "reason": "migrating"}),
        )
        .await
        .unwrap();
    assert_eq!(g["granted"][0]["path"], "src/db/**", "{g}");
    let c = b
        .ok(
            "claim_files",
            json!({"paths": ["src/db/pool.rs"], "exclusive": true}),
        )
        .await
        .unwrap();
    assert_eq!(c["all_granted"], false, "{c}");
    assert_eq!(c["conflicts"][0]["holder"], "alice", "{c}");
    // Shared against shared coexist.
    a.ok("claim_files", json!({"paths": ["README.md"]}))
        .await
        .unwrap();
    let s = b
        .ok("claim_files", json!({"paths": ["README.md"]}))
        .await
        .unwrap();
    assert_eq!(s["all_granted"], true, "{s}");
    // The lease warns before B's edit too.
    let hb = claude(&ox, "sess-b", b.pid, &repo);
    let w = context(&hb.edit("PreToolUse", "src/db/pool.rs"));
    assert!(
        w.contains("`alice` (claude-code) holds an exclusive lease on `src/db/**`"),
        "{w}"
    );
    assert!(w.contains("migrating"), "{w}");

    // Survives kill -9 (journaled).
    ox.kill_daemon().unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let lc = loop {
        match b
            .call("list_claims", json!({"path": "src/db/pool.rs"}))
            .await
        {
            Ok(v) if v["ok"] == true => break v,
            _ => assert!(Instant::now() < end, "no answer after the restart"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(lc["claims"][0]["holder"], "alice", "{lc}");

    // TTL expiry: a 1 s lease lapses.
    b.ok(
        "claim_files",
        json!({"paths": ["Cargo.toml"], "exclusive": true, "ttl_s": 1}),
    )
    .await
    .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let r = a
            .ok(
                "claim_files",
                json!({"paths": ["Cargo.toml"], "exclusive": true}),
            )
            .await
            .unwrap();
        if r["all_granted"] == true {
            break;
        }
        assert!(Instant::now() < end, "the 1 s lease never lapsed: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Release, and release on end.
    let r = a
        .ok("release_files", json!({"paths": ["README.md"]}))
        .await
        .unwrap();
    assert_eq!(r["released"], json!(["README.md"]), "{r}");
    claude(&ox, "sess-a", a.pid, &repo).end();
    let c = b
        .ok(
            "claim_files",
            json!({"paths": ["src/db/pool.rs"], "exclusive": true}),
        )
        .await
        .unwrap();
    assert_eq!(c["all_granted"], true, "A ended: its leases went: {c}");
}

/// `git commit` in `dir` as the guard sees it (this instance's daemon).
fn commit(ox: &Instance, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = std::process::Command::new("git");
    c.arg("commit")
        .arg("-q")
        .arg("-m")
        .arg("change")
        .args(extra);
    c.current_dir(dir)
        .env("OXTAIL_HOME", ox.home())
        .env_remove("OXTAIL_SOCKET")
        .env_remove("OXTAIL_GUARD")
        .env_remove("CLAUDE_CODE_SESSION_ID")
        .env_remove("CODEX_THREAD_ID")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stage(dir: &Path, file: &str, body: &str) {
    let p = dir.join(file);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, body).unwrap();
    git(dir, &["add", file]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_refuses_a_commit_under_a_peers_exclusive_lease() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let wt = ox.dir.path().join("work").join("proj-feat");
    git(
        &repo,
        &["worktree", "add", "-q", "-b", "feat", wt.to_str().unwrap()],
    );
    // A pre-existing hook that leaves a mark each time it runs.
    let mark = ox.dir.path().join("chained-ran");
    let hooks = repo.join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let pre = hooks.join("pre-commit");
    std::fs::write(
        &pre,
        format!("#!/bin/sh\necho ran >> '{}'\n", mark.display()),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&pre)
        .status()
        .unwrap();
    // Installed from the linked work tree: lands in the shared hooks dir.
    let inst = ox
        .command()
        .args(["guard", "install", "--json"])
        .current_dir(&wt)
        .output()
        .unwrap();
    assert!(
        inst.status.success(),
        "{}",
        String::from_utf8_lossy(&inst.stderr)
    );
    let v: Value = serde_json::from_slice(&inst.stdout).unwrap();
    assert_eq!(v["chained"], true, "{v}");
    assert!(hooks.join("pre-commit.oxtail-chained").exists());

    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    a.ok("set_my_state", json!({"purpose": "db", "name": "alice"}))
        .await
        .unwrap();
    a.ok(
        "claim_files",
        json!({"paths": ["src/db.rs"], "exclusive": true, "reason": "schema change"}),
    )
    .await
    .unwrap();

    stage(&repo, "src/db.rs", "x\n");
    let o = commit(&ox, &repo, &[], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "refused: {err}");
    assert!(
        err.contains("src/db.rs: held by `alice`") && err.contains("schema change"),
        "{err}"
    );
    assert!(mark.exists(), "the chained hook still runs");
    // The holder itself may commit; warn mode warns; --no-verify bypasses.
    let own = commit(&ox, &repo, &[], &[("CLAUDE_CODE_SESSION_ID", "sess-a")]);
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    stage(&repo, "src/db.rs", "x2\n");
    let w = commit(&ox, &repo, &[], &[("OXTAIL_GUARD", "warn")]);
    let err = String::from_utf8_lossy(&w.stderr);
    assert!(
        w.status.success() && err.contains("held by `alice`"),
        "{err}"
    );
    stage(&repo, "src/db.rs", "x3\n");
    std::fs::remove_file(&mark).unwrap();
    let nv = commit(&ox, &repo, &["--no-verify"], &[]);
    assert!(
        nv.status.success(),
        "{}",
        String::from_utf8_lossy(&nv.stderr)
    );
    assert!(!mark.exists(), "--no-verify skips every pre-commit hook");
    // The same path in the linked work tree is another file: allowed.
    stage(&wt, "src/db.rs", "y\n");
    let o = commit(&ox, &wt, &[], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Uninstall restores the earlier hook.
    let un = ox
        .command()
        .args(["guard", "uninstall"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(un.status.success());
    assert!(std::fs::read_to_string(&pre).unwrap().contains("echo ran"));
    assert!(!hooks.join("pre-commit.oxtail-chained").exists());
}
