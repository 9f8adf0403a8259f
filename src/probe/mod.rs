//! Probes: the automated measurements behind checklist items (ARCHITECTURE.md, "Code Map").
//!
//! Each kind lives in its own module and implements [`ProbeKind`]: its raw (serde)
//! configuration, one validation into a typed value, and an async `run` that returns a
//! [`ProbeOutput`]. The one list of kinds is the registry at the end of this file's types,
//! which generates [`RawProbe`] (what the checklist deserializes into, and its JSON Schema) and
//! [`Probe`] (the validated set) with their dispatch. [`ProbeContext`] is what the runner hands
//! every probe (paths, evidence folder, redactor, cancellation).

pub mod attestation;
pub mod audit;
pub mod canary;
pub mod command;
pub mod config;
pub mod coverage;
pub mod drill;
pub mod env;
pub mod file;
pub mod host;
pub mod http;
pub mod latency;
pub mod log;
pub mod memory;
pub mod prometheus;
pub mod sql;
pub mod tcp;
pub mod tool;
pub mod uptime;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::model::{Evidence, ProbeOutput};
use crate::units::Redactor;

// Field errors and the validator live in the leaf `crate::field` (the checklist, the soak's
// monitors and the order client validate with them too); re-exported so probe code (and code
// elsewhere that names `crate::probe::Validator`) keeps compiling. A re-export, not an import:
// see ARCHITECTURE.md.
pub use crate::field::{FieldError, Validator, refuse_keys};
// The response rules moved to the leaf `crate::expect` (services test readiness with them);
// re-exported for code that names `crate::probe::expect`.
pub use crate::expect;

/// The contract every probe kind keeps: a raw serde table (which also gives the kind's part
/// of the checklist's JSON Schema), one validation into a typed value, and an async run.
///
/// A new kind is one module implementing this trait plus one line in the `registry!` list
/// below; the loader, the runner and the schema iterate over that list.
pub trait ProbeKind: std::fmt::Debug + Clone + Send + Sync + Sized + 'static {
    /// The `[item.probe]` table as written, with `deny_unknown_fields`.
    type Raw: serde::de::DeserializeOwned + schemars::JsonSchema;

    /// Validate the raw table once; nothing after this sees an unvalidated value.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key (relative to the probe table) and what was expected;
    /// the loader adds the file, line and column.
    fn validate(raw: Self::Raw, v: &mut Validator) -> Result<Self, FieldError>;

    /// Run once. `until` is cancelled when the item named by [`ProbeKind::during`] finishes;
    /// probes that do not sample over time ignore it. Blocking work goes through
    /// [`blocking`], so the item timeout can abandon it.
    fn run(
        &self,
        ctx: &ProbeContext,
        until: Option<&CancellationToken>,
    ) -> impl Future<Output = ProbeOutput> + Send;

    /// The id of the item this probe runs alongside (`during = "<item id>"`), if any.
    fn during(&self) -> Option<&str> {
        None
    }

    /// Whether items of this kind run alone: no other item runs while one of them does
    /// (drills break shared services on purpose).
    fn exclusive(&self) -> bool {
        false
    }

    /// The `[[service]]`, `[[sink]]` and `[[proxy]]` names this probe refers to, each with
    /// the key that names it (checked when the checklist loads).
    fn references(&self) -> Vec<Reference<'_>> {
        Vec::new()
    }

    /// How a probe ends when the run is interrupted or its attempt reaches its deadline.
    ///
    /// `None` (the default): the runner drops the probe's future at once and reports the
    /// timeout or the interruption itself. `Some(bound)`: the probe watches
    /// [`ProbeContext::cancel`] and [`ProbeContext::deadline`] itself, stops, cleans up (a
    /// drill restores what it broke), and returns its own output saying what it did; the
    /// runner waits for that up to `bound` after the interruption or the deadline, and drops
    /// the future only after that, or shortly after [`ProbeContext::abandon`].
    fn winds_down(&self) -> Option<std::time::Duration> {
        None
    }
}

/// What a name in a probe table refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// A `[[service]]`.
    Service,
    /// A `[[sink]]`.
    Sink,
    /// A `[[proxy]]`.
    Proxy,
    /// A `[[proxy]]` with `protocol = "http"` (an HTTP fault acts on it).
    HttpProxy,
}

impl RefKind {
    /// The table as written: `service`, `sink`, `proxy`.
    pub fn table(self) -> &'static str {
        match self {
            RefKind::Service => "service",
            RefKind::Sink => "sink",
            RefKind::Proxy | RefKind::HttpProxy => "proxy",
        }
    }
}

/// A name a probe refers to, with the key (relative to the probe table) that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference<'a> {
    /// Dotted key path relative to the probe table, e.g. `step[2].service`.
    pub key: String,
    /// What it names.
    pub kind: RefKind,
    /// The name.
    pub name: &'a str,
}

/// Run synchronous probe work (file system, `/proc`, SQLite, key parsing) on tokio's blocking
/// pool. The caller's future can then be dropped by the item timeout or by cancellation, and
/// the runner moves on instead of waiting for a stuck system call.
pub async fn blocking<P: ProbeKind>(
    probe: &P,
    ctx: &ProbeContext,
    work: fn(&P, &ProbeContext) -> ProbeOutput,
) -> ProbeOutput {
    let (p, c) = (probe.clone(), ctx.clone());
    tokio::task::spawn_blocking(move || work(&p, &c))
        .await
        .unwrap_or_else(|e| ProbeOutput::error(format!("the probe panicked: {e}")))
}

/// `impl ProbeKind` for a kind whose raw table has `validate(self, &mut Validator)` and whose
/// probe has an inherent `run(&self, &ProbeContext)`: `async` awaits it, `blocking` runs it on
/// the blocking pool ([`blocking`]), `inline` calls it (fast, non-blocking work only).
macro_rules! probe_kind {
    ($ty:ty, $raw:ty, $mode:ident) => {
        impl $crate::probe::ProbeKind for $ty {
            type Raw = $raw;

            fn validate(
                raw: $raw,
                v: &mut $crate::probe::Validator,
            ) -> Result<$ty, $crate::probe::FieldError> {
                raw.validate(v)
            }

            async fn run(
                &self,
                ctx: &$crate::probe::ProbeContext,
                _until: Option<&tokio_util::sync::CancellationToken>,
            ) -> $crate::model::ProbeOutput {
                $crate::probe::probe_kind!(@run $mode, $ty, self, ctx)
            }
        }
    };
    (@run async, $ty:ty, $p:ident, $ctx:ident) => {
        <$ty>::run($p, $ctx).await
    };
    (@run blocking, $ty:ty, $p:ident, $ctx:ident) => {
        $crate::probe::blocking($p, $ctx, <$ty>::run).await
    };
    (@run inline, $ty:ty, $p:ident, $ctx:ident) => {
        <$ty>::run($p, $ctx)
    };
}
pub(crate) use probe_kind;

/// The registry: one line per probe kind, `"kind" => Variant(Type)`. It generates the raw
/// tagged enum the checklist deserializes into ([`RawProbe`]), the validated enum
/// ([`Probe`]) and the dispatch between them; nothing else matches over kinds.
macro_rules! registry {
    ($($(#[$doc:meta])* $name:literal => $variant:ident($ty:ty),)*) => {
        /// `[item.probe]`, tagged by `kind`.
        #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
        #[serde(tag = "kind")]
        pub enum RawProbe {
            $($(#[$doc])* #[serde(rename = $name)] $variant(Box<<$ty as ProbeKind>::Raw>),)*
        }

        /// A validated probe, ready to run.
        #[derive(Debug, Clone)]
        pub enum Probe {
            $($(#[$doc])* $variant($ty),)*
        }

        impl RawProbe {
            /// The `[item.probe]` table as written, typed by its `kind`: like the derived
            /// `Deserialize`, but an error keeps its key path inside the table (see
            /// [`crate::field::deserialize_table`]).
            ///
            /// # Errors
            /// A [`FieldError`] with serde's message: no `kind`, an unknown one, or the
            /// kind's table rejecting a key or a value.
            pub fn from_table(mut table: toml::Table) -> Result<RawProbe, FieldError> {
                let kind = crate::field::take_kind(&mut table, &[$($name),*])?;
                match kind.as_str() {
                    $($name => crate::field::deserialize_table(table)
                        .map(|raw| RawProbe::$variant(Box::new(raw))),)*
                    other => Err(FieldError::new("kind", format!("unknown kind `{other}`"))),
                }
            }

            /// Validate with the kind's [`ProbeKind::validate`].
            ///
            /// # Errors
            /// The kind's [`FieldError`].
            pub fn validate(self, v: &mut Validator) -> Result<Probe, FieldError> {
                match self {
                    $(RawProbe::$variant(raw) => {
                        <$ty as ProbeKind>::validate(*raw, v).map(Probe::$variant)
                    })*
                }
            }
        }

        impl Probe {
            /// The `kind` name as written in checklists.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Probe::$variant(_) => $name,)*
                }
            }

            /// Run once; `until` as in [`ProbeKind::run`].
            pub async fn run(
                &self,
                ctx: &ProbeContext,
                until: Option<&CancellationToken>,
            ) -> ProbeOutput {
                match self {
                    $(Probe::$variant(p) => ProbeKind::run(p, ctx, until).await,)*
                }
            }

            /// The id of the item this probe runs alongside, if any.
            pub fn during(&self) -> Option<&str> {
                match self {
                    $(Probe::$variant(p) => ProbeKind::during(p),)*
                }
            }

            /// Whether it runs alone ([`ProbeKind::exclusive`]).
            pub fn exclusive(&self) -> bool {
                match self {
                    $(Probe::$variant(p) => ProbeKind::exclusive(p),)*
                }
            }

            /// The names this probe refers to ([`ProbeKind::references`]).
            pub fn references(&self) -> Vec<Reference<'_>> {
                match self {
                    $(Probe::$variant(p) => ProbeKind::references(p),)*
                }
            }

            /// Whether and how long it winds down on its own ([`ProbeKind::winds_down`]).
            pub fn winds_down(&self) -> Option<std::time::Duration> {
                match self {
                    $(Probe::$variant(p) => ProbeKind::winds_down(p),)*
                }
            }
        }
    };
}

registry! {
    /// Run a command.
    "command" => Command(command::CommandProbe),
    /// Request a URL.
    "http" => Http(http::HttpProbe),
    /// Check a file.
    "file" => File(file::FileProbe),
    /// Check environment variables.
    "env" => Env(env::EnvProbe),
    /// Check the host.
    "host" => Host(host::HostProbe),
    /// Order round-trip latency under an open-model load.
    "latency" => Latency(latency::LatencyProbe),
    /// Sample a process's resident memory and test it for a leak.
    "memory" => Memory(memory::MemoryProbe),
    /// Availability over a window from the soak store.
    "uptime" => Uptime(uptime::UptimeProbe),
    /// Test coverage from a coverage report.
    "coverage" => Coverage(coverage::CoverageProbe),
    /// Security audit from a vulnerability scanner's report.
    "audit" => Audit(audit::AuditProbe),
    /// A signed, unexpired human statement.
    "attestation" => Attestation(attestation::AttestationProbe),
    /// Rows of a read-only query against a SQLite file or a PostgreSQL server.
    "sql" => Sql(sql::SqlProbe),
    /// A failure drill: actions and expectations with measured times.
    "drill" => Drill(drill::DrillProbe),
    /// A PromQL query or alerting rules on a Prometheus server.
    "prometheus" => Prometheus(prometheus::PrometheusProbe),
    /// A canary judged against its baseline from Prometheus range queries.
    "canary" => Canary(canary::CanaryProbe),
    /// Count pattern matches and look for credentials in log lines.
    "log" => Log(log::LogProbe),
    /// Values in a TOML, YAML or JSON file, by JSON Pointer.
    "config" => Config(config::ConfigProbe),
    /// A port open or closed, and the host's listening ports inside an allowlist.
    "tcp" => Tcp(tcp::TcpProbe),
}

/// Tasks that must finish before the run stops its services. A probe's future can be dropped
/// (item timeout, interruption), so cleanup that must happen runs as a task here instead.
#[derive(Debug, Clone, Default)]
pub struct Background {
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Background {
    /// Run `work` as a task the runner waits for before stopping services.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(work);
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }

    /// Wait for every task spawned so far (and any they spawn meanwhile).
    pub async fn wait(&self) {
        loop {
            let pending: Vec<_> =
                std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
            if pending.is_empty() {
                return;
            }
            for h in pending {
                let _ = h.await;
            }
        }
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
    /// Cancelled on a second ctrl-c / SIGTERM: cleanup still running after the first one (a
    /// drill's restore) gives up at once and reports what it did not do.
    pub abandon: CancellationToken,
    /// When the current attempt's item timeout expires (its start plus the item's timeout);
    /// `None` outside `prodready run`. Only probes that wind down on their own
    /// ([`ProbeKind::winds_down`]) look at it; the runner drops the others at that moment.
    pub deadline: Option<std::time::Instant>,
    /// The run's `[[service]]`s: their PIDs for probes that watch them, and stop, start and
    /// signal for drills.
    pub services: Arc<crate::service::ServiceSet>,
    /// The run's `[[proxy]]`s, by name.
    pub proxies: Arc<std::collections::BTreeMap<String, crate::fault_proxy::FaultProxy>>,
    /// The run's `[[sink]]`s, by name.
    pub sinks: Arc<std::collections::BTreeMap<String, crate::sink::Sink>>,
    /// Work that must finish before the run stops its services, such as a drill restoring
    /// what it broke after its item timed out.
    pub background: Background,
    /// The day the run judges expiries on (UTC): attestations here, waivers in the runner,
    /// one injected value for both.
    pub today: jiff::civil::Date,
}

impl ProbeContext {
    /// A context for a probe run outside `prodready run` (the soak's checks, unit tests): no
    /// services, proxies or sinks, no deadline, and today's date in UTC.
    pub fn outside_run(
        item_id: &str,
        checklist_dir: PathBuf,
        report_dir: PathBuf,
        redactor: Arc<Redactor>,
        cancel: CancellationToken,
    ) -> ProbeContext {
        ProbeContext {
            item_id: item_id.to_string(),
            checklist_dir,
            report_dir,
            redactor,
            cancel,
            abandon: CancellationToken::new(),
            deadline: None,
            services: Arc::default(),
            proxies: Arc::default(),
            sinks: Arc::default(),
            background: Background::default(),
            today: crate::signoff::today_utc(),
        }
    }

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
        write_evidence(
            &self.report_dir,
            &self.item_id,
            name,
            bytes,
            label,
            media_type,
        )
    }
}

/// Write `bytes` to `evidence/<item>/<name>` in `report_dir` and describe the file as
/// evidence: `label`, its path relative to the report folder, SHA-256, size and `media_type`.
///
/// # Errors
/// A message naming the file when it cannot be written.
pub fn write_evidence(
    report_dir: &std::path::Path,
    item: &str,
    name: &str,
    bytes: &[u8],
    label: &str,
    media_type: &str,
) -> Result<Evidence, String> {
    let rel = format!("evidence/{item}/{name}");
    let path = report_dir.join(&rel);
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
