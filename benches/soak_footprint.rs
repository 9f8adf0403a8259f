//! The tracker's own footprint: the real `prodready soak` binary with 3 monitors at a 1 s
//! interval (http against `python3 -m http.server`, tcp, and a `command` running `true`),
//! sampled from /proc: resident memory (VmRSS, VmHWM) and CPU time (utime + stime), plus the
//! store's growth, extrapolated per day.
//!
//! Run: `cargo bench --bench soak_footprint` (10 minutes; `SOAK_BENCH_SECS=120` for a shorter
//! run).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is index 0, utime index 11, stime index 12.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn store_bytes(dir: &std::path::Path) -> u64 {
    ["soak.db", "soak.db-wal", "soak.db-shm"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

fn main() {
    let secs: u64 = std::env::var("SOAK_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    std::thread::sleep(Duration::from_millis(500));
    let checklist = dir.path().join("soak.toml");
    std::fs::write(
        &checklist,
        format!(
            r#"[checklist]
name = "footprint"
[[monitor]]
name = "http"
interval = "1s"
check = {{ kind = "http", url = "http://127.0.0.1:{port}/" }}
[[monitor]]
name = "tcp"
interval = "1s"
check = {{ kind = "tcp", address = "127.0.0.1:{port}" }}
[[monitor]]
name = "command"
interval = "1s"
check = {{ kind = "command", command = ["true"] }}
[[item]]
id = "x"
section = "S"
title = "T"
severity = "info"
probe = {{ kind = "env", vars = ["PATH"] }}
"#
        ),
    )
    .expect("checklist");
    let mut tracker = Command::new(env!("CARGO_BIN_EXE_prodready"))
        .arg("soak")
        .arg(&checklist)
        .arg("--state")
        .arg(dir.path().join("soak.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prodready soak");
    let pid = tracker.id();
    let started = Instant::now();
    // Settle for 10 s, then measure.
    std::thread::sleep(Duration::from_secs(10));
    let ticks_per_s = 100.0; // USER_HZ on Linux
    let cpu0 = cpu_ticks(pid);
    let bytes0 = store_bytes(dir.path());
    let rss0 = status_kib(pid, "VmRSS:");
    let t0 = Instant::now();
    let mut rss_max = rss0;
    let mut rss_min = rss0;
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(5));
        let r = status_kib(pid, "VmRSS:");
        rss_max = rss_max.max(r);
        rss_min = rss_min.min(r);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid) - cpu0) as f64 / ticks_per_s;
    let rss1 = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    let grown = store_bytes(dir.path()).saturating_sub(bytes0);
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = tracker.wait();
    // After the clean stop the WAL is checkpointed and truncated: the main file is the data.
    let empty = dir.path().join("empty.db");
    drop(prodready::store::Store::open(&empty).expect("empty store"));
    let empty_bytes = std::fs::metadata(&empty).map(|m| m.len()).unwrap_or(0);
    let final_bytes = std::fs::metadata(dir.path().join("soak.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    let total_s = started.elapsed().as_secs_f64();
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "tracker footprint, 3 monitors at 1 s, measured over {elapsed:.0} s after a 10 s settle:"
    );
    println!(
        "  RSS: start {:.1} MiB, end {:.1} MiB, min {:.1} MiB, max {:.1} MiB, peak (VmHWM) {:.1} MiB",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        rss_min as f64 / 1024.0,
        rss_max as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "  CPU: {cpu:.2} s over {elapsed:.0} s = {:.2} % of one core",
        cpu / elapsed * 100.0
    );
    println!(
        "  store after a clean stop: {} bytes over an empty store in {total_s:.0} s → {:.1} MiB per day (3 monitors at 1 s)",
        final_bytes.saturating_sub(empty_bytes),
        final_bytes.saturating_sub(empty_bytes) as f64 / total_s * 86_400.0 / 1048576.0
    );
    println!(
        "  (while running, main file + WAL grew {grown} bytes in {elapsed:.0} s; the WAL is reused after each checkpoint)"
    );
}
