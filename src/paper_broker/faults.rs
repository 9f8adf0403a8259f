//! Fault injection for rehearsals and tests, off unless asked for: added latency with jitter,
//! periodic stalls, an error rate and memory retained per order.
//!
//! The stall schedule is a pure function of the time since start
//! (`[after + k·every, after + k·every + for)`), so a test knows exactly when a stall happens.
//! The retained memory is really allocated and written byte by byte, so the process's resident
//! set grows (a leak that memory probes can catch), not just its virtual size.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::PaperBrokerArgs;

/// The configured faults and their state.
#[derive(Debug, Default)]
pub struct Faults {
    latency: Duration,
    jitter: Duration,
    stall: Option<Stall>,
    error_rate: f64,
    leak_per_order: usize,
    rng: Mutex<SplitMix64>,
    retained: Mutex<Vec<Box<[u8]>>>,
    retained_bytes: AtomicU64,
}

/// A stall schedule: windows of `length` starting at `first`, repeating every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// Start of the first stall, since the broker started.
    pub first: Duration,
    /// Length of each stall.
    pub length: Duration,
    /// Period between stall starts; `None` for a single stall.
    pub every: Option<Duration>,
}

impl Stall {
    /// How long a request arriving at `t` (since start) must wait; `None` outside stalls.
    pub fn remaining(&self, t: Duration) -> Option<Duration> {
        if t < self.first {
            return None;
        }
        let into = t - self.first;
        let offset = match self.every {
            Some(p) if !p.is_zero() => {
                Duration::from_nanos((into.as_nanos() % p.as_nanos()) as u64)
            }
            _ => into,
        };
        (offset < self.length).then(|| self.length - offset)
    }
}

impl Faults {
    /// Build from the command line.
    ///
    /// # Errors
    /// A message for inconsistent options (a stall without a length, a period shorter than the
    /// stall).
    pub fn from_args(a: &PaperBrokerArgs) -> Result<Faults, String> {
        let stall = match (a.stall_after, a.stall_for, a.stall_every) {
            (None, None, None) => None,
            (_, None, _) => {
                return Err(
                    "--stall-after/--stall-every need --stall-for (the stall length)".into(),
                );
            }
            (after, Some(length), every) => {
                if length.is_zero() {
                    return Err("--stall-for must be longer than 0".into());
                }
                if let Some(p) = every
                    && p <= length
                {
                    return Err("--stall-every must be longer than --stall-for".into());
                }
                let first = match (after, every) {
                    (Some(f), _) => f,
                    (None, Some(p)) => p,
                    (None, None) => {
                        return Err("--stall-for needs --stall-after or --stall-every".into());
                    }
                };
                Some(Stall {
                    first,
                    length,
                    every,
                })
            }
        };
        let leak = usize::try_from(a.leak_per_order.unwrap_or(0))
            .map_err(|_| "--leak-per-order is too large".to_string())?;
        Ok(Faults {
            latency: a.latency.unwrap_or_default(),
            jitter: a.jitter.unwrap_or_default(),
            stall,
            error_rate: a.error_rate.unwrap_or(0.0),
            leak_per_order: leak,
            rng: Mutex::new(SplitMix64(a.seed ^ 0x9e37_79b9_7f4a_7c15)),
            retained: Mutex::new(Vec::new()),
            retained_bytes: AtomicU64::new(0),
        })
    }

    /// One line for the startup log.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.latency.is_zero() || !self.jitter.is_zero() {
            parts.push(format!(
                "latency {:?} + jitter up to {:?}",
                self.latency, self.jitter
            ));
        }
        if let Some(s) = self.stall {
            parts.push(match s.every {
                Some(p) => format!("stall {:?} at {:?} and every {:?}", s.length, s.first, p),
                None => format!("one stall of {:?} at {:?}", s.length, s.first),
            });
        }
        if self.error_rate > 0.0 {
            parts.push(format!("error rate {}", self.error_rate));
        }
        if self.leak_per_order > 0 {
            parts.push(format!("retain {} B per order", self.leak_per_order));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }

    /// Remaining stall time for a request arriving at `t` since start.
    pub fn stall_remaining(&self, t: Duration) -> Option<Duration> {
        self.stall.and_then(|s| s.remaining(t))
    }

    /// The latency to add to one API request (`latency + U(0, jitter)`), `None` when zero.
    pub fn added_latency(&self) -> Option<Duration> {
        if self.latency.is_zero() && self.jitter.is_zero() {
            return None;
        }
        let extra = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            let u = self.draw_unit();
            self.jitter.mul_f64(u)
        };
        Some(self.latency + extra)
    }

    /// True when this request should fail (probability `error_rate`).
    pub fn draw_error(&self) -> bool {
        self.error_rate > 0.0 && self.draw_unit() < self.error_rate
    }

    fn draw_unit(&self) -> f64 {
        let mut r = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        r.next_unit()
    }

    /// Retain `leak_per_order` bytes for one accepted order, writing every byte so the pages
    /// are resident.
    pub fn retain_for_order(&self) {
        if self.leak_per_order == 0 {
            return;
        }
        let block = vec![0xA5u8; self.leak_per_order].into_boxed_slice();
        self.retained
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(block);
        self.retained_bytes
            .fetch_add(self.leak_per_order as u64, Ordering::Relaxed);
    }

    /// Bytes retained so far.
    pub fn retained_bytes(&self) -> u64 {
        self.retained_bytes.load(Ordering::Relaxed)
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, seedable generator; good enough for jitter
/// and error draws, not for cryptography.
#[derive(Debug, Default, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform draw in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_stall_holds_requests_until_it_ends() {
        let s = Stall {
            first: Duration::from_secs(20),
            length: Duration::from_secs(1),
            every: None,
        };
        assert_eq!(s.remaining(Duration::from_secs(19)), None);
        assert_eq!(
            s.remaining(Duration::from_millis(20_250)),
            Some(Duration::from_millis(750))
        );
        assert_eq!(s.remaining(Duration::from_secs(21)), None);
        assert_eq!(s.remaining(Duration::from_secs(50)), None);
    }

    #[test]
    fn periodic_stall_repeats() {
        let s = Stall {
            first: Duration::from_secs(5),
            length: Duration::from_secs(1),
            every: Some(Duration::from_secs(30)),
        };
        assert_eq!(
            s.remaining(Duration::from_millis(35_500)),
            Some(Duration::from_millis(500))
        );
        assert_eq!(s.remaining(Duration::from_secs(37)), None);
    }

    #[test]
    fn unit_draws_stay_in_range() {
        let mut r = SplitMix64(1);
        for _ in 0..1000 {
            let u = r.next_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
