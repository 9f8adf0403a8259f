//! `[[service]]` supervision: start the processes a checklist needs (the system under test in
//! CI, the paper broker), wait until they are ready, keep their output tail as evidence, and
//! stop them afterwards with SIGTERM, then SIGKILL after the grace period.
//!
//! [`ServiceSet`] owns the run's services: the runner starts and stops them through it, and
//! failure drills stop, start, restart and signal them mid-run through the same handle.

mod set;
mod spec;

pub use set::{ExitRecord, ServiceError, ServiceSet};
pub use spec::{RawReady, RawService, Ready, Service};

use crate::expect::StatusMatch;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use crate::process::{GroupGuard, Tail, group_command, last_lines, terminate_group};
use crate::report::ServiceReport;
use crate::units::Redactor;

/// Output bytes kept per service.
const TAIL_BYTES: usize = 64 * 1024;

/// A started service.
#[derive(Debug)]
pub struct Running {
    /// Its report entry, completed at stop.
    pub report: ServiceReport,
    child: Option<Child>,
    pgid: Option<u32>,
    guard: GroupGuard,
    tail: Tail,
    stop_timeout: Duration,
}

impl Running {
    /// The process id of the service's main process.
    pub fn pid(&self) -> Option<u32> {
        self.pgid
    }

    /// The exit status when the main process has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Send `signal` to the service's process group.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(pgid) = self.pgid {
            crate::process::signal_group(pgid, signal);
        }
    }
}

/// Start a service and wait for it to be ready. The returned value always carries a report;
/// `report.ready` says whether it came up.
pub async fn start(
    svc: &Service,
    dir: &Path,
    redactor: &Redactor,
    cancel: &CancellationToken,
    tail: Tail,
) -> Running {
    let argv: Vec<String> = svc.argv.iter().map(|a| a.value.clone()).collect();
    let shown = svc
        .argv
        .iter()
        .map(|a| a.display.clone())
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = group_command(&argv);
    // Services log on stderr and stdout alike; keep both in one tail.
    let cwd = svc
        .cwd
        .as_ref()
        .map(|c| dir.join(c))
        .unwrap_or_else(|| dir.to_path_buf());
    cmd.current_dir(&cwd);
    for (k, v) in &svc.env {
        cmd.env(k, &v.value);
    }
    let mut report = ServiceReport {
        name: svc.name.clone(),
        command: shown.clone(),
        ready: false,
        ready_ms: None,
        message: String::new(),
        exit: None,
        log_tail: String::new(),
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            report.message = format!("could not start `{shown}`: {e}");
            return Running {
                report,
                child: None,
                pgid: None,
                guard: GroupGuard::new(None),
                tail,
                stop_timeout: svc.stop_timeout,
            };
        }
    };
    let pgid = child.id();
    if let Some(s) = child.stdout.take() {
        tail.collect_from(s);
    }
    if let Some(s) = child.stderr.take() {
        tail.collect_from(s);
    }
    let started = Instant::now();
    let outcome = wait_ready(&svc.ready, &mut child, cancel).await;
    match outcome {
        Ok(()) => {
            report.ready = true;
            report.ready_ms = Some(started.elapsed().as_millis() as u64);
            report.message = "ready".into();
        }
        Err(why) => report.message = redactor.redact(&why),
    }
    Running {
        report,
        child: Some(child),
        pgid,
        guard: GroupGuard::new(pgid),
        tail,
        stop_timeout: svc.stop_timeout,
    }
}

async fn wait_ready(
    ready: &Ready,
    child: &mut Child,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let deadline = match ready {
        Ready::Http { timeout, .. } | Ready::Tcp { timeout, .. } => *timeout,
        Ready::Alive(d) => *d,
    };
    let start = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let mut last = String::from("no attempt yet");
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("exited before it was ready ({st})"));
        }
        if cancel.is_cancelled() {
            return Err("interrupted while waiting for readiness".into());
        }
        match ready {
            Ready::Alive(d) => {
                if start.elapsed() >= *d {
                    return Ok(());
                }
            }
            Ready::Http { url, .. } => match client.get(&url.value).send().await {
                Ok(r) if StatusMatch::Success.accepts(r.status().as_u16()) => return Ok(()),
                Ok(r) => last = format!("GET {} returned {}", url.display, r.status()),
                Err(e) => {
                    last = format!(
                        "GET {} failed: {}",
                        url.display,
                        crate::units::error_chain(&e)
                    )
                }
            },
            Ready::Tcp { addr, .. } => match addr.connect().await {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("connect {addr} failed: {e}"),
            },
        }
        if start.elapsed() >= deadline {
            return Err(format!(
                "not ready after {}; last attempt: {last}",
                crate::units::format_duration(deadline)
            ));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = cancel.cancelled() => {}
        }
    }
}

/// Terminate a running service: SIGTERM (and SIGCONT, in case it was paused) to its process
/// group, SIGKILL after `grace`. A service that already exited is reaped and reported as it
/// ended (`killed` false).
pub async fn terminate(run: &mut Running, grace: Duration) -> ExitRecord {
    let started = Instant::now();
    let (Some(child), Some(pgid)) = (run.child.as_mut(), run.pgid) else {
        return ExitRecord::never_started();
    };
    let (status, killed, already) = match child.try_wait().ok().flatten() {
        Some(st) => {
            crate::process::signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            (Some(st), false, true)
        }
        None => {
            crate::process::signal_group(pgid, nix::sys::signal::Signal::SIGCONT);
            let (st, killed) = terminate_group(child, pgid, grace).await;
            (st, killed, false)
        }
    };
    run.guard.disarm();
    ExitRecord {
        status,
        killed,
        grace,
        took: started.elapsed(),
        on_its_own: already,
    }
}

/// Stop a service (SIGTERM to its process group, SIGKILL after the grace period) and finish its
/// report with the exit status and output tail.
pub async fn stop(mut run: Running, redactor: &Redactor) -> ServiceReport {
    if run.child.is_some() {
        let grace = run.stop_timeout;
        let exit = terminate(&mut run, grace).await;
        if exit.on_its_own && run.report.ready {
            run.report.message = format!("exited during the run ({})", exit.describe());
            run.report.ready = false;
        }
        run.report.exit = exit.status.map(|_| exit.describe());
    }
    // Let the readers drain what the process wrote last.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (text, _) = run.tail.text();
    run.report.log_tail = redactor.redact(&last_lines(&text, 60));
    run.report
}
