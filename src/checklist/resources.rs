//! `[[proxy]]` and `[[sink]]`: the run-level resources failure drills act on. They are
//! validated before services and items, because both refer to them through variables the run
//! provides: `${PROXY_<NAME>_ADDR}` (the proxy's `host:port`) and `${SINK_<NAME>_URL}` (the
//! sink's base URL), with `<NAME>` upper-cased and `-` written as `_`.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};

use super::locate::{Locator, Seg, key};
use super::raw;
use crate::error::Result;
use crate::field::Validator;
use crate::units::HostPort;

/// A validated `[[proxy]]`: a TCP fault proxy listening on `listen` in front of `upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySpec {
    /// Name, unique among proxies.
    pub name: String,
    /// Where it listens (a free loopback port when the checklist gives none).
    pub listen: SocketAddr,
    /// The dependency behind it.
    pub upstream: HostPort,
    /// It speaks HTTP/1.1 (`protocol = "http"`): `fault = "http"` steps may act on it.
    pub http: bool,
}

/// A validated `[[sink]]`: a notification receiver listening on `listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSpec {
    /// Name, unique among sinks.
    pub name: String,
    /// Where it listens (a free loopback port when the checklist gives none).
    pub listen: SocketAddr,
}

impl ProxySpec {
    /// The variable the run provides: `PROXY_<NAME>_ADDR`.
    pub fn variable(&self) -> String {
        format!("PROXY_{}_ADDR", upper(&self.name))
    }
}

impl SinkSpec {
    /// The variable the run provides: `SINK_<NAME>_URL`.
    pub fn variable(&self) -> String {
        format!("SINK_{}_URL", upper(&self.name))
    }

    /// The sink's base URL, `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.listen)
    }
}

fn upper(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// A free loopback address: bind port 0 and read what the kernel chose. The port is released
/// again; the run binds it right after loading, before anything else starts.
fn free_loopback() -> std::io::Result<SocketAddr> {
    TcpListener::bind(("127.0.0.1", 0))?.local_addr()
}

fn listen_addr(loc: &Locator<'_>, at: &[Seg], given: Option<&str>) -> Result<SocketAddr> {
    match given {
        Some(text) => text.parse::<SocketAddr>().map_err(|_| {
            loc.at(
                at,
                format!("invalid address \"{text}\": expected ip:port, e.g. \"127.0.0.1:18181\""),
            )
        }),
        None => free_loopback()
            .map_err(|e| loc.at(at, format!("could not find a free loopback port: {e}"))),
    }
}

fn check_name(loc: &Locator<'_>, at: &[Seg], name: &str, seen: &mut HashSet<String>) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(loc.at(
            at,
            format!("invalid name \"{name}\": expected letters, digits, '-' or '_'"),
        ));
    }
    if !seen.insert(upper(name)) {
        return Err(loc.at(at, format!("duplicate name \"{name}\"")));
    }
    Ok(())
}

/// Validate `[[proxy]]` and `[[sink]]` and make their variables available to everything
/// validated after them.
pub(super) fn validate_resources(
    loc: &Locator<'_>,
    proxies: Vec<raw::RawProxy>,
    sinks: Vec<raw::RawSink>,
    v: &mut Validator,
) -> Result<(Vec<ProxySpec>, Vec<SinkSpec>)> {
    let mut names = HashSet::new();
    let mut out_proxies = Vec::new();
    for (i, p) in proxies.into_iter().enumerate() {
        let at = |k: &str| vec![key("proxy"), Seg::Index(i), key(k)];
        check_name(loc, &at("name"), &p.name, &mut names)?;
        let upstream = v
            .interpolate("", &p.upstream)
            .map_err(|e| loc.at(&at("upstream"), e.message))?;
        let upstream: HostPort = upstream
            .value
            .parse()
            .map_err(|m: String| loc.at(&at("upstream"), m))?;
        let listen = listen_addr(loc, &at("listen"), p.listen.as_deref())?;
        let http = match p.protocol.as_deref() {
            None | Some("tcp") => false,
            Some("http") => true,
            Some(other) => {
                return Err(loc.at(
                    &at("protocol"),
                    format!("unknown protocol \"{other}\" (expected \"tcp\" or \"http\")"),
                ));
            }
        };
        let spec = ProxySpec {
            name: p.name,
            listen,
            upstream,
            http,
        };
        v.redactor.set_public(spec.variable(), listen.to_string());
        out_proxies.push(spec);
    }
    let mut names = HashSet::new();
    let mut out_sinks = Vec::new();
    for (i, s) in sinks.into_iter().enumerate() {
        let at = |k: &str| vec![key("sink"), Seg::Index(i), key(k)];
        check_name(loc, &at("name"), &s.name, &mut names)?;
        let listen = listen_addr(loc, &at("listen"), s.listen.as_deref())?;
        let spec = SinkSpec {
            name: s.name,
            listen,
        };
        v.redactor.set_public(spec.variable(), spec.url());
        out_sinks.push(spec);
    }
    Ok((out_proxies, out_sinks))
}
