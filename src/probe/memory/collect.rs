//! The sampling loop: find the target process at every tick (following a restart where the
//! target allows it), read its memory ([`super::sample`]) and keep the series with why it
//! ended. Nothing here judges the series; [`super::analysis`] does.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::analysis::Sample;
use super::sample::{self, Identity, Reader};
use super::{DEFAULT_DURATION, MemoryProbe, Target};
use crate::probe::ProbeContext;

/// Why sampling stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// The window elapsed.
    Window,
    /// The `during` item finished.
    DuringDone,
    /// A fixed target exited and cannot come back.
    TargetGone,
}

/// What the sampling loop collected.
#[derive(Debug, Default)]
pub(super) struct Collected {
    pub(super) samples: Vec<Sample>,
    /// Ticks at which no target process was found.
    pub(super) missed: u32,
    /// Why the loop stopped, and after how long.
    pub(super) end: Option<End>,
    pub(super) window: Duration,
    /// The last lookup problem (ambiguous match, unreadable pid file), for the summary.
    pub(super) last_problem: Option<String>,
}

impl MemoryProbe {
    fn pid_now(
        &self,
        ctx: &ProbeContext,
        reader: &mut Reader,
        last: Option<Identity>,
    ) -> Result<Option<u32>, String> {
        match &self.target {
            Target::Service(name) => ctx
                .services
                .pid(name)
                .map(Some)
                .ok_or_else(|| format!("service \"{name}\" is not running (no PID known)")),
            Target::Pid(p) => Ok(Some(*p)),
            Target::PidFile { path, .. } => sample::read_pid_file(&ctx.resolve(path)).map(Some),
            Target::Process(re) => {
                // Keep following the current process while it lives; look up again otherwise.
                if let Some(id) = last
                    && reader.identity(id.pid) == Some(id)
                {
                    return Ok(Some(id.pid));
                }
                match reader.find(re).as_slice() {
                    [] => Ok(None),
                    [one] => Ok(Some(*one)),
                    many => Err(format!(
                        "{} processes match /{}/ (pids {}); make the pattern match exactly one",
                        many.len(),
                        re.as_str(),
                        many.iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            }
        }
    }

    /// Sample until the window elapses, `until` is cancelled (the `during` item finished), the
    /// run is interrupted or a fixed target exits.
    pub(super) async fn collect(
        &self,
        ctx: &ProbeContext,
        until: Option<&CancellationToken>,
    ) -> Result<Collected, String> {
        let started = Instant::now();
        let window = match (self.duration, &self.during) {
            (Some(d), _) => d,
            // With `during` and no duration the item timeout bounds the loop.
            (None, Some(_)) => Duration::MAX,
            (None, None) => DEFAULT_DURATION,
        };
        let mut reader = Reader::default();
        let mut c = Collected::default();
        let mut last: Option<Identity> = None;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let never = CancellationToken::new();
        let until = until.unwrap_or(&never);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = until.cancelled() => { c.end = Some(End::DuringDone); break; }
                _ = ctx.cancel.cancelled() => break,
            }
            let t = started.elapsed();
            if t > window {
                c.end = Some(End::Window);
                break;
            }
            let pid = match self.pid_now(ctx, &mut reader, last) {
                Ok(p) => p,
                Err(e) if !self.target.follows_restarts() => return Err(e),
                Err(e) => {
                    c.last_problem = Some(e);
                    None
                }
            };
            let sample = pid.and_then(|pid| {
                let id = reader.identity(pid)?;
                let r = reader.read(pid)?;
                Some(Sample {
                    t_s: t.as_secs_f64(),
                    pid,
                    started: id.started,
                    rss_bytes: r.rss_bytes,
                    anon_bytes: r.anon_bytes,
                })
            });
            match sample {
                Some(s) => {
                    last = Some(Identity {
                        pid: s.pid,
                        started: s.started,
                    });
                    c.samples.push(s);
                }
                None => {
                    c.missed += 1;
                    if !self.target.follows_restarts() {
                        if c.samples.is_empty() {
                            return Err(format!(
                                "{} is not running: no process with pid {}",
                                self.target.describe(),
                                pid.map(|p| p.to_string()).unwrap_or_default()
                            ));
                        }
                        c.end = Some(End::TargetGone);
                        break;
                    }
                }
            }
        }
        c.window = started.elapsed();
        Ok(c)
    }
}
