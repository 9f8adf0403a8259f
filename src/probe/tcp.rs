//! The `tcp` probe: a port is open (or closed) on a host, and the ports this host listens on
//! are all in an allowlist.
//!
//! Listening sockets are read from `/proc/net/tcp` and `/proc/net/tcp6` (proc(5): one line per
//! socket, `local_address` as hex `ADDR:PORT`, state `0A` is `TCP_LISTEN`), so they are those
//! of the network namespace prodready runs in. A host without `/proc/net/tcp` is an `error`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{FieldError, ProbeContext, Validator};
use crate::model::{Check, ProbeOutput, Table};
use crate::units::HostPort;

/// `kind = "tcp"`: a port open or closed, and the host's listening ports.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTcpProbe {
    /// `host:port` to connect to, e.g. `"127.0.0.1:8080"`; `${VAR}` is interpolated.
    pub address: Option<String>,
    /// Whether `address` must accept a connection (`true`, the default) or refuse it.
    pub open: Option<bool>,
    /// Connect timeout (humantime). Default `"3s"`; a timeout counts as not open.
    pub timeout: Option<String>,
    /// Ports this host may listen on: numbers and `"low-high"` ranges, e.g.
    /// `[22, 8080, "9000-9100"]`. Any other listening port fails, shown with its address.
    pub listening_allow: Option<Vec<PortSpec>>,
}

/// A port or an inclusive range of ports.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PortSpec {
    /// One port.
    Port(i64),
    /// `"low-high"`, or one port as text.
    Range(String),
}

/// A validated `tcp` probe.
#[derive(Debug, Clone)]
pub struct TcpProbe {
    address: Option<(HostPort, String)>,
    open: bool,
    timeout: Duration,
    allow: Option<Vec<(u16, u16)>>,
}

impl RawTcpProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<TcpProbe, FieldError> {
        if self.address.is_none() && self.listening_allow.is_none() {
            return Err(FieldError::new(
                "",
                "expected address (with open) or listening_allow, or both",
            ));
        }
        if self.address.is_none() && (self.open.is_some() || self.timeout.is_some()) {
            let key = if self.open.is_some() {
                "open"
            } else {
                "timeout"
            };
            return Err(FieldError::new(
                key,
                "open and timeout apply to address; add address",
            ));
        }
        let address = match &self.address {
            None => None,
            Some(a) => {
                let text = v.interpolate("address", a)?;
                let hp = text
                    .value
                    .parse::<HostPort>()
                    .map_err(|m| FieldError::new("address", m))?;
                Some((hp, text.display))
            }
        };
        let allow = match &self.listening_allow {
            None => None,
            Some(list) => {
                let mut ranges = Vec::new();
                for (i, spec) in list.iter().enumerate() {
                    ranges.push(
                        spec.range()
                            .map_err(|m| FieldError::new(format!("listening_allow[{i}]"), m))?,
                    );
                }
                Some(ranges)
            }
        };
        Ok(TcpProbe {
            address,
            open: self.open.unwrap_or(true),
            timeout: match &self.timeout {
                Some(t) => v.duration("timeout", t)?,
                None => Duration::from_secs(3),
            },
            allow,
        })
    }
}

impl PortSpec {
    /// The inclusive range.
    fn range(&self) -> Result<(u16, u16), String> {
        let bad = |t: &str| {
            format!(
                "invalid port range \"{t}\": expected a port or \"low-high\", e.g. \"9000-9100\""
            )
        };
        match self {
            PortSpec::Port(p) => {
                let p = u16::try_from(*p).map_err(|_| bad(&p.to_string()))?;
                Ok((p, p))
            }
            PortSpec::Range(t) => {
                let (lo, hi) = t.split_once('-').unwrap_or((t, t));
                let lo: u16 = lo.trim().parse().map_err(|_| bad(t))?;
                let hi: u16 = hi.trim().parse().map_err(|_| bad(t))?;
                if lo > hi {
                    return Err(bad(t));
                }
                Ok((lo, hi))
            }
        }
    }
}

/// A listening socket: local address and port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    /// The local address it is bound to (`0.0.0.0`, `::` for all).
    pub addr: IpAddr,
    /// Its port.
    pub port: u16,
}

/// Parse one `/proc/net/tcp` or `/proc/net/tcp6` table: the sockets in state `0A` (LISTEN).
/// Addresses are hex in host byte order per 32-bit word (proc(5)).
pub fn parse_proc_net_tcp(text: &str) -> Vec<Listener> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 4 || cols[3] != "0A" {
            continue;
        }
        let Some((addr, port)) = cols[1].split_once(':') else {
            continue;
        };
        let Ok(port) = u16::from_str_radix(port, 16) else {
            continue;
        };
        let addr = match addr.len() {
            8 => u32::from_str_radix(addr, 16)
                .ok()
                .map(|w| IpAddr::V4(Ipv4Addr::from(u32::from_be(w)))),
            32 => {
                let mut bytes = [0u8; 16];
                let words: Option<Vec<u32>> = (0..4)
                    .map(|i| u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16).ok())
                    .collect();
                words.map(|w| {
                    for (i, word) in w.iter().enumerate() {
                        bytes[i * 4..i * 4 + 4].copy_from_slice(&u32::from_be(*word).to_be_bytes());
                    }
                    IpAddr::V6(Ipv6Addr::from(bytes))
                })
            }
            _ => None,
        };
        if let Some(addr) = addr {
            out.push(Listener { addr, port });
        }
    }
    out
}

impl TcpProbe {
    /// Connect to the address and read the listening ports.
    pub fn run(&self, _ctx: &ProbeContext) -> ProbeOutput {
        let mut o = ProbeOutput::default();
        let mut summary = Vec::new();
        if let Some((hp, shown)) = &self.address {
            let (is_open, detail) = self.connect(hp);
            o.measure("open", is_open);
            let want = if self.open { "open" } else { "closed" };
            o.checks.push(Check::new(
                shown.clone(),
                want,
                detail.clone(),
                is_open == self.open,
            ));
            summary.push(format!("{shown} {detail}"));
        }
        if let Some(allow) = &self.allow {
            match listening() {
                Err(e) => return ProbeOutput::error(e),
                Ok(all) => summary.push(allow_check(&mut o, allow, all)),
            }
        }
        let failed = o.failed_checks();
        o.summary = if failed.is_empty() {
            summary.join("; ")
        } else {
            format!("failed: {}", summary.join("; "))
        };
        o
    }

    /// Whether `hp` accepts a TCP connection within the timeout, and what happened.
    fn connect(&self, hp: &HostPort) -> (bool, String) {
        let addrs: Vec<SocketAddr> = match (hp.host.as_str(), hp.port).to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => return (false, format!("closed (cannot resolve: {e})")),
        };
        let mut last = String::from("closed (no address)");
        for a in addrs {
            match std::net::TcpStream::connect_timeout(&a, self.timeout) {
                Ok(_) => return (true, "open".into()),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    last = format!(
                        "closed (no answer within {})",
                        crate::units::format_duration(self.timeout)
                    );
                }
                Err(e) => last = format!("closed ({e})"),
            }
        }
        (false, last)
    }
}

/// Every listening socket of this network namespace, IPv4 and IPv6.
///
/// # Errors
/// A message when `/proc/net/tcp` cannot be read (`tcp6` may be absent without IPv6).
fn listening() -> Result<Vec<Listener>, String> {
    let v4 = std::fs::read_to_string("/proc/net/tcp")
        .map_err(|e| format!("cannot read /proc/net/tcp to list listening ports: {e}"))?;
    let mut all = parse_proc_net_tcp(&v4);
    if let Ok(v6) = std::fs::read_to_string("/proc/net/tcp6") {
        all.extend(parse_proc_net_tcp(&v6));
    }
    all.sort();
    all.dedup();
    Ok(all)
}

/// The `listening ports` check and its table of ports outside `allow`; returns the summary.
fn allow_check(o: &mut ProbeOutput, allow: &[(u16, u16)], all: Vec<Listener>) -> String {
    let outside: Vec<&Listener> = all
        .iter()
        .filter(|l| !allow.iter().any(|(lo, hi)| (*lo..=*hi).contains(&l.port)))
        .collect();
    let shown = |l: &Listener| SocketAddr::new(l.addr, l.port).to_string();
    o.measure("listening", all.len() as u64);
    o.measure("outside_allowlist", outside.len() as u64);
    let allowed = allow
        .iter()
        .map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let list = outside
        .iter()
        .map(|l| shown(l))
        .collect::<Vec<_>>()
        .join(", ");
    o.checks.push(Check::new(
        "listening ports",
        format!("only {allowed}"),
        if outside.is_empty() {
            format!("{} listening, all allowed", all.len())
        } else {
            format!("outside: {list}")
        },
        outside.is_empty(),
    ));
    if !outside.is_empty() {
        o.tables.push(Table {
            title: "Listening outside the allowlist".into(),
            columns: vec!["address".into(), "port".into()],
            rows: outside
                .iter()
                .map(|l| vec![l.addr.to_string(), l.port.to_string()])
                .collect(),
        });
        format!("listening outside the allowlist: {list}")
    } else {
        format!("{} listening ports, all allowed", all.len())
    }
}

crate::probe::probe_kind!(TcpProbe, RawTcpProbe, blocking);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_lines_give_listening_addresses() {
        // Lines as the kernel writes them (proc(5)); the second is an established socket.
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n";
        assert_eq!(
            parse_proc_net_tcp(v4),
            [Listener {
                addr: "127.0.0.1".parse().unwrap(),
                port: 8080
            }]
        );
        let v6 = "  sl  local_address                         remote_address                        st\n   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 0\n";
        assert_eq!(
            parse_proc_net_tcp(v6),
            [Listener {
                addr: "::1".parse().unwrap(),
                port: 22
            }]
        );
    }
}
