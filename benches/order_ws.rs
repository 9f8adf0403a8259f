//! Bench: order round trips over WebSocket against the paper broker, side by side with the
//! HTTP path on the same broker, at 1 000 and 5 000 orders/s, with CPU per order.
//!
//! ```text
//! cargo bench --bench order_ws                                   # ~2 minutes
//! BENCH_RATES=1000,5000,10000 BENCH_SECONDS=30 cargo bench --bench order_ws
//! ```
//!
//! One paper broker (release build, market orders, TCP_NODELAY) serves both paths; for each
//! rate the `latency` probe runs over HTTP/1.1 (`POST /api/v1/orders`, one order in flight per
//! connection) and over WebSocket (`/ws/orders`, pipelined, answers matched by
//! `client_order_id` past the broker's quotes), with the same connections and one generator
//! thread, for `BENCH_SECONDS` each. CPU per order is measured on both sides: the generator
//! process (`getrusage(RUSAGE_CHILDREN)` over its run, set-up and reporting included) and the
//! broker (`/proc/PID/stat` utime + stime over the same run), each divided by the orders sent.
//! The table ends with the WebSocket/HTTP ratios at each rate.

use std::io::Write;
use std::path::Path;

mod common;
use common::{env_or, ms, run_latency_item, start_broker, stop};

const ORDER: &str =
    r#"{"symbol":"NIFTY","side":"buy","qty":1,"type":"market","client_order_id":"{{uuid}}"}"#;

/// One run's figures.
struct Figures {
    p50_us: f64,
    p99_us: f64,
    unc_p99_us: f64,
    achieved: f64,
    orders: f64,
    errors: f64,
    generator_cpu_us: f64,
    broker_cpu_us: f64,
    connect_p50_us: f64,
    status: String,
}

/// Run the probe over `transport` at `rate` for `seconds` against the broker on `port`.
fn run(
    dir: &Path,
    transport: &str,
    port: u16,
    broker_pid: u32,
    rate: u64,
    connections: u64,
    seconds: u64,
) -> Figures {
    let wire = match transport {
        "http" => format!("url = \"http://127.0.0.1:{port}/api/v1/orders\"\n"),
        _ => format!(
            "transport = \"websocket\"\nurl = \"ws://127.0.0.1:{port}/ws/orders\"\nmatch = \"/client_order_id\"\n"
        ),
    };
    let keys = format!(
        "{wire}body = '{ORDER}'\njson_pointer = \"/status\"\njson_one_of = [\"filled\", \"accepted\"]\nrate = {rate}\nduration = \"{seconds}s\"\nwarmup = \"2s\"\nconnections = {connections}\nthreads = 1\np99 = \"1h\"\nmax_generator_lag = \"1ms\"\nmin_samples = 100\n"
    );
    let r = run_latency_item(dir, transport, &keys, seconds + 120, broker_pid);
    let sent = r.sent();
    Figures {
        p50_us: r.get("p50_ms") * 1e3,
        p99_us: r.get("p99_ms") * 1e3,
        unc_p99_us: r.get("uncorrected_p99_ms") * 1e3,
        achieved: r.get("rate_achieved_per_s"),
        orders: r.get("requests"),
        errors: r.get("errors"),
        generator_cpu_us: r.probe_cpu.as_secs_f64() * 1e6 / sent,
        broker_cpu_us: r.broker_cpu.as_secs_f64() * 1e6 / sent,
        connect_p50_us: r.get("connect_p50_ms") * 1e3,
        status: format!(
            "{} (generator threads' own CPU {:.1} µs/order)",
            r.outcome["status"].as_str().unwrap_or("?"),
            r.get("generator_cpu_us_per_request")
        ),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let seconds: u64 = env_or("BENCH_SECONDS", "20").parse().unwrap();
    let connections: u64 = env_or("BENCH_CONNECTIONS", "8").parse().unwrap();
    let rates: Vec<u64> = env_or("BENCH_RATES", "1000,5000")
        .split(',')
        .map(|r| r.trim().parse().unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (broker, port) = start_broker(&["--order-history", "1000"]);
    let pid = broker.id();
    let mut o = std::io::stdout().lock();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _ = writeln!(
        o,
        "\norder_ws: {cores} cores, {connections} connections, 1 generator thread, {seconds} s per run, paper broker on 127.0.0.1:{port}\n"
    );
    let _ = writeln!(
        o,
        "| rate | transport | p50 | p99 | uncorrected p99 | achieved | orders | errors | set-up p50 | generator CPU/order | broker CPU/order | status |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let mut ratios = Vec::new();
    for &rate in &rates {
        let mut pair = Vec::new();
        for transport in ["http", "websocket"] {
            let f = run(dir.path(), transport, port, pid, rate, connections, seconds);
            let _ = writeln!(
                o,
                "| {rate}/s | {transport} | {} | {} | {} | {:.0}/s | {:.0} | {:.0} | {} | {:.1} µs | {:.1} µs | {} |",
                ms(f.p50_us),
                ms(f.p99_us),
                ms(f.unc_p99_us),
                f.achieved,
                f.orders,
                f.errors,
                ms(f.connect_p50_us),
                f.generator_cpu_us,
                f.broker_cpu_us,
                f.status
            );
            pair.push(f);
        }
        let (h, w) = (&pair[0], &pair[1]);
        ratios.push(format!(
            "{rate}/s, WebSocket / HTTP: p50 {:.2}×, p99 {:.2}×, generator CPU per order {:.2}×, broker CPU per order {:.2}×",
            w.p50_us / h.p50_us,
            w.p99_us / h.p99_us,
            w.generator_cpu_us / h.generator_cpu_us,
            w.broker_cpu_us / h.broker_cpu_us
        ));
    }
    let _ = writeln!(o);
    for r in ratios {
        let _ = writeln!(o, "- {r}");
    }
    stop(broker);
}
