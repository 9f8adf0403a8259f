//! Clocks of the soak tracker: the wall clock (UTC milliseconds since the Unix epoch), the
//! monotonic clock (`CLOCK_BOOTTIME`, milliseconds since boot, which keeps counting through
//! suspend) and the boot id (`/proc/sys/kernel/random/boot_id`, new on every boot).
//!
//! Durations always come from the monotonic clock; the wall clock only places them on the
//! calendar. Tests (and drills) can offset the wall clock with a file holding a signed
//! duration such as `+1h` or `-30m`, re-read on every reading, to simulate NTP steps while the
//! monotonic clock stays real.

use std::path::PathBuf;

/// The tracker's clocks.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// A file holding a signed humantime offset added to the wall clock (`+1h`, `-90s`, `0s`).
    pub offset_file: Option<PathBuf>,
}

impl Clock {
    /// Wall-clock time in milliseconds since the Unix epoch (UTC), plus the offset file's value.
    pub fn wall_ms(&self) -> i64 {
        let now = jiff::Timestamp::now().as_millisecond();
        now + self.offset_ms()
    }

    fn offset_ms(&self) -> i64 {
        let Some(path) = &self.offset_file else {
            return 0;
        };
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| parse_signed_ms(&t))
            .unwrap_or(0)
    }

    /// Monotonic time in milliseconds (`CLOCK_BOOTTIME`: since boot, counting suspend).
    pub fn mono_ms(&self) -> i64 {
        mono_ms()
    }
}

/// `CLOCK_BOOTTIME` in milliseconds; falls back to `CLOCK_MONOTONIC` where unsupported.
pub fn mono_ms() -> i64 {
    use nix::time::{ClockId, clock_gettime};
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME)
        .or_else(|_| clock_gettime(ClockId::CLOCK_MONOTONIC))
        .expect("a monotonic clock is available");
    ts.tv_sec() * 1000 + ts.tv_nsec() / 1_000_000
}

/// Parse a signed humantime duration (`+1h`, `-30m`, `0s`) into milliseconds.
pub fn parse_signed_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let d = humantime::parse_duration(rest.trim()).ok()?;
    Some(sign * d.as_millis() as i64)
}

/// The kernel's boot id (a UUID, new on every boot); `unknown` when unreadable.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_offsets_parse_both_ways() {
        assert_eq!(parse_signed_ms("+1h"), Some(3_600_000));
        assert_eq!(parse_signed_ms("-1h\n"), Some(-3_600_000));
        assert_eq!(parse_signed_ms("250ms"), Some(250));
        assert_eq!(parse_signed_ms("soon"), None);
    }

    #[test]
    fn monotonic_clock_does_not_go_back() {
        let a = mono_ms();
        let b = mono_ms();
        assert!(b >= a && a > 0);
    }
}
