//! `prodready soak`: one task per monitor on its own interval, one writer thread that owns the
//! store connection (so SQLite sees a single writer and every sample is one transaction), a
//! heartbeat every second, the optional metrics server, and one cancellation path: SIGTERM or
//! ctrl-c cancels the token, checks in flight are abandoned, the writer drains what it was
//! sent, closes the last spans, records a clean stop and checkpoints the WAL.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::check::Runner;
use super::config::Monitor;
use super::tracker::{self, MonitorState, Sample};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::clock::{Clock, boot_id};
use crate::units::Redactor;

/// Options of one `soak` run.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// The store file.
    pub state: PathBuf,
    /// Address of the status page and /metrics (`127.0.0.1:PORT`; port 0 picks one and prints
    /// it). Any address but a loopback one needs `auth`.
    pub listen: Option<String>,
    /// Credentials the status page and /metrics require.
    pub auth: Option<super::status_page::serve::Auth>,
    /// The clocks (wall-clock offset file for drills and tests).
    pub clock: Clock,
    /// The checklist's folder (relative paths of command checks).
    pub checklist_dir: PathBuf,
    /// Delete raw samples older than this (rollups stay); `None` keeps all.
    pub keep_samples: Option<Duration>,
}

fn db(e: rusqlite::Error) -> Error {
    Error::Internal(format!("soak store: {e}"))
}

/// Run the monitors until `cancel`; returns after a clean stop.
///
/// # Errors
/// [`Error`] when the store cannot be opened or written, or the metrics address cannot bind.
pub async fn soak(
    monitors: Vec<Monitor>,
    redactor: Redactor,
    opts: SoakOptions,
    cancel: CancellationToken,
) -> Result<()> {
    if monitors.is_empty() {
        return Err(Error::Usage(
            "the checklist has no [[monitor]] entries; nothing to soak".into(),
        ));
    }
    let (store, run, states) = open_store(&monitors, &opts)?;
    let server = match &opts.listen {
        Some(addr) => Some(
            super::status_page::serve::serve(
                addr,
                opts.state.clone(),
                opts.auth.clone(),
                super::status_page::WINDOW_MS,
                cancel.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let (tx, rx) = mpsc::channel::<Sample>();
    let writer = spawn_writer(store, run, states, rx, &opts)?;
    let redactor = Arc::new(redactor);
    let scratch = scratch_dir(&opts.state);
    let mut tasks = Vec::new();
    for (i, m) in monitors.into_iter().enumerate() {
        let runner = Runner::new(
            &m.name,
            m.check.clone(),
            m.timeout,
            scratch.clone(),
            redactor.clone(),
            cancel.clone(),
        )
        .with_checklist_dir(opts.checklist_dir.clone());
        tasks.push(tokio::spawn(monitor_loop(
            i,
            m,
            runner,
            tx.clone(),
            opts.clock.clone(),
            cancel.clone(),
        )));
    }
    drop(tx);
    eprintln!(
        "prodready soak: {} monitor(s), store {}",
        tasks.len(),
        opts.state.display()
    );
    for t in tasks {
        let _ = t.await;
    }
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| Error::Internal(format!("soak writer: {e}")))?
        .map_err(|_| Error::Internal("soak writer panicked".into()))?;
    if let Some(s) = server {
        s.abort();
    }
    written
}

/// Open the store, begin this run and resume every monitor's state from it.
fn open_store(
    monitors: &[Monitor],
    opts: &SoakOptions,
) -> Result<(Store, tracker::Run, Vec<MonitorState>)> {
    let mut store = Store::open(&opts.state)?;
    let boot = boot_id();
    let run = tracker::begin_run(&mut store.conn, &opts.clock, &boot).map_err(db)?;
    let mut states = Vec::new();
    for m in monitors {
        let id = store
            .upsert_monitor(
                &m.name,
                m.check.kind(),
                m.interval.as_millis() as i64,
                m.max_span_ms(),
                m.target_percent,
            )
            .map_err(db)?;
        let mut s = MonitorState::new(id, m.failures_before_down, m.max_span_ms());
        s.resume(&store.conn, &run).map_err(db)?;
        states.push(s);
    }
    Ok((store, run, states))
}

/// The writer thread: the only one that writes the store. It applies each sample in its own
/// transaction, writes the run's heartbeat every second, prunes raw samples older than
/// `keep_samples` every 10 minutes, and ends the run when every monitor has stopped.
fn spawn_writer(
    mut store: Store,
    mut run: tracker::Run,
    mut states: Vec<MonitorState>,
    rx: mpsc::Receiver<Sample>,
    opts: &SoakOptions,
) -> Result<std::thread::JoinHandle<Result<()>>> {
    let clock = opts.clock.clone();
    let keep_ms = opts.keep_samples.map(|d| d.as_millis() as i64);
    std::thread::Builder::new()
        .name("soak-writer".into())
        .spawn(move || -> Result<()> {
            let mut last_hb = std::time::Instant::now();
            let mut last_prune: Option<std::time::Instant> = None;
            loop {
                match rx.recv_timeout(Duration::from_millis(250)) {
                    Ok(sample) => {
                        let t = store.conn.transaction().map_err(db)?;
                        states[sample.monitor]
                            .apply(&t, &run, &sample)
                            .map_err(db)?;
                        t.commit().map_err(db)?;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
                if last_hb.elapsed() >= Duration::from_secs(1) {
                    tracker::heartbeat(&store.conn, &clock, &mut run).map_err(db)?;
                    last_hb = std::time::Instant::now();
                }
                if let Some(keep) = keep_ms
                    && last_prune.is_none_or(|t| t.elapsed() >= Duration::from_secs(600))
                {
                    let before = run.at(clock.mono_ms()) - keep;
                    tracker::prune_samples(&store.conn, before).map_err(db)?;
                    last_prune = Some(std::time::Instant::now());
                }
            }
            tracker::end_run(&mut store.conn, &clock, &mut run, &mut states).map_err(db)?;
            let _ = store.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
            Ok(())
        })
        .map_err(|e| Error::Internal(format!("starting the soak writer: {e}")))
}

/// One monitor: run its check every interval and send each result to the writer, until
/// `cancel`.
async fn monitor_loop(
    i: usize,
    m: Monitor,
    runner: Runner,
    tx: mpsc::Sender<Sample>,
    clock: Clock,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(m.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let wall_ms = clock.wall_ms();
        let mono_ms = clock.mono_ms();
        let maintenance = m.maintenance_at(wall_ms).map(str::to_string);
        let result = tokio::select! {
            _ = cancel.cancelled() => break,
            r = runner.run() => r,
        };
        // A check cut short by the shutdown says nothing about the target: its time stays
        // unknown instead of becoming a failure (both select arms can be ready at once, and the
        // probe itself returns "interrupted" on the same token).
        if cancel.is_cancelled() {
            break;
        }
        let sample = Sample {
            monitor: i,
            wall_ms,
            mono_ms,
            result,
            maintenance,
        };
        if tx.send(sample).is_err() {
            break;
        }
    }
}

/// Folder beside the store where command checks keep their last output.
fn scratch_dir(state: &std::path::Path) -> PathBuf {
    let mut name = state
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".last");
    state.with_file_name(name)
}
