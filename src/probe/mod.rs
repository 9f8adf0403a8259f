//! Probes: the automated measurements behind checklist items (design §6).
//!
//! Each kind lives in its own module with its raw (serde) configuration, the validated form
//! and an async `run` that returns a [`ProbeOutput`]. [`Probe`] is the closed set of validated
//! probes; [`ProbeContext`] is what the runner hands every probe (paths, evidence folder,
//! redactor, cancellation).

pub mod attestation;
pub mod audit;
pub mod command;
pub mod coverage;
pub mod env;
pub mod expect;
pub mod file;
pub mod host;
pub mod http;
pub mod latency;
pub mod memory;
pub mod tool;
pub mod uptime;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::model::{Evidence, ProbeOutput};
use crate::units::Redactor;

/// A validated probe, ready to run.
#[derive(Debug, Clone)]
pub enum Probe {
    /// Run a command and check its exit status and output.
    Command(command::CommandProbe),
    /// Request a URL and check status, body, latency and certificate.
    Http(http::HttpProbe),
    /// Check a file: existence, size, Markdown headings, permissions.
    File(file::FileProbe),
    /// Check that environment variables are set (values are never shown).
    Env(env::EnvProbe),
    /// Check the host's CPU count, memory and free disk.
    Host(host::HostProbe),
    /// Order round-trip latency under an open-model load.
    Latency(latency::LatencyProbe),
    /// Check for a signed, unexpired attestation of the item by an allowed signer.
    Attestation(attestation::AttestationProbe),
    /// Gate on a coverage report (LCOV, Cobertura, llvm-cov JSON, coverage.py, tarpaulin).
    Coverage(coverage::CoverageProbe),
    /// Gate on a security audit (cargo-audit, pip-audit, npm audit, SARIF).
    Audit(audit::AuditProbe),
    /// Availability of a soak monitor over a window, from the soak store.
    Uptime(uptime::UptimeProbe),
    /// Sample a process's resident memory and test it for a leak.
    Memory(memory::MemoryProbe),
}

impl Probe {
    /// The `kind` name as written in checklists.
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Command(_) => "command",
            Probe::Http(_) => "http",
            Probe::File(_) => "file",
            Probe::Env(_) => "env",
            Probe::Host(_) => "host",
            Probe::Latency(_) => "latency",
            Probe::Attestation(_) => "attestation",
            Probe::Coverage(_) => "coverage",
            Probe::Audit(_) => "audit",
            Probe::Uptime(_) => "uptime",
            Probe::Memory(_) => "memory",
        }
    }

    /// Run the probe once.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        match self {
            Probe::Command(p) => p.run(ctx).await,
            Probe::Http(p) => p.run(ctx).await,
            Probe::File(p) => p.run(ctx),
            Probe::Env(p) => p.run(ctx),
            Probe::Host(p) => p.run(ctx),
            Probe::Latency(p) => p.run(ctx).await,
            Probe::Attestation(p) => p.run(ctx),
            Probe::Coverage(p) => p.run(ctx).await,
            Probe::Audit(p) => p.run(ctx).await,
            Probe::Uptime(p) => {
                let (p, ctx) = (p.clone(), ctx.clone());
                tokio::task::spawn_blocking(move || p.run(&ctx))
                    .await
                    .unwrap_or_else(|e| ProbeOutput::error(format!("uptime probe panicked: {e}")))
            }
            Probe::Memory(p) => p.run(ctx).await,
        }
    }

    /// The id of the item this probe runs alongside (`during = "<item id>"`), if any.
    pub fn during(&self) -> Option<&str> {
        match self {
            Probe::Memory(p) => p.during(),
            _ => None,
        }
    }

    /// Run the probe while its `during` item runs: `until` is cancelled when that item
    /// finishes. Probes without `during` ignore `until`.
    pub async fn run_during(&self, ctx: &ProbeContext, until: &CancellationToken) -> ProbeOutput {
        match self {
            Probe::Memory(p) => p.run_until(ctx, Some(until)).await,
            other => other.run(ctx).await,
        }
    }
}

/// A configuration error inside one probe table: the key (relative to the probe table,
/// dotted, e.g. `headers.Authorization`) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted key path relative to the probe table; empty for the table itself.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl FieldError {
    /// An error at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Shared state for validating probe tables: collects interpolated secrets.
#[derive(Debug, Default)]
pub struct Validator {
    /// Secrets seen so far.
    pub redactor: Redactor,
}

impl Validator {
    /// Interpolate `${VAR}` in the value of `key`.
    ///
    /// # Errors
    /// A [`FieldError`] at `key` when a variable is unset.
    pub fn interpolate(
        &mut self,
        key: &str,
        text: &str,
    ) -> Result<crate::units::Interpolated, FieldError> {
        self.redactor
            .interpolate(text)
            .map_err(|m| FieldError::new(key, m))
    }

    /// Parse a humantime duration at `key`.
    ///
    /// # Errors
    /// A [`FieldError`] at `key` when malformed.
    pub fn duration(&self, key: &str, text: &str) -> Result<std::time::Duration, FieldError> {
        crate::units::parse_duration(text).map_err(|m| FieldError::new(key, m))
    }

    /// Parse a byte size at `key`.
    ///
    /// # Errors
    /// A [`FieldError`] at `key` when malformed.
    pub fn bytes(&self, key: &str, text: &str) -> Result<u64, FieldError> {
        crate::units::parse_bytes(text).map_err(|m| FieldError::new(key, m))
    }

    /// Compile a regular expression at `key`.
    ///
    /// # Errors
    /// A [`FieldError`] at `key` when the pattern does not compile.
    pub fn regex(&self, key: &str, pattern: &str) -> Result<regex::Regex, FieldError> {
        regex::Regex::new(pattern)
            .map_err(|e| FieldError::new(key, format!("invalid regular expression: {e}")))
    }
}

/// What the runner gives every probe.
#[derive(Debug, Clone)]
pub struct ProbeContext {
    /// The item's id (used to name evidence files).
    pub item_id: String,
    /// Folder of the checklist; relative paths in probes resolve against it.
    pub checklist_dir: PathBuf,
    /// Folder the report is written to; evidence goes to `evidence/<item-id>/` inside it.
    pub report_dir: PathBuf,
    /// Scrubs interpolated secrets from text.
    pub redactor: Arc<Redactor>,
    /// Cancelled on ctrl-c / SIGTERM; long probes stop early and report what they have.
    pub cancel: CancellationToken,
    /// PIDs of the checklist's running services, by name.
    pub services: Arc<BTreeMap<String, u32>>,
}

impl ProbeContext {
    /// Resolve a path from the checklist against the checklist's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.checklist_dir.join(path)
        }
    }

    /// Write an evidence file to `evidence/<item-id>/<name>` in the report folder and describe
    /// it with its SHA-256.
    ///
    /// # Errors
    /// A message when the file cannot be written.
    pub fn write_evidence(
        &self,
        name: &str,
        bytes: &[u8],
        label: &str,
        media_type: &str,
    ) -> Result<Evidence, String> {
        let rel = format!("evidence/{}/{}", self.item_id, name);
        let path = self.report_dir.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        std::fs::write(&path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(Evidence {
            label: label.to_string(),
            path: rel,
            sha256: hex::encode(Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
            media_type: media_type.to_string(),
        })
    }
}

/// Compare `measured` against an optional minimum and maximum; returns the expectation text and
/// whether it held. Used by probes that extract numbers.
pub fn compare_range(min: Option<f64>, max: Option<f64>, measured: f64) -> (String, bool) {
    let mut parts = Vec::new();
    let mut ok = measured.is_finite();
    if let Some(lo) = min {
        parts.push(format!("≥ {lo}"));
        ok &= measured >= lo;
    }
    if let Some(hi) = max {
        parts.push(format!("≤ {hi}"));
        ok &= measured <= hi;
    }
    (parts.join(" and "), ok)
}
