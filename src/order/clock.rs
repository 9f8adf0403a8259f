//! The order client's clock: nanoseconds of `CLOCK_MONOTONIC` (read through the vDSO,
//! ~20 ns). Connection set-up times are measured on it, and so is every time of the latency
//! probe's generator, whose timer counts in the same clock.

use std::time::Duration;

/// Nanoseconds of `CLOCK_MONOTONIC`.
pub fn now_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// The duration from `earlier` to `later` (both [`now_ns`] values); zero when `later` is not
/// later.
pub fn since(later: u64, earlier: u64) -> Duration {
    Duration::from_nanos(later.saturating_sub(earlier))
}
