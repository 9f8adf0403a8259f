//! The command line of `prodready paper-broker`: where it listens, the faults it starts with,
//! the simulated market and the FIX and WebSocket options, with the value parsers they need.

use std::net::SocketAddr;
use std::time::Duration;

/// Command-line options of `prodready paper-broker`.
#[derive(Debug, Clone, clap::Args)]
pub struct PaperBrokerArgs {
    /// Address to listen on (loopback by default). Port 0 picks a free port; the bound address
    /// is printed as the first stdout line: `listening on 127.0.0.1:NNNNN`.
    #[arg(long, default_value = "127.0.0.1:18080")]
    pub listen: SocketAddr,
    /// Require `Authorization: Bearer KEY` on /api and /admin routes.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Added latency per API request (e.g. "2ms").
    #[arg(long, value_parser = parse_duration_arg)]
    pub latency: Option<Duration>,
    /// Uniform random extra latency from 0 to this, on top of --latency (e.g. "1ms").
    #[arg(long, value_parser = parse_duration_arg)]
    pub jitter: Option<Duration>,
    /// Time after start of the first stall (e.g. "20s"). Needs --stall-for.
    #[arg(long, value_parser = parse_duration_arg)]
    pub stall_after: Option<Duration>,
    /// Length of each stall: every request arriving during it is held until it ends.
    #[arg(long, value_parser = parse_duration_arg)]
    pub stall_for: Option<Duration>,
    /// Repeat the stall with this period (the first one at --stall-after, default one period).
    #[arg(long, value_parser = parse_duration_arg)]
    pub stall_every: Option<Duration>,
    /// Fraction of order requests answered with HTTP 503 (0 to 1).
    #[arg(long, value_parser = parse_fraction_arg)]
    pub error_rate: Option<f64>,
    /// Memory retained per accepted order, really allocated and written (e.g. "64KiB").
    #[arg(long, value_parser = parse_bytes_arg)]
    pub leak_per_order: Option<u64>,
    /// Seed of the simulated prices, jitter and error draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Period of one full oscillation of the simulated mid price (±0.5 %).
    #[arg(long, default_value = "60s", value_parser = parse_duration_arg)]
    pub price_period: Duration,
    /// Finished (filled, cancelled, rejected) orders kept for lookups and duplicate
    /// client_order_id detection; older ones are evicted so memory stays bounded. Open orders
    /// are always kept.
    #[arg(long, default_value_t = 1000)]
    pub order_history: usize,
    /// Serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with this PEM certificate chain. Needs
    /// --tls-key. Without it the broker speaks plain HTTP/1.1 and HTTP/2 with prior knowledge.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Also accept FIX 4.4 / 4.2 sessions on this address (port 0 picks a free port; the bound
    /// address is printed as the second stdout line: `fix listening on 127.0.0.1:NNNNN`).
    /// With --tls-cert the sessions are TLS too (`fix+tls://`).
    #[arg(long)]
    pub fix_listen: Option<SocketAddr>,
    /// The FIX acceptor's CompID: a Logon must name it as TargetCompID(56).
    #[arg(long, default_value = "PAPER")]
    pub fix_comp_id: String,
    /// Period of the market-data quotes sent on every /ws/orders socket (e.g. "50ms").
    #[arg(long, default_value = "50ms", value_parser = parse_duration_arg)]
    pub ws_quote_interval: Duration,
}

fn parse_duration_arg(s: &str) -> std::result::Result<Duration, String> {
    crate::units::parse_duration(s)
}

fn parse_bytes_arg(s: &str) -> std::result::Result<u64, String> {
    crate::units::parse_bytes(s)
}

fn parse_fraction_arg(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("invalid fraction \"{s}\": expected a number from 0 to 1"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "invalid fraction {v}: expected a number from 0 to 1"
        ))
    }
}
