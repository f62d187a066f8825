//! Fuzzes the wire frame decoder (`oxtail_proto::frame`) with arbitrary byte
//! streams, as the daemon reads them from a client socket and a client reads
//! them from the daemon.
//!
//! Properties: no panic on any input; a frame that decodes re-encodes to a
//! frame that decodes to the same JSON (encoding is stable after one round);
//! a decoded frame consumed exactly `4 + length` bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtail_proto::frame::{self, FrameError, MAX_CLIENT_FRAME, MAX_SERVER_FRAME};
use oxtail_proto::{ClientFrame, ServerFrame};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn stream<T: DeserializeOwned + Serialize>(data: &[u8], max: usize) {
    let mut rest = data;
    // A stream of frames back to back, as on a socket; stop at the first
    // error (the connection is dropped there).
    for _ in 0..64 {
        let before = rest.len();
        match frame::read_blocking::<T>(&mut rest, max) {
            Ok(msg) => {
                let len = u32::from_be_bytes(data[data.len() - before..][..4].try_into().unwrap());
                assert_eq!(
                    before - rest.len(),
                    4 + len as usize,
                    "consumed exactly one frame"
                );
                let once = frame::encode(&msg);
                let back: T = frame::read_blocking(&mut &once[..], usize::MAX)
                    .expect("a re-encoded frame decodes");
                let twice = frame::encode(&back);
                let a: serde_json::Value = serde_json::from_slice(&once[4..]).unwrap();
                let b: serde_json::Value = serde_json::from_slice(&twice[4..]).unwrap();
                assert_eq!(a, b, "decode/encode is stable");
            }
            Err(FrameError::TooLarge(n, m)) => {
                assert!(n > m);
                return;
            }
            Err(_) => return,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    stream::<ClientFrame>(data, MAX_CLIENT_FRAME);
    stream::<ServerFrame>(data, MAX_SERVER_FRAME);
});
