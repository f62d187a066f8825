//! Hook input and output against every payload captured from the real
//! clients (`shared/fixtures/*/hooks/`, Claude Code 2.1.329 and Codex
//! 0.169.0), plus malformed input, the subagent payload, `stop_hook_active`,
//! budget handling and output rendering.

use oxtail_hooks::hook::{
    build_hook_call, idle_wait_applies, idle_wait_request, idle_wait_step, run_hook, HookOutcome,
    IdleStep, DEFAULT_IDLE_WAIT_TIMEOUT_MS, ENV_BUDGET, ENV_IDLE_TIMEOUT,
};
use oxtail_proto::wire::{HookAnswer, HookCall, HookEvent, IdleWaitAnswer, Reply, Request};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

struct Fixture {
    name: String,
    stdin: Value,
    env: BTreeMap<String, String>,
    ppid: u32,
}

fn load_fixtures() -> Vec<Fixture> {
    let root = fixtures_root();
    let mut dirs = vec![
        root.join("claude-code-2.1.329/hooks"),
        root.join("codex-0.169.0/hooks"),
        root.join("codex-0.169.0/tui/hooks"),
    ];
    dirs.sort();
    let mut out = Vec::new();
    for d in dirs {
        let mut files: Vec<_> = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("fixtures at {}: {e}", d.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            let env = v["env"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Fixture {
                name: f.strip_prefix(&root).unwrap().display().to_string(),
                stdin: v["stdin"].clone(),
                env,
                ppid: v["ppid"].as_u64().unwrap_or(0) as u32,
            });
        }
    }
    assert!(
        out.len() >= 30,
        "expected every fixture, found {}",
        out.len()
    );
    out
}

fn event_of(name: &str) -> HookEvent {
    serde_json::from_value(Value::String(name.to_string())).unwrap()
}

/// Runs the hook with a daemon that records the request and answers with
/// `answer`.
fn run_with(
    event: HookEvent,
    stdin: &[u8],
    env: &BTreeMap<String, String>,
    ppid: u32,
    answer: Result<Reply, String>,
) -> (HookOutcome, Vec<Request>) {
    let mut seen = Vec::new();
    let out = run_hook(event, stdin, env, ppid, &mut |req| {
        seen.push(req);
        answer.clone()
    });
    (out, seen)
}

fn mail(text: &str, delivered: usize, remaining: usize) -> Result<Reply, String> {
    Ok(Reply::Ok {
        value: serde_json::to_value(HookAnswer {
            deliver: Some(text.to_string()),
            delivered,
            remaining,
            handover: Some(7),
            ..HookAnswer::default()
        })
        .unwrap(),
    })
}

fn only_call(seen: &[Request]) -> &HookCall {
    assert_eq!(seen.len(), 1, "one daemon request");
    match &seen[0] {
        Request::Hook(c) => c,
        other => panic!("expected a hook request, got {other:?}"),
    }
}

#[test]
fn every_fixture_is_forwarded_and_answered_in_the_clients_format() {
    let text = "PEER MAIL \"quoted\"\nline two ✉";
    for fx in load_fixtures() {
        let event = event_of(fx.stdin["hook_event_name"].as_str().unwrap());
        let stdin = serde_json::to_vec(&fx.stdin).unwrap();
        let (out, seen) = run_with(event, &stdin, &fx.env, fx.ppid, mail(text, 1, 0));
        let call = only_call(&seen);
        let ctx = &fx.name;

        // Forwarded faithfully.
        assert_eq!(call.event, event, "{ctx}");
        assert_eq!(call.ppid, fx.ppid, "{ctx}");
        assert_eq!(call.payload["session_id"], fx.stdin["session_id"], "{ctx}");
        assert_eq!(call.payload["cwd"], fx.stdin["cwd"], "{ctx}");
        assert_eq!(
            call.payload.get("tool_response"),
            None,
            "{ctx}: bulk trimmed"
        );
        for k in ["tool_name", "source", "stop_hook_active", "transcript_path"] {
            assert_eq!(call.payload.get(k), fx.stdin.get(k), "{ctx}: {k}");
        }
        if let Some(fp) = fx.stdin["tool_input"].get("file_path") {
            assert_eq!(&call.payload["tool_input"]["file_path"], fp, "{ctx}");
        }
        let expected_client = if ctx.starts_with("codex") {
            "codex"
        } else {
            "claude-code"
        };
        assert_eq!(call.client, expected_client, "{ctx}");
        // Only client-identifying variables travel; never messaging tokens.
        for k in call.env.keys() {
            assert!(
                oxtail_proto::wire::CLIENT_ENV_VARS.contains(&k.as_str()),
                "{ctx}: forwarded {k}"
            );
        }
        if let Some(pid) = fx.env.get("CLAUDE_PID") {
            assert_eq!(call.env.get("CLAUDE_PID"), Some(pid), "{ctx}");
        }
        assert!(
            !call.env.contains_key("CLAUDE_CODE_MESSAGING_TOKEN"),
            "{ctx}"
        );

        // The delivery decision and the rendered answer.
        let stop_active = fx.stdin["stop_hook_active"] == json!(true);
        match event {
            HookEvent::PreToolUse => {
                assert_eq!(call.deliver_budget_chars, Some(9000), "{ctx}");
                let v: Value = serde_json::from_str(out.stdout.as_deref().unwrap()).unwrap();
                assert_eq!(
                    v,
                    json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "additionalContext": text}}),
                    "{ctx}"
                );
            }
            HookEvent::Stop if !stop_active => {
                assert_eq!(call.deliver_budget_chars, Some(9000), "{ctx}");
                let v: Value = serde_json::from_str(out.stdout.as_deref().unwrap()).unwrap();
                assert_eq!(v, json!({"decision": "block", "reason": text}), "{ctx}");
            }
            _ => {
                assert_eq!(call.deliver_budget_chars, None, "{ctx}");
                assert_eq!(
                    out.stdout, None,
                    "{ctx}: a non-delivering event prints nothing"
                );
            }
        }
        assert_eq!(out.exit_code, 0, "{ctx}");
        assert_eq!(out.stderr, None, "{ctx}");
    }
}

#[test]
fn stop_after_rewake_does_not_block_again() {
    let fx = load_fixtures()
        .into_iter()
        .find(|f| f.name.ends_with("018-Stop-after-rewake.json"))
        .unwrap();
    assert_eq!(fx.stdin["stop_hook_active"], true);
    let stdin = serde_json::to_vec(&fx.stdin).unwrap();
    let (out, seen) = run_with(HookEvent::Stop, &stdin, &fx.env, 1, mail("x", 1, 0));
    // Still marks idle (the daemon is told), but asks for no mail.
    assert_eq!(only_call(&seen).deliver_budget_chars, None);
    assert_eq!(out.stdout, None);
    assert_eq!(out.exit_code, 0);
}

fn fixture_named(suffix: &str) -> Fixture {
    load_fixtures()
        .into_iter()
        .find(|f| f.name.ends_with(suffix))
        .unwrap_or_else(|| panic!("no fixture {suffix}"))
}

#[test]
fn subagent_tool_calls_get_no_mail() {
    let fx = fixture_named("claude-code-2.1.329/hooks/004-PreToolUse.json");
    let mut stdin = fx.stdin.clone();
    stdin["agent_id"] = json!("a1b2c3d4");
    stdin["agent_type"] = json!("general-purpose");
    let bytes = serde_json::to_vec(&stdin).unwrap();
    let (out, seen) = run_with(
        HookEvent::PreToolUse,
        &bytes,
        &fx.env,
        fx.ppid,
        mail("x", 1, 0),
    );
    let call = only_call(&seen);
    assert_eq!(call.deliver_budget_chars, None, "busy mark only");
    assert_eq!(call.payload["agent_id"], "a1b2c3d4");
    assert_eq!(out.stdout, None);
    // An explicit null agent_id is a main-agent call.
    stdin["agent_id"] = Value::Null;
    let bytes = serde_json::to_vec(&stdin).unwrap();
    let (_, seen) = run_with(HookEvent::PreToolUse, &bytes, &fx.env, 1, mail("x", 1, 0));
    assert_eq!(only_call(&seen).deliver_budget_chars, Some(9000));
}

#[test]
fn malformed_stdin_exits_0_silently_without_asking_the_daemon() {
    let fx = fixture_named("claude-code-2.1.329/hooks/002-PreToolUse.json");
    let good = serde_json::to_vec(&fx.stdin).unwrap();
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"   ".to_vec(),
        b"not json".to_vec(),
        b"[1,2]".to_vec(),
        b"\"a string\"".to_vec(),
        b"{}".to_vec(),
        br#"{"session_id": ""}"#.to_vec(),
        br#"{"session_id": 42}"#.to_vec(),
        vec![0xff, 0xfe, b'{'],
        good[..good.len() / 2].to_vec(),
    ];
    for input in inputs {
        for event in [
            HookEvent::SessionStart,
            HookEvent::PreToolUse,
            HookEvent::Stop,
            HookEvent::SessionEnd,
        ] {
            let (out, seen) = run_with(event, &input, &fx.env, 1, mail("x", 1, 0));
            assert!(
                seen.is_empty(),
                "{:?}: daemon was asked",
                String::from_utf8_lossy(&input)
            );
            assert_eq!(out.stdout, None);
            assert_eq!(out.stderr, None);
            assert_eq!(out.exit_code, 0);
            assert!(out.note.is_some(), "a reason is kept for OXTAIL_DEBUG_HOOK");
        }
    }
}

#[test]
fn daemon_failures_fail_open() {
    let fx = fixture_named("codex-0.169.0/hooks/004-PreToolUse.json");
    let stdin = serde_json::to_vec(&fx.stdin).unwrap();
    let answers = vec![
        Err("the daemon did not answer in time".to_string()),
        Ok(Reply::error("unsupported", "no hooks here")),
        Ok(Reply::Ok {
            value: json!("garbage"),
        }),
        Ok(Reply::Ok {
            value: json!({"deliver": 5}),
        }),
        mail("", 0, 0),
        mail("  \n", 0, 0),
        Ok(Reply::Ok {
            value: serde_json::to_value(HookAnswer::default()).unwrap(),
        }),
    ];
    for a in answers {
        let (out, seen) = run_with(HookEvent::PreToolUse, &stdin, &fx.env, 1, a.clone());
        assert_eq!(seen.len(), 1);
        assert_eq!(
            out,
            HookOutcome {
                note: out.note.clone(),
                ..HookOutcome::default()
            },
            "{a:?}"
        );
        assert!(out.note.is_some());
    }
}

#[test]
fn budget_comes_from_the_environment() {
    let fx = fixture_named("claude-code-2.1.329/hooks/010-Stop.json");
    let stdin = serde_json::to_vec(&fx.stdin).unwrap();
    let mut env = fx.env.clone();
    for (val, want) in [
        ("500", 500),
        ("bogus", 9000),
        ("0", 9000),
        ("-1", 9000),
        ("99999", 10_000),
    ] {
        env.insert(ENV_BUDGET.into(), val.into());
        let call = build_hook_call(HookEvent::Stop, &stdin, &env, 1).unwrap();
        assert_eq!(call.deliver_budget_chars, Some(want), "{val}");
    }
}

#[test]
fn delivered_text_is_printed_whole_and_verbatim() {
    // The daemon fills the budget and says how many wait; the hook must
    // neither cut nor re-wrap what was drained (it is gone from the inbox).
    let fx = fixture_named("codex-0.169.0/hooks/006-Stop.json");
    let stdin = serde_json::to_vec(&fx.stdin).unwrap();
    let body: String = "é\"\\\u{1F980}\t".repeat(1700);
    let text = format!("{body}\n[3 more peer messages are waiting]");
    let (out, _) = run_with(HookEvent::Stop, &stdin, &fx.env, 1, mail(&text, 4, 3));
    let v: Value = serde_json::from_str(out.stdout.as_deref().unwrap()).unwrap();
    assert_eq!(v["decision"], "block");
    assert_eq!(v["reason"].as_str().unwrap(), text);
    assert!(out.stdout.as_deref().unwrap().ends_with("}\n"));
    assert_eq!(
        out.stdout.as_deref().unwrap().lines().count(),
        1,
        "one JSON line"
    );
}

#[test]
fn bulky_payloads_are_slimmed_for_the_wire() {
    let fx = fixture_named("claude-code-2.1.329/hooks/004-PreToolUse.json");
    let mut stdin = fx.stdin.clone();
    stdin["tool_input"]["content"] = json!("x".repeat(2_000_000));
    stdin["tool_response"] = json!({"stdout": "y".repeat(2_000_000)});
    let bytes = serde_json::to_vec(&stdin).unwrap();
    let call = build_hook_call(HookEvent::PreToolUse, &bytes, &fx.env, 1).unwrap();
    let wire = serde_json::to_vec(&Request::Hook(call.clone())).unwrap();
    assert!(wire.len() < 8_000, "request is {} bytes", wire.len());
    assert_eq!(
        call.payload["tool_input"]["file_path"],
        "/home/user/project/hello.txt"
    );
    assert!(call.payload["tool_input"]["content"]
        .as_str()
        .unwrap()
        .ends_with('…'));
}

#[test]
fn idle_wait_request_from_the_stop_payload() {
    let fx = fixture_named("claude-code-2.1.329/hooks/016-Stop.json");
    let stdin = serde_json::to_vec(&fx.stdin).unwrap();
    let r = idle_wait_request(&stdin, &fx.env).unwrap();
    assert_eq!(r.session_id, "2c180f22-1e84-4821-9f7b-88a16c43e3e2");
    assert_eq!(r.client_pid, Some(19923));
    assert_eq!(r.timeout_ms, DEFAULT_IDLE_WAIT_TIMEOUT_MS);
    assert!(
        r.timeout_ms < 86_400_000,
        "exits before the one-day hook timeout"
    );
    assert_eq!(r.budget_chars, 9000);

    let mut env = fx.env.clone();
    env.insert(ENV_IDLE_TIMEOUT.into(), "1500".into());
    env.insert(ENV_BUDGET.into(), "700".into());
    env.insert("CLAUDE_PID".into(), "garbage".into());
    let r = idle_wait_request(&stdin, &env).unwrap();
    assert_eq!(
        (r.timeout_ms, r.budget_chars, r.client_pid),
        (1500, 700, None)
    );
    env.insert(ENV_IDLE_TIMEOUT.into(), "0".into());
    assert_eq!(
        idle_wait_request(&stdin, &env).unwrap().timeout_ms,
        DEFAULT_IDLE_WAIT_TIMEOUT_MS
    );

    assert!(idle_wait_request(b"{", &fx.env).is_err());
    assert!(idle_wait_request(b"{\"cwd\":\"/\"}", &fx.env).is_err());
}

#[test]
fn idle_wait_answers() {
    let ok = |a: IdleWaitAnswer| Reply::Ok {
        value: serde_json::to_value(a).unwrap(),
    };
    match idle_wait_step(ok(IdleWaitAnswer::Mail {
        deliver: "from peer".into(),
        delivered: 1,
        remaining: 0,
        handover: Some(9),
    })) {
        IdleStep::Exit(o) => {
            assert_eq!(o.exit_code, 2);
            assert_eq!(o.handover, Some(9), "printed mail is acked");
            assert_eq!(o.stderr.as_deref(), Some("from peer"));
            assert_eq!(o.stdout, None);
        }
        s => panic!("{s:?}"),
    }
    for a in [
        IdleWaitAnswer::Retired,
        IdleWaitAnswer::Ended,
        IdleWaitAnswer::Timeout,
        IdleWaitAnswer::Mail {
            deliver: String::new(),
            delivered: 0,
            remaining: 0,
            handover: None,
        },
    ] {
        match idle_wait_step(ok(a.clone())) {
            IdleStep::Exit(o) => {
                assert_eq!((o.exit_code, o.stdout, o.stderr), (0, None, None), "{a:?}")
            }
            s => panic!("{a:?}: {s:?}"),
        }
    }
    assert!(matches!(
        idle_wait_step(Reply::error("unavailable", "handing over")),
        IdleStep::Retry(_)
    ));
    assert!(matches!(
        idle_wait_step(Reply::error("unsupported", "old daemon")),
        IdleStep::Exit(HookOutcome { exit_code: 0, .. })
    ));
    assert!(matches!(
        idle_wait_step(Reply::Ok {
            value: json!({"outcome": "??"})
        }),
        IdleStep::Exit(HookOutcome { exit_code: 0, .. })
    ));
}

#[test]
fn idle_wait_stays_out_of_headless_runs() {
    // The fixtures were captured from `claude -p` (headless).
    let fx = fixture_named("claude-code-2.1.329/hooks/016-Stop.json");
    assert_eq!(fx.env["CLAUDE_CODE_ENTRYPOINT"], "sdk-cli");
    assert!(idle_wait_applies(&fx.env).unwrap_err().contains("headless"));
    // The interactive TUI sets `cli` (checked by hand with 2.1.329).
    let mut env = fx.env.clone();
    env.insert("CLAUDE_CODE_ENTRYPOINT".into(), "cli".into());
    assert_eq!(idle_wait_applies(&env), Ok(()));
    env.remove("CLAUDE_CODE_ENTRYPOINT");
    assert_eq!(idle_wait_applies(&env), Ok(()));
}
