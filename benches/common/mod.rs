//! Helpers shared by the benches that drive the paper broker and the `latency` probe as
//! processes: ports, the broker's life, CPU time and table formatting.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable `name`, or `default`.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// CPU time (user + system) of every waited-for child so far.
pub fn children_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let d = |t: nix::sys::time::TimeVal| {
        Duration::from_micros(t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64)
    };
    d(u.user_time()) + d(u.system_time())
}

/// Wait until a loopback `port` accepts connections (at most 10 s).
pub fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} did not open");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Start the paper broker (this build) on a free port with `args`; the process and port.
pub fn start_broker(args: &[&str]) -> (Child, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_prodready"))
        .args(["paper-broker", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the paper broker");
    wait_port(port);
    (child, port)
}

/// SIGTERM `c` and wait for it.
pub fn stop(mut c: Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = c.wait();
}

/// Microseconds as milliseconds with two decimals, `—` for no value.
pub fn ms(us: f64) -> String {
    if us.is_nan() {
        "—".into()
    } else {
        format!("{:.2} ms", us / 1e3)
    }
}

/// CPU time (user + system) of process `pid` so far, from `/proc/PID/stat`.
pub fn process_cpu(pid: u32) -> Duration {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc/PID/stat");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // In USER_HZ ticks, which the kernel's ABI fixes at 100 per second for /proc.
    let tick = 100;
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the state field.
    Duration::from_micros((f[11] + f[12]) * 1_000_000 / tick)
}

/// One `latency` item run by this build's `prodready run` in `dir`: the item's outcome, and the
/// CPU time the probe process and the broker `broker_pid` spent meanwhile.
pub struct ItemRun {
    /// `items[0].outcome` of report.json.
    pub outcome: serde_json::Value,
    /// User + system time of the `prodready run` process.
    pub probe_cpu: Duration,
    /// User + system time of the broker over the same span.
    pub broker_cpu: Duration,
}

impl ItemRun {
    /// `measured.<key>`, NaN when missing.
    pub fn get(&self, key: &str) -> f64 {
        self.outcome["measured"][key].as_f64().unwrap_or(f64::NAN)
    }

    /// Orders sent, warm-up included (at least 1, to divide by).
    pub fn sent(&self) -> f64 {
        (self.get("requests") + self.get("warmup_requests")).max(1.0)
    }
}

/// Run a one-item checklist named `name` whose `[item.probe]` is `kind = "latency"` plus
/// `keys`, with an item timeout of `timeout_s` seconds, against the broker `broker_pid`.
/// Panics with the run's exit status when it wrote no report.
pub fn run_latency_item(
    dir: &std::path::Path,
    name: &str,
    keys: &str,
    timeout_s: u64,
    broker_pid: u32,
) -> ItemRun {
    let checklist = dir.join("bench.toml");
    std::fs::write(
        &checklist,
        format!(
            "[checklist]\nname = \"{name}\"\n[[item]]\nid = \"bench\"\nsection = \"Performance\"\ntitle = \"{name}\"\nseverity = \"info\"\ntimeout = \"{timeout_s}s\"\n[item.probe]\nkind = \"latency\"\n{keys}\n"
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let (before, broker_before) = (children_cpu(), process_cpu(broker_pid));
    let status = Command::new(env!("CARGO_BIN_EXE_prodready"))
        .args(["run", "--no-step-summary", "--out"])
        .arg(&out)
        .arg(&checklist)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run the probe");
    let (probe_cpu, broker_cpu) = (
        children_cpu() - before,
        process_cpu(broker_pid) - broker_before,
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap())
            .unwrap_or_else(|e| panic!("{name} ({status}): {e}"));
    ItemRun {
        outcome: report["items"][0]["outcome"].clone(),
        probe_cpu,
        broker_cpu,
    }
}
