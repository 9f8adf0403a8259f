//! The faults a proxy can apply, and how each is shown and serialised.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// One fault. Applying a fault replaces the active one; see the module docs for what each
/// does to new and existing connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The dependency is down: the listener is closed (new `connect()` calls are refused with
    /// `ECONNREFUSED`) and every open connection is reset (`SO_LINGER` 0, then closed).
    Down,
    /// The dependency hangs: connections are accepted but nothing is forwarded either way;
    /// bytes read from either side are discarded.
    Blackhole,
    /// Every chunk forwarded, in both directions, is delayed by `latency` ± a uniform draw in
    /// `[-jitter, +jitter]` (never below zero). Order within a connection is kept. A
    /// request/response round trip therefore gains about 2 × `latency`.
    Latency {
        /// Added delay per chunk and direction.
        #[serde(serialize_with = "serialize_duration")]
        latency: Duration,
        /// Half-width of the uniform jitter around `latency`.
        #[serde(serialize_with = "serialize_duration")]
        jitter: Duration,
    },
    /// Reset a connection once it has forwarded `bytes` bytes (client → upstream and
    /// upstream → client together), counted from when the fault was applied. Exactly `bytes`
    /// are forwarded; the rest of the chunk that crosses the limit is discarded. Bytes still
    /// in the kernel's send buffer toward the client may be lost with the reset, as with a
    /// real RST.
    ResetAfter {
        /// Byte budget per connection.
        bytes: u64,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Down => f.write_str("down"),
            Fault::Blackhole => f.write_str("blackhole"),
            Fault::Latency { latency, jitter } => write!(
                f,
                "latency {} ± {}",
                humantime::format_duration(*latency),
                humantime::format_duration(*jitter)
            ),
            Fault::ResetAfter { bytes } => write!(f, "reset after {bytes} bytes"),
        }
    }
}

fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_well_and_serialize_with_their_kind() {
        let latency = Fault::Latency {
            latency: Duration::from_millis(200),
            jitter: Duration::from_millis(20),
        };
        assert_eq!(latency.to_string(), "latency 200ms ± 20ms");
        assert_eq!(
            serde_json::to_value(&latency).unwrap(),
            serde_json::json!({"kind": "latency", "latency": "200ms", "jitter": "20ms"})
        );
        assert_eq!(
            serde_json::to_value(Fault::ResetAfter { bytes: 10 }).unwrap(),
            serde_json::json!({"kind": "reset_after", "bytes": 10})
        );
    }
}
