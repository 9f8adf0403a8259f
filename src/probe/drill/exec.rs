//! Running a drill: steps in order, each expectation polled until it holds (and keeps holding
//! for `hold`) or its deadline passes, times measured from the last action, and the restore
//! of everything the drill broke.
//!
//! The steps run in a task registered with the run's [`crate::probe::Background`], not in the
//! probe's own future: when the item times out or the run is interrupted, that future is
//! dropped, the task stops stepping and restores, and the runner waits for it before it stops
//! the services.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::DrillProbe;
use super::step::{Action, Expectation, Observe, Since, Step, StepKind};
use crate::model::{Check, ProbeOutput, Table};
use crate::probe::ProbeContext;
use crate::units::{Interpolated, format_duration};

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepOutcome {
    /// An action that completed.
    Done,
    /// An expectation that held.
    Held,
    /// An expectation that did not hold, or an action that failed.
    Failed,
    /// Skipped: it needs a step that did not succeed.
    NotRun,
}

impl StepOutcome {
    fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::Held => "held",
            StepOutcome::Failed => "FAILED",
            StepOutcome::NotRun => "not run",
        }
    }
}

/// One step's record.
#[derive(Debug, Clone)]
struct StepRecord {
    name: String,
    kind: String,
    result: StepOutcome,
    /// Expectations: from the last action until it held; actions: how long they took.
    measured: Option<Duration>,
    within: Option<Duration>,
    hold: Option<Duration>,
    detail: String,
}

/// The point times are measured from: the start of the last action other than `wait`, with
/// the services' output offsets at that moment.
#[derive(Debug, Clone)]
struct Mark {
    at: Instant,
    offsets: BTreeMap<String, u64>,
}

/// What the drill broke, to restore at the end.
#[derive(Debug, Default)]
struct Broken {
    services: BTreeSet<String>,
    proxies: BTreeSet<String>,
    brokers: Vec<(Interpolated, Option<Interpolated>)>,
}

/// A drill in progress.
struct Drill {
    ctx: ProbeContext,
    client: reqwest::Client,
    start: Mark,
    start_pids: BTreeMap<String, Option<u32>>,
    start_counts: BTreeMap<String, u32>,
    mark: Mutex<Mark>,
    records: Mutex<Vec<StepRecord>>,
    broken: Mutex<Broken>,
    saved: Mutex<BTreeMap<String, Value>>,
}

/// What the observation of an expectation saw.
struct Seen {
    ok: bool,
    text: String,
    value: Value,
}

impl Seen {
    fn no(text: impl Into<String>) -> Seen {
        Seen {
            ok: false,
            text: text.into(),
            value: Value::Null,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run the drill (see the module docs) and build its output.
pub(super) async fn run(drill: DrillProbe, ctx: &ProbeContext) -> ProbeOutput {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let abort = CancellationToken::new();
    let _abort_on_drop = abort.clone().drop_guard();
    let c = ctx.clone();
    ctx.background.spawn(async move {
        let d = std::sync::Arc::new(Drill::new(c.clone()));
        let interrupted = tokio::select! {
            _ = d.execute(drill.steps()) => None,
            _ = abort.cancelled() => Some("the item was abandoned (timeout)"),
            _ = c.cancel.cancelled() => Some("the run was interrupted"),
        };
        let restored = d.restore().await;
        let out = d.output(drill.steps(), &restored, interrupted);
        let _ = tx.send(out);
    });
    rx.await
        .unwrap_or_else(|_| ProbeOutput::error("the drill task ended without a result"))
}

impl Drill {
    fn new(ctx: ProbeContext) -> Drill {
        let start = mark_of(&ctx.services);
        let start_pids = ctx
            .services
            .names()
            .into_iter()
            .map(|n| {
                let pid = ctx.services.pid(&n);
                (n, pid)
            })
            .collect();
        let start_counts = ctx
            .services
            .names()
            .into_iter()
            .map(|n| {
                let c = ctx.services.starts(&n);
                (n, c)
            })
            .collect();
        Drill {
            start_counts,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            start_pids,
            mark: Mutex::new(start.clone()),
            records: Mutex::new(Vec::new()),
            broken: Mutex::new(Broken::default()),
            saved: Mutex::new(BTreeMap::new()),
            start,
            ctx,
        }
    }

    fn record(&self, r: StepRecord) {
        lock(&self.records).push(r);
    }

    async fn execute(&self, steps: &[Step]) {
        let mut succeeded = BTreeSet::new();
        let mut saved_by = BTreeMap::new();
        for step in steps {
            let kind = match &step.kind {
                StepKind::Action(_) => "action".to_string(),
                StepKind::Expect(e) => format!("expect {}", e.observe.kind()),
            };
            let missing = step
                .needs
                .iter()
                .find(|n| !succeeded.contains(*n))
                .cloned()
                .or_else(|| {
                    let StepKind::Expect(e) = &step.kind else {
                        return None;
                    };
                    let name = e.equals_saved.as_ref()?;
                    (!lock(&self.saved).contains_key(name))
                        .then(|| saved_by.get(name).cloned().unwrap_or_else(|| name.clone()))
                });
            if let Some(m) = missing {
                self.record(StepRecord {
                    name: step.name.clone(),
                    kind,
                    result: StepOutcome::NotRun,
                    measured: None,
                    within: None,
                    hold: None,
                    detail: format!("needs \"{m}\", which did not succeed"),
                });
                continue;
            }
            let ok = match &step.kind {
                StepKind::Action(a) => self.act(step, kind, a).await,
                StepKind::Expect(e) => {
                    if let Some(s) = &e.save {
                        saved_by.insert(s.clone(), step.name.clone());
                    }
                    self.expect(step, kind, e).await
                }
            };
            if ok {
                succeeded.insert(step.name.clone());
            }
        }
    }

    async fn act(&self, step: &Step, kind: String, action: &Action) -> bool {
        let began = Instant::now();
        if !matches!(action, Action::Wait(_)) {
            *lock(&self.mark) = mark_of(&self.ctx.services);
        }
        let outcome = self.perform(action).await;
        let ok = outcome.is_ok();
        self.record(StepRecord {
            name: step.name.clone(),
            kind,
            result: if ok {
                StepOutcome::Done
            } else {
                StepOutcome::Failed
            },
            measured: Some(began.elapsed()),
            within: None,
            hold: None,
            detail: self.ctx.redactor.redact(&outcome.unwrap_or_else(|e| e)),
        });
        ok
    }

    /// Do one action; `Ok` and `Err` both carry what happened, in one line.
    async fn perform(&self, action: &Action) -> Result<String, String> {
        let services = &self.ctx.services;
        match action {
            Action::Stop { service, grace } => {
                lock(&self.broken).services.insert(service.clone());
                let e = services
                    .stop(service, *grace)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "stopped: {} after {}",
                    e.describe(),
                    format_duration(e.took)
                ))
            }
            Action::Start { service } => {
                let t = services
                    .start(service, &self.ctx.cancel)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!("ready after {}", format_duration(t)))
            }
            Action::Restart { service, grace } => {
                lock(&self.broken).services.insert(service.clone());
                let e = services
                    .stop(service, *grace)
                    .await
                    .map_err(|e| e.to_string())?;
                let t = services
                    .start(service, &self.ctx.cancel)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "stopped ({}), ready again after {}",
                    e.describe(),
                    format_duration(t)
                ))
            }
            Action::Signal {
                service,
                signal,
                pause,
            } => self.signal(service, *signal, *pause).await,
            Action::Command(run) => match run.run(&self.ctx).await {
                Ok(out) if out.exit_code == Some(0) => {
                    Ok(format!("exit 0 after {}", format_duration(out.elapsed)))
                }
                Ok(out) => Err(format!(
                    "`{}` exited with {}: {}",
                    run.display(),
                    out.exit_code
                        .map_or("a signal".to_string(), |c| c.to_string()),
                    crate::process::last_lines(&out.log_tail, 5)
                )),
                Err(e) => Err(e.to_string()),
            },
            Action::Proxy { proxy, fault } => self.proxy(proxy, fault.clone()).await,
            Action::BrokerFault {
                broker,
                api_key,
                body,
            } => {
                self.broker_fault(broker, api_key.as_ref(), body.as_ref())
                    .await
            }
            Action::Wait(d) => {
                tokio::time::sleep(*d).await;
                Ok(format!("waited {}", format_duration(*d)))
            }
        }
    }

    async fn signal(
        &self,
        service: &str,
        signal: nix::sys::signal::Signal,
        pause: Option<Duration>,
    ) -> Result<String, String> {
        lock(&self.broken).services.insert(service.to_string());
        self.ctx
            .services
            .signal(service, signal)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(p) = pause {
            let services = self.ctx.services.clone();
            let name = service.to_string();
            self.ctx.background.spawn(async move {
                tokio::time::sleep(p).await;
                let _ = services
                    .signal(&name, nix::sys::signal::Signal::SIGCONT)
                    .await;
            });
            return Ok(format!(
                "sent {}; SIGCONT in {}",
                signal.as_str(),
                format_duration(p)
            ));
        }
        Ok(format!("sent {}", signal.as_str()))
    }

    async fn proxy(
        &self,
        name: &str,
        fault: Option<crate::fault_proxy::Fault>,
    ) -> Result<String, String> {
        let proxy = self
            .ctx
            .proxies
            .get(name)
            .ok_or_else(|| format!("proxy \"{name}\" is not running"))?;
        match fault {
            Some(f) => {
                lock(&self.broken).proxies.insert(name.to_string());
                let shown = f.to_string();
                proxy.apply(f).await.map_err(|e| e.to_string())?;
                Ok(format!("{name}: {shown}"))
            }
            None => {
                proxy.heal().await.map_err(|e| e.to_string())?;
                Ok(format!("{name}: healed"))
            }
        }
    }

    async fn broker_fault(
        &self,
        broker: &Interpolated,
        api_key: Option<&Interpolated>,
        body: Option<&Value>,
    ) -> Result<String, String> {
        let url = format!("{}/admin/faults", broker.value.trim_end_matches('/'));
        let mut req = match body {
            Some(b) => {
                lock(&self.broken)
                    .brokers
                    .push((broker.clone(), api_key.cloned()));
                self.client.post(&url).json(b)
            }
            None => self.client.delete(&url),
        };
        if let Some(k) = api_key {
            req = req.bearer_auth(&k.value);
        }
        let shown = format!("{}/admin/faults", broker.display.trim_end_matches('/'));
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{shown}: {}", crate::units::error_chain(&e)))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(format!("{shown}: {}", text.trim()))
        } else {
            Err(format!("{shown} answered {status}: {}", text.trim()))
        }
    }

    async fn expect(&self, step: &Step, kind: String, e: &Expectation) -> bool {
        let mark = lock(&self.mark).clone();
        let deadline = mark.at + e.within;
        let mut held_since: Option<Instant> = None;
        let (result, measured, detail) = loop {
            let seen = self.observe(&e.observe, &mark).await;
            let saved_ok = match &e.equals_saved {
                Some(name) => lock(&self.saved).get(name) == Some(&seen.value),
                None => true,
            };
            let ok = seen.ok && saved_ok;
            let text = if seen.ok && !saved_ok {
                let was = lock(&self.saved)
                    .get(e.equals_saved.as_deref().unwrap_or(""))
                    .cloned();
                format!("{} (saved: {})", seen.text, was.unwrap_or(Value::Null))
            } else {
                seen.text.clone()
            };
            let now = Instant::now();
            match (ok, held_since) {
                (true, None) => held_since = Some(now),
                (false, Some(first)) => {
                    break (
                        StepOutcome::Failed,
                        Some(first - mark.at),
                        format!("held for {}, then: {text}", format_duration(now - first)),
                    );
                }
                _ => {}
            }
            if let Some(first) = held_since
                && now - first >= e.hold.unwrap_or_default()
            {
                if let Some(name) = &e.save {
                    lock(&self.saved).insert(name.clone(), seen.value.clone());
                }
                break (StepOutcome::Held, Some(first - mark.at), text);
            }
            if held_since.is_none() && now >= deadline {
                break (
                    StepOutcome::Failed,
                    None,
                    format!(
                        "not within {}; last seen: {text}",
                        format_duration(e.within)
                    ),
                );
            }
            tokio::time::sleep(e.interval).await;
        };
        self.record(StepRecord {
            name: step.name.clone(),
            kind,
            result,
            measured,
            within: Some(e.within),
            hold: e.hold,
            detail: self.ctx.redactor.redact(&detail),
        });
        result == StepOutcome::Held
    }

    async fn observe(&self, o: &Observe, mark: &Mark) -> Seen {
        let from = |since: Since| match since {
            Since::Action => mark,
            Since::Drill => &self.start,
        };
        match o {
            Observe::Http {
                method,
                url,
                headers,
                expect,
            } => self.http(method, url, headers, expect).await,
            Observe::Exit { service, code } => match self.ctx.services.exit(service).await {
                Err(e) => Seen::no(e.to_string()),
                Ok(None) => Seen::no("still running"),
                Ok(Some(x)) => Seen {
                    ok: !x.killed && x.code() == Some(*code),
                    text: format!(
                        "{} ({} after SIGTERM)",
                        x.describe(),
                        format_duration(x.took)
                    ),
                    value: json!(x.code()),
                },
            },
            Observe::Sql { db, query, expect } => {
                let db = db.resolved(&self.ctx.checklist_dir);
                match crate::probe::sql::query(&db, query, Duration::from_secs(5)).await {
                    Err(e) => Seen::no(e.to_string()),
                    Ok(rows) => {
                        let checks = expect
                            .as_ref()
                            .map(|x| crate::probe::sql::check(&rows, x))
                            .unwrap_or_default();
                        Seen {
                            ok: checks.iter().all(|c| c.passed),
                            text: format!(
                                "{} row(s), value {}",
                                rows.rows.len(),
                                rows.shown_value()
                            ),
                            value: json!(rows.rows),
                        }
                    }
                }
            }
            Observe::Notifications {
                sink,
                matches,
                count,
                since,
            } => self.notifications(sink, matches.as_ref(), *count, from(*since)),
            Observe::Orders {
                broker,
                api_key,
                account,
                open,
                flat,
            } => {
                self.orders(broker, api_key.as_ref(), account, *open, *flat)
                    .await
            }
            Observe::Log {
                service,
                matches,
                count,
                since,
            } => {
                let offset = from(*since).offsets.get(service).copied().unwrap_or(0);
                let text = self.ctx.services.output_since(service, offset);
                let lines: Vec<&str> = text.lines().filter(|l| matches.is_match(l)).collect();
                let n = lines.len() as u64;
                Seen {
                    ok: count.accepts(n),
                    text: format!(
                        "{n} matching line(s){}",
                        lines
                            .last()
                            .map(|l| format!("; last: {l}"))
                            .unwrap_or_default()
                    ),
                    value: json!(n),
                }
            }
            Observe::Process {
                service,
                running,
                unchanged,
                max_restarts,
            } => {
                self.process(service, *running, *unchanged, *max_restarts)
                    .await
            }
        }
    }

    async fn http(
        &self,
        method: &reqwest::Method,
        url: &Interpolated,
        headers: &[(String, Interpolated)],
        expect: &crate::probe::expect::HttpExpect,
    ) -> Seen {
        let mut req = self.client.request(method.clone(), &url.value);
        for (k, v) in headers {
            req = req.header(k, &v.value);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Seen::no(format!(
                    "{method} {} failed: {}",
                    url.display,
                    crate::units::error_chain(&e)
                ));
            }
        };
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        let value = match &expect.json {
            Some(j) => serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.pointer(&j.pointer).cloned())
                .unwrap_or(Value::Null),
            None => json!(String::from_utf8_lossy(&body).trim()),
        };
        let short = |b: &[u8]| {
            let s = String::from_utf8_lossy(b);
            s.trim().chars().take(120).collect::<String>()
        };
        if !expect.status.accepts(status) {
            return Seen {
                ok: false,
                text: format!(
                    "status {status}, expected {}; body: {}",
                    expect.status.describe(),
                    short(&body)
                ),
                value,
            };
        }
        match expect.check_body(&body) {
            Ok(()) => Seen {
                ok: true,
                text: format!("status {status}; body: {}", short(&body)),
                value,
            },
            Err(m) => Seen {
                ok: false,
                text: format!("status {status}; {m}"),
                value,
            },
        }
    }

    fn notifications(
        &self,
        sink: &str,
        matches: Option<&regex::Regex>,
        count: super::step::Count,
        from: &Mark,
    ) -> Seen {
        let Some(s) = self.ctx.sinks.get(sink) else {
            return Seen::no(format!("sink \"{sink}\" is not running"));
        };
        let n = s.count_matching(matches, from.at, None) as u64;
        let last = s
            .messages()
            .into_iter()
            .rev()
            .find(|m| m.at >= from.at && matches.is_none_or(|r| r.is_match(&m.text)))
            .map(|m| format!("; last: \"{}\"", m.text))
            .unwrap_or_default();
        Seen {
            ok: count.accepts(n),
            text: format!(
                "{n} matching message(s), expected {}{last}",
                count.describe()
            ),
            value: json!(n),
        }
    }

    async fn orders(
        &self,
        broker: &Interpolated,
        api_key: Option<&Interpolated>,
        account: &str,
        open: Option<u64>,
        flat: bool,
    ) -> Seen {
        let base = broker.value.trim_end_matches('/');
        let get = |path: &str, query: &[(&str, &str)]| {
            let mut r = self.client.get(format!("{base}{path}")).query(query);
            if let Some(k) = api_key {
                r = r.bearer_auth(&k.value);
            }
            async move {
                let resp = r.send().await.map_err(|e| crate::units::error_chain(&e))?;
                let status = resp.status();
                let v: Value = resp.json().await.map_err(|e| e.to_string())?;
                if status.is_success() {
                    Ok(v)
                } else {
                    Err(format!("{status}: {v}"))
                }
            }
        };
        let orders = get(
            "/api/v1/orders",
            &[("status", "open"), ("account", account)],
        )
        .await;
        let positions = get("/api/v1/positions", &[("account", account)]).await;
        let (orders, positions) = match (orders, positions) {
            (Ok(o), Ok(p)) => (o, p),
            (Err(e), _) | (_, Err(e)) => return Seen::no(format!("{}: {e}", broker.display)),
        };
        let n_open = orders["orders"].as_array().map_or(0, |a| a.len()) as u64;
        let not_flat: Vec<String> = positions["positions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["qty"].as_f64().is_some_and(|q| q != 0.0))
            .map(|p| format!("{} {}", p["symbol"].as_str().unwrap_or("?"), p["qty"]))
            .collect();
        let ok = open.is_none_or(|n| n == n_open) && (!flat || not_flat.is_empty());
        Seen {
            ok,
            text: format!(
                "account {account}: {n_open} open order(s), {}",
                if not_flat.is_empty() {
                    "positions flat".to_string()
                } else {
                    format!("not flat: {}", not_flat.join(", "))
                }
            ),
            value: json!({ "open": n_open, "not_flat": not_flat.len() }),
        }
    }

    async fn process(
        &self,
        service: &str,
        running: bool,
        unchanged: bool,
        max_restarts: Option<u32>,
    ) -> Seen {
        let exit = match self.ctx.services.exit(service).await {
            Ok(e) => e,
            Err(m) => return Seen::no(m.to_string()),
        };
        let pid = self.ctx.services.pid(service);
        let first = self.start_pids.get(service).copied().flatten();
        let is_running = exit.is_none() && pid.is_some();
        let text = match (is_running, pid) {
            (true, Some(p)) => format!(
                "running as PID {p}{}",
                match first {
                    Some(f) if f != p => format!(" (the drill started with PID {f})"),
                    _ => String::new(),
                }
            ),
            _ => format!(
                "not running ({})",
                exit.map_or("stopped".to_string(), |e| e.describe())
            ),
        };
        let mut ok = is_running == running && (!unchanged || (is_running && pid == first));
        let mut text = text;
        if let Some(max) = max_restarts {
            let before = self.start_counts.get(service).copied().unwrap_or(0);
            let restarts = self.ctx.services.starts(service).saturating_sub(before);
            ok &= restarts <= max;
            text = format!("{text}; {restarts} restart(s) since the drill started");
        }
        Seen {
            ok,
            text,
            value: json!(pid),
        }
    }

    /// Undo what the drill broke: start or continue services, heal proxies, clear broker
    /// faults. Runs with its own cancellation token, so an interrupted run still restores.
    async fn restore(&self) -> Vec<(String, Result<String, String>)> {
        let broken = std::mem::take(&mut *lock(&self.broken));
        let never = CancellationToken::new();
        let mut out = Vec::new();
        for s in &broken.services {
            let r = self
                .ctx
                .services
                .ensure_running(s, &never)
                .await
                .map(|()| "running".to_string())
                .map_err(|e| e.to_string());
            out.push((format!("service {s}"), r));
        }
        for p in &broken.proxies {
            out.push((format!("proxy {p}"), self.proxy(p, None).await));
        }
        let mut seen = BTreeSet::new();
        for (b, key) in &broken.brokers {
            if seen.insert(b.value.clone()) {
                out.push((
                    format!("broker {}", b.display),
                    self.broker_fault(b, key.as_ref(), None)
                        .await
                        .map(|_| "faults cleared".to_string()),
                ));
            }
        }
        out
    }

    fn output(
        &self,
        steps: &[Step],
        restored: &[(String, Result<String, String>)],
        interrupted: Option<&str>,
    ) -> ProbeOutput {
        let records = lock(&self.records).clone();
        let mut out = ProbeOutput::default();
        for r in &records {
            out.checks.extend(check_of(r));
        }
        for (what, r) in restored {
            if let Err(e) = r {
                out.checks.push(Check::new(
                    format!("restore {what}"),
                    "restored",
                    e.clone(),
                    false,
                ));
            }
        }
        out.tables.push(steps_table(&records));
        if !restored.is_empty() {
            out.tables.push(Table {
                title: "Restored after the drill".into(),
                columns: vec!["what".into(), "result".into()],
                rows: restored
                    .iter()
                    .map(|(w, r)| {
                        vec![
                            w.clone(),
                            r.clone().unwrap_or_else(|e| format!("FAILED: {e}")),
                        ]
                    })
                    .collect(),
            });
        }
        out.measure(
            "steps",
            Value::Array(records.iter().map(record_json).collect()),
        );
        out.summary = summary(steps.len(), &records, interrupted);
        if let Some(why) = interrupted {
            out.forced = Some(crate::model::Status::Error);
            out.summary = format!("{why}; {}", out.summary);
        }
        self.write_evidence(&mut out, &records, restored);
        out
    }

    fn write_evidence(
        &self,
        out: &mut ProbeOutput,
        records: &[StepRecord],
        restored: &[(String, Result<String, String>)],
    ) {
        let timeline = json!({
            "steps": records.iter().map(record_json).collect::<Vec<_>>(),
            "restored": restored.iter().map(|(w, r)| json!({"what": w, "ok": r.is_ok(), "detail": r.clone().unwrap_or_else(|e| e)})).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&timeline).unwrap_or_default();
        match self.ctx.write_evidence(
            "drill.json",
            text.as_bytes(),
            "drill steps and measured times",
            "application/json",
        ) {
            Ok(e) => out.evidence.push(e),
            Err(e) => out.log_tail = Some(e),
        }
        for (name, sink) in self.ctx.sinks.iter() {
            let lines = sink.evidence_jsonl(|t| self.ctx.redactor.redact(t));
            if lines.is_empty() {
                continue;
            }
            let file = format!("sink-{name}.jsonl");
            if let Ok(e) = self.ctx.write_evidence(
                &file,
                lines.as_bytes(),
                &format!("messages received by sink {name}"),
                "application/x-ndjson",
            ) {
                out.evidence.push(e);
            }
        }
    }
}

/// Now, with every service's output offset.
fn mark_of(services: &crate::service::ServiceSet) -> Mark {
    Mark {
        at: Instant::now(),
        offsets: services
            .names()
            .into_iter()
            .map(|n| {
                let o = services.output_offset(&n);
                (n, o)
            })
            .collect(),
    }
}

fn check_of(r: &StepRecord) -> Option<Check> {
    match (r.result, r.within) {
        (StepOutcome::NotRun, _) | (StepOutcome::Done, _) | (StepOutcome::Held, None) => None,
        (StepOutcome::Failed, None) => Some(Check::new(&r.name, "done", r.detail.clone(), false)),
        (res, Some(within)) => {
            let expected = match r.hold {
                Some(h) => format!(
                    "within {}, holding {}",
                    format_duration(within),
                    format_duration(h)
                ),
                None => format!("within {}", format_duration(within)),
            };
            let measured = match (res, r.measured) {
                // It started after its deadline (earlier steps took longer) and held at once.
                (StepOutcome::Held, Some(t)) if t > within => {
                    format!(
                        "held at its first poll, {} after the last action",
                        format_duration(t)
                    )
                }
                (StepOutcome::Held, Some(t)) => format_duration(t),
                _ => r.detail.clone(),
            };
            Some(Check::new(
                &r.name,
                expected,
                measured,
                res == StepOutcome::Held,
            ))
        }
    }
}

fn record_json(r: &StepRecord) -> Value {
    json!({
        "name": r.name,
        "kind": r.kind,
        "result": r.result.as_str(),
        "ms": r.measured.map(|d| d.as_secs_f64() * 1000.0),
        "within_ms": r.within.map(|d| d.as_millis() as u64),
        "detail": r.detail,
    })
}

fn steps_table(records: &[StepRecord]) -> Table {
    Table {
        title: "Drill steps".into(),
        columns: ["#", "step", "kind", "result", "time", "within", "detail"]
            .map(String::from)
            .to_vec(),
        rows: records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                vec![
                    (i + 1).to_string(),
                    r.name.clone(),
                    r.kind.clone(),
                    r.result.as_str().to_string(),
                    r.measured
                        .map(format_duration)
                        .unwrap_or_else(|| "—".into()),
                    r.within.map(format_duration).unwrap_or_else(|| "—".into()),
                    r.detail.clone(),
                ]
            })
            .collect(),
    }
}

fn summary(total: usize, records: &[StepRecord], interrupted: Option<&str>) -> String {
    let failed: Vec<&StepRecord> = records
        .iter()
        .filter(|r| r.result == StepOutcome::Failed)
        .collect();
    let not_run = records
        .iter()
        .filter(|r| r.result == StepOutcome::NotRun)
        .count();
    let expectations: Vec<&StepRecord> = records.iter().filter(|r| r.within.is_some()).collect();
    if let Some(first) = failed.first() {
        let mut s = format!(
            "{} of {total} steps failed; first: \"{}\": {}",
            failed.len(),
            first.name,
            first.detail
        );
        if not_run > 0 {
            s.push_str(&format!("; {not_run} not run"));
        }
        return s;
    }
    if interrupted.is_some() {
        return format!("{} of {total} steps ran", records.len());
    }
    let times: Vec<String> = expectations
        .iter()
        .filter_map(|r| {
            r.measured
                .map(|t| format!("{} {}", r.name, format_duration(t)))
        })
        .collect();
    format!(
        "all {total} steps succeeded; {}",
        if times.is_empty() {
            "no expectations".to_string()
        } else {
            times.join(", ")
        }
    )
}
