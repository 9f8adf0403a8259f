//! Fault injection for rehearsals and tests, off unless asked for: added latency with jitter,
//! periodic stalls, an error rate and memory retained per order.
//!
//! Two layers: the command-line configuration, fixed for the process, and the runtime
//! overrides that drills set through `POST /admin/faults` ([`FaultUpdate`]) and clear with
//! `DELETE /admin/faults`. An override wins over the command line while it is set; a runtime
//! stall holds every request from the moment it is set; `reject_logins` makes the API answer
//! as a broker whose login session expired.
//!
//! The stall schedule is a pure function of the time since start
//! (`[after + k·every, after + k·every + for)`), so a test knows exactly when a stall happens.
//! The retained memory is really allocated and written byte by byte, so the process's resident
//! set grows (a leak that memory probes can catch), not just its virtual size.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::PaperBrokerArgs;
use crate::order::template::Rng;

/// The configured faults and their state.
#[derive(Debug, Default)]
pub struct Faults {
    latency: Duration,
    jitter: Duration,
    stall: Option<Stall>,
    error_rate: f64,
    leak_per_order: usize,
    rng: Mutex<Rng>,
    retained: Mutex<Vec<Box<[u8]>>>,
    retained_bytes: AtomicU64,
    runtime: Mutex<Overrides>,
}

/// The runtime overrides set through `POST /admin/faults`; `None` falls back to the command
/// line.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Overrides {
    error_rate: Option<f64>,
    latency: Option<Duration>,
    jitter: Option<Duration>,
    stall_until: Option<Instant>,
    reject_logins: bool,
}

/// The JSON body of `POST /admin/faults`, as sent; see [`FaultUpdate`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFaultUpdate {
    unhealthy: Option<bool>,
    error_rate: Option<f64>,
    latency: Option<String>,
    jitter: Option<String>,
    stall_for: Option<String>,
    reject_logins: Option<bool>,
}

/// A validated `POST /admin/faults` update: fields present are set, absent ones stay as they
/// are.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct FaultUpdate {
    /// Turn `/healthz` to 503 (`true`) or back to 200 (`false`).
    pub unhealthy: Option<bool>,
    /// Fraction of order requests answered with HTTP 503, 0 to 1.
    pub error_rate: Option<f64>,
    /// Added latency per order request.
    pub latency: Option<Duration>,
    /// Uniform random extra latency per order request, from 0 to this.
    pub jitter: Option<Duration>,
    /// Hold every request (health included, `/admin` and `/metrics` excepted) from now for
    /// this long; zero ends a runtime stall.
    pub stall_for: Option<Duration>,
    /// Answer every `/api` request with 401 `{"error":"not logged in"}`.
    pub reject_logins: Option<bool>,
}

impl TryFrom<RawFaultUpdate> for FaultUpdate {
    type Error = String;

    /// # Errors
    /// A message naming the field: an error rate outside 0..1, a duration without a unit.
    fn try_from(raw: RawFaultUpdate) -> Result<FaultUpdate, String> {
        let duration = |field: &str, v: Option<String>| {
            v.map(|t| crate::units::parse_duration(&t).map_err(|e| format!("{field}: {e}")))
                .transpose()
        };
        if let Some(r) = raw.error_rate
            && !(0.0..=1.0).contains(&r)
        {
            return Err(format!(
                "error_rate: invalid fraction {r}: expected a number from 0 to 1"
            ));
        }
        Ok(FaultUpdate {
            unhealthy: raw.unhealthy,
            error_rate: raw.error_rate,
            latency: duration("latency", raw.latency)?,
            jitter: duration("jitter", raw.jitter)?,
            stall_for: duration("stall_for", raw.stall_for)?,
            reject_logins: raw.reject_logins,
        })
    }
}

impl FaultUpdate {
    /// Parse and validate a `POST /admin/faults` body.
    ///
    /// # Errors
    /// A message naming the field for malformed JSON, an unknown field, a value of the wrong
    /// type or out of range.
    pub fn from_json(body: &[u8]) -> Result<FaultUpdate, String> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        let raw: RawFaultUpdate = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            if e.inner().is_data() && path != "." {
                format!("{path}: {}", e.inner())
            } else {
                format!("invalid faults: {}", e.inner())
            }
        })?;
        FaultUpdate::try_from(raw)
    }
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
            rng: Mutex::new(Rng::new(a.seed ^ 0x9e37_79b9_7f4a_7c15)),
            retained: Mutex::new(Vec::new()),
            retained_bytes: AtomicU64::new(0),
            runtime: Mutex::new(Overrides::default()),
        })
    }

    fn overrides(&self) -> std::sync::MutexGuard<'_, Overrides> {
        self.runtime.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Apply the fault fields of a runtime update (health is the caller's: it lives in the
    /// broker state).
    pub fn apply(&self, u: &FaultUpdate, now: Instant) {
        let mut o = self.overrides();
        if let Some(r) = u.error_rate {
            o.error_rate = Some(r);
        }
        if let Some(l) = u.latency {
            o.latency = Some(l);
        }
        if let Some(j) = u.jitter {
            o.jitter = Some(j);
        }
        if let Some(s) = u.stall_for {
            o.stall_until = (!s.is_zero()).then(|| now + s);
        }
        if let Some(r) = u.reject_logins {
            o.reject_logins = r;
        }
    }

    /// Drop every runtime override: back to the command-line configuration.
    pub fn clear_runtime(&self) {
        *self.overrides() = Overrides::default();
    }

    /// True while `/api` requests are answered as by a broker whose login expired.
    pub fn rejects_logins(&self) -> bool {
        self.overrides().reject_logins
    }

    /// The faults in effect (runtime overrides over the command line), as JSON for
    /// `GET /admin/faults`: `{"error_rate": 0.0, "latency": "0s", "jitter": "0s",
    /// "stall_remaining": "2s 500ms"|null, "reject_logins": false, "runtime_overrides": […]}`
    /// where `runtime_overrides` names the fields set at runtime.
    pub fn effective_json(&self, now: Instant) -> serde_json::Value {
        let o = *self.overrides();
        let mut set = Vec::new();
        for (name, on) in [
            ("error_rate", o.error_rate.is_some()),
            ("latency", o.latency.is_some()),
            ("jitter", o.jitter.is_some()),
            ("stall_for", o.stall_until.is_some_and(|u| u > now)),
            ("reject_logins", o.reject_logins),
        ] {
            if on {
                set.push(name);
            }
        }
        let stall = o
            .stall_until
            .and_then(|u| u.checked_duration_since(now))
            .filter(|d| !d.is_zero());
        serde_json::json!({
            "error_rate": o.error_rate.unwrap_or(self.error_rate),
            "latency": humantime::format_duration(o.latency.unwrap_or(self.latency)).to_string(),
            "jitter": humantime::format_duration(o.jitter.unwrap_or(self.jitter)).to_string(),
            "stall_remaining": stall.map(|d| humantime::format_duration(d).to_string()),
            "reject_logins": o.reject_logins,
            "runtime_overrides": set,
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

    /// Remaining stall time for a request arriving at `t` since start (the scheduled stall)
    /// or at `now` (a runtime stall), whichever is longer.
    pub fn stall_remaining(&self, t: Duration, now: Instant) -> Option<Duration> {
        let scheduled = self.stall.and_then(|s| s.remaining(t));
        let runtime = self
            .overrides()
            .stall_until
            .and_then(|u| u.checked_duration_since(now))
            .filter(|d| !d.is_zero());
        scheduled.max(runtime)
    }

    /// The latency to add to one API request (`latency + U(0, jitter)`), `None` when zero.
    pub fn added_latency(&self) -> Option<Duration> {
        let (latency, jitter) = {
            let o = self.overrides();
            (
                o.latency.unwrap_or(self.latency),
                o.jitter.unwrap_or(self.jitter),
            )
        };
        if latency.is_zero() && jitter.is_zero() {
            return None;
        }
        let extra = if jitter.is_zero() {
            Duration::ZERO
        } else {
            let u = self.draw_unit();
            jitter.mul_f64(u)
        };
        Some(latency + extra)
    }

    /// True when this request should fail (probability `error_rate`).
    pub fn draw_error(&self) -> bool {
        let rate = self.overrides().error_rate.unwrap_or(self.error_rate);
        rate > 0.0 && self.draw_unit() < rate
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

/// Delays up to this long are slept on a blocking thread, to the OS sleep's precision.
const PRECISE_UP_TO: Duration = Duration::from_millis(50);

/// Wait `d`, the added latency of one request: to the precision of the OS sleep (tens of µs,
/// the kernel's timer slack) for delays up to 50 ms, where the runtime's timer would round up to
/// its next 1 ms tick and turn an added 1 ms into about 2 ms; longer ones on the runtime's timer.
pub async fn added_delay(d: Duration) {
    if d <= PRECISE_UP_TO {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(d)).await;
    } else {
        tokio::time::sleep(d).await;
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
    fn fault_update_names_the_bad_field() {
        let e = FaultUpdate::from_json(br#"{"error_rate": 1.5}"#).unwrap_err();
        assert!(e.starts_with("error_rate:"), "{e}");
        let e = FaultUpdate::from_json(br#"{"latency": "50"}"#).unwrap_err();
        assert!(e.starts_with("latency: invalid duration"), "{e}");
        let e = FaultUpdate::from_json(br#"{"stall_for": 3}"#).unwrap_err();
        assert!(e.starts_with("stall_for:"), "{e}");
        let e = FaultUpdate::from_json(br#"{"unhealty": true}"#).unwrap_err();
        assert!(e.contains("unknown field `unhealty`"), "{e}");
        let e = FaultUpdate::from_json(b"{").unwrap_err();
        assert!(e.starts_with("invalid faults:"), "{e}");
    }

    #[test]
    fn runtime_overrides_win_until_cleared() {
        let f = Faults::default();
        let now = Instant::now();
        let u = FaultUpdate::from_json(
            br#"{"error_rate": 1, "latency": "50ms", "stall_for": "3s", "reject_logins": true}"#,
        )
        .unwrap();
        f.apply(&u, now);
        assert!(f.draw_error());
        assert_eq!(f.added_latency(), Some(Duration::from_millis(50)));
        assert_eq!(
            f.stall_remaining(Duration::ZERO, now + Duration::from_secs(1)),
            Some(Duration::from_secs(2))
        );
        assert!(f.rejects_logins());
        // An absent field stays as it was.
        f.apply(
            &FaultUpdate::from_json(br#"{"latency": "1ms"}"#).unwrap(),
            now,
        );
        assert!(f.rejects_logins());
        f.clear_runtime();
        assert!(!f.draw_error());
        assert_eq!(f.added_latency(), None);
        assert_eq!(f.stall_remaining(Duration::ZERO, now), None);
        assert!(!f.rejects_logins());
    }
}
