//! The generator's one timer per thread.
//!
//! Every time is nanoseconds of `CLOCK_MONOTONIC` ([`crate::order::clock`]), the clock the
//! kernel's `timerfd` counts in, so an intended send time is handed to the kernel as it
//! is: one absolute deadline (`TFD_TIMER_ABSTIME`), no conversion and no rounding. tokio's own
//! timer wheel ticks in whole milliseconds, which alone would make every send up to 1 ms late;
//! the `timerfd` wakes within tens of microseconds and is polled by the same epoll as the
//! sockets, so a runtime thread sleeps in exactly one place.
//!
//! One [`Timer`] serves all the connections of a runtime thread: it is armed only when that
//! thread has nothing due, for the earliest intended send. Sends that fall due while the thread
//! is busy are released together when it looks again, without a timer at all, so the number of
//! timer wakes per request falls as the rate rises ([`Timer::wakes`] counts them).

use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

use crate::order::clock::now_ns;

struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// An absolute-deadline timer on `CLOCK_MONOTONIC`, registered with the current tokio
/// runtime's I/O driver.
pub struct Timer {
    fd: AsyncFd<Fd>,
    wakes: u64,
}

impl Timer {
    /// A new timer on the current runtime.
    ///
    /// # Errors
    /// The `timerfd_create(2)` or epoll registration error, as text.
    pub fn new() -> Result<Timer, String> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(|e| format!("timerfd_create: {e}"))?;
        // SAFETY: `Fd` owns the `TimerFd` and returns its one descriptor for as long as it
        // lives; nothing else closes or replaces it, so the registration stays valid for the
        // lifetime of the `AsyncFd` (tokio's I/O-safety condition for `register`).
        #[allow(unsafe_code)]
        let fd = unsafe { AsyncFd::register(Fd(fd)) }
            .map_err(|e| format!("registering the timer: {e}"))?;
        Ok(Timer { fd, wakes: 0 })
    }

    /// Sleep until [`now_ns`] ≥ `deadline_ns`; returns at once when it already is.
    ///
    /// # Errors
    /// A `timerfd_settime(2)` or `read(2)` error, as text.
    pub async fn sleep_until(&mut self, deadline_ns: u64) -> Result<(), String> {
        if now_ns() >= deadline_ns {
            return Ok(());
        }
        let at = TimeSpec::new(
            (deadline_ns / 1_000_000_000) as _,
            (deadline_ns % 1_000_000_000) as _,
        );
        self.fd
            .get_ref()
            .0
            .set(
                Expiration::OneShot(at),
                TimerSetTimeFlags::TFD_TIMER_ABSTIME,
            )
            .map_err(|e| format!("timerfd_settime: {e}"))?;
        self.wakes += 1;
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| format!("waiting for the timer: {e}"))?;
            let mut expirations = [0u8; 8];
            match nix::unistd::read(self.fd.get_ref().0.as_fd(), &mut expirations) {
                Ok(_) => {
                    // Read, the timer is not readable again until it is re-armed and fires.
                    guard.clear_ready();
                    return Ok(());
                }
                Err(Errno::EAGAIN) => guard.clear_ready(),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(format!("reading the timer: {e}")),
            }
        }
    }

    /// How many times this timer was armed (each one a wake-up of its thread).
    pub fn wakes(&self) -> u64 {
        self.wakes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_never_returns_before_its_deadline() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut t = Timer::new().unwrap();
            for step_us in [0u64, 50, 300, 1_000] {
                let deadline = now_ns() + step_us * 1_000;
                t.sleep_until(deadline).await.unwrap();
                assert!(now_ns() >= deadline);
            }
            // A deadline in the past returns without arming.
            let before = t.wakes();
            t.sleep_until(now_ns().saturating_sub(1_000)).await.unwrap();
            assert_eq!(t.wakes(), before);
        });
    }
}
