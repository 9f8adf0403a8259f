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
    /// HTTP/1.1 requests matching the fault get an answer, a delay or a reset; the others are
    /// forwarded (see `http.rs`).
    Http(HttpFault),
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
            Fault::Http(h) => write!(f, "{h}"),
        }
    }
}

pub(super) fn serialize_duration<S: serde::Serializer>(
    d: &Duration,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// What a selected request gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum HttpEffect {
    /// An answer with this status (and a small JSON body), not forwarded.
    Status {
        /// The status code.
        status: u16,
    },
    /// Forwarded after this long.
    Delay {
        /// The delay.
        #[serde(serialize_with = "serialize_duration")]
        delay: Duration,
    },
    /// The connection is reset without an answer.
    Drop,
}

/// Which matching requests get the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// This fraction of them, in parts per million, spread evenly (the n-th matching request
    /// is selected when ⌊n·rate⌋ grows).
    RatePpm(u32),
    /// The first this many.
    Count(u64),
}

/// An HTTP fault: which requests, which of them, and what they get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpFault {
    /// The method (any when `None`), e.g. `POST`.
    pub method: Option<String>,
    /// A glob on the path without the query, e.g. `/api/v1/orders*`.
    pub path: String,
    /// What a selected request gets.
    #[serde(flatten)]
    pub effect: HttpEffect,
    /// Which matching requests are selected.
    pub selection: Selection,
}

impl std::fmt::Display for HttpFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.effect {
            HttpEffect::Status { status } => format!("answer {status}"),
            HttpEffect::Delay { delay } => format!("delay {}", humantime::format_duration(*delay)),
            HttpEffect::Drop => "drop the connection".to_string(),
        };
        let which = match self.selection {
            Selection::RatePpm(1_000_000) => "every".to_string(),
            Selection::RatePpm(p) => format!("{:.3} of", f64::from(p) / 1e6),
            Selection::Count(n) => format!("the first {n}"),
        };
        let method = self.method.as_deref().unwrap_or("any");
        write!(f, "http: {what} to {which} {method} {}", self.path)
    }
}

impl HttpFault {
    /// Whether a request with `method` and `path` matches.
    pub(super) fn matches(&self, method: &str, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or(path);
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && globset::Glob::new(&self.path).is_ok_and(|g| g.compile_matcher().is_match(path))
    }

    /// Whether the `n`-th matching request (from 1) is selected.
    pub(super) fn selects(&self, n: u64) -> bool {
        match self.selection {
            Selection::Count(c) => n <= c,
            Selection::RatePpm(p) => {
                let at = |k: u64| u128::from(k) * u128::from(p) / 1_000_000;
                at(n) > at(n - 1)
            }
        }
    }
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

    fn fault(selection: Selection) -> HttpFault {
        HttpFault {
            method: Some("POST".into()),
            path: "/api/v1/orders*".into(),
            effect: HttpEffect::Drop,
            selection,
        }
    }

    #[test]
    fn method_and_path_glob_match_and_rate_and_count_select_evenly() {
        let f = fault(Selection::RatePpm(500_000));
        assert!(f.matches("post", "/api/v1/orders?x=1"));
        assert!(!f.matches("GET", "/api/v1/orders"));
        assert!(!f.matches("POST", "/healthz"));
        let picked: Vec<u64> = (1..=6).filter(|n| f.selects(*n)).collect();
        assert_eq!(picked, [2, 4, 6]);
        let f = fault(Selection::Count(2));
        let picked: Vec<u64> = (1..=6).filter(|n| f.selects(*n)).collect();
        assert_eq!(picked, [1, 2]);
        assert_eq!(
            f.to_string(),
            "http: drop the connection to the first 2 POST /api/v1/orders*"
        );
    }
}
