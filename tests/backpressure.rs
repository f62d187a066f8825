//! A client that sends requests but never reads its replies is cut off once
//! its outgoing queue is full, instead of growing the daemon without bound;
//! everyone else keeps being served.

use oxtail_proto::frame;
use oxtail_proto::{ClientFrame, Ctl, Hello, Request, Role, ServerFrame};
use oxtail_tests::harness::Instance;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

#[test]
fn a_client_that_never_reads_is_disconnected() {
    let ox = Instance::new(BIN);
    ox.ctl(&["ping"]).unwrap();
    let mut s = UnixStream::connect(ox.home().join("run/daemon.sock")).unwrap();
    frame::write_blocking(&mut s, &ClientFrame::Hello(Hello::new(Role::Ctl))).unwrap();
    let _welcome: ServerFrame = frame::read_blocking(&mut s, frame::MAX_SERVER_FRAME).unwrap();
    // Flood `ctl stats` (a ~1 KB reply each) without reading anything back.
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut sent = 0u64;
    for id in 1..=20_000u64 {
        let f = ClientFrame::Request {
            id,
            request: Request::Ctl(Ctl::Stats),
        };
        if s.write_all(&frame::encode(&f)).is_err() {
            break;
        }
        sent += 1;
    }
    assert!(sent > 1024, "sent only {sent}");
    // The daemon closes us: reading drains what was written, then EOF.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0usize;
    loop {
        assert!(Instant::now() < end, "never disconnected");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            // Closing a socket whose peer left data unread makes the kernel
            // reset it: also a disconnection.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                break
            }
            Err(e) => panic!("read failed before the disconnection: {e}"),
        }
    }
    let _ = got;
    let log = std::fs::read_to_string(ox.home().join("daemon.log")).unwrap();
    assert!(log.contains("does not read its replies"), "{log}");
    // Others are still served.
    assert_eq!(ox.ctl(&["ping"]).unwrap()["pong"], true);
}
