//! The simulated market: a mid price per symbol that is a pure function of the symbol, the
//! seed and the time since start, so two brokers started with the same seed quote the same
//! prices at the same offsets, and tests can predict fills.

use std::time::Duration;

/// The simulated market: a mid price per symbol that oscillates deterministically.
#[derive(Debug, Clone)]
pub struct Market {
    seed: u64,
    /// Period of one full price oscillation.
    pub period: Duration,
}

/// Relative amplitude of the oscillation around the base price (0.5 %).
pub const AMPLITUDE: f64 = 0.005;

impl Market {
    /// A market with this seed and oscillation period.
    pub fn new(seed: u64, period: Duration) -> Market {
        Market { seed, period }
    }

    /// Mid price of `symbol` at `t` since start, rounded to a 0.01 tick:
    /// `base · (1 + 0.5 % · sin(2π t / period + φ))`, with base in 100.00..199.99 and phase φ
    /// both derived from an FNV-1a hash of the symbol and the seed.
    pub fn mid(&self, symbol: &str, t: Duration) -> f64 {
        let h = fnv1a(symbol.as_bytes(), self.seed);
        let base = 100.0 + (h % 10_000) as f64 / 100.0;
        let phase = ((h >> 20) % 6283) as f64 / 1000.0;
        let x = std::f64::consts::TAU * t.as_secs_f64() / self.period.as_secs_f64().max(1e-3);
        let p = base * (1.0 + AMPLITUDE * (x + phase).sin());
        (p * 100.0).round() / 100.0
    }
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mid_price_is_deterministic_and_stays_within_the_amplitude() {
        let m = Market::new(7, Duration::from_secs(60));
        let a = m.mid("NIFTY", Duration::from_millis(1234));
        assert_eq!(a, m.mid("NIFTY", Duration::from_millis(1234)));
        let base = m.mid("NIFTY", Duration::ZERO);
        for s in 0..120 {
            let p = m.mid("NIFTY", Duration::from_secs(s));
            assert!((100.0..=201.0).contains(&p), "{p}");
            assert!((p - base).abs() <= base * 2.0 * AMPLITUDE + 0.02);
        }
    }
}
