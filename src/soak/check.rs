//! What one monitor checks: `http` and `command` reuse the probes of the same name, `tcp`
//! connects, and `order` places a synthetic paper order against the paper broker's HTTP API
//! (`POST /api/v1/orders`, optional `DELETE /api/v1/orders/{id}`), or over FIX with
//! `transport = "fix"` against any venue ([`super::fix_order`]), and counts operations and
//! errors for the error rate.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::model::Status;
use crate::probe::latency::fix_keys::none_given;
use crate::probe::{FieldError, ProbeContext, Validator, command, http};
use crate::units::{Interpolated, Redactor};

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
    Order(RawOrderCheck),
}

/// `kind = "tcp"`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTcpCheck {
    /// `host:port`, e.g. `"127.0.0.1:5432"`.
    pub address: String,
}

/// `kind = "order"`: a synthetic paper order.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOrderCheck {
    /// Base URL of the broker, e.g. `"http://127.0.0.1:18080"`; `${VAR}` is interpolated.
    /// With `transport = "fix"`: `fix+tcp://HOST:PORT` or `fix+tls://HOST:PORT`.
    pub url: String,
    /// `"http"` (default: the paper broker's JSON API) or `"fix"`: one FIX 4.2 / 4.4 session
    /// per check (Logon, NewOrderSingle from `place`, optional OrderCancelRequest, Logout).
    pub transport: Option<String>,
    /// FIX: `"4.4"` (default) or `"4.2"`.
    pub fix_version: Option<String>,
    /// FIX: our SenderCompID(49). Required with `transport = "fix"`.
    pub sender_comp_id: Option<String>,
    /// FIX: the venue's CompID, our TargetCompID(56). Required with `transport = "fix"`.
    pub target_comp_id: Option<String>,
    /// FIX: HeartBtInt(108), whole seconds (humantime). Default `"30s"`.
    pub heartbeat: Option<String>,
    /// FIX: ResetSeqNumFlag(141)=Y on Logon. Default true.
    pub reset_seq_num: Option<bool>,
    /// FIX: Username(553); use `${VAR}` (redacted).
    pub username: Option<String>,
    /// FIX: Password(554); use `${VAR}` (redacted).
    pub password: Option<String>,
    /// FIX: the NewOrderSingle (35=D) fields, `tag=value` separated by `|`, with the latency
    /// probe's placeholders; ClOrdID(11) must hold one (`{{uuid}}` keeps it unique across
    /// restarts), e.g. `"11=soak-{{uuid}}|55=NIFTY|54=1|38=1|40=2|44=1"`.
    pub place: Option<String>,
    /// FIX: OrdStatus(39) values of the first ExecutionReport counted as an acknowledgement.
    /// Default `["0", "1", "2"]` (New, PartiallyFilled, Filled).
    pub ack_ord_status: Option<Vec<String>>,
    /// API key sent as `Authorization: Bearer …`; use `${VAR}` (redacted in output).
    pub api_key: Option<String>,
    /// Instrument. Default `"NIFTY"`.
    pub symbol: Option<String>,
    /// `"buy"` (default) or `"sell"`.
    pub side: Option<String>,
    /// Quantity. Default 1.
    pub qty: Option<u64>,
    /// `"market"` (default) or `"limit"`.
    #[serde(rename = "type")]
    pub order_type: Option<String>,
    /// Limit price; required with `type = "limit"`.
    pub limit_price: Option<f64>,
    /// Cancel the order after an `accepted` acknowledgement (a second operation). Default false.
    #[serde(default)]
    pub cancel: bool,
    /// Acknowledgement statuses counted as success. Default `["accepted", "filled"]`.
    pub accept: Option<Vec<String>>,
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

/// A validated `order` check.
#[derive(Debug, Clone)]
pub struct OrderCheck {
    base: Interpolated,
    api_key: Option<Interpolated>,
    symbol: String,
    side: String,
    qty: u64,
    order_type: String,
    limit_price: Option<f64>,
    cancel: bool,
    accept: Vec<String>,
}

impl RawMonitorCheck {
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
                o.only_fix_keys()?;
                MonitorCheck::FixOrder(Box::new(
                    super::fix_order::RawFixOrder {
                        url: &o.url,
                        session: crate::probe::latency::fix_keys::SessionKeys {
                            fix_version: o.fix_version.as_deref(),
                            sender_comp_id: o.sender_comp_id.as_deref(),
                            target_comp_id: o.target_comp_id.as_deref(),
                            heartbeat: o.heartbeat.as_deref(),
                            reset_seq_num: o.reset_seq_num,
                            username: o.username.as_deref(),
                            password: o.password.as_deref(),
                        },
                        place: o.place.as_deref(),
                        ack_ord_status: o.ack_ord_status.as_deref(),
                        cancel: o.cancel,
                    }
                    .validate(v)?,
                ))
            }
            RawMonitorCheck::Order(o) => {
                o.only_http_keys()?;
                let base = v.interpolate("url", o.url.trim_end_matches('/'))?;
                let parsed = reqwest::Url::parse(&base.value)
                    .map_err(|e| FieldError::new("url", format!("invalid URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(FieldError::new(
                        "url",
                        "expected an http:// or https:// URL",
                    ));
                }
                let api_key = o
                    .api_key
                    .as_deref()
                    .map(|k| v.interpolate("api_key", k))
                    .transpose()?;
                let side = o.side.unwrap_or_else(|| "buy".into());
                if !matches!(side.as_str(), "buy" | "sell") {
                    return Err(FieldError::new("side", "expected \"buy\" or \"sell\""));
                }
                let order_type = o.order_type.unwrap_or_else(|| "market".into());
                match (order_type.as_str(), o.limit_price) {
                    ("market", None) => {}
                    ("market", Some(_)) => {
                        return Err(FieldError::new(
                            "limit_price",
                            "a market order takes no limit_price",
                        ));
                    }
                    ("limit", Some(p)) if p > 0.0 && p.is_finite() => {}
                    ("limit", _) => {
                        return Err(FieldError::new(
                            "limit_price",
                            "a limit order needs a positive limit_price",
                        ));
                    }
                    _ => return Err(FieldError::new("type", "expected \"market\" or \"limit\"")),
                }
                let qty = o.qty.unwrap_or(1);
                if qty == 0 {
                    return Err(FieldError::new("qty", "expected at least 1"));
                }
                MonitorCheck::Order(Box::new(OrderCheck {
                    base,
                    api_key,
                    symbol: o.symbol.unwrap_or_else(|| "NIFTY".into()),
                    side,
                    qty,
                    order_type,
                    limit_price: o.limit_price,
                    cancel: o.cancel,
                    accept: o
                        .accept
                        .unwrap_or_else(|| vec!["accepted".into(), "filled".into()]),
                }))
            }
        })
    }
}

impl RawOrderCheck {
    /// With `transport = "fix"`, none of the HTTP order's keys.
    fn only_fix_keys(&self) -> Result<(), FieldError> {
        let http = [
            ("api_key", self.api_key.is_some()),
            ("symbol", self.symbol.is_some()),
            ("side", self.side.is_some()),
            ("qty", self.qty.is_some()),
            ("type", self.order_type.is_some()),
            ("limit_price", self.limit_price.is_some()),
            ("accept", self.accept.is_some()),
        ];
        none_given(&http, |key| {
            format!("`{key}` applies only to HTTP orders; over FIX the order is `place`")
        })
    }

    /// Without `transport` (or with `"http"`), none of the FIX keys.
    fn only_http_keys(&self) -> Result<(), FieldError> {
        if let Some(t) = self.transport.as_deref().filter(|t| *t != "http") {
            return Err(FieldError::new(
                "transport",
                format!("expected \"http\" or \"fix\", found \"{t}\""),
            ));
        }
        let fix = [
            ("fix_version", self.fix_version.is_some()),
            ("sender_comp_id", self.sender_comp_id.is_some()),
            ("target_comp_id", self.target_comp_id.is_some()),
            ("heartbeat", self.heartbeat.is_some()),
            ("reset_seq_num", self.reset_seq_num.is_some()),
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
            ("place", self.place.is_some()),
            ("ack_ord_status", self.ack_ord_status.is_some()),
        ];
        none_given(&fix, |key| {
            format!("`{key}` applies only to transport = \"fix\"")
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
    name: String,
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
            ctx: ProbeContext {
                item_id: name.to_string(),
                checklist_dir: std::env::current_dir().unwrap_or_default(),
                report_dir: scratch,
                redactor,
                cancel,
                services: Arc::default(),
                proxies: Arc::default(),
                sinks: Arc::default(),
                background: crate::probe::Background::default(),
                today: crate::signoff::today_utc(),
            },
            client,
            seq: AtomicU64::new(0),
            name: name.to_string(),
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
        let ok = |ops| CheckResult {
            ok: true,
            latency: started.elapsed(),
            error: None,
            ops,
            op_errors: 0,
        };
        let (ack, shown) = match self.place_order(o).await {
            Ok(placed) => placed,
            Err(m) => return CheckResult::fail(started.elapsed(), m, 1, 1),
        };
        let ack_status = ack.get("status").and_then(|s| s.as_str()).unwrap_or("");
        if !(o.cancel && ack_status == "accepted") {
            return ok(1);
        }
        let Some(id) = ack.get("order_id").and_then(|s| {
            s.as_str()
                .map(str::to_string)
                .or_else(|| Some(s.to_string()))
        }) else {
            return CheckResult::fail(
                started.elapsed(),
                format!("{shown}: acknowledgement has no order_id"),
                1,
                1,
            );
        };
        match self.cancel_order(o, &id).await {
            Ok(()) => ok(2),
            Err(m) => CheckResult::fail(started.elapsed(), m, 2, 1),
        }
    }

    /// Place one order and check its acknowledgement: HTTP success, JSON, a status in
    /// `accept`, and the echoed `client_order_id`. Returns the acknowledgement and the request
    /// as shown (`POST <base>/api/v1/orders`), or why it failed (redacted).
    async fn place_order(&self, o: &OrderCheck) -> Result<(serde_json::Value, String), String> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let client_order_id = format!(
            "soak-{}-{}-{}-{seq}",
            self.name,
            std::process::id(),
            jiff::Timestamp::now().as_millisecond()
        );
        let mut body = serde_json::json!({
            "symbol": o.symbol,
            "side": o.side,
            "qty": o.qty,
            "type": o.order_type,
            "client_order_id": client_order_id,
        });
        if let Some(p) = o.limit_price {
            body["limit_price"] = serde_json::json!(p);
        }
        let url = format!("{}/api/v1/orders", o.base.value);
        let shown = format!("POST {}/api/v1/orders", o.base.display);
        let mut req = self.client.post(&url).json(&body);
        if let Some(k) = &o.api_key {
            req = req.bearer_auth(&k.value);
        }
        let redact = |s: String| self.ctx.redactor.redact(&s);
        let resp = req
            .send()
            .await
            .map_err(|e| redact(format!("{shown}: {e}")))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let snippet: String = text.chars().take(200).collect();
            return Err(redact(format!("{shown} → {status}: {snippet}")));
        }
        let ack: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{shown}: acknowledgement is not JSON: {e}"))?;
        let ack_status = ack.get("status").and_then(|s| s.as_str()).unwrap_or("");
        if !o.accept.iter().any(|a| a == ack_status) {
            let reason = ack.get("reason").and_then(|s| s.as_str()).unwrap_or("");
            return Err(format!(
                "{shown}: order {ack_status:?} (expected one of {:?}) {reason}",
                o.accept
            ));
        }
        if ack.get("client_order_id").and_then(|s| s.as_str()) != Some(client_order_id.as_str()) {
            return Err(format!(
                "{shown}: acknowledgement does not echo client_order_id {client_order_id}"
            ));
        }
        Ok((ack, shown))
    }

    /// Cancel the resting order `id`; why it failed otherwise (redacted).
    async fn cancel_order(&self, o: &OrderCheck, id: &str) -> Result<(), String> {
        let curl = format!("{}/api/v1/orders/{id}", o.base.value);
        let mut del = self.client.delete(&curl);
        if let Some(k) = &o.api_key {
            del = del.bearer_auth(&k.value);
        }
        match del.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!(
                "DELETE {}/api/v1/orders/{id} → {}",
                o.base.display,
                r.status()
            )),
            Err(e) => Err(self.ctx.redactor.redact(&format!(
                "DELETE {}/api/v1/orders/{id}: {e}",
                o.base.display
            ))),
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
