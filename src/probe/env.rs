//! The `env` probe: required environment variables are set, and optionally match a regular
//! expression. Values are never read into any output: only names, whether each is set and
//! non-empty, and whether it matches.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{FieldError, ProbeContext, Validator};
use crate::model::{Check, ProbeOutput};

/// `kind = "env"`: variables that must be set.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnvProbe {
    /// Names of required variables.
    #[serde(default)]
    pub vars: Vec<String>,
    /// Also require a non-empty value. Default true.
    pub non_empty: Option<bool>,
    /// Variables whose value must match a regular expression, e.g.
    /// `{ IB_ACCOUNT = "^DU", TRADING_MODE = "^READ_ONLY$" }`; shown as matches or not, never
    /// the value.
    #[serde(default)]
    pub matches: std::collections::BTreeMap<String, String>,
}

/// A validated `env` probe.
#[derive(Debug, Clone)]
pub struct EnvProbe {
    vars: Vec<String>,
    non_empty: bool,
    matches: Vec<(String, regex::Regex)>,
}

impl RawEnvProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] for an empty list or an invalid name.
    pub fn validate(self, v: &mut Validator) -> Result<EnvProbe, FieldError> {
        if self.vars.is_empty() && self.matches.is_empty() {
            return Err(FieldError::new(
                "vars",
                "expected at least one variable name (in vars or matches)",
            ));
        }
        let bad = |n: &str| n.is_empty() || n.contains('=') || n.contains('\0');
        for (i, n) in self.vars.iter().enumerate() {
            if bad(n) {
                return Err(FieldError::new(
                    format!("vars[{i}]"),
                    format!("invalid variable name \"{n}\""),
                ));
            }
        }
        let mut matches = Vec::new();
        for (n, re) in &self.matches {
            let key = format!("matches.{n}");
            if bad(n) {
                return Err(FieldError::new(
                    key,
                    format!("invalid variable name \"{n}\""),
                ));
            }
            matches.push((n.clone(), v.regex(&key, re)?));
        }
        Ok(EnvProbe {
            vars: self.vars,
            non_empty: self.non_empty.unwrap_or(true),
            matches,
        })
    }
}

impl EnvProbe {
    /// Check the variables.
    pub fn run(&self, _ctx: &ProbeContext) -> ProbeOutput {
        let mut o = ProbeOutput::default();
        let mut missing = Vec::new();
        for name in &self.vars {
            let state = match std::env::var_os(name) {
                None => "unset",
                Some(v) if v.is_empty() && self.non_empty => "empty",
                Some(_) => "set",
            };
            if state != "set" {
                missing.push(format!("{name} ({state})"));
            }
            o.checks.push(Check::new(
                name.clone(),
                if self.non_empty {
                    "set, non-empty"
                } else {
                    "set"
                },
                state,
                state == "set",
            ));
        }
        o.measure("set", (self.vars.len() - missing.len()) as u64);
        o.measure("required", self.vars.len() as u64);
        let mut parts = Vec::new();
        if !self.vars.is_empty() {
            parts.push(if missing.is_empty() {
                format!("all {} variables set", self.vars.len())
            } else {
                format!("missing: {}", missing.join(", "))
            });
        }
        let unmatched = self.match_checks(&mut o);
        if !self.matches.is_empty() {
            parts.push(if unmatched.is_empty() {
                format!("all {} values match", self.matches.len())
            } else {
                format!("not matching: {}", unmatched.join(", "))
            });
        }
        o.summary = parts.join("; ");
        o
    }

    /// One check per `matches` entry: `matches /re/` against `matches`, `does not match` or
    /// `unset` (the value itself is never shown). Returns the names that did not match.
    fn match_checks(&self, o: &mut ProbeOutput) -> Vec<String> {
        let mut unmatched = Vec::new();
        for (name, re) in &self.matches {
            let state = match std::env::var_os(name) {
                None => "unset",
                Some(v) if re.is_match(&v.to_string_lossy()) => "matches",
                Some(_) => "does not match",
            };
            if state != "matches" {
                unmatched.push(format!("{name} ({state})"));
            }
            o.checks.push(Check::new(
                format!("{name} value"),
                format!("matches /{re}/"),
                state,
                state == "matches",
            ));
        }
        o.measure("matching", (self.matches.len() - unmatched.len()) as u64);
        unmatched
    }
}

crate::probe::probe_kind!(EnvProbe, RawEnvProbe, inline);
