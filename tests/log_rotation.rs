//! The daemon rotates its own log at 8 MiB even when it did not open it:
//! under launchd, `StandardErrorPath` is `daemon.log` and no client ever
//! spawns the daemon (so the client-side rotation never runs).

use oxtail_tests::harness::Instance;
use std::process::Stdio;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

#[test]
fn a_daemon_started_like_launchd_rotates_its_log() {
    let ox = Instance::new(BIN);
    let log = ox.home().join("daemon.log");
    // An old log past the limit, opened for the daemon the way launchd
    // does: stdout and stderr appended to it.
    std::fs::write(&log, vec![b'x'; (8 << 20) + 1]).unwrap();
    let out = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut daemon = ox
        .command()
        .args(["daemon", "--foreground"])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let rotated = ox.home().join("daemon.log.1");
    while !(rotated.exists()
        && std::fs::read_to_string(&log)
            .is_ok_and(|t| t.contains("daemon log rotated") && t.contains("daemon started")))
    {
        assert!(Instant::now() < end, "the daemon did not rotate its log");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Rotated at start, before the daemon wrote a line.
    assert_eq!(
        std::fs::metadata(&rotated).unwrap().len(),
        (8 << 20) + 1,
        "daemon.log.1 is the old log"
    );
    let fresh = std::fs::read_to_string(&log).unwrap();
    assert!(fresh.len() < 64 << 10, "{} bytes", fresh.len());
    assert!(fresh.contains("daemon started"), "{fresh}");
    // It keeps logging to the fresh file.
    ox.ctl(&["ping"]).unwrap();
    ox.ctl(&["shutdown"]).unwrap();
    daemon.wait().unwrap();
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("daemon exiting"));
}
