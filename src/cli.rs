//! The command line (clap derive): `run`, `report`, `schema`, `check`, `paper-broker`, `sign`,
//! `verify`, `attest`, `sign-waiver`, `soak`, `soak-status`, `latency merge`, `completions`,
//! `man`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::model::Severity;

/// Production-readiness validation for trading systems: run a TOML checklist of automated
/// probes and write readiness reports (Markdown, JSON, JUnit).
#[derive(Debug, Parser)]
#[command(name = "prodready", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a checklist and write report.json, report.md, report.html and junit.xml. Exit 0 ready, 1 not ready,
    /// 2 invalid checklist or arguments, 3 internal error.
    Run(RunArgs),
    /// Re-render a saved report.json as Markdown, HTML or JUnit XML.
    Report(ReportArgs),
    /// Print the JSON Schema of the checklist format, of report.json or of compare.json.
    Schema(SchemaArgs),
    /// Compare a report with a baseline report (e.g. the last release's): status changes,
    /// figures side by side, latency from both runs' histograms. Exit 0 no regression, 1 a
    /// regression or an inconclusive comparison, 2 invalid input.
    Compare(CompareArgs),
    /// Check a checklist without running it (exit 0 valid, 2 invalid).
    Check(CheckArgs),
    /// Run the built-in paper-trading venue (HTTP/JSON, and FIX with --fix-listen) until
    /// SIGTERM.
    PaperBroker(crate::paper_broker::PaperBrokerArgs),
    /// Sign a report.json for a sign-off role with an SSH key (SSHSIG, namespace "prodready"),
    /// or import a signature made with `ssh-keygen -Y sign`; re-renders report.md.
    Sign(SignArgs),
    /// Verify a signed report: body digest, every signature, required roles approved by
    /// allowed signers, nothing expired. Exit 0 all checks hold, 1 a check failed, 2 invalid
    /// input.
    Verify(VerifyArgs),
    /// Sign an attestation for a manual item and append it to an attestations file.
    Attest(AttestArgs),
    /// Sign a `[[waiver]]` of a checklist as its approver; writes the signature file.
    SignWaiver(SignWaiverArgs),
    /// Run the checklist's `[[monitor]]` entries until SIGTERM, recording every observation in a
    /// crash-safe SQLite store (the soak tracker; see docs/soak.md).
    Soak(SoakArgs),
    /// Print availability, coverage, error budget, burn rate and incidents from a soak store.
    SoakStatus(SoakStatusArgs),
    /// Serve the live status page of a soak store, read-only (/, /api/v1/status, /metrics),
    /// until ctrl-c.
    StatusPage(StatusPageArgs),
    /// Latency tools: merge the `.hlog` interval logs of several generators into one
    /// distribution.
    #[command(subcommand)]
    Latency(LatencyCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell) to standard output.
    Completions(CompletionsArgs),
    /// Print the manual page (roff, section 1) to standard output.
    Man,
}

/// `prodready completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `prodready latency …`.
#[derive(Debug, Subcommand)]
pub enum LatencyCommand {
    /// Merge `.hlog` interval logs (from latency items run on several generator hosts or
    /// processes against the same target) into one histogram and print its percentile
    /// distribution (`.hgrm`, milliseconds) with p50/p90/p99/p99.9/max and the total count.
    Merge(LatencyMergeArgs),
}

/// `prodready latency merge`.
#[derive(Debug, clap::Args)]
pub struct LatencyMergeArgs {
    /// The interval logs (`evidence/<item>/latency.hlog` of each run).
    #[arg(required = true, num_args = 1.., value_name = "HLOG")]
    pub logs: Vec<PathBuf>,
    /// Merge the uncorrected twin (`Tag=uncorrected`) instead of the corrected latency.
    #[arg(long)]
    pub uncorrected: bool,
    /// Write the `.hgrm` percentile distribution here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `prodready sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The report.json to sign (signed in place).
    pub report: PathBuf,
    /// The sign-off role signed for, e.g. "Technical lead" (required unless --statement).
    #[arg(long, required_unless_present_any = ["statement", "merge_from"])]
    pub role: Option<String>,
    /// OpenSSH private key (ed25519, RSA, ECDSA). Passphrase from $PRODREADY_KEY_PASSPHRASE or
    /// a prompt.
    #[arg(long, conflicts_with_all = ["statement", "print_statement"],
          required_unless_present_any = ["statement", "print_statement", "merge_from"])]
    pub key: Option<PathBuf>,
    /// The decision.
    #[arg(long, value_name = "approve|reject", default_value = "approve", value_parser = crate::signoff::Decision::parse)]
    pub decision: crate::signoff::Decision,
    /// Free text stored with (and covered by) the signature.
    #[arg(long, default_value = "")]
    pub comment: String,
    /// Principal as in allowed_signers. Default: the key's comment.
    #[arg(long)]
    pub signer: Option<String>,
    /// Print the statement to sign with `ssh-keygen -Y sign -n prodready` and exit
    /// (needs --role and --signer).
    #[arg(long, conflicts_with = "statement")]
    pub print_statement: bool,
    /// Import: the statement file signed with ssh-keygen (from --print-statement).
    #[arg(long, requires = "signature")]
    pub statement: Option<PathBuf>,
    /// Import: the armored signature ssh-keygen wrote (STATEMENT.sig).
    #[arg(long, requires = "statement")]
    pub signature: Option<PathBuf>,
    /// Merge: copy the signatures of this copy of the same report (signed elsewhere) into
    /// REPORT.
    #[arg(long, value_name = "OTHER_REPORT_JSON",
          conflicts_with_all = ["key", "statement", "print_statement", "role"])]
    pub merge_from: Option<PathBuf>,
    /// Sign (or merge signatures into) a partial report: one whose run was filtered with
    /// --only, --section or --tag, so its verdict covers only the items that ran. Without it
    /// such a report is refused (exit 2).
    #[arg(long)]
    pub allow_partial: bool,
}

/// `prodready verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The signed report.json.
    pub report: PathBuf,
    /// OpenSSH allowed_signers file; roles a key may sign for go in its comment as
    /// prodready-roles="Role A,Role B". Without it no signer is accepted.
    #[arg(long)]
    pub allowed_signers: Option<PathBuf>,
    /// Check expiry of attestations and waivers as of this day (YYYY-MM-DD, default today UTC).
    #[arg(long, value_name = "DATE")]
    pub on: Option<String>,
}

/// `prodready attest`.
#[derive(Debug, clap::Args)]
pub struct AttestArgs {
    /// The checklist item id attested.
    pub item: String,
    /// OpenSSH private key.
    #[arg(long)]
    pub key: PathBuf,
    /// Link (or path) to the evidence.
    #[arg(long)]
    pub evidence: String,
    /// Last day it holds: a date (2027-05-31) or a duration from today ("180d").
    #[arg(long)]
    pub expires: String,
    /// The attestations file to append to (TOML, or JSON by extension). Default: the `file`
    /// of the item's attestation probe when --checklist is given, else attestations.toml.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The checklist that holds the item (for the default file and statement).
    #[arg(long)]
    pub checklist: Option<PathBuf>,
    /// What is attested. Default: the item's title (with --checklist).
    #[arg(long)]
    pub statement: Option<String>,
    /// Principal as in allowed_signers. Default: the key's comment.
    #[arg(long)]
    pub signer: Option<String>,
}

/// `prodready sign-waiver`.
#[derive(Debug, clap::Args)]
pub struct SignWaiverArgs {
    /// The checklist TOML file with the `[[waiver]]`.
    pub checklist: PathBuf,
    /// The waived item id.
    pub item: String,
    /// OpenSSH private key of the approver.
    #[arg(long)]
    pub key: PathBuf,
    /// Principal as in allowed_signers. Default: the key's comment.
    #[arg(long)]
    pub signer: Option<String>,
    /// Where to write the signature, relative to the current directory.
    /// Default: `waivers/ITEM.sig` beside the checklist.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// `prodready run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The checklist TOML file.
    pub checklist: PathBuf,
    /// Report folder. Default: `reports/<checklist name>/<UTC timestamp>/`.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Items to run at once.
    #[arg(long, short, default_value_t = 4)]
    pub jobs: usize,
    /// Per-item timeout for every item, overriding the checklist (humantime, e.g. "2m").
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Run only this item (repeatable).
    #[arg(long, value_name = "ID")]
    pub only: Vec<String>,
    /// Run only items of this section (repeatable, case-insensitive).
    #[arg(long, value_name = "SECTION")]
    pub section: Vec<String>,
    /// Run only items with this tag (repeatable).
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Lowest severity whose fail/error/pending makes the run not ready.
    #[arg(long, value_name = "SEVERITY", default_value = "major", value_parser = Severity::parse)]
    pub fail_on: Severity,
    /// Do not append the summary to $GITHUB_STEP_SUMMARY even when it is set.
    #[arg(long)]
    pub no_step_summary: bool,
    /// Judge items with a `regression` table against this baseline report (a report folder
    /// or its report.json), overriding `[checklist] baseline`.
    #[arg(long, value_name = "PATH")]
    pub baseline: Option<PathBuf>,
    /// Accept a baseline of another checklist digest or system.
    #[arg(long)]
    pub allow_other_checklist: bool,
    /// OpenSSH allowed_signers file: a signed baseline is verified with it first, as
    /// `verify` does (without it, only that every signature covers the report's body).
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
}

/// Output formats of `prodready report`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Markdown (report.md).
    Md,
    /// JUnit XML.
    Junit,
    /// Pretty JSON, re-serialized (checks that it parses).
    Json,
    /// One self-contained HTML page (report.html); charts are inlined from the report's folder.
    Html,
}

/// `prodready report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A report.json written by `prodready run`.
    pub report: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Md)]
    pub format: Format,
    /// Write here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// With `--format html`: verify the signatures against this allowed_signers file (as
    /// `prodready verify` does, on today's date) and show the result on the page.
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
}

/// Which schema to print.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    /// The checklist TOML format.
    Checklist,
    /// report.json.
    Report,
    /// compare.json (`prodready compare`).
    Compare,
    /// The soak status page's JSON (`GET /api/v1/status`).
    Status,
}

/// `prodready schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Which schema.
    #[arg(value_enum)]
    pub kind: SchemaKind,
}

/// Output formats of `prodready compare` on standard output.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompareFormat {
    /// A table for people.
    Table,
    /// Markdown (compare.md).
    Md,
    /// JSON (compare.json).
    Json,
}

/// `prodready compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The baseline: a report folder or its report.json.
    pub baseline: PathBuf,
    /// The new report: a report folder or its report.json.
    pub new: PathBuf,
    /// Write compare.json, compare.md and the latency charts into this folder.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// What to print on standard output.
    #[arg(long, short, value_enum, default_value_t = CompareFormat::Table)]
    pub format: CompareFormat,
    /// Compare with a baseline of another checklist digest or system.
    #[arg(long)]
    pub allow_other_checklist: bool,
    /// OpenSSH allowed_signers file: a signed report is verified with it first, as `verify`
    /// does (without it, only that every signature covers the report's body).
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
    /// Significance level of the latency tests.
    #[arg(long, default_value_t = 0.01)]
    pub alpha: f64,
    /// Allowed latency shift (Hodges–Lehmann) in percent of the baseline median.
    #[arg(long, value_name = "PERCENT", default_value_t = 20.0)]
    pub latency_allowance: f64,
    /// Allowed rise of p99 in percent (p99.9 is shown, not judged).
    #[arg(long, value_name = "PERCENT", default_value_t = 50.0)]
    pub tail_allowance: f64,
    /// Allowed drop of line or branch coverage in percentage points.
    #[arg(long, value_name = "POINTS", default_value_t = 1.0)]
    pub coverage_allowance: f64,
    /// Allowed drop of availability in percentage points.
    #[arg(long, value_name = "POINTS", default_value_t = 0.05)]
    pub availability_allowance: f64,
}

/// `prodready check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The checklist TOML file.
    pub checklist: PathBuf,
}

/// `prodready soak`.
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// The checklist TOML file with `[[monitor]]` entries.
    #[arg(required_unless_present = "print_prometheus_rules")]
    pub checklist: Option<PathBuf>,
    /// The store (SQLite, created if missing; resumed after a restart).
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "print_prometheus_rules"
    )]
    pub state: Option<PathBuf>,
    /// Print Prometheus recording and multiwindow, multi-burn-rate alerting rules for this
    /// tracker's /metrics (YAML, for `rule_files`) and exit.
    #[arg(long, conflicts_with_all = ["checklist", "state", "listen"])]
    pub print_prometheus_rules: bool,
    /// With --print-prometheus-rules: the availability SLO in percent.
    #[arg(
        long,
        value_name = "PERCENT",
        default_value_t = 99.9,
        requires = "print_prometheus_rules"
    )]
    pub slo_target: f64,
    /// With --print-prometheus-rules: the SLO window (humantime, at least 3d).
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = crate::units::parse_duration, requires = "print_prometheus_rules")]
    pub slo_window: std::time::Duration,
    /// Serve the live status page (/), its JSON (/api/v1/status), /metrics (Prometheus) and
    /// /healthz here, e.g. 127.0.0.1:9464 (port 0: any free port; the first stdout line says
    /// `listening on ADDR`). Any address but a loopback one needs --auth.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Credentials for --listen: 'bearer:${VAR}' or 'basic:USER:${VAR}' (single-quoted: the
    /// secret is read from the environment, never from the command line).
    #[arg(long, value_name = "SPEC", requires = "listen")]
    pub auth: Option<String>,
    /// Add the signed duration in this file (`+1h`, `-30m`) to the wall clock, re-read on
    /// every reading: for clock-step drills and tests. Durations always use the monotonic clock.
    #[arg(long, value_name = "FILE", hide = true)]
    pub clock_offset_file: Option<PathBuf>,
    /// Delete raw samples older than this (humantime, at least "1d", e.g. "35d"). Per-minute
    /// rollups, incidents and events are kept, so availability over longer windows stays exact
    /// to the minute. Default: keep every sample.
    #[arg(long, value_name = "DURATION", value_parser = keep_samples)]
    pub keep_samples: Option<std::time::Duration>,
}

/// `prodready status-page`.
#[derive(Debug, clap::Args)]
pub struct StatusPageArgs {
    /// The store written by `prodready soak`.
    #[arg(long, value_name = "PATH")]
    pub state: PathBuf,
    /// Where to serve (port 0: any free port; the first stdout line says `listening on ADDR`).
    /// Any address but a loopback one needs --auth.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    pub listen: String,
    /// Credentials: 'bearer:${VAR}' or 'basic:USER:${VAR}' (single-quoted: the secret is read
    /// from the environment, never from the command line).
    #[arg(long, value_name = "SPEC")]
    pub auth: Option<String>,
    /// The availability window summarised (humantime).
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = crate::units::parse_duration)]
    pub window: std::time::Duration,
}

/// Output formats of `prodready soak-status`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusFormat {
    /// Tables for people.
    Text,
    /// JSON (one object per monitor).
    Json,
}

/// `prodready soak-status`.
#[derive(Debug, clap::Args)]
pub struct SoakStatusArgs {
    /// The store written by `prodready soak`.
    #[arg(long, value_name = "PATH")]
    pub state: PathBuf,
    /// The window to summarise (humantime).
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = crate::units::parse_duration)]
    pub window: std::time::Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
}

/// `--keep-samples`: a humantime duration of at least a day.
fn keep_samples(text: &str) -> Result<std::time::Duration, String> {
    let d = crate::units::parse_duration(text)?;
    if d < std::time::Duration::from_secs(86_400) {
        return Err("expected at least 1d".into());
    }
    Ok(d)
}
