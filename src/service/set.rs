//! The run's services behind one shared handle: started in order by the runner, stopped,
//! started, restarted and signalled by failure drills mid-run, and stopped at the end.
//!
//! Each service has one slot for its whole run. A slot keeps one output tail across restarts
//! (so a drill's `log` expectation sees what every incarnation wrote), how often the service
//! was started, and how its last process ended.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio_util::sync::CancellationToken;

use super::{Running, Service, TAIL_BYTES, start, terminate};
use crate::process::{Tail, last_lines};
use crate::report::ServiceReport;
use crate::units::{Redactor, format_duration};

/// Why a service could not be acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// No `[[service]]` has this name.
    #[error("no [[service]] named \"{0}\"")]
    Unknown(String),
    /// It was never started in this run.
    #[error("service \"{0}\" was never started")]
    NeverStarted(String),
    /// Started while it runs.
    #[error("service \"{0}\" is already running")]
    AlreadyRunning(String),
    /// Signalled while it does not run.
    #[error("service \"{0}\" is not running")]
    NotRunning(String),
    /// It did not become ready; the message says why (redacted).
    #[error("service \"{name}\": {message}")]
    NotReady {
        /// The service.
        name: String,
        /// Why, e.g. `not ready after 10 s; last attempt: …`.
        message: String,
    },
}

/// How a service's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitRecord {
    /// The main process's exit status; `None` when it could not be read.
    pub status: Option<ExitStatus>,
    /// Whether SIGKILL was needed after the grace period.
    pub killed: bool,
    /// The grace period SIGTERM had.
    pub grace: Duration,
    /// From SIGTERM to the exit (zero when it had already exited).
    pub took: Duration,
    /// It had exited before anyone asked it to.
    pub on_its_own: bool,
}

impl ExitRecord {
    pub(super) fn never_started() -> ExitRecord {
        ExitRecord {
            status: None,
            killed: false,
            grace: Duration::ZERO,
            took: Duration::ZERO,
            on_its_own: false,
        }
    }

    /// The exit code, when it exited (rather than being killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// `exit 0`, `signal 15`, or `signal 9 (SIGKILL after 10 s grace)`.
    pub fn describe(&self) -> String {
        let base = match self.status {
            Some(s) => match s.code() {
                Some(c) => format!("exit {c}"),
                None => format!("signal {}", s.signal().unwrap_or(0)),
            },
            None => "exit status unknown".to_string(),
        };
        if self.killed {
            format!(
                "{base} (SIGKILL after {} grace)",
                format_duration(self.grace)
            )
        } else {
            base
        }
    }
}

/// One service for the whole run.
#[derive(Debug)]
struct Slot {
    spec: Service,
    tail: Tail,
    state: tokio::sync::Mutex<SlotState>,
    /// The current main process's PID, readable without waiting for the state lock.
    pid: Mutex<Option<u32>>,
    /// How many times it was started, readable without waiting for the state lock.
    started: std::sync::atomic::AtomicU32,
}

#[derive(Debug, Default)]
struct SlotState {
    /// The current process; `None` when stopped (or never started).
    run: Option<Running>,
    /// How many times it was started.
    starts: u32,
    /// How its last process ended.
    last_exit: Option<ExitRecord>,
    /// The report of its first start, completed at the end of the run.
    report: Option<ServiceReport>,
}

/// The run's services.
#[derive(Debug, Default)]
pub struct ServiceSet {
    dir: PathBuf,
    redactor: Redactor,
    slots: BTreeMap<String, Slot>,
    order: Vec<String>,
}

impl ServiceSet {
    /// A checklist's services, none started yet: relative working directories resolve
    /// against `dir`, and `redactor` scrubs their output and messages.
    pub fn new(services: &[Service], dir: &Path, redactor: &Redactor) -> ServiceSet {
        let slots = services
            .iter()
            .map(|s| {
                let slot = Slot {
                    spec: s.clone(),
                    tail: Tail::new(TAIL_BYTES),
                    state: tokio::sync::Mutex::new(SlotState::default()),
                    pid: Mutex::new(None),
                    started: std::sync::atomic::AtomicU32::new(0),
                };
                (s.name.clone(), slot)
            })
            .collect();
        ServiceSet {
            dir: dir.to_path_buf(),
            redactor: redactor.clone(),
            slots,
            order: services.iter().map(|s| s.name.clone()).collect(),
        }
    }

    fn slot(&self, name: &str) -> Result<&Slot, ServiceError> {
        self.slots
            .get(name)
            .ok_or_else(|| ServiceError::Unknown(name.to_string()))
    }

    /// The services' names, in start order.
    pub fn names(&self) -> Vec<String> {
        self.order.clone()
    }

    /// The PID of the service's current main process, when it was started and not stopped.
    pub fn pid(&self, name: &str) -> Option<u32> {
        let slot = self.slots.get(name)?;
        *slot.pid.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many times the service was started in this run (1 + restarts).
    pub fn starts(&self, name: &str) -> u32 {
        self.slots
            .get(name)
            .map_or(0, |s| s.started.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Bytes of output the service has written so far: an offset for [`ServiceSet::output_since`].
    pub fn output_offset(&self, name: &str) -> u64 {
        self.slots.get(name).map_or(0, |s| s.tail.total())
    }

    /// The service's output after `offset`, secrets redacted.
    pub fn output_since(&self, name: &str, offset: u64) -> String {
        match self.slots.get(name) {
            Some(s) => self.redactor.redact(&s.tail.since(offset).0),
            None => String::new(),
        }
    }

    /// Start one service and wait until it is ready.
    ///
    /// # Errors
    /// The service is unknown or already running, could not be started, or did not become
    /// ready (its message says why).
    pub async fn start(
        &self,
        name: &str,
        cancel: &CancellationToken,
    ) -> Result<Duration, ServiceError> {
        let slot = self.slot(name)?;
        let mut st = slot.state.lock().await;
        if let Some(run) = st.run.as_mut() {
            if run.try_exit().is_none() {
                return Err(ServiceError::AlreadyRunning(name.to_string()));
            }
            reap(slot, &mut st).await;
        }
        let began = Instant::now();
        let run = start(
            &slot.spec,
            &self.dir,
            &self.redactor,
            cancel,
            slot.tail.clone(),
        )
        .await;
        st.starts += 1;
        slot.started
            .store(st.starts, std::sync::atomic::Ordering::SeqCst);
        let ready = run.report.ready;
        let message = run.report.message.clone();
        *slot.pid.lock().unwrap_or_else(|e| e.into_inner()) = run.pid();
        if st.report.is_none() {
            st.report = Some(run.report.clone());
        }
        st.run = Some(run);
        if ready {
            Ok(began.elapsed())
        } else {
            Err(ServiceError::NotReady {
                name: name.to_string(),
                message,
            })
        }
    }

    /// Start every service in order, stopping at the first that does not become ready.
    /// Calls `each(name, ready, message)` after each one; returns the name of the one that failed.
    pub async fn start_all(
        &self,
        cancel: &CancellationToken,
        mut before: impl FnMut(&str),
        mut each: impl FnMut(&str, bool, &str),
    ) -> Option<String> {
        for name in &self.order {
            before(name);
            let r = self.start(name, cancel).await;
            let message = match &r {
                Ok(_) => "ready".to_string(),
                Err(ServiceError::NotReady { message, .. }) => message.clone(),
                Err(e) => e.to_string(),
            };
            each(name, r.is_ok(), &message);
            if r.is_err() {
                return Some(name.clone());
            }
        }
        None
    }

    /// Stop one service: SIGTERM to its group, SIGKILL after `grace` (default: its
    /// `stop_timeout`). Stopping a service that already exited reaps it and says how it ended.
    ///
    /// # Errors
    /// The service is unknown or was not started.
    pub async fn stop(
        &self,
        name: &str,
        grace: Option<Duration>,
    ) -> Result<ExitRecord, ServiceError> {
        let slot = self.slot(name)?;
        let mut st = slot.state.lock().await;
        let Some(run) = st.run.as_mut() else {
            return match st.last_exit {
                Some(e) => Ok(ExitRecord {
                    on_its_own: true,
                    ..e
                }),
                None => Err(ServiceError::NeverStarted(name.to_string())),
            };
        };
        let exit = terminate(run, grace.unwrap_or(slot.spec.stop_timeout)).await;
        st.run = None;
        st.last_exit = Some(exit);
        *slot.pid.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(exit)
    }

    /// Send `signal` to the service's process group.
    ///
    /// # Errors
    /// The service is unknown or not running.
    pub async fn signal(&self, name: &str, signal: Signal) -> Result<(), ServiceError> {
        let slot = self.slot(name)?;
        let st = slot.state.lock().await;
        match st.run.as_ref() {
            Some(run) => {
                run.signal(signal);
                Ok(())
            }
            None => Err(ServiceError::NotRunning(name.to_string())),
        }
    }

    /// How the service's last process ended, reaping it when it has just exited; `None` while
    /// it runs.
    ///
    /// # Errors
    /// The service is unknown or was never started.
    pub async fn exit(&self, name: &str) -> Result<Option<ExitRecord>, ServiceError> {
        let slot = self.slot(name)?;
        let mut st = slot.state.lock().await;
        if st.run.is_none() {
            return match st.starts {
                0 => Err(ServiceError::NeverStarted(name.to_string())),
                _ => Ok(st.last_exit),
            };
        }
        let exited = st.run.as_mut().is_some_and(|run| run.try_exit().is_some());
        Ok(if exited {
            Some(reap(slot, &mut st).await)
        } else {
            None
        })
    }

    /// Make sure the service runs and is not paused: SIGCONT to a running one, a fresh start
    /// for one that stopped or exited. Used to restore what a drill broke.
    ///
    /// # Errors
    /// As [`ServiceSet::start`].
    pub async fn ensure_running(
        &self,
        name: &str,
        cancel: &CancellationToken,
    ) -> Result<(), ServiceError> {
        match self.exit(name).await? {
            None => self.signal(name, Signal::SIGCONT).await,
            Some(_) => self.start(name, cancel).await.map(|_| ()),
        }
    }

    /// Stop every service (in start order) and complete their reports.
    pub async fn stop_all(&self) -> Vec<ServiceReport> {
        let mut reports = Vec::new();
        for name in &self.order {
            let Some(slot) = self.slots.get(name) else {
                continue;
            };
            let mut st = slot.state.lock().await;
            let mut report = match st.run.take() {
                Some(run) => super::stop(run, &self.redactor).await,
                None => match st.report.clone() {
                    Some(mut r) => {
                        r.log_tail = self.redactor.redact(&last_lines(&slot.tail.text().0, 60));
                        r.exit = st.last_exit.map(|e| e.describe());
                        r
                    }
                    None => continue,
                },
            };
            if let Some(first) = &st.report
                && st.starts > 1
            {
                report.ready = first.ready;
                report.ready_ms = first.ready_ms;
                report.message = format!(
                    "{} (started {} times: restarted by a drill)",
                    report.message, st.starts
                );
            }
            *slot.pid.lock().unwrap_or_else(|e| e.into_inner()) = None;
            reports.push(report);
        }
        reports
    }
}

/// The current process has exited: record how and clear it.
async fn reap(slot: &Slot, st: &mut SlotState) -> ExitRecord {
    let exit = match st.run.as_mut() {
        Some(run) => terminate(run, Duration::ZERO).await,
        None => return st.last_exit.unwrap_or(ExitRecord::never_started()),
    };
    st.run = None;
    st.last_exit = Some(exit);
    *slot.pid.lock().unwrap_or_else(|e| e.into_inner()) = None;
    exit
}
