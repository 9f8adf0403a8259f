//! Validated drill steps: which keys apply to which step, and the typed actions and
//! expectations the executor runs.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::StepRef;
use super::raw::{RawBrokerFault, RawStep};
use crate::probe::expect::{HttpExpect, RawHttpExpect};
use crate::probe::sql::{Database, Expect as SqlExpect};
use crate::probe::tool::ToolRun;
use crate::probe::{FieldError, RefKind, Validator};
use crate::rig::fault_proxy::Fault;
use crate::units::Interpolated;

/// Default poll interval of an expectation.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// Keys every step may carry.
const COMMON: &[&str] = &["name", "needs"];

/// One validated step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its name (given, or a description of the step).
    pub name: String,
    /// Earlier steps it depends on.
    pub needs: Vec<String>,
    /// What it does.
    pub kind: StepKind,
}

/// An action or an expectation.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// Change something.
    Action(Action),
    /// Wait until something holds.
    Expect(Box<Expectation>),
}

/// What an action does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Stop a service; `grace` overrides its `stop_timeout`.
    Stop {
        /// The service.
        service: String,
        /// SIGTERM's grace.
        grace: Option<Duration>,
    },
    /// Start a service and wait until it is ready.
    Start {
        /// The service.
        service: String,
    },
    /// Stop, then start.
    Restart {
        /// The service.
        service: String,
        /// SIGTERM's grace.
        grace: Option<Duration>,
    },
    /// Signal a service's process group.
    Signal {
        /// The service.
        service: String,
        /// The signal.
        signal: Signal,
        /// `STOP` only: continue after this long.
        pause: Option<Duration>,
    },
    /// Run a command to completion.
    Command(ToolRun),
    /// Set a fault on a proxy (`None`: heal).
    Proxy {
        /// The proxy.
        proxy: String,
        /// The fault.
        fault: Option<Fault>,
    },
    /// Set (or clear) faults on the paper broker.
    BrokerFault {
        /// Base URL.
        broker: Interpolated,
        /// API key.
        api_key: Option<Interpolated>,
        /// The JSON body for `POST /admin/faults`; `None` clears (`DELETE`).
        body: Option<serde_json::Value>,
    },
    /// Wait.
    Wait(Duration),
}

/// An expectation with its deadline and polling.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// What to observe.
    pub observe: Observe,
    /// Deadline from the last action.
    pub within: Duration,
    /// How long it must keep holding once it holds.
    pub hold: Option<Duration>,
    /// Poll interval.
    pub interval: Duration,
    /// Save the observed value under this name.
    pub save: Option<String>,
    /// Hold only when the observed value equals this saved one.
    pub equals_saved: Option<String>,
}

/// Where counting starts for `notifications` and `log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// The last action.
    Action,
    /// The drill's start.
    Drill,
}

/// A count expectation: exact, or bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// At least.
    pub min: u64,
    /// At most.
    pub max: Option<u64>,
}

impl Count {
    /// Whether `n` is accepted.
    pub fn accepts(&self, n: u64) -> bool {
        n >= self.min && self.max.is_none_or(|m| n <= m)
    }

    /// `exactly 1`, `≥ 1`, `≤ 3`, `1 to 3`.
    pub fn describe(&self) -> String {
        match (self.min, self.max) {
            (lo, Some(hi)) if lo == hi => format!("exactly {lo}"),
            (0, Some(hi)) => format!("≤ {hi}"),
            (lo, Some(hi)) => format!("{lo} to {hi}"),
            (lo, None) => format!("≥ {lo}"),
        }
    }
}

/// What an expectation observes.
#[derive(Debug, Clone)]
pub enum Observe {
    /// An HTTP response.
    Http {
        /// Method.
        method: reqwest::Method,
        /// URL.
        url: Interpolated,
        /// Headers.
        headers: Vec<(String, Interpolated)>,
        /// The expectation (the http probe's rules).
        expect: HttpExpect,
    },
    /// A service's exit.
    Exit {
        /// The service.
        service: String,
        /// Expected exit code.
        code: i32,
    },
    /// Rows of a query.
    Sql {
        /// The database.
        db: Database,
        /// The query.
        query: String,
        /// The expectation on rows (`None` with only `save`/`equals_saved`).
        expect: Option<SqlExpect>,
    },
    /// Messages a sink received.
    Notifications {
        /// The sink.
        sink: String,
        /// Messages must match this.
        matches: Option<regex::Regex>,
        /// How many.
        count: Count,
        /// Counted from.
        since: Since,
    },
    /// Open orders and positions on the paper broker.
    Orders {
        /// Base URL.
        broker: Interpolated,
        /// API key.
        api_key: Option<Interpolated>,
        /// Account.
        account: String,
        /// Exactly this many open orders.
        open: Option<u64>,
        /// Every position flat.
        flat: bool,
    },
    /// Lines a service wrote.
    Log {
        /// The service.
        service: String,
        /// Lines must match this.
        matches: regex::Regex,
        /// How many.
        count: Count,
        /// Counted from.
        since: Since,
    },
    /// A service's process.
    Process {
        /// The service.
        service: String,
        /// It runs.
        running: bool,
        /// Same PID as when the drill started.
        unchanged: bool,
        /// At most this many starts since the drill started.
        max_restarts: Option<u32>,
    },
}

impl Observe {
    /// The expectation kind as written.
    pub fn kind(&self) -> &'static str {
        match self {
            Observe::Http { .. } => "http",
            Observe::Exit { .. } => "exit",
            Observe::Sql { .. } => "sql",
            Observe::Notifications { .. } => "notifications",
            Observe::Orders { .. } => "orders",
            Observe::Log { .. } => "log",
            Observe::Process { .. } => "process",
        }
    }
}

impl Step {
    /// The services, sinks and proxies the step names, with the key naming each.
    pub fn references(&self) -> Vec<StepRef<'_>> {
        fn svc<'a>(k: &'static str, n: &'a str) -> StepRef<'a> {
            (k, RefKind::Service, n)
        }
        match &self.kind {
            StepKind::Action(a) => match a {
                Action::Stop { service, .. } => vec![svc("stop", service)],
                Action::Start { service } => vec![svc("start", service)],
                Action::Restart { service, .. } => vec![svc("restart", service)],
                Action::Signal { service, .. } => vec![svc("service", service)],
                Action::Proxy { proxy, .. } => vec![("proxy", RefKind::Proxy, proxy.as_str())],
                Action::Command(_) | Action::BrokerFault { .. } | Action::Wait(_) => Vec::new(),
            },
            StepKind::Expect(e) => match &e.observe {
                Observe::Exit { service, .. }
                | Observe::Log { service, .. }
                | Observe::Process { service, .. } => vec![svc("service", service)],
                Observe::Notifications { sink, .. } => {
                    vec![("sink", RefKind::Sink, sink.as_str())]
                }
                _ => Vec::new(),
            },
        }
    }
}

/// Validate step `i`. Errors carry the key relative to the step.
pub(super) fn validate(i: usize, raw: RawStep, v: &mut Validator) -> Result<Step, FieldError> {
    let set = raw.keys_set();
    let chosen: Vec<&str> = [
        "stop",
        "start",
        "restart",
        "signal",
        "command",
        "proxy",
        "broker_fault",
        "wait",
        "expect",
    ]
    .into_iter()
    .filter(|k| set.iter().any(|s| s == k))
    .collect();
    let what = match chosen.as_slice() {
        [one] => *one,
        [] => {
            return Err(FieldError::new(
                "",
                "expected one action (stop, start, restart, signal, command, proxy, broker_fault, wait) or expect = \"<kind>\"",
            ));
        }
        [first, second, ..] => {
            return Err(FieldError::new(
                *second,
                format!(
                    "a step does one thing: {first} and {second} exclude each other; split them into two steps"
                ),
            ));
        }
    };
    let (allowed, kind): (Vec<&str>, StepKind) = if what == "expect" {
        let (allowed, e) = expectation(&raw, v)?;
        (allowed, StepKind::Expect(Box::new(e)))
    } else {
        let (allowed, a) = action(what, &raw, v)?;
        (allowed, StepKind::Action(a))
    };
    if let Some(extra) = set.iter().find(|k| {
        !COMMON.contains(&k.as_str()) && k.as_str() != what && !allowed.contains(&k.as_str())
    }) {
        let doing = if what == "expect" {
            format!("expect = \"{}\"", raw.expect.as_deref().unwrap_or(""))
        } else {
            what.to_string()
        };
        return Err(FieldError::new(
            extra.as_str(),
            format!(
                "`{extra}` does not apply to a {doing} step (it takes: {})",
                if allowed.is_empty() {
                    "name, needs".to_string()
                } else {
                    allowed.join(", ")
                }
            ),
        ));
    }
    let name = match raw.name {
        Some(n) if !n.trim().is_empty() => n,
        Some(_) => return Err(FieldError::new("name", "expected a non-empty name")),
        None => default_name(i, &kind),
    };
    Ok(Step {
        name,
        needs: raw.needs,
        kind,
    })
}

fn default_name(i: usize, kind: &StepKind) -> String {
    let what = match kind {
        StepKind::Action(a) => match a {
            Action::Stop { service, .. } => format!("stop {service}"),
            Action::Start { service } => format!("start {service}"),
            Action::Restart { service, .. } => format!("restart {service}"),
            Action::Signal {
                service, signal, ..
            } => format!("{} {service}", signal.as_str()),
            Action::Command(run) => format!("run {}", run.display()),
            Action::Proxy { proxy, fault } => match fault {
                Some(f) => format!("proxy {proxy}: {f}"),
                None => format!("heal proxy {proxy}"),
            },
            Action::BrokerFault { body, .. } => match body {
                Some(b) => format!("broker faults {b}"),
                None => "clear broker faults".to_string(),
            },
            Action::Wait(d) => format!("wait {}", crate::units::format_duration(*d)),
        },
        StepKind::Expect(e) => format!("expect {}", e.observe.kind()),
    };
    format!("{}. {what}", i + 1)
}

fn need<'a, T>(value: &'a Option<T>, key: &str, for_what: &str) -> Result<&'a T, FieldError> {
    value
        .as_ref()
        .ok_or_else(|| FieldError::new(key, format!("{for_what} needs `{key}`")))
}

fn action(
    what: &str,
    raw: &RawStep,
    v: &mut Validator,
) -> Result<(Vec<&'static str>, Action), FieldError> {
    let grace = |v: &Validator| {
        raw.grace
            .as_deref()
            .map(|g| v.duration("grace", g))
            .transpose()
    };
    Ok(match what {
        "stop" => (
            vec!["grace"],
            Action::Stop {
                service: raw.stop.clone().unwrap_or_default(),
                grace: grace(v)?,
            },
        ),
        "start" => (
            vec![],
            Action::Start {
                service: raw.start.clone().unwrap_or_default(),
            },
        ),
        "restart" => (
            vec!["grace"],
            Action::Restart {
                service: raw.restart.clone().unwrap_or_default(),
                grace: grace(v)?,
            },
        ),
        "signal" => (vec!["service", "for"], signal_action(raw, v)?),
        "command" => (
            vec!["timeout", "cwd"],
            Action::Command(ToolRun::validate(
                v,
                "command",
                raw.command.as_deref().unwrap_or_default(),
                raw.cwd.clone(),
                raw.timeout.as_deref(),
                Duration::from_secs(60),
            )?),
        ),
        "proxy" => (
            vec!["fault", "latency", "jitter", "bytes"],
            proxy_action(raw, v)?,
        ),
        "broker_fault" => (vec!["broker", "api_key"], broker_action(raw, v)?),
        _ => (
            vec![],
            Action::Wait(v.duration("wait", raw.wait.as_deref().unwrap_or_default())?),
        ),
    })
}

fn signal_action(raw: &RawStep, v: &Validator) -> Result<Action, FieldError> {
    let name = raw.signal.as_deref().unwrap_or_default();
    let signal = match name.trim_start_matches("SIG") {
        "TERM" => Signal::SIGTERM,
        "INT" => Signal::SIGINT,
        "KILL" => Signal::SIGKILL,
        "HUP" => Signal::SIGHUP,
        "USR1" => Signal::SIGUSR1,
        "USR2" => Signal::SIGUSR2,
        "STOP" => Signal::SIGSTOP,
        "CONT" => Signal::SIGCONT,
        _ => {
            return Err(FieldError::new(
                "signal",
                format!(
                    "unknown signal \"{name}\": expected TERM, INT, KILL, HUP, USR1, USR2, STOP or CONT"
                ),
            ));
        }
    };
    let pause = raw
        .for_
        .as_deref()
        .map(|d| v.duration("for", d))
        .transpose()?;
    if pause.is_some() && signal != Signal::SIGSTOP {
        return Err(FieldError::new(
            "for",
            "`for` applies to signal = \"STOP\" (the service is continued after that long)",
        ));
    }
    Ok(Action::Signal {
        service: need(&raw.service, "service", "signal")?.clone(),
        signal,
        pause,
    })
}

fn proxy_action(raw: &RawStep, v: &Validator) -> Result<Action, FieldError> {
    let fault_name = need(&raw.fault, "fault", "proxy")?.as_str();
    let only = |keys: &[&str]| -> Result<(), FieldError> {
        for (k, set) in [
            ("latency", raw.latency.is_some()),
            ("jitter", raw.jitter.is_some()),
            ("bytes", raw.bytes.is_some()),
        ] {
            if set && !keys.contains(&k) {
                return Err(FieldError::new(
                    k,
                    format!("`{k}` does not apply to fault = \"{fault_name}\""),
                ));
            }
        }
        Ok(())
    };
    let fault = match fault_name {
        "down" => only(&[]).map(|_| Some(Fault::Down))?,
        "blackhole" => only(&[]).map(|_| Some(Fault::Blackhole))?,
        "heal" => only(&[]).map(|_| None)?,
        "latency" => {
            only(&["latency", "jitter"])?;
            let latency = v.duration(
                "latency",
                need(&raw.latency, "latency", "fault = \"latency\"")?,
            )?;
            let jitter = raw
                .jitter
                .as_deref()
                .map(|j| v.duration("jitter", j))
                .transpose()?
                .unwrap_or_default();
            Some(Fault::Latency { latency, jitter })
        }
        "reset_after" => {
            only(&["bytes"])?;
            Some(Fault::ResetAfter {
                bytes: *need(&raw.bytes, "bytes", "fault = \"reset_after\"")?,
            })
        }
        other => {
            return Err(FieldError::new(
                "fault",
                format!(
                    "unknown proxy fault \"{other}\": expected down, blackhole, latency, reset_after or heal"
                ),
            ));
        }
    };
    Ok(Action::Proxy {
        proxy: raw.proxy.clone().unwrap_or_default(),
        fault,
    })
}

fn broker_url(
    raw: &RawStep,
    v: &mut Validator,
    for_what: &str,
) -> Result<Interpolated, FieldError> {
    let url = v.interpolate("broker", need(&raw.broker, "broker", for_what)?)?;
    reqwest::Url::parse(&url.value)
        .map_err(|e| FieldError::new("broker", format!("invalid URL: {e}")))?;
    Ok(url)
}

fn broker_action(raw: &RawStep, v: &mut Validator) -> Result<Action, FieldError> {
    let fault: &RawBrokerFault = raw.broker_fault.as_ref().expect("chosen by its key");
    let broker = broker_url(raw, v, "broker_fault")?;
    let api_key = raw
        .api_key
        .as_deref()
        .map(|k| v.interpolate("api_key", k))
        .transpose()?;
    let mut table = fault.clone();
    let clear = table.clear.take() == Some(true);
    for (k, d) in [
        ("latency", &table.latency),
        ("jitter", &table.jitter),
        ("stall_for", &table.stall_for),
    ] {
        if let Some(d) = d {
            v.duration(&format!("broker_fault.{k}"), d)?;
        }
    }
    if let Some(r) = table.error_rate
        && !(0.0..=1.0).contains(&r)
    {
        return Err(FieldError::new(
            "broker_fault.error_rate",
            "expected a fraction from 0 to 1",
        ));
    }
    let body = serde_json::to_value(&table).unwrap_or_default();
    let empty = body.as_object().is_none_or(|m| m.is_empty());
    let body = match (clear, empty) {
        (true, true) => None,
        (false, false) => Some(body),
        (true, false) => {
            return Err(FieldError::new(
                "broker_fault.clear",
                "clear = true takes no other fault key",
            ));
        }
        (false, true) => {
            return Err(FieldError::new(
                "broker_fault",
                "expected a fault: unhealthy, error_rate, latency, jitter, stall_for, reject_logins, or clear = true",
            ));
        }
    };
    Ok(Action::BrokerFault {
        broker,
        api_key,
        body,
    })
}

fn count(raw: &RawStep, default_min: u64) -> Result<Count, FieldError> {
    match (raw.count, raw.at_least, raw.at_most) {
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

fn since(raw: &RawStep) -> Result<Since, FieldError> {
    match raw.since.as_deref() {
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

fn expectation(
    raw: &RawStep,
    v: &mut Validator,
) -> Result<(Vec<&'static str>, Expectation), FieldError> {
    const EVERY: &[&str] = &["within", "hold", "interval", "save", "equals_saved"];
    let (keys, observe) = observe_of(raw, v)?;
    let within = v.duration("within", need(&raw.within, "within", "an expectation")?)?;
    let hold = raw
        .hold
        .as_deref()
        .map(|h| v.duration("hold", h))
        .transpose()?;
    let interval = match raw.interval.as_deref() {
        Some(t) => v.duration("interval", t)?,
        None => DEFAULT_INTERVAL,
    };
    if interval.is_zero() {
        return Err(FieldError::new("interval", "expected a positive interval"));
    }
    let allowed = [keys, EVERY].concat();
    Ok((
        allowed,
        Expectation {
            observe,
            within,
            hold,
            interval,
            save: raw.save.clone(),
            equals_saved: raw.equals_saved.clone(),
        },
    ))
}

/// What `expect = "<kind>"` observes, and the keys that kind takes.
fn observe_of(
    raw: &RawStep,
    v: &mut Validator,
) -> Result<(&'static [&'static str], Observe), FieldError> {
    let kind = raw.expect.as_deref().unwrap_or_default();
    Ok(match kind {
        "http" => (
            &[
                "url",
                "method",
                "headers",
                "status",
                "body_contains",
                "json_pointer",
                "json_equals",
                "json_one_of",
            ],
            http(raw, v)?,
        ),
        "exit" => (
            &["service", "code"],
            Observe::Exit {
                service: need(&raw.service, "service", "expect = \"exit\"")?.clone(),
                code: raw.code.unwrap_or(0),
            },
        ),
        "sql" => (
            &[
                "sqlite", "url", "query", "rows", "empty", "equals", "min", "max",
            ],
            sql(raw, v)?,
        ),
        "notifications" => (
            &["sink", "matches", "count", "at_least", "at_most", "since"],
            Observe::Notifications {
                sink: need(&raw.sink, "sink", "expect = \"notifications\"")?.clone(),
                matches: raw
                    .matches
                    .as_deref()
                    .map(|m| v.regex("matches", m))
                    .transpose()?,
                count: count(raw, 1)?,
                since: since(raw)?,
            },
        ),
        "orders" => (
            &["broker", "api_key", "account", "open", "flat"],
            orders(raw, v)?,
        ),
        "log" => (
            &[
                "service", "matches", "count", "at_least", "at_most", "since",
            ],
            Observe::Log {
                service: need(&raw.service, "service", "expect = \"log\"")?.clone(),
                matches: v.regex(
                    "matches",
                    need(&raw.matches, "matches", "expect = \"log\"")?,
                )?,
                count: count(raw, 1)?,
                since: since(raw)?,
            },
        ),
        "process" => (
            &["service", "running", "unchanged", "max_restarts"],
            Observe::Process {
                service: need(&raw.service, "service", "expect = \"process\"")?.clone(),
                running: raw.running.unwrap_or(true),
                unchanged: raw.unchanged.unwrap_or(false),
                max_restarts: raw.max_restarts,
            },
        ),
        other => {
            return Err(FieldError::new(
                "expect",
                format!(
                    "unknown expectation \"{other}\": expected http, exit, sql, notifications, orders, log or process"
                ),
            ));
        }
    })
}

fn http(raw: &RawStep, v: &mut Validator) -> Result<Observe, FieldError> {
    let url = v.interpolate("url", need(&raw.url, "url", "expect = \"http\"")?)?;
    reqwest::Url::parse(&url.value)
        .map_err(|e| FieldError::new("url", format!("invalid URL: {e}")))?;
    let method = match raw.method.as_deref() {
        None => reqwest::Method::GET,
        Some(m) => reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| FieldError::new("method", format!("invalid method \"{m}\"")))?,
    };
    let mut headers = Vec::new();
    for (k, val) in &raw.headers {
        headers.push((k.clone(), v.interpolate(&format!("headers.{k}"), val)?));
    }
    let expect = RawHttpExpect {
        status: raw.status.clone(),
        body_contains: raw.body_contains.clone(),
        json_pointer: raw.json_pointer.clone(),
        json_equals: raw.json_equals.clone(),
        json_one_of: raw.json_one_of.clone(),
    }
    .validate()?;
    Ok(Observe::Http {
        method,
        url,
        headers,
        expect,
    })
}

fn sql(raw: &RawStep, v: &mut Validator) -> Result<Observe, FieldError> {
    let probe = crate::probe::sql::RawSqlProbe {
        sqlite: raw.sqlite.clone(),
        url: raw.url.clone(),
        query: need(&raw.query, "query", "expect = \"sql\"")?.clone(),
        rows: raw.rows,
        empty: raw.empty,
        equals: raw.equals.clone(),
        min: raw.min,
        max: raw.max,
        busy_timeout: None,
        timeout: None,
    };
    let db = probe.database(v)?;
    let required = raw.save.is_none() && raw.equals_saved.is_none();
    let expect = probe.expectation(required)?;
    Ok(Observe::Sql {
        db,
        query: probe.query,
        expect,
    })
}

fn orders(raw: &RawStep, v: &mut Validator) -> Result<Observe, FieldError> {
    let broker = broker_url(raw, v, "expect = \"orders\"")?;
    if raw.open.is_none() && raw.flat.is_none() {
        return Err(FieldError::new(
            "",
            "expect = \"orders\" needs `open` (a count of open orders) or `flat = true`",
        ));
    }
    Ok(Observe::Orders {
        broker,
        api_key: raw
            .api_key
            .as_deref()
            .map(|k| v.interpolate("api_key", k))
            .transpose()?,
        account: raw.account.clone().unwrap_or_else(|| "default".into()),
        open: raw.open,
        flat: raw.flat.unwrap_or(false),
    })
}
