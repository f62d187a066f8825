//! Seats from process facts: a seat is a pid plus its start time, so a
//! reused pid is a different seat. Built on [`oxtail_proto::process`], the
//! one process helper (Linux and macOS). These calls read the process
//! table: the daemon makes them off the core thread.

use crate::state::Seat;
use oxtail_proto::process::Inspector;

/// The seat for process `pid`: its pid and start time (seconds since the
/// epoch), or `None` when no such process exists.
pub fn seat_of(pid: u32) -> Option<Seat> {
    Inspector::new().facts(pid).map(|f| Seat {
        pid,
        start_time: f.start_time,
    })
}

/// Whether the process of `seat` is still the one that started at
/// `seat.start_time`, reusing `inspector`.
pub fn seat_alive_with(inspector: &mut Inspector, seat: &Seat) -> bool {
    inspector
        .facts(seat.pid)
        .is_some_and(|f| f.start_time == seat.start_time)
}

/// Whether the process of `seat` is still the one that started at
/// `seat.start_time`.
pub fn seat_alive(seat: &Seat) -> bool {
    seat_alive_with(&mut Inspector::new(), seat)
}
