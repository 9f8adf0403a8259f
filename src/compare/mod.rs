//! `prodready compare BASE NEW`: a report judged against a baseline report, item by item.
//!
//! For every item both reports hold: the status change, every measured figure side by side,
//! and per kind what fixed thresholds miss ([`latency`]: the two runs' HdrHistograms, the
//! Mann–Whitney U test, the Hodges–Lehmann shift and the order-statistic intervals of p99 and
//! p99.9; [`kinds`]: memory slope intervals, coverage points, audit advisories added and fixed,
//! uptime, drill steps). A figure *regressed* when the change is in the harmful direction and
//! beyond its allowance ([`Policy`]); for latency the change must also be significant at
//! `alpha`. Items added, removed or changed between the checklists are listed, not compared.
//!
//! Fail closed: a latency comparison without enough samples is *inconclusive*, and an
//! inconclusive figure counts like a regression (exit 1), never as "no change". A baseline of
//! another checklist digest or system is an input error unless the caller allows it.
//!
//! Nothing here changes either report; the renderers ([`render`]) show what the
//! [`Comparison`] holds.

pub mod kinds;
pub mod latency;
pub mod render;

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::Status;
use crate::report::{ItemReport, Report};

/// Version of the `compare.json` layout.
pub const COMPARE_SCHEMA_VERSION: u32 = 1;

/// What counts as a regression. Each allowance is the largest harmless change in the
/// harmful direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Policy {
    /// Significance level of the latency tests (one-sided Mann–Whitney U; the confidence of
    /// the intervals is 1 − alpha).
    pub alpha: f64,
    /// Allowed latency shift of the centre (Hodges–Lehmann), in percent of the baseline median.
    pub latency_allowance_percent: f64,
    /// Allowed rise of p99, in percent of the baseline's (p99.9 is shown, not judged).
    pub tail_allowance_percent: f64,
    /// Allowed drop of line or branch coverage, in percentage points.
    pub coverage_allowance_points: f64,
    /// Allowed drop of availability, in percentage points.
    pub availability_allowance_points: f64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            alpha: 0.01,
            latency_allowance_percent: 20.0,
            tail_allowance_percent: 50.0,
            coverage_allowance_points: 1.0,
            availability_allowance_points: 0.05,
        }
    }
}

/// One side of the comparison: which report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Side {
    /// The report.json, as given on the command line.
    pub report: String,
    /// `[checklist] name`.
    pub checklist: String,
    /// SHA-256 of the checklist file.
    pub checklist_sha256: String,
    /// System under test.
    pub system: Option<String>,
    /// Start of the run, RFC 3339.
    pub started_at: String,
    /// The run's verdict.
    pub verdict: String,
    /// The git commit of the checklist's repository, when known.
    pub commit: Option<String>,
}

/// Items that differ between the two checklists: listed, not compared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChecklistChanges {
    /// Ids only the new report holds.
    pub added: Vec<String>,
    /// Ids only the baseline holds.
    pub removed: Vec<String>,
    /// Ids whose probe kind or load changed, with what changed.
    pub changed: Vec<String>,
}

/// A measured figure of an item, side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Figure {
    /// The measured key, e.g. `p99_ms`, `line_percent`.
    pub name: String,
    /// The baseline's value (a number, string or boolean as the report holds it).
    pub baseline: Value,
    /// The new value.
    pub new: Value,
    /// new − baseline, when both are numbers.
    pub delta: Option<f64>,
    /// The change in percent of the baseline, when both are numbers and the baseline is not 0.
    pub delta_percent: Option<f64>,
}

/// How an item's comparison came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Judgement {
    /// No figure regressed.
    Same,
    /// A figure improved beyond its allowance and none regressed.
    Improved,
    /// A figure regressed beyond its allowance (or the status worsened).
    Regressed,
    /// A figure could not be compared (too few samples, a missing or altered file): fails
    /// closed, counted like a regression.
    Inconclusive,
}

/// One item of both reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ItemChange {
    /// Item id.
    pub id: String,
    /// Title (of the new report).
    pub title: String,
    /// Probe kind.
    pub kind: String,
    /// Status in the baseline.
    pub baseline_status: Status,
    /// Status now.
    pub new_status: Status,
    /// The verdict on this item.
    pub judgement: Judgement,
    /// Why, one line per regressed, inconclusive or improved figure.
    pub notes: Vec<String>,
    /// Every measured figure both reports hold, side by side.
    pub figures: Vec<Figure>,
    /// The latency comparison from the two runs' histograms (`latency` items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<latency::LatencyChange>,
    /// Memory slope intervals (`memory` items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<kinds::MemoryChange>,
    /// Advisories added and fixed (`audit` items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<kinds::AuditChange>,
    /// Each drill step's measured time (`drill` items).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drill_steps: Vec<kinds::StepChange>,
}

/// The whole comparison: what `compare.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "prodready comparison of a report against a baseline")]
pub struct Comparison {
    /// Layout version ([`COMPARE_SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The baseline report.
    pub baseline: Side,
    /// The new report.
    pub new: Side,
    /// The allowances and the significance level used.
    pub policy: Policy,
    /// True when the checklists' digests or systems differ and the caller allowed it.
    pub other_checklist: bool,
    /// True when any item regressed or is inconclusive (exit 1).
    pub regressed: bool,
    /// One line per regressed or inconclusive item figure.
    pub regressions: Vec<String>,
    /// Items added, removed or changed: listed, not compared.
    pub checklist_changes: ChecklistChanges,
    /// The items both reports hold, in the new report's order.
    pub items: Vec<ItemChange>,
}

/// Where a report's evidence lies: its report.json (named in messages) and the folder its
/// evidence paths are relative to (absolute paths stand as they are).
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The report.json.
    pub path: &'a Path,
    /// Its folder.
    pub dir: &'a Path,
}

/// A loaded report and the folder its evidence paths are relative to.
#[derive(Debug)]
pub struct Loaded {
    /// The report.
    pub report: Report,
    /// The report.json path.
    pub path: PathBuf,
    /// Its folder.
    pub dir: PathBuf,
}

/// Load a report given as its folder or its `report.json`. A signed report is checked first:
/// with `allowed_signers`, fully (`prodready verify`'s checks, expiry as of the day the run
/// finished); without, every signature must name the report's current body digest.
///
/// # Errors
/// [`Error::InvalidInput`] (exit 2) naming the file when it is missing, truncated or not a
/// report, or when a signed report does not verify (it was edited after signing).
pub fn load(arg: &Path, allowed_signers: Option<&Path>) -> Result<Loaded> {
    let path = if arg.is_dir() {
        arg.join("report.json")
    } else {
        arg.to_path_buf()
    };
    if !path.is_file() {
        return Err(Error::InvalidInput {
            path,
            message: "no such report: expected a report folder or its report.json".into(),
        });
    }
    let report = Report::load(&path)?;
    if let (Some(allowed), false) = (allowed_signers, report.signoff.signatures.is_empty()) {
        verify_signed(&path, &report, allowed)?;
    }
    let body = report.body_sha256();
    if let Some(s) = report
        .signoff
        .signatures
        .iter()
        .find(|s| s.body_sha256 != body)
    {
        return Err(Error::InvalidInput {
            path,
            message: format!(
                "the report was changed after {} signed it as {} (signed body {}, body now {body}): refusing a tampered report",
                s.signer, s.role, s.body_sha256
            ),
        });
    }
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(Loaded { report, path, dir })
}

/// `prodready verify`'s checks on a signed report, as of the day its run finished.
fn verify_signed(path: &Path, report: &Report, allowed: &Path) -> Result<()> {
    use crate::signoff::{CheckState, VerifyOptions, verify};
    let on = report
        .run
        .finished_at
        .parse::<jiff::Timestamp>()
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
        .unwrap_or_else(|_| crate::signoff::today_utc());
    let opts = VerifyOptions {
        allowed_signers: Some(allowed.to_path_buf()),
        on,
    };
    let v = verify(path, &opts)?;
    if v.all_hold() {
        return Ok(());
    }
    let failed: Vec<String> = v
        .rows
        .iter()
        .filter(|r| r.state == CheckState::Fail)
        .map(|r| format!("{}: {}", r.check, r.detail))
        .collect();
    Err(Error::InvalidInput {
        path: path.to_path_buf(),
        message: format!(
            "the signed report does not verify ({}): refusing it",
            failed.join("; ")
        ),
    })
}

impl Loaded {
    /// Where its evidence lies.
    pub fn place(&self) -> Place<'_> {
        Place {
            path: &self.path,
            dir: &self.dir,
        }
    }
}

fn side(l: &Loaded) -> Side {
    let c = &l.report.run.checklist;
    Side {
        report: l.path.display().to_string(),
        checklist: c.name.clone(),
        checklist_sha256: c.sha256.clone(),
        system: c.system.clone(),
        started_at: l.report.run.started_at.clone(),
        verdict: l.report.verdict_text(),
        commit: l.report.run.git.as_ref().map(|g| g.commit.clone()),
    }
}

/// Compare `new` against `base` under `policy`.
///
/// # Errors
/// [`Error::InvalidInput`] (exit 2) when the baseline's checklist digest or system differs and
/// `allow_other_checklist` is false.
pub fn compare(
    base: &Loaded,
    new: &Loaded,
    policy: &Policy,
    allow_other_checklist: bool,
) -> Result<Comparison> {
    let other_checklist =
        check_baseline_of(base, &new.report.run.checklist, allow_other_checklist)?;
    let mut changes = ChecklistChanges::default();
    let mut items = Vec::new();
    for it in &new.report.items {
        let Some(old) = base.report.items.iter().find(|o| o.id == it.id) else {
            changes.added.push(it.id.clone());
            continue;
        };
        if let Some(why) = changed(old, it) {
            changes.changed.push(format!("{}: {why}", it.id));
            continue;
        }
        items.push(compare_item(base, new, old, it, policy));
    }
    changes.removed = base
        .report
        .items
        .iter()
        .filter(|o| !new.report.items.iter().any(|i| i.id == o.id))
        .map(|o| o.id.clone())
        .collect();
    let regressions: Vec<String> = items
        .iter()
        .filter(|i| matches!(i.judgement, Judgement::Regressed | Judgement::Inconclusive))
        .flat_map(|i| i.notes.iter().map(move |n| format!("{}: {n}", i.id)))
        .collect();
    Ok(Comparison {
        schema_version: COMPARE_SCHEMA_VERSION,
        baseline: side(base),
        new: side(new),
        policy: policy.clone(),
        other_checklist,
        regressed: items
            .iter()
            .any(|i| matches!(i.judgement, Judgement::Regressed | Judgement::Inconclusive)),
        regressions,
        checklist_changes: changes,
        items,
    })
}

/// Whether `base` is a baseline of a report of checklist `n`: same checklist digest and
/// system. Returns true when they differ and `allow_other_checklist` accepts it.
///
/// # Errors
/// [`Error::InvalidInput`] (exit 2) naming the baseline when they differ and
/// `allow_other_checklist` is false.
pub fn check_baseline_of(
    base: &Loaded,
    n: &crate::report::ChecklistInfo,
    allow_other_checklist: bool,
) -> Result<bool> {
    let b = &base.report.run.checklist;
    let mut differs = Vec::new();
    if b.sha256 != n.sha256 {
        differs.push(format!(
            "checklist digest {} (\"{}\") is not the new report's {} (\"{}\")",
            b.sha256, b.name, n.sha256, n.name
        ));
    }
    if b.system != n.system {
        differs.push(format!(
            "system {:?} is not the new report's {:?}",
            b.system.as_deref().unwrap_or("(none)"),
            n.system.as_deref().unwrap_or("(none)")
        ));
    }
    if !differs.is_empty() && !allow_other_checklist {
        return Err(Error::InvalidInput {
            path: base.path.clone(),
            message: format!(
                "not a baseline of this report: its {}; pass --allow-other-checklist to compare anyway",
                differs.join(", and its ")
            ),
        });
    }
    Ok(!differs.is_empty())
}

/// Why an item of both reports is not comparable: its probe kind changed, or (latency) the
/// load it was measured under did.
pub fn changed(old: &ItemReport, new: &ItemReport) -> Option<String> {
    if old.kind != new.kind {
        return Some(format!("kind {} became {}", old.kind, new.kind));
    }
    if new.kind == "latency" {
        for key in ["rate_requested_per_s", "connections"] {
            let (a, b) = (old.outcome.measured.get(key), new.outcome.measured.get(key));
            if a != b {
                return Some(format!(
                    "{key} {} became {}",
                    a.map_or("(none)".into(), Value::to_string),
                    b.map_or("(none)".into(), Value::to_string)
                ));
            }
        }
    }
    None
}

/// A status that passed (pass, warn, waived) before and blocks now.
fn status_worsened(old: Status, new: Status) -> bool {
    matches!(old, Status::Pass | Status::Warn | Status::Waived) && new.is_blocking()
}

/// What the per-kind comparisons found: regressions, inconclusive figures, improvements.
#[derive(Debug, Default)]
pub struct Notes {
    /// Regressed figures.
    pub regressed: Vec<String>,
    /// Figures that could not be compared.
    pub inconclusive: Vec<String>,
    /// Figures that improved beyond their allowance.
    pub improved: Vec<String>,
}

fn compare_item(
    base: &Loaded,
    new: &Loaded,
    old: &ItemReport,
    it: &ItemReport,
    policy: &Policy,
) -> ItemChange {
    let mut notes = Notes::default();
    let (bs, ns) = (old.outcome.status, it.outcome.status);
    if status_worsened(bs, ns) {
        notes
            .regressed
            .push(format!("status {} became {}", bs.as_str(), ns.as_str()));
    }
    let mut change = ItemChange {
        id: it.id.clone(),
        title: it.title.clone(),
        kind: it.kind.clone(),
        baseline_status: bs,
        new_status: ns,
        judgement: Judgement::Same,
        notes: Vec::new(),
        figures: figures(&old.outcome.measured, &it.outcome.measured),
        latency: None,
        memory: None,
        audit: None,
        drill_steps: Vec::new(),
    };
    match it.kind.as_str() {
        "latency" => {
            change.latency =
                latency::compare_latency(base.place(), new.place(), old, it, policy, &mut notes)
        }
        "memory" => change.memory = kinds::memory(old, it, &mut notes),
        "coverage" => kinds::coverage(old, it, policy, &mut notes),
        "audit" => change.audit = kinds::audit(old, it, &mut notes),
        "uptime" => kinds::uptime(old, it, policy, &mut notes),
        "drill" => change.drill_steps = kinds::drill(old, it),
        _ => {}
    }
    change.judgement = if !notes.regressed.is_empty() {
        Judgement::Regressed
    } else if !notes.inconclusive.is_empty() {
        Judgement::Inconclusive
    } else if !notes.improved.is_empty() {
        Judgement::Improved
    } else {
        Judgement::Same
    };
    change.notes = notes
        .regressed
        .into_iter()
        .chain(notes.inconclusive)
        .chain(notes.improved)
        .collect();
    change
}

/// Every measured key of either side, side by side, with Δ where both are numbers. Structured
/// values (drill steps) are left to the per-kind comparisons.
fn figures(
    old: &serde_json::Map<String, Value>,
    new: &serde_json::Map<String, Value>,
) -> Vec<Figure> {
    let mut keys: Vec<&String> = new.keys().collect();
    keys.extend(old.keys().filter(|k| !new.contains_key(*k)));
    keys.into_iter()
        .filter_map(|k| {
            let (b, n) = (
                old.get(k).cloned().unwrap_or(Value::Null),
                new.get(k).cloned().unwrap_or(Value::Null),
            );
            if b.is_array() || b.is_object() || n.is_array() || n.is_object() {
                return None;
            }
            let delta = match (b.as_f64(), n.as_f64()) {
                (Some(x), Some(y)) => Some(y - x),
                _ => None,
            };
            let delta_percent = match (b.as_f64(), delta) {
                (Some(x), Some(d)) if x != 0.0 => Some(d / x.abs() * 100.0),
                _ => None,
            };
            Some(Figure {
                name: k.clone(),
                baseline: b,
                new: n,
                delta,
                delta_percent,
            })
        })
        .collect()
}

/// The JSON Schema of `compare.json` (draft 2020-12), generated from [`Comparison`].
pub fn json_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(Comparison)).expect("schema serializes")
}
