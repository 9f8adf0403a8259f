//! Units and values from the checklist: durations, byte sizes, `host:port` endpoints, `${VAR}`
//! interpolation and the redactor that keeps interpolated secrets out of every report and log.
//!
//! Parsing here returns plain `String` messages; the checklist loader attaches the file, line,
//! column and key path (see [`crate::checklist`]).

use std::time::Duration;

/// Parse a humantime duration such as `"250ms"`, `"30s"`, `"5m"` or `"30d"`.
///
/// A bare number is rejected: a unit must always be written, so `timeout = "10"` cannot be read
/// as ten milliseconds by one person and ten seconds by another.
///
/// # Errors
/// A message naming the text and the expected form.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "invalid duration \"{text}\": a unit is required (expected e.g. \"250ms\", \"30s\", \"5m\", \"30d\")"
        ));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!(
            "invalid duration \"{text}\": {e} (expected e.g. \"250ms\", \"30s\", \"5m\", \"30d\")"
        )
    })
}

/// A TCP endpoint written `host:port`: `127.0.0.1:5432`, `db.internal:5432`, `[::1]:5432`.
/// Parsed once where the checklist is loaded; everything after connects to `(host, port)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    /// Port, 1–65535.
    pub port: u16,
}

impl std::str::FromStr for HostPort {
    type Err = String;

    /// # Errors
    /// A message naming the text and the expected form: no `:`, an empty host, a port that is
    /// not a number from 1 to 65535.
    fn from_str(text: &str) -> Result<HostPort, String> {
        let bad = |why: &str| {
            format!(
                "invalid address \"{text}\": {why} (expected host:port, e.g. \"127.0.0.1:5432\" or \"[::1]:5432\")"
            )
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.contains(':') && !text.starts_with('[') {
            return Err(bad("an IPv6 address goes in brackets"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(HostPort {
                host: host.to_string(),
                port: p,
            }),
            _ => Err(bad("the port is not a number from 1 to 65535")),
        }
    }
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl HostPort {
    /// Connect over TCP (every address the host resolves to, in order).
    ///
    /// # Errors
    /// The I/O error of the last attempt, or a resolution failure.
    pub async fn connect(&self) -> std::io::Result<tokio::net::TcpStream> {
        tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await
    }
}

/// Format a duration for people: `7.3 ms`, `1.20 s`, `412 µs`, `2h 5m`.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else if ns < 120_000_000_000 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

/// Parse a byte size with an explicit unit: `"512MiB"`, `"2 GiB"`, `"100kB"`, `"4096B"`.
///
/// IEC units (KiB, MiB, GiB, TiB) are powers of 1024; SI units (kB, MB, GB, TB) powers of 1000.
///
/// # Errors
/// A message naming the text and the expected form.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let expected = "expected a size with a unit, e.g. \"512MiB\", \"2GiB\", \"100kB\"";
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid size \"{text}\": {expected}"))?;
    let mult: f64 = match unit.trim() {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0f64.powi(4),
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "" => {
            return Err(format!(
                "invalid size \"{text}\": a unit is required; {expected}"
            ));
        }
        other => {
            return Err(format!(
                "invalid size \"{text}\": unknown unit \"{other}\"; {expected}"
            ));
        }
    };
    Ok((value * mult).round() as u64)
}

/// Format bytes with IEC units: `512.0 MiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Format a fraction (0.5 = half) as a percentage with `decimals` decimals: `50.00 %`. The one
/// percent formatter of reports and summaries.
pub fn format_percent(fraction: f64, decimals: usize) -> String {
    format!("{:.*} %", decimals, fraction * 100.0)
}

/// [`format_percent`], or `n/a` when nothing was measurable.
pub fn format_percent_opt(fraction: Option<f64>, decimals: usize) -> String {
    fraction.map_or_else(|| "n/a".into(), |f| format_percent(f, decimals))
}

/// Format a signed rate in bytes per hour for people with three significant digits and IEC
/// units: `+12.3 MiB/h`, `-400 KiB/h`, `+1.76 GiB/h`; `n/a` when not finite.
pub fn format_byte_rate(bytes_per_hour: f64) -> String {
    if !bytes_per_hour.is_finite() {
        return "n/a".into();
    }
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let sign = if bytes_per_hour < 0.0 { "-" } else { "+" };
    let mut v = bytes_per_hour.abs();
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    let digits = if i == 0 || v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{sign}{v:.digits$} {}/h", UNITS[i])
}

/// Check that a percentage lies in 0–100.
///
/// # Errors
/// A message when it does not.
pub fn check_percent(value: f64) -> Result<f64, String> {
    if (0.0..=100.0).contains(&value) && value.is_finite() {
        Ok(value)
    } else {
        Err(format!(
            "invalid percentage {value}: expected a number from 0 to 100"
        ))
    }
}

/// A string from the checklist after `${VAR}` interpolation.
///
/// `value` is what probes use; `display` is the text as written (with `${VAR}` left in), which
/// is what reports show. `$${` writes a literal `${`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    /// The resolved text, for use.
    pub value: String,
    /// The text as written, safe to show.
    pub display: String,
}

impl Interpolated {
    /// A literal without variables.
    pub fn literal(s: impl Into<String>) -> Self {
        let s = s.into();
        Interpolated {
            value: s.clone(),
            display: s,
        }
    }
}

/// Why `${name}` cannot be resolved, with a hint for the run's own variables.
fn unset_message(name: &str) -> String {
    let hint = if name.starts_with("SINK_") && name.ends_with("_URL") {
        "; SINK_<NAME>_URL comes from a [[sink]] with that name"
    } else if name.starts_with("PROXY_") && name.ends_with("_ADDR") {
        "; PROXY_<NAME>_ADDR comes from a [[proxy]] with that name"
    } else {
        ""
    };
    format!("environment variable {name} is not set (referenced as ${{{name}}}){hint}")
}

/// Collects the values of interpolated variables and scrubs them from any text shown to people.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<(String, String)>,
    /// Variables the run itself provides (`SINK_<NAME>_URL`, `PROXY_<NAME>_ADDR`): resolved
    /// before the environment and never treated as secrets.
    public: std::collections::BTreeMap<String, String>,
}

impl Redactor {
    /// Provide `${name}` from the run itself (not a secret, shown as is).
    pub fn set_public(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.public.insert(name.into(), value.into());
    }

    /// Resolve `${VAR}` references in `text` from the process environment, remembering each
    /// value as a secret.
    ///
    /// # Errors
    /// A message naming the first variable that is unset, or a malformed reference.
    pub fn interpolate(&mut self, text: &str) -> Result<Interpolated, String> {
        self.interpolate_with(text, |name| std::env::var(name).ok())
    }

    /// [`Redactor::interpolate`] with an explicit lookup (for tests and `soak` reloads).
    ///
    /// # Errors
    /// As [`Redactor::interpolate`].
    pub fn interpolate_with(
        &mut self,
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Interpolated, String> {
        let mut value = String::with_capacity(text.len());
        let mut display = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(pos) = rest.find('$') {
            value.push_str(&rest[..pos]);
            display.push_str(&rest[..pos]);
            let after = &rest[pos..];
            if let Some(stripped) = after.strip_prefix("$${") {
                value.push_str("${");
                display.push_str("$${");
                rest = stripped;
            } else if let Some(stripped) = after.strip_prefix("${") {
                let end = stripped.find('}').ok_or_else(|| {
                    format!("unterminated variable reference in \"{text}\": expected ${{NAME}}")
                })?;
                let name = &stripped[..end];
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "invalid variable name \"{name}\" in \"{text}\": expected letters, digits and _"
                    ));
                }
                let resolved = match self.public.get(name) {
                    Some(v) => v.clone(),
                    None => {
                        let v = lookup(name).ok_or_else(|| unset_message(name))?;
                        if !v.is_empty() {
                            self.add_secret(name, &v);
                        }
                        v
                    }
                };
                value.push_str(&resolved);
                display.push_str("${");
                display.push_str(name);
                display.push('}');
                rest = &stripped[end + 1..];
            } else {
                value.push('$');
                display.push('$');
                rest = &after[1..];
            }
        }
        value.push_str(rest);
        display.push_str(rest);
        Ok(Interpolated { value, display })
    }

    /// Remember `value` (of variable `name`) as a secret to scrub.
    pub fn add_secret(&mut self, name: &str, value: &str) {
        if !self.secrets.iter().any(|(_, v)| v == value) {
            self.secrets.push((name.to_string(), value.to_string()));
            // Longest first, so a secret that contains another is scrubbed whole.
            self.secrets
                .sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        }
    }

    /// Replace every known secret value in `text` with `${NAME}`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in &self.secrets {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("${{{name}}}"));
            }
        }
        out
    }

    /// The secrets collected so far, `(variable name, value)`, longest value first (a log
    /// probe looks for them in log lines).
    pub fn secrets(&self) -> impl Iterator<Item = (&str, &str)> {
        self.secrets.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// True when no secrets were collected.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

/// An error and its causes, `": "`-joined, each once.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let cause = s.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {

    #[test]
    fn host_port_parses_names_ipv4_and_bracketed_ipv6_and_prints_back() {
        for text in ["127.0.0.1:5432", "db.internal:80", "[::1]:9464"] {
            let hp: HostPort = text.parse().unwrap();
            assert_eq!(hp.to_string(), text);
        }
        let hp: HostPort = "[::1]:9464".parse().unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("::1", 9464));
        for bad in [
            "localhost",
            ":80",
            "host:",
            "host:0",
            "host:70000",
            "::1:80",
            "h:p",
        ] {
            let e = bad.parse::<HostPort>().unwrap_err();
            assert!(e.contains("expected host:port"), "{bad}: {e}");
        }
    }

    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert!(
            parse_duration("10")
                .unwrap_err()
                .contains("unit is required")
        );
        assert!(parse_duration("10 parsecs").is_err());
    }

    #[test]
    fn sizes_take_iec_and_si_units() {
        assert_eq!(parse_bytes("512MiB").unwrap(), 512 * 1024 * 1024);
        assert_eq!(parse_bytes("2 GiB").unwrap(), 2 * 1024 * 1024 * 1024);
        assert_eq!(parse_bytes("100kB").unwrap(), 100_000);
        assert!(parse_bytes("512").unwrap_err().contains("unit is required"));
        assert!(parse_bytes("5 furlongs").is_err());
    }

    #[test]
    fn interpolation_resolves_and_redacts() {
        let mut r = Redactor::default();
        let got = r
            .interpolate_with("Bearer ${KEY} $${LIT} $5", |n| {
                (n == "KEY").then(|| "s3cr3t-token".to_string())
            })
            .unwrap();
        assert_eq!(got.value, "Bearer s3cr3t-token ${LIT} $5");
        assert_eq!(got.display, "Bearer ${KEY} $${LIT} $5");
        assert_eq!(r.redact("echo s3cr3t-token!"), "echo ${KEY}!");
        let err = r.interpolate_with("${MISSING}", |_| None).unwrap_err();
        assert!(err.contains("MISSING is not set"), "{err}");
    }
}
