//! A journal that never throws data away (issue 9, items 2 and 3), with real
//! processes: messages are sent through real shims to a real daemon, the
//! daemon is killed with SIGKILL (so no shutdown snapshot hides anything),
//! its journal is damaged on disk, and a fresh daemon started by
//! `oxtail ctl` on a copy must come up and keep every acknowledged message
//! the damage did not destroy itself.
//!
//! Each test prints one `RELIABILITY` line (trials, acknowledged, kept,
//! lost) that RELIABILITY.md quotes.

use oxtail_tests::harness::{wait_gone, AgentOpts, Instance};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// A journal written by a real daemon: `batches` batches of `per_batch`
/// messages from `sess-a` to `sess-b`, with `oxtail ctl compact` between
/// batches, then `kill -9`. Returns the instance (whose journal dir is the
/// golden copy) and the acknowledged message ids, in order.
async fn golden(batches: usize, per_batch: usize) -> (Instance, Vec<String>) {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let b = ox.agent(AgentOpts::claude(&repo, "sess-b")).await.unwrap();
    b.ok("set_my_state", json!({"purpose": "receiving"}))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for batch in 0..batches {
        if batch > 0 {
            ox.ctl(&["compact"]).unwrap();
        }
        for n in 0..per_batch {
            let v = a
                .ok(
                    "send_message",
                    json!({"target": "sess-b", "body": format!("batch {batch} message {n}")}),
                )
                .await
                .unwrap();
            ids.push(v["message_id"].as_str().unwrap().to_string());
        }
    }
    a.close().await;
    b.close().await;
    ox.kill_daemon().unwrap();
    (ox, ids)
}

fn journal_of(ox: &Instance) -> PathBuf {
    ox.home().join("journal")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() && e.file_name() != "LOCK" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.to_string_lossy().ends_with(suffix));
    v.sort();
    v
}

/// What a fresh daemon recovered from a damaged copy.
struct Trial {
    ox: Instance,
    /// Message ids queued for sess-b after the start.
    kept: BTreeSet<String>,
}

impl Trial {
    fn log(&self) -> String {
        std::fs::read_to_string(self.ox.home().join("daemon.log")).unwrap_or_default()
    }

    fn quarantined(&self) -> Vec<PathBuf> {
        files(&journal_of(&self.ox).join("quarantine"), "")
    }
}

/// Copies the golden journal into a fresh instance, applies `damage` to
/// the copy, starts a daemon on it with `oxtail ctl ping` and reads what
/// is queued for sess-b.
fn trial(src: &Path, damage: impl FnOnce(&Path)) -> Trial {
    let ox = Instance::new(BIN);
    let jdir = journal_of(&ox);
    copy_dir(src, &jdir);
    damage(&jdir);
    ox.ctl(&["ping"])
        .unwrap_or_else(|e| panic!("the daemon must start on a damaged journal: {e}"));
    let kept = queued(&ox);
    Trial { ox, kept }
}

fn queued(ox: &Instance) -> BTreeSet<String> {
    let inbox = ox.ctl(&["inbox", "sess-b"]).unwrap();
    inbox["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

// ------------------------------------------------------------- snapshots

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_newest_snapshot_after_two_compactions_loses_nothing() {
    snapshot_damage(2).await;
}

/// Issue 9's report: with only one snapshot, damaging it used to wipe
/// every message. The segments before it are kept until a second
/// compaction, so nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_only_snapshot_after_one_compaction_loses_nothing() {
    snapshot_damage(1).await;
}

/// `compactions` compactions between batches of 20 messages, then every
/// kind of damage to the newest snapshot, one fresh daemon per trial.
async fn snapshot_damage(compactions: usize) {
    let (src, ids) = golden(compactions + 1, 20).await;
    let all: BTreeSet<String> = ids.iter().cloned().collect();
    let gold = journal_of(&src);
    let snaps = files(&gold, ".snap");
    assert_eq!(
        snaps.len(),
        compactions.min(2),
        "generations kept: {snaps:?}"
    );
    let newest = snaps.last().unwrap().file_name().unwrap().to_owned();
    let len = std::fs::metadata(snaps.last().unwrap()).unwrap().len() as usize;

    // Flips in the magic, version, seq, checksum, length and state; cuts;
    // deletion.
    type Damage = Box<dyn FnOnce(&Path)>;
    let mut damages: Vec<(String, Damage)> = Vec::new();
    for at in [0, 4, 9, 17, 21, 28, len / 2, len - 1] {
        let name = newest.clone();
        damages.push((
            format!("flip byte {at}"),
            Box::new(move |j: &Path| flip(&j.join(&name), at)),
        ));
    }
    for keep in [0, 10, 28, len / 2, len - 1] {
        let name = newest.clone();
        damages.push((
            format!("truncate to {keep} bytes"),
            Box::new(move |j: &Path| {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(j.join(&name))
                    .unwrap();
                f.set_len(keep as u64).unwrap();
            }),
        ));
    }
    let name = newest.clone();
    damages.push((
        "delete".into(),
        Box::new(move |j: &Path| std::fs::remove_file(j.join(&name)).unwrap()),
    ));

    let trials = damages.len();
    let mut lost_total = 0;
    for (what, damage) in damages {
        let t = trial(&gold, damage);
        let lost: Vec<&String> = all.difference(&t.kept).collect();
        lost_total += lost.len();
        assert!(
            lost.is_empty(),
            "{what}: lost {} messages: {lost:?}",
            lost.len()
        );
        assert_eq!(t.kept.len(), ids.len(), "{what}");
        if what != "delete" {
            // Flips of the version byte are repaired in place (the state
            // verifies); everything else is set aside, not deleted.
            let aside = t.quarantined();
            let in_place = what == "flip byte 4";
            assert_eq!(aside.len(), usize::from(!in_place), "{what}: {aside:?}");
        }
        // The next graceful shutdown (a new snapshot) keeps the good
        // generation, and another start still has everything.
        let pid = t.ox.daemon_pid().unwrap();
        t.ox.ctl(&["shutdown"]).unwrap();
        wait_gone(pid, Duration::from_secs(5)).unwrap();
        t.ox.ctl(&["ping"]).unwrap();
        assert_eq!(queued(&t.ox), all, "{what}: after a shutdown and restart");
    }
    eprintln!(
        "RELIABILITY snapshot-damage compactions={compactions} trials={trials} acknowledged={} kept={} lost={lost_total}",
        ids.len() * trials,
        ids.len() * trials - lost_total
    );
}

// -------------------------------------------------------------- segments

/// (start offset, encoded length, payload) of every record of a segment.
fn records(seg: &Path) -> Vec<(usize, usize, Vec<u8>)> {
    let bytes = std::fs::read(seg).unwrap();
    let mut out = Vec::new();
    let mut off = 8;
    while off + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        out.push((off, 16 + len, bytes[off + 16..off + 16 + len].to_vec()));
        off += 16 + len;
    }
    assert_eq!(off, bytes.len(), "segment parses to its end");
    out
}

/// The acknowledged ids a record mentions (the messages it enqueued).
fn ids_in(payload: &[u8], ids: &[String]) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(payload);
    ids.iter()
        .filter(|id| text.contains(id.as_str()))
        .cloned()
        .collect()
}

fn verify(ox_home_journal: &Path, json: bool) -> (Output, Value) {
    let mut c = std::process::Command::new(BIN);
    c.args(["ctl", "verify", "--dir"])
        .arg(ox_home_journal)
        .stdin(Stdio::null());
    if json {
        c.arg("--json");
    }
    let out = c.output().unwrap();
    let v = if json {
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    (out, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_anywhere_in_a_segment_lose_only_the_damaged_record() {
    let (src, ids) = golden(1, 40).await;
    let all: BTreeSet<String> = ids.iter().cloned().collect();
    let gold = journal_of(&src);
    let segs = files(&gold, ".log");
    assert_eq!(segs.len(), 1, "{segs:?}");
    let seg_name = segs[0].file_name().unwrap().to_owned();
    let recs = records(&segs[0]);
    let total = std::fs::metadata(&segs[0]).unwrap().len() as usize;

    // Every header byte (magic and version), then the length, checksum,
    // seq and payload of records spread over the file, from 6 % on, and
    // of the last record.
    let mut offsets: Vec<usize> = (0..8).collect();
    let n = recs.len();
    let picks: BTreeSet<usize> = [n * 6 / 100, n / 4, n / 2, n * 3 / 4, n - 2, n - 1]
        .into_iter()
        .collect();
    for &k in &picks {
        let (start, len, _) = &recs[k];
        offsets.extend([
            start + 1,
            start + 5,
            start + 9,
            start + 16 + len.saturating_sub(17) / 2,
        ]);
    }

    let trials = offsets.len();
    let (mut acked_total, mut kept_total, mut lost_total) = (0, 0, 0);
    for at in offsets {
        let rec = recs.iter().find(|(s, l, _)| (*s..s + l).contains(&at));
        let destroyed = rec.map_or_else(BTreeSet::new, |(_, _, p)| ids_in(p, &ids));
        let name = seg_name.clone();
        let t = trial(&gold, move |j| flip(&j.join(&name), at));
        let expect: BTreeSet<String> = all.difference(&destroyed).cloned().collect();
        assert_eq!(
            t.kept,
            expect,
            "flip at byte {at} of {total}: kept {} of {}, the damaged record held {destroyed:?}",
            t.kept.len(),
            all.len()
        );
        let is_last = rec.is_some_and(|(s, _, _)| *s == recs[n - 1].0);
        if !is_last {
            // Set aside and logged, never silently dropped.
            assert_eq!(t.quarantined().len(), 1, "flip at byte {at}");
            assert!(t.log().contains("set aside"), "flip at byte {at}");
        }
        acked_total += all.len();
        kept_total += t.kept.len();
        lost_total += all.len() - t.kept.len();
        // Only the destroyed record's own message is gone.
        assert!(all.len() - t.kept.len() <= 1, "flip at byte {at}");
    }
    eprintln!(
        "RELIABILITY segment-flips trials={trials} acknowledged={acked_total} kept={kept_total} lost={lost_total} (each lost message's own record was the damaged one)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_a_valid_checksum_but_bad_content_is_set_aside() {
    let (src, ids) = golden(1, 30).await;
    let all: BTreeSet<String> = ids.iter().cloned().collect();
    let gold = journal_of(&src);
    let seg = files(&gold, ".log").remove(0);
    let seg_name = seg.file_name().unwrap().to_owned();
    let recs = records(&seg);
    // A send record in the middle: replace its payload with same-length
    // bytes that are not oxtail commands, under a correct checksum.
    let (k, (start, len, payload)) = recs
        .iter()
        .enumerate()
        .skip(recs.len() / 2)
        .find(|(_, (_, _, p))| ids_in(p, &ids).len() == 1)
        .unwrap();
    let destroyed = ids_in(payload, &ids);
    let (start, len) = (*start, *len);

    // ctl verify: clean first.
    let (out, v) = verify(&gold, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["records"].as_u64(), Some(recs.len() as u64), "{v}");
    let (out, _) = verify(&gold, false);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing damaged"));

    let name = seg_name.clone();
    let damage = move |j: &Path| {
        let path = j.join(&name);
        let mut bytes = std::fs::read(&path).unwrap();
        let body = start + 16..start + len;
        for b in &mut bytes[body.clone()] {
            *b = b'#';
        }
        let crc =
            crc32c::crc32c_append(crc32c::crc32c(&bytes[start + 8..start + 16]), &bytes[body]);
        bytes[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
    };

    // ctl verify on the damaged journal: names it, exits 1, changes nothing.
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("journal");
    copy_dir(&gold, &copy);
    damage(&copy);
    let before = std::fs::read(copy.join(&seg_name)).unwrap();
    let (out, v) = verify(&copy, true);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["ok"], false);
    let seq = k as u64 + 1;
    assert_eq!(v["missing"], json!([{"first": seq, "last": seq}]), "{v}");
    assert!(
        v["damaged"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("does not decode"),
        "{v}"
    );
    let (out, _) = verify(&copy, false);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DAMAGED") && text.contains(&format!("seqs {seq}")),
        "{text}"
    );
    assert_eq!(
        std::fs::read(copy.join(&seg_name)).unwrap(),
        before,
        "verify changed nothing"
    );

    // The daemon starts, sets the record aside, keeps every other one.
    let t = trial(&gold, damage);
    let expect: BTreeSet<String> = all.difference(&destroyed).cloned().collect();
    assert_eq!(t.kept, expect);
    assert_eq!(t.quarantined().len(), 1);
    let log = t.log();
    assert!(log.contains("does not decode"), "{log}");
    // New mail still flows after the repair, and survives a restart.
    let pid = t.ox.kill_daemon().unwrap();
    assert!(pid > 0);
    t.ox.ctl(&["ping"]).unwrap();
    assert_eq!(queued(&t.ox), expect);
    eprintln!(
        "RELIABILITY bad-content-record trials=1 acknowledged={} kept={} lost={}",
        all.len(),
        expect.len(),
        all.len() - expect.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_cannot_start_says_why() {
    let ox = Instance::new(BIN);
    let jdir = journal_of(&ox);
    std::fs::create_dir_all(&jdir).unwrap();
    // A segment a newer oxtail wrote: version 9, records in another encoding.
    let mut bytes = b"OXJL\x09\x00\x00\x00".to_vec();
    bytes.extend(b"{\"format\": 9, \"records\": []}\n");
    std::fs::write(jdir.join(format!("journal-{:020}.log", 1)), bytes).unwrap();
    let out = ox
        .command()
        .args(["ctl", "ping"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed to start"), "{err}");
    assert!(
        err.contains("version 9") && err.contains("newer oxtail"),
        "{err}"
    );
    assert!(!err.contains("no oxtail daemon"), "{err}");
    // So does an agent's tool call through a real shim (which spawns too).
    let repo = ox.git_repo("proj");
    let a = ox.agent(AgentOpts::claude(&repo, "sess-a")).await.unwrap();
    let answer = match a.call_raw("get_my_session", json!({})).await {
        Ok(r) => format!("{r:?}"),
        Err(e) => e.to_string(),
    };
    assert!(answer.contains("failed to start"), "{answer}");
    assert!(answer.contains("newer oxtail"), "{answer}");
    a.close().await;
    // verify names the same cause.
    let (out, _) = verify(&jdir, false);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer oxtail"));
}
