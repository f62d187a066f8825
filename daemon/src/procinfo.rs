//! Process facts for seats: start times (so a reused pid is a different
//! seat) and liveness. Uses sysinfo, which reads /proc on Linux and sysctl on
//! macOS.

use crate::state::Seat;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// The seat for process `pid`: its pid and start time (seconds since the
/// epoch), or `None` when no such process exists.
pub fn seat_of(pid: u32) -> Option<Seat> {
    let mut sys = System::new().ok()?;
    let p = Pid::from_u32(pid);
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[p]),
        true,
        ProcessRefreshKind::nothing(),
    );
    sys.process(p).map(|proc_| Seat {
        pid,
        start_time: proc_.start_time(),
    })
}

/// Whether the process of `seat` is still the one that started at
/// `seat.start_time`.
pub fn seat_alive(seat: &Seat) -> bool {
    seat_of(seat.pid).is_some_and(|s| s.start_time == seat.start_time)
}
