//! The drill's TOML shape: `[item.probe] kind = "drill"` with `[[item.probe.step]]` tables.
//!
//! A step is one table with exactly one of the action keys (`stop`, `start`, `restart`,
//! `signal`, `command`, `proxy`, `broker_fault`, `wait`) or `expect = "<kind>"`; the other keys
//! it may carry depend on that choice and are checked by the validation, which names any key
//! that does not apply.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `kind = "drill"`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDrillProbe {
    /// The steps, run in order.
    #[serde(default)]
    pub step: Vec<RawStep>,
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

/// `[[item.probe.step]]`. See the module docs for which keys go together.
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Name shown in the report and used by `needs`; default: a description of the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Names of earlier steps this one depends on: when one of them did not succeed, this step
    /// is `not run`, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,

    // ---- actions ----
    /// Action: stop this `[[service]]` (SIGTERM, SIGKILL after `grace` or its `stop_timeout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// Action: start this `[[service]]` and wait until it is ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Action: stop, then start this `[[service]]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// Action: send `TERM`, `INT`, `KILL`, `HUP`, `USR1`, `USR2`, `STOP` or `CONT` to `service`;
    /// `STOP` takes `for` (continued after that long).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Action: run this argv to completion (`timeout`, `cwd`); a non-zero exit fails the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Action: set `fault` on this `[[proxy]]`: `down`, `blackhole`, `latency` (with `latency`,
    /// `jitter`), `reset_after` (with `bytes`) or `heal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Action: set faults on the paper broker at `broker` (its admin API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_fault: Option<RawBrokerFault>,
    /// Action: wait this long (humantime). Times are measured from the last other action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
    /// An expectation: `http`, `exit`, `sql`, `notifications`, `orders`, `log` or `process`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,

    // ---- action details ----
    /// The `[[service]]` of `signal`, `exit`, `log` and `process`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `stop`, `restart`: SIGTERM's grace before SIGKILL (humantime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace: Option<String>,
    /// `signal = "STOP"`: continue the service after this long (humantime).
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// `command`: give up after this long (humantime). Default `"60s"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// `command`: working directory, relative to the checklist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// `proxy`: the fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// `proxy` with `fault = "latency"`: delay per forwarded chunk, each direction (humantime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
    /// `proxy` with `fault = "latency"`: uniform jitter around it (humantime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    /// `proxy` with `fault = "reset_after"`: reset a connection after this many bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// `broker_fault`, `orders`: the paper broker's base URL, e.g. `"http://127.0.0.1:18080"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    /// `broker_fault`, `orders`: the broker's API key (sent as a Bearer token); `${VAR}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,

    // ---- every expectation ----
    /// Deadline, counted from the last action (humantime, required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// Once it holds, it must keep holding this long (humantime), e.g. no second notification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// Poll interval (humantime). Default `"100ms"`; measured times are exact to one interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Keep the observed value under this name for a later `equals_saved`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save: Option<String>,
    /// Hold only when the observed value equals the one saved under this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equals_saved: Option<String>,

    // ---- http ----
    /// `http`: the URL; `sql`: a PostgreSQL URL. `${VAR}` is interpolated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `http`: the method. Default `GET`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `http`: request headers; values may use `${VAR}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `http`: accepted status code or codes. Default: any 2xx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::probe::expect::StatusSpec>,
    /// `http`: a substring the body must contain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// `http`: a JSON pointer (RFC 6901) into the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_pointer: Option<String>,
    /// `http`: the value at `json_pointer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_equals: Option<serde_json::Value>,
    /// `http`: accepted values at `json_pointer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_one_of: Option<Vec<serde_json::Value>>,

    // ---- exit ----
    /// `exit`: the expected exit code. Default 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,

    // ---- sql ----
    /// `sql`: a SQLite file, relative to the checklist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlite: Option<String>,
    /// `sql`: the query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `sql`: exact row count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// `sql`: `true` for no rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty: Option<bool>,
    /// `sql`: the first column of the first row equals this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    /// `sql`: the first value is at least this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// `sql`: the first value is at most this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,

    // ---- notifications, log ----
    /// `notifications`: the `[[sink]]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// `notifications`, `log`: a regular expression messages or lines must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// `notifications`, `log`: exactly this many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// `notifications`, `log`: at least this many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_least: Option<u64>,
    /// `notifications`, `log`: at most this many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_most: Option<u64>,
    /// `notifications`, `log`: count from the last `action` (default) or the `drill` start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,

    // ---- orders ----
    /// `orders`: the account. Default `"default"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `orders`: exactly this many open orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open: Option<u64>,
    /// `orders`: `true` when every position must be flat (quantity 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flat: Option<bool>,

    // ---- process ----
    /// `process`: the service runs (`true`, default) or does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    /// `process`: the same process as when the drill started (PID unchanged, never restarted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchanged: Option<bool>,
    /// `process`: at most this many starts of the service since the drill started (its own
    /// `start`/`restart` actions and restores included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<u32>,
}

impl RawStep {
    /// The keys that are set, as written in TOML.
    pub fn keys_set(&self) -> Vec<String> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}
