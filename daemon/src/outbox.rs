//! One connection's outgoing frames, with backpressure: the [`Outbox`] the
//! connection task and the actor queue replies and events on, and the
//! writer task that drains it to the socket.

use oxtail_proto::frame;
use oxtail_proto::ServerFrame;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Requests one connection may have in flight: read, but whose reply is not
/// yet written to its socket. At this many the daemon stops reading that
/// connection (backpressure) until replies are written.
pub const MAX_IN_FLIGHT: usize = 16;

/// Outbound byte budget of one connection: while more than this many
/// encoded bytes wait to be written to its socket, the daemon reads no new
/// request from it (8 MiB).
pub const OUTBOX_BYTES: usize = 8 << 20;

/// Hard outbound limit of one connection (64 MiB): a frame queued on top of
/// this many unwritten bytes (only events can get there: replies are bounded
/// by [`MAX_IN_FLIGHT`]) closes the connection as not reading.
pub const OUTBOX_CLOSE_BYTES: usize = 64 << 20;

/// Writes queued frames to the socket, accounting for what is written.
pub(crate) async fn write_frames(
    mut wr: tokio::net::unix::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    shared: std::sync::Arc<OutboxShared>,
) {
    while let Some(q) = rx.recv().await {
        let ok = wr.write_all(&q.bytes).await.is_ok();
        shared.queued.fetch_sub(q.bytes.len(), Ordering::SeqCst);
        shared
            .written
            .fetch_add(q.bytes.len() as u64, Ordering::Relaxed);
        if q.is_reply {
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        drop(q);
        shared.progress.notify_waiters();
        if !ok {
            break;
        }
    }
    shared.closed.store(true, Ordering::SeqCst);
    shared.progress.notify_waiters();
    // Free what is still queued at once, not when the last sender goes.
    rx.close();
    while rx.try_recv().is_ok() {}
}

/// One encoded frame waiting to be written.
pub(crate) struct Queued {
    bytes: Vec<u8>,
    /// A reply (it ends one request in flight), not an event.
    is_reply: bool,
}

/// The accounting one connection's reader, writer and senders share.
pub(crate) struct OutboxShared {
    /// Encoded bytes queued and not yet written.
    pub(crate) queued: AtomicUsize,
    /// Requests read whose reply is not yet written.
    pub(crate) in_flight: AtomicUsize,
    /// Bytes written to the socket so far.
    pub(crate) written: AtomicU64,
    /// The writer is gone (the peer closed or the socket failed).
    pub(crate) closed: AtomicBool,
    /// A frame was refused past [`OUTBOX_CLOSE_BYTES`]: closing.
    pub(crate) overflowed: AtomicBool,
    /// Signalled after every write and when the writer ends.
    pub(crate) progress: tokio::sync::Notify,
    /// Signalled when a frame is queued past [`OUTBOX_CLOSE_BYTES`].
    pub(crate) overflow: tokio::sync::Notify,
}

impl OutboxShared {
    /// Waits until the connection may read another request: fewer than
    /// [`MAX_IN_FLIGHT`] requests in flight and at most [`OUTBOX_BYTES`]
    /// queued. False when the writer is gone.
    pub(crate) async fn wait_for_room(&self, conn: u64, logged: &mut bool) -> bool {
        loop {
            let progressed = self.progress.notified();
            tokio::pin!(progressed);
            progressed.as_mut().enable();
            if self.closed.load(Ordering::SeqCst) || self.overflowed.load(Ordering::SeqCst) {
                return false;
            }
            let in_flight = self.in_flight.load(Ordering::SeqCst);
            let queued = self.queued.load(Ordering::SeqCst);
            if in_flight < MAX_IN_FLIGHT && queued <= OUTBOX_BYTES {
                return true;
            }
            if !*logged {
                *logged = true;
                tracing::warn!(
                    conn,
                    in_flight,
                    queued_bytes = queued,
                    "a connection does not read its replies; reading no more of its requests until it does"
                );
            }
            progressed.await;
        }
    }
}

/// The sending side of one connection's outgoing frames. Frames are encoded
/// when queued, so what waits is counted in bytes; the connection's reader
/// stops reading requests while too much waits (see
/// [`OutboxShared::wait_for_room`]), and a frame queued past
/// [`OUTBOX_CLOSE_BYTES`] closes the connection.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Queued>,
    pub(crate) shared: std::sync::Arc<OutboxShared>,
}

impl Outbox {
    /// A new outbox and the receiving end its writer drains.
    pub(crate) fn new() -> (Outbox, mpsc::UnboundedReceiver<Queued>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Outbox {
                tx,
                shared: std::sync::Arc::new(OutboxShared {
                    queued: AtomicUsize::new(0),
                    in_flight: AtomicUsize::new(0),
                    written: AtomicU64::new(0),
                    closed: AtomicBool::new(false),
                    overflowed: AtomicBool::new(false),
                    progress: tokio::sync::Notify::new(),
                    overflow: tokio::sync::Notify::new(),
                }),
            },
            rx,
        )
    }

    /// Queues `frame`; false when the connection is gone or overflowing.
    pub fn send(&self, frame: ServerFrame) -> bool {
        if self.shared.closed.load(Ordering::SeqCst) {
            return false;
        }
        let is_reply = matches!(frame, ServerFrame::Reply { .. });
        let bytes = frame::encode(&frame);
        drop(frame);
        let len = bytes.len();
        let before = self.shared.queued.fetch_add(len, Ordering::SeqCst);
        if before > 0 && before + len > OUTBOX_CLOSE_BYTES {
            self.shared.queued.fetch_sub(len, Ordering::SeqCst);
            self.shared.overflowed.store(true, Ordering::SeqCst);
            self.shared.overflow.notify_one();
            self.shared.progress.notify_waiters();
            return false;
        }
        if self.tx.send(Queued { bytes, is_reply }).is_err() {
            self.shared.queued.fetch_sub(len, Ordering::SeqCst);
            return false;
        }
        true
    }
}
