//! The validated checklist: what the rest of the program sees once loading succeeded.

use std::path::PathBuf;
use std::time::Duration;

use super::regression::Regression;
use super::{ProxySpec, SinkSpec};
use crate::model::Severity;
use crate::probe::Probe;
use crate::service::Service;
use crate::units::Redactor;
use crate::waiver::Waiver;

/// A validated checklist.
#[derive(Debug, Clone)]
pub struct Checklist {
    /// The file it was read from.
    pub path: PathBuf,
    /// Its folder; relative paths in probes resolve against it.
    pub dir: PathBuf,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// `[checklist]` metadata.
    pub meta: Meta,
    /// `[[service]]` entries, in file order.
    pub services: Vec<Service>,
    /// `[[item]]` entries, in file order.
    pub items: Vec<Item>,
    /// `[[waiver]]` entries.
    pub waivers: Vec<Waiver>,
    /// `[[monitor]]` entries (run by `prodready soak`).
    pub monitors: Vec<crate::soak::config::Monitor>,
    /// `[[proxy]]` entries (started by `prodready run`).
    pub proxies: Vec<ProxySpec>,
    /// `[[sink]]` entries (started by `prodready run`).
    pub sinks: Vec<SinkSpec>,
    /// Values of every interpolated `${VAR}`, to scrub from output.
    pub redactor: Redactor,
}

/// `[checklist]` metadata.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Name; also names the report folder.
    pub name: String,
    /// System under test.
    pub system: Option<String>,
    /// Environment (staging, production…).
    pub environment: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Roles that must sign off.
    pub signoff: Vec<String>,
    /// Default per-item timeout.
    pub timeout: Duration,
    /// The baseline report (`baseline`), as written: relative to the checklist's folder.
    pub baseline: Option<PathBuf>,
}

/// One checklist item.
#[derive(Debug, Clone)]
pub struct Item {
    /// Unique id.
    pub id: String,
    /// Section heading.
    pub section: String,
    /// One-line title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Tags.
    pub tags: Vec<String>,
    /// Longer description.
    pub description: Option<String>,
    /// Per-item timeout.
    pub timeout: Duration,
    /// Extra attempts after `fail`/`error`.
    pub retries: u32,
    /// The id of the item this one runs alongside: the item's `during`, or the probe's own
    /// `during` key (memory) — one of the two, never both.
    pub during: Option<String>,
    /// The probe.
    pub probe: Probe,
    /// How far the item may move from the baseline (`regression`); `None`: not gated on it.
    pub regression: Option<Regression>,
}
