//! Actions: each kind's keys as written (one struct per kind, `deny_unknown_fields`), how they
//! validate, and the validated [`Action`] the run performs (`drill/action.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sys::signal::Signal as Sig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::request::{RawRequest, Request, status};
use crate::expect::{StatusMatch, StatusSpec, check_pointer};
use crate::probe::tool::ToolRun;
use crate::probe::{FieldError, RefKind, Validator};
use crate::rig::fault_proxy::Fault;
use crate::units::Interpolated;

/// Keys that validate into an [`Action`].
pub trait ActionKeys {
    /// Validate; errors name the key relative to the step.
    fn validate(self, v: &mut Validator) -> Result<Action, FieldError>;
}

/// Stop a `[[service]]`: SIGTERM, then SIGKILL after `grace` (default: its `stop_timeout`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    /// The `[[service]]`.
    pub stop: String,
    /// SIGTERM's grace before SIGKILL (humantime).
    pub grace: Option<String>,
}

/// Start a `[[service]]` and wait until it is ready.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// The `[[service]]`.
    pub start: String,
}

/// Stop, then start a `[[service]]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    /// The `[[service]]`.
    pub restart: String,
    /// SIGTERM's grace before SIGKILL (humantime).
    pub grace: Option<String>,
}

/// Send a signal to a `[[service]]`'s process group.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// `TERM`, `INT`, `KILL`, `HUP`, `USR1`, `USR2`, `STOP` or `CONT`.
    pub signal: String,
    /// The `[[service]]`.
    pub service: String,
    /// `STOP` only: continue the service after this long (humantime).
    #[serde(rename = "for")]
    pub for_: Option<String>,
}

/// Run an argv to completion; a non-zero exit fails the step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The argv.
    pub command: Vec<String>,
    /// Give up after this long (humantime). Default `"60s"`.
    pub timeout: Option<String>,
    /// Working directory, relative to the checklist.
    pub cwd: Option<String>,
    /// An argv run when the drill restores (same `cwd` and `timeout`), whether the steps
    /// passed or not; a non-zero exit fails the item.
    pub undo: Option<Vec<String>>,
}

/// Send an HTTP request; a status other than `status` fails the step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// The URL; `${VAR}` and `${saved.NAME}` are put in.
    pub http: String,
    /// The method. Default `GET`.
    pub method: Option<String>,
    /// Request headers; values may use `${VAR}` and `${saved.NAME}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body; `${VAR}` and `${saved.NAME}` are put in.
    pub body: Option<String>,
    /// Accepted status code or codes. Default: any 2xx.
    pub status: Option<StatusSpec>,
    /// Values of the JSON answer to keep for later steps, `{ name = "/json/pointer" }`; used
    /// as `${saved.name}` and redacted from every output.
    #[serde(default)]
    pub save: BTreeMap<String, String>,
    /// Give up after this long (humantime). Default `"10s"`.
    pub timeout: Option<String>,
    /// A request sent when the drill restores, whether the steps passed or not, with the
    /// keys above but `save`, `timeout` and `undo`; a status other than its `status` fails
    /// the item.
    #[schemars(with = "Option<Http>")]
    pub undo: Option<Box<Http>>,
}

impl Http {
    /// The request as written, its URL under `http`.
    fn request(&self) -> RawRequest<'_> {
        RawRequest {
            url_key: "http",
            url: &self.http,
            method: self.method.as_deref(),
            headers: &self.headers,
            body: self.body.as_deref(),
        }
    }
}

/// Take a `[[proxy]]`'s dependency down: new connections are refused, open ones reset.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyDown {
    /// The `[[proxy]]`.
    pub proxy: String,
}

/// Black-hole a `[[proxy]]`: connections are accepted and nothing is forwarded.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyBlackhole {
    /// The `[[proxy]]`.
    pub proxy: String,
}

/// Delay every chunk a `[[proxy]]` forwards, each direction.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyLatency {
    /// The `[[proxy]]`.
    pub proxy: String,
    /// Delay per forwarded chunk, each direction (humantime).
    pub latency: String,
    /// Uniform jitter around it (humantime).
    pub jitter: Option<String>,
}

/// Reset each connection through a `[[proxy]]` after some bytes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyResetAfter {
    /// The `[[proxy]]`.
    pub proxy: String,
    /// Reset a connection after this many bytes (both directions together).
    pub bytes: u64,
}

/// Heal a `[[proxy]]`: back to pass-through.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyHeal {
    /// The `[[proxy]]`.
    pub proxy: String,
}

/// Set faults on the paper broker (its admin API).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrokerFault {
    /// The faults.
    pub broker_fault: RawBrokerFault,
    /// The paper broker's base URL, e.g. `"http://127.0.0.1:18080"`.
    pub broker: String,
    /// The broker's API key (sent as a Bearer token); `${VAR}`.
    pub api_key: Option<String>,
}

/// Faults to set on the paper broker (`POST /admin/faults`); absent keys stay as they are.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBrokerFault {
    /// `true`: `/healthz` answers 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhealthy: Option<bool>,
    /// Fraction (0–1) of orders answered 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Added order latency (humantime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
    /// Jitter on the added latency (humantime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    /// Hold every request (health included) for this long from now (humantime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stall_for: Option<String>,
    /// `true`: every API call answers 401 "not logged in".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_logins: Option<bool>,
    /// `true`: clear every runtime fault (`DELETE /admin/faults`); no other key with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clear: Option<bool>,
}

/// Wait; times are still measured from the last other action.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// How long (humantime).
    pub wait: String,
}

/// An HTTP request with the statuses it accepts and its timeout.
#[derive(Debug, Clone)]
pub struct HttpCall {
    /// The request.
    pub request: Request,
    /// Accepted statuses.
    pub status: StatusMatch,
    /// Give up after this long.
    pub timeout: Duration,
}

/// What an action's `undo` does at restore time.
#[derive(Debug, Clone)]
pub enum Undo {
    /// Run a command.
    Command(ToolRun),
    /// Send a request.
    Http(HttpCall),
}

impl Undo {
    /// `run rollback.sh`, `POST http://…/release`.
    pub fn describe(&self) -> String {
        match self {
            Undo::Command(run) => format!("run {}", run.display()),
            Undo::Http(call) => call.request.describe(),
        }
    }
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
        signal: Sig,
        /// `STOP` only: continue after this long.
        pause: Option<Duration>,
    },
    /// Run a command to completion.
    Command {
        /// The command.
        run: ToolRun,
        /// Run at restore time.
        undo: Option<Box<ToolRun>>,
    },
    /// Send an HTTP request.
    Http {
        /// The request and what answer it takes.
        call: Box<HttpCall>,
        /// `(name, JSON pointer)`: values of the answer to keep.
        save: Vec<(String, String)>,
        /// Sent at restore time.
        undo: Option<Box<HttpCall>>,
    },
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

impl Action {
    /// `stop agent`, `SIGTERM agent`, `proxy gw: down`: the default step name.
    pub fn describe(&self) -> String {
        match self {
            Action::Stop { service, .. } => format!("stop {service}"),
            Action::Start { service } => format!("start {service}"),
            Action::Restart { service, .. } => format!("restart {service}"),
            Action::Signal {
                service, signal, ..
            } => format!("{} {service}", signal.as_str()),
            Action::Command { run, .. } => format!("run {}", run.display()),
            Action::Http { call, .. } => call.request.describe(),
            Action::Proxy { proxy, fault } => match fault {
                Some(f) => format!("proxy {proxy}: {f}"),
                None => format!("heal proxy {proxy}"),
            },
            Action::BrokerFault { body, .. } => match body {
                Some(b) => format!("broker faults {b}"),
                None => "clear broker faults".to_string(),
            },
            Action::Wait(d) => format!("wait {}", crate::units::format_duration(*d)),
        }
    }

    /// The services and proxies it names, with the key naming each.
    pub fn references(&self) -> Vec<(&'static str, RefKind, &str)> {
        match self {
            Action::Stop { service, .. } => vec![("stop", RefKind::Service, service.as_str())],
            Action::Start { service } => vec![("start", RefKind::Service, service.as_str())],
            Action::Restart { service, .. } => {
                vec![("restart", RefKind::Service, service.as_str())]
            }
            Action::Signal { service, .. } => {
                vec![("service", RefKind::Service, service.as_str())]
            }
            Action::Proxy {
                proxy,
                fault: Some(crate::rig::fault_proxy::Fault::Http(_)),
            } => vec![("proxy", RefKind::HttpProxy, proxy.as_str())],
            Action::Proxy { proxy, .. } => vec![("proxy", RefKind::Proxy, proxy.as_str())],
            Action::Command { .. }
            | Action::Http { .. }
            | Action::BrokerFault { .. }
            | Action::Wait(_) => Vec::new(),
        }
    }

    /// What it undoes at restore time.
    pub fn undo(&self) -> Option<Undo> {
        match self {
            Action::Command { undo, .. } => undo.as_deref().cloned().map(Undo::Command),
            Action::Http { undo, .. } => undo.as_deref().cloned().map(Undo::Http),
            _ => None,
        }
    }

    /// The names it saves values under (`save` of an `http` action).
    pub fn saves(&self) -> Vec<&str> {
        match self {
            Action::Http { save, .. } => save.iter().map(|(n, _)| n.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// The saved names its requests refer to (`${saved.NAME}`), with the key that does.
    pub fn saved_uses(&self) -> Vec<(&'static str, &str)> {
        match self {
            Action::Http { call, undo, .. } => {
                let mut out: Vec<(&'static str, &str)> = call
                    .request
                    .saved_names()
                    .into_iter()
                    .map(|n| ("http", n))
                    .collect();
                if let Some(u) = undo {
                    out.extend(u.request.saved_names().into_iter().map(|n| ("undo", n)));
                }
                out
            }
            _ => Vec::new(),
        }
    }
}

fn duration(v: &Validator, key: &str, value: Option<&str>) -> Result<Option<Duration>, FieldError> {
    value.map(|d| v.duration(key, d)).transpose()
}

impl ActionKeys for Stop {
    fn validate(self, v: &mut Validator) -> Result<Action, FieldError> {
        Ok(Action::Stop {
            service: self.stop,
            grace: duration(v, "grace", self.grace.as_deref())?,
        })
    }
}

impl ActionKeys for Start {
    fn validate(self, _: &mut Validator) -> Result<Action, FieldError> {
        Ok(Action::Start {
            service: self.start,
        })
    }
}

impl ActionKeys for Restart {
    fn validate(self, v: &mut Validator) -> Result<Action, FieldError> {
        Ok(Action::Restart {
            service: self.restart,
            grace: duration(v, "grace", self.grace.as_deref())?,
        })
    }
}

impl ActionKeys for Signal {
    fn validate(self, v: &mut Validator) -> Result<Action, FieldError> {
        let signal = match self.signal.trim_start_matches("SIG") {
            "TERM" => Sig::SIGTERM,
            "INT" => Sig::SIGINT,
            "KILL" => Sig::SIGKILL,
            "HUP" => Sig::SIGHUP,
            "USR1" => Sig::SIGUSR1,
            "USR2" => Sig::SIGUSR2,
            "STOP" => Sig::SIGSTOP,
            "CONT" => Sig::SIGCONT,
            name => {
                return Err(FieldError::new(
                    "signal",
                    format!(
                        "unknown signal \"{name}\": expected TERM, INT, KILL, HUP, USR1, USR2, STOP or CONT"
                    ),
                ));
            }
        };
        let pause = duration(v, "for", self.for_.as_deref())?;
        if pause.is_some() && signal != Sig::SIGSTOP {
            return Err(FieldError::new(
                "for",
                "`for` applies to signal = \"STOP\" (the service is continued after that long)",
            ));
        }
        Ok(Action::Signal {
            service: self.service,
            signal,
            pause,
        })
    }
}

impl ActionKeys for Command {
    fn validate(self, v: &mut Validator) -> Result<Action, FieldError> {
        let timeout = self.timeout.as_deref();
        let undo = self
            .undo
            .map(|u| {
                let cwd = self.cwd.clone();
                ToolRun::validate(v, "undo", &u, cwd, timeout, Duration::from_secs(60))
                    .map(Box::new)
            })
            .transpose()?;
        let run = ToolRun::validate(
            v,
            "command",
            &self.command,
            self.cwd,
            timeout,
            Duration::from_secs(60),
        )?;
        Ok(Action::Command { run, undo })
    }
}

impl ActionKeys for Http {
    fn validate(self, v: &mut Validator) -> Result<Action, FieldError> {
        let timeout =
            duration(v, "timeout", self.timeout.as_deref())?.unwrap_or(Duration::from_secs(10));
        let call = |v: &mut Validator, raw: RawRequest<'_>, st, prefix: &str| {
            Ok::<_, FieldError>(HttpCall {
                request: raw.validate(v, prefix)?,
                status: status(&format!("{prefix}status"), st)?,
                timeout,
            })
        };
        let call_main = call(v, self.request(), self.status.clone(), "")?;
        let undo = match self.undo.as_deref() {
            Some(u) => {
                let refuse = |k: &str, why: &str| Err(FieldError::new(format!("undo.{k}"), why));
                if u.undo.is_some() {
                    return refuse("undo", "an undo has no undo of its own");
                }
                if !u.save.is_empty() {
                    return refuse("save", "an undo saves nothing: it runs at restore time");
                }
                if u.timeout.is_some() {
                    return refuse("timeout", "an undo has its action's timeout");
                }
                Some(Box::new(call(v, u.request(), u.status.clone(), "undo.")?))
            }
            None => None,
        };
        let mut save = Vec::new();
        for (name, pointer) in self.save {
            let at = format!("save.{name}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(FieldError::new(
                    at,
                    "expected a name of letters, digits, _ and -",
                ));
            }
            if !pointer.is_empty() {
                check_pointer(&at, &pointer)?;
            }
            save.push((name, pointer));
        }
        Ok(Action::Http {
            call: Box::new(call_main),
            save,
            undo,
        })
    }
}

/// A proxy action with its validated fault.
fn proxy(proxy: String, fault: Option<Fault>) -> Action {
    Action::Proxy { proxy, fault }
}

impl ActionKeys for ProxyDown {
    fn validate(self, _: &mut Validator) -> Result<Action, FieldError> {
        Ok(proxy(self.proxy, Some(Fault::Down)))
    }
}

impl ActionKeys for ProxyBlackhole {
    fn validate(self, _: &mut Validator) -> Result<Action, FieldError> {
        Ok(proxy(self.proxy, Some(Fault::Blackhole)))
    }
}

impl ActionKeys for ProxyLatency {
    fn validate(self, v: &mut Validator) -> Result<Action, FieldError> {
        let latency = v.duration("latency", &self.latency)?;
        let jitter = duration(v, "jitter", self.jitter.as_deref())?.unwrap_or_default();
        Ok(proxy(self.proxy, Some(Fault::Latency { latency, jitter })))
    }
}

impl ActionKeys for ProxyResetAfter {
    fn validate(self, _: &mut Validator) -> Result<Action, FieldError> {
        Ok(proxy(
            self.proxy,
            Some(Fault::ResetAfter { bytes: self.bytes }),
        ))
    }
}

impl ActionKeys for ProxyHeal {
    fn validate(self, _: &mut Validator) -> Result<Action, FieldError> {
        Ok(proxy(self.proxy, None))
    }
}

/// The paper broker's base URL at `broker`, interpolated and parsed.
pub(super) fn broker_url(v: &mut Validator, url: &str) -> Result<Interpolated, FieldError> {
    let url = v.interpolate("broker", url)?;
    reqwest::Url::parse(&url.value)
        .map_err(|e| FieldError::new("broker", format!("invalid URL: {e}")))?;
    Ok(url)
}

impl ActionKeys for BrokerFault {
    fn validate(self, v: &mut Validator) -> Result<Action, FieldError> {
        let broker = broker_url(v, &self.broker)?;
        let api_key = self
            .api_key
            .as_deref()
            .map(|k| v.interpolate("api_key", k))
            .transpose()?;
        let mut table = self.broker_fault;
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
}

impl ActionKeys for Wait {
    fn validate(self, v: &mut Validator) -> Result<Action, FieldError> {
        Ok(Action::Wait(v.duration("wait", &self.wait)?))
    }
}
