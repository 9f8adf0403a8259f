//! Observing a drill's expectations: each is polled every `interval` until it holds (and
//! keeps holding for `hold`) or its deadline passes, counted from the last action; what it
//! saw is kept for the record and for a later `equals_saved`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::record::{StepOutcome, StepRecord, kind_of};
use super::state::{Drill, Mark, Seen, excerpt, lock};
use super::step::expectations::PromCheck;
use super::step::request::Request;
use super::step::venue::{JsonList, Venue};
use super::step::{Count, Expectation, Observe, Since, Step};
use crate::probe::prometheus::api::{QueryData, RawSeries, Server};
use crate::units::format_duration;

impl Drill {
    pub(super) async fn expect(&self, step: &Step, e: &Expectation) -> bool {
        let began = Instant::now();
        let mark = lock(&self.mark).clone();
        let deadline = mark.at + e.within;
        let mut held_since: Option<Instant> = None;
        let (result, measured, detail) = loop {
            let seen = self.observe(&e.observe, &mark, deadline).await;
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
            *lock(&self.last_seen) = Some(text.clone());
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
            kind: kind_of(step),
            result,
            at: Some(began - self.start.at),
            measured,
            within: Some(e.within),
            hold: e.hold,
            detail: self.redact(&detail),
        });
        result == StepOutcome::Held
    }

    async fn observe(&self, o: &Observe, mark: &Mark, deadline: Instant) -> Seen {
        let from = |since: Since| match since {
            Since::Action => mark,
            Since::Drill => &self.start,
        };
        match o {
            Observe::Http {
                request,
                expect,
                reachable,
            } => self.http(request, expect, *reachable, deadline).await,
            Observe::Prometheus { server, check } => self.prometheus(server, check).await,
            Observe::Exit { service, code } => self.exit(service, *code).await,
            Observe::Sql { db, query, expect } => self.sql(db, query, expect.as_ref()).await,
            Observe::Notifications {
                sink,
                matches,
                count,
                since,
            } => self.notifications(sink, matches.as_ref(), *count, from(*since)),
            Observe::Orders { venue, open, flat } => self.orders(venue, *open, *flat).await,
            Observe::Log {
                from: source,
                matches,
                marker,
                count,
                since,
            } => {
                let lines = super::log_lines::Lines {
                    matches: matches.as_ref(),
                    marker: marker.then_some(self.marker.as_str()),
                };
                self.log(source, &lines, *count, from(*since)).await
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

    async fn exit(&self, service: &str, code: i32) -> Seen {
        match self.ctx.services.exit(service).await {
            Err(e) => Seen::no(e.to_string()),
            Ok(None) => Seen::no("still running"),
            Ok(Some(x)) => Seen {
                ok: !x.killed && x.code() == Some(code),
                text: format!(
                    "{} ({} after SIGTERM)",
                    x.describe(),
                    format_duration(x.took)
                ),
                value: json!(x.code()),
            },
        }
    }

    async fn sql(
        &self,
        db: &crate::probe::sql::Database,
        query: &str,
        expect: Option<&crate::probe::sql::Expect>,
    ) -> Seen {
        let db = db.resolved(&self.ctx.checklist_dir);
        match crate::probe::sql::query(&db, query, Duration::from_secs(5)).await {
            Err(e) => Seen::no(e.to_string()),
            Ok(rows) => {
                let checks = expect
                    .map(|x| crate::probe::sql::check(&rows, x))
                    .unwrap_or_default();
                Seen {
                    ok: checks.iter().all(|c| c.passed),
                    text: format!("{} row(s), value {}", rows.rows.len(), rows.shown_value()),
                    value: json!(rows.rows),
                }
            }
        }
    }

    /// One request; with `reachable` false, no answer (refused, reset, or none before the
    /// deadline) is what holds.
    async fn http(
        &self,
        request: &Request,
        expect: &crate::probe::expect::HttpExpect,
        reachable: bool,
        deadline: Instant,
    ) -> Seen {
        // A request still unanswered at the deadline has timed out: that is an answer too.
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(200), Duration::from_secs(5));
        let (shown, answer) = match self.exchange(request, timeout).await {
            Ok(a) => a,
            Err(e) => return Seen::no(e),
        };
        let (status, body) = match answer {
            Ok(a) => a,
            Err(e) => {
                return Seen {
                    ok: !reachable,
                    text: format!("{shown}: no answer: {}", crate::units::error_chain(&e)),
                    value: Value::Null,
                };
            }
        };
        if !reachable {
            return Seen::no(format!("{shown}: answered {status}, expected no answer"));
        }
        let value = match &expect.json {
            Some(j) => serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.pointer(&j.pointer).cloned())
                .unwrap_or(Value::Null),
            None => json!(String::from_utf8_lossy(&body).trim()),
        };
        let short = |b: &[u8]| excerpt(b, 120);
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
        count: Count,
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

    /// The JSON array at `list`'s URL and pointer.
    async fn json_list(&self, list: &JsonList) -> Result<Vec<Value>, String> {
        let (shown, answer) = self.exchange(&list.request, Duration::from_secs(5)).await?;
        let (status, body) =
            answer.map_err(|e| format!("{shown}: {}", crate::units::error_chain(&e)))?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "{shown} answered {status}: {}",
                excerpt(&body, 120)
            ));
        }
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("{shown}: the answer is not JSON ({e})"))?;
        match doc.pointer(&list.pointer) {
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(other) => Err(format!(
                "{shown}: \"{}\" is not an array but {other}",
                list.pointer
            )),
            None => Err(format!("{shown}: no \"{}\" in the answer", list.pointer)),
        }
    }

    /// Open orders and positions at `venue`; a position whose quantity is missing or not a
    /// number is not flat.
    async fn orders(&self, venue: &Venue, open: Option<u64>, flat: bool) -> Seen {
        let mut parts = Vec::new();
        let mut ok = true;
        let mut value = serde_json::Map::new();
        if let Some(list) = venue.orders.as_ref().filter(|_| open.is_some()) {
            match self.json_list(list).await {
                Ok(orders) => {
                    let n = orders.len() as u64;
                    ok &= open == Some(n);
                    parts.push(format!("{n} open order(s)"));
                    value.insert("open".into(), json!(n));
                }
                Err(e) => return Seen::no(e),
            }
        }
        if let Some(list) = venue.positions.as_ref().filter(|_| flat) {
            match self.json_list(list).await {
                Ok(positions) => {
                    let not_flat: Vec<String> = positions
                        .iter()
                        .enumerate()
                        .filter_map(|(i, p)| {
                            let q = p.pointer(&venue.quantity);
                            let number = q.and_then(|q| {
                                q.as_f64().or_else(|| q.as_str()?.parse::<f64>().ok())
                            });
                            if number == Some(0.0) {
                                return None;
                            }
                            let symbol = p
                                .pointer(&venue.symbol)
                                .and_then(Value::as_str)
                                .map_or_else(|| format!("#{i}"), str::to_string);
                            Some(format!("{symbol} {}", q.unwrap_or(&Value::Null)))
                        })
                        .collect();
                    ok &= not_flat.is_empty();
                    value.insert("not_flat".into(), json!(not_flat.len()));
                    parts.push(if not_flat.is_empty() {
                        "positions flat".to_string()
                    } else {
                        format!("not flat: {}", not_flat.join(", "))
                    });
                }
                Err(e) => return Seen::no(e),
            }
        }
        Seen {
            ok,
            text: format!("{}: {}", venue.shown, parts.join(", ")),
            value: Value::Object(value),
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
}

impl Drill {
    /// An instant query (every sample within bounds; none never holds) or an alert's state.
    async fn prometheus(&self, server: &Server, check: &PromCheck) -> Seen {
        match check {
            PromCheck::Query {
                expr,
                min,
                max,
                equals,
            } => {
                let within = |x: f64| {
                    min.is_none_or(|m| x >= m)
                        && max.is_none_or(|m| x <= m)
                        && equals.is_none_or(|m| x == m)
                };
                self.prom_query(server, expr, within).await
            }
            PromCheck::Alert { name, firing } => self.prom_alert(server, name, *firing).await,
        }
    }

    /// Every sample of `expr` now meets `within`.
    async fn prom_query(&self, server: &Server, expr: &str, within: impl Fn(f64) -> bool) -> Seen {
        let series = match server.query(&self.ctx, expr, None).await {
            Ok(QueryData::Vector(v)) => v,
            Ok(QueryData::Scalar(s)) => vec![RawSeries {
                metric: Default::default(),
                value: Some(s),
                values: Vec::new(),
                histogram: None,
                histograms: None,
            }],
            Ok(other) => {
                return Seen::no(format!(
                    "query `{expr}` returned a {}, expected an instant vector or scalar",
                    other.kind()
                ));
            }
            Err(e) => return Seen::no(e),
        };
        let mut shown = Vec::new();
        let mut ok = !series.is_empty();
        let mut values = Vec::new();
        for s in series {
            let s = match s.numeric() {
                Ok(s) => s,
                Err(e) => return Seen::no(e),
            };
            let Some(&(_, x)) = s.points.last() else {
                continue;
            };
            ok &= within(x);
            values.push(x);
            shown.push(format!("{} = {x}", s.name()));
        }
        let text = if shown.is_empty() {
            format!("query `{expr}`: no samples")
        } else {
            format!("query `{expr}`: {}", shown.join(", "))
        };
        Seen {
            ok,
            text,
            value: json!(values),
        }
    }

    /// The alerting rule `name` is loaded and firing (or not).
    async fn prom_alert(&self, server: &Server, name: &str, firing: bool) -> Seen {
        let groups = match server.alert_rules(&self.ctx).await {
            Ok(g) => g,
            Err(e) => return Seen::no(e),
        };
        let rule = groups
            .iter()
            .flat_map(|g| g.rules.iter())
            .find(|r| r.name == name && r.kind == "alerting");
        let Some(rule) = rule else {
            return Seen::no(format!(
                "no alerting rule named \"{name}\" is loaded at {}",
                server.shown()
            ));
        };
        let state = rule.state.as_deref().unwrap_or("inactive");
        Seen {
            ok: (state == "firing") == firing,
            text: format!("alert {name}: {state}, health {}", rule.health),
            value: json!(state),
        }
    }
}
