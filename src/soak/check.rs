//! What one monitor checks: `http` and `command` reuse the probes of the same name, `tcp`
//! connects, and `order` places a synthetic order over HTTP or WebSocket (by default the paper
//! broker's, [`super::order`]) or FIX ([`super::fix_order`]) and counts operations and errors
//! for the error rate.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::field::{FieldError, Validator, deserialize_table, take_kind};
use crate::model::Status;
use crate::probe::{ProbeContext, command, http};
use crate::units::Redactor;

use super::order::{OrderCheck, RawOrderCheck};

/// `check = { kind = "http" | "tcp" | "command" | "order", … }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RawMonitorCheck {
    /// Request a URL; the same keys as the `http` probe (status, body, JSON pointer, latency).
    Http(http::RawHttpProbe),
    /// Connect over TCP.
    Tcp(RawTcpCheck),
    /// Run a command; the same keys as the `command` probe.
    Command(command::RawCommandProbe),
    /// Place a synthetic paper order and expect an acknowledgement.
    Order(Box<RawOrderCheck>),
}

/// `kind = "tcp"`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTcpCheck {
    /// `host:port`, e.g. `"127.0.0.1:5432"`.
    pub address: String,
}

/// A validated monitor check.
#[derive(Debug, Clone)]
pub enum MonitorCheck {
    /// HTTP request.
    Http(Box<http::HttpProbe>),
    /// TCP connect.
    Tcp(crate::units::HostPort),
    /// Command.
    Command(Box<command::CommandProbe>),
    /// Synthetic paper order.
    Order(Box<OrderCheck>),
    /// Synthetic order over FIX.
    FixOrder(Box<super::fix_order::FixOrderCheck>),
}

impl RawMonitorCheck {
    /// The `check` table as written, typed by its `kind`, so that an error inside it keeps its
    /// key path (see [`crate::field::take_kind`]).
    ///
    /// # Errors
    /// A [`FieldError`]: no `kind`, an unknown one, or the kind's table rejecting a key or value.
    pub fn from_table(mut table: toml::Table) -> Result<RawMonitorCheck, FieldError> {
        let kind = take_kind(&mut table, &["http", "tcp", "command", "order"])?;
        match kind.as_str() {
            "http" => deserialize_table(table).map(RawMonitorCheck::Http),
            "tcp" => deserialize_table(table).map(RawMonitorCheck::Tcp),
            "command" => deserialize_table(table).map(RawMonitorCheck::Command),
            "order" => deserialize_table(table).map(|o| RawMonitorCheck::Order(Box::new(o))),
            other => Err(FieldError::new("kind", format!("unknown kind `{other}`"))),
        }
    }

    /// Validate; `timeout` is the monitor's per-check timeout.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key relative to the check table.
    pub fn validate(
        self,
        v: &mut Validator,
        timeout: Duration,
    ) -> Result<MonitorCheck, FieldError> {
        Ok(match self {
            RawMonitorCheck::Http(p) => {
                if p.timeout.is_some() {
                    return Err(FieldError::new(
                        "timeout",
                        "set the monitor's timeout instead of the check's",
                    ));
                }
                MonitorCheck::Http(Box::new(p.validate(v)?.with_timeout(timeout)))
            }
            RawMonitorCheck::Command(p) => {
                if p.timeout.is_some() {
                    return Err(FieldError::new(
                        "timeout",
                        "set the monitor's timeout instead of the check's",
                    ));
                }
                MonitorCheck::Command(Box::new(p.validate(v)?.with_timeout(timeout)))
            }
            RawMonitorCheck::Tcp(t) => {
                let addr = v.interpolate("address", &t.address)?.value;
                MonitorCheck::Tcp(addr.parse().map_err(|m| FieldError::new("address", m))?)
            }
            RawMonitorCheck::Order(o) if o.transport.as_deref() == Some("fix") => {
                MonitorCheck::FixOrder(Box::new(o.validate_fix(v)?))
            }
            RawMonitorCheck::Order(o) => MonitorCheck::Order(Box::new((*o).validate(v)?)),
        })
    }
}

impl MonitorCheck {
    /// The kind name, as written in checklists.
    pub fn kind(&self) -> &'static str {
        match self {
            MonitorCheck::Http(_) => "http",
            MonitorCheck::Tcp(_) => "tcp",
            MonitorCheck::Command(_) => "command",
            MonitorCheck::Order(_) | MonitorCheck::FixOrder(_) => "order",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// Whether the check succeeded.
    pub ok: bool,
    /// How long it took.
    pub latency: Duration,
    /// The first error, redacted, when it failed.
    pub error: Option<String>,
    /// Operations attempted (order checks: orders placed plus cancels); 0 for other kinds.
    pub ops: u32,
    /// Operations that failed.
    pub op_errors: u32,
}

impl CheckResult {
    fn fail(latency: Duration, error: impl Into<String>, ops: u32, op_errors: u32) -> Self {
        CheckResult {
            ok: false,
            latency,
            error: Some(error.into()),
            ops,
            op_errors,
        }
    }
}

/// What a running monitor keeps between checks.
#[derive(Debug)]
pub struct Runner {
    check: MonitorCheck,
    timeout: Duration,
    ctx: ProbeContext,
    client: reqwest::Client,
    seq: AtomicU64,
}

impl Runner {
    /// Prepare `check`; `scratch` is a folder where command checks keep their last output.
    pub fn new(
        name: &str,
        check: MonitorCheck,
        timeout: Duration,
        scratch: PathBuf,
        redactor: Arc<Redactor>,
        cancel: CancellationToken,
    ) -> Runner {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        Runner {
            check,
            timeout,
            ctx: ProbeContext::outside_run(
                name,
                std::env::current_dir().unwrap_or_default(),
                scratch,
                redactor,
                cancel,
            ),
            client,
            seq: AtomicU64::new(0),
        }
    }

    /// Set the folder relative paths resolve against (the checklist's folder).
    pub fn with_checklist_dir(mut self, dir: PathBuf) -> Runner {
        self.ctx.checklist_dir = dir;
        self
    }

    /// Run the check once, bounded by the timeout.
    pub async fn run(&self) -> CheckResult {
        let started = Instant::now();
        let fut = self.run_inner();
        match tokio::time::timeout(self.timeout + Duration::from_millis(250), fut).await {
            Ok(r) => r,
            Err(_) => CheckResult::fail(
                started.elapsed(),
                format!(
                    "timed out after {}",
                    crate::units::format_duration(self.timeout)
                ),
                0,
                0,
            ),
        }
    }

    async fn run_inner(&self) -> CheckResult {
        let started = Instant::now();
        match &self.check {
            MonitorCheck::Http(p) => probe_result(p.run(&self.ctx).await, started),
            MonitorCheck::Command(p) => probe_result(p.run(&self.ctx).await, started),
            MonitorCheck::Tcp(addr) => {
                match tokio::time::timeout(self.timeout, addr.connect()).await {
                    Ok(Ok(_)) => CheckResult {
                        ok: true,
                        latency: started.elapsed(),
                        error: None,
                        ops: 0,
                        op_errors: 0,
                    },
                    Ok(Err(e)) => {
                        CheckResult::fail(started.elapsed(), format!("connect {addr}: {e}"), 0, 0)
                    }
                    Err(_) => CheckResult::fail(
                        started.elapsed(),
                        format!("connect {addr}: timed out"),
                        0,
                        0,
                    ),
                }
            }
            MonitorCheck::Order(o) => self.order(o, started).await,
            MonitorCheck::FixOrder(o) => {
                let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                match o.run(seq, self.timeout).await {
                    Ok(ops) => CheckResult {
                        ok: true,
                        latency: started.elapsed(),
                        error: None,
                        ops,
                        op_errors: 0,
                    },
                    Err((m, ops, failed)) => CheckResult::fail(
                        started.elapsed(),
                        self.ctx.redactor.redact(&m),
                        ops,
                        failed,
                    ),
                }
            }
        }
    }

    async fn order(&self, o: &OrderCheck, started: Instant) -> CheckResult {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (ops, r) = o
            .run(&self.client, &self.ctx.redactor, seq, self.timeout)
            .await;
        match r {
            Ok(()) => CheckResult {
                ok: true,
                latency: started.elapsed(),
                error: None,
                ops,
                op_errors: 0,
            },
            Err(m) => CheckResult::fail(started.elapsed(), m, ops, 1),
        }
    }
}

/// A probe's output as a check result: pass (or warn) is success; anything else is a failure
/// whose error names the failing checks.
fn probe_result(out: crate::model::ProbeOutput, started: Instant) -> CheckResult {
    let status = out.status();
    let latency = started.elapsed();
    if matches!(status, Status::Pass | Status::Warn) {
        return CheckResult {
            ok: true,
            latency,
            error: None,
            ops: 0,
            op_errors: 0,
        };
    }
    let failed: Vec<String> = out
        .checks
        .iter()
        .filter(|c| !c.passed && !c.advisory)
        .map(|c| {
            format!(
                "{} expected {}, measured {}",
                c.name, c.expected, c.measured
            )
        })
        .collect();
    let error = if failed.is_empty() {
        out.summary
    } else {
        format!("{}: {}", out.summary, failed.join("; "))
    };
    CheckResult::fail(latency, error, 0, 0)
}
