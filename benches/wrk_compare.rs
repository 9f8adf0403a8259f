//! Bench: the `latency` probe against `wrk` on the same static nginx location, at the same
//! connection count, in one run.
//!
//! ```text
//! apt-get install -y wrk nginx
//! cargo bench --bench wrk_compare                 # 5-minute probe run at 20 000 req/s
//! BENCH_SECONDS=60 BENCH_RATE=20000 BENCH_CONNECTIONS=16 cargo bench --bench wrk_compare
//! ```
//!
//! It starts nginx on an ephemeral loopback port serving a 64-byte file, runs wrk
//! (closed loop, 1 thread) for 30 s, then the probe (open model, `BENCH_RATE` per second) for
//! `BENCH_SECONDS`, sampling the probe's resident memory (VmRSS) every second. It prints the
//! p50/p99 ratios against wrk, the achieved rate, the schedule lag and the memory trend.
//!
//! The two tools do not measure the same thing: wrk is closed-loop (its latency is the
//! service time at full saturation), the probe is open-model at a fixed rate (its corrected
//! latency includes any queueing behind the schedule). Both are shown; the uncorrected p50 is
//! the like-for-like figure for the client's own overhead.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// wrk's `--latency` figure like `  50%   85.00us` in microseconds.
fn wrk_value_us(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
    let v = line.split_whitespace().nth(1)?;
    let (num, mult) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|x| x * mult)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn start_nginx(dir: &Path, port: u16) -> std::process::Child {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/static.txt"), "x".repeat(64)).unwrap();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n  keepalive_requests 10000000;\n  keepalive_timeout 120s;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n  server {{\n    listen 127.0.0.1:{port};\n    location /static.txt {{ root {d}/www; }}\n  }}\n}}\n",
        d = dir.display()
    );
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .args(["-p"])
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing useful: only
    // run when asked as a bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    for tool in ["wrk", "nginx"] {
        if !have(tool) {
            eprintln!(
                "wrk_compare: NOT RUN: `{tool}` is not installed (apt-get install -y wrk nginx)"
            );
            std::process::exit(1);
        }
    }
    let seconds = env_or("BENCH_SECONDS", 300);
    let rate = env_or("BENCH_RATE", 20_000);
    let connections = env_or("BENCH_CONNECTIONS", 16);
    let wrk_seconds = env_or("BENCH_WRK_SECONDS", 30);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut nginx = start_nginx(dir.path(), port);
    let url = format!("http://127.0.0.1:{port}/static.txt");

    // wrk: closed loop, same connections.
    let wrk = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{wrk_seconds}s"),
            "--latency",
            &url,
        ])
        .output()
        .expect("run wrk");
    let wrk_text = String::from_utf8_lossy(&wrk.stdout).to_string();
    let wrk_p50 = wrk_value_us(&wrk_text, "50%").expect("wrk p50");
    let wrk_p99 = wrk_value_us(&wrk_text, "99%").expect("wrk p99");
    let wrk_rps: f64 = wrk_text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);

    // The probe: open model at `rate`, same connections, same URL.
    let checklist = dir.path().join("bench.toml");
    std::fs::write(
        &checklist,
        format!(
            "[checklist]\nname = \"wrk compare\"\n[[item]]\nid = \"static\"\nsection = \"Performance\"\ntitle = \"static nginx location\"\nseverity = \"info\"\ntimeout = \"{}s\"\n[item.probe]\nkind = \"latency\"\nurl = \"{url}\"\nrate = {rate}\nduration = \"{seconds}s\"\nwarmup = \"2s\"\nconnections = {connections}\np99 = \"1h\"\n",
            seconds + 120
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut probe = Command::new(env!("CARGO_BIN_EXE_prodready"))
        .args(["run", "--no-step-summary", "--out"])
        .arg(&out)
        .arg(&checklist)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the probe");
    let pid = probe.id();
    let started = Instant::now();
    let mut rss: Vec<(f64, u64)> = Vec::new();
    while probe.try_wait().unwrap().is_none() {
        if let Some(kib) = rss_kib(pid) {
            rss.push((started.elapsed().as_secs_f64(), kib));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = nginx.kill();
    let _ = nginx.wait();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let m = &report["items"][0]["outcome"]["measured"];
    let get = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);

    // Memory: after the first 10 s (pool, histograms and buffers allocated), compare the
    // median of the first and the last minute of samples.
    let steady: Vec<u64> = rss
        .iter()
        .filter(|(t, _)| *t >= 10.0 && *t <= seconds as f64 + 2.0)
        .map(|(_, k)| *k)
        .collect();
    let median = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    let window = steady.len().min(60) / 2;
    let rss_first = median(&steady[..window.max(1).min(steady.len())]);
    let rss_last = median(&steady[steady.len().saturating_sub(window.max(1))..]);
    let rss_max = rss.iter().map(|r| r.1).max().unwrap_or(0);

    let mut o = std::io::stdout().lock();
    let _ = writeln!(
        o,
        "\nwrk_compare: {url}, {connections} connections, probe {rate}/s for {seconds} s, wrk {wrk_seconds} s\n"
    );
    let _ = writeln!(o, "| | p50 | p99 | rate |");
    let _ = writeln!(o, "|---|---|---|---|");
    let _ = writeln!(
        o,
        "| wrk (closed loop) | {wrk_p50:.0} µs | {wrk_p99:.0} µs | {wrk_rps:.0}/s (saturated) |"
    );
    let _ = writeln!(
        o,
        "| probe corrected (open model) | {:.0} µs | {:.0} µs | {:.0}/s of {rate}/s |",
        get("p50_ms") * 1e3,
        get("p99_ms") * 1e3,
        get("rate_achieved_per_s")
    );
    let _ = writeln!(
        o,
        "| probe uncorrected | {:.0} µs | {:.0} µs | |",
        get("uncorrected_p50_ms") * 1e3,
        get("uncorrected_p99_ms") * 1e3
    );
    let _ = writeln!(
        o,
        "\nratios vs wrk: corrected p50 {:.2}×, p99 {:.2}×; uncorrected p50 {:.2}×, p99 {:.2}×",
        get("p50_ms") * 1e3 / wrk_p50,
        get("p99_ms") * 1e3 / wrk_p99,
        get("uncorrected_p50_ms") * 1e3 / wrk_p50,
        get("uncorrected_p99_ms") * 1e3 / wrk_p99
    );
    let _ = writeln!(
        o,
        "schedule lag: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; scheduler late by up to {:.3} ms; sustained: {}",
        get("schedule_lag_p50_ms"),
        get("schedule_lag_p99_ms"),
        get("schedule_lag_max_ms"),
        get("scheduler_max_late_ms"),
        m["sustained"]
    );
    let _ = writeln!(
        o,
        "requests {}, errors {}; probe RSS: first minute median {rss_first} KiB, last minute median {rss_last} KiB, max {rss_max} KiB ({} samples)",
        m["requests"],
        m["errors"],
        rss.len()
    );
}
