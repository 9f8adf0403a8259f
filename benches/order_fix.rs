//! Bench: order round trips over FIX against the paper broker's FIX acceptor, beside the same
//! orders over HTTP/1.1, at 1 000 and 5 000 orders/s, with the CPU each side spends per order.
//!
//! ```text
//! cargo bench --bench order_fix                                   # ~1 minute
//! BENCH_RATES=1000,5000,10000 BENCH_SECONDS=20 cargo bench --bench order_fix
//! ```
//!
//! For every rate a fresh paper broker (this build, `--fix-listen`) takes `BENCH_SECONDS` of
//! market orders: over FIX (one session, `until = "ack"` and `until = "fill"`) and over HTTP
//! (the paper broker's JSON API, the default pool). CPU per order is the probe process's user
//! and system time (`getrusage(RUSAGE_CHILDREN)`) and the broker's (`/proc/PID/stat`), each
//! over the orders sent. Printed as a Markdown table with the ratios FIX ÷ HTTP.

use std::path::Path;
use std::process::{Child, Command, Stdio};

mod common;

use common::{env_or, run_latency_item, stop};

/// A paper broker with its FIX acceptor: the process, its HTTP and FIX addresses.
fn start_broker() -> (Child, String, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_prodready"))
        .args(["paper-broker", "--listen", "127.0.0.1:0"])
        .args(["--fix-listen", "127.0.0.1:0", "--order-history", "1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the paper broker");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = |prefix: &str| {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        l.trim().strip_prefix(prefix).unwrap().to_string()
    };
    let http = line("listening on ");
    let fix = line("fix listening on ");
    (child, http, fix)
}

/// One run's figures.
struct Figures {
    p50_us: f64,
    p99_us: f64,
    unc_p99_us: f64,
    achieved: f64,
    probe_cpu_us: f64,
    generator_cpu_us: f64,
    broker_cpu_us: f64,
    status: String,
}

/// Run one latency item with `keys` against the broker `pid`; its figures.
fn run_probe(dir: &Path, keys: &str, rate: u64, seconds: u64, broker: u32) -> Figures {
    let keys = format!(
        "{keys}rate = {rate}\nduration = \"{seconds}s\"\nwarmup = \"1s\"\np99 = \"1h\"\nmin_samples = 100\n"
    );
    let r = run_latency_item(dir, "order fix bench", &keys, seconds + 60, broker);
    let sent = r.sent();
    Figures {
        p50_us: r.get("p50_ms") * 1e3,
        p99_us: r.get("p99_ms") * 1e3,
        unc_p99_us: r.get("uncorrected_p99_ms") * 1e3,
        achieved: r.get("rate_achieved_per_s"),
        probe_cpu_us: r.probe_cpu.as_secs_f64() * 1e6 / sent,
        generator_cpu_us: r.get("generator_cpu_us_per_request"),
        broker_cpu_us: r.broker_cpu.as_secs_f64() * 1e6 / sent,
        status: format!(
            "{}, {} errors",
            r.outcome["status"].as_str().unwrap_or("?"),
            r.get("errors")
        ),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not used here.
    let rates: Vec<u64> = env_or("BENCH_RATES", "1000,5000")
        .split(',')
        .map(|r| r.trim().parse().expect("BENCH_RATES: numbers"))
        .collect();
    let seconds: u64 = env_or("BENCH_SECONDS", "10")
        .parse()
        .expect("BENCH_SECONDS");
    let dir = tempfile::tempdir().unwrap();
    println!(
        "| transport | rate /s | achieved /s | p50 | p99 | uncorrected p99 | probe CPU µs/order | generator CPU µs/order | broker CPU µs/order | status |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for rate in rates {
        let row = |name: &str, f: &Figures| {
            println!(
                "| {name} | {rate} | {:.0} | {:.0} µs | {:.0} µs | {:.0} µs | {:.1} | {:.1} | {:.1} | {} |",
                f.achieved,
                f.p50_us,
                f.p99_us,
                f.unc_p99_us,
                f.probe_cpu_us,
                f.generator_cpu_us,
                f.broker_cpu_us,
                f.status
            );
        };
        let mut runs = Vec::new();
        for (name, until) in [
            ("FIX 4.4, until ack", "ack"),
            ("FIX 4.4, until fill", "fill"),
        ] {
            let (broker, _, fix) = start_broker();
            let keys = format!(
                "transport = \"fix\"\nurl = \"fix+tcp://{fix}\"\nsender_comp_id = \"BENCH\"\ntarget_comp_id = \"PAPER\"\norder = \"11=b-{{{{seq}}}}|55=NIFTY|54=1|38=1|40=1\"\nuntil = \"{until}\"\n"
            );
            let f = run_probe(dir.path(), &keys, rate, seconds, broker.id());
            stop(broker);
            row(name, &f);
            runs.push(f);
        }
        let (broker, http, _) = start_broker();
        let keys = format!(
            "url = \"http://{http}/api/v1/orders\"\nbody = '{{\"symbol\":\"NIFTY\",\"side\":\"buy\",\"qty\":1,\"type\":\"market\"}}'\n"
        );
        let h = run_probe(dir.path(), &keys, rate, seconds, broker.id());
        stop(broker);
        row("HTTP/1.1 JSON", &h);
        let ack = &runs[0];
        println!(
            "| FIX ack ÷ HTTP | {rate} | | {:.2}× | {:.2}× | | {:.2}× | {:.2}× | {:.2}× | |",
            ack.p50_us / h.p50_us,
            ack.p99_us / h.p99_us,
            ack.probe_cpu_us / h.probe_cpu_us,
            ack.generator_cpu_us / h.generator_cpu_us,
            ack.broker_cpu_us / h.broker_cpu_us,
        );
    }
}
