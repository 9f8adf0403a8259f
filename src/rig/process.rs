//! Child processes in their own process group: spawn, capture a bounded output tail, and
//! terminate the whole group (SIGTERM, grace period, SIGKILL) so nothing is left behind.
//!
//! Used by the `command` probe and by `[[service]]` supervision. A command that forks children
//! of its own must not outlive its timeout; killing only the direct child would leave them.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

/// Resolve `argv[0] == "prodready"` to the running executable, so checklists can start the
/// built-in paper broker (and other subcommands) without `prodready` being on `PATH`.
pub fn resolve_program(program: &str) -> std::ffi::OsString {
    if program == "prodready"
        && let Ok(exe) = std::env::current_exe()
    {
        return exe.into_os_string();
    }
    program.into()
}

/// Build a command that starts in a new process group, with piped stdout/stderr and no stdin.
pub fn group_command(argv: &[String]) -> Command {
    let mut cmd = Command::new(resolve_program(&argv[0]));
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// Send `signal` to every process in the group led by `pgid`; a group already gone is fine.
pub fn signal_group(pgid: u32, signal: Signal) {
    let _ = killpg(Pid::from_raw(pgid as i32), signal);
}

/// True while any process of the group `pgid` is alive.
pub fn group_alive(pgid: u32) -> bool {
    killpg(Pid::from_raw(pgid as i32), None).is_ok()
}

/// Kills the process group with SIGKILL when dropped (timeouts, cancellation, panics).
#[derive(Debug)]
pub struct GroupGuard {
    pgid: Option<u32>,
}

impl GroupGuard {
    /// Guard the group led by `pgid`.
    pub fn new(pgid: Option<u32>) -> GroupGuard {
        GroupGuard { pgid }
    }

    /// Stop guarding (the group was terminated deliberately).
    pub fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            signal_group(pgid, Signal::SIGKILL);
        }
    }
}

/// Terminate the group: SIGTERM to all, wait up to `grace` for the leader, then SIGKILL to all.
/// Returns the leader's exit status and whether SIGKILL was needed.
pub async fn terminate_group(
    child: &mut Child,
    pgid: u32,
    grace: Duration,
) -> (Option<ExitStatus>, bool) {
    signal_group(pgid, Signal::SIGTERM);
    let status = tokio::time::timeout(grace, child.wait()).await;
    match status {
        Ok(Ok(st)) => {
            // The leader is gone; make sure its children are too.
            signal_group(pgid, Signal::SIGKILL);
            (Some(st), false)
        }
        _ => {
            signal_group(pgid, Signal::SIGKILL);
            let st = child.wait().await.ok();
            (st, true)
        }
    }
}

/// A byte buffer that keeps at most `cap` bytes: the most recent ones.
#[derive(Debug, Clone)]
pub struct Tail {
    inner: Arc<Mutex<TailInner>>,
}

#[derive(Debug)]
struct TailInner {
    buf: VecDeque<u8>,
    cap: usize,
    dropped: u64,
}

impl Tail {
    /// A tail keeping the last `cap` bytes.
    pub fn new(cap: usize) -> Tail {
        Tail {
            inner: Arc::new(Mutex::new(TailInner {
                buf: VecDeque::new(),
                cap,
                dropped: 0,
            })),
        }
    }

    /// Append bytes, dropping the oldest beyond the cap.
    pub fn push(&self, bytes: &[u8]) {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        t.buf.extend(bytes);
        let cap = t.cap;
        if t.buf.len() > cap {
            let excess = t.buf.len() - cap;
            t.buf.drain(..excess);
            t.dropped += excess as u64;
        }
    }

    /// The kept bytes as (lossy) UTF-8, and how many older bytes were dropped.
    pub fn text(&self) -> (String, u64) {
        let t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let bytes: Vec<u8> = t.buf.iter().copied().collect();
        (String::from_utf8_lossy(&bytes).into_owned(), t.dropped)
    }

    /// Bytes pushed so far, kept or not: an offset for [`Tail::since`].
    pub fn total(&self) -> u64 {
        let t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        t.dropped + t.buf.len() as u64
    }

    /// The text pushed after `offset` (a value of [`Tail::total`]), as far as it is still kept;
    /// the second value is how many of those bytes were already dropped.
    pub fn since(&self, offset: u64) -> (String, u64) {
        let t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let lost = t.dropped.saturating_sub(offset);
        let skip = offset.saturating_sub(t.dropped) as usize;
        let bytes: Vec<u8> = t.buf.iter().skip(skip).copied().collect();
        (String::from_utf8_lossy(&bytes).into_owned(), lost)
    }

    /// Spawn a task that copies `reader` into this tail until EOF.
    pub fn collect_from<R: AsyncRead + Unpin + Send + 'static>(
        &self,
        mut reader: R,
    ) -> tokio::task::JoinHandle<()> {
        let tail = self.clone();
        tokio::spawn(async move {
            let mut chunk = vec![0u8; 8192];
            loop {
                match reader.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => tail.push(&chunk[..n]),
                }
            }
        })
    }
}

/// The last `lines` lines of `text`.
pub fn last_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// How a captured run ended.
#[derive(Debug)]
pub enum Finished {
    /// The leader exited with this status.
    Exited(ExitStatus),
    /// The timeout elapsed first; the group was terminated.
    TimedOut,
    /// The cancellation token fired first; the group was terminated.
    Cancelled,
    /// Waiting for the leader failed.
    WaitFailed(std::io::Error),
}

/// A finished run with its output.
#[derive(Debug)]
pub struct Captured {
    /// How it ended.
    pub end: Finished,
    /// Standard output (lossy UTF-8), its last `cap` bytes.
    pub stdout: String,
    /// Bytes of standard output dropped from the front because of the cap.
    pub stdout_dropped: u64,
    /// Standard error (lossy UTF-8), its last `cap` bytes.
    pub stderr: String,
    /// Wall time from spawn to the end of the group.
    pub elapsed: std::time::Duration,
}

/// Spawn `cmd` (built with [`group_command`]) and wait until it exits, `timeout` elapses or
/// `cancel` fires — whichever comes first. In every case the whole process group is then
/// terminated (SIGTERM, `grace`, SIGKILL), so nothing it forked outlives it, and the last `cap`
/// bytes of each stream are returned.
///
/// # Errors
/// The spawn error, when the program could not start.
pub async fn run_captured(
    mut cmd: Command,
    cap: usize,
    timeout: Duration,
    cancel: &tokio_util::sync::CancellationToken,
    grace: Duration,
) -> std::io::Result<Captured> {
    let started = std::time::Instant::now();
    let mut child = cmd.spawn()?;
    let pgid = child.id();
    let mut guard = GroupGuard::new(pgid);
    let out = Tail::new(cap);
    let err = Tail::new(cap);
    let out_task = child.stdout.take().map(|s| out.collect_from(s));
    let err_task = child.stderr.take().map(|s| err.collect_from(s));
    let end = tokio::select! {
        r = child.wait() => match r { Ok(s) => Finished::Exited(s), Err(e) => Finished::WaitFailed(e) },
        _ = tokio::time::sleep(timeout) => Finished::TimedOut,
        _ = cancel.cancelled() => Finished::Cancelled,
    };
    if let Some(pgid) = pgid {
        terminate_group(&mut child, pgid, grace).await;
        guard.disarm();
    }
    for t in [out_task, err_task].into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let (stdout, stdout_dropped) = out.text();
    let (stderr, _) = err.text();
    Ok(Captured {
        end,
        stdout,
        stdout_dropped,
        stderr,
        elapsed: started.elapsed(),
    })
}
