//! A drill in progress: its context, its clock marks, what it has broken, saved and recorded,
//! and the step in progress. The run, the actions and the observations share it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::effects::Broken;
use super::record::StepRecord;
use super::step::MARKER_KEY;
use crate::probe::ProbeContext;
use crate::units::Redactor;

/// The point times are measured from: the start of the last action other than `wait`, with
/// the services' output offsets at that moment.
#[derive(Debug, Clone)]
pub(super) struct Mark {
    pub(super) at: Instant,
    pub(super) offsets: BTreeMap<String, u64>,
}

/// A drill in progress.
pub(super) struct Drill {
    /// The probe's context, with `cancel` replaced by `stop`: actions see the stop too.
    pub(super) ctx: ProbeContext,
    /// Stops the steps: the interruption, the deadline, or the probe dropped.
    pub(super) stop: CancellationToken,
    pub(super) client: reqwest::Client,
    pub(super) start: Mark,
    pub(super) start_pids: BTreeMap<String, Option<u32>>,
    pub(super) start_counts: BTreeMap<String, u32>,
    pub(super) mark: Mutex<Mark>,
    pub(super) records: Mutex<Vec<StepRecord>>,
    pub(super) broken: Arc<Mutex<Broken>>,
    /// Values saved by steps, and the drill's marker under [`MARKER_KEY`].
    pub(super) saved: Mutex<BTreeMap<String, Value>>,
    /// This attempt's marker (`${drill.marker}`, `PRODREADY_DRILL_MARKER` for commands).
    pub(super) marker: String,
    /// The step in progress (its index) and when it started.
    pub(super) current: Mutex<Option<(usize, Instant)>>,
    /// What the expectation in progress saw last.
    pub(super) last_seen: Mutex<Option<String>>,
    /// The run's redactor, with the values `http` actions saved added as secrets.
    pub(super) redactor: Mutex<Arc<Redactor>>,
}

/// What the observation of an expectation saw.
pub(super) struct Seen {
    pub(super) ok: bool,
    pub(super) text: String,
    pub(super) value: Value,
}

impl Seen {
    pub(super) fn no(text: impl Into<String>) -> Seen {
        Seen {
            ok: false,
            text: text.into(),
            value: Value::Null,
        }
    }
}

/// The first `n` characters of a body, trimmed, for messages.
pub(super) fn excerpt(body: &[u8], n: usize) -> String {
    String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(n)
        .collect()
}

/// Lock `m`, also when a thread panicked holding it (the data stays usable).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Now, with every service's output offset.
pub(super) fn mark_of(services: &crate::service::ServiceSet) -> Mark {
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

/// A marker no other drill attempt shares: `prodready-marker-` and 16 hex digits from a hash
/// with the process's random keys over the item, the wall clock and the process ID.
fn new_marker(item: &str) -> String {
    use std::hash::BuildHasher;
    let h = std::hash::RandomState::new().hash_one((
        item,
        std::time::SystemTime::now(),
        std::process::id(),
    ));
    format!("prodready-marker-{h:016x}")
}

impl Drill {
    /// A drill starting now: the services' PIDs, start counts and output offsets are the
    /// baseline its expectations compare with.
    pub(super) fn new(ctx: ProbeContext, stop: CancellationToken) -> Drill {
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
        let marker = new_marker(&ctx.item_id);
        Drill {
            start_counts,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            start_pids,
            mark: Mutex::new(start.clone()),
            records: Mutex::new(Vec::new()),
            broken: Arc::default(),
            saved: Mutex::new(BTreeMap::from([(
                MARKER_KEY.to_string(),
                Value::String(marker.clone()),
            )])),
            marker,
            current: Mutex::new(None),
            last_seen: Mutex::new(None),
            redactor: Mutex::new(ctx.redactor.clone()),
            start,
            ctx: ProbeContext {
                cancel: stop.clone(),
                ..ctx
            },
            stop,
        }
    }

    pub(super) fn record(&self, r: StepRecord) {
        lock(&self.records).push(r);
    }

    /// `text` with every secret masked: the run's `${VAR}` values and the values saved by
    /// `http` actions (shown as `${saved.NAME}`).
    pub(super) fn redact(&self, text: &str) -> String {
        lock(&self.redactor).redact(text)
    }

    /// Keep `value` under `name` for `${saved.NAME}`, and mask it from now on.
    pub(super) fn save_secret(&self, name: &str, value: Value) {
        let shown = match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !shown.is_empty() {
            let mut r = lock(&self.redactor);
            let mut next = (**r).clone();
            next.add_secret(&format!("saved.{name}"), &shown);
            *r = Arc::new(next);
        }
        lock(&self.saved).insert(name.to_string(), value);
    }

    /// Send `request` with the saved values put in, within `timeout`: the request as shown
    /// and its answer (status and body) or the error that stood for one.
    ///
    /// # Errors
    /// A saved name nothing was saved under (the request was not sent).
    pub(super) async fn exchange(
        &self,
        request: &super::step::request::Request,
        timeout: Duration,
    ) -> Result<(String, Result<(u16, Vec<u8>), reqwest::Error>), String> {
        let saved = lock(&self.saved).clone();
        let (req, shown) = request.build(&self.client, &saved, timeout)?;
        let answered = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            Ok((status, resp.bytes().await?.to_vec()))
        };
        Ok((shown, answered.await))
    }

    /// The probe context with the current redactor (for commands and the output).
    pub(super) fn context(&self) -> ProbeContext {
        ProbeContext {
            redactor: lock(&self.redactor).clone(),
            ..self.ctx.clone()
        }
    }
}
