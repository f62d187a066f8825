//! How journal records and snapshots are encoded on disk.
//!
//! Two formats, told apart by their first byte:
//!
//! * **v2** (written since issue 12): one version byte [`V2`] followed by the
//!   [postcard] encoding of the value (`Vec<Command>` for a record,
//!   [`State`] for a snapshot). Compact and cheap to decode: a restart replays
//!   1 M records in well under a second (BENCHMARKS.md, `daemon_recovery_1m`).
//! * **v1** (written by every earlier oxtail): JSON. A record is an array of
//!   internally tagged commands (`[{"cmd":"enqueue","message":{…}}]`), a
//!   snapshot a JSON object. Still read, so an upgrade keeps its journal;
//!   never written.
//!
//! The journal layer (`oxtail-journal`) frames, checksums and orders these
//! payloads; it never looks inside them. A payload that decodes in neither
//! format is reported as an error, which the replayer turns into a set-aside
//! record (`oxtail_journal::Rejected`), never a half-applied one.

use crate::state::{Command, State};
use serde_json::Value;

/// The first byte of a v2 (postcard) payload. JSON (v1) payloads start with
/// `[` or `{` (or whitespace), never with this byte.
///
/// # The v2 layout is positional
///
/// postcard writes fields in declaration order with no names, and enum
/// variants by index. So any change to a type inside [`Command`] or
/// [`State`] changes the format: a field added, removed or reordered, a
/// variant inserted anywhere but at the end, `skip_serializing_if` (which
/// drops a field some of the time), `flatten` or an internally tagged enum.
/// `tests::v2_layout_is_pinned` fails on such a change. Then either keep
/// the layout (new `Command` variants go at the end; a new field goes into
/// a new command), or make the change a new format: a new version byte,
/// with this version's types kept (frozen) to decode journals written
/// before it, as v1 JSON is read today.
pub const V2: u8 = 0x02;

/// Encodes one journal record: the batch of commands of one request.
///
/// # Errors
/// Only if serialization fails, which the command types never do; callers
/// treat it like a failed append (request refused, state unchanged).
pub fn encode_record(cmds: &[Command]) -> Result<Vec<u8>, String> {
    let mut out = vec![V2];
    postcard::to_io(cmds, &mut out).map_err(|e| format!("encoding commands: {e}"))?;
    Ok(out)
}

/// Decodes a journal record written by [`encode_record`] (v2) or by an
/// earlier oxtail (v1 JSON).
///
/// # Errors
/// A text naming the format tried and what failed: bytes that are neither,
/// a truncated or damaged payload, or an unknown command.
pub fn decode_record(payload: &[u8]) -> Result<Vec<Command>, String> {
    match payload.first() {
        Some(&V2) => postcard::from_bytes(&payload[1..]).map_err(|e| format!("v2 record: {e}")),
        _ => decode_record_v1(payload),
    }
}

/// Encodes a snapshot of the whole state.
///
/// # Errors
/// Only if serialization fails (see [`encode_record`]).
pub fn encode_snapshot(state: &State) -> Result<Vec<u8>, String> {
    let fed = !state.fed.is_empty();
    let mut out = vec![if fed { V2_FED } else { V2 }];
    postcard::to_io(state, &mut out).map_err(|e| format!("encoding state: {e}"))?;
    if fed {
        postcard::to_io(&state.fed, &mut out)
            .map_err(|e| format!("encoding federation state: {e}"))?;
    }
    Ok(out)
}

/// The first byte of a v2 snapshot followed by federation's records
/// ([`crate::fedstate::FedState`], issue 16): the v2 [`State`], then the
/// postcard encoding of `State::fed`, which the state's own layout skips.
/// Written only when there is federation state, so a daemon that never
/// federated writes exactly v2.
pub const V2_FED: u8 = 0x03;

/// Decodes a snapshot written by [`encode_snapshot`] (v2) or an earlier
/// oxtail (v1 JSON).
///
/// # Errors
/// A text naming the format tried and what failed.
pub fn decode_snapshot(bytes: &[u8]) -> Result<State, String> {
    match bytes.first() {
        Some(&V2) => postcard::from_bytes(&bytes[1..]).map_err(|e| format!("v2 snapshot: {e}")),
        Some(&V2_FED) => {
            let (mut state, rest): (State, _) =
                postcard::take_from_bytes(&bytes[1..]).map_err(|e| format!("v2 snapshot: {e}"))?;
            state.fed = postcard::from_bytes(rest)
                .map_err(|e| format!("v2 snapshot, federation part: {e}"))?;
            Ok(state)
        }
        _ => serde_json::from_slice(bytes).map_err(|e| format!("v1 snapshot: {e}")),
    }
}

/// v1 records tag each command inside it (`{"cmd":"drain",…}`); today's
/// [`Command`] is externally tagged (`{"drain":{…}}`), which postcard needs.
/// Each element is rewritten to that shape, then decoded.
fn decode_record_v1(payload: &[u8]) -> Result<Vec<Command>, String> {
    let items: Vec<Value> =
        serde_json::from_slice(payload).map_err(|e| format!("v1 record: {e}"))?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(mut fields) = item else {
                return Err(format!("v1 record: command {i} is not an object"));
            };
            let Some(Value::String(tag)) = fields.remove("cmd") else {
                return Err(format!("v1 record: command {i} has no \"cmd\" tag"));
            };
            let mut outer = serde_json::Map::with_capacity(1);
            outer.insert(tag, Value::Object(fields));
            serde_json::from_value(Value::Object(outer))
                .map_err(|e| format!("v1 record: command {i}: {e}"))
        })
        .collect()
}

/// The state as of record `seq`, rebuilt from the journal files alone (the
/// newest snapshot and the records after it), for a snapshot written off the
/// core thread: the caller took `seq` from
/// [`oxtail_journal::Journal::begin_snapshot`], so every record up to it
/// sits in closed segments. Reads without the lock, beside the live journal;
/// records after `seq` are ignored.
///
/// # Errors
/// * `InvalidData` when the records up to `seq` are not all there, in order
///   (a seq lost to damage, or one the replay never reached): a snapshot
///   built from them would drop state, so the caller must not write it.
/// * Any error from [`oxtail_journal::verify`] (I/O, newer files).
pub fn state_as_of(dir: &std::path::Path, seq: u64) -> std::io::Result<State> {
    let mut state = State::default();
    let mut next = 1u64;
    let mut events = Vec::new();
    let gap = |want: u64, got: u64| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "journal record {want} is missing (next found: {got}); not snapshotting from it"
            ),
        )
    };
    oxtail_journal::verify(dir, |r| {
        match r {
            oxtail_journal::Replay::Snapshot { seq: at, bytes } => {
                state = decode_snapshot(bytes).map_err(|e| {
                    oxtail_journal::Rejected(format!("snapshot state is not oxtail state: {e}"))
                })?;
                next = at.saturating_add(1);
            }
            oxtail_journal::Replay::Record { seq: at, payload } if at <= seq => {
                if at != next {
                    return Err(gap(next, at));
                }
                let cmds = decode_record(payload).map_err(|e| {
                    oxtail_journal::Rejected(format!("not a list of oxtail commands: {e}"))
                })?;
                for c in cmds {
                    crate::state::apply_owned(&mut state, c, &mut events);
                }
                events.clear();
                next = at + 1;
            }
            oxtail_journal::Replay::Record { .. } => {}
        }
        Ok(())
    })?;
    if next != seq.saturating_add(1) {
        return Err(gap(next, seq + 1));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{apply, Message, ObligationState, Origin};

    /// `cmds` as a v1 (JSON, internally tagged) record, as oxtail wrote
    /// before v2 (the daemon never writes v1).
    fn encode_record_v1(cmds: &[Command]) -> Vec<u8> {
        let items: Vec<Value> = cmds
            .iter()
            .map(
                |c| match serde_json::to_value(c).expect("commands serialize") {
                    Value::Object(outer) => {
                        let (tag, inner) = outer.into_iter().next().expect("one variant");
                        let mut fields = match inner {
                            Value::Object(f) => f,
                            _ => serde_json::Map::new(),
                        };
                        fields.insert("cmd".into(), Value::String(tag));
                        Value::Object(fields)
                    }
                    other => other,
                },
            )
            .collect();
        serde_json::to_vec(&items).expect("values serialize")
    }

    fn message(id: &str, offers: u32) -> Message {
        Message {
            message_id: id.into(),
            from: "a".into(),
            from_name: Some("alice".into()),
            to: "b".into(),
            body: "hello".into(),
            enqueued_ms: 7,
            request_id: None,
            reply_to: None,
            source_message_id: None,
            action_required: true,
            origin: Origin::Peer,
            project: "/p/.git".into(),
            closes: Some(ObligationState::Done),
            offers,
        }
    }

    fn sample() -> Vec<Command> {
        vec![
            Command::Enqueue {
                message: message("msg_1", 0),
            },
            Command::Enqueue {
                message: message("msg_2", 3),
            },
            Command::Offer {
                session_id: "b".into(),
                message_ids: vec!["msg_1".into()],
            },
            Command::Drain {
                session_id: "b".into(),
                message_ids: vec!["msg_1".into()],
                via: "read_my_messages".into(),
                at_ms: 9,
            },
            Command::RecordWake {
                key: "b|r1".into(),
                at_ms: 10,
            },
        ]
    }

    #[test]
    fn records_round_trip_in_v2() {
        let cmds = sample();
        let bytes = encode_record(&cmds).unwrap();
        assert_eq!(bytes[0], V2);
        assert_eq!(decode_record(&bytes).unwrap(), cmds);
        // Smaller than the JSON it replaces.
        assert!(bytes.len() * 2 < encode_record_v1(&cmds).len());
    }

    #[test]
    fn federation_state_rides_after_a_v2_snapshot_only_when_present() {
        let cmds = sample();
        let mut state = State::default();
        let mut events = Vec::new();
        for c in &cmds[..1] {
            apply(&mut state, c, &mut events);
        }
        assert_eq!(encode_snapshot(&state).unwrap()[0], V2, "no federation: v2");
        let Command::Enqueue { message } = cmds[0].clone() else {
            panic!("sample starts with an enqueue")
        };
        let peer = crate::fedstate::RemotePeer {
            key: "k".into(),
            daemon: "d".into(),
            host: "h".into(),
            name: None,
        };
        let fed = [
            Command::FedQueue {
                out: crate::fedstate::Outgoing {
                    message,
                    to: peer.clone(),
                    wake: Some(true),
                    tool: "send_message".into(),
                },
            },
            Command::FedPeer {
                session_id: "remote".into(),
                peer,
            },
        ];
        let bytes = encode_record(&fed).unwrap();
        assert_eq!(decode_record(&bytes).unwrap(), fed);
        for c in &fed {
            apply(&mut state, c, &mut events);
        }
        let snap = encode_snapshot(&state).unwrap();
        assert_eq!(snap[0], V2_FED);
        let back = decode_snapshot(&snap).unwrap();
        assert_eq!(back.fed.outbox.len(), 1);
        assert_eq!(back, state);
    }

    #[test]
    fn v1_json_records_still_decode() {
        let cmds = sample();
        let v1 = encode_record_v1(&cmds);
        assert!(v1.starts_with(b"[{\"cmd\":\"enqueue\"") || v1.starts_with(b"[{"));
        assert_eq!(decode_record(&v1).unwrap(), cmds);
        // Records exactly as an earlier oxtail wrote them (fuzz seeds).
        let old = br#"[{"cmd":"drain","session_id":"a","message_ids":["msg_1"],"via":"read_my_messages","at_ms":2}]"#;
        let got = decode_record(old).unwrap();
        assert!(matches!(&got[0], Command::Drain { at_ms: 2, .. }));
        // A v1 message without `offers` (it was skipped when zero).
        let v = serde_json::to_value(message("msg_9", 0)).unwrap();
        let mut m = v.as_object().unwrap().clone();
        m.remove("offers");
        let rec = serde_json::json!([{"cmd": "enqueue", "message": m}]);
        let got = decode_record(&serde_json::to_vec(&rec).unwrap()).unwrap();
        assert_eq!(
            got,
            vec![Command::Enqueue {
                message: message("msg_9", 0)
            }]
        );
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        let bytes = encode_record(&sample()).unwrap();
        for cut in 0..bytes.len() {
            let _ = decode_record(&bytes[..cut]);
        }
        assert!(decode_record(&bytes[..bytes.len() / 2]).is_err());
        assert!(decode_record(b"").is_err());
        assert!(decode_record(b"[{\"cmd\":\"no_such\"}]").is_err());
        assert!(decode_record(b"[1]").is_err());
        for i in 1..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = decode_record(&b);
        }
    }

    #[test]
    fn snapshots_round_trip_and_v1_json_snapshots_still_load() {
        let mut state = State::default();
        let mut events = Vec::new();
        for c in sample() {
            apply(&mut state, &c, &mut events);
        }
        let v2 = encode_snapshot(&state).unwrap();
        let back = decode_snapshot(&v2).unwrap();
        assert_eq!(back, state);
        let v1 = serde_json::to_vec(&state).unwrap();
        assert_eq!(decode_snapshot(&v1).unwrap(), state);
        assert!(decode_snapshot(&v2[..v2.len() - 1]).is_err());
    }

    /// An upgrade: a journal an earlier oxtail wrote (a v1 JSON snapshot and
    /// v1 records after it) opens, takes v2 records, and reopens with both.
    #[test]
    fn a_v1_journal_upgrades_in_place() {
        use oxtail_journal::{Journal, Options};
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("journal");
        let cmds = sample();
        {
            let (mut j, _) = Journal::open(&jdir, Options::default(), |_| Ok(())).unwrap();
            j.append(&encode_record_v1(&cmds[..2])).unwrap();
            let mut early = State::default();
            let mut events = Vec::new();
            for c in &cmds[..2] {
                apply(&mut early, c, &mut events);
            }
            j.snapshot(&serde_json::to_vec(&early).unwrap()).unwrap();
            j.append(&encode_record_v1(&cmds[2..4])).unwrap();
            j.sync().unwrap();
        }
        let config = crate::config::Config::default();
        let (state, mut j) = crate::server::open_state(&jdir, &config).unwrap();
        let mut want = State::default();
        let mut events = Vec::new();
        for c in &cmds[..4] {
            apply(&mut want, c, &mut events);
        }
        assert_eq!(state, want);
        j.append(&encode_record(&cmds[4..]).unwrap()).unwrap();
        j.sync().unwrap();
        drop(j);
        let (state, _j) = crate::server::open_state(&jdir, &config).unwrap();
        apply(&mut want, &cmds[4], &mut events);
        assert_eq!(state, want);
        assert!(state.wakes_fired.contains_key("b|r1"));
    }

    /// The background snapshot's state: the files up to the ticket's seq,
    /// nothing after, equal to what the live state was at that seq.
    #[test]
    fn state_as_of_rebuilds_exactly_the_state_at_the_ticket() {
        use oxtail_journal::{Journal, Options};
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("journal");
        let cmds = sample();
        let (mut j, _) = Journal::open(&jdir, Options::default(), |_| Ok(())).unwrap();
        let mut live = State::default();
        let mut events = Vec::new();
        for c in &cmds[..3] {
            j.append(&encode_record(std::slice::from_ref(c)).unwrap())
                .unwrap();
            apply(&mut live, c, &mut events);
        }
        j.snapshot(&encode_snapshot(&live).unwrap()).unwrap();
        j.append(&encode_record(&cmds[3..4]).unwrap()).unwrap();
        apply(&mut live, &cmds[3], &mut events);
        let ticket = j.begin_snapshot().unwrap();
        // Appended after the ticket: not in the snapshot.
        j.append(&encode_record(&cmds[4..]).unwrap()).unwrap();
        j.sync().unwrap();
        let at = state_as_of(ticket.dir(), ticket.seq()).unwrap();
        assert_eq!(at, live);
        assert!(at.wakes_fired.is_empty());
        // A seq beyond what the files hold is refused, not guessed.
        let err = state_as_of(ticket.dir(), ticket.seq() + 5).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }

    /// The v2 layout, pinned: the encoding of a fixed sample must not
    /// change (see [`V2`] for why and what to do when this fails). Bless a
    /// deliberate new format with `OXTAIL_BLESS_CODEC=1`.
    #[test]
    fn v2_layout_is_pinned() {
        let cmds = sample();
        // One entry per hash map: their iteration order is seeded per map,
        // and the pin is of the layout, not of an order.
        let mut state = State::default();
        let mut events = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            if i != 1 {
                apply(&mut state, c, &mut events);
            }
        }
        assert_eq!(state.messages.len(), 1);
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let got = format!(
            "record {}\nsnapshot {}\n",
            hex(&encode_record(&cmds).unwrap()),
            hex(&encode_snapshot(&state).unwrap())
        );
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codec_v2.txt");
        if std::env::var_os("OXTAIL_BLESS_CODEC").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            got == want,
            "the v2 journal layout changed (daemon/src/codec.rs, `V2`, says why this \
             matters and what to do); journals written before would no longer decode.\n\
             want: {want}\ngot:  {got}"
        );
    }
}
