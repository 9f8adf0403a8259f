//! The `latency` probe: order round-trip latency under a constant-rate open-model load
//! (docs/latency.md).
//!
//! Closed-loop load generators wait for a response before sending the next request, so a
//! stalled server also stalls the measurement and the tail disappears (coordinated omission,
//! Gil Tene). This probe sends on a fixed schedule (`start + i / rate`, [`load`]) and measures
//! each latency from the *intended* send time into an HdrHistogram ([`record`]); an uncorrected
//! twin, measured from the actual send, shows how much the correction mattered. It reports
//! count, achieved rate, errors by kind, mean, p50, p90, p99, p99.9, p99.99 and max, the
//! schedule lag, and exports `.hlog` / `.hgrm` files and an SVG percentile chart ([`chart`]).
//!
//! Fail closed: fewer than `min_samples` measured responses, a target that never answered,
//! or a rate that was not sustained are `error`, never `pass`.
//!
//! Orders are sent by the order client ([`crate::order`]); this probe owns the measurement and
//! the judgement. This file puts the probe together (validate, run, judge); one concern per
//! file below it:
//! - `config`: the keys as written ([`RawLatencyProbe`]) and the sizes of a run;
//! - `wire_keys`: the keys of what goes over the wire, per transport;
//! - [`load`]: the open-model load generator; [`record`]: its histograms;
//! - [`verdict`]: whose lateness failed a gate; `judge`: the checks and the summary;
//! - `outcome`: the measured values, the tables and the evidence files; [`chart`]: the SVG.

pub mod chart;
mod config;
mod judge;
pub mod load;
mod outcome;
pub mod record;
pub mod verdict;
mod wire_keys;

use std::time::Duration;

use super::{FieldError, ProbeContext, Validator};
use crate::model::ProbeOutput;
use crate::order::connect::Connector;
use crate::order::transport::Transport;
pub use config::{LatencyProbe, RawLatencyProbe};
use config::{optional_duration, timer_quantum};
use load::{LoadResult, Plan, Stall, Wire};
use outcome::{error_table, percentile_table};
use verdict::Rates;

impl RawLatencyProbe {
    /// Validate every value once.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<LatencyProbe, FieldError> {
        let transport = Transport::parse(self.transport.as_deref())?;
        let url = v.interpolate("url", &self.url)?;
        let (tls, host, port, wire) = self.wire(v, transport, &url.value)?;
        let rate = self.rate()?;
        let measured_requests = self.measured_requests(v, rate)?;
        let warmup = optional_duration(v, "warmup", self.warmup.as_deref())?.unwrap_or_default();
        let warmup_requests = (warmup.as_secs_f64() * rate).round() as u64;
        let threads = self.threads(rate)?;
        let connections = match (&wire, self.connections) {
            // One FIX session per CompID pair is what venues accept.
            (Wire::Fix(_), None) => 1,
            _ => self.connections(rate, threads)?,
        };
        let timeout = optional_duration(v, "timeout", self.timeout.as_deref())?
            .unwrap_or(Duration::from_secs(10));
        if timeout.is_zero() {
            return Err(FieldError::new("timeout", "expected more than 0"));
        }
        let mut wire = wire;
        if let Wire::Fix(f) = &mut wire {
            f.timeout = timeout;
        }
        let thresholds = self.thresholds(v)?;
        let max_error_rate = self.max_error_rate.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&max_error_rate) {
            return Err(FieldError::new(
                "max_error_rate",
                "expected a fraction from 0 to 1 (0.001 = 0.1 %)",
            ));
        }
        let min_samples = self.min_samples(&thresholds, measured_requests)?;
        let max_generator_lag =
            optional_duration(v, "max_generator_lag", self.max_generator_lag.as_deref())?;
        if max_generator_lag.is_some_and(|d| d.is_zero()) {
            return Err(FieldError::new("max_generator_lag", "expected more than 0"));
        }
        Ok(LatencyProbe {
            url_display: url.display.clone(),
            host,
            port,
            plan: Plan {
                tls,
                ca_file: self.ca_file.as_deref().map(std::path::PathBuf::from),
                wire,
                rate_per_s: rate,
                warmup_requests,
                measured_requests,
                connections,
                threads: threads.min(connections),
                coalesce_ns: timer_quantum(
                    rate / threads.min(connections) as f64,
                    max_generator_lag,
                )
                .as_nanos() as u64,
                timeout,
                seed: self.seed.unwrap_or(1),
                stall: None,
            },
            auto_connections: self.connections.is_none(),
            auto_threads: self.threads.is_none(),
            thresholds,
            max_error_rate,
            min_samples,
            max_generator_lag,
        })
    }
}

impl LatencyProbe {
    /// Run the load and judge it.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        let shown = self.shown();
        let addr = match tokio::net::lookup_host((self.host.as_str(), self.port)).await {
            Ok(mut addrs) => match addrs.next() {
                Some(a) => a,
                None => {
                    return ProbeOutput::error(format!("{shown}: {} has no address", self.host));
                }
            },
            Err(e) => {
                return ProbeOutput::error(format!("{shown}: cannot resolve {}: {e}", self.host));
            }
        };
        let connector = if self.plan.tls {
            let ca = match &self.plan.ca_file {
                Some(f) => {
                    let path = ctx.resolve(f);
                    match std::fs::read(&path) {
                        Ok(pem) => Some((path, pem)),
                        Err(e) => {
                            return ProbeOutput::error(format!(
                                "{shown}: reading CA file {}: {e}",
                                path.display()
                            ));
                        }
                    }
                }
                None => None,
            };
            let ca = ca.as_ref().map(|(p, pem)| (p.as_path(), pem.as_slice()));
            let alpn = self.plan.wire.alpn();
            match Connector::tls(addr, alpn, &self.host, ca) {
                Ok(c) => c,
                Err(e) => return ProbeOutput::error(format!("{shown}: {e}")),
            }
        } else {
            Connector::plain(addr)
        };
        let mut plan = self.plan.clone();
        plan.stall = match Stall::from_env() {
            Ok(stall) => stall,
            Err(m) => return ProbeOutput::error(format!("{shown}: {m}")),
        };
        let stall = plan.stall;
        let r = load::run(plan, connector, ctx.cancel.clone()).await;
        self.judge(ctx, &shown, r, stall)
    }

    fn judge(
        &self,
        ctx: &ProbeContext,
        shown: &str,
        r: LoadResult,
        stall: Option<Stall>,
    ) -> ProbeOutput {
        let mut o = ProbeOutput::default();
        let rt = Rates::of(&self.plan, &r);
        self.measure(&mut o, &r, &rt);
        // Evidence first, so even an error outcome carries what was measured.
        self.evidence(ctx, &r, &mut o);
        o.tables.push(percentile_table(&r));
        o.tables.push(self.generator_table(&r, stall));
        if rt.errors > 0 {
            o.tables.push(error_table(ctx, &r));
        }
        self.checks(&mut o, &r, &rt);
        self.summarize(&mut o, shown, &r, &rt);
        o.summary = ctx.redactor.redact(&o.summary);
        o
    }
}

crate::probe::probe_kind!(LatencyProbe, RawLatencyProbe, async);

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(extra: &str) -> RawLatencyProbe {
        toml::from_str(&format!(
            "url = \"http://127.0.0.1:9/api/v1/orders?x={{{{seq}}}}\"\nrate = 100.0\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn timers_coalesce_only_when_sends_come_closer_than_the_quantum() {
        // 10 000/s on one thread: a send every 100 µs, so a 250 µs quantum saves wake-ups.
        assert_eq!(timer_quantum(10_000.0, None), Duration::from_micros(250));
        // 1 000/s: a send every 1 ms; each gets its own exact wake-up.
        assert_eq!(timer_quantum(1_000.0, None), Duration::ZERO);
        // The quantum never exceeds a quarter of an explicit generator-lag bound.
        assert_eq!(
            timer_quantum(1_000_000.0, Some(Duration::from_micros(400))),
            Duration::from_micros(100)
        );
    }

    #[test]
    fn the_generator_lag_bound_has_no_default() {
        let mut v = Validator::default();
        let probe = |v: &mut Validator, extra: &str| {
            raw(&format!("count = 100000\n{extra}"))
                .validate(v)
                .unwrap()
        };
        assert_eq!(probe(&mut v, "p99 = \"500ms\"").max_generator_lag, None);
        assert_eq!(
            probe(&mut v, "max_generator_lag = \"5ms\"").max_generator_lag,
            Some(Duration::from_millis(5))
        );
    }

    #[test]
    fn connections_and_threads_are_chosen_from_the_rate() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let probe = |extra: &str| {
            toml::from_str::<RawLatencyProbe>(&format!(
                "url = \"http://127.0.0.1:9/\"\ncount = 1000\n{extra}"
            ))
            .unwrap()
            .validate(&mut Validator::default())
            .unwrap()
        };
        let low = probe("rate = 200.0");
        assert_eq!((low.plan.threads, low.plan.connections), (1, 4));
        assert!(low.auto_connections && low.auto_threads);
        let mid = probe("rate = 20000.0");
        assert_eq!((mid.plan.threads, mid.plan.connections), (1, 100));
        assert_eq!(mid.plan.coalesce_ns, 250_000);
        let high = probe("rate = 100000.0");
        assert_eq!(high.plan.threads, 2.min(cores));
        assert_eq!(high.plan.connections % high.plan.threads, 0);
        let set = probe("rate = 20000.0\nconnections = 16\nthreads = 2");
        assert_eq!((set.plan.threads, set.plan.connections), (2, 16));
        assert!(!set.auto_connections && !set.auto_threads);
    }

    #[test]
    fn too_few_samples_for_the_threshold_is_rejected_up_front() {
        let e = raw("duration = \"5s\"\np999 = \"10ms\"")
            .validate(&mut Validator::default())
            .unwrap_err();
        assert_eq!(e.key, "duration");
        assert!(e.message.contains("min_samples = 10000"), "{}", e.message);
        let ok = raw("duration = \"5s\"\np99 = \"10ms\"\nmin_samples = 500")
            .validate(&mut Validator::default())
            .unwrap();
        assert_eq!(ok.plan.measured_requests, 500);
    }

    #[test]
    fn duration_and_count_are_exclusive_and_one_is_required() {
        assert_eq!(
            raw("count = 500\nduration = \"5s\"")
                .validate(&mut Validator::default())
                .unwrap_err()
                .key,
            "count"
        );
        assert_eq!(
            raw("").validate(&mut Validator::default()).unwrap_err().key,
            "duration"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (extra, key) in [
            ("count = 500\nrate_typo = 1", ""),
            ("count = 500\nmax_error_rate = 2.0", "max_error_rate"),
            ("count = 500\np99 = \"100\"", "p99"),
            ("count = 500\nconnections = 0", "connections"),
            ("count = 500\nbody = \"{{nope}}\"", "body"),
        ] {
            let r: Result<RawLatencyProbe, _> = toml::from_str(&format!(
                "url = \"http://127.0.0.1:9/\"\nrate = 100.0\n{extra}"
            ));
            match r {
                Err(e) => assert!(key.is_empty(), "{extra}: {e}"),
                Ok(r) => assert_eq!(r.validate(&mut Validator::default()).unwrap_err().key, key),
            }
        }
    }
}
