//! What a `[[service]]` table says: its raw serde mirror (unknown keys are errors; the
//! checklist's JSON Schema includes it) and one validation into a [`Service`]. Errors name the
//! key relative to the service table; the checklist loader adds the file, line and column.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::field::{FieldError, Validator};
use crate::units::{HostPort, Interpolated};

/// How a service announces it is ready.
#[derive(Debug, Clone)]
pub enum Ready {
    /// A GET to the URL returns 200.
    Http {
        /// The URL.
        url: Interpolated,
        /// Give up after this long.
        timeout: Duration,
    },
    /// A TCP connect to `host:port` succeeds.
    Tcp {
        /// The endpoint.
        addr: HostPort,
        /// Give up after this long.
        timeout: Duration,
    },
    /// No readiness check: the process must still be running after this long.
    Alive(Duration),
}

/// A `[[service]]`.
#[derive(Debug, Clone)]
pub struct Service {
    /// Name.
    pub name: String,
    /// argv after interpolation.
    pub argv: Vec<Interpolated>,
    /// Working directory (relative to the checklist).
    pub cwd: Option<PathBuf>,
    /// Extra environment.
    pub env: Vec<(String, Interpolated)>,
    /// Readiness check.
    pub ready: Ready,
    /// Grace between SIGTERM and SIGKILL.
    pub stop_timeout: Duration,
}

/// `[[service]]`: a process the run starts before the items and stops after them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// Name, unique among services.
    pub name: String,
    /// argv; a leading `prodready` runs this binary. `${VAR}` is interpolated.
    pub command: Vec<String>,
    /// Working directory, relative to the checklist.
    pub cwd: Option<String>,
    /// Extra environment variables; values may use `${VAR}`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How to know it is ready. Without it, the service only has to stay up for 1 s.
    pub ready: Option<RawReady>,
    /// Grace between SIGTERM and SIGKILL when stopping. Default `"10s"`.
    pub stop_timeout: Option<String>,
}

/// `ready = { http = "http://127.0.0.1:18080/healthz", timeout = "10s" }` or `{ tcp = "127.0.0.1:5432" }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReady {
    /// Ready when a GET returns 200.
    pub http: Option<String>,
    /// Ready when a TCP connect succeeds (`host:port`).
    pub tcp: Option<String>,
    /// Give up after this long (humantime). Default `"30s"`.
    pub timeout: Option<String>,
}

impl RawService {
    /// Validate once: a non-empty argv, `${VAR}` interpolated in argv and environment, the
    /// readiness check and the stop grace. Names are checked for uniqueness by the checklist.
    ///
    /// # Errors
    /// A [`FieldError`] at the key (relative to the service table), e.g. `command[2]`.
    pub fn validate(self, v: &mut Validator) -> Result<Service, FieldError> {
        if self.command.is_empty() {
            return Err(FieldError::new(
                "command",
                "expected a non-empty argv array",
            ));
        }
        let mut argv = Vec::new();
        for (j, a) in self.command.iter().enumerate() {
            argv.push(
                v.interpolate("", a)
                    .map_err(|e| FieldError::new(format!("command[{j}]"), e.message))?,
            );
        }
        let mut env = Vec::new();
        for (k, val) in &self.env {
            let value = v
                .interpolate("", val)
                .map_err(|e| FieldError::new(format!("env.{k}"), e.message))?;
            env.push((k.clone(), value));
        }
        let ready = match self.ready {
            None => Ready::Alive(Duration::from_secs(1)),
            Some(r) => r.validate(v)?,
        };
        let stop_timeout = match &self.stop_timeout {
            Some(t) => v.duration("stop_timeout", t)?,
            None => Duration::from_secs(10),
        };
        Ok(Service {
            name: self.name,
            argv,
            cwd: self.cwd.map(PathBuf::from),
            env,
            ready,
            stop_timeout,
        })
    }
}

impl RawReady {
    /// Exactly one of `http` and `tcp`, with its timeout (default 30 s).
    fn validate(self, v: &mut Validator) -> Result<Ready, FieldError> {
        let timeout = match &self.timeout {
            Some(t) => v.duration("ready.timeout", t)?,
            None => Duration::from_secs(30),
        };
        match (self.http, self.tcp) {
            (Some(url), None) => {
                let url = v.interpolate("ready.http", &url)?;
                reqwest::Url::parse(&url.value)
                    .map_err(|e| FieldError::new("ready.http", format!("invalid URL: {e}")))?;
                Ok(Ready::Http { url, timeout })
            }
            (None, Some(addr)) => Ok(Ready::Tcp {
                addr: addr
                    .parse()
                    .map_err(|m: String| FieldError::new("ready.tcp", m))?,
                timeout,
            }),
            _ => Err(FieldError::new(
                "ready",
                "expected exactly one of: http, tcp",
            )),
        }
    }
}
