//! A client that pipelines requests but never reads its replies is held
//! back (the daemon stops reading it) instead of growing the daemon: its RSS
//! stays under a stated bound, another agent's send round trip stays
//! normal, nothing it asked for is lost once it reads again, and memory is
//! given back when it closes.

use oxtail_proto::frame;
use oxtail_proto::{ClientFrame, Ctl, Hello, Request, Role, ServerFrame};
use oxtail_tests::harness::{AgentOpts, Instance};
use serde_json::json;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// Requests the flooding client pipelines (as in issue 9, where 20 000
/// unread `ctl dump`s took the daemon to 8.65 GB).
const FLOOD: u64 = 20_000;
/// The daemon's resident memory must stay under this while flooded, in KiB
/// (128 MiB; unbounded, 20 000 dumps of the state below are about 3 GB).
const RSS_BOUND_KIB: u64 = 128 * 1024;
/// A send round trip of another agent during the flood must stay under this.
const SEND_BOUND: Duration = Duration::from_millis(1000);

/// The daemon's VmRSS in KiB, from /proc/<pid>/status.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

async fn send_round_trips(a: &oxtail_tests::harness::Agent, n: usize) -> Vec<Duration> {
    let mut out = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        a.ok(
            "send_message",
            json!({"target": "bp-reader", "body": format!("ping {i}")}),
        )
        .await
        .unwrap();
        out.push(t.elapsed());
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_held_back_and_memory_stays_bounded() {
    let ox = Instance::new(BIN);
    let repo = ox.git_repo("proj");
    let reader = ox
        .agent(AgentOpts::claude(&repo, "bp-reader"))
        .await
        .unwrap();
    reader
        .ok("set_my_state", json!({"purpose": "receives"}))
        .await
        .unwrap();
    let sender = ox
        .agent(AgentOpts::claude(&repo, "bp-sender"))
        .await
        .unwrap();
    // Make each dump large: 40 queued messages of 4 000 bytes (over 160 KB).
    let body = "x".repeat(4000);
    for _ in 0..40 {
        sender
            .ok(
                "send_message",
                json!({"target": "bp-reader", "body": body, "wake": "off"}),
            )
            .await
            .unwrap();
    }
    let pid = ox.daemon_pid().unwrap();
    let baseline_sends = send_round_trips(&sender, 20).await;
    let rss_before = rss_kib(pid);

    let mut s = UnixStream::connect(ox.home().join("run/daemon.sock")).unwrap();
    frame::write_blocking(&mut s, &ClientFrame::Hello(Hello::new(Role::Ctl))).unwrap();
    let _welcome: ServerFrame = frame::read_blocking(&mut s, frame::MAX_SERVER_FRAME).unwrap();
    let mut w = s.try_clone().unwrap();
    // Pipeline every request from a thread: its writes block once the
    // daemon stops reading us.
    let flood = std::thread::spawn(move || {
        let mut sent = 0u64;
        for id in 1..=FLOOD {
            let f = ClientFrame::Request {
                id,
                request: Request::Ctl(Ctl::Dump),
            };
            if w.write_all(&frame::encode(&f)).is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    // The daemon says when it stops reading us.
    let log = ox.home().join("daemon.log");
    let end = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("does not read its replies")
    {
        assert!(
            Instant::now() < end,
            "the daemon never held the reader back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Sample memory while the flood stands, and others' sends meanwhile.
    let mut peak = 0;
    let during_sends = {
        let mut all = Vec::new();
        for _ in 0..5 {
            peak = peak.max(rss_kib(pid));
            all.extend(send_round_trips(&sender, 10).await);
        }
        all.sort();
        all
    };
    peak = peak.max(rss_kib(pid));
    assert!(
        !flood.is_finished(),
        "the flooding writer finished: the daemon kept reading"
    );
    eprintln!(
        "backpressure: RSS before {rss_before} KiB, peak during flood {peak} KiB (bound {RSS_BOUND_KIB} KiB); \
         send p50/max before {:?}/{:?}, during {:?}/{:?}",
        baseline_sends[baseline_sends.len() / 2],
        baseline_sends.last().unwrap(),
        during_sends[during_sends.len() / 2],
        during_sends.last().unwrap()
    );
    assert!(peak < RSS_BOUND_KIB, "daemon RSS {peak} KiB");
    assert!(
        *during_sends.last().unwrap() < SEND_BOUND,
        "sends during the flood: {during_sends:?}"
    );
    // Nothing is lost: reading again, every request gets its one reply
    // (replies may overtake each other within the in-flight window).
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    while !(1..=200u64).all(|id| seen.contains(&id)) {
        match frame::read_blocking::<ServerFrame>(&mut s, frame::MAX_SERVER_FRAME).unwrap() {
            ServerFrame::Reply { id, .. } => assert!(seen.insert(id), "reply {id} twice"),
            other => panic!("unexpected frame {other:?}"),
        }
        assert!(seen.len() <= 300, "replies missing below 200: {seen:?}");
    }
    // Close; the daemon gives the memory back.
    s.shutdown(std::net::Shutdown::Both).unwrap();
    let sent = flood.join().unwrap();
    assert!(sent < FLOOD, "every request was accepted: {sent}");
    let end = Instant::now() + Duration::from_secs(10);
    let limit = rss_before + 32 * 1024;
    let mut after = rss_kib(pid);
    while after > limit {
        assert!(
            Instant::now() < end,
            "RSS {after} KiB after the close, before the flood {rss_before} KiB"
        );
        std::thread::sleep(Duration::from_millis(50));
        after = rss_kib(pid);
    }
    eprintln!("backpressure: RSS after the close {after} KiB");
    assert_eq!(ox.ctl(&["ping"]).unwrap()["pong"], true);
}
