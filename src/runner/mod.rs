//! The runner: starts services, runs the selected items with bounded concurrency, per-item
//! timeouts and retries, applies waivers, decides the verdict and assembles the [`Report`].
//!
//! It emits [`RunEvent`]s instead of printing; the terminal UI is one listener.
//! Cancellation (ctrl-c / SIGTERM) cancels one token: running probes stop, services are
//! stopped, and a partial report marked `interrupted` is still produced. Probes that wind down
//! on their own (drills: stop stepping, restore, record) get a bounded moment to do so, at the
//! interruption as at their item timeout; a second ctrl-c cancels the `abandon` token, which
//! cuts that cleanup short.

mod assemble;
pub mod baseline;
mod items;

pub use assemble::apply_waiver;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::checklist::{Checklist, Item};
use crate::model::{Outcome, Severity, Status};
use crate::probe::ProbeContext;
use crate::report::{self, Report};
use crate::service::ServiceSet;
use assemble::{Ran, build_report};
use items::run_items;

/// What the runner tells its listeners.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The run starts with this many selected items.
    Started {
        /// Items that will run.
        selected: usize,
    },
    /// A service is starting.
    ServiceStarting {
        /// Its name.
        name: String,
    },
    /// A service finished starting.
    ServiceStarted {
        /// Its name.
        name: String,
        /// Whether it became ready.
        ready: bool,
        /// Message (why not, or "ready").
        message: String,
    },
    /// An item started.
    ItemStarted {
        /// Id.
        id: String,
        /// Title.
        title: String,
        /// Its timeout.
        timeout: Duration,
    },
    /// An item finished.
    ItemFinished {
        /// Id.
        id: String,
        /// Final outcome (after waivers).
        outcome: Box<Outcome>,
    },
    /// The run was interrupted.
    Interrupted,
    /// Services are being stopped.
    Stopping,
}

/// Receives [`RunEvent`]s.
pub trait EventSink: Send + Sync {
    /// Handle one event.
    fn event(&self, e: &RunEvent);
}

/// A sink that ignores everything.
#[derive(Debug, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&self, _e: &RunEvent) {}
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Items run at once.
    pub jobs: usize,
    /// Overrides every item's timeout when set.
    pub timeout: Option<Duration>,
    /// Only these item ids.
    pub only: Vec<String>,
    /// Only these sections (case-insensitive).
    pub sections: Vec<String>,
    /// Only items with one of these tags.
    pub tags: Vec<String>,
    /// Lowest severity whose failures block.
    pub fail_on: Severity,
    /// Where the report and evidence are written.
    pub report_dir: PathBuf,
    /// The checklist path as given on the command line.
    pub checklist_arg: String,
    /// Today's date for waiver expiry (UTC).
    pub today: jiff::civil::Date,
    /// The baseline items with a `regression` table are judged against ([`baseline`]).
    pub baseline: Option<Arc<crate::compare::Loaded>>,
}

impl RunOptions {
    pub(super) fn selects(&self, item: &Item) -> bool {
        (self.only.is_empty() || self.only.iter().any(|o| o == &item.id))
            && (self.sections.is_empty()
                || self
                    .sections
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&item.section)))
            && (self.tags.is_empty() || self.tags.iter().any(|t| item.tags.contains(t)))
    }

    pub(super) fn filters(&self) -> Vec<String> {
        let mut f = Vec::new();
        f.extend(self.only.iter().map(|o| format!("--only {o}")));
        f.extend(self.sections.iter().map(|s| format!("--section {s}")));
        f.extend(self.tags.iter().map(|t| format!("--tag {t}")));
        f
    }
}

/// Run the checklist and build the report. Never fails: problems become outcomes.
///
/// `cancel` interrupts the run (the first ctrl-c / SIGTERM); `abandon` (the second) cuts short
/// the cleanup still running after that, such as a drill's restore.
pub async fn run(
    checklist: &Checklist,
    opts: &RunOptions,
    events: &dyn EventSink,
    cancel: CancellationToken,
    abandon: CancellationToken,
) -> Report {
    let started_at = jiff::Timestamp::now();
    let clock = Instant::now();
    let selected: Vec<&Item> = checklist.items.iter().filter(|i| opts.selects(i)).collect();
    events.event(&RunEvent::Started {
        selected: selected.len(),
    });
    let (proxies, sinks, resource_failed) = start_resources(checklist).await;
    let services = Arc::new(ServiceSet::new(
        &checklist.services,
        &checklist.dir,
        &checklist.redactor,
    ));
    let service_failed = match resource_failed {
        Some(why) => Some(why),
        None => start_services(&services, events, &cancel).await,
    };
    let background = crate::probe::Background::default();
    let outcomes = match &service_failed {
        Some(name) => selected
            .iter()
            .map(|it| {
                let why = format!("not run: {name}");
                (it.id.clone(), Outcome::not_run(Status::Error, why))
            })
            .collect(),
        None => {
            let base = ProbeContext {
                item_id: String::new(),
                checklist_dir: checklist.dir.clone(),
                report_dir: opts.report_dir.clone(),
                redactor: Arc::new(checklist.redactor.clone()),
                cancel: cancel.clone(),
                abandon: abandon.clone(),
                deadline: None,
                services: services.clone(),
                proxies: Arc::new(proxies.clone()),
                sinks: Arc::new(sinks.clone()),
                background: background.clone(),
                today: opts.today,
            };
            run_items(&selected, &base, opts, events, &cancel).await
        }
    };
    // Cleanup a probe left running (a drill whose future was dropped still restores in its
    // task) finishes before the services are stopped, unless a second interruption abandons it.
    tokio::select! {
        _ = background.wait() => {}
        _ = abandon.cancelled() => {}
    }
    let interrupted = cancel.is_cancelled();
    if interrupted {
        events.event(&RunEvent::Interrupted);
    }
    events.event(&RunEvent::Stopping);
    let services = stop_all(&services, proxies, sinks).await;
    let ran = Ran {
        outcomes,
        services,
        interrupted,
        started_at,
        duration: clock.elapsed(),
    };
    build_report(checklist, opts, ran)
}

/// Start the services in order; the message says which one did not become ready.
async fn start_services(
    services: &ServiceSet,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Option<String> {
    let starting = |name: &str| {
        events.event(&RunEvent::ServiceStarting {
            name: name.to_string(),
        })
    };
    let started = |name: &str, ready: bool, message: &str| {
        events.event(&RunEvent::ServiceStarted {
            name: name.to_string(),
            ready,
            message: message.to_string(),
        })
    };
    services
        .start_all(cancel, starting, started)
        .await
        .map(|name| format!("service \"{name}\" did not become ready"))
}

/// Stop the services, then the proxies and sinks; what the services did goes in the report.
async fn stop_all(
    services: &ServiceSet,
    proxies: Proxies,
    sinks: Sinks,
) -> Vec<report::ServiceReport> {
    let stopped = services.stop_all().await;
    for (_, p) in proxies {
        p.shutdown().await;
    }
    for (_, s) in sinks {
        s.shutdown().await;
    }
    stopped
}

type Proxies = BTreeMap<String, crate::rig::fault_proxy::FaultProxy>;
type Sinks = BTreeMap<String, crate::rig::sink::Sink>;

/// Start the checklist's `[[proxy]]`s and `[[sink]]`s on the addresses the loader chose; the
/// third value says which one could not start.
async fn start_resources(checklist: &Checklist) -> (Proxies, Sinks, Option<String>) {
    let mut proxies = BTreeMap::new();
    let mut sinks = BTreeMap::new();
    for p in &checklist.proxies {
        match crate::rig::fault_proxy::FaultProxy::start(&p.name, p.listen, p.upstream.to_string())
            .await
        {
            Ok(fp) => {
                proxies.insert(p.name.clone(), fp);
            }
            Err(e) => {
                return (
                    proxies,
                    sinks,
                    Some(format!("proxy \"{}\" could not start: {e}", p.name)),
                );
            }
        }
    }
    for s in &checklist.sinks {
        match crate::rig::sink::Sink::start_on(&s.name, s.listen).await {
            Ok(sink) => {
                sinks.insert(s.name.clone(), sink);
            }
            Err(e) => {
                return (
                    proxies,
                    sinks,
                    Some(format!("sink \"{}\" could not start: {e}", s.name)),
                );
            }
        }
    }
    (proxies, sinks, None)
}
