//! The raw serde mirror of the checklist TOML. Every table denies unknown keys, so a typo
//! (`p99_ms` for `p99`) is an error instead of a silently missing threshold. The JSON Schema
//! published in `schema/checklist.schema.json` is generated from these types.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::model::Severity;

/// A whole checklist file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "prodready checklist")]
pub struct RawChecklist {
    /// Metadata: name, system, environment, sign-off roles.
    pub checklist: RawMeta,
    /// Processes started before the items and stopped after them.
    #[serde(default)]
    pub service: Vec<crate::service::RawService>,
    /// The checklist items, each backed by one probe.
    #[serde(default)]
    pub item: Vec<RawItem>,
    /// Accepted, justified, expiring exceptions for failing items.
    #[serde(default)]
    pub waiver: Vec<crate::waiver::RawWaiver>,
    /// Periodic health checks run by `prodready soak`.
    #[serde(default)]
    pub monitor: Vec<crate::soak::config::RawMonitor>,
    /// TCP fault proxies in front of dependencies, for failure drills.
    #[serde(default)]
    pub proxy: Vec<RawProxy>,
    /// Notification receivers (webhook, Telegram Bot API, Slack), for failure drills.
    #[serde(default)]
    pub sink: Vec<RawSink>,
}

/// `[[proxy]]`: a TCP proxy that drills can break (`down`, `blackhole`, `latency`,
/// `reset_after`) and heal. Services reach the dependency through `${PROXY_<NAME>_ADDR}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    /// Name: letters, digits, `-`, `_`; unique among proxies.
    pub name: String,
    /// The dependency, `host:port`. `${VAR}` is interpolated.
    pub upstream: String,
    /// Where to listen, `ip:port`. Default: a free port on 127.0.0.1.
    pub listen: Option<String>,
    /// What the dependency speaks: `"tcp"` (default; faults act on bytes: `down`,
    /// `blackhole`, `latency`, `reset_after`) or `"http"` (HTTP/1.1; also `fault = "http"`,
    /// which answers matching requests with a chosen status, delay or dropped connection).
    pub protocol: Option<String>,
}

/// `[[sink]]`: a built-in notification receiver started with the run. Services get its base URL
/// as `${SINK_<NAME>_URL}`: Telegram bots post to `${SINK_<NAME>_URL}/bot<token>/sendMessage`,
/// Slack webhooks to `${SINK_<NAME>_URL}/services/…`, anything else is a JSON webhook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    /// Name: letters, digits, `-`, `_`; unique among sinks.
    pub name: String,
    /// Where to listen, `ip:port`. Default: a free port on 127.0.0.1.
    pub listen: Option<String>,
}

/// `[checklist]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMeta {
    /// Name of the checklist; also names the report folder.
    pub name: String,
    /// The system under test, e.g. `order-router`.
    pub system: Option<String>,
    /// The environment, e.g. `staging`.
    pub environment: Option<String>,
    /// Free text shown at the top of the report.
    pub description: Option<String>,
    /// Roles that must sign the report off, e.g. `["Technical lead", "Security review"]`.
    #[serde(default)]
    pub signoff: Vec<String>,
    /// Default per-item timeout (humantime). Default `"10m"`.
    pub timeout: Option<String>,
    /// The baseline report of `prodready run` (a report folder or its report.json, relative
    /// to this file); items with a `regression` table are judged against it.
    /// `--baseline` overrides it.
    pub baseline: Option<String>,
}

/// `[[item]]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawItem {
    /// Unique id: letters, digits, `-`, `_`, `.`.
    pub id: String,
    /// Section heading, e.g. `Performance`.
    pub section: String,
    /// One line, as on the paper checklist.
    pub title: String,
    /// `blocker`, `major`, `minor` or `info`.
    pub severity: Severity,
    /// Free-form tags for `--tag`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Longer description.
    pub description: Option<String>,
    /// Per-item timeout (humantime), overriding `[checklist] timeout`.
    pub timeout: Option<String>,
    /// Extra attempts after a `fail` or `error`. Default 0.
    pub retries: Option<u32>,
    /// Run alongside the item with this id: start together with it, and (for probes that
    /// sample over time, such as `memory`) stop sampling when it finishes. Any probe kind can
    /// run `during` another item, e.g. a drill during a latency item's load.
    pub during: Option<String>,
    /// How far the item may move from the baseline report before it fails, e.g.
    /// `{ p99 = "+10%", p50 = "+10%", alpha = 0.01 }`. Without it the item is not gated on
    /// the baseline.
    pub regression: Option<super::regression::RawRegression>,
    /// The probe behind the item.
    // Read as a table and typed by its `kind` afterwards (`RawProbe::from_table`), so an error
    // inside it keeps its key path; its schema is `RawProbe`'s.
    #[schemars(with = "RawProbe")]
    pub probe: toml::Table,
}

pub use crate::probe::RawProbe;
