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
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
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
    let ctl = encode(&ClientFrame::Request {
        id: 1,
        request: Request::Ctl(Ctl::Inbox {
            session_id: "s-1".into(),
        }),
    });
    let cancel = encode(&ClientFrame::Cancel { id: 3 });
    let welcome = encode(&ServerFrame::Welcome(Welcome {
        protocol_major: 1,
        protocol_minor: 0,
        version: "0.1.0".into(),
        daemon_pid: 42,
    }));
    let reply = encode(&ServerFrame::Reply {
        id: 3,
        reply: Reply::Ok {
            value: json!({"ok": true, "message_id": "msg_1"}),
        },
    });
    let err = encode(&ServerFrame::Reply {
        id: 4,
        reply: Reply::error("storage", "no space left on device"),
    });
    let event = encode(&ServerFrame::Event {
        id: 5,
        event: json!({"progress": 1}),
    });
    let refused = encode(&ServerFrame::Refused {
        reason: "protocol mismatch".into(),
    });
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
    // Checksums re-sealed by the target (flags & 4): mutations get past the CRC.
    std::fs::write(
        d.join("one_segment_resealed"),
        journal_input(4, 0, &seg1, &[]),
    )
    .unwrap();
    let mut gap = seg1.clone();
    gap[8 + 8] = 9; // first record's seq (LE u64 at offset 8 of the record) = 9
    std::fs::write(d.join("seq_gap_resealed"), journal_input(4, 0, &gap, &[])).unwrap();
    std::fs::write(
        d.join("torn_tail"),
        journal_input(0, 0, &seg1[..seg1.len() - 3], &[]),
    )
    .unwrap();
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
        let opts = Options {
            segment_max_bytes: 90,
            ..Options::default()
        };
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
    std::fs::write(
        d.join("snapshot_then_segment"),
        journal_input(1, 3, &seg, &snap_file),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Seeds from the captured fixtures (when `../shared/fixtures` is next to
/// the repository): hook stdin payloads, prefixed with the hook target's
/// event and client bytes, and transcript files (head, tail and single
/// lines), prefixed with the transcript target's two option bytes.
fn fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    if !root.is_dir() {
        eprintln!(
            "no fixtures at {}; hook and transcript seeds skipped",
            root.display()
        );
        return;
    }
    const EVENTS: [&str; 6] = [
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "Stop",
        "SessionEnd",
    ];
    let (mut hook_n, mut tr_n) = (0, 0);
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let parent = p
                .parent()
                .and_then(|x| x.file_name())
                .and_then(|x| x.to_str())
                .unwrap_or("");
            let name = p.to_string_lossy().to_string();
            let codex = name.contains("codex");
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            if parent == "hooks" && name.ends_with(".json") && hook_n < 40 {
                // The fixtures wrap the hook's stdin with its environment.
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                let stdin = v.get("stdin").cloned().unwrap_or(v);
                let event = stdin["hook_event_name"].as_str().unwrap_or("");
                let ev = EVENTS.iter().position(|e| *e == event).unwrap_or(2) as u8;
                let body = match stdin {
                    serde_json::Value::String(s) => s,
                    other => serde_json::to_string(&other).unwrap(),
                };
                let mut seed = vec![ev, codex as u8];
                seed.extend_from_slice(body.as_bytes());
                std::fs::write(seeds("hook").join(format!("hook{hook_n:03}")), seed).unwrap();
                hook_n += 1;
            } else if (parent == "transcripts" || parent == "rollouts") && name.ends_with(".jsonl")
            {
                let lines: Vec<&str> = text.lines().filter(|l| l.len() <= 4096).collect();
                // At most ~12 KB per file seed, keeping whole lines.
                fn fit<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
                    let mut used = 0;
                    it.take_while(|l| {
                        used += l.len() + 1;
                        used <= 12 * 1024
                    })
                    .collect()
                }
                let head = fit(lines.iter().copied()).join("\n");
                let mut tail_lines = fit(lines.iter().rev().copied());
                tail_lines.reverse();
                let tail = tail_lines.join("\n");
                // Options: limit 20, 24 KB, tail_scan 4 MiB / 70 KB, tool results on/off.
                for (opts, body) in [([0x73u8, 0x07u8], head), ([0x73, 0x04], tail)] {
                    let mut seed = opts.to_vec();
                    seed.extend_from_slice(body.as_bytes());
                    seed.push(b'\n');
                    std::fs::write(seeds("transcript").join(format!("file{tr_n:03}")), seed)
                        .unwrap();
                    tr_n += 1;
                }
                for line in lines.iter().filter(|l| l.len() <= 2048).take(12) {
                    let mut seed = vec![0x13u8, 0x07];
                    seed.extend_from_slice(line.as_bytes());
                    std::fs::write(seeds("transcript").join(format!("line{tr_n:03}")), seed)
                        .unwrap();
                    tr_n += 1;
                }
            }
        }
    }
    eprintln!("{hook_n} hook seeds, {tr_n} transcript seeds");
}

fn main() {
    frames();
    journals();
    fixtures();
}
