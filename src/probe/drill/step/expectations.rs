//! Expectations as written: the keys every expectation takes ([`Timing`]), each kind's own keys
//! (one struct per kind, `deny_unknown_fields`) and how they validate into the
//! [`Expectation`] (`step/observed.rs`) the run polls (`drill/observe.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

pub use super::observed::{Count, Expectation, LogFrom, Observe, PromCheck, Since};
use super::request::RawRequest;
use super::venue::Orders;
use crate::keys::{http_expect, shared_keys};
use crate::probe::prometheus::api::RawServer;
use crate::probe::sql::RawSqlProbe;
use crate::probe::{FieldError, Validator};

/// Default poll interval of an expectation.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// Keys that validate into what an expectation observes.
pub trait ExpectKeys {
    /// Validate; `timing` tells whether the value is saved or compared with a saved one.
    /// Errors name the key relative to the step.
    fn validate(self, timing: &Timing, v: &mut Validator) -> Result<Observe, FieldError>;
}

/// The keys every expectation takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Deadline, counted from the last action (humantime).
    pub within: String,
    /// Once it holds, it must keep holding this long (humantime), e.g. no second notification.
    pub hold: Option<String>,
    /// Poll interval (humantime). Default `"100ms"`; measured times are exact to one interval.
    pub interval: Option<String>,
    /// Keep the observed value under this name for a later `equals_saved`.
    pub save: Option<String>,
    /// Hold only when the observed value equals the one saved under this name.
    pub equals_saved: Option<String>,
}

/// An expectation as written: the keys every expectation takes and its kind's own.
#[derive(Debug)]
pub struct Expect<K> {
    /// `within`, `hold`, `interval`, `save`, `equals_saved`.
    pub timing: Timing,
    /// The kind's keys.
    pub keys: K,
}

impl<K: ExpectKeys> Expect<K> {
    /// Validate into an [`Expectation`].
    pub(super) fn validate(self, v: &mut Validator) -> Result<Expectation, FieldError> {
        let observe = self.keys.validate(&self.timing, v)?;
        let t = self.timing;
        let within = v.duration("within", &t.within)?;
        let hold = t
            .hold
            .as_deref()
            .map(|h| v.duration("hold", h))
            .transpose()?;
        let interval = match t.interval.as_deref() {
            Some(i) => v.duration("interval", i)?,
            None => DEFAULT_INTERVAL,
        };
        if interval.is_zero() {
            return Err(FieldError::new("interval", "expected a positive interval"));
        }
        Ok(Expectation {
            observe,
            within,
            hold,
            interval,
            save: t.save,
            equals_saved: t.equals_saved,
        })
    }
}

shared_keys! {
    [http_expect]
/// An HTTP response, judged by the `http` probe's rules; or, with `reachable = false`, no
/// response at all.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// The URL; `${VAR}` and `${saved.NAME}` are put in.
    pub url: String,
    /// The method. Default `GET`.
    pub method: Option<String>,
    /// Request headers; values may use `${VAR}` and `${saved.NAME}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `false`: holds when the request gets no answer (refused, reset or timed out at the
    /// deadline); takes none of the response keys. Default `true`.
    pub reachable: Option<bool>,
}
}

/// A Prometheus instant query's value, or an alert's state.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prometheus {
    /// The server's base URL, e.g. `"http://127.0.0.1:9090"`; `${VAR}` is interpolated.
    pub url: String,
    /// A bearer token; `${VAR}` is interpolated and redacted.
    pub bearer_token: Option<String>,
    /// A PromQL instant query; every sample it returns must meet `min`/`max`/`equals` (no
    /// sample never holds).
    pub query: Option<String>,
    /// Every sample is at least this.
    pub min: Option<f64>,
    /// Every sample is at most this.
    pub max: Option<f64>,
    /// Every sample equals this.
    pub equals: Option<f64>,
    /// An alerting rule's name (from `/api/v1/rules`); excludes `query`.
    pub alert: Option<String>,
    /// With `alert`: `true` (default) holds while it fires, `false` while it does not (it
    /// must still be loaded).
    pub firing: Option<bool>,
}

/// A `[[service]]`'s exit with a code, not SIGKILLed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exit {
    /// The `[[service]]`.
    pub service: String,
    /// The expected exit code. Default 0.
    pub code: Option<i32>,
}

/// Rows of a read-only query, judged as the `sql` probe judges them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sql {
    /// A SQLite file, relative to the checklist.
    pub sqlite: Option<String>,
    /// A PostgreSQL URL; `${VAR}` is interpolated.
    pub url: Option<String>,
    /// The query.
    pub query: String,
    /// Exact row count.
    pub rows: Option<u64>,
    /// `true` for no rows.
    pub empty: Option<bool>,
    /// The first column of the first row equals this.
    pub equals: Option<serde_json::Value>,
    /// The first value is at least this.
    pub min: Option<f64>,
    /// The first value is at most this.
    pub max: Option<f64>,
}

/// Messages a `[[sink]]` received.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// The `[[sink]]`.
    pub sink: String,
    /// A regular expression the messages must match.
    pub matches: Option<String>,
    /// Exactly this many. Default: at least 1.
    pub count: Option<u64>,
    /// At least this many.
    pub at_least: Option<u64>,
    /// At most this many.
    pub at_most: Option<u64>,
    /// Count from the last `action` (default) or the `drill` start.
    pub since: Option<String>,
}

/// Lines a `[[service]]` wrote, or the lines of log files, a unit's journal or a command's
/// output: the aggregated log, where `marker = true` finds the line an earlier step wrote with
/// `${drill.marker}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// The `[[service]]` whose output is read.
    pub service: Option<String>,
    /// Log files: paths or glob patterns relative to the checklist's folder, rotated and `.gz`
    /// files included, as in `kind = "log"`. Needs `marker = true`.
    pub files: Option<Vec<String>>,
    /// A systemd unit whose journal is read (`journalctl -o json -u <unit>`). Needs `marker =
    /// true`.
    pub unit: Option<String>,
    /// A command whose output is the lines, e.g. `["logcli", "query", "{job=\"agent\"}"]`.
    /// Needs `marker = true`.
    pub command: Option<Vec<String>>,
    /// Time allowed for `journalctl` or the command, each poll (humantime). Default `"10s"`.
    pub timeout: Option<String>,
    /// A regular expression the lines must match.
    pub matches: Option<String>,
    /// Only lines carrying this drill attempt's marker count (`${drill.marker}` in an action,
    /// `$PRODREADY_DRILL_MARKER` in a command).
    pub marker: Option<bool>,
    /// Exactly this many. Default: at least 1.
    pub count: Option<u64>,
    /// At least this many.
    pub at_least: Option<u64>,
    /// At most this many.
    pub at_most: Option<u64>,
    /// Count a service's lines from the last `action` (default) or the `drill` start.
    pub since: Option<String>,
}

/// A `[[service]]`'s process.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// The `[[service]]`.
    pub service: String,
    /// The service runs (`true`, default) or does not.
    pub running: Option<bool>,
    /// The same process as when the drill started (PID unchanged, never restarted).
    pub unchanged: Option<bool>,
    /// At most this many starts of the service since the drill started (its own
    /// `start`/`restart` actions and restores included).
    pub max_restarts: Option<u32>,
}

/// `count` (exact) or `at_least`/`at_most`; neither: at least `default_min`.
fn count(
    count: Option<u64>,
    at_least: Option<u64>,
    at_most: Option<u64>,
    default_min: u64,
) -> Result<Count, FieldError> {
    match (count, at_least, at_most) {
        (Some(n), None, None) => Ok(Count {
            min: n,
            max: Some(n),
        }),
        (Some(_), _, _) => Err(FieldError::new(
            "count",
            "count is exact; it excludes at_least and at_most",
        )),
        (None, None, None) => Ok(Count {
            min: default_min,
            max: None,
        }),
        (None, lo, hi) => {
            if let (Some(l), Some(h)) = (lo, hi)
                && l > h
            {
                return Err(FieldError::new("at_most", "at_most is below at_least"));
            }
            Ok(Count {
                min: lo.unwrap_or(0),
                max: hi,
            })
        }
    }
}

fn since(since: Option<&str>) -> Result<Since, FieldError> {
    match since {
        None | Some("action") => Ok(Since::Action),
        Some("drill") => Ok(Since::Drill),
        Some(other) => Err(FieldError::new(
            "since",
            format!(
                "unknown value \"{other}\": expected \"action\" (the last action) or \"drill\" (its start)"
            ),
        )),
    }
}

impl ExpectKeys for Http {
    fn validate(self, _: &Timing, v: &mut Validator) -> Result<Observe, FieldError> {
        let request = RawRequest {
            url_key: "url",
            url: &self.url,
            method: self.method.as_deref(),
            headers: &self.headers,
            body: None,
        }
        .validate(v, "")?;
        let raw = http_expect!(self);
        let reachable = self.reachable.unwrap_or(true);
        if !reachable && let Some((key, _)) = raw.given().into_iter().find(|(_, g)| *g) {
            return Err(FieldError::new(
                key,
                format!("reachable = false expects no answer at all; `{key}` judges an answer"),
            ));
        }
        Ok(Observe::Http {
            request,
            expect: raw.validate()?,
            reachable,
        })
    }
}

impl ExpectKeys for Prometheus {
    fn validate(self, timing: &Timing, v: &mut Validator) -> Result<Observe, FieldError> {
        let server = RawServer {
            url: Some(self.url),
            bearer_token: self.bearer_token,
            timeout: Some("5s".into()),
            ..RawServer::default()
        }
        .validate(v)?;
        let bounds = [
            ("min", self.min),
            ("max", self.max),
            ("equals", self.equals),
        ];
        let check = match (self.query, self.alert) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "alert",
                    "query and alert exclude each other: split them into two steps",
                ));
            }
            (None, None) => {
                return Err(FieldError::new(
                    "",
                    "expect = \"prometheus\" needs `query` (with min, max or equals) or `alert` (with firing)",
                ));
            }
            (Some(expr), None) => {
                if let Some(f) = self.firing.map(|_| "firing") {
                    return Err(FieldError::new(
                        f,
                        "`firing` goes with `alert`, not `query`",
                    ));
                }
                let compared = timing.save.is_some() || timing.equals_saved.is_some();
                if !compared && bounds.iter().all(|(_, b)| b.is_none()) {
                    return Err(FieldError::new(
                        "query",
                        "a query needs a condition on its value: min, max or equals",
                    ));
                }
                PromCheck::Query {
                    expr,
                    min: self.min,
                    max: self.max,
                    equals: self.equals,
                }
            }
            (None, Some(name)) => {
                if let Some((k, _)) = bounds.iter().find(|(_, b)| b.is_some()) {
                    return Err(FieldError::new(
                        *k,
                        format!("`{k}` goes with `query`, not `alert` (use firing)"),
                    ));
                }
                PromCheck::Alert {
                    name,
                    firing: self.firing.unwrap_or(true),
                }
            }
        };
        Ok(Observe::Prometheus { server, check })
    }
}

impl ExpectKeys for Exit {
    fn validate(self, _: &Timing, _: &mut Validator) -> Result<Observe, FieldError> {
        Ok(Observe::Exit {
            service: self.service,
            code: self.code.unwrap_or(0),
        })
    }
}

impl ExpectKeys for Sql {
    fn validate(self, timing: &Timing, v: &mut Validator) -> Result<Observe, FieldError> {
        let probe = RawSqlProbe {
            sqlite: self.sqlite,
            url: self.url,
            query: self.query,
            rows: self.rows,
            empty: self.empty,
            equals: self.equals,
            min: self.min,
            max: self.max,
            busy_timeout: None,
            timeout: None,
        };
        let db = probe.database(v)?;
        let required = timing.save.is_none() && timing.equals_saved.is_none();
        let expect = probe.expectation(required)?;
        Ok(Observe::Sql {
            db,
            query: probe.query,
            expect,
        })
    }
}

impl ExpectKeys for Notifications {
    fn validate(self, _: &Timing, v: &mut Validator) -> Result<Observe, FieldError> {
        Ok(Observe::Notifications {
            sink: self.sink,
            matches: self
                .matches
                .as_deref()
                .map(|m| v.regex("matches", m))
                .transpose()?,
            count: count(self.count, self.at_least, self.at_most, 1)?,
            since: since(self.since.as_deref())?,
        })
    }
}

impl ExpectKeys for Orders {
    fn validate(self, _: &Timing, v: &mut Validator) -> Result<Observe, FieldError> {
        Ok(Observe::Orders {
            venue: self.venue(v)?,
            open: self.open,
            flat: self.flat.unwrap_or(false),
        })
    }
}

impl ExpectKeys for Log {
    fn validate(self, _: &Timing, v: &mut Validator) -> Result<Observe, FieldError> {
        let marker = self.marker.unwrap_or(false);
        let matches = self
            .matches
            .as_deref()
            .map(|m| v.regex("matches", m))
            .transpose()?;
        if matches.is_none() && !marker {
            return Err(FieldError::new(
                "",
                "expected matches, marker = true, or both: which lines count",
            ));
        }
        let read = [
            ("files", self.files.is_some()),
            ("unit", self.unit.is_some()),
            ("command", self.command.is_some()),
        ];
        let from = match (self.service, read.iter().find(|(_, given)| *given)) {
            (Some(service), None) => {
                if let Some(t) = &self.timeout {
                    v.duration("timeout", t)?;
                    return Err(FieldError::new(
                        "timeout",
                        "a service's output is read in place; timeout applies to unit and command",
                    ));
                }
                LogFrom::Service(service)
            }
            (Some(_), Some((key, _))) => {
                return Err(FieldError::new(
                    *key,
                    "expected one source: service, files, unit or command",
                ));
            }
            (None, None) => {
                return Err(FieldError::new(
                    "",
                    "expected one source: service, files, unit or command",
                ));
            }
            (None, Some((key, _))) => {
                if !marker {
                    return Err(FieldError::new(
                        *key,
                        "files, a journal and a command's output hold lines from before the drill: add marker = true to count only the lines this drill wrote",
                    ));
                }
                if self.since.is_some() {
                    return Err(FieldError::new(
                        "since",
                        "since counts a service's output; with files, unit or command the marker tells this drill's lines",
                    ));
                }
                let raw = crate::probe::log::RawLogProbe {
                    files: self.files,
                    unit: self.unit,
                    command: self.command,
                    timeout: Some(self.timeout.unwrap_or_else(|| "10s".into())),
                    ..Default::default()
                };
                LogFrom::Read(Box::new(raw.reader(v)?))
            }
        };
        Ok(Observe::Log {
            from,
            matches,
            marker,
            count: count(self.count, self.at_least, self.at_most, 1)?,
            since: since(self.since.as_deref())?,
        })
    }
}

impl ExpectKeys for Process {
    fn validate(self, _: &Timing, _: &mut Validator) -> Result<Observe, FieldError> {
        Ok(Observe::Process {
            service: self.service,
            running: self.running.unwrap_or(true),
            unchanged: self.unchanged.unwrap_or(false),
            max_restarts: self.max_restarts,
        })
    }
}
