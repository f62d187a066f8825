//! Fuzzes the hook stdin path of `oxtail hook <event>`
//! (`oxtail_hooks::run_hook`, which calls `hook::parse_stdin`,
//! `build_hook_call`, `slim_payload` and `render_delivery`), with a daemon
//! stand-in that answers like the real one.
//!
//! Input layout: `event: u8 | client: u8 | stdin bytes`
//! (event index into the six `HookEvent`s; client bit 0: Codex environment
//! instead of Claude Code's, bit 1: a custom `OXTAIL_HOOK_BUDGET_CHARS`,
//! bit 2: the daemon answers with mail, bit 3: the daemon is unreachable).
//!
//! Properties: no panic on any input; the request sent to the daemon fits
//! one client frame and survives a wire round trip; whatever is printed is
//! one line of JSON in the client's hook output format.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtail_proto::frame::{self, MAX_CLIENT_FRAME};
use oxtail_proto::{ClientFrame, HookEvent, Reply, Request};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const EVENTS: [HookEvent; 6] = [
    HookEvent::SessionStart,
    HookEvent::UserPromptSubmit,
    HookEvent::PreToolUse,
    HookEvent::PostToolUse,
    HookEvent::Stop,
    HookEvent::SessionEnd,
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let event = EVENTS[data[0] as usize % EVENTS.len()];
    let flags = data[1];
    let stdin = &data[2..];
    let mut env = BTreeMap::new();
    if flags & 1 == 0 {
        env.insert("CLAUDECODE".to_string(), "1".to_string());
        env.insert("CLAUDE_PID".to_string(), "4242".to_string());
    } else {
        env.insert("CODEX_HOME".to_string(), "/home/u/.codex".to_string());
    }
    if flags & 2 != 0 {
        env.insert(
            "OXTAIL_HOOK_BUDGET_CHARS".to_string(),
            format!("{}", data.len() * 37),
        );
    }
    let mut asked = 0;
    let out = oxtail_hooks::run_hook(event, stdin, &env, 4242, &mut |req: Request| {
        asked += 1;
        // What the hook would put on the wire.
        let bytes = frame::encode(&ClientFrame::Request {
            id: 1,
            request: req,
        });
        assert!(
            bytes.len() - 4 <= MAX_CLIENT_FRAME,
            "a hook request must fit a client frame"
        );
        let back: ClientFrame = frame::read_blocking(&mut &bytes[..], MAX_CLIENT_FRAME)
            .expect("the hook request decodes on the daemon side");
        assert!(matches!(
            back,
            ClientFrame::Request {
                request: Request::Hook(_),
                ..
            }
        ));
        if flags & 8 != 0 {
            return Err("the daemon did not answer in time".into());
        }
        let value = if flags & 4 != 0 {
            json!({"deliver": "<peer-message from=\"x\">hi ✓</peer-message>", "delivered": 1, "remaining": 0})
        } else {
            json!({"deliver": null, "delivered": 0, "remaining": 0})
        };
        Ok(Reply::Ok { value })
    });
    assert!(asked <= 1, "a hook asks the daemon at most once");
    if let Some(s) = &out.stdout {
        assert!(
            s.ends_with('\n') && s.trim_end().lines().count() == 1,
            "one line: {s:?}"
        );
        let v: Value = serde_json::from_str(s).expect("hook output is JSON");
        assert!(v.is_object());
    }
});
