//! The report model: one [`Report`] feeds every renderer — JSON ([`Report::to_json`]),
//! Markdown ([`markdown`]), HTML ([`html`]) and JUnit XML ([`junit`]). Renderers never re-measure and hold no
//! pass/fail logic; the verdict is computed here, in [`verdict`], and nowhere else.

pub mod canonical;
pub mod chart;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod portable;

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Outcome, Severity, Status};

/// Version of the `report.json` layout. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The summary of an item the filters (`--only`, `--section`, `--tag`) left out.
pub const NOT_SELECTED: &str = "not selected by the filters";

/// The whole run: what `report.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "prodready readiness report")]
pub struct Report {
    /// Layout version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// What ran, where, when.
    pub run: RunMeta,
    /// The decision, on the items that ran (see `partial`).
    pub verdict: Verdict,
    /// True when filters (`--only`, `--section`, `--tag`) left items out: the verdict is that
    /// of the items that ran, not of the checklist. Written only when true, so it is absent
    /// from full runs (and from reports written before it existed); part of the signed body.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Ids of the items the filters left out, in checklist order (written with `partial`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_run: Vec<String>,
    /// Items per status.
    pub counts: Counts,
    /// Why the verdict is what it is, one line each (empty when ready).
    pub reasons: Vec<String>,
    /// Every item of the checklist, in file order, with its outcome.
    pub items: Vec<ItemReport>,
    /// Services started around the run.
    pub services: Vec<ServiceReport>,
    /// Waivers in the checklist, applied or not.
    pub waivers: Vec<WaiverReport>,
    /// Who must sign, and the signatures made so far.
    pub signoff: Signoff,
}

/// The verdict of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every blocking item passed.
    Ready,
    /// Ready only because waivers accept some failures.
    ReadyWithWaivers,
    /// At least one blocking item failed, errored or is pending, a service did not start, or
    /// the run was interrupted.
    NotReady,
}

impl Verdict {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ready => "ready",
            Verdict::ReadyWithWaivers => "ready-with-waivers",
            Verdict::NotReady => "not-ready",
        }
    }

    /// The documented exit code for this verdict.
    pub fn exit(self) -> crate::error::Exit {
        match self {
            Verdict::Ready | Verdict::ReadyWithWaivers => crate::error::Exit::Ready,
            Verdict::NotReady => crate::error::Exit::NotReady,
        }
    }
}

/// Run metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunMeta {
    /// The checklist.
    pub checklist: ChecklistInfo,
    /// The git commit of the checklist's repository, when it is in one.
    pub git: Option<GitInfo>,
    /// The machine that ran it.
    pub host: HostFacts,
    /// prodready's version.
    pub prodready_version: String,
    /// Start, RFC 3339 UTC.
    pub started_at: String,
    /// End, RFC 3339 UTC.
    pub finished_at: String,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// True when ctrl-c/SIGTERM stopped the run early; the report is partial.
    pub interrupted: bool,
    /// Lowest severity whose failures block the verdict.
    pub fail_on: Severity,
    /// Item filters given on the command line (empty: all items ran).
    pub filters: Vec<String>,
}

/// Which checklist ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChecklistInfo {
    /// `[checklist] name`.
    pub name: String,
    /// Path relative to the root of its git repository, or its file name outside one: never
    /// an absolute path of the machine that ran it.
    pub path: String,
    /// Lowercase hex SHA-256 of the checklist file.
    pub sha256: String,
    /// System under test.
    pub system: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Description.
    pub description: Option<String>,
}

/// Git state of the checklist's repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GitInfo {
    /// Full commit hash of HEAD.
    pub commit: String,
    /// True when the work tree had uncommitted changes.
    pub dirty: bool,
}

/// Facts about the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostFacts {
    /// Host name.
    pub hostname: String,
    /// Operating system and version.
    pub os: String,
    /// Kernel version.
    pub kernel: String,
    /// CPU architecture.
    pub arch: String,
    /// Logical CPUs.
    pub cpus: u32,
    /// Total memory in bytes.
    pub memory_bytes: u64,
}

/// Counts of items per status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Counts {
    /// Items in the checklist.
    pub total: u32,
    /// `pass`.
    pub pass: u32,
    /// `fail`.
    pub fail: u32,
    /// `warn`.
    pub warn: u32,
    /// `error`.
    pub error: u32,
    /// `pending`.
    pub pending: u32,
    /// `skipped`.
    pub skipped: u32,
    /// `waived`.
    pub waived: u32,
}

/// One item and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ItemReport {
    /// Item id.
    pub id: String,
    /// Section.
    pub section: String,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Tags.
    pub tags: Vec<String>,
    /// Probe kind.
    pub kind: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The status the probe produced before any waiver (equal to `outcome.status` unless waived).
    pub probe_status: Status,
    /// The outcome (its `status` is final, after waivers).
    pub outcome: Outcome,
}

/// A service started around the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceReport {
    /// Name.
    pub name: String,
    /// Command line as written (secrets left as `${VAR}`).
    pub command: String,
    /// Whether it became ready.
    pub ready: bool,
    /// Time to ready in milliseconds.
    pub ready_ms: Option<u64>,
    /// Why it is not ready, or how it ended.
    pub message: String,
    /// Exit status when stopped, e.g. `exit 0`, `signal 9`.
    pub exit: Option<String>,
    /// Last lines of its output, secrets redacted.
    pub log_tail: String,
}

/// A waiver and whether it applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WaiverReport {
    /// Waived item id.
    pub item: String,
    /// Justification.
    pub reason: String,
    /// Approver.
    pub approved_by: String,
    /// Last day it applies (YYYY-MM-DD).
    pub expires: String,
    /// `applied`, `not-needed` (the item did not fail), `expired` or `not-run`.
    pub state: WaiverState,
    /// The principal who signed the waiver (`[[waiver]] signer`), when it is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The approver's armored SSHSIG signature over the waiver statement
    /// ([`crate::signoff::WaiverStatement`]), when it is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// What a waiver did in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WaiverState {
    /// It turned a failure into `waived`.
    Applied,
    /// The item did not fail; nothing to waive.
    NotNeeded,
    /// It expired before this run and no longer applies.
    Expired,
    /// The item did not run.
    NotRun,
}

/// Sign-off requirements and signatures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Signoff {
    /// Roles that must approve (from the checklist).
    pub required_roles: Vec<String>,
    /// Signatures over the report body, in signing order. Excluded from the signed body.
    #[serde(default)]
    pub signatures: Vec<Signature>,
}

/// A sign-off decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The role approves going live.
    Approve,
    /// The role rejects going live.
    Reject,
}

impl Decision {
    /// `approve` or `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }

    /// Parse `approve` or `reject`.
    ///
    /// # Errors
    /// A message for anything else.
    pub fn parse(s: &str) -> std::result::Result<Decision, String> {
        match s {
            "approve" => Ok(Decision::Approve),
            "reject" => Ok(Decision::Reject),
            other => Err(format!(
                "decision \"{other}\" is not one of: approve, reject"
            )),
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One role's signed decision on the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Signature {
    /// The role signed for.
    pub role: String,
    /// The signer (principal or key comment).
    pub signer: String,
    /// `approve` or `reject`.
    pub decision: Decision,
    /// Free text.
    #[serde(default)]
    pub comment: String,
    /// RFC 3339 UTC time of signing.
    pub signed_at: String,
    /// SHA-256 fingerprint of the public key (OpenSSH form).
    pub key_fingerprint: String,
    /// Lowercase hex SHA-256 of the canonical body that was signed.
    pub body_sha256: String,
    /// The armored SSHSIG signature.
    pub signature: String,
    /// The exact message that `signature` signs (UTF-8 text, see
    /// [`crate::signoff::SignoffStatement`]); rebuilt from the fields above and compared when
    /// verifying. Kept so `ssh-keygen -Y verify` can check the signature directly.
    #[serde(default)]
    pub statement: String,
}

/// Decide the verdict and say why: the one place it is decided (ARCHITECTURE.md, "Invariants").
///
/// `not-ready` when an item at or above `fail_on` is `fail`, `error` or `pending`, when a
/// service did not become ready, or when the run was interrupted; `ready-with-waivers` when
/// waived items remain; `ready` otherwise.
pub fn verdict(
    items: &[ItemReport],
    services: &[ServiceReport],
    interrupted: bool,
    fail_on: Severity,
) -> (Verdict, Vec<String>) {
    let mut reasons = Vec::new();
    if interrupted {
        reasons.push("the run was interrupted before every item finished".to_string());
    }
    for s in services.iter().filter(|s| !s.ready) {
        reasons.push(format!(
            "service \"{}\" did not become ready: {}",
            s.name, s.message
        ));
    }
    for it in items {
        if it.severity >= fail_on && it.outcome.status.is_blocking() {
            reasons.push(format!(
                "{} item \"{}\" is {}: {}",
                it.severity.as_str(),
                it.id,
                it.outcome.status.as_str(),
                it.outcome.summary
            ));
        }
    }
    if !reasons.is_empty() {
        return (Verdict::NotReady, reasons);
    }
    if items.iter().any(|i| i.outcome.status == Status::Waived) {
        (Verdict::ReadyWithWaivers, reasons)
    } else {
        (Verdict::Ready, reasons)
    }
}

/// Count items per status.
pub fn count(items: &[ItemReport]) -> Counts {
    let mut c = Counts {
        total: items.len() as u32,
        ..Counts::default()
    };
    for it in items {
        let slot = match it.outcome.status {
            Status::Pass => &mut c.pass,
            Status::Fail => &mut c.fail,
            Status::Warn => &mut c.warn,
            Status::Error => &mut c.error,
            Status::Pending => &mut c.pending,
            Status::Skipped => &mut c.skipped,
            Status::Waived => &mut c.waived,
        };
        *slot += 1;
    }
    c
}

/// How much of the checklist a partial report's verdict covers ([`Report::partial_scope`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialScope<'a> {
    /// Items that were selected to run.
    pub ran: usize,
    /// Items in the checklist.
    pub total: usize,
    /// Ids of the items the filters left out, in checklist order.
    pub not_run: Vec<&'a str>,
    /// The filters as given on the command line, e.g. `--only order-latency`.
    pub filters: String,
}

impl PartialScope<'_> {
    /// `for 1 of 6 items (5 not run)`: what follows the verdict wherever it is shown.
    pub fn verdict_suffix(&self) -> String {
        format!(
            "for {} of {} items ({} not run)",
            self.ran,
            self.total,
            self.not_run.len()
        )
    }

    /// `b, c, d`: the ids not run, the first `max` of them and how many more.
    pub fn not_run_list(&self, max: usize) -> String {
        let mut s = self
            .not_run
            .iter()
            .take(max)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if self.not_run.len() > max {
            s.push_str(&format!(" and {} more", self.not_run.len() - max));
        }
        s
    }
}

impl Report {
    /// `Some` when filters left items out, so the verdict covers only the items that ran.
    /// A report written before `partial` existed is partial when it has filters and items
    /// skipped as [`NOT_SELECTED`] (fail closed: a filtered run is never taken for a full one).
    pub fn partial_scope(&self) -> Option<PartialScope<'_>> {
        let not_run: Vec<&str> = if self.partial {
            self.not_run.iter().map(String::as_str).collect()
        } else if !self.run.filters.is_empty() {
            self.items
                .iter()
                .filter(|i| {
                    i.outcome.status == Status::Skipped && i.outcome.summary == NOT_SELECTED
                })
                .map(|i| i.id.as_str())
                .collect()
        } else {
            Vec::new()
        };
        if !self.partial && not_run.is_empty() {
            return None;
        }
        Some(PartialScope {
            ran: self.items.len().saturating_sub(not_run.len()),
            total: self.items.len(),
            not_run,
            filters: self.run.filters.join(" "),
        })
    }

    /// The counts in one sentence: `15 items: 9 pass, 2 fail, 4 error, 0 warn, 0 pending,
    /// 0 waived, 0 skipped.`
    pub fn counts_text(&self) -> String {
        let k = &self.counts;
        format!(
            "{} items: {} pass, {} fail, {} error, {} warn, {} pending, {} waived, {} skipped.",
            k.total, k.pass, k.fail, k.error, k.warn, k.pending, k.waived, k.skipped
        )
    }

    /// The verdict for people, naming a partial one: `ready`, or `ready for 1 of 6 items (5
    /// not run)`.
    pub fn verdict_text(&self) -> String {
        match self.partial_scope() {
            Some(p) => format!("{} {}", self.verdict.as_str(), p.verdict_suffix()),
            None => self.verdict.as_str().to_string(),
        }
    }

    /// Read a `report.json`.
    ///
    /// # Errors
    /// [`Error::Io`] when unreadable; [`Error::InvalidInput`] (exit 2) with line and column when
    /// it is not a valid report (truncated, edited, wrong schema version).
    pub fn load(path: &Path) -> Result<Report> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        let report: Report =
            serde_path_to_error::deserialize(de).map_err(|e| Error::InvalidInput {
                path: path.to_path_buf(),
                message: format!(
                    "{}:{}: not a valid prodready report at {}: {}",
                    e.inner().line(),
                    e.inner().column(),
                    e.path(),
                    e.inner()
                ),
            })?;
        if report.schema_version != SCHEMA_VERSION {
            return Err(Error::InvalidInput {
                path: path.to_path_buf(),
                message: format!(
                    "report schema_version {} is not supported (expected {SCHEMA_VERSION})",
                    report.schema_version
                ),
            });
        }
        Ok(report)
    }

    /// The canonical body that sign-off signatures cover: the report's JSON value without
    /// `signoff.signatures`, serialized canonically (sorted keys, no whitespace; the rules are
    /// in [`canonical`], the one definition shared with `sign` and `verify`).
    pub fn canonical_body(&self) -> Vec<u8> {
        canonical::body_bytes(&self.to_value())
    }

    /// Lowercase hex SHA-256 of [`Report::canonical_body`] (64 characters).
    pub fn body_sha256(&self) -> String {
        canonical::body_sha256(&self.to_value())
    }

    /// The report as a JSON value (what `report.json` holds).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("report serializes")
    }

    /// Serialize as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("report serializes");
        s.push('\n');
        s
    }

    /// Write `report.json`, `report.md`, `report.html` and `junit.xml` into `dir`.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be written.
    pub fn write_all(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        write_atomic(&dir.join("report.json"), self.to_json().as_bytes())?;
        let mut md = Vec::new();
        markdown::render(&mut md, self)
            .map_err(|e| Error::io("rendering", dir.join("report.md"), e))?;
        write_atomic(&dir.join("report.md"), &md)?;
        self.write_html(dir, None)?;
        let mut xml = Vec::new();
        junit::render(&mut xml, self)
            .map_err(|e| Error::io("rendering", dir.join("junit.xml"), e))?;
        write_atomic(&dir.join("junit.xml"), &xml)?;
        Ok(())
    }
}

impl Report {
    /// Write `report.html` into `dir`, the report folder (its charts are inlined from there),
    /// with the signatures' verification when one was made.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    pub fn write_html(&self, dir: &Path, verification: Option<&html::Verified>) -> Result<()> {
        let path = dir.join("report.html");
        let mut buf = Vec::new();
        let cx = html::Context {
            dir: Some(dir),
            verification,
        };
        html::render(&mut buf, self, &cx).map_err(|e| Error::io("rendering", &path, e))?;
        write_atomic(&path, &buf)
    }
}

/// Write a file through a temporary sibling and a rename, so a crash never leaves half a file.
///
/// # Errors
/// [`Error::Io`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming", path, e))
}

/// The JSON Schema of `report.json` (draft 2020-12), generated from [`Report`].
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).expect("schema serializes")
}
