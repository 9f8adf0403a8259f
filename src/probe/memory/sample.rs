//! Reading one process's resident memory, and finding the process.
//!
//! On Linux the numbers come from `/proc/PID/status` (proc(5)): `VmRSS` (all resident pages)
//! and `RssAnon` (resident anonymous pages: heap, stacks, private mappings; Linux ≥ 4.5). Heap
//! leaks show in `RssAnon` without the noise of file-backed pages the kernel maps in and out.
//! The process's identity is its PID together with its start time (`/proc/PID/stat` field 22),
//! so a PID the kernel reused for another process is seen as a restart, not as the same
//! process. Elsewhere sysinfo supplies the resident set size and the start time; `RssAnon` is
//! then unknown.

use std::path::Path;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

/// One reading of a process's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Resident set size (`VmRSS`), bytes.
    pub rss_bytes: u64,
    /// Resident anonymous memory (`RssAnon`), bytes, when the platform reports it.
    pub anon_bytes: Option<u64>,
}

/// A process as the probe tracks it: PID plus start time, so PID reuse reads as a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Process id.
    pub pid: u32,
    /// Start time in the platform's units (clock ticks since boot on Linux).
    pub started: u64,
}

/// Parse the `VmRSS` and `RssAnon` lines (in kB) of a `/proc/PID/status` text.
///
/// Returns `None` when `VmRSS` is absent (a zombie or a kernel thread has no memory to show).
pub fn parse_status(text: &str) -> Option<Reading> {
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kb| kb * 1024)
    };
    Some(Reading {
        rss_bytes: field("VmRSS:")?,
        anon_bytes: field("RssAnon:"),
    })
}

/// Field 22 (`starttime`) of a `/proc/PID/stat` text. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat_start(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Reads memory of single processes; keeps a sysinfo handle for the platforms without /proc
/// and for name matching.
#[derive(Default)]
pub struct Reader {
    system: Option<System>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Reader {
    fn system(&mut self) -> &mut System {
        self.system.get_or_insert_with(System::new)
    }

    /// The identity of `pid` if such a process is running (zombies count as gone).
    pub fn identity(&mut self, pid: u32) -> Option<Identity> {
        if cfg!(target_os = "linux") {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            if matches!(state, Some("Z" | "X" | "x")) {
                return None;
            }
            return Some(Identity {
                pid,
                started: parse_stat_start(&stat)?,
            });
        }
        let p = self.refreshed(pid)?;
        if matches!(p.status(), sysinfo::ProcessStatus::Zombie) {
            return None;
        }
        Some(Identity {
            pid,
            started: p.start_time(),
        })
    }

    /// sysinfo's view of `pid`, refreshed (memory only); `None` when the process is gone.
    fn refreshed(&mut self, pid: u32) -> Option<&sysinfo::Process> {
        let sys = self.system();
        let spid = Pid::from_u32(pid);
        sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[spid]),
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        sys.process(spid)
    }

    /// Read the memory of `pid`; `None` when the process is gone.
    pub fn read(&mut self, pid: u32) -> Option<Reading> {
        if cfg!(target_os = "linux") {
            let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            return parse_status(&text);
        }
        self.refreshed(pid).map(|p| Reading {
            rss_bytes: p.memory(),
            anon_bytes: None,
        })
    }

    /// PIDs of the running processes whose command line (argv joined by spaces; the process
    /// name when argv is empty) matches `re`, excluding this process. Sorted ascending.
    ///
    /// Command lines are re-read on every call: a process that exec'd (a launcher script
    /// turning into the interpreter) has a new one.
    pub fn find(&mut self, re: &regex::Regex) -> Vec<u32> {
        let me = std::process::id();
        let sys = self.system();
        sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing()
                .without_tasks()
                .with_cmd(UpdateKind::Always),
        );
        let mut out: Vec<u32> = sys
            .processes()
            .iter()
            .filter(|(pid, p)| {
                pid.as_u32() != me
                    && p.thread_kind().is_none()
                    && !matches!(p.status(), sysinfo::ProcessStatus::Zombie)
            })
            .filter(|(_, p)| {
                let cmd = p
                    .cmd()
                    .iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ");
                if cmd.is_empty() {
                    re.is_match(&p.name().to_string_lossy())
                } else {
                    re.is_match(&cmd)
                }
            })
            .map(|(pid, _)| pid.as_u32())
            .collect();
        out.sort_unstable();
        out
    }
}

/// Read a PID file: the first whitespace-separated token must be a positive integer.
///
/// # Errors
/// A message naming the file when it is unreadable or holds no PID.
pub fn read_pid_file(path: &Path) -> Result<u32, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    text.split_whitespace()
        .next()
        .and_then(|t| t.parse::<u32>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{} does not hold a PID", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_give_bytes() {
        let text = "Name:\tpython3\nVmPeak:\t  30000 kB\nVmRSS:\t   12345 kB\nRssAnon:\t    8000 kB\nRssFile:\t    4345 kB\n";
        assert_eq!(
            parse_status(text),
            Some(Reading {
                rss_bytes: 12345 * 1024,
                anon_bytes: Some(8000 * 1024)
            })
        );
        assert_eq!(parse_status("Name:\tkthreadd\nState:\tS\n"), None);
    }

    #[test]
    fn stat_start_time_survives_spaces_and_parens_in_the_name() {
        let mut fields = vec!["S".to_string()];
        fields.extend((4..=21).map(|i| i.to_string()));
        fields.push("987654".into());
        fields.push("0".into());
        let text = format!("42 (a) b (c) {}", fields.join(" "));
        assert_eq!(parse_stat_start(&text), Some(987654));
    }

    #[test]
    fn this_process_can_be_read() {
        let mut r = Reader::default();
        let id = r.identity(std::process::id()).expect("identity");
        assert_eq!(id.pid, std::process::id());
        let m = r.read(std::process::id()).expect("reading");
        assert!(m.rss_bytes > 0);
        if cfg!(target_os = "linux") {
            assert!(m.anon_bytes.unwrap_or(0) > 0);
        }
    }
}
