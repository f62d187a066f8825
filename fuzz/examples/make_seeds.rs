//! Writes the committed seed corpora in `fuzz/seeds/<target>/` from real
//! encoders: wire frames from `oxtail_proto::frame::encode`, journals written
//! by `oxtail_journal::Journal`, hook payloads and transcript lines from the
//! captured fixtures in `../shared/fixtures` when present.
//!
//! Run: `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds`
//! (idempotent; rewrites the seed files).

use oxtail_journal::{Journal, Options};
use oxtail_proto::frame::encode;
use oxtail_proto::{ClientFrame, Ctl, Hello, Reply, Request, Role, ServerFrame, Welcome};
use serde_json::json;
use std::path::{Path, PathBuf};

fn seeds(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn frames() {
    let d = seeds("frame");
    let hello = encode(&ClientFrame::Hello(Hello::new(Role::Shim)));
    let send = encode(&ClientFrame::Request {
        id: 3,
        request: Request::Tool {
            name: "send_message".into(),
            args: json!({"target": "reviewer", "body": "please look at src/lib.rs ✓"}),
            meta: Some(json!({"threadId": "019a-thread"})),
        },
    });
    let ctl = encode(&ClientFrame::Request { id: 1, request: Request::Ctl(Ctl::Inbox { session_id: "s-1".into() }) });
    let cancel = encode(&ClientFrame::Cancel { id: 3 });
    let welcome = encode(&ServerFrame::Welcome(Welcome {
        protocol_major: 1,
        protocol_minor: 0,
        version: "0.1.0".into(),
        daemon_pid: 42,
    }));
    let reply = encode(&ServerFrame::Reply { id: 3, reply: Reply::Ok { value: json!({"ok": true, "message_id": "msg_1"}) } });
    let err = encode(&ServerFrame::Reply { id: 4, reply: Reply::error("storage", "no space left on device") });
    let event = encode(&ServerFrame::Event { id: 5, event: json!({"progress": 1}) });
    let refused = encode(&ServerFrame::Refused { reason: "protocol mismatch".into() });
    let mut session = hello.clone();
    session.extend_from_slice(&send);
    session.extend_from_slice(&cancel);
    let mut big = ((1u32 << 20) + 1).to_be_bytes().to_vec();
    big.extend_from_slice(b"{}");
    let mut truncated = send.clone();
    truncated.truncate(send.len() / 2);
    let mut not_json = 5u32.to_be_bytes().to_vec();
    not_json.extend_from_slice(b"nope!");
    for (name, bytes) in [
        ("hello", hello),
        ("send_message", send),
        ("ctl_inbox", ctl),
        ("cancel", cancel),
        ("welcome", welcome),
        ("reply_ok", reply),
        ("reply_error", err),
        ("event", event),
        ("refused", refused),
        ("session", session),
        ("oversized", big),
        ("truncated", truncated),
        ("not_json", not_json),
    ] {
        std::fs::write(d.join(name), bytes).unwrap();
    }
}

/// One fuzz input in the journal target's layout.
fn journal_input(flags: u8, n: u8, first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, n];
    v.extend_from_slice(&(first.len() as u16).to_le_bytes());
    v.extend_from_slice(first);
    v.extend_from_slice(second);
    v
}

fn journals() {
    let d = seeds("journal");
    let tmp = std::env::temp_dir().join(format!("oxtail-make-seeds-{}", std::process::id()));
    let payloads: Vec<Vec<u8>> = vec![
        br#"[{"cmd":"set_state","session_id":"a","purpose":"reviewing","name":"rev","at_ms":1}]"#.to_vec(),
        b"bb".to_vec(),
        br#"[{"cmd":"drain","session_id":"a","message_ids":["msg_1"],"via":"read_my_messages","at_ms":2}]"#.to_vec(),
        Vec::new(),
        b"fifth".to_vec(),
    ];
    // One segment, five records.
    let one = tmp.join("one");
    {
        let (mut j, _) = Journal::open(&one, Options::default(), |_| Ok(())).unwrap();
        for p in &payloads {
            j.append(p).unwrap();
        }
        j.sync().unwrap();
    }
    let seg1 = std::fs::read(one.join("journal-00000000000000000001.log")).unwrap();
    std::fs::write(d.join("one_segment"), journal_input(0, 0, &seg1, &[])).unwrap();
    std::fs::write(d.join("header_only"), journal_input(0, 0, &seg1[..8], &[])).unwrap();
    std::fs::write(d.join("torn_tail"), journal_input(0, 0, &seg1[..seg1.len() - 3], &[])).unwrap();
    let mut flipped = seg1.clone();
    let i = flipped.len() - 2;
    flipped[i] ^= 0x40;
    std::fs::write(d.join("corrupt_tail"), journal_input(0, 0, &flipped, &[])).unwrap();
    let mut v2 = seg1.clone();
    v2[4] = 2;
    std::fs::write(d.join("future_version"), journal_input(0, 0, &v2, &[])).unwrap();

    // Two segments (small segment size makes the journal roll).
    let two = tmp.join("two");
    {
        let opts = Options { segment_max_bytes: 90, ..Options::default() };
        let (mut j, _) = Journal::open(&two, opts, |_| Ok(())).unwrap();
        for p in &payloads {
            j.append(p).unwrap();
        }
        j.sync().unwrap();
    }
    let mut segs: Vec<_> = std::fs::read_dir(&two)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("journal-"))
        .collect();
    segs.sort();
    if segs.len() >= 2 {
        let first = std::fs::read(two.join(&segs[0])).unwrap();
        let second = std::fs::read(two.join(&segs[1])).unwrap();
        let n: u8 = segs[1][8..28].parse::<u64>().unwrap() as u8;
        std::fs::write(d.join("two_segments"), journal_input(2, n, &first, &second)).unwrap();
    }

    // A snapshot at seq 3 plus the segment.
    let snap = tmp.join("snap");
    {
        let (mut j, _) = Journal::open(&snap, Options::default(), |_| Ok(())).unwrap();
        for p in &payloads[..3] {
            j.append(p).unwrap();
        }
        j.sync().unwrap();
        j.snapshot(br#"{"agents":{},"messages":{}}"#).unwrap();
        j.append(b"after-snapshot").unwrap();
        j.sync().unwrap();
    }
    let snap_file = std::fs::read(snap.join("snapshot-00000000000000000003.snap")).unwrap();
    let mut segs: Vec<_> = std::fs::read_dir(&snap)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("journal-"))
        .collect();
    segs.sort();
    let seg = std::fs::read(snap.join(segs.last().unwrap())).unwrap();
    // The fuzz target always names the first file journal-…1.log; a snapshot
    // at 3 with a segment from 1 is the "covered segment" case.
    std::fs::write(d.join("snapshot"), journal_input(1, 3, &seg1, &snap_file)).unwrap();
    std::fs::write(d.join("snapshot_then_segment"), journal_input(1, 3, &seg, &snap_file)).unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Copies captured fixture payloads (hook stdin JSON, transcript JSONL
/// lines) as seeds, when the fixtures are next to the repository.
fn fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    if !root.is_dir() {
        eprintln!("no fixtures at {}; hook and transcript seeds skipped", root.display());
        return;
    }
    let mut hook_n = 0;
    let mut line_n = 0;
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.to_string_lossy().to_lowercase();
            let p = p.clone();
            let Ok(text) = std::fs::read_to_string(&p) else { continue };
            let in_dir = |d: &str| p.parent().and_then(|x| x.file_name()).is_some_and(|x| x == d);
            if name.ends_with(".jsonl") && (in_dir("transcripts") || in_dir("rollouts")) {
                for line in text.lines().filter(|l| !l.trim().is_empty()).take(40) {
                    if line.len() > 4096 || line_n >= 60 {
                        continue;
                    }
                    std::fs::write(seeds("transcript").join(format!("line{line_n:03}")), line).unwrap();
                    line_n += 1;
                }
            } else if in_dir("hooks") && name.ends_with(".json") && text.len() <= 8192 && hook_n < 40 {
                // The fixtures wrap the hook's stdin with its environment.
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                let stdin = v.get("stdin").cloned().unwrap_or(v);
                let body = match stdin {
                    serde_json::Value::String(s) => s,
                    other => serde_json::to_string(&other).unwrap(),
                };
                std::fs::write(seeds("hook").join(format!("hook{hook_n:03}")), body).unwrap();
                hook_n += 1;
            }
        }
    }
    eprintln!("{hook_n} hook seeds, {line_n} transcript seeds");
}

fn main() {
    frames();
    journals();
    fixtures();
}
